/* Max and average pooling over NCHW planes, as the reference computes them.
 *
 * Forward: one thread per output. Backward: one thread per input element,
 * gathering from the windows that contain it, in the order the reference
 * scatters them (window row, then column): no atomics, the same sums to the
 * bit, and every element of dx written (zero where no window reaches). */
#include "pool.cuh"

__global__ void pool_forward_kernel(ln_pool_mode mode, const ln_pool2d_shape s,
                                    const float *x, float *y, int64_t total)
{
    LN_GRID_STRIDE(i, total) { y[i] = ln_pool_forward_at(mode, s, x, i); }
}

__global__ void pool_backward_kernel(ln_pool_mode mode, const ln_pool2d_shape s,
                                     const float *x, const float *dy, float *dx, int64_t total)
{
    LN_GRID_STRIDE(i, total) { dx[i] = ln_pool_backward_at(mode, s, x, dy, i); }
}

extern "C" int ln_cuda_pool2d_forward(void *vctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                                      const float *x, float *y)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = (int64_t)s->n * s->c * s->p * s->q;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    pool_forward_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(mode, *s, x, y,
                                                                          total);
    LN_CUDA_CHECK_LAUNCH("pool_forward_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_pool2d_backward(void *vctx, ln_pool_mode mode,
                                       const ln_pool2d_shape *s, const float *x,
                                       const float *y, const float *dy, float *dx)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    (void)y; /* the winners are recomputed from x, as the reference does */
    int64_t total = (int64_t)s->n * s->c * s->h * s->w;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    pool_backward_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(mode, *s, x, dy,
                                                                           dx, total);
    LN_CUDA_CHECK_LAUNCH("pool_backward_kernel");
    return LN_OK;
}
