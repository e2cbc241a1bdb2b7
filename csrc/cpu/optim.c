/* SGD and Adam updates: the reference's float32 operations in the same order
 * (PyTorch 1.13's single-tensor updates; Adam's from formulas.h), split
 * across threads. */
#include <math.h>

#include "../formulas.h"
#include "../status.h"
#include "cpu.h"

typedef struct sgd_job {
    const ln_sgd_params *p;
    float *param, *momentum_buffer;
    const float *grad;
} sgd_job;

static void sgd_range(void *arg, int64_t lo, int64_t hi)
{
    const sgd_job *j = arg;
    float lr = j->p->lr, wd = j->p->weight_decay, mom = j->p->momentum;
    float damp = 1.0f - j->p->dampening;
    int first = j->p->first_step, nesterov = j->p->nesterov;
    float *param = j->param, *momentum_buffer = j->momentum_buffer;
    const float *grad = j->grad;
    for (int64_t i = lo; i < hi; i++) {
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
}

int ln_cpu_sgd_step(void *ctx, const ln_sgd_params *p, int64_t n, float *param,
                    const float *grad, float *momentum_buffer)
{
    sgd_job job = {p, param, momentum_buffer, grad};
    ln_cpu_parallel_range(ctx, n, sgd_range, &job);
    return LN_OK;
}

/* The Adam update in AVX-512 or AVX2 where the CPU has them (GCC's clones,
 * chosen by cpuid when the library loads): its two divisions and square
 * root per element then run 16 or 8 lanes wide instead of SSE's 4, which
 * kept the update above the memory's pace (issue 14: 1.1-1.24x the plain
 * loop with the same traffic). The same IEEE operations in the same order
 * (ISO C mode leaves FMA contraction off), so the same bits. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define LN_WIDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LN_WIDE_CLONES
#endif

typedef struct adam_job {
    ln_adam_coeffs c;
    float *param, *exp_avg, *exp_avg_sq;
    const float *grad;
} adam_job;

LN_WIDE_CLONES static void adam_range(void *arg, int64_t lo, int64_t hi)
{
    const adam_job *j = arg;
    const ln_adam_coeffs c = j->c; /* a local copy: the loop keeps it in registers */
    float *param = j->param, *exp_avg = j->exp_avg, *exp_avg_sq = j->exp_avg_sq;
    const float *grad = j->grad;
    for (int64_t i = lo; i < hi; i++)
        ln_f_adam(&c, &param[i], grad[i], &exp_avg[i], &exp_avg_sq[i]);
}

int ln_cpu_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                     const float *grad, float *exp_avg, float *exp_avg_sq)
{
    adam_job job = {ln_adam_coefficients(p), param, exp_avg, exp_avg_sq, grad};
    ln_cpu_parallel_range(ctx, n, adam_range, &job);
    return LN_OK;
}

/* The yardstick for the Adam update (bench/step_bench.lua only): a plain
 * fused loop with Adam's memory traffic, reading param, grad, exp_avg and
 * exp_avg_sq and writing param, exp_avg and exp_avg_sq (28 bytes an
 * element), with as little arithmetic as keeps every access, split across
 * the same threads, in the same wide clones as the update (a narrower
 * yardstick would flatter it). */
typedef struct stream_job {
    float *param, *exp_avg, *exp_avg_sq;
    const float *grad;
} stream_job;

LN_WIDE_CLONES static void stream_range(void *arg, int64_t lo, int64_t hi)
{
    const stream_job *j = arg;
    float *param = j->param, *exp_avg = j->exp_avg, *exp_avg_sq = j->exp_avg_sq;
    const float *grad = j->grad;
    for (int64_t i = lo; i < hi; i++) {
        float g = grad[i];
        exp_avg[i] = exp_avg[i] * 0.5f + g;
        exp_avg_sq[i] = exp_avg_sq[i] * 0.5f + g;
        param[i] = param[i] - 1e-9f * g;
    }
}

void ln_cpu_stream_update_bench(void *ctx, int64_t n, float *param, const float *grad,
                                float *exp_avg, float *exp_avg_sq)
{
    stream_job job = {param, exp_avg, exp_avg_sq, grad};
    ln_cpu_parallel_range(ctx, n, stream_range, &job);
}
