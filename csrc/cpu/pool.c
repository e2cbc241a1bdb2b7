/* Max and average pooling, one (image, channel) plane per task, with the
 * reference's semantics (first maximum wins, NaN counts as the maximum,
 * averages divide by the whole window). The common 2x2 max pooling has its
 * own loops (vectorised with AVX2); other shapes run the reference's loops
 * on each plane, except the average's forward pass, which sums in float over
 * the window clipped to the input. */
#include <string.h>

#include "../ops_ref.h"
#include "../status.h"
#include "cpu.h"
#ifdef LN_CPU_AVX2
#include "simd.h"
#endif

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

/* One plane of the batch as a batch of one, for the reference's loops. */
static ln_pool2d_shape one_plane(const ln_pool2d_shape *s)
{
    ln_pool2d_shape one = *s;
    one.n = one.c = 1;
    return one;
}

/* The common 2x2, stride 2, unpadded max pooling: the four candidates of a
 * window in order, with the reference's rule (first maximum, NaN wins). */
static int is_max_2x2(ln_pool_mode mode, const ln_pool2d_shape *s)
{
    return mode == LN_POOL_MAX && s->kernel_h == 2 && s->kernel_w == 2 && s->stride_h == 2
           && s->stride_w == 2 && s->pad_h == 0 && s->pad_w == 0;
}

#ifdef LN_CPU_AVX2
/* Eight 2x2 windows at a time: two input rows of 16 floats are split into
 * their even and odd columns, the four candidates of each window compared
 * in window order with the reference's rule. */
typedef struct windows8 {
    __m256 c[4]; /* top-left, top-right, bottom-left, bottom-right */
} windows8;

/* Loads of 2 * n floats (n <= 8 windows) from one row, zeros beyond. */
static inline void load_pairs(const float *row, int n, __m256 *lo, __m256 *hi)
{
    if (n == 8) {
        *lo = _mm256_loadu_ps(row);
        *hi = _mm256_loadu_ps(row + 8);
        return;
    }
    *lo = _mm256_maskload_ps(row, ln_lanes(2 * n));
    *hi = _mm256_maskload_ps(row + 8, ln_lanes(2 * n - 8));
}

static inline windows8 load_windows(const float *top, const float *bottom, int n)
{
    __m256 a, b;
    windows8 w;
    load_pairs(top, n, &a, &b);
    /* per 128-bit lane (a0 a2 b0 b2 | a4 a6 b4 b6), then the middle 64-bit pairs swapped */
    w.c[0] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    w.c[1] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
    load_pairs(bottom, n, &a, &b);
    w.c[2] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    w.c[3] = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
    return w;
}

static void max_2x2_forward_plane(const ln_pool2d_shape *s, const float *plane, float *out)
{
    for (int p = 0; p < s->p; p++) {
        const float *top = plane + 2 * (int64_t)p * s->w;
        for (int q = 0; q < s->q; q += 8) {
            int n = s->q - q < 8 ? s->q - q : 8;
            windows8 w = load_windows(top + 2 * q, top + s->w + 2 * q, n);
            __m256 wins[4];
            __m256 best = ln_window_max(w.c, wins);
            ln_store_first(out + p * s->q + q, best, n);
        }
    }
}

/* Interleaves even and odd columns back into a row of 2 * n floats. */
static inline void store_pairs(float *row, int n, __m256 even, __m256 odd)
{
    __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
    ln_store_first(row, first, 2 * n);
    if (n > 4)
        ln_store_first(row + 8, second, 2 * n - 8);
}

/* Writes every element of the plane's gradient: the window's gradient at its
 * winner, zero elsewhere (and in the rows and columns no window covers). */
static void max_2x2_backward_plane(const ln_pool2d_shape *s, const float *plane,
                                   const float *g, float *d)
{
    for (int p = 0; p < s->p; p++) {
        const float *top = plane + 2 * (int64_t)p * s->w;
        float *d_top = d + 2 * (int64_t)p * s->w;
        for (int q = 0; q < s->q; q += 8) {
            int n = s->q - q < 8 ? s->q - q : 8;
            windows8 w = load_windows(top + 2 * q, top + s->w + 2 * q, n);
            __m256 wins[4];
            ln_window_max(w.c, wins);
            __m256 grad = n == 8 ? _mm256_loadu_ps(g + p * s->q + q)
                                 : _mm256_maskload_ps(g + p * s->q + q, ln_lanes(n));
            store_pairs(d_top + 2 * q, n, _mm256_and_ps(grad, wins[0]), _mm256_and_ps(grad, wins[1]));
            store_pairs(d_top + s->w + 2 * q, n, _mm256_and_ps(grad, wins[2]),
                        _mm256_and_ps(grad, wins[3]));
        }
        if (s->w > 2 * s->q) { /* an odd width: the last column is in no window */
            d_top[s->w - 1] = 0.0f;
            d_top[2 * s->w - 1] = 0.0f;
        }
    }
    if (s->h > 2 * s->p)
        memset(d + 2 * (int64_t)s->p * s->w, 0, sizeof(float) * (size_t)s->w);
}
/* The fused block's pooling (see backend.h): ReLU then 2x2 max pooling of
 * one plane of convolution outputs [h, w], with each window's winner (4 when
 * the pooled value is not positive). max(relu(v)) = relu(max(v)) with the
 * same first maximum whenever it is positive, so the windows are compared
 * raw and ReLU applied to the winner. */
void ln_cpu_relu_maxpool2x2_plane(const float *plane, int h, int w, float *out, uint8_t *winner)
{
    int P = h / 2, Q = w / 2;
    for (int p = 0; p < P; p++) {
        const float *top = plane + 2 * (int64_t)p * w;
        for (int q = 0; q < Q; q += 8) {
            int n = Q - q < 8 ? Q - q : 8;
            windows8 win = load_windows(top + 2 * q, top + w + 2 * q, n);
            __m256i code;
            __m256 best = ln_relu_window_max(win.c, &code);
            __m128i codes8 = ln_codes_to_bytes(code);
            float *o = out + p * Q + q;
            uint8_t *wo = winner + p * Q + q;
            ln_store_first(o, best, n);
            if (n == 8) {
                _mm_storel_epi64((__m128i *)wo, codes8);
            } else {
                uint8_t bytes[16];
                _mm_storeu_si128((__m128i *)bytes, codes8);
                memcpy(wo, bytes, (size_t)n);
            }
        }
    }
}

/* The plane's gradient [h, w] from the pooled gradient and the winners:
 * every element written, zero except at winners. */
void ln_cpu_maxpool2x2_expand_plane(const float *dy, const uint8_t *winner, int h, int w,
                                    float *d)
{
    int P = h / 2, Q = w / 2;
    for (int p = 0; p < P; p++) {
        float *d_top = d + 2 * (int64_t)p * w;
        for (int q = 0; q < Q; q += 8) {
            int n = Q - q < 8 ? Q - q : 8;
            __m256 grad;
            __m128i codes8;
            if (n == 8) {
                grad = _mm256_loadu_ps(dy + p * Q + q);
                codes8 = _mm_loadl_epi64((const __m128i *)(winner + p * Q + q));
            } else {
                uint8_t bytes[16] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
                memcpy(bytes, winner + p * Q + q, (size_t)n);
                grad = _mm256_maskload_ps(dy + p * Q + q, ln_lanes(n));
                codes8 = _mm_loadu_si128((const __m128i *)bytes);
            }
            __m256i code = _mm256_cvtepu8_epi32(codes8);
            __m256 at[4];
            for (int i = 0; i < 4; i++)
                at[i] = _mm256_and_ps(grad, _mm256_castsi256_ps(
                                                _mm256_cmpeq_epi32(code, _mm256_set1_epi32(i))));
            store_pairs(d_top + 2 * q, n, at[0], at[1]);
            store_pairs(d_top + w + 2 * q, n, at[2], at[3]);
        }
        if (w > 2 * Q) {
            d_top[w - 1] = 0.0f;
            d_top[2 * w - 1] = 0.0f;
        }
    }
    if (h > 2 * P)
        memset(d + 2 * (int64_t)P * w, 0, sizeof(float) * (size_t)w);
}
#else
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

static void max_2x2_forward_plane(const ln_pool2d_shape *s, const float *plane, float *out)
{
    for (int p = 0; p < s->p; p++)
        for (int q = 0; q < s->q; q++)
            out[p * s->q + q] = plane[argmax_2x2(plane, s->w, 2 * (int64_t)p * s->w + 2 * q)];
}

static void max_2x2_backward_plane(const ln_pool2d_shape *s, const float *plane,
                                   const float *g, float *d)
{
    memset(d, 0, sizeof(float) * (size_t)s->h * (size_t)s->w);
    for (int p = 0; p < s->p; p++)
        for (int q = 0; q < s->q; q++)
            d[argmax_2x2(plane, s->w, 2 * (int64_t)p * s->w + 2 * q)] = g[p * s->q + q];
}
void ln_cpu_relu_maxpool2x2_plane(const float *plane, int h, int w, float *out, uint8_t *winner)
{
    int P = h / 2, Q = w / 2;
    for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++) {
            int64_t top_left = 2 * (int64_t)p * w + 2 * q, at = argmax_2x2(plane, w, top_left);
            float best = plane[at];
            int offset = (int)(at - top_left);
            out[p * Q + q] = best < 0.0f ? 0.0f : best;
            winner[p * Q + q] = (uint8_t)(best > 0.0f ? (offset >= w ? 2 + offset - w : offset) : 4);
        }
}

void ln_cpu_maxpool2x2_expand_plane(const float *dy, const uint8_t *winner, int h, int w,
                                    float *d)
{
    int P = h / 2, Q = w / 2;
    memset(d, 0, sizeof(float) * (size_t)h * (size_t)w);
    for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++)
            if (winner[p * Q + q] < 4)
                d[(2 * p + winner[p * Q + q] / 2) * (int64_t)w + 2 * q + winner[p * Q + q] % 2] = dy[p * Q + q];
}
#endif

typedef struct pool_job {
    ln_pool_mode mode;
    const ln_pool2d_shape *s;
    const float *x, *dy;
    float *y, *dx;
} pool_job;

static void forward_plane(void *arg, int64_t i, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const ln_pool2d_shape *s = j->s;
    const float *plane = j->x + i * s->h * s->w;
    float *out = j->y + i * s->p * s->q;
    float area = (float)s->kernel_h * (float)s->kernel_w;
    if (is_max_2x2(j->mode, s)) {
        max_2x2_forward_plane(s, plane, out);
        return;
    }
    if (j->mode == LN_POOL_MAX) {
        ln_pool2d_shape one = one_plane(s);
        ln_ref_pool2d_forward(NULL, LN_POOL_MAX, &one, plane, out);
        return;
    }
    /* averages summed in float over the clipped window (the reference sums
     * in double) */
    for (int p = 0; p < s->p; p++)
        for (int q = 0; q < s->q; q++) {
            window win = window_at(s, p, q);
            float sum = 0.0f;
            for (int h = win.h0; h < win.h1; h++)
                for (int v = win.v0; v < win.v1; v++)
                    sum += plane[(int64_t)h * s->w + v];
            out[p * s->q + q] = sum / area;
        }
}

int ln_cpu_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y)
{
    int64_t planes = (int64_t)s->n * s->c;
    pool_job job = {mode, s, x, NULL, y, NULL};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, planes * s->h * s->w), planes, forward_plane,
                    &job);
    return LN_OK;
}

static void backward_plane(void *arg, int64_t i, int thread)
{
    (void)thread;
    const pool_job *j = arg;
    const ln_pool2d_shape *s = j->s;
    int64_t hw = (int64_t)s->h * s->w;
    const float *plane = j->x + i * hw, *g = j->dy + i * s->p * s->q;
    float *d = j->dx + i * hw;
    if (is_max_2x2(j->mode, s)) {
        max_2x2_backward_plane(s, plane, g, d);
        return;
    }
    ln_pool2d_shape one = one_plane(s);
    ln_ref_pool2d_backward(NULL, j->mode, &one, plane, NULL, g, d);
}

int ln_cpu_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx)
{
    (void)y;
    int64_t planes = (int64_t)s->n * s->c;
    pool_job job = {mode, s, x, dy, NULL, dx};
    ln_cpu_parallel(ctx, ln_cpu_threads_for(ctx, planes * s->h * s->w), planes, backward_plane,
                    &job);
    return LN_OK;
}
