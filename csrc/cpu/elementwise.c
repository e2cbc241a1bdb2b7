/* Elementwise ops, copies and reductions on contiguous float32 and int32 data,
 * split across threads for large tensors. Anything else goes to the reference
 * loops, which handle every dtype and stride. */
#include <math.h>
#include <string.h>

#include "../ops_ref.h"
#include "../status.h"
#include "cpu.h"

static int threads_for(void *ctx, int64_t n)
{
    int t = ((ln_cpu_context *)ctx)->threads;
    return n >= LN_CPU_PARALLEL_MIN && t > 1 ? t : 1;
}

static int is_contiguous(const ln_strided *s)
{
    int64_t expected = 1;
    for (int d = s->ndim - 1; d >= 0; d--) {
        if (s->shape[d] != 1 && s->stride[d] != expected)
            return 0;
        expected *= s->shape[d];
    }
    return 1;
}

static int64_t numel_of(const ln_strided *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n;
}

int ln_cpu_copy(void *ctx, const ln_strided *dst, const ln_strided *src)
{
    int64_t n = numel_of(dst);
    if (is_contiguous(dst) && is_contiguous(src)) {
        if (dst->dtype == src->dtype) {
            memmove(dst->data, src->data, (size_t)n * ln_dtype_size(dst->dtype));
            return LN_OK;
        }
        if (dst->dtype == LN_FLOAT32 && src->dtype == LN_UINT8) {
            const uint8_t *x = src->data;
            float *y = dst->data;
#pragma omp parallel for num_threads(threads_for(ctx, n)) schedule(static)
            for (int64_t i = 0; i < n; i++)
                y[i] = (float)x[i];
            return LN_OK;
        }
    }
    return ln_ref_copy(ctx, dst, src);
}

int ln_cpu_fill(void *ctx, const ln_strided *dst, double value)
{
    int64_t n = numel_of(dst);
    if (is_contiguous(dst) && dst->dtype == LN_FLOAT32) {
        float v = (float)value, *y = dst->data;
        if (v == 0.0f && !signbit(v)) {
            memset(y, 0, (size_t)n * sizeof(float));
            return LN_OK;
        }
#pragma omp parallel for num_threads(threads_for(ctx, n)) schedule(static)
        for (int64_t i = 0; i < n; i++)
            y[i] = v;
        return LN_OK;
    }
    return ln_ref_fill(ctx, dst, value);
}

#define FLOAT_LOOP(expr)                                                      \
    do {                                                                      \
        _Pragma("omp parallel for num_threads(nt) schedule(static)")          \
        for (int64_t i = 0; i < n; i++)                                       \
            z[i] = (expr);                                                    \
    } while (0)

int ln_cpu_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_binary(ctx, op, dtype, n, a, b, out);
    const float *x = a, *y = b;
    float *z = out;
    int nt = threads_for(ctx, n);
    switch (op) {
    case LN_ADD: FLOAT_LOOP(x[i] + y[i]); break;
    case LN_SUB: FLOAT_LOOP(x[i] - y[i]); break;
    case LN_MUL: FLOAT_LOOP(x[i] * y[i]); break;
    case LN_DIV: FLOAT_LOOP(x[i] / y[i]); break;
    case LN_EQ: FLOAT_LOOP(x[i] == y[i] ? 1.0f : 0.0f); break;
    }
    return LN_OK;
}

int ln_cpu_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out)
{
    if (dtype != LN_FLOAT32)
        return ln_ref_binary_scalar(ctx, op, dtype, n, a, s, scalar_first, out);
    const float *x = a;
    float *z = out, c = (float)s;
    int nt = threads_for(ctx, n);
    switch (op) {
    case LN_ADD: FLOAT_LOOP(x[i] + c); break;
    case LN_SUB: if (scalar_first) FLOAT_LOOP(c - x[i]); else FLOAT_LOOP(x[i] - c); break;
    case LN_MUL: FLOAT_LOOP(x[i] * c); break;
    case LN_DIV: if (scalar_first) FLOAT_LOOP(c / x[i]); else FLOAT_LOOP(x[i] / c); break;
    case LN_EQ: FLOAT_LOOP(x[i] == c ? 1.0f : 0.0f); break;
    }
    return LN_OK;
}

int ln_cpu_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result)
{
    if (dtype != LN_FLOAT32 || op != LN_SUM)
        return ln_ref_reduce(ctx, op, dtype, n, x, result);
    const float *v = x;
    double acc = 0;
    /* a double accumulator per thread: the same sum as the reference up to
     * the order of additions, which double precision makes irrelevant here */
#pragma omp parallel for num_threads(threads_for(ctx, n)) reduction(+ : acc) schedule(static)
    for (int64_t i = 0; i < n; i++)
        acc += v[i];
    *result = acc;
    return LN_OK;
}

int ln_cpu_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, int64_t src_rows, double divisor)
{
    if (src_dtype == LN_UINT8 && dst_dtype == LN_FLOAT32) {
        const uint8_t *x = src;
        float *y = dst, d = (float)divisor;
#pragma omp parallel for num_threads(threads_for(ctx, n * row_elems)) schedule(static)
        for (int64_t r = 0; r < n; r++) {
            int in_range = indices[r] >= 0 && indices[r] < src_rows;
            const uint8_t *row = x + (in_range ? (int64_t)indices[r] * row_elems : 0);
            for (int64_t e = 0; e < row_elems; e++)
                y[r * row_elems + e] = in_range ? (float)row[e] / d : 0.0f;
        }
        return LN_OK;
    }
    return ln_ref_gather_rows(ctx, src_dtype, src, dst_dtype, dst, row_elems,
                              indices, n, src_rows, divisor);
}
