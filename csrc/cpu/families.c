/* The unary, softmax and reduce_dim families on the CPU: the formulas of
 * formulas.h (the same the reference and CUDA use), split across threads for
 * large tensors. Each unary op gets its own loop (the switch is outside it),
 * so the compiler sees one formula per loop and can vectorise it. */
#include "../formulas.h"
#include "../status.h"
#include "cpu.h"

typedef struct family_job {
    ln_unary_op op;
    ln_reduce_op reduce;
    ln_unary_params p;
    int log;
    const float *x, *y, *dy;
    float *out;
    int32_t *positions;
    int64_t dim, inner, rows, pieces;
} family_job;

#define UNARY_CASE(name, str)                                                 \
    case LN_UNARY_##name:                                                     \
        for (int64_t i = lo; i < hi; i++)                                     \
            out[i] = ln_f_unary(LN_UNARY_##name, p, x[i]);                    \
        break;

static void unary_range(void *arg, int64_t lo, int64_t hi)
{
    const family_job *j = arg;
    const float *x = j->x;
    float *out = j->out;
    const ln_unary_params *p = &j->p;
    switch (j->op) {
    LN_UNARY_OPS(UNARY_CASE)
    case LN_UNARY_COUNT: break;
    }
}

int ln_cpu_unary(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                 const float *x, float *y)
{
    family_job job = {.op = op, .p = *p, .x = x, .out = y};
    ln_cpu_parallel_range(ctx, n, unary_range, &job);
    return LN_OK;
}

static void unary_backward_range(void *arg, int64_t lo, int64_t hi)
{
    const family_job *j = arg;
    for (int64_t i = lo; i < hi; i++)
        j->out[i] = ln_f_unary_backward(j->op, &j->p, j->x ? j->x[i] : 0.0f,
                                        j->y ? j->y[i] : 0.0f, j->dy[i]);
}

int ln_cpu_unary_backward(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                          const float *x, const float *y, const float *dy, float *dx)
{
    family_job job = {.op = op, .p = *p, .x = x, .y = y, .dy = dy, .out = dx};
    ln_cpu_parallel_range(ctx, n, unary_backward_range, &job);
    return LN_OK;
}

/* Rows along a dimension: row r starts at (r / inner) * dim * inner + r % inner,
 * and its elements are `inner` apart. Each piece takes a run of rows. */
static int64_t row_start(const family_job *j, int64_t r)
{
    return (r / j->inner) * j->dim * j->inner + r % j->inner;
}

static void softmax_piece(void *arg, int64_t piece, int thread)
{
    (void)thread;
    const family_job *j = arg;
    int64_t lo = piece * j->rows / j->pieces, hi = (piece + 1) * j->rows / j->pieces;
    for (int64_t r = lo; r < hi; r++) {
        int64_t at = row_start(j, r);
        if (j->dy)
            ln_f_softmax_backward_row(j->log, j->dim, j->inner, j->y + at, j->dy + at,
                                      j->out + at);
        else
            ln_f_softmax_row(j->log, j->dim, j->inner, j->x + at, j->out + at);
    }
}

static void run_rows(void *ctx, family_job *job, ln_cpu_task task)
{
    int threads = ln_cpu_threads_for(ctx, job->rows * job->dim);
    job->pieces = job->rows < threads ? job->rows : threads;
    if (job->pieces > 0)
        ln_cpu_parallel(ctx, threads, job->pieces, task, job);
}

int ln_cpu_softmax(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                   const float *x, float *y)
{
    family_job job = {.log = log, .x = x, .out = y, .dim = dim, .inner = inner,
                      .rows = outer * inner};
    run_rows(ctx, &job, softmax_piece);
    return LN_OK;
}

int ln_cpu_softmax_backward(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                            const float *y, const float *dy, float *dx)
{
    family_job job = {.log = log, .y = y, .dy = dy, .out = dx, .dim = dim, .inner = inner,
                      .rows = outer * inner};
    run_rows(ctx, &job, softmax_piece);
    return LN_OK;
}

/* Reductions with inner > 1 walk x[o, k, i] row by row over k, keeping one
 * accumulator per i of a block of INNER_BLOCK columns: contiguous reads,
 * where the per-row formula would stride through memory. Each (o, i) still
 * sees its values in the order k = 0, 1, ... with the formula's rules (sums
 * in double; the first extreme; a NaN wins and ends the search), so the
 * results are the reference's bit for bit. */
#define INNER_BLOCK 256

static void reduce_columns(const family_job *j, int64_t o, int64_t i0, int64_t i1)
{
    double acc[INNER_BLOCK];
    float best[INNER_BLOCK];
    int32_t pos[INNER_BLOCK];
    const int64_t w = i1 - i0, n = j->dim, inner = j->inner;
    const float *base = j->x + o * n * inner + i0;
    float *values = j->out + o * inner + i0;
    if (j->reduce == LN_SUM || j->reduce == LN_MEAN) {
        for (int64_t t = 0; t < w; t++)
            acc[t] = 0;
        for (int64_t k = 0; k < n; k++)
            for (int64_t t = 0; t < w; t++)
                acc[t] += (double)base[k * inner + t];
        for (int64_t t = 0; t < w; t++)
            values[t] = (float)(j->reduce == LN_MEAN ? acc[t] / (double)n : acc[t]);
        return;
    }
    const int is_max = j->reduce == LN_MAX;
    for (int64_t t = 0; t < w; t++) {
        best[t] = base[t];
        pos[t] = 0;
    }
    for (int64_t k = 1; k < n; k++)
        for (int64_t t = 0; t < w; t++) {
            float b = best[t], v = base[k * inner + t];
            if (b == b && (v != v || (is_max ? v > b : v < b))) {
                best[t] = v;
                pos[t] = (int32_t)k;
            }
        }
    for (int64_t t = 0; t < w; t++) {
        values[t] = best[t];
        if (j->positions)
            j->positions[o * inner + i0 + t] = pos[t] + 1;
    }
}

static void reduce_piece(void *arg, int64_t piece, int thread)
{
    (void)thread;
    const family_job *j = arg;
    if (j->inner > 1) { /* piece = one block of columns of one o */
        int64_t blocks = (j->inner + INNER_BLOCK - 1) / INNER_BLOCK;
        int64_t o = piece / blocks, i0 = (piece % blocks) * INNER_BLOCK;
        int64_t i1 = i0 + INNER_BLOCK < j->inner ? i0 + INNER_BLOCK : j->inner;
        reduce_columns(j, o, i0, i1);
        return;
    }
    int64_t lo = piece * j->rows / j->pieces, hi = (piece + 1) * j->rows / j->pieces;
    for (int64_t r = lo; r < hi; r++)
        ln_f_reduce_row(j->reduce, j->dim, j->inner, j->x + row_start(j, r), &j->out[r],
                        j->positions ? &j->positions[r] : NULL);
}

int ln_cpu_reduce_dim(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim, int64_t inner,
                      const float *x, float *values, int32_t *positions)
{
    family_job job = {.reduce = op, .x = x, .out = values, .positions = positions,
                      .dim = dim, .inner = inner, .rows = outer * inner};
    if (inner > 1) {
        int64_t pieces = outer * ((inner + INNER_BLOCK - 1) / INNER_BLOCK);
        if (pieces > 0)
            ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, outer * dim * inner), pieces,
                            reduce_piece, &job);
        return LN_OK;
    }
    run_rows(ctx, &job, reduce_piece);
    return LN_OK;
}
