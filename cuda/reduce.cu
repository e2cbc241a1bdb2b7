/* Whole-tensor reductions (sum, max, min) and argmax along a dimension.
 *
 * A reduction runs in two passes with fixed shapes (blocks write partial
 * results, one block combines them), in double, so a result never depends on
 * scheduling. NaN wins max and min, as in the reference. */
#include <math.h>

#include "kernels.cuh"

struct combine_op {
    ln_reduce_op op;
    __device__ double operator()(double a, double b) const
    {
        if (op == LN_SUM)
            return a + b;
        if (a != a || b != b)
            return NAN;
        return op == LN_MAX ? (a > b ? a : b) : (a < b ? a : b);
    }
};

LN_HD double identity_of(ln_reduce_op op)
{
    return op == LN_SUM ? 0.0 : op == LN_MAX ? -INFINITY : INFINITY;
}

__global__ void reduce_partial_kernel(ln_reduce_op op, ln_dtype dtype, int64_t n,
                                      const void *x, double *partials)
{
    combine_op combine = {op};
    double acc = identity_of(op);
    LN_GRID_STRIDE(i, n) { acc = combine(acc, ln_dev_load(x, dtype, i)); }
    acc = ln_block_reduce(acc, combine);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = acc;
}

static int supported(ln_dtype dtype)
{
    return dtype == LN_FLOAT32 || dtype == LN_INT32 || dtype == LN_UINT8
           || dtype == LN_FLOAT16 || dtype == LN_BFLOAT16;
}

extern "C" int ln_cuda_reduce(void *vctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                              const void *x, double *result)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (!supported(dtype))
        return ln_cuda_unsupported_dtype("reduction", dtype);
    if (n == 0) { /* the core refuses max/min of nothing; a sum of nothing is 0 */
        *result = 0;
        return LN_OK;
    }
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_capped_blocks(ln_blocks(n), LN_CUDA_MAX_PARTIALS);
    reduce_partial_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(op, dtype, n, x,
                                                                  ctx->partials);
    LN_CUDA_CHECK_LAUNCH("reduce_partial_kernel");
    double identity = identity_of(op);
    combine_op combine = {op};
    ln_reduce_partials_kernel<<<1, LN_THREADS, 0, ctx->stream>>>((int)blocks, ctx->partials,
                                                                identity, combine,
                                                                ctx->scalars);
    LN_CUDA_CHECK_LAUNCH("ln_reduce_partials_kernel");
    LN_CUDA_CHECK(cudaMemcpyAsync(ctx->scalars_host, ctx->scalars, sizeof(ln_cuda_scalars),
                                  cudaMemcpyDeviceToHost, ctx->stream));
    LN_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    *result = ctx->scalars_host->value;
    return LN_OK;
}

/* --- argmax ------------------------------------------------------------------ */

struct better_op {
    __device__ ln_arg_best operator()(ln_arg_best a, ln_arg_best b) const
    {
        return ln_better_of(a, b);
    }
};

/* One thread per output: best for short dims and many outputs (class scores). */
__global__ void argmax_rows_kernel(ln_dtype dtype, int64_t outer, int64_t dim, int64_t inner,
                                   const void *x, int32_t *out)
{
    LN_GRID_STRIDE(j, outer * inner)
    {
        int64_t o = j / inner, i = j % inner;
        int64_t best = 0;
        double best_v = ln_dev_load(x, dtype, o * dim * inner + i);
        for (int64_t d = 1; d < dim && best_v == best_v; d++) {
            double v = ln_dev_load(x, dtype, (o * dim + d) * inner + i);
            if (v > best_v || v != v) {
                best = d;
                best_v = v;
            }
        }
        out[j] = (int32_t)(best + 1);
    }
}

/* One block per output: for long dims with few outputs (a flat vector). */
__global__ void argmax_long_kernel(ln_dtype dtype, int64_t outer, int64_t dim, int64_t inner,
                                   const void *x, int32_t *out)
{
    for (int64_t j = blockIdx.x; j < outer * inner; j += gridDim.x) {
        int64_t o = j / inner, i = j % inner;
        ln_arg_best best = {-INFINITY, INT64_MAX};
        for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) {
            ln_arg_best here = {ln_dev_load(x, dtype, (o * dim + d) * inner + i), d};
            best = ln_better_of(best, here);
        }
        best = ln_block_reduce(best, better_op());
        if (threadIdx.x == 0)
            out[j] = (int32_t)(best.index + 1);
    }
}

extern "C" int ln_cuda_argmax(void *vctx, ln_dtype dtype, int64_t outer, int64_t dim,
                              int64_t inner, const void *x, int32_t *out)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (!supported(dtype))
        return ln_cuda_unsupported_dtype("argmax", dtype);
    int64_t outputs = outer * inner;
    if (outputs == 0 || dim == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    if (dim >= 1024 && outputs < 4096) {
        unsigned blocks = ln_capped_blocks(outputs, LN_MAX_BLOCKS);
        argmax_long_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(dtype, outer, dim, inner,
                                                                   x, out);
        LN_CUDA_CHECK_LAUNCH("argmax_long_kernel");
    } else {
        argmax_rows_kernel<<<ln_blocks(outputs), LN_THREADS, 0, ctx->stream>>>(
            dtype, outer, dim, inner, x, out);
        LN_CUDA_CHECK_LAUNCH("argmax_rows_kernel");
    }
    return LN_OK;
}
