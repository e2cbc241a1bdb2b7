/* Optimizer steps over flat parameter runs. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- optimizers -------------------------------------------------------------------------- */

static int check_step_tensors(ln_tensor *param, const ln_tensor *grad, ln_tensor *s1,
                              const char *s1_what, ln_tensor *s2, const char *s2_what)
{
    LN_TRY(ln_op_check_input("the parameter", param));
    if (!ln_tensor_is_contiguous(param))
        return ln_error(LN_EINVAL, "the parameter must be contiguous");
    LN_TRY(ln_op_check_input_as("the gradient", grad, param, param->ndim, param->shape));
    LN_TRY(ln_op_check_distinct("the parameter", param, "the gradient", grad));
    ln_tensor *state[2] = {s1, s2};
    const char *names[2] = {s1_what, s2_what};
    for (int i = 0; i < 2; i++) {
        if (!state[i])
            continue;
        LN_TRY(ln_op_check_output(names[i], state[i], param, param->ndim, param->shape));
        LN_TRY(ln_op_check_distinct(names[i], state[i], "the parameter", param));
        LN_TRY(ln_op_check_distinct(names[i], state[i], "the gradient", grad));
    }
    if (s1 && s2)
        LN_TRY(ln_op_check_distinct(s1_what, s1, s2_what, s2));
    return LN_OK;
}

int ln_nn_sgd_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *momentum_buffer,
                   const ln_sgd_params *p)
{
    if (!isfinite(p->lr) || p->lr < 0 || !isfinite(p->momentum) || p->momentum < 0
        || !isfinite(p->dampening) || !isfinite(p->weight_decay))
        return ln_error(LN_EINVAL, "SGD needs finite lr >= 0 and momentum >= 0, got lr "
                        "%g, momentum %g, dampening %g, weight decay %g", p->lr,
                        p->momentum, p->dampening, p->weight_decay);
    if (p->momentum != 0 && !momentum_buffer)
        return ln_error(LN_EINVAL, "SGD with momentum needs a momentum buffer");
    LN_TRY(check_step_tensors(param, grad, p->momentum != 0 ? momentum_buffer : NULL,
                              "the momentum buffer", NULL, NULL));
    int64_t n = ln_tensor_numel(param);
    if (n == 0)
        return LN_OK;
    ln_op_contiguous_inputs set = {0};
    const void *gd;
    int st = ln_op_contiguous(&set, grad, &gd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(param), sgd_step, p, n, ln_tensor_data(param), gd,
                     p->momentum != 0 ? ln_tensor_data(momentum_buffer) : NULL);
    ln_op_release_inputs(&set);
    return st;
}

int ln_nn_adam_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *exp_avg,
                    ln_tensor *exp_avg_sq, const ln_adam_params *p)
{
    if (!isfinite(p->lr) || p->lr < 0 || !(p->beta1 >= 0 && p->beta1 < 1)
        || !(p->beta2 >= 0 && p->beta2 < 1) || !(p->eps > 0) || !isfinite(p->eps)
        || !isfinite(p->weight_decay) || p->step < 1)
        return ln_error(LN_EINVAL, "Adam needs finite lr >= 0, betas in [0, 1), eps > 0 "
                        "and step >= 1, got lr %g, betas {%g, %g}, eps %g, step %lld",
                        p->lr, p->beta1, p->beta2, p->eps, (long long)p->step);
    LN_TRY(check_step_tensors(param, grad, exp_avg, "the first moment", exp_avg_sq,
                              "the second moment"));
    int64_t n = ln_tensor_numel(param);
    if (n == 0)
        return LN_OK;
    ln_op_contiguous_inputs set = {0};
    const void *gd;
    int st = ln_op_contiguous(&set, grad, &gd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(param), adam_step, p, n, ln_tensor_data(param), gd,
                     ln_tensor_data(exp_avg), ln_tensor_data(exp_avg_sq));
    ln_op_release_inputs(&set);
    return st;
}
