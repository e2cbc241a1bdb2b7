/* Host emulation of the few CUDA device features lunet's kernels use, so that
 * cuda/*.cu (rewritten by to_host.py) runs on a machine without a GPU: a
 * launch runs its blocks one after another, each block's threads as fibers
 * that switch at __syncthreads (shared memory is a static: one block at a
 * time). Checks logic and index math, not timing, inter-block races or the
 * device's libm. Included first (-include) by every emulated file. */
#pragma once
#define __host__
#define __device__
#define __global__
#define __shared__ static
#include <cuda_runtime_api.h>
#include <cstdint>
#include <cmath>
#include <functional>
struct ln_emu_dim3 { unsigned x, y, z; };
extern ln_emu_dim3 threadIdx, blockIdx, blockDim, gridDim;
void __syncthreads();
void ln_emu_launch(unsigned grid, unsigned block, std::function<void()> body);
unsigned long long atomicMin(unsigned long long *addr, unsigned long long v);
