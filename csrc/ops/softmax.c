/* The softmax family: softmax and log_softmax along a dimension. */
#include "families.h"

#include <string.h>

#include "../device.h"
#include "../status.h"

void ln_split_at_dim(const ln_tensor *x, int dim, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < x->ndim; i++) {
        if (i < dim)
            *outer *= x->shape[i];
        if (i > dim)
            *inner *= x->shape[i];
    }
}

static int check_dim(const ln_tensor *x, int dim)
{
    char s[256];
    if (x->ndim == 0)
        return ln_error(LN_EINVAL, "a scalar tensor has no dimension to take softmax along");
    if (dim < 0 || dim >= x->ndim)
        return ln_error(LN_EINVAL, "dim %d is out of range for shape %s (1..%d)", dim + 1,
                        ln_tensor_shape_string(x, s, sizeof s), x->ndim);
    return LN_OK;
}

/* On failure an output allocated here is released; one given is left as it is. */
static int finish(int st, ln_tensor *out, int allocated)
{
    if (st != LN_OK && allocated)
        ln_tensor_release(out);
    return st;
}

int ln_op_softmax(ln_tensor *out, int log, const ln_tensor *x, int dim)
{
    memset(out, 0, sizeof *out);
    return ln_op_softmax_into(out, log, x, dim);
}

int ln_op_softmax_into(ln_tensor *out, int log, const ln_tensor *x, int dim)
{
    LN_TRY(ln_tensor_check_live(x));
    LN_TRY(check_dim(x, dim));
    int64_t outer, inner;
    ln_split_at_dim(x, dim, &outer, &inner);
    ln_tensor cx = {0};
    int allocated = 0;
    LN_TRY(ln_contiguous_float(&cx, x));
    int st = ln_family_output(out, &cx, &allocated);
    if (st == LN_OK && ln_tensor_numel(&cx) > 0)
        st = finish(LN_CALL(ln_tensor_device(x), softmax, log, outer, x->shape[dim], inner,
                            ln_tensor_data(&cx), ln_tensor_data(out)), out, allocated);
    ln_tensor_release(&cx);
    return st;
}

int ln_op_softmax_backward(ln_tensor *dx, int log, const ln_tensor *y, const ln_tensor *dy,
                           int dim)
{
    memset(dx, 0, sizeof *dx);
    return ln_op_softmax_backward_into(dx, log, y, dy, dim);
}

int ln_op_softmax_backward_into(ln_tensor *dx, int log, const ln_tensor *y, const ln_tensor *dy,
                                int dim)
{
    char a[256], b[256];
    LN_TRY(ln_tensor_check_live(y));
    LN_TRY(ln_tensor_check_live(dy));
    LN_TRY(check_dim(y, dim));
    if (!ln_tensor_same_shape(y, dy))
        return ln_error(LN_EINVAL, "grad_output has shape %s, the output %s",
                        ln_tensor_shape_string(dy, a, sizeof a),
                        ln_tensor_shape_string(y, b, sizeof b));
    if (ln_tensor_device(y) != ln_tensor_device(dy))
        return ln_error(LN_EINVAL, "grad_output is on %s, the output on %s",
                        ln_tensor_device(dy)->name, ln_tensor_device(y)->name);
    int64_t outer, inner;
    ln_split_at_dim(y, dim, &outer, &inner);
    ln_tensor cy = {0}, cdy = {0};
    int allocated = 0;
    int st = ln_contiguous_float(&cy, y);
    if (st == LN_OK)
        st = ln_contiguous_float(&cdy, dy);
    if (st == LN_OK)
        st = ln_family_output(dx, &cy, &allocated);
    if (st == LN_OK && ln_tensor_numel(&cy) > 0)
        st = finish(LN_CALL(ln_tensor_device(y), softmax_backward, log, outer, y->shape[dim],
                            inner, ln_tensor_data(&cy), ln_tensor_data(&cdy), ln_tensor_data(dx)),
                    dx, allocated);
    ln_tensor_release(&cy);
    ln_tensor_release(&cdy);
    return st;
}
