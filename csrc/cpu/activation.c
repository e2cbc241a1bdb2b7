/* ReLU and dropout: elementwise, split across threads for large tensors
 * (ReLU's pieces run the reference's loops). The dropout mask is drawn
 * exactly as the reference draws it. */
#include <math.h>

#include "../ops_ref.h"
#include "../philox.h"
#include "../status.h"
#include "cpu.h"

typedef struct activation_job {
    const float *x, *dy;
    float *y, *dx, *mask;
    float keep, scale;
    uint64_t seed, offset;
    int64_t n;
} activation_job;

static void relu_range(void *p, int64_t lo, int64_t hi)
{
    const activation_job *j = p;
    ln_ref_relu_forward(NULL, hi - lo, j->x + lo, j->y + lo);
}

int ln_cpu_relu_forward(void *ctx, int64_t n, const float *x, float *y)
{
    activation_job job = {.x = x, .y = y};
    ln_cpu_parallel_range(ctx, n, relu_range, &job);
    return LN_OK;
}

static void relu_backward_range(void *p, int64_t lo, int64_t hi)
{
    const activation_job *j = p;
    ln_ref_relu_backward(NULL, hi - lo, j->y + lo, j->dy + lo, j->dx + lo);
}

int ln_cpu_relu_backward(void *ctx, int64_t n, const float *y, const float *dy, float *dx)
{
    activation_job job = {.y = (float *)y, .dy = dy, .dx = dx};
    ln_cpu_parallel_range(ctx, n, relu_backward_range, &job);
    return LN_OK;
}

/* Four numbers per Philox counter: one call fills four elements; the pieces
 * (multiples of 16 elements) never split a group. */
static void dropout_range(void *p, int64_t lo, int64_t hi)
{
    const activation_job *j = p;
    for (int64_t g = lo / 4; g * 4 < hi; g++) {
        ln_philox4 r = ln_philox(j->seed, j->offset + (uint64_t)g);
        for (int lane = 0; lane < 4 && g * 4 + lane < j->n; lane++) {
            int64_t i = g * 4 + lane;
            j->mask[i] = ln_uint_to_unit(r.v[lane]) < j->keep ? j->scale : 0.0f;
            j->y[i] = j->x[i] * j->mask[i];
        }
    }
}

int ln_cpu_dropout_forward(void *ctx, int64_t n, float p, const float *x, float *y,
                           float *mask, uint64_t seed, uint64_t offset)
{
    float keep = 1.0f - p;
    activation_job job = {.x = x, .y = y, .mask = mask, .keep = keep,
                          .scale = p < 1.0f ? 1.0f / keep : 0.0f, .seed = seed,
                          .offset = offset, .n = n};
    ln_cpu_parallel_range(ctx, n, dropout_range, &job);
    return LN_OK;
}
