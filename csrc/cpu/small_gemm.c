/* Matrix products that read their operands in place, with a block of
 * results held in registers over the whole depth. Two uses:
 *  - convolutions with few kernel taps (the session's first layer: one input
 *    channel, 3x3, so 9 taps): BLAS packs both operands for every call and
 *    runs its kernel over a depth of 9, so it spends more time moving data
 *    than multiplying (4 x 24 tiles; 12 running dot products for the weight
 *    gradient);
 *  - Winograd's 16 small products per chunk of images (winograd.c), where
 *    packing and clearing C cost more than they gain (6 x 16 tiles).
 * Built with AVX2 + FMA only (LN_CPU_AVX2, cpu.h): elsewhere the convolutions
 * use BLAS for every shape. */
#include <string.h>

#include "../status.h"
#include "cpu.h"

#ifdef LN_CPU_AVX2
#include "simd.h"

/* C[rows, cols] = init + A[rows, depth] B[depth, cols] for rows <= 4 and
 * cols <= 24; inlined with constant `rows` so the accumulators live in
 * registers. A is addressed a[i * a_row + k * a_col] (either orientation). */
static inline __attribute__((always_inline)) void nn_tile(
    int rows, int cols, int depth, const float *a, int64_t a_row, int64_t a_col,
    const float *b, int64_t ldb, float *c, int64_t ldc, const float *init)
{
    __m256 acc[4][3];
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < 3; v++)
            acc[i][v] = init ? _mm256_set1_ps(init[i]) : _mm256_setzero_ps();
    /* two copies of the loop on purpose: a full block loads plainly, a last,
     * narrower one through masks; one loop choosing per load ran 1.6x slower */
    if (cols == 24) {
        for (int k = 0; k < depth; k++) {
            const float *bk = b + k * ldb;
            __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8),
                   b2 = _mm256_loadu_ps(bk + 16);
            for (int i = 0; i < rows; i++) {
                __m256 av = _mm256_broadcast_ss(a + i * a_row + k * a_col);
                acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
                acc[i][2] = _mm256_fmadd_ps(av, b2, acc[i][2]);
            }
        }
        for (int i = 0; i < rows; i++)
            for (int v = 0; v < 3; v++)
                _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
        return;
    }
    __m256i m0 = ln_lanes(cols), m1 = ln_lanes(cols - 8), m2 = ln_lanes(cols - 16);
    for (int k = 0; k < depth; k++) {
        const float *bk = b + k * ldb;
        __m256 b0 = _mm256_maskload_ps(bk, m0), b1 = _mm256_maskload_ps(bk + 8, m1),
               b2 = _mm256_maskload_ps(bk + 16, m2);
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * a_row + k * a_col);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
            acc[i][2] = _mm256_fmadd_ps(av, b2, acc[i][2]);
        }
    }
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < 3 && 8 * v < cols; v++)
            ln_store_first(c + i * ldc + 8 * v, acc[i][v], cols - 8 * v);
}

static void nn_rows(int rows, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                    const float *b, int64_t ldb, float *c, int64_t ldc, const float *init)
{
    for (int j = 0; j < n; j += 24) {
        int cols = n - j < 24 ? n - j : 24;
        if (rows == 4)
            nn_tile(4, cols, depth, a, a_row, a_col, b + j, ldb, c + j, ldc, init);
        else
            nn_tile(1, cols, depth, a, a_row, a_col, b + j, ldb, c + j, ldc, init);
    }
}

void ln_cpu_small_gemm(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, const float *init)
{
    int i = 0;
    for (; i + 4 <= m; i += 4)
        nn_rows(4, n, depth, a + i * a_row, a_row, a_col, b, ldb, c + i * ldc, ldc,
                init ? init + i : NULL);
    for (; i < m; i++)
        nn_rows(1, n, depth, a + i * a_row, a_row, a_col, b, ldb, c + i * ldc, ldc,
                init ? init + i : NULL);
}

static inline float horizontal_sum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* C[rows, cols] (+)= A[rows, len] B[cols, len]^T for rows <= 4, cols <= 3:
 * twelve running dot products of contiguous rows. */
static inline __attribute__((always_inline)) void dot_tile(
    int rows, int cols, int len, const float *a, int64_t lda, const float *b, int64_t ldb,
    float *c, int64_t ldc, int accumulate)
{
    __m256 acc[4][3];
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            acc[i][j] = _mm256_setzero_ps();
    int l = 0;
    for (; l + 8 <= len; l += 8) {
        __m256 bv[3];
        for (int j = 0; j < cols; j++)
            bv[j] = _mm256_loadu_ps(b + j * ldb + l);
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_loadu_ps(a + i * lda + l);
            for (int j = 0; j < cols; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    if (l < len) {
        __m256i m = ln_lanes(len - l);
        __m256 bv[3];
        for (int j = 0; j < cols; j++)
            bv[j] = _mm256_maskload_ps(b + j * ldb + l, m);
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_maskload_ps(a + i * lda + l, m);
            for (int j = 0; j < cols; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            float sum = horizontal_sum(acc[i][j]);
            c[i * ldc + j] = accumulate ? c[i * ldc + j] + sum : sum;
        }
}

static void dot_rows(int rows, int n, int len, const float *a, int64_t lda, const float *b,
                     int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    int j = 0;
    for (; j + 3 <= n; j += 3)
        if (rows == 4)
            dot_tile(4, 3, len, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
        else
            dot_tile(1, 3, len, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
    for (; j < n; j++)
        if (rows == 4)
            dot_tile(4, 1, len, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
        else
            dot_tile(1, 1, len, a, lda, b + j * ldb, ldb, c + j, ldc, accumulate);
}

void ln_cpu_small_dot_gemm(int m, int n, int len, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    int i = 0;
    for (; i + 4 <= m; i += 4)
        dot_rows(4, n, len, a + i * lda, lda, b, ldb, c + i * ldc, ldc, accumulate);
    for (; i < m; i++)
        dot_rows(1, n, len, a + i * lda, lda, b, ldb, c + i * ldc, ldc, accumulate);
}


/* C[rows, 8 * vecs] (+)= A B for rows <= 6 and vecs <= 2: twelve running
 * sums in registers over the whole depth; inlined with constant sizes. */
static inline __attribute__((always_inline)) void tile_6x16(
    int rows, int vecs, int depth, const float *a, int64_t a_row, int64_t a_col,
    const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate)
{
    __m256 acc[6][2];
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vecs; v++)
            acc[i][v] = accumulate ? _mm256_loadu_ps(c + i * ldc + 8 * v) : _mm256_setzero_ps();
    for (int k = 0; k < depth; k++) {
        __m256 b0 = _mm256_loadu_ps(b), b1 = vecs > 1 ? _mm256_loadu_ps(b + 8) : b0;
        for (int i = 0; i < rows; i++) {
            __m256 av = _mm256_broadcast_ss(a + i * a_row);
            acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
            if (vecs > 1)
                acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
        }
        a += a_col;
        b += ldb;
    }
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vecs; v++)
            _mm256_storeu_ps(c + i * ldc + 8 * v, acc[i][v]);
}

#ifdef LN_CPU_AVX512
/* The AVX-512 levels: 32 registers hold a 12 x 32 tile (24 accumulators, two
 * rows of B, A broadcast from memory), twice the 6 x 16 tile's work per
 * loaded value of B. Column tails of 8 or 16 use a lane mask, which AVX-512
 * makes as cheap as a plain load. */
static inline __attribute__((always_inline)) void tile_12x32(
    int rows, int vecs, __mmask16 last, int depth, const float *a, int64_t a_row, int64_t a_col,
    const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate, ln_fetch_cursor *f)
{
    /* two arrays, not one of pairs: GCC then keeps every accumulator in a
     * register (with acc[12][2] it stored them all on each step) */
    __m512 acc0[12], acc1[12];
    __mmask16 m0 = vecs > 1 ? (__mmask16)0xFFFF : last;
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
        acc0[i] = _mm512_setzero_ps();
        acc1[i] = _mm512_setzero_ps();
    }
    if (accumulate)
#pragma GCC unroll 12
        for (int i = 0; i < rows; i++) {
            acc0[i] = _mm512_maskz_loadu_ps(m0, c + i * ldc);
            if (vecs > 1)
                acc1[i] = _mm512_maskz_loadu_ps(last, c + i * ldc + 16);
        }
    for (int k = 0; k < depth; k++) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        __m512 b1 = vecs > 1 ? _mm512_maskz_loadu_ps(last, b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < rows; i++) {
            __m512 av = _mm512_set1_ps(a[i * a_row]);
            acc0[i] = _mm512_fmadd_ps(av, b0, acc0[i]);
            if (vecs > 1)
                acc1[i] = _mm512_fmadd_ps(av, b1, acc1[i]);
        }
        a += a_col;
        b += ldb;
        if (f)
            ln_fetch_step(f);
    }
#pragma GCC unroll 12
    for (int i = 0; i < rows; i++) {
        _mm512_mask_storeu_ps(c + i * ldc, m0, acc0[i]);
        if (vecs > 1)
            _mm512_mask_storeu_ps(c + i * ldc + 16, last, acc1[i]);
    }
}

/* rows 1..12 as constants, so each case keeps its accumulators in registers */
static void tile_rows_512(int rows, int vecs, __mmask16 last, int depth, const float *a,
                          int64_t a_row, int64_t a_col, const float *b, int64_t ldb, float *c,
                          int64_t ldc, int accumulate, ln_fetch_cursor *f)
{
#define ROWS_CASE(r)                                                                        \
    case r:                                                                                 \
        if (vecs > 1)                                                                       \
            tile_12x32(r, 2, last, depth, a, a_row, a_col, b, ldb, c, ldc, accumulate, f);  \
        else                                                                                \
            tile_12x32(r, 1, last, depth, a, a_row, a_col, b, ldb, c, ldc, accumulate, f);  \
        break;
    switch (rows) {
        ROWS_CASE(12) ROWS_CASE(11) ROWS_CASE(10) ROWS_CASE(9) ROWS_CASE(8) ROWS_CASE(7)
        ROWS_CASE(6) ROWS_CASE(5) ROWS_CASE(4) ROWS_CASE(3) ROWS_CASE(2)
    default:
        tile_12x32(1, vecs > 1 ? 2 : 1, last, depth, a, a_row, a_col, b, ldb, c, ldc, accumulate,
                   f);
    }
#undef ROWS_CASE
}

static void gemm_tiles(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate,
                       ln_fetch_cursor *f)
{
    for (int i = 0; i < m; i += 12) {
        int rows = m - i < 12 ? m - i : 12;
        for (int j = 0; j < n; j += 32) {
            int width = n - j < 32 ? n - j : 32; /* a multiple of 8 */
            int vecs = width > 16 ? 2 : 1, tail = width - 16 * (vecs - 1);
            __mmask16 last = (__mmask16)((1u << tail) - 1);
            tile_rows_512(rows, vecs, last, depth, a + i * a_row, a_row, a_col, b + j, ldb,
                          c + i * ldc + j, ldc, accumulate, f);
        }
    }
}

void ln_cpu_gemm_tiles(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate,
                       const void *fetch, int64_t fetch_bytes)
{
    ln_fetch_cursor f = ln_fetch_region(fetch, fetch_bytes);
    gemm_tiles(m, n, depth, a, a_row, a_col, b, ldb, c, ldc, accumulate, f.rows ? &f : NULL);
}

/* --- float32 matrix products for the AVX-512 levels (Linear, matmul) -------------
 * The 12 x 32 tile reads both operands in place where their layout allows,
 * so, unlike BLAS, nothing is packed: C = op(A) op(B) is computed as P = R Q
 * with Q's rows contiguous (a multiple of 8 wide):
 *  - op(B) = B [k, n]: P = C, R = op(A) (rows or columns of A), Q = B;
 *  - op(B) = B^T, B [n, k]: P = C^T = B op(A)^T, R = B's rows, Q = op(A)^T
 *    (A [k, m] in place, or A [m, k] transposed into the workspace), and P
 *    copied back transposed.
 * P is cut into tasks of up to 192 rows (f32_task_rows) x 512 columns,
 * handed out dynamically; a task runs over the depth in blocks, so a 32-column strip of Q (DEPTH_F32 x
 * 32 floats, 24 KB) stays in L1 while the task's row blocks use it. */
#define TASK_ROWS_MAX 192
#define TASK_COLS 512
#define DEPTH_F32 192

typedef struct f32_job {
    int rows, cols, depth;
    const float *r, *q;
    int64_t r_row, r_col, ldq;
    float *p;
    int64_t ldp;
    int accumulate;
    int col_tasks, task_rows;
} f32_job;

/* Rows per task: whole 12-row tiles, about two tasks per thread, so that no
 * thread is left with a last task while the other waits (fc1's 512 rows in
 * tasks of 48 made 11: six for one thread, five for the other, 12% over the
 * even split), and at most TASK_ROWS_MAX (a task's results, rows x 512
 * columns, stay in L2 across the depth blocks). */
static int f32_task_rows(int rows, int workers)
{
    int tiles = (rows + 11) / 12, per = workers > 0 ? 2 * workers : 2;
    int task = 12 * ((tiles + per - 1) / per);
    return task < 12 ? 12 : task > TASK_ROWS_MAX ? TASK_ROWS_MAX : task;
}

static void f32_task(void *arg, int64_t t, int thread)
{
    (void)thread;
    const f32_job *j = arg;
    int r0 = (int)(t / j->col_tasks) * j->task_rows, c0 = (int)(t % j->col_tasks) * TASK_COLS;
    int r1 = r0 + j->task_rows < j->rows ? r0 + j->task_rows : j->rows;
    int c1 = c0 + TASK_COLS < j->cols ? c0 + TASK_COLS : j->cols;
    for (int d = 0; d < j->depth; d += DEPTH_F32) {
        int depth = j->depth - d < DEPTH_F32 ? j->depth - d : DEPTH_F32;
        for (int c = c0; c < c1; c += 32) {
            int width = c1 - c < 32 ? c1 - c : 32;
            for (int i = r0; i < r1; i += 12) {
                int rows = r1 - i < 12 ? r1 - i : 12;
                /* a short product (one depth block) is bound by writing P:
                 * the next tile's rows of P fetched on the way (fc1's weight
                 * gradient, depth 64, writes 12.8 MB that no cache holds) */
                int ni = i + 12 < r1 ? i + 12 : r0, nc = i + 12 < r1 ? c : c + 32;
                ln_fetch_cursor f = {0};
                if (nc < c1 && j->depth <= DEPTH_F32)
                    f = ln_fetch_rows(j->p + (int64_t)ni * j->ldp + nc, j->ldp,
                                      r1 - ni < 12 ? r1 - ni : 12, c1 - nc < 32 ? c1 - nc : 32);
                gemm_tiles(rows, width, depth, j->r + i * j->r_row + d * j->r_col, j->r_row,
                           j->r_col, j->q + (int64_t)d * j->ldq + c, j->ldq,
                           j->p + (int64_t)i * j->ldp + c, j->ldp, d > 0 || j->accumulate,
                           f.rows ? &f : NULL);
            }
        }
    }
}

/* Q = A^T for A [m, k]: the columns of A, in pieces on the pool's threads. A
 * serial copy (fc1's x, 1.6 MB) left the other thread idle long enough to
 * fall asleep, and the product's first items then ran without it. */
typedef struct transpose_job {
    const float *a;
    int64_t lda, m, ldq;
    float *q;
} transpose_job;

static void transpose_columns(void *arg, int64_t lo, int64_t hi)
{
    const transpose_job *j = arg;
    ln_transpose(j->a + lo, j->lda, j->q + lo * j->ldq, j->ldq, j->m, hi - lo);
    for (int64_t d = lo; d < hi; d++)
        memset(j->q + d * j->ldq + j->m, 0, sizeof(float) * (size_t)(j->ldq - j->m));
}

int ln_cpu_gemm_f32(ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc)
{
    if (alpha != 1.0f || (beta != 0.0f && beta != 1.0f) || k < 1)
        return LN_ENOTSUP;
    int rows = trans_b ? n : m, cols = trans_b ? m : n;
    int64_t cols8 = (cols + 7) & ~7;
    if (!trans_b && n % 8 != 0)
        return LN_ENOTSUP;
    const float *r = trans_b ? b : a, *q = b;
    int64_t r_row = trans_b ? ldb : (trans_a ? 1 : lda), r_col = trans_b ? 1 : (trans_a ? lda : 1);
    int64_t ldq = ldb;
    float *p = c, *work = NULL;
    int64_t ldp = ldc;
    if (trans_b) {
        /* Q = op(A)^T [k, cols8]: A [k, m] in place when m is a multiple of 8 */
        int in_place = trans_a && m % 8 == 0;
        int64_t q_floats = in_place ? 0 : (int64_t)k * cols8;
        work = ln_cpu_scratch(ctx, (size_t)(q_floats + (int64_t)rows * cols8) * sizeof(float));
        if (!work)
            return LN_ENOMEM;
        if (in_place) {
            q = a;
            ldq = lda;
        } else {
            float *qt = work;
            if (trans_a) {
                for (int64_t d = 0; d < k; d++) {
                    memcpy(qt + d * cols8, a + d * lda, sizeof(float) * (size_t)m);
                    memset(qt + d * cols8 + m, 0, sizeof(float) * (size_t)(cols8 - m));
                }
            } else {
                /* A [m, k] transposed in 8x8 blocks (a fifth of fc1's forward
                 * time went to this copy one float at a time) */
                transpose_job tj = {a, lda, m, cols8, qt};
                ln_cpu_parallel_range_work(ctx, k, (int64_t)m * k, transpose_columns, &tj);
            }
            q = qt;
            ldq = cols8;
        }
        p = work + q_floats;
        ldp = cols8;
    }
    int threads = ln_cpu_threads_for_macs(ctx, (int64_t)m * n * k);
    int col_tasks = (int)((cols8 + TASK_COLS - 1) / TASK_COLS);
    int task_rows = f32_task_rows(rows, threads * col_tasks);
    int64_t tasks = (int64_t)((rows + task_rows - 1) / task_rows) * col_tasks;
    f32_job job = {rows, (int)(trans_b ? cols8 : cols), k, r, q, r_row, r_col, ldq, p, ldp,
                   !trans_b && beta == 1.0f, col_tasks, task_rows};
    ln_cpu_parallel(ctx, threads < tasks ? threads : (int)tasks, tasks, f32_task, &job);
    if (trans_b && beta == 0.0f)
        ln_transpose(p, ldp, c, ldc, n, m);
    else if (trans_b)
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(int64_t)i * ldc + j] += p[(int64_t)j * ldp + i];
    return LN_OK;
}
#else
#define TILE_CASE(r, v) \
    tile_6x16(r, v, depth, a + i * a_row, a_row, a_col, b + j, ldb, c + i * ldc + j, ldc, accumulate)

void ln_cpu_gemm_tiles(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate,
                       const void *fetch, int64_t fetch_bytes)
{
    (void)fetch, (void)fetch_bytes; /* the AVX2 level fetches nothing ahead */
    for (int i = 0; i < m; i += 6) {
        int rows = m - i < 6 ? m - i : 6;
        for (int j = 0; j < n; j += 16) {
            int vecs = n - j >= 16 ? 2 : 1;
            switch (rows * 2 + vecs - 1) {
            case 13: TILE_CASE(6, 2); break;
            case 12: TILE_CASE(6, 1); break;
            case 11: TILE_CASE(5, 2); break;
            case 10: TILE_CASE(5, 1); break;
            case 9: TILE_CASE(4, 2); break;
            case 8: TILE_CASE(4, 1); break;
            case 7: TILE_CASE(3, 2); break;
            case 6: TILE_CASE(3, 1); break;
            case 5: TILE_CASE(2, 2); break;
            case 4: TILE_CASE(2, 1); break;
            case 3: TILE_CASE(1, 2); break;
            default: TILE_CASE(1, 1); break;
            }
        }
    }
}
#endif

#endif
