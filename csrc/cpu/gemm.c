/* Matrix products through OpenBLAS, threaded by us.
 *
 * The thread model of the CPU backend: every parallel loop runs on its own
 * thread pool (threads.c), and OpenBLAS always runs single-threaded inside
 * them (cpu_open sets it to one thread). Two pools on two cores otherwise
 * take turns spinning against each other; with one, a large product is cut
 * into blocks of rows or columns of C, each an independent single-threaded
 * sgemm. OpenBLAS's pthread build serves concurrent callers safely when it
 * runs single-threaded: each call works in its own buffer. */
#include <cblas.h>

#include "../ops_ref.h"
#include "../precision.h"
#include "../status.h"
#include "cpu.h"

/* The narrowest block of C worth a call. */
#define GEMM_MIN_BLOCK 128

static void sgemm_serial(int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float *a, int lda, const float *b, int ldb, float beta,
                         float *c, int ldc)
{
    if (m == 0 || n == 0)
        return;
    if (k == 0) {
        /* BLAS leaves C scaled by beta; with beta == 0 it must be zeroed. */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta,
                c, ldc);
}

typedef struct gemm_job {
    int trans_a, trans_b, m, n, k, lda, ldb, ldc, split_rows, block, extent;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_job;

static void gemm_block(void *p, int64_t t, int thread)
{
    (void)thread;
    const gemm_job *j = p;
    int lo = (int)t * j->block, hi = lo + j->block < j->extent ? lo + j->block : j->extent;
    if (j->split_rows)
        /* rows lo..hi of op(A): rows of A, or columns when transposed */
        sgemm_serial(j->trans_a, j->trans_b, hi - lo, j->n, j->k, j->alpha,
                     j->a + (j->trans_a ? (size_t)lo : (size_t)lo * j->lda), j->lda, j->b, j->ldb,
                     j->beta, j->c + (size_t)lo * j->ldc, j->ldc);
    else
        /* columns lo..hi of op(B): columns of B, or rows when transposed */
        sgemm_serial(j->trans_a, j->trans_b, j->m, hi - lo, j->k, j->alpha, j->a, j->lda,
                     j->b + (j->trans_b ? (size_t)lo * j->ldb : (size_t)lo), j->ldb, j->beta,
                     j->c + lo, j->ldc);
}

/* C = alpha op(A) op(B) + beta C in float32, split across the context's
 * threads; never call it from inside a parallel region. */
static void sgemm_split(ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                        float alpha, const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc)
{
    int threads = ln_cpu_threads_for_macs(ctx, (int64_t)m * n * k);
    if (threads <= 1) {
        sgemm_serial(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* One block of C per thread, along the longer side, in multiples of 16:
     * every block packs the other operand again, and OpenBLAS's own blocking
     * suffers on narrow blocks (fc1 on a quiet machine, 2 threads: 3.7 / 3.6
     * / 3.3 ms for its three products with 1 block per thread, 6.3 / 5.8 /
     * 5.9 ms with 4). A thread that loses its core still holds up nobody for
     * long: the other one sleeps while it waits (threads.c) and frees its core. */
    int split_rows = m > n, extent = split_rows ? m : n;
    int block = (extent + threads - 1) / threads;
    block = (block + 15) & ~15;
    if (block < GEMM_MIN_BLOCK)
        block = GEMM_MIN_BLOCK;
    gemm_job job = {trans_a, trans_b, m, n, k, lda, ldb, ldc, split_rows, block, extent,
                    alpha, beta, a, b, c};
    ln_cpu_parallel(ctx, threads, (extent + block - 1) / block, gemm_block, &job);
}

int ln_cpu_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_gemm(ctx, dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b,
                           ldb, beta, c, ldc);
    /* lunet.autocast("bfloat16"): bf16 products where the level has them and
     * the product is big enough to gain from them (packing costs a pass) */
    ln_cpu_context *cctx = ctx;
    if (cctx->kernels->gemm_bf16 && ln_precision_get() == LN_PRECISION_BFLOAT16
        && (int64_t)m * n * k >= LN_CPU_PARALLEL_MIN_MACS)
        return cctx->kernels->gemm_bf16(cctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                        beta, c, ldc);
    if (cctx->own_gemm && cctx->kernels->gemm_f32
        && (int64_t)m * n * k >= LN_CPU_PARALLEL_MIN_MACS) {
        int st = cctx->kernels->gemm_f32(cctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb,
                                         beta, c, ldc);
        if (st != LN_ENOTSUP)
            return st;
    }
    sgemm_split(ctx, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return LN_OK;
}
