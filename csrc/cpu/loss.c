/* Softmax cross-entropy, row by row (sample by sample), in double like the
 * reference; one thread: a batch of logits is small next to the layers
 * before it. */
#include <math.h>

#include "../status.h"
#include "cpu.h"

static double log_sum_exp(const float *row, int64_t classes)
{
    double max = row[0], sum = 0;
    for (int64_t j = 1; j < classes; j++)
        if (row[j] > max)
            max = row[j];
    for (int64_t j = 0; j < classes; j++)
        sum += exp(row[j] - max);
    return max + log(sum);
}

int ln_cpu_cross_entropy_forward(void *ctx, int64_t n, int64_t classes,
                                 const float *logits, const int32_t *labels,
                                 double *loss_host, int64_t *bad_index)
{
    (void)ctx;
    *bad_index = -1;
    *loss_host = NAN;
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 1 || labels[i] > classes) {
            *bad_index = i;
            return LN_OK;
        }
    double total = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        total += log_sum_exp(row, classes) - row[labels[i] - 1];
    }
    *loss_host = total / (double)n;
    return LN_OK;
}

int ln_cpu_cross_entropy_backward(void *ctx, int64_t n, int64_t classes,
                                  const float *logits, const int32_t *labels, float scale,
                                  float *dlogits)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        double lse = log_sum_exp(row, classes);
        for (int64_t j = 0; j < classes; j++) {
            double onehot = labels[i] == j + 1 ? 1.0 : 0.0;
            dlogits[i * classes + j] = (float)(scale * (exp(row[j] - lse) - onehot));
        }
    }
    return LN_OK;
}
