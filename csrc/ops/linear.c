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

/* y = x w^T as one GEMM over the batch, then the bias per output feature. */
static int linear_forward_kernel(ln_device *dev, void *arg, int64_t count,
                                 const void *const *in, void *const *out)
{
    const int *d = arg; /* n, in, out */
    int n = d[0], k = d[1], m = d[2];
    (void)count;
    int st = LN_CALL(dev, gemm, LN_FLOAT32, 0, 1, n, m, k, 1.0f, in[0], k ? k : 1, in[1],
                     k ? k : 1, 0.0f, out[0], m);
    if (st == LN_OK && in[2])
        st = LN_CALL(dev, bias_add, n, m, 1, out[0], in[2]);
    return st;
}

int ln_nn_linear_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         ln_tensor *y)
{
    LN_TRY(ln_nn_linear_check(x, w));
    int d[3] = {(int)x->shape[0], (int)w->shape[1], (int)w->shape[0]};
    int64_t out64 = d[2], yshape[2] = {d[0], d[2]};
    ln_op op = {.in = {{"the input", x}, {"the weight", w}, {"the bias", bias, 1, &out64}},
                .out = {{"the output", y, 2, yshape}},
                .n = yshape[0] * yshape[1]};
    return ln_op_run(&op, linear_forward_kernel, d);
}

/* dx = dy w */
static int linear_backward_data_kernel(ln_device *dev, void *arg, int64_t count,
                                       const void *const *in, void *const *out)
{
    const int *d = arg;
    int n = d[0], k = d[1], m = d[2];
    (void)count;
    return LN_CALL(dev, gemm, LN_FLOAT32, 0, 0, n, k, m, 1.0f, in[0], m ? m : 1, in[1], k,
                   0.0f, out[0], k);
}

int ln_nn_linear_backward_data(const ln_tensor *dy, const ln_tensor *w, ln_tensor *dx)
{
    LN_TRY(ln_nn_linear_check_grad(dy, w));
    int d[3] = {(int)dy->shape[0], (int)w->shape[1], (int)w->shape[0]};
    int64_t xshape[2] = {d[0], d[1]};
    ln_op op = {.in = {{"the output gradient", dy}, {"the weight", w}},
                .out = {{"the input gradient", dx, 2, xshape}},
                .n = xshape[0] * xshape[1]};
    return ln_op_run(&op, linear_backward_data_kernel, d);
}

/* dw (+)= dy^T x, db (+)= column sums of dy */
typedef struct linear_filter_call {
    int n, in, out, accumulate;
} linear_filter_call;

static int linear_backward_filter_kernel(ln_device *dev, void *arg, int64_t count,
                                         const void *const *in, void *const *out)
{
    const linear_filter_call *c = arg;
    (void)count;
    int st = LN_CALL(dev, gemm, LN_FLOAT32, 1, 0, c->out, c->in, c->n, 1.0f, in[1], c->out,
                     in[0], c->in, c->accumulate ? 1.0f : 0.0f, out[0], c->in);
    if (st == LN_OK && out[1])
        st = LN_CALL(dev, bias_backward, c->n, c->out, 1, in[1], out[1], c->accumulate);
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
    linear_filter_call c = {(int)x->shape[0], (int)in, (int)out, accumulate};
    ln_op op = {.in = {{"the input", x}, {"the output gradient", dy}},
                .out = {{"the weight gradient", dw}, {"the bias gradient", db, 1, &out}},
                /* an empty batch zeroes the gradients below; an empty weight has none */
                .n = ln_tensor_numel(dw) == 0 ? 0 : c.n};
    LN_TRY(ln_op_run(&op, linear_backward_filter_kernel, &c));
    return c.n == 0 ? ln_op_zero_unless_accumulating(dw, db, accumulate) : LN_OK;
}
