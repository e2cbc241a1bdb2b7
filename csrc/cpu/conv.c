/* Convolution as im2col + GEMM, one image at a time, images shared out
 * among the threads.
 *
 * The column matrix of one image holds, for each kernel tap (c, r, s) one row,
 * and for each output position one column:
 *     cols[(c * R + r) * S + s][p * Q + q] = x[c, p*sh - ph + r, q*sw - pw + s]
 * (zero in the padding). Then, per image,
 *     forward:          Y[K, PQ]    = W[K, CRS] x cols[CRS, PQ]
 *     backward data:    dcols       = W^T x dY     (then col2im sums into dx)
 *     backward filter:  dW[K, CRS] += dY x cols^T,  db[k] += sum of row k of dY
 * An image's output [K, PQ] is already its slice of the NCHW output, so there
 * is no transpose; its column matrix (CRS x PQ floats, 450 KB for the
 * session's second convolution) stays in the thread's own cache while the
 * product reads it. The products are single-threaded sgemm (see gemm.c), or
 * for few taps (CRS <= SMALL_TAPS, the session's first layer has 9) the
 * register-blocked kernels of small_gemm.c. A 1x1 convolution without stride
 * or padding uses the image as its column matrix.
 *
 * Images are handed out dynamically: on a shared machine a thread that loses
 * its core for a while does fewer images instead of holding up the others.
 * The weight gradient is summed per fixed group of images (GROUPS at most,
 * within the workspace budget) and the groups are added in order at the end,
 * so the result does not depend on the thread count or on timing. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "cpu.h"

/* Convolutions with at most this many taps use small_gemm.c's kernels. */
#define SMALL_TAPS 32

static int64_t taps(const ln_conv2d_shape *s)
{
    return (int64_t)s->c * s->r * s->s;
}

/* The image is its own column matrix. */
static int is_pointwise(const ln_conv2d_shape *s)
{
    return s->r == 1 && s->s == 1 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h == 0
           && s->pad_w == 0;
}

#ifdef LN_CPU_AVX2
static int uses_small_kernels(const ln_conv2d_shape *s)
{
    return taps(s) <= SMALL_TAPS;
}
#endif

#ifdef LN_CPU_AVX2
/* Winograd's F(2x2, 3x3) for the 3x3 convolutions it applies to (winograd.c),
 * unless the context turned it off ($LUNET_CPU_WINOGRAD=0, for comparisons). */
static int uses_winograd(const ln_cpu_context *ctx, const ln_conv2d_shape *s)
{
    return ctx->winograd && ln_cpu_winograd_applies(s);
}
#endif

/* Threads for a pass over `items` units of work of the batch: no more
 * threads than units. */
static int batch_threads(void *ctx, const ln_conv2d_shape *s, int items)
{
    int64_t macs = (int64_t)s->n * s->k * taps(s) * s->p * s->q;
    int t = ln_cpu_threads_for_macs(ctx, macs);
    return t < items ? t : items;
}

/* `threads` workspaces of `floats` each, 64-byte aligned; *stride is the
 * distance between them in floats. */
static float *thread_workspaces(ln_cpu_context *ctx, int threads, int64_t floats,
                                int64_t *stride)
{
    *stride = (floats + 15) & ~(int64_t)15;
    return ln_cpu_scratch(ctx, (size_t)(*stride * threads) * sizeof(float));
}

/* The valid range [lo, hi) of output columns q whose input column
 * q * stride - pad + t lies inside [0, width). */
static void valid_range(int t, int stride, int pad, int width, int q_count, int *lo, int *hi)
{
    /* q * stride >= pad - t  and  q * stride < width + pad - t */
    int need = pad - t;
    *lo = need <= 0 ? 0 : (need + stride - 1) / stride;
    int limit = width + pad - t; /* exclusive bound on q * stride */
    *hi = limit <= 0 ? 0 : (limit + stride - 1) / stride;
    if (*hi > q_count)
        *hi = q_count;
    if (*lo > *hi)
        *lo = *hi;
}

/* cols[CRS, PQ] of one image x[C, H, W]. */
static void im2col_image(const ln_conv2d_shape *s, const float *x, float *cols)
{
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q, hw = (int64_t)s->h * s->w;
    for (int64_t row = 0; row < rows; row++) {
        int c = (int)(row / ((int64_t)s->r * s->s)), r = (int)(row / s->s % s->r);
        int t = (int)(row % s->s);
        int q_lo, q_hi;
        valid_range(t, s->stride_w, s->pad_w, s->w, s->q, &q_lo, &q_hi);
        const float *plane = x + c * hw;
        float *out = cols + row * pq;
        int shift = t - s->pad_w;
        for (int p = 0; p < s->p; p++) {
            float *o = out + (int64_t)p * s->q;
            int h = p * s->stride_h - s->pad_h + r;
            if (h < 0 || h >= s->h) {
                memset(o, 0, sizeof(float) * (size_t)s->q);
                continue;
            }
            /* input column of output q: q * stride - pad + t */
            const float *in = plane + (int64_t)h * s->w;
            for (int q = 0; q < q_lo; q++)
                o[q] = 0.0f;
            if (s->stride_w == 1)
                memcpy(o + q_lo, in + q_lo + shift, sizeof(float) * (size_t)(q_hi - q_lo));
            else
                for (int q = q_lo; q < q_hi; q++)
                    o[q] = in[(int64_t)q * s->stride_w + shift];
            for (int q = q_hi; q < s->q; q++)
                o[q] = 0.0f;
        }
    }
}

/* dx[C, H, W] of one image = the sum of every column entry that im2col
 * copied from each input element. */
static void col2im_image(const ln_conv2d_shape *s, const float *cols, float *dx)
{
    int64_t pq = (int64_t)s->p * s->q, hw = (int64_t)s->h * s->w;
    memset(dx, 0, sizeof(float) * (size_t)(hw * s->c));
    for (int c = 0; c < s->c; c++) {
        float *plane = dx + c * hw;
        for (int r = 0; r < s->r; r++)
            for (int t = 0; t < s->s; t++) {
                const float *in = cols + (((int64_t)c * s->r + r) * s->s + t) * pq;
                int q_lo, q_hi;
                valid_range(t, s->stride_w, s->pad_w, s->w, s->q, &q_lo, &q_hi);
                for (int p = 0; p < s->p; p++) {
                    int h = p * s->stride_h - s->pad_h + r;
                    if (h < 0 || h >= s->h)
                        continue;
                    float *out = plane + (int64_t)h * s->w + t - s->pad_w;
                    const float *src = in + (int64_t)p * s->q;
                    if (s->stride_w == 1)
                        for (int q = q_lo; q < q_hi; q++)
                            out[q] += src[q];
                    else
                        for (int q = q_lo; q < q_hi; q++)
                            out[(int64_t)q * s->stride_w] += src[q];
                }
            }
    }
}

/* Y[K, PQ] = bias + W[K, CRS] cols[CRS, PQ] for one image. */
static void forward_product(const ln_conv2d_shape *s, const float *w, const float *bias,
                            const float *cols, float *out)
{
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
#ifdef LN_CPU_AVX2
    if (uses_small_kernels(s)) {
        ln_cpu_small_gemm(s->k, (int)pq, (int)rows, w, rows, 1, cols, pq, out, pq, bias);
        return;
    }
#endif
    if (bias)
        for (int k = 0; k < s->k; k++)
            for (int64_t j = 0; j < pq; j++)
                out[k * pq + j] = bias[k];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->k, (int)pq, (int)rows, 1.0f, w,
                (int)rows, cols, (int)pq, bias ? 1.0f : 0.0f, out, (int)pq);
}

/* dcols[CRS, PQ] = W^T dY[K, PQ] for one image. */
static void backward_data_product(const ln_conv2d_shape *s, const float *w, const float *dy,
                                  float *dcols)
{
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
#ifdef LN_CPU_AVX2
    if (uses_small_kernels(s)) {
        ln_cpu_small_gemm((int)rows, (int)pq, s->k, w, 1, rows, dy, pq, dcols, pq, NULL);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)pq, s->k, 1.0f, w,
                (int)rows, dy, (int)pq, 0.0f, dcols, (int)pq);
}

/* grad[K, CRS] (+)= dY[K, PQ] cols^T for one image. */
static void backward_filter_product(const ln_conv2d_shape *s, const float *dy,
                                    const float *cols, float *grad, int accumulate)
{
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
#ifdef LN_CPU_AVX2
    if (uses_small_kernels(s)) {
        ln_cpu_small_dot_gemm(s->k, (int)rows, (int)pq, dy, pq, cols, pq, grad, rows, accumulate);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->k, (int)rows, (int)pq, 1.0f, dy,
                (int)pq, cols, (int)pq, accumulate ? 1.0f : 0.0f, grad, (int)rows);
}

/* The forward pass, image by image: into y, or for the fused block (winner
 * given) into a per-thread buffer that ReLU and pooling read while it is in
 * cache, writing the pooled y and the winners. */
typedef struct forward_job {
    const ln_conv2d_shape *s;
    const float *x, *w, *bias;
    float *y;
    uint8_t *winner;
    float *ws;                 /* per thread: the column matrix, the convolution's output */
    int64_t stride, cols_floats;
    int pointwise;
} forward_job;

static void forward_image(void *p, int64_t b, int thread)
{
    const forward_job *j = p;
    const ln_conv2d_shape *s = j->s;
    int64_t pq = (int64_t)s->p * s->q, pooled = (int64_t)(s->p / 2) * (s->q / 2);
    float *cols = j->ws + thread * j->stride;
    const float *xcols = j->x + b * s->c * s->h * s->w;
    if (!j->pointwise) {
        im2col_image(s, xcols, cols);
        xcols = cols;
    }
    if (!j->winner) {
        forward_product(s, j->w, j->bias, xcols, j->y + b * s->k * pq);
        return;
    }
    float *conv = cols + j->cols_floats;
    forward_product(s, j->w, j->bias, xcols, conv);
    int64_t out = b * s->k * pooled;
    for (int k = 0; k < s->k; k++)
        ln_cpu_relu_maxpool2x2_plane(conv + k * pq, s->p, s->q, j->y + out + k * pooled,
                                     j->winner + out + k * pooled);
}

static int forward_images(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y, uint8_t *winner,
                          int fused);

/* The fused block in evaluate mode (no winners) on a path that always
 * writes them: into the context's room for them, dropped afterwards (the
 * room stays, so batch after batch allocates nothing). */
static int forward_scratch_winners(ln_cpu_context *ctx, const ln_conv2d_shape *s,
                                   const float *x, const float *w, const float *bias, float *y)
{
    size_t bytes = (size_t)s->n * (size_t)s->k * (size_t)(s->p / 2) * (size_t)(s->q / 2);
    if (bytes > ctx->dropped_winners_bytes || !ctx->dropped_winners) {
        uint8_t *room = malloc(bytes ? bytes : 1);
        if (!room)
            return ln_error(LN_ENOMEM, "out of host memory for the fused block's winners (%zu bytes)",
                            bytes);
        free(ctx->dropped_winners);
        ctx->dropped_winners = room;
        ctx->dropped_winners_bytes = bytes;
    }
    return forward_images(ctx, s, x, w, bias, y, ctx->dropped_winners, 1);
}

/* y = the convolution, or (fused) the pooled block with its winners, which
 * in evaluate mode may be NULL: the kernels of the seed model's blocks
 * (F(4x4), direct) then skip them. */
static int forward_images(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y, uint8_t *winner,
                          int fused)
{
#ifdef LN_CPU_AVX2
#ifdef LN_CPU_AVX512
    if (uses_winograd(ctx, s) && ctx->winograd == 1 && ln_cpu_winograd4_applies(s))
        return ln_cpu_winograd4_forward(ctx, s, x, w, bias, y, winner, fused);
#endif
    if (uses_winograd(ctx, s))
        return fused && !winner ? forward_scratch_winners(ctx, s, x, w, bias, y)
                                : ln_cpu_winograd_forward(ctx, s, x, w, bias, y, winner);
#endif
#ifdef LN_CPU_AVX512
    if (fused && ln_cpu_direct_block_applies(s))
        return ln_cpu_direct_block_forward(ctx, s, x, w, bias, y, winner);
#endif
    if (fused && !winner)
        return forward_scratch_winners(ctx, s, x, w, bias, y);
    int64_t pq = (int64_t)s->p * s->q;
    int threads = batch_threads(ctx, s, s->n), pointwise = is_pointwise(s);
    int64_t cols_floats = pointwise ? 0 : (taps(s) * pq + 15) & ~(int64_t)15;
    int64_t stride = 0;
    float *ws = thread_workspaces(ctx, threads, cols_floats + (winner ? s->k * pq : 0), &stride);
    if (!ws)
        return LN_ENOMEM;
    forward_job job = {s, x, w, bias, y, winner, ws, stride, cols_floats, pointwise};
    ln_cpu_parallel(ctx, threads, s->n, forward_image, &job);
    return LN_OK;
}

int ln_cpu_conv2d_forward(void *vctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y)
{
    if (s->n == 0)
        return LN_OK;
    return forward_images(vctx, s, x, w, bias, y, NULL, 0);
}

typedef struct backward_data_job {
    const ln_conv2d_shape *s;
    const float *dy, *w;
    float *dx, *ws;
    int64_t stride;
    int pointwise;
} backward_data_job;

static void backward_data_image(void *p, int64_t b, int thread)
{
    const backward_data_job *j = p;
    const ln_conv2d_shape *s = j->s;
    int64_t chw = (int64_t)s->c * s->h * s->w;
    float *dcols = j->pointwise ? j->dx + b * chw : j->ws + thread * j->stride;
    backward_data_product(s, j->w, j->dy + b * s->k * s->p * s->q, dcols);
    if (!j->pointwise)
        col2im_image(s, dcols, j->dx + b * chw);
}

int ln_cpu_conv2d_backward_data(void *vctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx)
{
    ln_cpu_context *ctx = vctx;
    if (s->n == 0)
        return LN_OK;
#ifdef LN_CPU_AVX2
    if (uses_winograd(ctx, s))
        return ln_cpu_winograd_backward(ctx, s, NULL, w, dy, NULL, dx, NULL, NULL, 0);
#endif
    int threads = batch_threads(ctx, s, s->n), pointwise = is_pointwise(s);
    int64_t stride = 0;
    float *ws = pointwise ? NULL
                          : thread_workspaces(ctx, threads, taps(s) * s->p * s->q, &stride);
    if (!pointwise && !ws)
        return LN_ENOMEM;
    backward_data_job job = {s, dy, w, dx, ws, stride, pointwise};
    ln_cpu_parallel(ctx, threads, s->n, backward_data_image, &job);
    return LN_OK;
}

/* Image groups of a weight gradient: enough for uneven progress. */
#define GROUPS 8

int ln_cpu_gradient_groups(const ln_cpu_context *ctx, int n, int64_t group_floats)
{
    int64_t budget = (int64_t)(ctx->conv_workspace_bytes / sizeof(float));
    int groups = n < GROUPS ? n : GROUPS;
    while (groups > 1 && groups * group_floats > budget)
        groups--;
    return groups;
}

void ln_cpu_finish_bias(float *db, const float *groups, int count, int64_t group_floats,
                        int64_t bias_offset, int k_count, int accumulate)
{
    for (int k = 0; k < k_count; k++) {
        double acc = accumulate ? db[k] : 0.0;
        for (int g = 0; g < count; g++)
            acc += ((const double *)(groups + g * group_floats + bias_offset))[k];
        db[k] = (float)acc;
    }
}

/* Weight (and bias) gradients over the batch, in fixed groups of images (see
 * the top). The output gradient of image b is dy's slice, or, for the fused
 * block (winner given), the pooled gradient spread back to the convolution's
 * output; the fused block also writes the input gradient dx here (unless
 * NULL), while the spread gradient is in cache. */
typedef struct gradient_job {
    const ln_conv2d_shape *s;
    const float *x, *w, *dy;
    const uint8_t *winner;
    float *dx, *db;
    float *groups;             /* per group: weight gradient, then bias sums (double) */
    int64_t group_floats, grad_floats;
    float *threads_base;       /* per thread: column matrix, spread gradient */
    int64_t thread_floats, cols_floats;
    int count;                 /* groups */
    int pointwise;
} gradient_job;

static void gradient_group(void *p, int64_t g, int thread)
{
    const gradient_job *j = p;
    const ln_conv2d_shape *s = j->s;
    int64_t pq = (int64_t)s->p * s->q, chw = (int64_t)s->c * s->h * s->w;
    int64_t pooled = (int64_t)(s->p / 2) * (s->q / 2);
    float *cols = j->threads_base + thread * j->thread_floats, *spread = cols + j->cols_floats;
    float *grad = j->groups + g * j->group_floats;
    double *bias_sum = (double *)(grad + j->grad_floats);
    memset(bias_sum, 0, sizeof(double) * (size_t)s->k);
    int first = (int)(s->n * g / j->count), last = (int)(s->n * (g + 1) / j->count);
    for (int b = first; b < last; b++) {
        const float *g_img = j->dy + (int64_t)b * s->k * (j->winner ? pooled : pq);
        if (j->winner) {
            for (int k = 0; k < s->k; k++)
                ln_cpu_maxpool2x2_expand_plane(g_img + k * pooled,
                                               j->winner + ((int64_t)b * s->k + k) * pooled,
                                               s->p, s->q, spread + k * pq);
            g_img = spread;
            if (j->dx) {
                backward_data_product(s, j->w, g_img, j->pointwise ? j->dx + b * chw : cols);
                if (!j->pointwise)
                    col2im_image(s, cols, j->dx + b * chw);
            }
        }
        const float *xcols = j->x + b * chw;
        if (!j->pointwise) {
            im2col_image(s, xcols, cols);
            xcols = cols;
        }
        backward_filter_product(s, g_img, xcols, grad, b > first);
        if (j->db)
            for (int k = 0; k < s->k; k++)
                bias_sum[k] += ln_cpu_sum(g_img + k * pq, pq);
    }
}

static int weight_gradients(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                            const float *w, const float *dy, const uint8_t *winner, float *dx,
                            float *dw, float *db, int accumulate)
{
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q, wsize = rows * s->k;
    int pointwise = is_pointwise(s);
    int64_t grad_floats = (wsize + 15) & ~(int64_t)15;
    int64_t group_floats = grad_floats + 2 * ((s->k + 7) & ~(int64_t)7);
    int64_t cols_floats = pointwise ? 0 : (rows * pq + 15) & ~(int64_t)15;
    int64_t spread_floats = winner ? ((int64_t)s->k * pq + 15) & ~(int64_t)15 : 0;
    int64_t thread_floats = cols_floats + spread_floats;
    int groups = ln_cpu_gradient_groups(ctx, s->n, group_floats);
    int threads = batch_threads(ctx, s, groups);
    float *base = ln_cpu_scratch(ctx, (size_t)(groups * group_floats + threads * thread_floats)
                                          * sizeof(float));
    if (!base)
        return LN_ENOMEM;
    gradient_job job = {s, x, w, dy, winner, dx, db, base, group_floats, grad_floats,
                        base + groups * group_floats, thread_floats, cols_floats, groups,
                        pointwise};
    ln_cpu_parallel(ctx, threads, groups, gradient_group, &job);
    /* the groups in order, whatever thread summed them */
    ln_cpu_sum_groups(ctx, dw, base, groups, group_floats, wsize, accumulate);
    if (db)
        ln_cpu_finish_bias(db, base, groups, group_floats, grad_floats, s->k, accumulate);
    return LN_OK;
}

/* An empty batch: the parameter gradients are zero (or unchanged). */
static void empty_batch_gradients(const ln_conv2d_shape *s, float *dw, float *db, int accumulate)
{
    if (accumulate)
        return;
    memset(dw, 0, sizeof(float) * (size_t)(taps(s) * s->k));
    if (db)
        memset(db, 0, sizeof(float) * (size_t)s->k);
}

/* The parameter gradients, and for the fused block the input gradient: an
 * empty batch, Winograd's passes, or the per-image ones. */
static int backward_pass(void *vctx, const ln_conv2d_shape *s, const float *x, const float *w,
                         const float *dy, const uint8_t *winner, float *dx, float *dw, float *db,
                         int accumulate)
{
    if (s->n == 0) {
        empty_batch_gradients(s, dw, db, accumulate);
        return LN_OK;
    }
#ifdef LN_CPU_AVX2
    if (uses_winograd(vctx, s))
        return ln_cpu_winograd_backward(vctx, s, x, w, dy, winner, dx, dw, db, accumulate);
#endif
    return weight_gradients(vctx, s, x, w, dy, winner, dx, dw, db, accumulate);
}

int ln_cpu_conv2d_backward_filter(void *vctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate)
{
    return backward_pass(vctx, s, x, NULL, dy, NULL, NULL, dw, db, accumulate);
}

/* --- the fused block: convolution, ReLU, 2x2 max pooling (backend.h) ------------ */

int ln_cpu_conv2d_relu_maxpool2x2_forward(void *vctx, const ln_conv2d_shape *s, const float *x,
                                          const float *w, const float *bias, float *y,
                                          uint8_t *winner)
{
    if (s->n == 0 || s->p < 2 || s->q < 2)
        return LN_OK;
    return forward_images(vctx, s, x, w, bias, y, winner, 1);
}

int ln_cpu_conv2d_relu_maxpool2x2_backward(void *vctx, const ln_conv2d_shape *s, const float *x,
                                           const float *w, const float *dy,
                                           const uint8_t *winner, float *dx, float *dw,
                                           float *db, int accumulate)
{
#ifdef LN_CPU_AVX512
    /* the first layer of a training step: no input gradient, few channels,
     * finite inputs (else LN_ENOTSUP: the general path) */
    if (!dx && s->n > 0 && ln_cpu_direct_block_applies(s)) {
        int st = ln_cpu_direct_block_backward(vctx, s, x, dy, winner, dw, db, accumulate);
        if (st != LN_ENOTSUP)
            return st;
    }
#endif
    return backward_pass(vctx, s, x, w, dy, winner, dx, dw, db, accumulate);
}
