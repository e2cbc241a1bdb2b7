/* Elementwise arithmetic: out = a OP b and out = a OP s. float32 as the
 * reference computes it (one IEEE operation per element, so results are
 * bit-identical to the CPU's); int32 and uint8 wrap around like the
 * reference's unsigned arithmetic; float16 and bfloat16 compute in float32 and
 * round once to nearest even. */
#include "kernels.cuh"

#include "formulas.h"

template <typename T>
__device__ __forceinline__ T wrap_int(int64_t v)
{
    return (T)(uint64_t)v; /* keeps the low bits: wrap-around */
}

/* 16-bit floats as float32 and back, rounding to nearest even. */
__device__ __forceinline__ float load_half(const void *p, ln_dtype dtype, int64_t i)
{
    uint16_t bits = ((const uint16_t *)p)[i];
    return dtype == LN_FLOAT16 ? ln_dev_half_to_float(bits) : ln_dev_bfloat16_to_float(bits);
}

__device__ __forceinline__ void store_half(void *p, ln_dtype dtype, int64_t i, float v)
{
    ((uint16_t *)p)[i] =
        dtype == LN_FLOAT16 ? ln_dev_float_to_half(v) : ln_dev_float_to_bfloat16(v);
}

__global__ void binary_float_kernel(ln_binary_op op, int64_t n, const float *a,
                                    const float *b, float *out)
{
    LN_GRID_STRIDE(i, n) { out[i] = ln_f_binary(op, a[i], b[i]); }
}

template <typename T>
__global__ void binary_int_kernel(ln_binary_op op, int64_t n, const T *a, const T *b, T *out)
{
    LN_GRID_STRIDE(i, n) { out[i] = wrap_int<T>(ln_i_binary(op, (int64_t)a[i], (int64_t)b[i])); }
}

__global__ void binary_half_kernel(ln_binary_op op, ln_dtype dtype, int64_t n, const void *a,
                                   const void *b, void *out)
{
    LN_GRID_STRIDE(i, n)
    {
        store_half(out, dtype, i, ln_f_binary(op, load_half(a, dtype, i), load_half(b, dtype, i)));
    }
}

__global__ void scalar_float_kernel(ln_binary_op op, int64_t n, const float *a, float s,
                                    int scalar_first, float *out)
{
    LN_GRID_STRIDE(i, n) { out[i] = scalar_first ? ln_f_binary(op, s, a[i]) : ln_f_binary(op, a[i], s); }
}

template <typename T>
__global__ void scalar_int_kernel(ln_binary_op op, int64_t n, const T *a, int64_t s,
                                  int scalar_first, T *out)
{
    LN_GRID_STRIDE(i, n)
    {
        int64_t v = (int64_t)a[i];
        out[i] = wrap_int<T>(scalar_first ? ln_i_binary(op, s, v) : ln_i_binary(op, v, s));
    }
}

__global__ void scalar_half_kernel(ln_binary_op op, ln_dtype dtype, int64_t n, const void *a,
                                   float s, int scalar_first, void *out)
{
    LN_GRID_STRIDE(i, n)
    {
        float v = load_half(a, dtype, i);
        store_half(out, dtype, i, scalar_first ? ln_f_binary(op, s, v) : ln_f_binary(op, v, s));
    }
}

extern "C" int ln_cuda_binary(void *vctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                              const void *a, const void *b, void *out)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_blocks(n);
    switch (dtype) {
    case LN_FLOAT32:
        binary_float_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const float *)a, (const float *)b, (float *)out);
        break;
    case LN_INT32:
        binary_int_kernel<int32_t><<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const int32_t *)a, (const int32_t *)b, (int32_t *)out);
        break;
    case LN_UINT8:
        binary_int_kernel<uint8_t><<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const uint8_t *)a, (const uint8_t *)b, (uint8_t *)out);
        break;
    case LN_FLOAT16:
    case LN_BFLOAT16:
        binary_half_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(op, dtype, n, a, b, out);
        break;
    default:
        return ln_cuda_unsupported_dtype("elementwise arithmetic", dtype);
    }
    LN_CUDA_CHECK_LAUNCH("binary_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_binary_scalar(void *vctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                                     const void *a, double s, int scalar_first, void *out)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_blocks(n);
    switch (dtype) {
    case LN_FLOAT32:
        scalar_float_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const float *)a, (float)s, scalar_first, (float *)out);
        break;
    case LN_INT32:
        scalar_int_kernel<int32_t><<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const int32_t *)a, (int64_t)s, scalar_first, (int32_t *)out);
        break;
    case LN_UINT8:
        scalar_int_kernel<uint8_t><<<blocks, LN_THREADS, 0, ctx->stream>>>(
            op, n, (const uint8_t *)a, (int64_t)s, scalar_first, (uint8_t *)out);
        break;
    case LN_FLOAT16:
    case LN_BFLOAT16:
        scalar_half_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(op, dtype, n, a, (float)s,
                                                                  scalar_first, out);
        break;
    default:
        return ln_cuda_unsupported_dtype("elementwise arithmetic", dtype);
    }
    LN_CUDA_CHECK_LAUNCH("binary_scalar_kernel");
    return LN_OK;
}
