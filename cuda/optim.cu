/* SGD and Adam updates: PyTorch 1.13's single-tensor rules, operation for
 * operation in float32 like the reference (and, with --fmad=false, with the
 * same rounding), so the same gradients give the same parameters. */
#include <math.h>

#include "formulas.h"
#include "kernels.cuh"

__global__ void sgd_kernel(int64_t n, float lr, float momentum, float dampening,
                           float weight_decay, int nesterov, int first_step, float *param,
                           const float *grad, float *momentum_buffer)
{
    LN_GRID_STRIDE(i, n)
    {
        float d = grad[i];
        if (weight_decay != 0.0f)
            d = d + weight_decay * param[i];
        if (momentum != 0.0f) {
            float buf = first_step ? d : momentum_buffer[i] * momentum + (1.0f - dampening) * d;
            momentum_buffer[i] = buf;
            d = nesterov ? d + momentum * buf : buf;
        }
        param[i] = param[i] + -lr * d;
    }
}

extern "C" int ln_cuda_sgd_step(void *vctx, const ln_sgd_params *p, int64_t n, float *param,
                                const float *grad, float *momentum_buffer)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    if (p->momentum != 0.0f && !momentum_buffer)
        return ln_cuda_error(LN_EINVAL, "sgd_step: momentum %g needs a momentum buffer",
                             (double)p->momentum);
    LN_CUDA_ENTER(ctx);
    sgd_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(
        n, p->lr, p->momentum, p->dampening, p->weight_decay, p->nesterov, p->first_step,
        param, grad, momentum_buffer);
    LN_CUDA_CHECK_LAUNCH("sgd_kernel");
    return LN_OK;
}

/* formulas.h's update, one element a thread */
__global__ void adam_kernel(int64_t n, ln_adam_coeffs c, float *param, const float *grad,
                            float *exp_avg, float *exp_avg_sq)
{
    LN_GRID_STRIDE(i, n)
    {
        ln_f_adam(&c, &param[i], grad[i], &exp_avg[i], &exp_avg_sq[i]);
    }
}

extern "C" int ln_cuda_adam_step(void *vctx, const ln_adam_params *p, int64_t n, float *param,
                                 const float *grad, float *exp_avg, float *exp_avg_sq)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    ln_adam_coeffs c = ln_adam_coefficients(p);
    LN_CUDA_ENTER(ctx);
    adam_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(n, c, param, grad, exp_avg,
                                                               exp_avg_sq);
    LN_CUDA_CHECK_LAUNCH("adam_kernel");
    return LN_OK;
}
