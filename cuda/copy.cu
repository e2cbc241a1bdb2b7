/* Strided copies with dtype conversion, fills, and the data loader's row
 * gather. Conversions go through double exactly as the reference does
 * (ln_load_as_double, ln_store_from_double), so every dtype pair gives the
 * CPU's bits; equal dtypes copy bits. */
#include "kernels.cuh"

template <typename T>
__global__ void copy_bits_kernel(ln_strided dst, ln_strided src, int64_t n)
{
    LN_GRID_STRIDE(i, n)
    {
        ((T *)dst.data)[ln_strided_offset(dst, i)] =
            ((const T *)src.data)[ln_strided_offset(src, i)];
    }
}

__global__ void copy_convert_kernel(ln_strided dst, ln_strided src, int64_t n)
{
    LN_GRID_STRIDE(i, n)
    {
        double v = ln_dev_load(src.data, src.dtype, ln_strided_offset(src, i));
        ln_dev_store(dst.data, dst.dtype, ln_strided_offset(dst, i), v);
    }
}

__global__ void fill_kernel(ln_strided dst, double value, int64_t n)
{
    LN_GRID_STRIDE(i, n)
    {
        ln_dev_store(dst.data, dst.dtype, ln_strided_offset(dst, i), value);
    }
}

/* A contiguous view as one flat dimension: no index arithmetic per element. */
static ln_strided flattened(const ln_strided *s)
{
    ln_strided f = *s;
    if (ln_strided_is_contiguous(s)) {
        f.ndim = 1;
        f.shape[0] = ln_strided_numel(s);
        f.stride[0] = 1;
    }
    return f;
}

extern "C" int ln_cuda_copy(void *vctx, const ln_strided *dst, const ln_strided *src)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t n = ln_strided_numel(dst);
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    ln_strided d = flattened(dst), s = flattened(src);
    if (dst->dtype == src->dtype) {
        size_t size = ln_dtype_size(dst->dtype);
        if (d.ndim == 1 && s.ndim == 1 && d.stride[0] == 1 && s.stride[0] == 1) {
            if (d.data != s.data)
                LN_CUDA_CHECK(cudaMemcpyAsync(d.data, s.data, (size_t)n * size,
                                              cudaMemcpyDeviceToDevice, ctx->stream));
            return LN_OK;
        }
        if (size == 1)
            copy_bits_kernel<uint8_t><<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(d, s, n);
        else if (size == 2)
            copy_bits_kernel<uint16_t><<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(d, s, n);
        else
            copy_bits_kernel<uint32_t><<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(d, s, n);
        LN_CUDA_CHECK_LAUNCH("copy_bits_kernel");
        return LN_OK;
    }
    copy_convert_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(d, s, n);
    LN_CUDA_CHECK_LAUNCH("copy_convert_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_fill(void *vctx, const ln_strided *dst, double value)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t n = ln_strided_numel(dst);
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    fill_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(flattened(dst), value, n);
    LN_CUDA_CHECK_LAUNCH("fill_kernel");
    return LN_OK;
}

/* dst[r, e] = src[indices[r], e], divided in float32 as ToTensor does. */
__global__ void gather_rows_kernel(ln_dtype src_dtype, const void *src, ln_dtype dst_dtype,
                                   void *dst, int64_t row_elems, const int32_t *indices,
                                   int64_t total, int64_t src_rows, double divisor)
{
    LN_GRID_STRIDE(i, total)
    {
        int64_t r = i / row_elems, e = i % row_elems;
        int32_t row = indices[r];
        if (row < 0 || row >= src_rows) { /* never read outside src */
            ln_dev_store(dst, dst_dtype, i, 0.0);
            continue;
        }
        double v = ln_dev_load(src, src_dtype, (int64_t)row * row_elems + e);
        if (divisor != 1.0)
            v = (float)v / (float)divisor;
        ln_dev_store(dst, dst_dtype, i, v);
    }
}

extern "C" int ln_cuda_gather_rows(void *vctx, ln_dtype src_dtype, const void *src,
                                   ln_dtype dst_dtype, void *dst, int64_t row_elems,
                                   const int32_t *indices, int64_t n, int64_t src_rows, double divisor)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = n * row_elems;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    gather_rows_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(
        src_dtype, src, dst_dtype, dst, row_elems, indices, total, src_rows, divisor);
    LN_CUDA_CHECK_LAUNCH("gather_rows_kernel");
    return LN_OK;
}
