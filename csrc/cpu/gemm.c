/* Matrix products through OpenBLAS. */
#include <cblas.h>

#include "../ops_ref.h"
#include "../status.h"
#include "cpu.h"

int ln_cpu_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_gemm(ctx, dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b,
                           ldb, beta, c, ldc);
    if (m == 0 || n == 0)
        return LN_OK;
    if (k == 0) {
        /* BLAS leaves C scaled by beta; with beta == 0 it must be zeroed. */
        float *C = c;
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                C[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
        return LN_OK;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb,
                beta, c, ldc);
    return LN_OK;
}
