/* The reference backend. See ops_ref.h: clarity over speed, always. */
#include "ops_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "host_memory.h"
#include "philox.h"
#include "status.h"

/* --- strided element walks ---------------------------------------------- */

/* Advances a row-major multi-index over `shape`; returns 0 when done. */
static int next_index(int ndim, const int64_t *shape, int64_t *index)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++index[d] < shape[d])
            return 1;
        index[d] = 0;
    }
    return 0;
}

static int64_t strided_offset(const ln_strided *s, const int64_t *index)
{
    int64_t off = 0;
    for (int d = 0; d < s->ndim; d++)
        off += index[d] * s->stride[d];
    return off;
}

static int64_t strided_numel(const ln_strided *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n;
}

int ln_ref_copy(void *ctx, const ln_strided *dst, const ln_strided *src)
{
    (void)ctx;
    int64_t index[LN_MAX_DIMS] = {0};
    if (strided_numel(dst) == 0)
        return LN_OK;
    do {
        double v = ln_load_as_double(src->data, src->dtype, strided_offset(src, index));
        ln_store_from_double(dst->data, dst->dtype, strided_offset(dst, index), v);
    } while (next_index(dst->ndim, dst->shape, index));
    return LN_OK;
}

int ln_ref_fill(void *ctx, const ln_strided *dst, double value)
{
    (void)ctx;
    int64_t index[LN_MAX_DIMS] = {0};
    if (strided_numel(dst) == 0)
        return LN_OK;
    do {
        ln_store_from_double(dst->data, dst->dtype, strided_offset(dst, index), value);
    } while (next_index(dst->ndim, dst->shape, index));
    return LN_OK;
}

/* --- elementwise ---------------------------------------------------------- */

static float float_op(ln_binary_op op, float a, float b)
{
    switch (op) {
    case LN_ADD: return a + b;
    case LN_SUB: return a - b;
    case LN_MUL: return a * b;
    case LN_DIV: return a / b;
    case LN_EQ: return a == b ? 1.0f : 0.0f;
    }
    return 0;
}

/* Integer arithmetic wraps around, as in PyTorch, done in unsigned arithmetic
 * because signed overflow is undefined in C. Division is refused by the core. */
static int64_t int_op(ln_binary_op op, int64_t a, int64_t b)
{
    switch (op) {
    case LN_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case LN_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case LN_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case LN_DIV: return b ? a / b : 0;
    case LN_EQ: return a == b;
    }
    return 0;
}

static void store_int(void *out, ln_dtype dtype, int64_t i, int64_t v)
{
    if (dtype == LN_INT32)
        ((int32_t *)out)[i] = (int32_t)(uint32_t)(uint64_t)v;
    else
        ((uint8_t *)out)[i] = (uint8_t)(uint64_t)v;
}

static int64_t load_int(const void *x, ln_dtype dtype, int64_t i)
{
    return dtype == LN_INT32 ? ((const int32_t *)x)[i] : ((const uint8_t *)x)[i];
}

static int unsupported_dtype(const char *op, ln_dtype dtype)
{
    return ln_error(LN_ENOTSUP, "%s of %s tensors is not supported on this device; "
                    "convert with t:to(\"float32\") first", op, ln_dtype_name(dtype));
}

int ln_ref_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out)
{
    (void)ctx;
    if (dtype == LN_FLOAT32) {
        const float *x = a, *y = b;
        float *z = out;
        for (int64_t i = 0; i < n; i++)
            z[i] = float_op(op, x[i], y[i]);
        return LN_OK;
    }
    if (dtype == LN_INT32 || dtype == LN_UINT8) {
        for (int64_t i = 0; i < n; i++)
            store_int(out, dtype, i, int_op(op, load_int(a, dtype, i), load_int(b, dtype, i)));
        return LN_OK;
    }
    return unsupported_dtype("elementwise arithmetic", dtype);
}

int ln_ref_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out)
{
    (void)ctx;
    if (dtype == LN_FLOAT32) {
        const float *x = a;
        float *z = out, fs = (float)s;
        for (int64_t i = 0; i < n; i++)
            z[i] = scalar_first ? float_op(op, fs, x[i]) : float_op(op, x[i], fs);
        return LN_OK;
    }
    if (dtype == LN_INT32 || dtype == LN_UINT8) {
        int64_t is = (int64_t)s;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = load_int(a, dtype, i);
            store_int(out, dtype, i, scalar_first ? int_op(op, is, v) : int_op(op, v, is));
        }
        return LN_OK;
    }
    return unsupported_dtype("elementwise arithmetic", dtype);
}

/* --- reductions ----------------------------------------------------------- */

int ln_ref_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result)
{
    (void)ctx;
    if (dtype != LN_FLOAT32 && dtype != LN_INT32 && dtype != LN_UINT8)
        return unsupported_dtype("reduction", dtype);
    double acc = op == LN_SUM ? 0.0 : ln_load_as_double(x, dtype, 0);
    for (int64_t i = 0; i < n; i++) {
        double v = ln_load_as_double(x, dtype, i);
        if (op == LN_SUM)
            acc += v;
        else if (v != v || acc != acc) /* NaN wins, as in PyTorch */
            acc = NAN;
        else if (op == LN_MAX ? v > acc : v < acc)
            acc = v;
    }
    *result = acc;
    return LN_OK;
}

int ln_ref_argmax(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,
                  int64_t inner, const void *x, int32_t *out)
{
    (void)ctx;
    if (dtype != LN_FLOAT32 && dtype != LN_INT32 && dtype != LN_UINT8)
        return unsupported_dtype("argmax", dtype);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double best_v = ln_load_as_double(x, dtype, o * dim * inner + i);
            for (int64_t d = 1; d < dim && best_v == best_v; d++) {
                double v = ln_load_as_double(x, dtype, (o * dim + d) * inner + i);
                if (v > best_v || v != v) {
                    best = d;
                    best_v = v;
                }
            }
            out[o * inner + i] = (int32_t)(best + 1);
        }
    }
    return LN_OK;
}

/* --- matrix product ------------------------------------------------------- */

int ln_ref_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("gemm", dtype);
    const float *A = a, *B = b;
    float *C = c;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float bv = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)av * bv;
            }
            float *cij = &C[(size_t)i * ldc + j];
            /* beta == 0 must ignore C entirely (it may hold NaN), as BLAS does */
            *cij = (float)(alpha * acc + (beta != 0.0f ? (double)beta * *cij : 0.0));
        }
    }
    return LN_OK;
}

/* --- random numbers ------------------------------------------------------- */

int ln_ref_rand_uniform(void *ctx, ln_dtype dtype, int64_t n, void *out,
                        double lo, double hi, uint64_t seed, uint64_t offset)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("random fill", dtype);
    float *y = out, flo = (float)lo, span = (float)(hi - lo);
    for (int64_t i = 0; i < n; i++)
        y[i] = flo + span * ln_philox_uniform(seed, offset, (uint64_t)i);
    return LN_OK;
}

int ln_ref_rand_normal(void *ctx, ln_dtype dtype, int64_t n, void *out,
                       double mean, double std, uint64_t seed, uint64_t offset)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("random fill", dtype);
    float *y = out, fmean = (float)mean, fstd = (float)std;
    for (int64_t i = 0; i < n; i++)
        y[i] = fmean + fstd * ln_philox_normal(seed, offset, (uint64_t)i);
    return LN_OK;
}

int ln_ref_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, double divisor)
{
    (void)ctx;
    for (int64_t r = 0; r < n; r++) {
        int64_t from = (int64_t)indices[r] * row_elems;
        for (int64_t e = 0; e < row_elems; e++) {
            double v = ln_load_as_double(src, src_dtype, from + e);
            if (divisor != 1.0)
                v = (float)v / (float)divisor;
            ln_store_from_double(dst, dst_dtype, r * row_elems + e, v);
        }
    }
    return LN_OK;
}

/* --- the device ------------------------------------------------------------ */

static int ref_device_count(int *count, char *reason, size_t len)
{
    (void)reason;
    (void)len;
    *count = 1;
    return LN_OK;
}

static int ref_open(int index, void **ctx)
{
    (void)index;
    static int token;
    *ctx = &token; /* stateless: any non-NULL context marks it open */
    return LN_OK;
}

static void ref_close(void *ctx)
{
    (void)ctx;
}

static int ref_info(void *ctx, ln_device_info *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    ln_host_cpu_name(out->name, sizeof out->name);
    out->cores = ln_host_cpu_cores();
    out->threads = 1;
    strcpy(out->blas, "none (reference loops)");
    return LN_OK;
}

const ln_backend ln_ref_backend = {
    .abi = LN_BACKEND_ABI,
    .name = "ref",
    .device_count = ref_device_count,
    .open = ref_open,
    .close = ref_close,
    .info = ref_info,
    .alloc = ln_host_alloc,
    .free = ln_host_free,
    .upload = ln_host_upload,
    .download = ln_host_download,
    .copy = ln_ref_copy,
    .fill = ln_ref_fill,
    .binary = ln_ref_binary,
    .binary_scalar = ln_ref_binary_scalar,
    .reduce = ln_ref_reduce,
    .argmax = ln_ref_argmax,
    .gemm = ln_ref_gemm,
    .rand_uniform = ln_ref_rand_uniform,
    .rand_normal = ln_ref_rand_normal,
    .gather_rows = ln_ref_gather_rows,
};
