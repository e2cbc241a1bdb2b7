/* Max and average pooling, one (image, channel) plane per task. Windows are
 * clipped to the input, so padding costs nothing; the semantics are the
 * reference's (first maximum wins, NaN counts as the maximum, averages divide
 * by the whole window). */
#include <string.h>

#include "../status.h"
#include "cpu.h"

/* The window of output (p, q), clipped to the input. */
typedef struct window {
    int h0, h1, v0, v1;
} window;

static window window_at(const ln_pool2d_shape *s, int p, int q)
{
    window win;
    int h = p * s->stride_h - s->pad_h, v = q * s->stride_w - s->pad_w;
    win.h0 = h < 0 ? 0 : h;
    win.h1 = h + s->kernel_h < s->h ? h + s->kernel_h : s->h;
    win.v0 = v < 0 ? 0 : v;
    win.v1 = v + s->kernel_w < s->w ? v + s->kernel_w : s->w;
    return win;
}

static int64_t window_argmax(const ln_pool2d_shape *s, const float *plane, window win)
{
    int64_t best = (int64_t)win.h0 * s->w + win.v0;
    float best_v = plane[best];
    for (int h = win.h0; h < win.h1; h++)
        for (int v = win.v0; v < win.v1; v++) {
            float x = plane[(int64_t)h * s->w + v];
            if (x > best_v || (x != x && best_v == best_v)) {
                best = (int64_t)h * s->w + v;
                best_v = x;
            }
        }
    return best;
}

/* The common 2x2, stride 2, unpadded max pooling: the four candidates of a
 * window in order, with window_argmax's rule (first maximum, NaN wins). */
static int is_max_2x2(ln_pool_mode mode, const ln_pool2d_shape *s)
{
    return mode == LN_POOL_MAX && s->kernel_h == 2 && s->kernel_w == 2 && s->stride_h == 2
           && s->stride_w == 2 && s->pad_h == 0 && s->pad_w == 0;
}

static inline int64_t argmax_2x2(const float *plane, int64_t w, int64_t top_left)
{
    int64_t at[4] = {top_left, top_left + 1, top_left + w, top_left + w + 1}, best = at[0];
    float best_v = plane[best];
    for (int i = 1; i < 4; i++) {
        float v = plane[at[i]];
        if (v > best_v || (v != v && best_v == best_v)) {
            best = at[i];
            best_v = v;
        }
    }
    return best;
}

int ln_cpu_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y)
{
    int64_t planes = (int64_t)s->n * s->c, hw = (int64_t)s->h * s->w;
    int64_t pq = (int64_t)s->p * s->q;
    float area = (float)s->kernel_h * (float)s->kernel_w;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, planes * hw)) schedule(static)
    for (int64_t i = 0; i < planes; i++) {
        const float *plane = x + i * hw;
        float *out = y + i * pq;
        if (is_max_2x2(mode, s)) {
            for (int p = 0; p < s->p; p++)
                for (int q = 0; q < s->q; q++)
                    out[p * s->q + q] = plane[argmax_2x2(plane, s->w, 2 * (int64_t)p * s->w + 2 * q)];
            continue;
        }
        for (int p = 0; p < s->p; p++)
            for (int q = 0; q < s->q; q++) {
                window win = window_at(s, p, q);
                if (mode == LN_POOL_MAX) {
                    out[p * s->q + q] = plane[window_argmax(s, plane, win)];
                    continue;
                }
                float sum = 0.0f;
                for (int h = win.h0; h < win.h1; h++)
                    for (int v = win.v0; v < win.v1; v++)
                        sum += plane[(int64_t)h * s->w + v];
                out[p * s->q + q] = sum / area;
            }
    }
    return LN_OK;
}

int ln_cpu_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    int64_t planes = (int64_t)s->n * s->c, hw = (int64_t)s->h * s->w;
    int64_t pq = (int64_t)s->p * s->q;
    float area = (float)s->kernel_h * (float)s->kernel_w;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, planes * hw)) schedule(static)
    for (int64_t i = 0; i < planes; i++) {
        const float *plane = x + i * hw, *g = dy + i * pq;
        float *d = dx + i * hw;
        memset(d, 0, sizeof(float) * (size_t)hw);
        if (is_max_2x2(mode, s)) {
            for (int p = 0; p < s->p; p++)
                for (int q = 0; q < s->q; q++)
                    d[argmax_2x2(plane, s->w, 2 * (int64_t)p * s->w + 2 * q)] = g[p * s->q + q];
            continue;
        }
        for (int p = 0; p < s->p; p++)
            for (int q = 0; q < s->q; q++) {
                window win = window_at(s, p, q);
                float grad = g[p * s->q + q];
                if (mode == LN_POOL_MAX) {
                    d[window_argmax(s, plane, win)] += grad;
                    continue;
                }
                for (int h = win.h0; h < win.h1; h++)
                    for (int v = win.v0; v < win.v1; v++)
                        d[(int64_t)h * s->w + v] += grad / area;
            }
    }
    return LN_OK;
}
