/* SGD and Adam updates: the reference's float32 operations in the same order
 * (PyTorch 1.13's single-tensor updates), split across threads. */
#include <math.h>

#include "../status.h"
#include "cpu.h"

int ln_cpu_sgd_step(void *ctx, const ln_sgd_params *p, int64_t n, float *param,
                    const float *grad, float *momentum_buffer)
{
    float lr = p->lr, wd = p->weight_decay, mom = p->momentum, damp = 1.0f - p->dampening;
    int first = p->first_step, nesterov = p->nesterov;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float d = grad[i];
        if (wd != 0.0f)
            d = d + wd * param[i];
        if (mom != 0.0f) {
            float buf = first ? d : momentum_buffer[i] * mom + damp * d;
            momentum_buffer[i] = buf;
            d = nesterov ? d + mom * buf : buf;
        }
        param[i] = param[i] + -lr * d;
    }
    return LN_OK;
}

int ln_cpu_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                     const float *grad, float *exp_avg, float *exp_avg_sq)
{
    double bc1 = 1.0 - pow((double)p->beta1, (double)p->step);
    double bc2 = 1.0 - pow((double)p->beta2, (double)p->step);
    float step_size = (float)(p->lr / bc1), bc2_sqrt = (float)sqrt(bc2);
    float b1 = p->beta1, b2 = p->beta2, one_minus_b1 = 1.0f - b1, one_minus_b2 = 1.0f - b2;
    float eps = p->eps, wd = p->weight_decay;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i];
        if (wd != 0.0f)
            g = g + wd * param[i];
        float m = exp_avg[i] * b1 + one_minus_b1 * g;
        float v = exp_avg_sq[i] * b2 + one_minus_b2 * g * g;
        exp_avg[i] = m;
        exp_avg_sq[i] = v;
        float denom = sqrtf(v) / bc2_sqrt + eps;
        param[i] = param[i] + -step_size * m / denom;
    }
    return LN_OK;
}
