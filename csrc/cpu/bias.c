/* Per-channel bias and its gradient over y viewed as [outer, channels, inner]
 * (inner = 1 for Linear, the image positions for convolutions). */
#include "../status.h"
#include "cpu.h"

int ln_cpu_bias_add(void *ctx, int64_t outer, int64_t channels, int64_t inner, float *y,
                    const float *bias)
{
    int64_t rows = outer * channels;
    if (inner == 1) {
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, rows)) schedule(static)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t c = 0; c < channels; c++)
                y[o * channels + c] += bias[c];
        return LN_OK;
    }
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, rows * inner)) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        float b = bias[row % channels], *out = y + row * inner;
        for (int64_t i = 0; i < inner; i++)
            out[i] += b;
    }
    return LN_OK;
}

/* Sums in double, one channel per task: the order does not matter then. */
int ln_cpu_bias_backward(void *ctx, int64_t outer, int64_t channels, int64_t inner,
                         const float *dy, float *db, int accumulate)
{
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, outer * channels * inner)) schedule(static)
    for (int64_t c = 0; c < channels; c++) {
        double acc = 0;
        for (int64_t o = 0; o < outer; o++) {
            const float *g = dy + (o * channels + c) * inner;
            for (int64_t i = 0; i < inner; i++)
                acc += g[i];
        }
        db[c] = (float)(acc + (accumulate ? db[c] : 0.0));
    }
    return LN_OK;
}
