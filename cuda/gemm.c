/* Row-major GEMM on cuBLAS (which is column-major).
 *
 * A row-major matrix is its transpose in column-major order, so
 * C = op(A) op(B) (row-major) is computed as C^T = op(B)^T op(A)^T, i.e.
 * cuBLAS's gemm with the operands swapped and m and n exchanged; the leading
 * dimensions carry over unchanged. float32 computes in float32 without TF32
 * unless lunet.cuda.set_tf32(true); float16 and bfloat16 accumulate in float32. */
#include "context.h"

int ln_cuda_gemm(void *vctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n, int k,
                 float alpha, const void *a, int lda, const void *b, int ldb, float beta,
                 void *c, int ldc)
{
    ln_cuda_context *ctx = vctx;
    cudaDataType type;
    switch (dtype) {
    case LN_FLOAT32: type = CUDA_R_32F; break;
    case LN_FLOAT16: type = CUDA_R_16F; break;
    case LN_BFLOAT16: type = CUDA_R_16BF; break;
    default: return ln_cuda_unsupported_dtype("gemm", dtype);
    }
    if (m == 0 || n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    if (k == 0 && beta == 0.0f) {
        /* no products: C = 0 without reading it (it may hold NaN), as BLAS
         * defines it; cuBLAS is not relied on for the empty inner dimension */
        size_t elem = ln_dtype_size(dtype);
        LN_CUDA_CHECK(cudaMemset2DAsync(c, (size_t)ldc * elem, 0, (size_t)n * elem, (size_t)m,
                                        ctx->stream));
        return LN_OK;
    }
    int tf32 = ln_cuda_get_tf32();
    if (ctx->cublas_tf32 != tf32) {
        LN_CUBLAS_CHECK(cublasSetMathMode(ctx->cublas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH
                                                            : CUBLAS_DEFAULT_MATH));
        ctx->cublas_tf32 = tf32;
    }
    cublasComputeType_t compute = dtype == LN_FLOAT32 && tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                              : CUBLAS_COMPUTE_32F;
    LN_CUBLAS_CHECK(cublasGemmEx(ctx->cublas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                                 trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, type,
                                 ldb, a, type, lda, &beta, c, type, ldc, compute,
                                 CUBLAS_GEMM_DEFAULT));
    return LN_OK;
}
