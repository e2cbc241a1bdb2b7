/* The reduce_dim family: sum, mean, max and min along one dimension, for
 * every dtype. The checks and the result's shape are here once; float32 runs
 * on the tensor's device through the backend slot, the other dtypes (int32,
 * uint8, and CUDA's 16-bit floats) on the host with the same row rules
 * (formulas.h's LN_REDUCE_ROW). */
#include "families.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../device.h"
#include "../formulas.h"
#include "../status.h"

static const char *reduction_name(ln_reduce_op op)
{
    switch (op) {
    case LN_SUM: return "sum";
    case LN_MEAN: return "mean";
    case LN_MAX: return "max";
    case LN_MIN: return "min";
    }
    return "reduction";
}

/* Sums of integers are int32 and their means float32; otherwise the values
 * keep the input's dtype. */
static ln_dtype values_dtype(ln_reduce_op op, ln_dtype dtype)
{
    if (ln_dtype_is_float(dtype) || op == LN_MAX || op == LN_MIN)
        return dtype;
    return op == LN_SUM ? LN_INT32 : LN_FLOAT32;
}

/* Contiguous host x of shape [outer, n, inner] reduced along n into values
 * and positions of shape [outer, inner], element by element as the backends
 * reduce float32 rows. */
static int reduce_on_host(ln_reduce_op op, ln_dtype dtype, int64_t outer, int64_t n,
                          int64_t inner, const void *x, void *values, ln_dtype vdtype,
                          int32_t *positions)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const int64_t base = o * n * inner + i, at = o * inner + i;
            double v;
            int64_t best;
#define LN_LOAD_ANY_(k) ln_load_as_double(x, dtype, base + (k) * inner)
            LN_REDUCE_ROW(op, n, double, LN_LOAD_ANY_, v, best);
#undef LN_LOAD_ANY_
            if (vdtype == LN_INT32 && op == LN_SUM && !(v >= -2147483648.0 && v <= 2147483647.0))
                return ln_error(LN_EINVAL, "a sum (%.17g) does not fit in int32; convert with "
                                "t:to(\"float32\") first", v);
            ln_store_from_double(values, vdtype, at, v);
            if (positions)
                positions[at] = (int32_t)(best + 1);
        }
    return LN_OK;
}

/* The dtypes other than float32: read on the host (in place on a device whose
 * memory is the host's, else through a copy) and written back to x's device. */
static int reduce_other_dtype(ln_tensor *values, ln_tensor *positions, const ln_tensor *x,
                              ln_reduce_op op, int nd, const int64_t *shape, int64_t outer,
                              int64_t n, int64_t inner)
{
    ln_device *dev = ln_tensor_device(x), *host = ln_device_cpu();
    const int in_place = dev->host_memory;
    ln_device *work = in_place ? dev : host;
    const ln_dtype vdtype = values_dtype(op, x->dtype);
    ln_tensor hx = {0}, hv = {0}, hp = {0};
    int st = in_place ? ln_tensor_contiguous(&hx, x) : ln_tensor_to(&hx, x, host, x->dtype);
    if (st == LN_OK)
        st = ln_tensor_alloc(&hv, work, vdtype, nd, shape);
    if (st == LN_OK && positions)
        st = ln_tensor_alloc(&hp, work, LN_INT32, nd, shape);
    if (st == LN_OK && outer * inner > 0 && n == 0) /* as the float32 path below */
        st = ln_tensor_fill(&hv, op == LN_SUM ? 0.0 : (double)NAN);
    else if (st == LN_OK && outer * inner > 0)
        st = reduce_on_host(op, x->dtype, outer, n, inner, ln_tensor_data(&hx),
                            ln_tensor_data(&hv), vdtype,
                            positions ? ln_tensor_data(&hp) : NULL);
    if (st == LN_OK && in_place) {
        *values = hv; /* handed over */
        hv = (ln_tensor){0};
        if (positions) {
            *positions = hp;
            hp = (ln_tensor){0};
        }
    } else if (st == LN_OK) {
        st = ln_tensor_to(values, &hv, dev, vdtype);
        if (st == LN_OK && positions) {
            st = ln_tensor_to(positions, &hp, dev, LN_INT32);
            if (st != LN_OK)
                ln_tensor_release(values);
        }
    }
    ln_tensor_release(&hx);
    ln_tensor_release(&hv);
    ln_tensor_release(&hp);
    return st;
}

int ln_op_reduce_dim(ln_tensor *values, ln_tensor *positions, const ln_tensor *x,
                     ln_reduce_op op, int dim, int keepdim)
{
    char s[256];
    int with_positions = op == LN_MAX || op == LN_MIN;
    memset(values, 0, sizeof *values);
    if (positions)
        memset(positions, 0, sizeof *positions);
    LN_TRY(ln_tensor_check_live(x));
    if (with_positions != (positions != NULL))
        return ln_error(LN_EINVAL, "%s: positions are given for max and min only",
                        reduction_name(op));
    if (x->ndim == 0)
        return ln_error(LN_EINVAL, "a scalar tensor has no dimension to reduce");
    if (dim < 0 || dim >= x->ndim)
        return ln_error(LN_EINVAL, "dimension %d is out of range for shape %s (1..%d)",
                        dim + 1, ln_tensor_shape_string(x, s, sizeof s), x->ndim);
    int64_t n = x->shape[dim];
    if (with_positions && n == 0)
        return ln_error(LN_EINVAL, "%s along dimension %d of shape %s: the dimension is "
                        "empty", reduction_name(op), dim + 1,
                        ln_tensor_shape_string(x, s, sizeof s));
    if (with_positions && n > INT32_MAX)
        return ln_error(LN_EINVAL, "dimension %d of shape %s is too long for int32 "
                        "positions", dim + 1, ln_tensor_shape_string(x, s, sizeof s));
    int64_t shape[LN_MAX_DIMS], outer, inner;
    int nd = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != dim)
            shape[nd++] = x->shape[i];
        else if (keepdim)
            shape[nd++] = 1;
    ln_split_at_dim(x, dim, &outer, &inner);
    if (x->dtype != LN_FLOAT32)
        return reduce_other_dtype(values, positions, x, op, nd, shape, outer, n, inner);

    ln_device *dev = ln_tensor_device(x);
    ln_tensor cx = {0};
    LN_TRY(ln_tensor_contiguous(&cx, x));
    int st = ln_tensor_alloc(values, dev, LN_FLOAT32, nd, shape);
    if (st == LN_OK && with_positions)
        st = ln_tensor_alloc(positions, dev, LN_INT32, nd, shape);
    if (st == LN_OK && outer * inner > 0) {
        if (n == 0) /* a sum of nothing is 0, a mean of nothing NaN, as in PyTorch */
            st = ln_tensor_fill(values, op == LN_SUM ? 0.0 : (double)NAN);
        else
            st = LN_CALL(dev, reduce_dim, op, outer, n, inner, ln_tensor_data(&cx),
                         ln_tensor_data(values),
                         with_positions ? (int32_t *)ln_tensor_data(positions) : NULL);
    }
    if (st != LN_OK) {
        ln_tensor_release(values);
        if (positions)
            ln_tensor_release(positions);
    }
    ln_tensor_release(&cx);
    return st;
}
