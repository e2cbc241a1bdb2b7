/* The emulator behind emu.h, and the runtime calls the entry points make. */
#include "emu.h"
#include <ucontext.h>
#include <cstdio>
#include <cstdlib>
#include <vector>
#include <cstring>

ln_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
long ln_emu_launches, ln_emu_barriers;

namespace {
struct fiber { ucontext_t ctx; std::vector<char> stack; bool done; };
ucontext_t scheduler;
std::vector<fiber> fibers;
int current;
std::function<void()> *body_now;

void trampoline() {
    (*body_now)();
    fibers[current].done = true;
    swapcontext(&fibers[current].ctx, &scheduler);
}
}

void __syncthreads() {
    ln_emu_barriers++;
    swapcontext(&fibers[current].ctx, &scheduler);
}

void ln_emu_launch(unsigned grid, unsigned block, std::function<void()> body) {
    if (grid == 0 || block == 0 || block > 1024) { fprintf(stderr, "bad launch %u x %u\n", grid, block); abort(); }
    ln_emu_launches++;
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    body_now = &body;
    fibers.resize(block);
    for (unsigned b = 0; b < grid; b++) {
        blockIdx = {b, 0, 0};
        for (unsigned t = 0; t < block; t++) {
            fiber &f = fibers[t];
            f.stack.resize(64 << 10);
            f.done = false;
            getcontext(&f.ctx);
            f.ctx.uc_stack.ss_sp = f.stack.data();
            f.ctx.uc_stack.ss_size = f.stack.size();
            f.ctx.uc_link = nullptr;
            makecontext(&f.ctx, trampoline, 0);
        }
        for (;;) { /* one barrier phase: run every live fiber until it waits or ends */
            unsigned live = 0, done_now = 0;
            for (unsigned t = 0; t < block; t++) {
                if (fibers[t].done) continue;
                live++;
                current = (int)t;
                threadIdx = {t, 0, 0};
                swapcontext(&scheduler, &fibers[t].ctx);
                if (fibers[t].done) done_now++;
            }
            if (live == 0) break;
            if (done_now != 0 && done_now != live) {
                /* some threads ended while others wait at a barrier: divergent __syncthreads */
                fprintf(stderr, "divergent barrier: %u of %u threads ended at a barrier phase\n", done_now, live);
                abort();
            }
        }
    }
}

unsigned long long atomicMin(unsigned long long *addr, unsigned long long v) {
    unsigned long long old = *addr;
    if (v < old) *addr = v;
    return old;
}

/* --- the runtime calls the entry points make ---------------------------------- */
extern "C" {
static cudaError_t last = cudaSuccess;
cudaError_t cudaGetLastError(void) { cudaError_t e = last; last = cudaSuccess; return e; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind, cudaStream_t) { memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t) { memset(d, v, n); return cudaSuccess; }
}
