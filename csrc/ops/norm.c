/* Batch normalisation. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- batch normalisation -------------------------------------------------------------- */

int ln_nn_batchnorm_check(const ln_tensor *x, const ln_tensor *gamma, int64_t *n,
                          int64_t *c, int64_t *inner)
{
    char sx[256];
    LN_TRY(ln_op_check_input("the input", x));
    LN_TRY(ln_op_check_input("the weight", gamma));
    LN_TRY(ln_check_same_device("the input and the weight", x, gamma));
    if (gamma->ndim != 1)
        return ln_error(LN_EINVAL, "the weight must be [C], got %s",
                        ln_tensor_shape_string(gamma, sx, sizeof sx));
    if (x->ndim < 2 || x->shape[1] != gamma->shape[0])
        return ln_error(LN_EINVAL, "expected input [N, %lld, ...], got %s",
                        (long long)gamma->shape[0], ln_tensor_shape_string(x, sx, sizeof sx));
    *n = x->shape[0];
    *c = x->shape[1];
    *inner = 1;
    for (int i = 2; i < x->ndim; i++)
        *inner *= x->shape[i];
    return LN_OK;
}

typedef struct bn_call {
    int64_t n, c, inner;
    float momentum, eps;
    int accumulate;
    const ln_tensor *x;     /* backward_eval: the shape of its temporaries */
} bn_call;

static int bn_forward_eval_kernel(ln_device *dev, void *arg, int64_t count,
                                  const void *const *in, void *const *out)
{
    const bn_call *b = arg;
    (void)count;
    return LN_CALL(dev, batchnorm_forward_eval, b->n, b->c, b->inner, in[0], in[1], in[2],
                   in[3], in[4], b->eps, out[0]);
}

static int bn_forward_train_kernel(ln_device *dev, void *arg, int64_t count,
                                   const void *const *in, void *const *out)
{
    const bn_call *b = arg;
    (void)count;
    return LN_CALL(dev, batchnorm_forward_train, b->n, b->c, b->inner, in[0], in[1], in[2],
                   out[0], out[1], out[2], b->momentum, b->eps, out[3], out[4]);
}

int ln_nn_batchnorm_forward(const ln_tensor *x, const ln_tensor *gamma,
                            const ln_tensor *beta, ln_tensor *running_mean,
                            ln_tensor *running_var, int training, double momentum,
                            double eps, ln_tensor *y, ln_tensor *save_mean,
                            ln_tensor *save_invstd)
{
    char sx[256];
    bn_call b = {0};
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &b.n, &b.c, &b.inner));
    LN_TRY(ln_op_check_input_as("the bias", beta, x, 1, &b.c));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    if (!(momentum >= 0 && momentum <= 1))
        return ln_error(LN_EINVAL, "momentum must be in [0, 1], got %g", momentum);
    b.momentum = (float)momentum;
    b.eps = (float)eps;
    const int64_t *c = &b.c;
    if (!training) {
        ln_op op = {.in = {{"the input", x}, {"the weight", gamma}, {"the bias", beta},
                           {"the running mean", running_mean, 1, c},
                           {"the running variance", running_var, 1, c}},
                    .out = {{"the output", y, x->ndim, x->shape}},
                    .n = ln_tensor_numel(x)};
        return ln_op_run(&op, bn_forward_eval_kernel, &b);
    }
    if (b.n * b.inner < 2)
        return ln_error(LN_EINVAL, "expected more than 1 value per channel when "
                        "training, got input %s", ln_tensor_shape_string(x, sx, sizeof sx));
    /* the running statistics are read and updated: outputs */
    ln_op op = {.in = {{"the input", x}, {"the weight", gamma}, {"the bias", beta}},
                .out = {{"the output", y, x->ndim, x->shape},
                        {"the running mean", running_mean, 1, c},
                        {"the running variance", running_var, 1, c},
                        {"the saved mean", save_mean, 1, c},
                        {"the saved inverse deviation", save_invstd, 1, c}},
                .n = ln_tensor_numel(x)};
    return ln_op_run(&op, bn_forward_train_kernel, &b);
}

static int bn_backward_kernel(ln_device *dev, void *arg, int64_t count, const void *const *in,
                              void *const *out)
{
    const bn_call *b = arg;
    (void)count;
    return LN_CALL(dev, batchnorm_backward, b->n, b->c, b->inner, in[0], in[1], in[2], in[3],
                   in[4], out[0], out[1], out[2], b->accumulate);
}

int ln_nn_batchnorm_backward(const ln_tensor *x, const ln_tensor *dy, const ln_tensor *gamma,
                             const ln_tensor *save_mean, const ln_tensor *save_invstd,
                             ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta,
                             int accumulate)
{
    bn_call b = {.accumulate = accumulate};
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &b.n, &b.c, &b.inner));
    const int64_t *c = &b.c;
    ln_op op = {.in = {{"the input", x}, {"the output gradient", dy, x->ndim, x->shape},
                       {"the weight", gamma}, {"the saved mean", save_mean, 1, c},
                       {"the saved inverse deviation", save_invstd, 1, c}},
                .out = {{"the input gradient", dx, x->ndim, x->shape},
                        {"the weight gradient", dgamma, 1, c},
                        {"the bias gradient", dbeta, 1, c}},
                .n = b.n * b.inner};
    LN_TRY(ln_op_run(&op, bn_backward_kernel, &b));
    return op.n == 0 ? ln_op_zero_unless_accumulating(dgamma, dbeta, accumulate) : LN_OK;
}

/* In eval mode y = (x - mean) * invstd * gamma + beta with constant statistics:
 *   dx = dy * gamma * invstd       (the eval forward of dy with mean 0, beta 0)
 *   dgamma = sum dy * xhat         (xhat: the eval forward of x with gamma 1, beta 0)
 *   dbeta = sum dy
 * composed from existing kernels, so every backend has it. It uses
 * temporaries: eval-mode training is rare. */
static int bn_backward_eval_kernel(ln_device *dev, void *arg, int64_t count,
                                   const void *const *in, void *const *out)
{
    const bn_call *b = arg;
    const void *xd = in[0], *dyd = in[1], *gd = in[2], *md = in[3], *vd = in[4];
    int64_t n = b->n, c = b->c, inner = b->inner;
    (void)count;
    ln_tensor zeros = {0}, ones = {0}, xhat = {0};
    int st = ln_tensor_alloc(&zeros, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&zeros, 0);
    if (st == LN_OK) st = ln_tensor_alloc(&ones, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&ones, 1);
    if (st == LN_OK) st = ln_tensor_alloc(&xhat, dev, LN_FLOAT32, b->x->ndim, b->x->shape);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, dyd, gd,
                     ln_tensor_data(&zeros), ln_tensor_data(&zeros), vd, b->eps, out[0]);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, xd, ln_tensor_data(&ones),
                     ln_tensor_data(&zeros), md, vd, b->eps, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, binary, LN_MUL, LN_FLOAT32, n * c * inner, ln_tensor_data(&xhat),
                     dyd, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, ln_tensor_data(&xhat), out[1],
                     b->accumulate);
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, dyd, out[2], b->accumulate);
    ln_tensor_release(&zeros);
    ln_tensor_release(&ones);
    ln_tensor_release(&xhat);
    return st;
}

int ln_nn_batchnorm_backward_eval(const ln_tensor *x, const ln_tensor *dy,
                                  const ln_tensor *gamma, const ln_tensor *running_mean,
                                  const ln_tensor *running_var, double eps, ln_tensor *dx,
                                  ln_tensor *dgamma, ln_tensor *dbeta, int accumulate)
{
    bn_call b = {.accumulate = accumulate, .x = x};
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &b.n, &b.c, &b.inner));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    b.eps = (float)eps;
    const int64_t *c = &b.c;
    ln_op op = {.in = {{"the input", x}, {"the output gradient", dy, x->ndim, x->shape},
                       {"the weight", gamma}, {"the running mean", running_mean, 1, c},
                       {"the running variance", running_var, 1, c}},
                .out = {{"the input gradient", dx, x->ndim, x->shape},
                        {"the weight gradient", dgamma, 1, c},
                        {"the bias gradient", dbeta, 1, c}},
                .n = b.n * b.inner};
    LN_TRY(ln_op_run(&op, bn_backward_eval_kernel, &b));
    return op.n == 0 ? ln_op_zero_unless_accumulating(dgamma, dbeta, accumulate) : LN_OK;
}
