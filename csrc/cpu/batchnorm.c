/* Batch normalisation, one channel per task, with the reference's formulas;
 * per-channel sums in double. */
#include <math.h>

#include "../status.h"
#include "cpu.h"

/* Sum and sum of squared deviations of channel ch over [n, c, inner]. */
static void channel_moments(int64_t n, int64_t c, int64_t inner, const float *x, int64_t ch,
                            double *mean, double *sq)
{
    double sum = 0, dev = 0;
    for (int64_t b = 0; b < n; b++) {
        const float *row = x + (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; i++)
            sum += row[i];
    }
    *mean = sum / (double)(n * inner);
    for (int64_t b = 0; b < n; b++) {
        const float *row = x + (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; i++) {
            double d = row[i] - *mean;
            dev += d * d;
        }
    }
    *sq = dev;
}

typedef struct batchnorm_job {
    int64_t n, c, inner;
    const float *x, *dy, *gamma, *beta, *mean, *var_or_invstd;
    float *out, *running_mean, *running_var, *save_mean, *save_invstd, *dgamma, *dbeta; /* out: y or dx */
    float momentum, eps;
    int accumulate;
} batchnorm_job;

static void train_channel(void *p, int64_t ch, int thread)
{
    (void)thread;
    const batchnorm_job *j = p;
    int64_t n = j->n, c = j->c, inner = j->inner, count = n * inner;
    double mean, sq;
    channel_moments(n, c, inner, j->x, ch, &mean, &sq);
    double var = sq / (double)count, invstd = 1.0 / sqrt(var + j->eps);
    float scale = (float)(invstd * j->gamma[ch]);
    float shift = (float)(j->beta[ch] - mean * invstd * j->gamma[ch]);
    for (int64_t b = 0; b < n; b++) {
        const float *in = j->x + (b * c + ch) * inner;
        float *out = j->out + (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; i++)
            out[i] = in[i] * scale + shift;
    }
    j->save_mean[ch] = (float)mean;
    j->save_invstd[ch] = (float)invstd;
    double unbiased = count > 1 ? sq / (double)(count - 1) : var;
    j->running_mean[ch] = (float)((1.0 - j->momentum) * j->running_mean[ch] + j->momentum * mean);
    j->running_var[ch] = (float)((1.0 - j->momentum) * j->running_var[ch] + j->momentum * unbiased);
}

int ln_cpu_batchnorm_forward_train(void *ctx, int64_t n, int64_t c, int64_t inner,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *running_mean, float *running_var,
                                   float momentum, float eps, float *save_mean,
                                   float *save_invstd)
{
    batchnorm_job job = {n, c, inner, x, NULL, gamma, beta, NULL, NULL, y, running_mean,
                         running_var, save_mean, save_invstd, NULL, NULL, momentum, eps, 0};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, n * c * inner), c, train_channel, &job);
    return LN_OK;
}

static void eval_row(void *p, int64_t row, int thread)
{
    (void)thread;
    const batchnorm_job *j = p;
    int64_t ch = row % j->c;
    double invstd = 1.0 / sqrt((double)j->var_or_invstd[ch] + j->eps);
    float scale = (float)(invstd * j->gamma[ch]);
    float shift = (float)(j->beta[ch] - j->mean[ch] * invstd * j->gamma[ch]);
    const float *in = j->x + row * j->inner;
    float *out = j->out + row * j->inner;
    for (int64_t i = 0; i < j->inner; i++)
        out[i] = in[i] * scale + shift;
}

int ln_cpu_batchnorm_forward_eval(void *ctx, int64_t n, int64_t c, int64_t inner,
                                  const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var,
                                  float eps, float *y)
{
    batchnorm_job job = {n, c, inner, x, NULL, gamma, beta, running_mean, running_var, y, NULL,
                         NULL, NULL, NULL, NULL, NULL, 0.0f, eps, 0};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, n * c * inner), n * c, eval_row, &job);
    return LN_OK;
}

static void backward_channel(void *p, int64_t ch, int thread)
{
    (void)thread;
    const batchnorm_job *j = p;
    int64_t n = j->n, c = j->c, inner = j->inner;
    double m = (double)(n * inner);
    double mean = j->mean[ch], invstd = j->var_or_invstd[ch], sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t b = 0; b < n; b++) {
        const float *in = j->x + (b * c + ch) * inner, *g = j->dy + (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; i++) {
            sum_dy += g[i];
            sum_dy_xhat += g[i] * (in[i] - mean);
        }
    }
    sum_dy_xhat *= invstd;
    /* dx = k * (m * dy - sum_dy - xhat * sum_dy_xhat), k = gamma * invstd / m */
    double k = j->gamma[ch] * invstd / m;
    for (int64_t b = 0; b < n; b++) {
        const float *in = j->x + (b * c + ch) * inner, *g = j->dy + (b * c + ch) * inner;
        float *out = j->out + (b * c + ch) * inner;
        for (int64_t i = 0; i < inner; i++) {
            double xhat = (in[i] - mean) * invstd;
            out[i] = (float)(k * (m * g[i] - sum_dy - xhat * sum_dy_xhat));
        }
    }
    j->dgamma[ch] = (float)(sum_dy_xhat + (j->accumulate ? j->dgamma[ch] : 0.0));
    j->dbeta[ch] = (float)(sum_dy + (j->accumulate ? j->dbeta[ch] : 0.0));
}

int ln_cpu_batchnorm_backward(void *ctx, int64_t n, int64_t c, int64_t inner,
                              const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta, int accumulate)
{
    batchnorm_job job = {n, c, inner, x, dy, gamma, NULL, save_mean, save_invstd, dx, NULL, NULL,
                         NULL, NULL, dgamma, dbeta, 0.0f, 0.0f, accumulate};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, n * c * inner), c, backward_channel, &job);
    return LN_OK;
}
