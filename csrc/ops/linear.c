/* Fully connected layers: shape rules, then gemm/bias dispatch. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- fully connected ------------------------------------------------------------- */

/* x is the input (or the output gradient, named by `what`), w the weight
 * (or its gradient). */
static int check_linear_weight(const char *what, const ln_tensor *x, const char *w_what,
                               const ln_tensor *w)
{
    char sw[256];
    LN_TRY(ln_op_check_input(what, x));
    LN_TRY(ln_op_check_input(w_what, w));
    if (ln_tensor_device(x) != ln_tensor_device(w)) {
        char both[128];
        snprintf(both, sizeof both, "%s and %s", what, w_what);
        return ln_check_same_device(both, x, w);
    }
    if (w->ndim != 2)
        return ln_error(LN_EINVAL, "%s must be [out_features, in_features], got %s", w_what,
                        ln_tensor_shape_string(w, sw, sizeof sw));
    LN_TRY(ln_op_check_fits_int(what, x));
    return ln_op_check_fits_int(w_what, w);
}

int ln_nn_linear_check(const ln_tensor *x, const ln_tensor *w)
{
    char sx[256];
    LN_TRY(check_linear_weight("the input", x, "the weight", w));
    if (x->ndim != 2 || x->shape[1] != w->shape[1])
        return ln_error(LN_EINVAL, "expected input [N, %lld], got %s",
                        (long long)w->shape[1], ln_tensor_shape_string(x, sx, sizeof sx));
    return LN_OK;
}

int ln_nn_linear_check_grad(const ln_tensor *dy, const ln_tensor *w)
{
    char s[256];
    LN_TRY(check_linear_weight("the output gradient", dy, "the weight", w));
    if (dy->ndim != 2 || dy->shape[1] != w->shape[0])
        return ln_error(LN_EINVAL, "expected the output gradient [N, %lld], got %s",
                        (long long)w->shape[0], ln_tensor_shape_string(dy, s, sizeof s));
    return LN_OK;
}

int ln_nn_linear_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         ln_tensor *y)
{
    LN_TRY(ln_nn_linear_check(x, w));
    int n = (int)x->shape[0], in = (int)w->shape[1], out = (int)w->shape[0];
    int64_t out64 = out, yshape[2] = {n, out};
    if (bias)
        LN_TRY(ln_op_check_input_as("the bias", bias, x, 1, &out64));
    LN_TRY(ln_op_check_output("the output", y, x, 2, yshape));
    LN_TRY(ln_op_check_distinct("the output", y, "the input", x));
    LN_TRY(ln_op_check_distinct("the output", y, "the weight", w));
    LN_TRY(ln_op_check_distinct("the output", y, "the bias", bias));
    if (ln_tensor_numel(y) == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(x);
    ln_op_contiguous_inputs set = {0};
    const void *xd, *wd, *bd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, bias, &bd);
    /* y = x w^T as one GEMM over the batch, then the bias per output feature */
    if (st == LN_OK)
        st = LN_CALL(dev, gemm, LN_FLOAT32, 0, 1, n, out, in, 1.0f, xd, in ? in : 1, wd,
                     in ? in : 1, 0.0f, ln_tensor_data(y), out);
    if (st == LN_OK && bias)
        st = LN_CALL(dev, bias_add, n, out, 1, ln_tensor_data(y), bd);
    ln_op_release_inputs(&set);
    return st;
}

int ln_nn_linear_backward_data(const ln_tensor *dy, const ln_tensor *w, ln_tensor *dx)
{
    LN_TRY(ln_nn_linear_check_grad(dy, w));
    int n = (int)dy->shape[0], in = (int)w->shape[1], out = (int)w->shape[0];
    int64_t xshape[2] = {n, in};
    LN_TRY(ln_op_check_output("the input gradient", dx, dy, 2, xshape));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the weight", w));
    if (ln_tensor_numel(dx) == 0)
        return LN_OK;
    ln_op_contiguous_inputs set = {0};
    const void *dyd, *wd;
    int st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, w, &wd);
    /* dx = dy w */
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(dy), gemm, LN_FLOAT32, 0, 0, n, in, out, 1.0f, dyd,
                     out ? out : 1, wd, in, 0.0f, ln_tensor_data(dx), in);
    ln_op_release_inputs(&set);
    return st;
}

int ln_nn_linear_backward_filter(const ln_tensor *x, const ln_tensor *dy, ln_tensor *dw,
                                 ln_tensor *db, int accumulate)
{
    char sx[256], sd[256];
    LN_TRY(check_linear_weight("the input", x, "the weight gradient", dw));
    LN_TRY(ln_op_check_input("the output gradient", dy));
    LN_TRY(ln_check_same_device("the output gradient and the input", dy, x));
    int64_t out = dw->shape[0], in = dw->shape[1];
    if (x->ndim != 2 || x->shape[1] != in)
        return ln_error(LN_EINVAL, "expected input [N, %lld], got %s", (long long)in,
                        ln_tensor_shape_string(x, sx, sizeof sx));
    if (dy->ndim != 2 || dy->shape[0] != x->shape[0] || dy->shape[1] != out)
        return ln_error(LN_EINVAL, "expected the output gradient [%lld, %lld] for input "
                        "%s, got %s", (long long)x->shape[0], (long long)out, sx,
                        ln_tensor_shape_string(dy, sd, sizeof sd));
    LN_TRY(ln_op_check_output("the weight gradient", dw, x, 2, dw->shape));
    LN_TRY(ln_op_check_distinct("the weight gradient", dw, "the input", x));
    LN_TRY(ln_op_check_distinct("the weight gradient", dw, "the output gradient", dy));
    if (db) {
        LN_TRY(ln_op_check_output("the bias gradient", db, x, 1, &out));
        LN_TRY(ln_op_check_distinct("the bias gradient", db, "the output gradient", dy));
        LN_TRY(ln_op_check_distinct("the bias gradient", db, "the weight gradient", dw));
    }
    int n = (int)x->shape[0];
    if (n == 0)
        return ln_op_zero_unless_accumulating(dw, db, accumulate);
    if (ln_tensor_numel(dw) == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(x);
    ln_op_contiguous_inputs set = {0};
    const void *xd, *dyd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, dy, &dyd);
    /* dw (+)= dy^T x, db (+)= column sums of dy */
    if (st == LN_OK)
        st = LN_CALL(dev, gemm, LN_FLOAT32, 1, 0, (int)out, (int)in, n, 1.0f, dyd, (int)out,
                     xd, (int)in, accumulate ? 1.0f : 0.0f, ln_tensor_data(dw), (int)in);
    if (st == LN_OK && db)
        st = LN_CALL(dev, bias_backward, n, out, 1, dyd, ln_tensor_data(db), accumulate);
    ln_op_release_inputs(&set);
    return st;
}
