/* Random numbers: the very same Philox4x32-10 draws as the CPU (philox.h is
 * compiled here as device code), element i from counter offset + i/4, so a
 * seed gives the same tensor on every device. With nvcc's --fmad=false (see
 * CMakeLists.txt) lo + span * u rounds exactly as on the CPU. */
#include <math.h>

#include "kernels.cuh"
#include "philox.h"

/* out[i] = base + scale * draw i, the draw uniform in [0, 1) or standard
 * normal; computed in float32 like the reference, then stored as `dtype`. */
template <bool Normal>
__global__ void random_kernel(ln_dtype dtype, int64_t n, void *out, float base, float scale,
                              uint64_t seed, uint64_t offset)
{
    LN_GRID_STRIDE(i, n)
    {
        float draw = Normal ? ln_philox_normal(seed, offset, (uint64_t)i)
                            : ln_philox_uniform(seed, offset, (uint64_t)i);
        float v = base + scale * draw;
        ln_dev_store(out, dtype, i, v);
    }
}

extern "C" int ln_cuda_rand_uniform(void *vctx, ln_dtype dtype, int64_t n, void *out,
                                    double lo, double hi, uint64_t seed, uint64_t offset)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (!ln_dtype_is_float(dtype))
        return ln_cuda_unsupported_dtype("random fill", dtype);
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    /* the reference's float32 arithmetic: lo and hi - lo rounded to float */
    random_kernel<false><<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(
        dtype, n, out, (float)lo, (float)(hi - lo), seed, offset);
    LN_CUDA_CHECK_LAUNCH("random_kernel<false>");
    return LN_OK;
}

extern "C" int ln_cuda_rand_normal(void *vctx, ln_dtype dtype, int64_t n, void *out,
                                   double mean, double std, uint64_t seed, uint64_t offset)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (!ln_dtype_is_float(dtype))
        return ln_cuda_unsupported_dtype("random fill", dtype);
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    random_kernel<true><<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(
        dtype, n, out, (float)mean, (float)std, seed, offset);
    LN_CUDA_CHECK_LAUNCH("random_kernel<true>");
    return LN_OK;
}

/* Element i is kept when its uniform draw u satisfies u < 1 - p (the
 * reference's rule): mask = 1/(1-p) then, else 0; y = x * mask. */
__global__ void dropout_kernel(int64_t n, float keep, float scale, const float *x, float *y,
                               float *mask, uint64_t seed, uint64_t offset)
{
    LN_GRID_STRIDE(i, n)
    {
        float m = ln_philox_uniform(seed, offset, (uint64_t)i) < keep ? scale : 0.0f;
        mask[i] = m;
        y[i] = x[i] * m;
    }
}

extern "C" int ln_cuda_dropout_forward(void *vctx, int64_t n, float p, const float *x,
                                       float *y, float *mask, uint64_t seed, uint64_t offset)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    float keep = 1.0f - p, scale = p < 1.0f ? 1.0f / keep : 0.0f;
    dropout_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(n, keep, scale, x, y, mask,
                                                                 seed, offset);
    LN_CUDA_CHECK_LAUNCH("dropout_kernel");
    return LN_OK;
}
