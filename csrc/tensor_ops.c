#include "tensor_ops.h"

#include <math.h>
#include <string.h>

#include "ops/broadcast.h"
#include "random.h"
#include "status.h"

int ln_check_same_device(const char *what, const ln_tensor *a, const ln_tensor *b)
{
    if (ln_tensor_device(a) != ln_tensor_device(b))
        return ln_error(LN_EINVAL, "%s are on different devices (%s and %s); move "
                        "one with t:to(device)", what, ln_tensor_device(a)->name,
                        ln_tensor_device(b)->name);
    return LN_OK;
}

int ln_check_dtype(const char *what, const ln_tensor *t, ln_dtype dtype)
{
    if (t->dtype != dtype)
        return ln_error(LN_EINVAL, "%s must be %s, got %s", what, ln_dtype_name(dtype),
                        ln_dtype_name(t->dtype));
    return LN_OK;
}

static int check_arith_dtype(ln_binary_op op, ln_dtype dtype)
{
    if (op == LN_DIV && !ln_dtype_is_float(dtype))
        return ln_error(LN_EINVAL, "division of %s tensors is not defined; convert "
                        "with t:to(\"float32\") first", ln_dtype_name(dtype));
    return LN_OK;
}

int ln_op_binary(ln_tensor *out, ln_binary_op op, const ln_tensor *a, const ln_tensor *b)
{
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(a));
    LN_TRY(ln_tensor_check_live(b));
    LN_TRY(ln_check_same_device("the operands", a, b));
    if (!ln_tensor_same_shape(a, b))
        return ln_op_binary_broadcast(out, op, a, b);
    if (a->dtype != b->dtype)
        return ln_error(LN_EINVAL, "dtypes %s and %s differ; convert one with "
                        "t:to(dtype)", ln_dtype_name(a->dtype), ln_dtype_name(b->dtype));
    LN_TRY(check_arith_dtype(op, a->dtype));
    ln_tensor ca = {0}, cb = {0};
    int st = ln_tensor_contiguous(&ca, a);
    if (st == LN_OK)
        st = ln_tensor_contiguous(&cb, b);
    if (st == LN_OK)
        st = ln_tensor_alloc_like(out, &ca);
    if (st == LN_OK) {
        ln_device *dev = ln_tensor_device(a);
        st = LN_CALL(dev, binary, op, a->dtype, ln_tensor_numel(a), ln_tensor_data(&ca),
                     ln_tensor_data(&cb), ln_tensor_data(out));
        if (st != LN_OK)
            ln_tensor_release(out);
    }
    ln_tensor_release(&ca);
    ln_tensor_release(&cb);
    return st;
}

static int check_scalar_operand(ln_binary_op op, const ln_tensor *a, double s)
{
    LN_TRY(ln_tensor_check_live(a));
    LN_TRY(check_arith_dtype(op, a->dtype));
    if (!ln_dtype_is_float(a->dtype) && (s != floor(s) || fabs(s) > 2147483647.0))
        return ln_error(LN_EINVAL, "the number %g cannot be combined with a %s tensor "
                        "(it is not a 32-bit integer); convert with t:to(\"float32\")",
                        s, ln_dtype_name(a->dtype));
    return LN_OK;
}

int ln_op_binary_scalar(ln_tensor *out, ln_binary_op op, const ln_tensor *a,
                        double s, int scalar_first)
{
    memset(out, 0, sizeof *out);
    LN_TRY(check_scalar_operand(op, a, s));
    ln_tensor ca = {0};
    int st = ln_tensor_contiguous(&ca, a);
    if (st == LN_OK)
        st = ln_tensor_alloc_like(out, &ca);
    if (st == LN_OK) {
        ln_device *dev = ln_tensor_device(a);
        st = LN_CALL(dev, binary_scalar, op, a->dtype, ln_tensor_numel(a),
                     ln_tensor_data(&ca), s, scalar_first, ln_tensor_data(out));
        if (st != LN_OK)
            ln_tensor_release(out);
    }
    ln_tensor_release(&ca);
    return st;
}

int ln_op_binary_scalar_self(ln_tensor *t, ln_binary_op op, double s)
{
    LN_TRY(check_scalar_operand(op, t, s));
    if (!ln_tensor_is_contiguous(t))
        return ln_error(LN_EINVAL, "in-place arithmetic with a number needs a contiguous "
                        "tensor");
    int64_t n = ln_tensor_numel(t);
    if (n == 0)
        return LN_OK;
    /* elementwise, each element read before it is written: out may be a */
    return LN_CALL(ln_tensor_device(t), binary_scalar, op, t->dtype, n, ln_tensor_data(t), s,
                   0, ln_tensor_data(t));
}

int ln_op_reduce(const ln_tensor *t, ln_reduce_op op, double *result)
{
    LN_TRY(ln_tensor_check_live(t));
    int64_t n = ln_tensor_numel(t);
    if (n == 0) {
        if (op != LN_SUM)
            return ln_error(LN_EINVAL, "%s of an empty tensor is undefined",
                            op == LN_MAX ? "max" : "min");
        *result = 0;
        return LN_OK;
    }
    ln_tensor c = {0};
    LN_TRY(ln_tensor_contiguous(&c, t));
    ln_device_note_host_read();
    int st = LN_CALL(ln_tensor_device(t), reduce, op, t->dtype, n, ln_tensor_data(&c),
                     result);
    ln_tensor_release(&c);
    return st;
}

int ln_op_argmax(ln_tensor *out, const ln_tensor *t, int dim)
{
    char s[256];
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(t));
    if (t->ndim == 0)
        return ln_error(LN_EINVAL, "argmax needs at least one dimension, got a scalar");
    if (dim < 0 || dim >= t->ndim)
        return ln_error(LN_EINVAL, "dimension %d is out of range for shape %s (1..%d)",
                        dim + 1, ln_tensor_shape_string(t, s, sizeof s), t->ndim);
    if (t->shape[dim] == 0)
        return ln_error(LN_EINVAL, "argmax along an empty dimension %d of shape %s",
                        dim + 1, ln_tensor_shape_string(t, s, sizeof s));
    int64_t outer = 1, inner = 1, shape[LN_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i < dim)
            outer *= t->shape[i];
        if (i > dim)
            inner *= t->shape[i];
        if (i != dim)
            shape[nd++] = t->shape[i];
    }
    ln_tensor c = {0};
    LN_TRY(ln_tensor_contiguous(&c, t));
    ln_device *dev = ln_tensor_device(t);
    int st = ln_tensor_alloc(out, dev, LN_INT32, nd, shape);
    if (st == LN_OK && outer * inner > 0) {
        st = LN_CALL(dev, argmax, t->dtype, outer, t->shape[dim], inner,
                     ln_tensor_data(&c), ln_tensor_data(out));
        if (st != LN_OK)
            ln_tensor_release(out);
    }
    ln_tensor_release(&c);
    return st;
}

int ln_op_matmul(ln_tensor *out, const ln_tensor *a, const ln_tensor *b)
{
    char sa[256], sb[256];
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(a));
    LN_TRY(ln_tensor_check_live(b));
    LN_TRY(ln_check_same_device("the matrices", a, b));
    if (a->ndim != 2 || b->ndim != 2 || a->shape[1] != b->shape[0])
        return ln_error(LN_EINVAL, "expected matrices [M, K] and [K, N], got %s and %s",
                        ln_tensor_shape_string(a, sa, sizeof sa),
                        ln_tensor_shape_string(b, sb, sizeof sb));
    if (a->dtype != b->dtype)
        return ln_error(LN_EINVAL, "dtypes %s and %s differ", ln_dtype_name(a->dtype),
                        ln_dtype_name(b->dtype));
    if (!ln_dtype_is_float(a->dtype))
        return ln_error(LN_EINVAL, "matrix product of %s tensors is not supported; "
                        "convert with t:to(\"float32\")", ln_dtype_name(a->dtype));
    if (a->shape[0] > INT32_MAX || a->shape[1] > INT32_MAX || b->shape[1] > INT32_MAX)
        return ln_error(LN_EINVAL, "matrices %s and %s are too large for one product",
                        ln_tensor_shape_string(a, sa, sizeof sa),
                        ln_tensor_shape_string(b, sb, sizeof sb));
    int m = (int)a->shape[0], k = (int)a->shape[1], n = (int)b->shape[1];
    ln_tensor ca = {0}, cb = {0};
    ln_device *dev = ln_tensor_device(a);
    int64_t shape[2] = {m, n};
    int st = ln_tensor_contiguous(&ca, a);
    if (st == LN_OK)
        st = ln_tensor_contiguous(&cb, b);
    if (st == LN_OK)
        st = ln_tensor_alloc(out, dev, a->dtype, 2, shape);
    if (st == LN_OK) {
        st = LN_CALL(dev, gemm, a->dtype, 0, 0, m, n, k, 1.0f, ln_tensor_data(&ca),
                     k ? k : 1, ln_tensor_data(&cb), n ? n : 1, 0.0f,
                     ln_tensor_data(out), n ? n : 1);
        if (st != LN_OK)
            ln_tensor_release(out);
    }
    ln_tensor_release(&ca);
    ln_tensor_release(&cb);
    return st;
}

typedef int (*rand_fn)(void *, ln_dtype, int64_t, void *, double, double, uint64_t,
                       uint64_t);

static int rand_fill(ln_tensor *t, int normal, double p1, double p2)
{
    LN_TRY(ln_tensor_check_live(t));
    if (!ln_dtype_is_float(t->dtype))
        return ln_error(LN_EINVAL, "random values need a floating-point tensor, got %s",
                        ln_dtype_name(t->dtype));
    int64_t n = ln_tensor_numel(t);
    if (n == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(t);
    rand_fn fn = normal ? dev->backend->rand_normal : dev->backend->rand_uniform;
    if (!fn)
        return ln_device_unsupported(dev, normal ? "rand_normal" : "rand_uniform");
    uint64_t seed = ln_random_get_seed(), offset = ln_random_reserve((uint64_t)n);
    if (t->dtype == LN_FLOAT32 && ln_tensor_is_contiguous(t))
        return fn(dev->ctx, LN_FLOAT32, n, ln_tensor_data(t), p1, p2, seed, offset);
    /* draw in float32, then convert and scatter */
    ln_tensor tmp = {0};
    LN_TRY(ln_tensor_alloc(&tmp, dev, LN_FLOAT32, t->ndim, t->shape));
    int st = fn(dev->ctx, LN_FLOAT32, n, ln_tensor_data(&tmp), p1, p2, seed, offset);
    if (st == LN_OK)
        st = ln_tensor_copy(t, &tmp);
    ln_tensor_release(&tmp);
    return st;
}

int ln_op_rand_uniform(ln_tensor *t, double lo, double hi)
{
    if (!(lo <= hi) || !isfinite(lo) || !isfinite(hi))
        return ln_error(LN_EINVAL, "uniform range [%g, %g) is not a finite interval", lo, hi);
    return rand_fill(t, 0, lo, hi);
}

int ln_op_rand_normal(ln_tensor *t, double mean, double std)
{
    if (!(std >= 0) || !isfinite(mean) || !isfinite(std))
        return ln_error(LN_EINVAL, "normal(mean %g, std %g) needs a finite mean and "
                        "std >= 0", mean, std);
    return rand_fill(t, 1, mean, std);
}

int ln_op_gather_rows(ln_tensor *out, const ln_tensor *src, const ln_tensor *indices,
                      double divisor)
{
    char s1[256], s2[256], s3[256];
    LN_TRY(ln_tensor_check_live(out));
    LN_TRY(ln_tensor_check_live(src));
    LN_TRY(ln_tensor_check_live(indices));
    LN_TRY(ln_check_same_device("the source and the output", src, out));
    LN_TRY(ln_check_same_device("the source and the indices", src, indices));
    LN_TRY(ln_check_dtype("indices", indices, LN_INT32));
    int64_t n = ln_tensor_numel(indices);
    int ok = src->ndim >= 1 && out->ndim == src->ndim && out->shape[0] == n
             && ln_tensor_is_contiguous(out) && ln_tensor_is_contiguous(src)
             && ln_tensor_is_contiguous(indices);
    for (int i = 1; ok && i < src->ndim; i++)
        ok = out->shape[i] == src->shape[i];
    if (!ok)
        return ln_error(LN_EINVAL, "cannot gather %lld rows of %s into %s (indices %s)",
                        (long long)n, ln_tensor_shape_string(src, s1, sizeof s1),
                        ln_tensor_shape_string(out, s2, sizeof s2),
                        ln_tensor_shape_string(indices, s3, sizeof s3));
    if (n == 0)
        return LN_OK;
    int64_t row = ln_tensor_numel(src) / (src->shape[0] ? src->shape[0] : 1);
    ln_device *dev = ln_tensor_device(src);
    if (dev->host_memory) {
        /* indices are readable here: check them (the CUDA path trusts the loader) */
        const int32_t *idx = ln_tensor_data(indices);
        for (int64_t i = 0; i < n; i++)
            if (idx[i] < 0 || idx[i] >= src->shape[0])
                return ln_error(LN_EINVAL, "row index %d is outside 1..%lld",
                                idx[i] + 1, (long long)src->shape[0]);
    }
    return LN_CALL(dev, gather_rows, src->dtype, ln_tensor_data(src), out->dtype,
                   ln_tensor_data(out), row, ln_tensor_data(indices), n, src->shape[0],
                   divisor);
}
