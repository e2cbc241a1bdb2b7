/* The unary, softmax and reduce_dim families: one generic kernel per family,
 * switched by the op enum, running the formulas of csrc/formulas.h (the ones
 * the reference and the CPU run). A new elementwise op needs no launch code
 * here: its enum entry and formula are enough. Softmax and reduce_dim take one
 * thread per row (the [outer, inner] positions), accumulating in double as the
 * reference does. */
#include "kernels.cuh"

#include "formulas.h"

__global__ void unary_kernel(ln_unary_op op, ln_unary_params p, int64_t n, const float *x,
                             float *y)
{
    LN_GRID_STRIDE(i, n) { y[i] = ln_f_unary(op, &p, x[i]); }
}

__global__ void unary_backward_kernel(ln_unary_op op, ln_unary_params p, int64_t n,
                                      const float *x, const float *y, const float *dy,
                                      float *dx)
{
    LN_GRID_STRIDE(i, n)
    {
        dx[i] = ln_f_unary_backward(op, &p, x ? x[i] : 0.0f, y ? y[i] : 0.0f, dy[i]);
    }
}

extern "C" int ln_cuda_unary(void *vctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                             const float *x, float *y)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unary_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(op, *p, n, x, y);
    LN_CUDA_CHECK_LAUNCH("unary_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_unary_backward(void *vctx, ln_unary_op op, const ln_unary_params *p,
                                      int64_t n, const float *x, const float *y,
                                      const float *dy, float *dx)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unary_backward_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(op, *p, n, x, y, dy,
                                                                        dx);
    LN_CUDA_CHECK_LAUNCH("unary_backward_kernel");
    return LN_OK;
}

/* Row r of x viewed as [outer, dim, inner] starts here; its elements are
 * `inner` apart. */
__device__ __forceinline__ int64_t row_start(int64_t r, int64_t dim, int64_t inner)
{
    return (r / inner) * dim * inner + r % inner;
}

/* dy == NULL: forward (x -> out); else backward (y, dy -> out). */
__global__ void softmax_kernel(int log, int64_t rows, int64_t dim, int64_t inner,
                               const float *x, const float *y, const float *dy, float *out)
{
    LN_GRID_STRIDE(r, rows)
    {
        int64_t at = row_start(r, dim, inner);
        if (dy)
            ln_f_softmax_backward_row(log, dim, inner, y + at, dy + at, out + at);
        else
            ln_f_softmax_row(log, dim, inner, x + at, out + at);
    }
}

__global__ void reduce_dim_kernel(ln_reduce_op op, int64_t rows, int64_t dim, int64_t inner,
                                  const float *x, float *values, int32_t *positions)
{
    LN_GRID_STRIDE(r, rows)
    {
        ln_f_reduce_row(op, dim, inner, x + row_start(r, dim, inner), &values[r],
                        positions ? &positions[r] : NULL);
    }
}

static int launch_softmax(ln_cuda_context *ctx, int log, int64_t outer, int64_t dim,
                          int64_t inner, const float *x, const float *y, const float *dy,
                          float *out)
{
    int64_t rows = outer * inner;
    if (rows == 0 || dim == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    softmax_kernel<<<ln_blocks(rows), LN_THREADS, 0, ctx->stream>>>(log, rows, dim, inner, x,
                                                                    y, dy, out);
    LN_CUDA_CHECK_LAUNCH("softmax_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_softmax(void *vctx, int log, int64_t outer, int64_t dim, int64_t inner,
                               const float *x, float *y)
{
    return launch_softmax((ln_cuda_context *)vctx, log, outer, dim, inner, x, NULL, NULL, y);
}

extern "C" int ln_cuda_softmax_backward(void *vctx, int log, int64_t outer, int64_t dim,
                                        int64_t inner, const float *y, const float *dy,
                                        float *dx)
{
    return launch_softmax((ln_cuda_context *)vctx, log, outer, dim, inner, NULL, y, dy, dx);
}

extern "C" int ln_cuda_reduce_dim(void *vctx, ln_reduce_op op, int64_t outer, int64_t dim,
                                  int64_t inner, const float *x, float *values,
                                  int32_t *positions)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t rows = outer * inner;
    if (rows == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    reduce_dim_kernel<<<ln_blocks(rows), LN_THREADS, 0, ctx->stream>>>(op, rows, dim, inner, x,
                                                                       values, positions);
    LN_CUDA_CHECK_LAUNCH("reduce_dim_kernel");
    return LN_OK;
}
