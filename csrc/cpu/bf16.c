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

#include "simd.h"

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
            /* the rows two pairs on: short row pieces (a task's columns)
             * 25 KB apart are more than the hardware prefetchers follow */
            if (2 * p + 5 < rows) {
                _mm_prefetch((const char *)(r0 + 4 * ld + j), _MM_HINT_T0);
                _mm_prefetch((const char *)(r0 + 5 * ld + j), _MM_HINT_T0);
            }
            __m512 lo = _mm512_loadu_ps(r0 + j);
            __m512 hi = r1 ? _mm512_loadu_ps(r1 + j) : _mm512_setzero_ps();
            _mm512_storeu_si512(out + j, ln_bf16_interleave(lo, hi));
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
 * of small_gemm.c with vdpbf16ps (pf: NULL, or lines to fetch on the way). */
static inline __attribute__((always_inline)) void tile_bf16(
    int rows, int vecs, __mmask16 last, int pairs, const uint32_t *a, int64_t a_row,
    int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc, int accumulate,
    ln_fetch_cursor *pf)
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
        if (pf)
            ln_fetch_step(pf);
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
                           int64_t ldc, int accumulate, ln_fetch_cursor *pf)
{
#define ROWS_CASE(r)                                                                 \
    case r:                                                                          \
        if (vecs > 1)                                                                \
            tile_bf16(r, 2, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate, pf);  \
        else                                                                         \
            tile_bf16(r, 1, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate, pf);  \
        break;
    switch (rows) {
        ROWS_CASE(12) ROWS_CASE(11) ROWS_CASE(10) ROWS_CASE(9) ROWS_CASE(8) ROWS_CASE(7)
        ROWS_CASE(6) ROWS_CASE(5) ROWS_CASE(4) ROWS_CASE(3) ROWS_CASE(2)
    default:
        tile_bf16(1, vecs > 1 ? 2 : 1, last, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate,
                  pf);
    }
#undef ROWS_CASE
}

/* Any n (a last column block of 1..32 through masks), A's pairs at
 * a[i * a_row + p * a_col]. */
static void gemm_tiles_bf16(int m, int n, int pairs, const uint32_t *a, int64_t a_row,
                            int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                            int accumulate, ln_fetch_cursor *pf, int fetch_c)
{
    for (int i = 0; i < m; i += 12) {
        int rows = m - i < 12 ? m - i : 12;
        for (int j = 0; j < n; j += 32) {
            int width = n - j < 32 ? n - j : 32;
            int vecs = width > 16 ? 2 : 1, tail = width - 16 * (vecs - 1);
            __mmask16 last = (__mmask16)(tail >= 16 ? 0xFFFF : (1u << tail) - 1);
            /* nothing else to fetch: the next tile's C (its rows are far apart) */
            ln_fetch_cursor next = {0};
            if (!pf && fetch_c) {
                int ni = j + 32 < n ? i : i + 12, nj = j + 32 < n ? j + 32 : 0;
                if (ni < m)
                    next = ln_fetch_rows(c + (int64_t)ni * ldc + nj, ldc, m - ni < 12 ? m - ni : 12,
                                         n - nj < 32 ? n - nj : 32);
            }
            tile_rows_bf16(rows, vecs, last, pairs, a + i * a_row, a_row, a_col, b + j, ldb,
                           c + i * ldc + j, ldc, accumulate, pf ? pf : next.rows ? &next : NULL);
        }
    }
}

void ln_cpu_gemm_tiles_bf16(int m, int n, int pairs, const uint32_t *a, int64_t a_row,
                            int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                            int accumulate, const void *fetch, int64_t fetch_bytes)
{
    /* one line of `fetch` a step of the tiles, as far as they go */
    ln_fetch_cursor pf = ln_fetch_region(fetch, fetch_bytes);
    gemm_tiles_bf16(m, n, pairs, a, a_row, a_col, b, ldb, c, ldc, accumulate, pf.rows ? &pf : NULL,
                    0);
}

/* --- general products for matrix multiplies (Linear, lunet.matmul) ---------------
 * C = alpha op(A) op(B) + beta C is computed as P = R Q with R's pairs along
 * its rows and Q paired by rows (see the top):
 *  - op(B) = B [k, n]: R = op(A) (A's rows rounded, or A [k, m] paired by
 *    rows and read down its columns), Q = B paired by rows, P = C;
 *  - op(B) = B^T, B [n, k]: P = C^T = B op(A)^T, R = B's rows rounded,
 *    Q = op(A)^T paired by rows (A [m, k]: its rows rounded and the pairs
 *    transposed; A [k, m]: paired by rows), written back transposed.
 * P is cut into tasks of row chunks x column chunks. Where P has one column
 * chunk (Linear's forward: P = W x^T, 64 columns) each task rounds its own
 * rows of R, and where it has one row chunk (Linear's input gradient: dx =
 * dy W, 64 rows) each task pairs its own columns of Q, into the thread's
 * buffer, depth block by depth block: the weight is read once, as float32,
 * and its bf16 copy never leaves the cache (rounding all of it first wrote
 * and read back 6.4 MB per product of fc1, ~1.3 ms of its 3.5). The other
 * operand, and both in the other cases, is converted once up front. */

/* Pairs of depth per pass over a task: a 32-column strip of Q (DEPTH_BLOCK x
 * 32 words, 48 KB) and a task's rows of R (48 x DEPTH_BLOCK words) stay in
 * L2 while the task's tiles use them. */
#define DEPTH_BLOCK 384
/* P's rows per task, unless all of them (up to FEW_ROWS) make one chunk; P's
 * columns per task: all of them up to FEW_COLS, else WIDE_CHUNK. */
#define ROW_CHUNK 48
#define FEW_ROWS 96
#define FEW_COLS 128
#define WIDE_CHUNK 512
/* A task that rounds its rows of R holds them whole (row_chunk x pairs
 * words): at most this many words, and at least 12 rows. */
#define FUSED_ROWS_WORDS 98304
/* A task that pairs its columns of Q does so Q_PIECE columns at a time. */
#define Q_PIECE 128

typedef struct product_job {
    int rows, cols, pairs, depth; /* P [rows, cols]; `depth` floats make `pairs` pairs */
    /* R: the word of row i, pair p at r[i * r_row + p * r_col]; or, with
     * r_src, the rows of a float32 matrix (stride r_ld) rounded by the tasks */
    const uint32_t *r;
    int64_t r_row, r_col;
    const float *r_src;
    int64_t r_ld;
    /* Q: paired rows of `cols` words; or, with q_src, the rows of a float32
     * matrix [depth, cols] (stride q_ld) paired by the tasks */
    const uint32_t *q;
    const float *q_src;
    int64_t q_ld;
    float *p;
    int64_t ldp;
    int accumulate;
    int row_chunk, col_chunk, col_chunks;
    uint32_t *buffers; /* per thread, buffer_words each */
    int64_t buffer_words;
} product_job;

/* The floats of depth block d: 2 * DEPTH_BLOCK, fewer in the last. */
static int block_floats(const product_job *j, int d)
{
    int depth = j->pairs - d < DEPTH_BLOCK ? j->pairs - d : DEPTH_BLOCK;
    return j->depth - 2 * d < 2 * depth ? j->depth - 2 * d : 2 * depth;
}

/* Depth block d of the task's rows of R (from row i_lo, nrows of them),
 * rounded into the task's buffer at the block's place in whole rows. */
static void round_block(const product_job *j, int i_lo, int nrows, int d, uint32_t *rbuf)
{
    int floats = block_floats(j, d);
    for (int i = 0; i < nrows; i++) {
        uint16_t *out = (uint16_t *)(rbuf + (int64_t)i * j->pairs + d);
        ln_cpu_bf16_round(out, j->r_src + (i_lo + i) * j->r_ld + 2 * d, floats);
        if (floats & 1)
            out[floats] = 0;
    }
}

/* One task: P's rows [i_lo, +row_chunk) x columns [c_lo, +col_chunk), depth
 * block by depth block, and within a block, when the task pairs Q itself,
 * column piece by piece (Q_PIECE columns). The piece or block converted next
 * is fetched while the current one's tiles run. */
static void product_task(void *arg, int64_t t, int thread)
{
    const product_job *j = arg;
    int i_lo = (int)(t / j->col_chunks) * j->row_chunk;
    int c_lo = (int)(t % j->col_chunks) * j->col_chunk;
    int nrows = j->rows - i_lo < j->row_chunk ? j->rows - i_lo : j->row_chunk;
    int ncols = j->cols - c_lo < j->col_chunk ? j->cols - c_lo : j->col_chunk;
    uint32_t *rbuf = j->buffers + thread * j->buffer_words;
    uint32_t *qbuf = rbuf + (j->r_src ? (int64_t)j->row_chunk * j->pairs : 0);
    int piece = j->q_src ? Q_PIECE : ncols;
    if (j->r_src)
        round_block(j, i_lo, nrows, 0, rbuf);
    if (j->q_src)
        ln_cpu_bf16_pair_rows(qbuf, j->q_src + c_lo, block_floats(j, 0),
                              ncols < piece ? ncols : piece, j->q_ld);
    for (int d = 0; d < j->pairs; d += DEPTH_BLOCK) {
        int depth = j->pairs - d < DEPTH_BLOCK ? j->pairs - d : DEPTH_BLOCK;
        const uint32_t *r = (j->r_src ? rbuf : j->r + i_lo * j->r_row) + (int64_t)d * j->r_col;
        for (int c0 = 0; c0 < ncols; c0 += piece) {
            int width = ncols - c0 < piece ? ncols - c0 : piece;
            /* what comes next: the next piece of Q, or the next depth block */
            int next_c0 = c0 + piece < ncols ? c0 + piece : 0;
            int next_d = next_c0 ? d : d + DEPTH_BLOCK;
            int more = next_d < j->pairs;
            int next_width = ncols - next_c0 < piece ? ncols - next_c0 : piece;
            ln_fetch_cursor pf = {0};
            if (more && j->q_src)
                pf = ln_fetch_rows(j->q_src + 2 * (int64_t)next_d * j->q_ld + c_lo + next_c0, j->q_ld,
                            block_floats(j, next_d), next_width);
            else if (more && j->r_src && next_d != d)
                pf = ln_fetch_rows(j->r_src + i_lo * j->r_ld + 2 * next_d, j->r_ld, nrows,
                            block_floats(j, next_d));
            const uint32_t *q = j->q + (int64_t)d * j->cols + c_lo + c0;
            int64_t ldq = j->cols;
            if (j->q_src) {
                q = qbuf;
                ldq = width;
            }
            gemm_tiles_bf16(nrows, width, depth, r, j->r_row, j->r_col, q, ldq,
                            j->p + (int64_t)i_lo * j->ldp + c_lo + c0, j->ldp,
                            d > 0 || j->accumulate, pf.rows ? &pf : NULL, 1);
            if (more && j->q_src)
                ln_cpu_bf16_pair_rows(qbuf, j->q_src + 2 * (int64_t)next_d * j->q_ld + c_lo + next_c0,
                                      block_floats(j, next_d), next_width, j->q_ld);
            if (more && j->r_src && next_d != d)
                round_block(j, i_lo, nrows, next_d, rbuf);
        }
    }
}

/* The conversion passes up front: range tasks over n rows (or row pairs) of
 * `width` floats each, in a few pieces per thread when the data is worth a
 * second thread (ln_cpu_parallel_range splits by its count, and converting a
 * few hundred long rows counts as little). */
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
        if (n > 0)
            task(arg, 0, n);
        return;
    }
    rows_job job = {task, arg, n, pieces};
    ln_cpu_parallel(ctx, threads, pieces, rows_piece, &job);
}

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

/* A [m, k] to the transpose of its pairs: dst[p * m + i] = the pair (A[i][2p],
 * A[i][2p + 1]), through A's rounded rows. */
typedef struct transpose_pairs_job {
    const uint32_t *rounded; /* [m, pairs] words */
    int64_t m, pairs;
    uint32_t *dst;
} transpose_pairs_job;

static void transpose_pairs(void *p, int64_t lo, int64_t hi)
{
    const transpose_pairs_job *j = p;
    /* lo, hi count pairs */
    ln_transpose_words(j->rounded + lo, j->pairs, j->dst + lo * j->m, j->m, j->m, hi - lo);
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

    /* the task grid, and which operand the tasks convert themselves */
    int one_col_chunk = pcols <= FEW_COLS;
    /* R is rows of a float32 matrix rounded unless it is A [k, m] read down its columns */
    int fuse_r = one_col_chunk && (trans_b || !trans_a) && pairs <= FUSED_ROWS_WORDS / 12;
    int row_chunk = prows <= FEW_ROWS && pcols > FEW_COLS ? prows : ROW_CHUNK;
    if (fuse_r) {
        row_chunk = (int)(FUSED_ROWS_WORDS / pairs) / 12 * 12;
        row_chunk = row_chunk > ROW_CHUNK ? ROW_CHUNK : row_chunk;
    }
    int col_chunk = one_col_chunk ? pcols : WIDE_CHUNK;
    int64_t row_chunks = (prows + row_chunk - 1) / row_chunk;
    int64_t col_chunks = (pcols + col_chunk - 1) / col_chunk;
    /* Q is a float32 matrix paired by rows unless it is A [m, k]'s pairs transposed */
    int fuse_q = row_chunks == 1 && (!trans_b || trans_a);
    int threads = ln_cpu_threads_for_macs(ctx, macs);
    if (threads > row_chunks * col_chunks)
        threads = (int)(row_chunks * col_chunks);
    int64_t buffer_words = (fuse_r ? (int64_t)row_chunk * pairs : 0)
                           + (fuse_q ? (int64_t)DEPTH_BLOCK * Q_PIECE : 0);
    buffer_words = (buffer_words + 15) & ~(int64_t)15;

    int64_t r_words = fuse_r ? 0 : (int64_t)prows * pairs;
    int64_t q_words = fuse_q ? 0 : pairs * pcols;
    int64_t p_floats = direct ? 0 : (int64_t)prows * pcols;
    int64_t extra = !fuse_q && !trans_a && trans_b ? (int64_t)m * pairs : 0; /* A's rounded rows */
    int64_t r_at = 0, q_at = r_at + ((r_words + 15) & ~15), p_at = q_at + ((q_words + 15) & ~15);
    int64_t extra_at = p_at + ((p_floats + 15) & ~15), buffers_at = extra_at + ((extra + 15) & ~15);
    uint32_t *ws = ln_cpu_scratch(ctx, (size_t)(buffers_at + threads * buffer_words) * 4);
    if (!ws)
        return LN_ENOMEM;
    product_job job = {.rows = prows, .cols = pcols, .pairs = (int)pairs, .depth = k,
                       .r = ws + r_at, .r_row = pairs, .r_col = 1,
                       .q = ws + q_at,
                       .p = direct ? c : (float *)(ws + p_at), .ldp = direct ? ldc : pcols,
                       .accumulate = direct && beta == 1.0f,
                       .row_chunk = row_chunk, .col_chunk = col_chunk, .col_chunks = (int)col_chunks,
                       .buffers = ws + buffers_at, .buffer_words = buffer_words};
    uint32_t *r = ws + r_at, *q = ws + q_at;
    /* R */
    const float *r_src = trans_b ? b : a;
    int64_t r_ld = trans_b ? ldb : lda;
    if (!trans_b && trans_a) {
        pair_rows_job pj = {a, k, m, lda, r};
        run_rows(ctx, 2 * (int64_t)m, pairs, pair_rows_range, &pj);
        job.r_row = 1;
        job.r_col = m;
    } else if (fuse_r) {
        job.r_src = r_src;
        job.r_ld = r_ld;
    } else {
        round_rows_job rj = {r_src, r_ld, k, pairs, r};
        run_rows(ctx, k, prows, round_rows, &rj);
    }
    /* Q */
    const float *q_src = trans_b ? a : b;
    int64_t q_ld = trans_b ? lda : ldb;
    if (trans_b && !trans_a) {
        uint32_t *rounded = ws + extra_at;
        round_rows_job aj = {a, lda, k, pairs, rounded};
        run_rows(ctx, k, m, round_rows, &aj);
        transpose_pairs_job tj = {rounded, m, pairs, q};
        run_rows(ctx, 2 * (int64_t)m, pairs, transpose_pairs, &tj);
    } else if (fuse_q) {
        job.q_src = q_src;
        job.q_ld = q_ld;
    } else {
        pair_rows_job qj = {q_src, k, pcols, q_ld, q};
        run_rows(ctx, 2 * (int64_t)pcols, pairs, pair_rows_range, &qj);
    }
    ln_cpu_parallel(ctx, threads, row_chunks * col_chunks, product_task, &job);
    if (direct)
        return LN_OK;
    const float *pbuf = job.p;
    if (trans_b && alpha == 1.0f && beta == 0.0f) { /* C = P^T: Linear's forward */
        ln_transpose(pbuf, m, c, ldc, n, m);
        return LN_OK;
    }
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float v = trans_b ? pbuf[(int64_t)j * m + i] : pbuf[(int64_t)i * n + j];
            float *out = c + (int64_t)i * ldc + j;
            *out = beta == 0.0f ? alpha * v : alpha * v + beta * *out;
        }
    return LN_OK;
}
#endif
