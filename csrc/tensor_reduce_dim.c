#include "tensor_reduce_dim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

static const char *reduction_name(ln_dim_reduction op)
{
    static const char *names[] = {"sum", "mean", "max", "min"};
    return names[op];
}

static ln_dtype values_dtype(ln_dim_reduction op, ln_dtype dtype)
{
    if (ln_dtype_is_float(dtype) || op == LN_DIM_MAX || op == LN_DIM_MIN)
        return dtype;
    return op == LN_DIM_SUM ? LN_INT32 : LN_FLOAT32;
}

/* Reduces each of the `rows` rows of `n` values in x (host, row-major). */
static int reduce_rows(ln_dim_reduction op, ln_dtype dtype, int64_t rows, int64_t n,
                       const void *x, void *values, ln_dtype values_dtype,
                       int32_t *positions)
{
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * n;
        double acc;
        if (op == LN_DIM_SUM || op == LN_DIM_MEAN) {
            acc = 0;
            for (int64_t j = 0; j < n; j++)
                acc += ln_load_as_double(x, dtype, base + j);
            if (op == LN_DIM_MEAN)
                acc = n ? acc / (double)n : NAN;
            else if (values_dtype == LN_INT32 && !(acc >= -2147483648.0 && acc <= 2147483647.0))
                return ln_error(LN_EINVAL, "a sum (%.17g) does not fit in int32; convert "
                                "with t:to(\"float32\") first", acc);
        } else {
            /* the first extreme; the first NaN beats everything */
            int64_t best = 0;
            acc = ln_load_as_double(x, dtype, base);
            for (int64_t j = 1; j < n && acc == acc; j++) {
                double v = ln_load_as_double(x, dtype, base + j);
                if (v != v || (op == LN_DIM_MAX ? v > acc : v < acc)) {
                    best = j;
                    acc = v;
                }
            }
            positions[r] = (int32_t)(best + 1);
        }
        ln_store_from_double(values, values_dtype, r, acc);
    }
    return LN_OK;
}

int ln_tensor_reduce_dim(ln_tensor *values, ln_tensor *positions, const ln_tensor *t,
                         ln_dim_reduction op, int dim, int keepdim)
{
    char s[256];
    int with_positions = op == LN_DIM_MAX || op == LN_DIM_MIN;
    memset(values, 0, sizeof *values);
    if (positions)
        memset(positions, 0, sizeof *positions);
    LN_TRY(ln_tensor_check_live(t));
    if (with_positions != (positions != NULL))
        return ln_error(LN_EINVAL, "%s: positions are given for max and min only",
                        reduction_name(op));
    if (t->ndim == 0)
        return ln_error(LN_EINVAL, "a scalar tensor has no dimension to reduce");
    if (dim < 0 || dim >= t->ndim)
        return ln_error(LN_EINVAL, "dimension %d is out of range for shape %s (1..%d)",
                        dim + 1, ln_tensor_shape_string(t, s, sizeof s), t->ndim);
    const int64_t n = t->shape[dim];
    if (with_positions && n == 0)
        return ln_error(LN_EINVAL, "%s along dimension %d of shape %s: the dimension is "
                        "empty", reduction_name(op), dim + 1,
                        ln_tensor_shape_string(t, s, sizeof s));
    if (with_positions && n > INT32_MAX)
        return ln_error(LN_EINVAL, "dimension %d of shape %s is too long for int32 "
                        "positions", dim + 1, ln_tensor_shape_string(t, s, sizeof s));

    /* the output's shape, and t viewed (borrowed) with `dim` last */
    int64_t out_shape[LN_MAX_DIMS];
    int out_ndim = 0;
    ln_tensor moved = *t;
    for (int i = 0, k = 0; i < t->ndim; i++) {
        if (i == dim) {
            if (keepdim)
                out_shape[out_ndim++] = 1;
            continue;
        }
        out_shape[out_ndim++] = t->shape[i];
        moved.shape[k] = t->shape[i];
        moved.stride[k] = t->stride[i];
        k++;
    }
    moved.shape[t->ndim - 1] = n;
    moved.stride[t->ndim - 1] = t->stride[dim];
    /* counted without n, so an empty reduced dimension still has its rows */
    int64_t rows = 1;
    for (int i = 0; i < t->ndim; i++)
        if (i != dim)
            rows *= t->shape[i];

    ln_device *dev = ln_tensor_device(t), *host = ln_device_cpu();
    ln_dtype vdtype = values_dtype(op, t->dtype);
    ln_tensor x = {0}, hv = {0}, hp = {0};
    int st = ln_tensor_to(&x, &moved, host, t->dtype);
    if (st == LN_OK)
        st = ln_tensor_alloc(&hv, host, vdtype, out_ndim, out_shape);
    if (st == LN_OK && with_positions)
        st = ln_tensor_alloc(&hp, host, LN_INT32, out_ndim, out_shape);
    if (st == LN_OK && rows > 0)
        st = reduce_rows(op, t->dtype, rows, n, ln_tensor_data(&x),
                         ln_tensor_data(&hv), vdtype,
                         with_positions ? ln_tensor_data(&hp) : NULL);
    if (st == LN_OK)
        st = ln_tensor_to(values, &hv, dev, vdtype);
    if (st == LN_OK && with_positions) {
        st = ln_tensor_to(positions, &hp, dev, LN_INT32);
        if (st != LN_OK)
            ln_tensor_release(values);
    }
    ln_tensor_release(&x);
    ln_tensor_release(&hv);
    ln_tensor_release(&hp);
    return st;
}
