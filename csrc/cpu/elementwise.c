/* Elementwise ops, copies and reductions on contiguous float32 and int32 data,
 * split across threads for large tensors. Anything else goes to the reference
 * loops, which handle every dtype and stride. */
#include <math.h>
#include <string.h>

#include "../formulas.h"
#include "../ops_ref.h"
#include "../status.h"
#include "cpu.h"

typedef struct elementwise_job {
    ln_binary_op op;
    int scalar_first;
    const float *x, *y;
    const uint8_t *bytes;
    const int32_t *indices;
    float *z, c;
    double *partial;           /* reduce: one sum per piece */
    int64_t n, piece, row_elems, src_rows;
} elementwise_job;

static void bytes_to_float_range(void *p, int64_t lo, int64_t hi)
{
    const elementwise_job *j = p;
    for (int64_t i = lo; i < hi; i++)
        j->z[i] = (float)j->bytes[i];
}

int ln_cpu_copy(void *ctx, const ln_strided *dst, const ln_strided *src)
{
    int64_t n = ln_strided_numel(dst);
    if (ln_strided_is_contiguous(dst) && ln_strided_is_contiguous(src)) {
        if (dst->dtype == src->dtype) {
            memmove(dst->data, src->data, (size_t)n * ln_dtype_size(dst->dtype));
            return LN_OK;
        }
        if (dst->dtype == LN_FLOAT32 && src->dtype == LN_UINT8) {
            elementwise_job job = {.bytes = src->data, .z = dst->data};
            ln_cpu_parallel_range(ctx, n, bytes_to_float_range, &job);
            return LN_OK;
        }
    }
    return ln_ref_copy(ctx, dst, src);
}

static void fill_range(void *p, int64_t lo, int64_t hi)
{
    const elementwise_job *j = p;
    if (j->c == 0.0f && !signbit(j->c)) {
        memset(j->z + lo, 0, sizeof(float) * (size_t)(hi - lo));
        return;
    }
    for (int64_t i = lo; i < hi; i++)
        j->z[i] = j->c;
}

int ln_cpu_fill(void *ctx, const ln_strided *dst, double value)
{
    int64_t n = ln_strided_numel(dst);
    if (ln_strided_is_contiguous(dst) && dst->dtype == LN_FLOAT32) {
        /* zeros by memset, in pieces on the threads for large tensors (zero_grad) */
        elementwise_job job = {.z = dst->data, .c = (float)value};
        ln_cpu_parallel_range(ctx, n, fill_range, &job);
        return LN_OK;
    }
    return ln_ref_fill(ctx, dst, value);
}

#define FLOAT_LOOP(expr)                                                      \
    do {                                                                      \
        for (int64_t i = lo; i < hi; i++)                                     \
            z[i] = (expr);                                                    \
    } while (0)

/* One loop per op, the switch outside: each loop is formulas.h's ln_f_binary
 * with a constant op, which the compiler folds to the one operation (and
 * vectorises), so the CPU runs the reference's formula at full speed. */
#define BINARY_OPS(X) X(LN_ADD) X(LN_SUB) X(LN_MUL) X(LN_DIV) X(LN_EQ) X(LN_NE) \
    X(LN_LT) X(LN_LE) X(LN_GT) X(LN_GE)

#define BINARY_CASE(OP) case OP: FLOAT_LOOP(ln_f_binary(OP, x[i], y[i])); break;

static void binary_range(void *p, int64_t lo, int64_t hi)
{
    const elementwise_job *j = p;
    const float *x = j->x, *y = j->y;
    float *z = j->z;
    switch (j->op) { BINARY_OPS(BINARY_CASE) }
}

int ln_cpu_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_binary(ctx, op, dtype, n, a, b, out);
    elementwise_job job = {.op = op, .x = a, .y = b, .z = out};
    ln_cpu_parallel_range(ctx, n, binary_range, &job);
    return LN_OK;
}

#define SCALAR_CASE(OP) case OP: FLOAT_LOOP(ln_f_binary(OP, x[i], c)); break;
#define SCALAR_FIRST_CASE(OP) case OP: FLOAT_LOOP(ln_f_binary(OP, c, x[i])); break;

static void scalar_range(void *p, int64_t lo, int64_t hi)
{
    const elementwise_job *j = p;
    const float *x = j->x;
    float *z = j->z, c = j->c;
    if (j->scalar_first) {
        switch (j->op) { BINARY_OPS(SCALAR_FIRST_CASE) }
    } else {
        switch (j->op) { BINARY_OPS(SCALAR_CASE) }
    }
}

int ln_cpu_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_binary_scalar(ctx, op, dtype, n, a, s, scalar_first, out);
    elementwise_job job = {.op = op, .scalar_first = scalar_first, .x = a, .z = out,
                           .c = (float)s};
    ln_cpu_parallel_range(ctx, n, scalar_range, &job);
    return LN_OK;
}

/* Pieces of a sum: a fixed count, so the result does not depend on threads. */
#define SUM_PIECES 64

static void sum_piece(void *p, int64_t piece, int thread)
{
    (void)thread;
    const elementwise_job *j = p;
    int64_t lo = piece * j->piece, hi = lo + j->piece < j->n ? lo + j->piece : j->n;
    double acc = 0;
    for (int64_t i = lo; i < hi; i++)
        acc += j->x[i];
    j->partial[piece] = acc;
}

int ln_cpu_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result)
{
    if (dtype != LN_FLOAT32 || op != LN_SUM)
        return ln_ref_reduce(ctx, op, dtype, n, x, result);
    /* double sums per piece, added in order: the same sum as the reference up
     * to the order of additions, which double precision makes irrelevant */
    double partial[SUM_PIECES];
    elementwise_job job = {.x = x, .partial = partial, .n = n,
                           .piece = (n + SUM_PIECES - 1) / SUM_PIECES};
    int64_t pieces = job.piece > 0 ? (n + job.piece - 1) / job.piece : 0;
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, n), pieces, sum_piece, &job);
    double acc = 0;
    for (int64_t i = 0; i < pieces; i++)
        acc += partial[i];
    *result = acc;
    return LN_OK;
}

static void gather_row(void *p, int64_t r, int thread)
{
    (void)thread;
    const elementwise_job *j = p;
    int in_range = j->indices[r] >= 0 && j->indices[r] < j->src_rows;
    const uint8_t *row = j->bytes + (in_range ? (int64_t)j->indices[r] * j->row_elems : 0);
    float *out = j->z + r * j->row_elems, d = j->c;
    for (int64_t e = 0; e < j->row_elems; e++)
        out[e] = in_range ? (float)row[e] / d : 0.0f;
}

int ln_cpu_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, int64_t src_rows, double divisor)
{
    if (src_dtype == LN_UINT8 && dst_dtype == LN_FLOAT32) {
        elementwise_job job = {.bytes = src, .indices = indices, .z = dst, .c = (float)divisor,
                               .row_elems = row_elems, .src_rows = src_rows};
        ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, n * row_elems), n, gather_row, &job);
        return LN_OK;
    }
    return ln_ref_gather_rows(ctx, src_dtype, src, dst_dtype, dst, row_elems,
                              indices, n, src_rows, divisor);
}
