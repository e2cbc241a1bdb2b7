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

int ln_cpu_batchnorm_forward_train(void *ctx, int64_t n, int64_t c, int64_t inner,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *running_mean, float *running_var,
                                   float momentum, float eps, float *save_mean,
                                   float *save_invstd)
{
    int64_t count = n * inner;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n * c * inner)) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        double mean, sq;
        channel_moments(n, c, inner, x, ch, &mean, &sq);
        double var = sq / (double)count, invstd = 1.0 / sqrt(var + eps);
        float scale = (float)(invstd * gamma[ch]), shift = (float)(beta[ch] - mean * invstd * gamma[ch]);
        for (int64_t b = 0; b < n; b++) {
            const float *in = x + (b * c + ch) * inner;
            float *out = y + (b * c + ch) * inner;
            for (int64_t i = 0; i < inner; i++)
                out[i] = in[i] * scale + shift;
        }
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        double unbiased = count > 1 ? sq / (double)(count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
    return LN_OK;
}

int ln_cpu_batchnorm_forward_eval(void *ctx, int64_t n, int64_t c, int64_t inner,
                                  const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var,
                                  float eps, float *y)
{
    int64_t rows = n * c;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, rows * inner)) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int64_t ch = row % c;
        double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
        float scale = (float)(invstd * gamma[ch]);
        float shift = (float)(beta[ch] - running_mean[ch] * invstd * gamma[ch]);
        const float *in = x + row * inner;
        float *out = y + row * inner;
        for (int64_t i = 0; i < inner; i++)
            out[i] = in[i] * scale + shift;
    }
    return LN_OK;
}

int ln_cpu_batchnorm_backward(void *ctx, int64_t n, int64_t c, int64_t inner,
                              const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta, int accumulate)
{
    double m = (double)(n * inner);
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n * c * inner)) schedule(static)
    for (int64_t ch = 0; ch < c; ch++) {
        double mean = save_mean[ch], invstd = save_invstd[ch], sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t b = 0; b < n; b++) {
            const float *in = x + (b * c + ch) * inner, *g = dy + (b * c + ch) * inner;
            for (int64_t i = 0; i < inner; i++) {
                sum_dy += g[i];
                sum_dy_xhat += g[i] * (in[i] - mean);
            }
        }
        sum_dy_xhat *= invstd;
        /* dx = k * (m * dy - sum_dy - xhat * sum_dy_xhat), k = gamma * invstd / m */
        double k = gamma[ch] * invstd / m;
        for (int64_t b = 0; b < n; b++) {
            const float *in = x + (b * c + ch) * inner, *g = dy + (b * c + ch) * inner;
            float *out = dx + (b * c + ch) * inner;
            for (int64_t i = 0; i < inner; i++) {
                double xhat = (in[i] - mean) * invstd;
                out[i] = (float)(k * (m * g[i] - sum_dy - xhat * sum_dy_xhat));
            }
        }
        dgamma[ch] = (float)(sum_dy_xhat + (accumulate ? dgamma[ch] : 0.0));
        dbeta[ch] = (float)(sum_dy + (accumulate ? dbeta[ch] : 0.0));
    }
    return LN_OK;
}
