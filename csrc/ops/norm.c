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

int ln_nn_batchnorm_forward(const ln_tensor *x, const ln_tensor *gamma,
                            const ln_tensor *beta, ln_tensor *running_mean,
                            ln_tensor *running_var, int training, double momentum,
                            double eps, ln_tensor *y, ln_tensor *save_mean,
                            ln_tensor *save_invstd)
{
    char sx[256];
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(ln_op_check_input_as("the bias", beta, x, 1, &c));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    if (!(momentum >= 0 && momentum <= 1))
        return ln_error(LN_EINVAL, "momentum must be in [0, 1], got %g", momentum);
    LN_TRY(ln_op_check_output("the output", y, x, x->ndim, x->shape));
    LN_TRY(ln_op_check_distinct("the output", y, "the input", x));
    ln_device *dev = ln_tensor_device(x);
    if (!training) {
        LN_TRY(ln_op_check_input_as("the running mean", running_mean, x, 1, &c));
        LN_TRY(ln_op_check_input_as("the running variance", running_var, x, 1, &c));
        if (ln_tensor_numel(x) == 0)
            return LN_OK;
        ln_op_contiguous_inputs set = {0};
        const void *xd, *gd, *bd, *md, *vd;
        int st = ln_op_contiguous(&set, x, &xd);
        if (st == LN_OK) st = ln_op_contiguous(&set, gamma, &gd);
        if (st == LN_OK) st = ln_op_contiguous(&set, beta, &bd);
        if (st == LN_OK) st = ln_op_contiguous(&set, running_mean, &md);
        if (st == LN_OK) st = ln_op_contiguous(&set, running_var, &vd);
        if (st == LN_OK)
            st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, xd, gd, bd, md, vd,
                         (float)eps, ln_tensor_data(y));
        ln_op_release_inputs(&set);
        return st;
    }
    if (n * inner < 2)
        return ln_error(LN_EINVAL, "expected more than 1 value per channel when "
                        "training, got input %s", ln_tensor_shape_string(x, sx, sizeof sx));
    LN_TRY(ln_op_check_output("the running mean", running_mean, x, 1, &c));
    LN_TRY(ln_op_check_output("the running variance", running_var, x, 1, &c));
    LN_TRY(ln_op_check_output("the saved mean", save_mean, x, 1, &c));
    LN_TRY(ln_op_check_output("the saved inverse deviation", save_invstd, x, 1, &c));
    const ln_tensor *written[5] = {y, running_mean, running_var, save_mean, save_invstd};
    const ln_tensor *read[3] = {x, gamma, beta};
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++)
            LN_TRY(ln_op_check_distinct("an output", written[i], "an input", read[j]));
        for (int j = i + 1; j < 5; j++)
            LN_TRY(ln_op_check_distinct("an output", written[i], "another output", written[j]));
    }
    ln_op_contiguous_inputs set = {0};
    const void *xd, *gd, *bd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK) st = ln_op_contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = ln_op_contiguous(&set, beta, &bd);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_train, n, c, inner, xd, gd, bd,
                     ln_tensor_data(y), ln_tensor_data(running_mean),
                     ln_tensor_data(running_var), (float)momentum, (float)eps,
                     ln_tensor_data(save_mean), ln_tensor_data(save_invstd));
    ln_op_release_inputs(&set);
    return st;
}

static int check_batchnorm_grads(const ln_tensor *x, const ln_tensor *dy, int64_t c,
                                 ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta)
{
    LN_TRY(ln_op_check_input_as("the output gradient", dy, x, x->ndim, x->shape));
    LN_TRY(ln_op_check_output("the input gradient", dx, x, x->ndim, x->shape));
    LN_TRY(ln_op_check_output("the weight gradient", dgamma, x, 1, &c));
    LN_TRY(ln_op_check_output("the bias gradient", dbeta, x, 1, &c));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the input", x));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(ln_op_check_distinct("the weight gradient", dgamma, "the output gradient", dy));
    LN_TRY(ln_op_check_distinct("the bias gradient", dbeta, "the output gradient", dy));
    return ln_op_check_distinct("the bias gradient", dbeta, "the weight gradient", dgamma);
}

int ln_nn_batchnorm_backward(const ln_tensor *x, const ln_tensor *dy, const ln_tensor *gamma,
                             const ln_tensor *save_mean, const ln_tensor *save_invstd,
                             ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta,
                             int accumulate)
{
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(ln_op_check_input_as("the saved mean", save_mean, x, 1, &c));
    LN_TRY(ln_op_check_input_as("the saved inverse deviation", save_invstd, x, 1, &c));
    LN_TRY(check_batchnorm_grads(x, dy, c, dx, dgamma, dbeta));
    if (n * inner == 0)
        return ln_op_zero_unless_accumulating(dgamma, dbeta, accumulate);
    ln_op_contiguous_inputs set = {0};
    const void *xd, *dyd, *gd, *md, *sd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK) st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK) st = ln_op_contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = ln_op_contiguous(&set, save_mean, &md);
    if (st == LN_OK) st = ln_op_contiguous(&set, save_invstd, &sd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), batchnorm_backward, n, c, inner, xd, dyd, gd, md,
                     sd, ln_tensor_data(dx), ln_tensor_data(dgamma), ln_tensor_data(dbeta),
                     accumulate);
    ln_op_release_inputs(&set);
    return st;
}

/* In eval mode y = (x - mean) * invstd * gamma + beta with constant statistics:
 *   dx = dy * gamma * invstd       (the eval forward of dy with mean 0, beta 0)
 *   dgamma = sum dy * xhat         (xhat: the eval forward of x with gamma 1, beta 0)
 *   dbeta = sum dy
 * composed from existing kernels, so every backend has it. It uses
 * temporaries: eval-mode training is rare. */
int ln_nn_batchnorm_backward_eval(const ln_tensor *x, const ln_tensor *dy,
                                  const ln_tensor *gamma, const ln_tensor *running_mean,
                                  const ln_tensor *running_var, double eps, ln_tensor *dx,
                                  ln_tensor *dgamma, ln_tensor *dbeta, int accumulate)
{
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(ln_op_check_input_as("the running mean", running_mean, x, 1, &c));
    LN_TRY(ln_op_check_input_as("the running variance", running_var, x, 1, &c));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    LN_TRY(check_batchnorm_grads(x, dy, c, dx, dgamma, dbeta));
    if (n * inner == 0)
        return ln_op_zero_unless_accumulating(dgamma, dbeta, accumulate);
    ln_device *dev = ln_tensor_device(x);
    ln_tensor zeros = {0}, ones = {0}, xhat = {0};
    ln_op_contiguous_inputs set = {0};
    const void *xd, *dyd, *gd, *md, *vd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK) st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK) st = ln_op_contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = ln_op_contiguous(&set, running_mean, &md);
    if (st == LN_OK) st = ln_op_contiguous(&set, running_var, &vd);
    if (st == LN_OK) st = ln_tensor_alloc(&zeros, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&zeros, 0);
    if (st == LN_OK) st = ln_tensor_alloc(&ones, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&ones, 1);
    if (st == LN_OK) st = ln_tensor_alloc(&xhat, dev, LN_FLOAT32, x->ndim, x->shape);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, dyd, gd,
                     ln_tensor_data(&zeros), ln_tensor_data(&zeros), vd, (float)eps,
                     ln_tensor_data(dx));
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, xd, ln_tensor_data(&ones),
                     ln_tensor_data(&zeros), md, vd, (float)eps, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, binary, LN_MUL, LN_FLOAT32, n * c * inner, ln_tensor_data(&xhat),
                     dyd, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, ln_tensor_data(&xhat),
                     ln_tensor_data(dgamma), accumulate);
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, dyd, ln_tensor_data(dbeta), accumulate);
    ln_tensor_release(&zeros);
    ln_tensor_release(&ones);
    ln_tensor_release(&xhat);
    ln_op_release_inputs(&set);
    return st;
}
