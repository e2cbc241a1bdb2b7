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

int ln_op_unary(ln_tensor *out, ln_unary_op op, const ln_unary_params *p, const ln_tensor *x)
{
    memset(out, 0, sizeof *out);
    LN_TRY(ln_tensor_check_live(x));
    if (op < 0 || op >= LN_UNARY_COUNT)
        return ln_error(LN_EINVAL, "unknown unary op %d", (int)op);
    ln_tensor cx = {0};
    LN_TRY(ln_contiguous_float(&cx, x));
    int st = ln_tensor_alloc_like(out, &cx);
    int64_t n = ln_tensor_numel(&cx);
    if (st == LN_OK && n > 0) {
        st = LN_CALL(ln_tensor_device(x), unary, op, p, n, ln_tensor_data(&cx),
                     ln_tensor_data(out));
        if (st != LN_OK)
            ln_tensor_release(out);
    }
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
    LN_TRY(ln_tensor_check_live(x));
    if (!ln_unary_has_backward(op))
        return ln_error(LN_EINVAL, "%s has no backward in the unary family",
                        ln_unary_name(op));
    LN_TRY(check_like("the output", y, x));
    LN_TRY(check_like("grad_output", dy, x));
    ln_tensor cx = {0}, cy = {0}, cdy = {0};
    int st = ln_contiguous_float(&cx, x);
    if (st == LN_OK)
        st = ln_contiguous_float(&cy, y);
    if (st == LN_OK)
        st = ln_contiguous_float(&cdy, dy);
    if (st == LN_OK)
        st = ln_tensor_alloc_like(dx, &cx);
    int64_t n = ln_tensor_numel(x);
    if (st == LN_OK && n > 0) {
        st = LN_CALL(ln_tensor_device(x), unary_backward, op, p, n, ln_tensor_data(&cx),
                     ln_tensor_data(&cy), ln_tensor_data(&cdy), ln_tensor_data(dx));
        if (st != LN_OK)
            ln_tensor_release(dx);
    }
    ln_tensor_release(&cx);
    ln_tensor_release(&cy);
    ln_tensor_release(&cdy);
    return st;
}
