/* The unary family: exp, log, ..., the activations and their gradients. */
#include "families.h"

#include <string.h>

#include "../device.h"
#include "../formulas.h"
#include "../status.h"

int ln_contiguous_float(ln_tensor *out, const ln_tensor *t)
{
    if (t->dtype == LN_FLOAT32)
        return ln_tensor_contiguous(out, t);
    return ln_tensor_to(out, t, ln_tensor_device(t), LN_FLOAT32);
}

int ln_family_output(ln_tensor *out, const ln_tensor *like, int *allocated)
{
    char a[256], b[256];
    *allocated = 0;
    if (!out->storage) {
        LN_TRY(ln_tensor_alloc(out, ln_tensor_device(like), LN_FLOAT32, like->ndim, like->shape));
        *allocated = 1;
        return LN_OK;
    }
    if (out->dtype != LN_FLOAT32 || !ln_tensor_is_contiguous(out)
        || !ln_tensor_same_shape(out, like) || ln_tensor_device(out) != ln_tensor_device(like))
        return ln_error(LN_EINVAL, "the output tensor (%s, %s %s) does not fit the result "
                        "(contiguous float32 %s on %s)", ln_dtype_name(out->dtype),
                        ln_tensor_device(out)->name, ln_tensor_shape_string(out, a, sizeof a),
                        ln_tensor_shape_string(like, b, sizeof b), ln_tensor_device(like)->name);
    return LN_OK;
}

/* On failure an output allocated here is released; one given is left as it is. */
static int finish(int st, ln_tensor *out, int allocated)
{
    if (st != LN_OK && allocated)
        ln_tensor_release(out);
    return st;
}

int ln_op_unary(ln_tensor *out, ln_unary_op op, const ln_unary_params *p, const ln_tensor *x)
{
    memset(out, 0, sizeof *out);
    return ln_op_unary_into(out, op, p, x);
}

int ln_op_unary_into(ln_tensor *out, ln_unary_op op, const ln_unary_params *p,
                     const ln_tensor *x)
{
    LN_TRY(ln_tensor_check_live(x));
    if (op < 0 || op >= LN_UNARY_COUNT)
        return ln_error(LN_EINVAL, "unknown unary op %d", (int)op);
    ln_tensor cx = {0};
    int allocated = 0;
    LN_TRY(ln_contiguous_float(&cx, x));
    int st = ln_family_output(out, &cx, &allocated);
    int64_t n = ln_tensor_numel(&cx);
    if (st == LN_OK && n > 0)
        st = finish(LN_CALL(ln_tensor_device(x), unary, op, p, n, ln_tensor_data(&cx),
                            ln_tensor_data(out)), out, allocated);
    ln_tensor_release(&cx);
    return st;
}

static int check_like(const char *what, const ln_tensor *t, const ln_tensor *like)
{
    char a[256], b[256];
    LN_TRY(ln_tensor_check_live(t));
    if (!ln_tensor_same_shape(t, like))
        return ln_error(LN_EINVAL, "%s has shape %s, expected %s (the input's)", what,
                        ln_tensor_shape_string(t, a, sizeof a),
                        ln_tensor_shape_string(like, b, sizeof b));
    if (ln_tensor_device(t) != ln_tensor_device(like))
        return ln_error(LN_EINVAL, "%s is on %s, the input on %s", what,
                        ln_tensor_device(t)->name, ln_tensor_device(like)->name);
    return LN_OK;
}

int ln_op_unary_backward(ln_tensor *dx, ln_unary_op op, const ln_unary_params *p,
                         const ln_tensor *x, const ln_tensor *y, const ln_tensor *dy)
{
    memset(dx, 0, sizeof *dx);
    return ln_op_unary_backward_into(dx, op, p, x, y, dy);
}

int ln_op_unary_backward_into(ln_tensor *dx, ln_unary_op op, const ln_unary_params *p,
                              const ln_tensor *x, const ln_tensor *y, const ln_tensor *dy)
{
    LN_TRY(ln_tensor_check_live(x));
    if (!ln_unary_has_backward(op))
        return ln_error(LN_EINVAL, "%s has no backward in the unary family",
                        ln_unary_name(op));
    LN_TRY(check_like("the output", y, x));
    LN_TRY(check_like("grad_output", dy, x));
    ln_tensor cx = {0}, cy = {0}, cdy = {0};
    int allocated = 0;
    int st = ln_contiguous_float(&cx, x);
    if (st == LN_OK)
        st = ln_contiguous_float(&cy, y);
    if (st == LN_OK)
        st = ln_contiguous_float(&cdy, dy);
    if (st == LN_OK)
        st = ln_family_output(dx, &cx, &allocated);
    int64_t n = ln_tensor_numel(x);
    if (st == LN_OK && n > 0)
        st = finish(LN_CALL(ln_tensor_device(x), unary_backward, op, p, n, ln_tensor_data(&cx),
                            ln_tensor_data(&cy), ln_tensor_data(&cdy), ln_tensor_data(dx)),
                    dx, allocated);
    ln_tensor_release(&cx);
    ln_tensor_release(&cy);
    ln_tensor_release(&cdy);
    return st;
}
