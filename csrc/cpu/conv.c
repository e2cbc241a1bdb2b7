/* Convolution as im2col + one GEMM over the whole batch.
 *
 * The column matrix of a batch holds, for each kernel tap (c, r, s) one row,
 * and for each output position of each image one column:
 *     cols[(c * R + r) * S + s][b * P * Q + p * Q + q] = x[b, c, p*sh - ph + r, q*sw - pw + s]
 * (zero in the padding). Then
 *     forward:          Y'[K, NPQ]   = W[K, CRS] x cols[CRS, NPQ]
 *     backward data:    dcols        = W^T x dY'      (then col2im sums into dx)
 *     backward filter:  dW[K, CRS]  += dY' x cols^T,  db[k] += sum of row k of dY'
 * where Y' is the output with the batch moved next to the positions ([K, N, P, Q]),
 * so a single large GEMM covers the batch instead of N thin ones. The batch is
 * split into chunks only when the workspace would pass the context's
 * conv_workspace_bytes ($LUNET_CPU_WORKSPACE_MB, 256 MiB by default). */
#include <cblas.h>
#include <string.h>

#include "../status.h"
#include "cpu.h"

/* Geometry of one chunk of images. */
typedef struct conv_chunk {
    int first, count;          /* images first .. first + count - 1 */
    int64_t pq, cols;          /* positions per image, columns of the chunk */
} conv_chunk;

static int64_t taps(const ln_conv2d_shape *s)
{
    return (int64_t)s->c * s->r * s->s;
}

/* Images per chunk: as many as fit the workspace, at least one, and few
 * enough that the GEMM's column count fits an int. */
static int images_per_chunk(const ln_cpu_context *ctx, const ln_conv2d_shape *s,
                            int64_t floats_per_column)
{
    int64_t pq = (int64_t)s->p * s->q;
    int64_t per_image = floats_per_column * pq * (int64_t)sizeof(float);
    int64_t fit = per_image > 0 ? (int64_t)ctx->conv_workspace_bytes / per_image : s->n;
    if (pq > 0 && fit > INT32_MAX / pq)
        fit = INT32_MAX / pq;
    if (fit < 1)
        fit = 1;
    return fit < s->n ? (int)fit : s->n;
}

/* Two float workspaces of `a` and `b` floats from the context's scratch. */
static int workspace(ln_cpu_context *ctx, int64_t a, int64_t b, float **pa, float **pb)
{
    int64_t a_rounded = (a + 15) & ~(int64_t)15; /* keeps b 64-byte aligned */
    float *base = ln_cpu_scratch(ctx, (size_t)(a_rounded + b) * sizeof(float));
    if (!base)
        return LN_ENOMEM;
    *pa = base;
    *pb = base + a_rounded;
    return LN_OK;
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

static void im2col(const ln_conv2d_shape *s, const float *x, const conv_chunk *ch,
                   float *cols, int threads)
{
    int64_t rows = taps(s);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t row = 0; row < rows; row++) {
        int c = (int)(row / ((int64_t)s->r * s->s)), r = (int)(row / s->s % s->r);
        int t = (int)(row % s->s);
        int q_lo, q_hi;
        valid_range(t, s->stride_w, s->pad_w, s->w, s->q, &q_lo, &q_hi);
        float *out = cols + row * ch->cols;
        for (int b = 0; b < ch->count; b++) {
            const float *plane = x + ((int64_t)(ch->first + b) * s->c + c) * s->h * s->w;
            for (int p = 0; p < s->p; p++) {
                float *o = out + b * ch->pq + (int64_t)p * s->q;
                int h = p * s->stride_h - s->pad_h + r;
                if (h < 0 || h >= s->h) {
                    memset(o, 0, sizeof(float) * (size_t)s->q);
                    continue;
                }
                /* input column of output q: q * stride - pad + t */
                const float *in = plane + (int64_t)h * s->w;
                int shift = t - s->pad_w;
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
}

/* dx[b, c] = the sum of every column entry that im2col copied from it. Each
 * (image, channel) plane is owned by one thread. */
static void col2im(const ln_conv2d_shape *s, const float *cols, const conv_chunk *ch,
                   float *dx, int threads)
{
    int64_t planes = (int64_t)ch->count * s->c, hw = (int64_t)s->h * s->w;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < planes; i++) {
        int b = (int)(i / s->c), c = (int)(i % s->c);
        float *plane = dx + ((int64_t)ch->first + b) * s->c * hw + (int64_t)c * hw;
        memset(plane, 0, sizeof(float) * (size_t)hw);
        for (int r = 0; r < s->r; r++)
            for (int t = 0; t < s->s; t++) {
                int64_t row = ((int64_t)c * s->r + r) * s->s + t;
                const float *in = cols + row * ch->cols + b * ch->pq;
                int q_lo, q_hi;
                valid_range(t, s->stride_w, s->pad_w, s->w, s->q, &q_lo, &q_hi);
                for (int p = 0; p < s->p; p++) {
                    int h = p * s->stride_h - s->pad_h + r;
                    if (h < 0 || h >= s->h)
                        continue;
                    float *out = plane + (int64_t)h * s->w;
                    const float *src = in + (int64_t)p * s->q;
                    for (int q = q_lo; q < q_hi; q++)
                        out[(int64_t)q * s->stride_w + t - s->pad_w] += src[q];
                }
            }
    }
}

/* [N, K, PQ] <-> [K, N * PQ] for the chunk's images. */
static void batch_to_rows(const ln_conv2d_shape *s, const float *y, const conv_chunk *ch,
                          float *rows, int threads)
{
    int64_t pairs = (int64_t)ch->count * s->k;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < pairs; i++) {
        int b = (int)(i / s->k), k = (int)(i % s->k);
        memcpy(rows + k * ch->cols + b * ch->pq,
               y + (((int64_t)ch->first + b) * s->k + k) * ch->pq,
               sizeof(float) * (size_t)ch->pq);
    }
}

int ln_cpu_conv2d_forward(void *vctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y)
{
    ln_cpu_context *ctx = vctx;
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
    if (s->n == 0)
        return LN_OK;
    int per_chunk = images_per_chunk(ctx, s, rows + s->k);
    float *cols, *out;
    LN_TRY(workspace(ctx, rows * per_chunk * pq, (int64_t)s->k * per_chunk * pq, &cols, &out));
    int threads = ln_cpu_threads_for(ctx, rows * per_chunk * pq);
    for (int first = 0; first < s->n; first += per_chunk) {
        conv_chunk ch = {first, s->n - first < per_chunk ? s->n - first : per_chunk, pq, 0};
        ch.cols = ch.count * pq;
        im2col(s, x, &ch, cols, threads);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->k, (int)ch.cols,
                    (int)rows, 1.0f, w, (int)rows, cols, (int)ch.cols, 0.0f, out,
                    (int)ch.cols);
        /* back to [N, K, P, Q], adding the bias on the way */
        int64_t pairs = (int64_t)ch.count * s->k;
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t i = 0; i < pairs; i++) {
            int b = (int)(i / s->k), k = (int)(i % s->k);
            const float *src = out + k * ch.cols + b * pq;
            float *dst = y + (((int64_t)first + b) * s->k + k) * pq, add = bias ? bias[k] : 0.0f;
            for (int64_t j = 0; j < pq; j++)
                dst[j] = src[j] + add;
        }
    }
    return LN_OK;
}

int ln_cpu_conv2d_backward_data(void *vctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx)
{
    ln_cpu_context *ctx = vctx;
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
    if (s->n == 0)
        return LN_OK;
    int per_chunk = images_per_chunk(ctx, s, rows + s->k);
    float *dcols, *dyt;
    LN_TRY(workspace(ctx, rows * per_chunk * pq, (int64_t)s->k * per_chunk * pq, &dcols, &dyt));
    int threads = ln_cpu_threads_for(ctx, rows * per_chunk * pq);
    for (int first = 0; first < s->n; first += per_chunk) {
        conv_chunk ch = {first, s->n - first < per_chunk ? s->n - first : per_chunk, pq, 0};
        ch.cols = ch.count * pq;
        batch_to_rows(s, dy, &ch, dyt, threads);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)rows, (int)ch.cols, s->k,
                    1.0f, w, (int)rows, dyt, (int)ch.cols, 0.0f, dcols, (int)ch.cols);
        col2im(s, dcols, &ch, dx, threads);
    }
    return LN_OK;
}

int ln_cpu_conv2d_backward_filter(void *vctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate)
{
    ln_cpu_context *ctx = vctx;
    int64_t rows = taps(s), pq = (int64_t)s->p * s->q;
    if (s->n == 0) { /* an empty batch: the gradients are zero (or unchanged) */
        if (!accumulate) {
            memset(dw, 0, sizeof(float) * (size_t)(rows * s->k));
            if (db)
                memset(db, 0, sizeof(float) * (size_t)s->k);
        }
        return LN_OK;
    }
    int per_chunk = images_per_chunk(ctx, s, rows + s->k);
    float *cols, *dyt;
    LN_TRY(workspace(ctx, rows * per_chunk * pq, (int64_t)s->k * per_chunk * pq, &cols, &dyt));
    int threads = ln_cpu_threads_for(ctx, rows * per_chunk * pq);
    for (int first = 0; first < s->n; first += per_chunk) {
        conv_chunk ch = {first, s->n - first < per_chunk ? s->n - first : per_chunk, pq, 0};
        ch.cols = ch.count * pq;
        int add = accumulate || first > 0;
        im2col(s, x, &ch, cols, threads);
        batch_to_rows(s, dy, &ch, dyt, threads);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s->k, (int)rows, (int)ch.cols,
                    1.0f, dyt, (int)ch.cols, cols, (int)ch.cols, add ? 1.0f : 0.0f, dw,
                    (int)rows);
        if (!db)
            continue;
#pragma omp parallel for num_threads(ln_cpu_threads_for(ctx, s->k * ch.cols)) schedule(static)
        for (int k = 0; k < s->k; k++) {
            const float *row = dyt + k * ch.cols;
            double acc = add ? db[k] : 0.0;
            for (int64_t j = 0; j < ch.cols; j++)
                acc += row[j];
            db[k] = (float)acc;
        }
    }
    return LN_OK;
}
