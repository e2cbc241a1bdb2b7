/* The reduce_dim family: sum, mean, max and min along one dimension. */
#include "families.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "../device.h"
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
    if (x->dtype != LN_FLOAT32)
        return ln_error(LN_EINVAL, "%s along a dimension takes float32, got %s",
                        reduction_name(op), ln_dtype_name(x->dtype));
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
