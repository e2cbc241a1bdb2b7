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

/* The parameter is written in place: it is an output (contiguous) that is
 * also read by the kernel, which reads it through out[0]. */
static int sgd_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                      void *const *out)
{
    return LN_CALL(dev, sgd_step, arg, n, out[0], in[0], out[1]);
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
    LN_TRY(ln_op_check_input("the parameter", param));
    ln_op op = {.in = {{"the gradient", grad, param->ndim, param->shape}},
                .out = {{"the parameter", param, param->ndim, param->shape},
                        {"the momentum buffer", p->momentum != 0 ? momentum_buffer : NULL,
                         param->ndim, param->shape}},
                .n = ln_tensor_numel(param)};
    return ln_op_run(&op, sgd_kernel, (void *)p);
}

static int adam_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                       void *const *out)
{
    return LN_CALL(dev, adam_step, arg, n, out[0], in[0], out[1], out[2]);
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
    LN_TRY(ln_op_check_input("the parameter", param));
    ln_op op = {.in = {{"the gradient", grad, param->ndim, param->shape}},
                .out = {{"the parameter", param, param->ndim, param->shape},
                        {"the first moment", exp_avg, param->ndim, param->shape},
                        {"the second moment", exp_avg_sq, param->ndim, param->shape}},
                .n = ln_tensor_numel(param)};
    return ln_op_run(&op, adam_kernel, (void *)p);
}
