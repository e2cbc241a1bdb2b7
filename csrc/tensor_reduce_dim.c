#include "tensor_reduce_dim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/families.h"
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

static inline double load(const void *x, ln_dtype dtype, int64_t k)
{
    /* float32 inline: the common case, read without the generic conversion */
    return dtype == LN_FLOAT32 ? (double)((const float *)x)[k] : ln_load_as_double(x, dtype, k);
}

/* values[k] = the accumulated v (a sum becomes a mean here). */
static int store_result(ln_dim_reduction op, void *values, ln_dtype vdtype, int64_t k,
                        double v, int64_t n)
{
    if (op == LN_DIM_MEAN)
        v = n ? v / (double)n : NAN;
    else if (vdtype == LN_INT32 && op == LN_DIM_SUM
             && !(v >= -2147483648.0 && v <= 2147483647.0))
        return ln_error(LN_EINVAL, "a sum (%.17g) does not fit in int32; convert with "
                        "t:to(\"float32\") first", v);
    ln_store_from_double(values, vdtype, k, v);
    return LN_OK;
}

/* Reduces contiguous x of shape [outer, n, inner] along n into values and
 * positions of shape [outer, inner]. Walking n outermost keeps the reads
 * sequential whichever dimension is reduced; `acc` holds inner doubles. */
static int reduce_middle(ln_dim_reduction op, ln_dtype dtype, int64_t outer, int64_t n,
                         int64_t inner, const void *x, void *values, ln_dtype vdtype,
                         int32_t *positions, double *acc)
{
    const int extreme = op == LN_DIM_MAX || op == LN_DIM_MIN;
    if (inner == 1) {
        /* rows of the last dimension: the accumulator stays in a register */
        for (int64_t o = 0; o < outer; o++) {
            const int64_t base = o * n;
            double v = extreme ? load(x, dtype, base) : 0;
            int64_t best = 0;
            for (int64_t j = extreme ? 1 : 0; j < n; j++) {
                double e = load(x, dtype, base + j);
                if (!extreme)
                    v += e;
                else if (v == v && (e != e || (op == LN_DIM_MAX ? e > v : e < v))) {
                    v = e;
                    best = j;
                }
            }
            if (extreme)
                positions[o] = (int32_t)(best + 1);
            LN_TRY(store_result(op, values, vdtype, o, v, n));
        }
        return LN_OK;
    }
    for (int64_t o = 0; o < outer; o++) {
        const int64_t base = o * n * inner;
        int32_t *pos = extreme ? positions + o * inner : NULL;
        for (int64_t i = 0; i < inner; i++) {
            acc[i] = extreme ? load(x, dtype, base + i) : 0;
            if (extreme)
                pos[i] = 1;
        }
        for (int64_t j = extreme ? 1 : 0; j < n; j++) {
            const int64_t row = base + j * inner;
            if (!extreme) {
                for (int64_t i = 0; i < inner; i++)
                    acc[i] += load(x, dtype, row + i);
                continue;
            }
            /* the first extreme; the first NaN beats everything and stays */
            for (int64_t i = 0; i < inner; i++) {
                double v = load(x, dtype, row + i);
                if (acc[i] == acc[i]
                    && (v != v || (op == LN_DIM_MAX ? v > acc[i] : v < acc[i]))) {
                    acc[i] = v;
                    pos[i] = (int32_t)(j + 1);
                }
            }
        }
        for (int64_t i = 0; i < inner; i++)
            LN_TRY(store_result(op, values, vdtype, o * inner + i, acc[i], n));
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

    /* float32 runs on the tensor's device through the reduce_dim family
     * (ops/reduce.c): the formula every backend shares, no round trip to the
     * host on a GPU. The other dtypes take the host path below. */
    if (t->dtype == LN_FLOAT32) {
        static const ln_reduce_op family_op[] = {LN_SUM, LN_MEAN, LN_MAX, LN_MIN};
        return ln_op_reduce_dim(values, positions, t, family_op[op], dim, keepdim);
    }

    int64_t out_shape[LN_MAX_DIMS], outer = 1, inner = 1;
    int out_ndim = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i != dim)
            out_shape[out_ndim++] = t->shape[i];
        else if (keepdim)
            out_shape[out_ndim++] = 1;
        if (i < dim)
            outer *= t->shape[i];
        if (i > dim)
            inner *= t->shape[i];
    }

    /* On a device whose memory is the host's, read t in place (copied only
     * when strided) and write the results where they stay; on others, go
     * through host copies. */
    ln_device *dev = ln_tensor_device(t), *host = ln_device_cpu();
    const int in_place = dev->host_memory;
    ln_device *work = in_place ? dev : host;
    ln_dtype vdtype = values_dtype(op, t->dtype);
    ln_tensor x = {0}, hv = {0}, hp = {0};
    double *acc = malloc(sizeof(double) * (size_t)(inner ? inner : 1));
    int st = acc ? LN_OK : ln_error(LN_ENOMEM, "out of host memory for %lld accumulators",
                                    (long long)inner);
    if (st == LN_OK)
        st = in_place ? ln_tensor_contiguous(&x, t) : ln_tensor_to(&x, t, host, t->dtype);
    if (st == LN_OK)
        st = ln_tensor_alloc(&hv, work, vdtype, out_ndim, out_shape);
    if (st == LN_OK && with_positions)
        st = ln_tensor_alloc(&hp, work, LN_INT32, out_ndim, out_shape);
    if (st == LN_OK && outer * inner > 0)
        st = reduce_middle(op, t->dtype, outer, n, inner, ln_tensor_data(&x),
                           ln_tensor_data(&hv), vdtype,
                           with_positions ? ln_tensor_data(&hp) : NULL, acc);
    free(acc);
    if (st == LN_OK && in_place) {
        *values = hv; /* handed over */
        hv = (ln_tensor){0};
        if (with_positions) {
            *positions = hp;
            hp = (ln_tensor){0};
        }
    } else if (st == LN_OK) {
        st = ln_tensor_to(values, &hv, dev, vdtype);
        if (st == LN_OK && with_positions) {
            st = ln_tensor_to(positions, &hp, dev, LN_INT32);
            if (st != LN_OK)
                ln_tensor_release(values);
        }
    }
    ln_tensor_release(&x);
    ln_tensor_release(&hv);
    ln_tensor_release(&hp);
    return st;
}
