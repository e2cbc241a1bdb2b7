/* Broadcasting for the binary family (PyTorch's rule: trailing sizes aligned,
 * a size 1 or a missing leading size stretches) and the in-place forms.
 *
 * A stretched operand becomes a view with stride 0 along the stretched
 * dimensions, made contiguous by the device's strided copy; the contiguous
 * binary slot then does the arithmetic. Same-shape operands never come here. */
#include "broadcast.h"

#include <math.h>
#include <string.h>

#include "../device.h"
#include "../status.h"
#include "../tensor_ops.h"

int ln_broadcast_shape(const ln_tensor *a, const ln_tensor *b, int *ndim, int64_t *shape)
{
    char sa[256], sb[256];
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - a->ndim), ib = i - (nd - b->ndim);
        int64_t da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return ln_error(LN_EINVAL, "shapes %s and %s cannot be broadcast together "
                            "(sizes %lld and %lld at dimension %d from the end)",
                            ln_tensor_shape_string(a, sa, sizeof sa),
                            ln_tensor_shape_string(b, sb, sizeof sb), (long long)da,
                            (long long)db, nd - i);
        shape[i] = da == 1 ? db : da;
    }
    *ndim = nd;
    return LN_OK;
}

/* A contiguous tensor holding t stretched to `shape` (shared when t already
 * is one of that shape). */
static int expand_contiguous(ln_tensor *out, const ln_tensor *t, int nd, const int64_t *shape)
{
    ln_tensor view;
    ln_tensor_share(&view, t);
    view.ndim = nd;
    for (int i = 0; i < nd; i++) {
        int j = i - (nd - t->ndim);
        view.shape[i] = shape[i];
        view.stride[i] = (j < 0 || (t->shape[j] == 1 && shape[i] != 1)) ? 0 : t->stride[j];
    }
    int st = ln_tensor_contiguous(out, &view);
    ln_tensor_release(&view);
    return st;
}

static int check_pair(ln_binary_op op, const ln_tensor *a, const ln_tensor *b)
{
    LN_TRY(ln_tensor_check_live(a));
    LN_TRY(ln_tensor_check_live(b));
    LN_TRY(ln_check_same_device("the operands", a, b));
    if (a->dtype != b->dtype)
        return ln_error(LN_EINVAL, "dtypes %s and %s differ; convert one with "
                        "t:to(dtype)", ln_dtype_name(a->dtype), ln_dtype_name(b->dtype));
    if (op == LN_DIV && !ln_dtype_is_float(a->dtype))
        return ln_error(LN_EINVAL, "division of %s tensors is not defined; convert "
                        "with t:to(\"float32\") first", ln_dtype_name(a->dtype));
    return LN_OK;
}

int ln_op_binary_broadcast(ln_tensor *out, ln_binary_op op, const ln_tensor *a,
                           const ln_tensor *b)
{
    int64_t shape[LN_MAX_DIMS];
    int nd;
    memset(out, 0, sizeof *out);
    LN_TRY(check_pair(op, a, b));
    LN_TRY(ln_broadcast_shape(a, b, &nd, shape));
    ln_device *dev = ln_tensor_device(a);
    ln_tensor ca = {0}, cb = {0};
    int st = expand_contiguous(&ca, a, nd, shape);
    if (st == LN_OK)
        st = expand_contiguous(&cb, b, nd, shape);
    if (st == LN_OK)
        st = ln_tensor_alloc(out, dev, a->dtype, nd, shape);
    if (st == LN_OK && ln_tensor_numel(out) > 0) {
        st = LN_CALL(dev, binary, op, a->dtype, ln_tensor_numel(out), ln_tensor_data(&ca),
                     ln_tensor_data(&cb), ln_tensor_data(out));
        if (st != LN_OK)
            ln_tensor_release(out);
    }
    ln_tensor_release(&ca);
    ln_tensor_release(&cb);
    return st;
}

/* Writes `result` (contiguous, t's shape) into t, or nothing when it is t's
 * own storage already. */
static int write_back(ln_tensor *t, const ln_tensor *result)
{
    if (result->storage == t->storage && result->offset == t->offset)
        return LN_OK;
    return ln_tensor_copy(t, result);
}

int ln_op_binary_inplace(ln_tensor *t, ln_binary_op op, const ln_tensor *u)
{
    char st_[256], su[256];
    LN_TRY(check_pair(op, t, u));
    int64_t shape[LN_MAX_DIMS];
    int nd;
    LN_TRY(ln_broadcast_shape(t, u, &nd, shape));
    int fits = nd == t->ndim;
    for (int i = 0; fits && i < nd; i++)
        fits = shape[i] == t->shape[i];
    if (!fits)
        return ln_error(LN_EINVAL, "the operand of shape %s cannot be broadcast to the "
                        "tensor's shape %s (in place, the result keeps the tensor's shape)",
                        ln_tensor_shape_string(u, su, sizeof su),
                        ln_tensor_shape_string(t, st_, sizeof st_));
    int64_t n = ln_tensor_numel(t);
    if (n == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(t);
    ln_tensor cu = {0}, result = {0};
    /* the stretched operand is read before anything is written, so u may be t */
    int st = expand_contiguous(&cu, u, nd, shape);
    if (st == LN_OK) {
        if (ln_tensor_is_contiguous(t))
            ln_tensor_share(&result, t);
        else
            st = ln_tensor_contiguous(&result, t);
    }
    if (st == LN_OK && cu.storage == t->storage
        && ln_tensor_data(&cu) != ln_tensor_data(&result)) {
        /* u overlaps t elsewhere than element for element (a view of its
         * storage, or stretched): read from a copy. u laid exactly over t
         * (t:mul_(t)) needs none: each element is read before it is written. */
        ln_tensor copy = {0};
        st = ln_tensor_alloc_like(&copy, &cu);
        if (st == LN_OK)
            st = ln_tensor_copy(&copy, &cu);
        ln_tensor_release(&cu);
        cu = copy;
    }
    if (st == LN_OK)
        st = LN_CALL(dev, binary, op, t->dtype, n, ln_tensor_data(&result),
                     ln_tensor_data(&cu), ln_tensor_data(&result));
    if (st == LN_OK)
        st = write_back(t, &result);
    ln_tensor_release(&cu);
    ln_tensor_release(&result);
    return st;
}

int ln_op_binary_scalar_inplace(ln_tensor *t, ln_binary_op op, double s)
{
    LN_TRY(ln_tensor_check_live(t));
    if (ln_tensor_is_contiguous(t))
        return ln_op_binary_scalar_self(t, op, s);
    ln_tensor result = {0};
    LN_TRY(ln_op_binary_scalar(&result, op, t, s, 0));
    int st = ln_tensor_copy(t, &result);
    ln_tensor_release(&result);
    return st;
}
