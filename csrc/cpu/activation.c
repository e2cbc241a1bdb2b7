/* ReLU and dropout: elementwise, split across threads for large tensors. The
 * dropout mask is drawn exactly as the reference draws it. */
#include <math.h>

#include "../philox.h"
#include "../status.h"
#include "cpu.h"

int ln_cpu_relu_forward(void *ctx, int64_t n, const float *x, float *y)
{
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return LN_OK;
}

int ln_cpu_relu_backward(void *ctx, int64_t n, const float *y, const float *dy, float *dx)
{
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n)) schedule(static)
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return LN_OK;
}

int ln_cpu_dropout_forward(void *ctx, int64_t n, float p, const float *x, float *y,
                           float *mask, uint64_t seed, uint64_t offset)
{
    float keep = 1.0f - p, scale = p < 1.0f ? 1.0f / keep : 0.0f;
    /* four numbers per Philox counter: one call fills four elements */
    int64_t groups = (n + 3) / 4;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, n)) schedule(static)
    for (int64_t g = 0; g < groups; g++) {
        ln_philox4 r = ln_philox(seed, offset + (uint64_t)g);
        for (int lane = 0; lane < 4 && g * 4 + lane < n; lane++) {
            int64_t i = g * 4 + lane;
            mask[i] = ln_uint_to_unit(r.v[lane]) < keep ? scale : 0.0f;
            y[i] = x[i] * mask[i];
        }
    }
    return LN_OK;
}
