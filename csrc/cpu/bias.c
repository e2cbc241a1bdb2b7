/* Per-channel bias and its gradient over y viewed as [outer, channels, inner]
 * (inner = 1 for Linear, the image positions for convolutions). */
#include "../status.h"
#include "cpu.h"

typedef struct bias_job {
    int64_t outer, channels, inner;
    float *y, *db;
    const float *bias, *dy;
    int accumulate;
} bias_job;

/* One row of y: a sample of a Linear output (inner = 1), or one channel plane. */
static void add_row(void *p, int64_t row, int thread)
{
    (void)thread;
    const bias_job *j = p;
    if (j->inner == 1) {
        for (int64_t c = 0; c < j->channels; c++)
            j->y[row * j->channels + c] += j->bias[c];
        return;
    }
    float b = j->bias[row % j->channels], *out = j->y + row * j->inner;
    for (int64_t i = 0; i < j->inner; i++)
        out[i] += b;
}

int ln_cpu_bias_add(void *ctx, int64_t outer, int64_t channels, int64_t inner, float *y,
                    const float *bias)
{
    bias_job job = {outer, channels, inner, y, NULL, bias, NULL, 0};
    int64_t rows = inner == 1 ? outer : outer * channels;
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, outer * channels * inner), rows, add_row, &job);
    return LN_OK;
}

/* Sums in double, one channel per task: the order does not matter then. */
static void sum_channel(void *p, int64_t c, int thread)
{
    (void)thread;
    const bias_job *j = p;
    double acc = 0;
    for (int64_t o = 0; o < j->outer; o++) {
        const float *g = j->dy + (o * j->channels + c) * j->inner;
        for (int64_t i = 0; i < j->inner; i++)
            acc += g[i];
    }
    j->db[c] = (float)(acc + (j->accumulate ? j->db[c] : 0.0));
}

int ln_cpu_bias_backward(void *ctx, int64_t outer, int64_t channels, int64_t inner,
                         const float *dy, float *db, int accumulate)
{
    bias_job job = {outer, channels, inner, NULL, db, NULL, dy, accumulate};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, outer * channels * inner), channels,
                    sum_channel, &job);
    return LN_OK;
}
