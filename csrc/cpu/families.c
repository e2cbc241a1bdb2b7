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

static void reduce_piece(void *arg, int64_t piece, int thread)
{
    (void)thread;
    const family_job *j = arg;
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
    run_rows(ctx, &job, reduce_piece);
    return LN_OK;
}
