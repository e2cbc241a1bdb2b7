/* cuda/async_read.c and csrc/async_read.c on host stand-ins for the runtime:
 * a copy queued by cudaMemcpyAsync takes the source's bytes as they are
 * when it is queued (stream order: after every op before it) and lands in
 * pinned memory only when its event fires, after `latency` queries. Checks
 * that a poll never waits, hands back the previous completed read with its
 * tag, starts the next copy only when none is in flight, releases what it
 * made, refuses what it cannot carry, and that a backend without the slots
 * takes the plain read. */
#include <cuda_runtime_api.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async_read_slots.h"
#include "context.h"
#include "../csrc/async_read.h"

/* --- the runtime's stand-ins ------------------------------------------------------- */
typedef struct emu_event {
    int remaining;                /* queries answered NotReady before it fires */
    int recorded;
    void *dst;
    unsigned char bytes[64];
    size_t n;
} emu_event;
static int latency, host_allocs, host_frees, events_live, syncs;
static void *queued_dst;
static unsigned char queued[64];
static size_t queued_n;

cudaError_t cudaHostAlloc(void **p, size_t n, unsigned f) { (void)f; *p = malloc(n); host_allocs++; return cudaSuccess; }
cudaError_t cudaFreeHost(void *p) { free(p); host_frees++; return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { (void)d; return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned f) {
    (void)f; *e = (cudaEvent_t)calloc(1, sizeof(emu_event)); events_live++; return cudaSuccess; }
cudaError_t cudaEventDestroy(cudaEvent_t e) { free((void *)e); events_live--; return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    (void)k; (void)st; queued_dst = d; memcpy(queued, s, n); queued_n = n; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    (void)s; emu_event *ev = (emu_event *)e;
    ev->remaining = latency; ev->recorded = 1; ev->dst = queued_dst; memcpy(ev->bytes, queued, queued_n); ev->n = queued_n;
    return cudaSuccess; }
static void fire(emu_event *ev) { if (ev->recorded) { memcpy(ev->dst, ev->bytes, ev->n); ev->recorded = 0; } }
cudaError_t cudaEventQuery(cudaEvent_t e) {
    emu_event *ev = (emu_event *)e;
    if (ev->recorded && ev->remaining > 0) { ev->remaining--; return cudaErrorNotReady; }
    fire(ev); return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { syncs++; fire((emu_event *)e); return cudaSuccess; }
const char *cudaGetErrorName(cudaError_t e) { (void)e; return "cudaError"; }
const char *cudaGetErrorString(cudaError_t e) { (void)e; return "shim"; }
int ln_cuda_error(int code, const char *fmt, ...) { (void)fmt; return code; }
int ln_cuda_fail_cuda(cudaError_t e, const char *func, const char *call, const char *file, int line) {
    (void)e; (void)func; (void)call; (void)file; (void)line; return LN_EDEVICE; }

/* --- the few tensor functions csrc/async_read.c calls ------------------------------- */
static int plain_reads;
int ln_tensor_check_live(const ln_tensor *t) { return t->storage ? LN_OK : LN_EFREED; }
int64_t ln_tensor_numel(const ln_tensor *t) { int64_t n = 1; for (int i = 0; i < t->ndim; i++) n *= t->shape[i]; return n; }
int ln_tensor_is_contiguous(const ln_tensor *t) { (void)t; return 1; }
ln_device *ln_tensor_device(const ln_tensor *t) { return t->storage->device; }
void *ln_tensor_data(const ln_tensor *t) { return (float *)t->storage->data + t->offset; }
int ln_tensor_get(const ln_tensor *t, const int64_t *i, double *v) { plain_reads++; *v = ((float *)ln_tensor_data(t))[*i]; return LN_OK; }

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; fprintf(stderr, "FAIL line %d: ", __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)

int main(void)
{
    ln_cuda_context *ctx = calloc(1, sizeof *ctx);
    ln_backend with = {0}, without = {0};
    with.read_async_begin = ln_cuda_read_async_begin;
    with.read_async_poll = ln_cuda_read_async_poll;
    with.read_async_free = ln_cuda_read_async_free;
    ln_device gpu = {LN_DEVICE_CUDA, 0, "cuda:0", 0, &with, ctx};
    float memory[9] = {1, 2, 3};
    ln_storage storage = {1, &gpu, memory, sizeof memory};
    ln_tensor t = {&storage, 0, LN_FLOAT32, 1, {3}, {1}};
    ln_async_read r;
    memset(&r, 0, sizeof r);
    int checks = 0;

    /* the first poll queues a copy and has nothing yet */
    latency = 2;
    CHECK(ln_async_read_poll(&r, &t, 1) == LN_OK && !r.have, "first poll"); checks++;
    memory[0] = 10; /* a later op: the queued copy took 1 2 3 */
    CHECK(ln_async_read_poll(&r, &t, 2) == LN_OK && !r.have, "not ready after 1 query"); checks++;
    CHECK(ln_async_read_poll(&r, &t, 3) == LN_OK && !r.have, "not ready after 2 queries"); checks++;
    latency = 0; /* the copies queued from now on are done at their first query */
    /* fired: the values of tag 1, and a new copy (of 10 2 3, tag 4) queued */
    CHECK(ln_async_read_poll(&r, &t, 4) == LN_OK && r.have && r.tag == 1 && r.count == 3, "ready"); checks++;
    CHECK(r.values[0] == 1 && r.values[1] == 2 && r.values[2] == 3, "tag 1's values %g %g %g", r.values[0], r.values[1], r.values[2]); checks++;
    memory[1] = 20;
    CHECK(ln_async_read_poll(&r, &t, 5) == LN_OK && r.have && r.tag == 4 && r.values[0] == 10 && r.values[1] == 2, "tag 4"); checks++;
    CHECK(ln_async_read_poll(&r, &t, 6) == LN_OK && r.tag == 5 && r.values[1] == 20, "tag 5"); checks++;
    CHECK(syncs == 0, "a poll waited (%d event synchronisations)", syncs); checks++;
    CHECK(plain_reads == 0, "the asynchronous path read %d values plainly", plain_reads); checks++;
    CHECK(host_allocs == 1 && events_live == 1, "one pinned buffer and one event per reader"); checks++;
    ln_async_read_release(&r);
    CHECK(host_frees == 1 && events_live == 0 && r.token == NULL && !r.pending, "released"); checks++;
    /* polled again after release: a fresh token */
    CHECK(ln_async_read_poll(&r, &t, 7) == LN_OK && host_allocs == 2, "after release"); checks++;
    ln_async_read_release(&r);
    CHECK(host_frees == 2 && events_live == 0, "released twice"); checks++;

    /* what cannot be carried */
    ln_tensor big = t;
    big.shape[0] = 9;
    CHECK(ln_async_read_poll(&r, &big, 1) == LN_EINVAL, "9 values refused"); checks++;
    ln_tensor ints = t;
    ints.dtype = LN_INT32;
    CHECK(ln_async_read_poll(&r, &ints, 1) == LN_EINVAL, "int32 refused"); checks++;
    void *token = NULL;
    CHECK(ln_cuda_read_async_begin(ctx, memory, 33, &token) == LN_EINVAL && !token, "33 bytes refused"); checks++;
    CHECK(ln_cuda_read_async_begin(ctx, memory, 4, &token) == LN_OK, "begin"); checks++;
    CHECK(ln_cuda_read_async_begin(ctx, memory, 4, &token) == LN_EINVAL, "a second copy in flight refused"); checks++;
    int ready = 0;
    float out = 0;
    CHECK(ln_cuda_read_async_poll(ctx, token, &out, &ready) == LN_OK && ready && out == 10, "poll"); checks++;
    CHECK(ln_cuda_read_async_poll(ctx, token, &out, &ready) == LN_EINVAL && !ready, "poll with none in flight"); checks++;
    ln_cuda_read_async_free(ctx, token);
    ln_cuda_read_async_free(ctx, NULL);

    /* a backend without the slots: a plain read, every time */
    gpu.backend = &without;
    CHECK(ln_async_read_poll(&r, &t, 8) == LN_OK && r.have && r.tag == 8 && r.values[1] == 20 && plain_reads == 3, "plain read"); checks++;
    CHECK(host_allocs == host_frees && events_live == 0, "nothing left behind"); checks++;
    free(ctx);
    printf("async_read_test: %d checks, %d failures\n", checks, fails);
    return fails != 0;
}
