/* bfloat16 products with float32 accumulation (lunet.autocast("bfloat16")),
 * for CPUs with AVX512-BF16 (Cooper Lake, Zen 4): vdpbf16ps multiplies 16
 * pairs of bf16 values and adds both products of each pair to a float32
 * lane, twice the multiply-adds of vfmadd231ps per instruction. Operands are
 * rounded to bf16 (round to nearest even) just before a product; what is
 * stored stays float32 (parameters, gradients, activations).
 *
 * Layout: a product C[m, n] (+)= A[m, depth] B[depth, n] takes A with the
 * pairs of each row adjacent (a row of bf16 values, depth even) and B
 * "pair-interleaved": row p of B holds, for every column j, B[2p][j] then
 * B[2p+1][j] (one 32-bit word per column), so one 512-bit load gives 16
 * columns' pairs and one 32-bit broadcast gives a row of A's pair. Compiled
 * into the avx512bf16 level only (cpu.h, kernels.c). */
#include <string.h>

#include "../status.h"
#include "cpu.h"

#ifdef LN_CPU_AVX512BF16
#include <immintrin.h>

void ln_cpu_bf16_round(uint16_t *dst, const float *src, int64_t n)
{
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        __m256i v = (__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
        _mm256_mask_storeu_epi16(dst + i, m, v);
    }
}

void ln_cpu_bf16_pair_rows(uint32_t *dst, const float *src, int64_t rows, int64_t n,
                           int64_t ld)
{
    for (int64_t p = 0; 2 * p < rows; p++) {
        const float *r0 = src + 2 * p * ld, *r1 = 2 * p + 1 < rows ? r0 + ld : NULL;
        uint32_t *out = dst + p * n;
        int64_t j = 0;
        for (; j + 16 <= n; j += 16) {
            __m512 lo = _mm512_loadu_ps(r0 + j);
            __m512 hi = r1 ? _mm512_loadu_ps(r1 + j) : _mm512_setzero_ps();
            /* cvtne2ps puts its second operand in the even (low) halves */
            __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
            /* [lo0..lo15 | hi0..hi15] as words -> lo0 hi0 lo1 hi1 ... */
            const __m512i order = _mm512_set_epi16(
                31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,
                20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
            _mm512_storeu_si512(out + j, _mm512_permutexvar_epi16(order, both));
        }
        for (; j < n; j++) {
            uint16_t pair[2];
            float v[2] = {r0[j], r1 ? r1[j] : 0.0f};
            ln_cpu_bf16_round(pair, v, 2);
            out[j] = (uint32_t)pair[0] | (uint32_t)pair[1] << 16;
        }
    }
}

/* C[rows, 16 * vecs] (+)= A B over `pairs` pairs of depth: the 12 x 32 tile
 * of small_gemm.c with vdpbf16ps. */
static inline __attribute__((always_inline)) void tile_bf16(
    int rows, int vecs, __mmask16 last, int pairs, const uint32_t *a, int64_t a_row,
    int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    __m512 acc0[12], acc1[12];
    __mmask16 m0 = vecs > 1 ? (__mmask16)0xFFFF : last;
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
        acc0[i] = accumulate ? _mm512_maskz_loadu_ps(m0, c + i * ldc) : _mm512_setzero_ps();
        acc1[i] = accumulate && vecs > 1 ? _mm512_maskz_loadu_ps(last, c + i * ldc + 16)
                                         : _mm512_setzero_ps();
    }
    for (int p = 0; p < pairs; p++) {
        __m512bh b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, b);
        __m512bh b1 = vecs > 1 ? (__m512bh)_mm512_maskz_loadu_epi32(last, b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < rows; i++) {
            __m512bh av = (__m512bh)_mm512_set1_epi32((int)a[i * a_row]);
            acc0[i] = _mm512_dpbf16_ps(acc0[i], av, b0);
            if (vecs > 1)
                acc1[i] = _mm512_dpbf16_ps(acc1[i], av, b1);
        }
        a += a_col;
        b += ldb;
    }
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc0[i]);
        if (vecs > 1)
            _mm512_mask_storeu_ps(c + i * ldc + 16, last, acc1[i]);
    }
}

static void tile_rows_bf16(int rows, int vecs, __mmask16 last, int pairs, const uint32_t *a,
                           int64_t a_row, int64_t a_col, const uint32_t *b, int64_t ldb, float *c,
                           int64_t ldc, int accumulate)
{
#define ROWS_CASE(r)                                                                 \
    case r:                                                                          \
        if (vecs > 1)                                                                \
            tile_bf16(r, 2, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate);      \
        else                                                                         \
            tile_bf16(r, 1, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate);      \
        break;
    switch (rows) {
        ROWS_CASE(12) ROWS_CASE(11) ROWS_CASE(10) ROWS_CASE(9) ROWS_CASE(8) ROWS_CASE(7)
        ROWS_CASE(6) ROWS_CASE(5) ROWS_CASE(4) ROWS_CASE(3) ROWS_CASE(2)
    default:
        tile_bf16(1, vecs > 1 ? 2 : 1, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate);
    }
#undef ROWS_CASE
}

/* Any n (a last column block of 1..32 through masks), A's pairs at
 * a[i * a_row + p * a_col]. */
static void gemm_tiles_bf16(int m, int n, int pairs, const uint32_t *a, int64_t a_row,
                            int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                            int accumulate)
{
    for (int i = 0; i < m; i += 12) {
        int rows = m - i < 12 ? m - i : 12;
        for (int j = 0; j < n; j += 32) {
            int width = n - j < 32 ? n - j : 32;
            int vecs = width > 16 ? 2 : 1, tail = width - 16 * (vecs - 1);
            __mmask16 last = (__mmask16)(tail >= 16 ? 0xFFFF : (1u << tail) - 1);
            tile_rows_bf16(rows, vecs, last, pairs, a + i * a_row, a_row, a_col, b + j, ldb,
                           c + i * ldc + j, ldc, accumulate);
        }
    }
}

void ln_cpu_gemm_tiles_bf16(int m, int n, int pairs, const uint32_t *a, int64_t a_row,
                            int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                            int accumulate)
{
    gemm_tiles_bf16(m, n, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate);
}

/* --- general products for matrix multiplies (Linear, lunet.matmul) ---------------
 * C = alpha op(A) op(B) + beta C is computed as P = R Q with R's pairs along
 * its rows and Q paired by rows (see the top):
 *  - op(B) = B [k, n]: R = op(A) (A's rows rounded, or A [k, m] paired by
 *    rows and read down its columns), Q = B paired by rows, P = C;
 *  - op(B) = B^T, B [n, k]: P = C^T = B op(A)^T, R = B's rows rounded,
 *    Q = op(A)^T paired by rows (A [m, k]: its rows rounded and the pairs
 *    transposed; A [k, m]: paired by rows), written back transposed.
 * The rows of P are shared out among the threads in blocks of 12 * 4. */

typedef struct round_rows_job {
    const float *src;
    int64_t ld, cols, pairs;
    uint32_t *dst;
} round_rows_job;

/* rows of src [.., cols] to rows of `pairs` bf16 pairs (an odd last column
 * paired with zero) */
static void round_rows(void *p, int64_t lo, int64_t hi)
{
    const round_rows_job *j = p;
    for (int64_t r = lo; r < hi; r++) {
        uint16_t *out = (uint16_t *)(j->dst + r * j->pairs);
        ln_cpu_bf16_round(out, j->src + r * j->ld, j->cols);
        if (j->cols & 1)
            out[j->cols] = 0;
    }
}

typedef struct pair_rows_job {
    const float *src;
    int64_t rows, cols, ld;
    uint32_t *dst;
} pair_rows_job;

static void pair_rows_range(void *p, int64_t lo, int64_t hi)
{
    const pair_rows_job *j = p;
    /* lo, hi count pairs of rows */
    int64_t rows = 2 * hi < j->rows ? 2 * hi : j->rows;
    ln_cpu_bf16_pair_rows(j->dst + lo * j->cols, j->src + 2 * lo * j->ld, rows - 2 * lo, j->cols,
                          j->ld);
}

typedef struct product_job {
    int rows, cols, pairs;
    const uint32_t *r, *q;
    int64_t r_row, r_col;
    float *p;
    int64_t ldp;
    int accumulate;
} product_job;

#define ROWS_PER_TASK 48

/* Pairs of depth per pass over a task's rows: a 32-column strip of Q
 * (DEPTH_BLOCK x 32 words, 48 KB) stays in L1/L2 while the task's row blocks
 * use it, and R's rows (48 x DEPTH_BLOCK words) stay in L2. */
#define DEPTH_BLOCK 384

static void product_rows(void *arg, int64_t t, int thread)
{
    (void)thread;
    const product_job *j = arg;
    int lo = (int)t * ROWS_PER_TASK, hi = lo + ROWS_PER_TASK < j->rows ? lo + ROWS_PER_TASK : j->rows;
    for (int d = 0; d < j->pairs; d += DEPTH_BLOCK) {
        int depth = j->pairs - d < DEPTH_BLOCK ? j->pairs - d : DEPTH_BLOCK;
        for (int c0 = 0; c0 < j->cols; c0 += 32) {
            int width = j->cols - c0 < 32 ? j->cols - c0 : 32;
            for (int i = lo; i < hi; i += 12) {
                int rows = hi - i < 12 ? hi - i : 12;
                gemm_tiles_bf16(rows, width, depth, j->r + i * j->r_row + d * j->r_col, j->r_row,
                                j->r_col, j->q + (int64_t)d * j->cols + c0, j->cols,
                                j->p + (int64_t)i * j->ldp + c0, j->ldp, d > 0 || j->accumulate);
            }
        }
    }
}

static int parallel_tasks(ln_cpu_context *ctx, int64_t macs, int64_t items)
{
    int t = ln_cpu_threads_for_macs(ctx, macs);
    return t < items ? t : (int)items;
}

/* The packing passes: range tasks over n rows (or row pairs) of `width`
 * floats each, in a few pieces per thread when the data is worth a second
 * thread (ln_cpu_parallel_range splits by its count, and packing a few
 * hundred long rows counts as little). */
typedef struct rows_job {
    ln_cpu_range_task task;
    void *arg;
    int64_t n;
    int pieces;
} rows_job;

static void rows_piece(void *p, int64_t i, int thread)
{
    (void)thread;
    const rows_job *j = p;
    j->task(j->arg, j->n * i / j->pieces, j->n * (i + 1) / j->pieces);
}

static void run_rows(ln_cpu_context *ctx, int64_t width, int64_t n, ln_cpu_range_task task,
                     void *arg)
{
    int threads = ln_cpu_threads_for(ctx, n * width);
    int pieces = threads > 1 ? 4 * threads : 1;
    if (pieces > n)
        pieces = (int)n;
    if (pieces <= 1) {
        task(arg, 0, n);
        return;
    }
    rows_job job = {task, arg, n, pieces};
    ln_cpu_parallel(ctx, threads, pieces, rows_piece, &job);
}

int ln_cpu_gemm_bf16(ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc)
{
    int64_t pairs = (k + 1) / 2;
    int64_t macs = (int64_t)m * n * k;
    int prows = trans_b ? n : m, pcols = trans_b ? m : n;
    /* P goes straight into C when it is C (not C^T) and alpha, beta allow */
    int direct = !trans_b && alpha == 1.0f && (beta == 0.0f || beta == 1.0f);
    int64_t r_words = (int64_t)prows * pairs, q_words = pairs * pcols;
    int64_t p_floats = direct ? 0 : (int64_t)prows * pcols;
    int64_t extra = !trans_a && trans_b ? (int64_t)m * pairs : 0; /* A's rounded rows */
    uint32_t *r = ln_cpu_scratch(ctx, (size_t)(r_words + q_words + p_floats + extra) * 4);
    if (!r)
        return LN_ENOMEM;
    uint32_t *q = r + r_words;
    float *pbuf = direct ? c : (float *)(q + q_words);
    int64_t r_row = pairs, r_col = 1;
    if (!trans_b) {
        if (!trans_a) {
            round_rows_job rj = {a, lda, k, pairs, r};
            run_rows(ctx, k, m, round_rows, &rj);
        } else {
            pair_rows_job pj = {a, k, m, lda, r};
            run_rows(ctx, 2 * (int64_t)m, pairs, pair_rows_range, &pj);
            r_row = 1;
            r_col = m;
        }
        pair_rows_job qj = {b, k, n, ldb, q};
        run_rows(ctx, 2 * (int64_t)n, pairs, pair_rows_range, &qj);
    } else {
        round_rows_job rj = {b, ldb, k, pairs, r};
        run_rows(ctx, k, n, round_rows, &rj);
        if (trans_a) {
            pair_rows_job qj = {a, k, m, lda, q};
            run_rows(ctx, 2 * (int64_t)m, pairs, pair_rows_range, &qj);
        } else {
            /* A's rows rounded, then the [m, pairs] words transposed */
            uint32_t *rounded = (uint32_t *)(pbuf + p_floats);
            round_rows_job aj = {a, lda, k, pairs, rounded};
            run_rows(ctx, k, m, round_rows, &aj);
            for (int64_t i0 = 0; i0 < m; i0 += 16)
                for (int64_t p = 0; p < pairs; p++)
                    for (int64_t i = i0; i < m && i < i0 + 16; i++)
                        q[p * m + i] = rounded[i * pairs + p];
        }
    }
    int64_t ldp = direct ? ldc : pcols;
    product_job job = {prows, pcols, (int)pairs, r, q, r_row, r_col, pbuf, ldp,
                       direct && beta == 1.0f};
    int64_t tasks = (prows + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
    ln_cpu_parallel(ctx, parallel_tasks(ctx, macs, tasks), tasks, product_rows, &job);
    if (direct)
        return LN_OK;
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float v = trans_b ? pbuf[(int64_t)j * m + i] : pbuf[(int64_t)i * n + j];
            float *out = c + (int64_t)i * ldc + j;
            *out = beta == 0.0f ? alpha * v : alpha * v + beta * *out;
        }
    return LN_OK;
}
#endif
