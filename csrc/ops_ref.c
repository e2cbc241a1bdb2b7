/* The reference backend. See ops_ref.h: clarity over speed, always. */
#include "ops_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "formulas.h"
#include "host_memory.h"
#include "philox.h"
#include "status.h"

/* --- strided element walks ---------------------------------------------- */

/* Advances a row-major multi-index over `shape`; returns 0 when done. */
static int next_index(int ndim, const int64_t *shape, int64_t *index)
{
    for (int d = ndim - 1; d >= 0; d--) {
        if (++index[d] < shape[d])
            return 1;
        index[d] = 0;
    }
    return 0;
}

static int64_t strided_offset(const ln_strided *s, const int64_t *index)
{
    int64_t off = 0;
    for (int d = 0; d < s->ndim; d++)
        off += index[d] * s->stride[d];
    return off;
}

int ln_ref_copy(void *ctx, const ln_strided *dst, const ln_strided *src)
{
    (void)ctx;
    int64_t index[LN_MAX_DIMS] = {0};
    if (ln_strided_numel(dst) == 0)
        return LN_OK;
    do {
        double v = ln_load_as_double(src->data, src->dtype, strided_offset(src, index));
        ln_store_from_double(dst->data, dst->dtype, strided_offset(dst, index), v);
    } while (next_index(dst->ndim, dst->shape, index));
    return LN_OK;
}

int ln_ref_fill(void *ctx, const ln_strided *dst, double value)
{
    (void)ctx;
    int64_t index[LN_MAX_DIMS] = {0};
    if (ln_strided_numel(dst) == 0)
        return LN_OK;
    do {
        ln_store_from_double(dst->data, dst->dtype, strided_offset(dst, index), value);
    } while (next_index(dst->ndim, dst->shape, index));
    return LN_OK;
}

/* --- elementwise ---------------------------------------------------------- */

static void store_int(void *out, ln_dtype dtype, int64_t i, int64_t v)
{
    if (dtype == LN_INT32)
        ((int32_t *)out)[i] = (int32_t)(uint32_t)(uint64_t)v;
    else
        ((uint8_t *)out)[i] = (uint8_t)(uint64_t)v;
}

static int64_t load_int(const void *x, ln_dtype dtype, int64_t i)
{
    return dtype == LN_INT32 ? ((const int32_t *)x)[i] : ((const uint8_t *)x)[i];
}

static int unsupported_dtype(const char *op, ln_dtype dtype)
{
    return ln_error(LN_ENOTSUP, "%s of %s tensors is not supported on this device; "
                    "convert with t:to(\"float32\") first", op, ln_dtype_name(dtype));
}

int ln_ref_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out)
{
    (void)ctx;
    if (dtype == LN_FLOAT32) {
        const float *x = a, *y = b;
        float *z = out;
        for (int64_t i = 0; i < n; i++)
            z[i] = ln_f_binary(op, x[i], y[i]);
        return LN_OK;
    }
    if (dtype == LN_INT32 || dtype == LN_UINT8) {
        for (int64_t i = 0; i < n; i++)
            store_int(out, dtype, i, ln_i_binary(op, load_int(a, dtype, i), load_int(b, dtype, i)));
        return LN_OK;
    }
    return unsupported_dtype("elementwise arithmetic", dtype);
}

int ln_ref_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out)
{
    (void)ctx;
    if (dtype == LN_FLOAT32) {
        const float *x = a;
        float *z = out, fs = (float)s;
        for (int64_t i = 0; i < n; i++)
            z[i] = scalar_first ? ln_f_binary(op, fs, x[i]) : ln_f_binary(op, x[i], fs);
        return LN_OK;
    }
    if (dtype == LN_INT32 || dtype == LN_UINT8) {
        int64_t is = (int64_t)s;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = load_int(a, dtype, i);
            store_int(out, dtype, i, scalar_first ? ln_i_binary(op, is, v) : ln_i_binary(op, v, is));
        }
        return LN_OK;
    }
    return unsupported_dtype("elementwise arithmetic", dtype);
}

/* --- the unary and softmax families (formulas.h) ------------------------------ */

int ln_ref_unary(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                 const float *x, float *y)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        y[i] = ln_f_unary(op, p, x[i]);
    return LN_OK;
}

int ln_ref_unary_backward(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                          const float *x, const float *y, const float *dy, float *dx)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        dx[i] = ln_f_unary_backward(op, p, x ? x[i] : 0.0f, y ? y[i] : 0.0f, dy[i]);
    return LN_OK;
}

int ln_ref_softmax(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                   const float *x, float *y)
{
    (void)ctx;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            ln_f_softmax_row(log, dim, inner, x + o * dim * inner + i, y + o * dim * inner + i);
    return LN_OK;
}

int ln_ref_softmax_backward(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                            const float *y, const float *dy, float *dx)
{
    (void)ctx;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t at = o * dim * inner + i;
            ln_f_softmax_backward_row(log, dim, inner, y + at, dy + at, dx + at);
        }
    return LN_OK;
}

int ln_ref_reduce_dim(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim, int64_t inner,
                      const float *x, float *values, int32_t *positions)
{
    (void)ctx;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++)
            ln_f_reduce_row(op, dim, inner, x + o * dim * inner + i, &values[o * inner + i],
                            positions ? &positions[o * inner + i] : NULL);
    return LN_OK;
}

/* --- reductions ----------------------------------------------------------- */

int ln_ref_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result)
{
    (void)ctx;
    if (dtype != LN_FLOAT32 && dtype != LN_INT32 && dtype != LN_UINT8)
        return unsupported_dtype("reduction", dtype);
    double acc = op == LN_SUM ? 0.0 : ln_load_as_double(x, dtype, 0);
    for (int64_t i = 0; i < n; i++) {
        double v = ln_load_as_double(x, dtype, i);
        if (op == LN_SUM)
            acc += v;
        else if (v != v || acc != acc) /* NaN wins, as in PyTorch */
            acc = NAN;
        else if (op == LN_MAX ? v > acc : v < acc)
            acc = v;
    }
    *result = acc;
    return LN_OK;
}

int ln_ref_argmax(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,
                  int64_t inner, const void *x, int32_t *out)
{
    (void)ctx;
    if (dtype != LN_FLOAT32 && dtype != LN_INT32 && dtype != LN_UINT8)
        return unsupported_dtype("argmax", dtype);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t best = 0;
            double best_v = ln_load_as_double(x, dtype, o * dim * inner + i);
            for (int64_t d = 1; d < dim && best_v == best_v; d++) {
                double v = ln_load_as_double(x, dtype, (o * dim + d) * inner + i);
                if (v > best_v || v != v) {
                    best = d;
                    best_v = v;
                }
            }
            out[o * inner + i] = (int32_t)(best + 1);
        }
    }
    return LN_OK;
}

/* --- matrix product ------------------------------------------------------- */

int ln_ref_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("gemm", dtype);
    const float *A = a, *B = b;
    float *C = c;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p];
                float bv = trans_b ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j];
                acc += (double)av * bv;
            }
            float *cij = &C[(size_t)i * ldc + j];
            /* beta == 0 must ignore C entirely (it may hold NaN), as BLAS does */
            *cij = (float)(alpha * acc + (beta != 0.0f ? (double)beta * *cij : 0.0));
        }
    }
    return LN_OK;
}

/* --- random numbers ------------------------------------------------------- */

int ln_ref_rand_uniform(void *ctx, ln_dtype dtype, int64_t n, void *out,
                        double lo, double hi, uint64_t seed, uint64_t offset)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("random fill", dtype);
    float *y = out, flo = (float)lo, span = (float)(hi - lo);
    for (int64_t i = 0; i < n; i++)
        y[i] = flo + span * ln_philox_uniform(seed, offset, (uint64_t)i);
    return LN_OK;
}

int ln_ref_rand_normal(void *ctx, ln_dtype dtype, int64_t n, void *out,
                       double mean, double std, uint64_t seed, uint64_t offset)
{
    (void)ctx;
    if (dtype != LN_FLOAT32)
        return unsupported_dtype("random fill", dtype);
    float *y = out, fmean = (float)mean, fstd = (float)std;
    for (int64_t i = 0; i < n; i++)
        y[i] = fmean + fstd * ln_philox_normal(seed, offset, (uint64_t)i);
    return LN_OK;
}

int ln_ref_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, int64_t src_rows, double divisor)
{
    (void)ctx;
    for (int64_t r = 0; r < n; r++) {
        int64_t from = (int64_t)indices[r] * row_elems;
        if (indices[r] < 0 || indices[r] >= src_rows) {
            for (int64_t e = 0; e < row_elems; e++)
                ln_store_from_double(dst, dst_dtype, r * row_elems + e, 0);
            continue;
        }
        for (int64_t e = 0; e < row_elems; e++) {
            double v = ln_load_as_double(src, src_dtype, from + e);
            if (divisor != 1.0)
                v = (float)v / (float)divisor;
            ln_store_from_double(dst, dst_dtype, r * row_elems + e, v);
        }
    }
    return LN_OK;
}

/* --- layers ------------------------------------------------------------------
 * Each kernel below is the definition of its layer: the sums are written the
 * way the textbook writes them and accumulate in double, so that the fast
 * kernels (float sums in another order) are measured against something
 * closer to the exact result than themselves. */

/* Row-major offsets into NCHW activations and KCRS weights. */
static int64_t nchw(int64_t n, int64_t c, int64_t h, int64_t w, int64_t C, int64_t H,
                    int64_t W)
{
    return ((n * C + c) * H + h) * W + w;
}

int ln_ref_conv2d_forward(void *ctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y)
{
    (void)ctx;
    for (int n = 0; n < s->n; n++)
        for (int k = 0; k < s->k; k++)
            for (int p = 0; p < s->p; p++)
                for (int q = 0; q < s->q; q++) {
                    double acc = bias ? bias[k] : 0.0;
                    for (int c = 0; c < s->c; c++)
                        for (int r = 0; r < s->r; r++)
                            for (int t = 0; t < s->s; t++) {
                                int h = p * s->stride_h - s->pad_h + r;
                                int v = q * s->stride_w - s->pad_w + t;
                                if (h < 0 || h >= s->h || v < 0 || v >= s->w)
                                    continue; /* zero padding */
                                acc += (double)x[nchw(n, c, h, v, s->c, s->h, s->w)]
                                       * w[nchw(k, c, r, t, s->c, s->r, s->s)];
                            }
                    y[nchw(n, k, p, q, s->k, s->p, s->q)] = (float)acc;
                }
    return LN_OK;
}

/* The output position that input row h meets through kernel row r, or -1:
 * h = p * stride - pad + r must hold for a whole p in [0, P). */
static int conv_source(int h, int r, int stride, int pad, int P)
{
    int num = h + pad - r;
    if (num < 0 || num % stride != 0)
        return -1;
    return num / stride < P ? num / stride : -1;
}

int ln_ref_conv2d_backward_data(void *ctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx)
{
    (void)ctx;
    for (int n = 0; n < s->n; n++)
        for (int c = 0; c < s->c; c++)
            for (int h = 0; h < s->h; h++)
                for (int v = 0; v < s->w; v++) {
                    double acc = 0;
                    for (int k = 0; k < s->k; k++)
                        for (int r = 0; r < s->r; r++)
                            for (int t = 0; t < s->s; t++) {
                                int p = conv_source(h, r, s->stride_h, s->pad_h, s->p);
                                int q = conv_source(v, t, s->stride_w, s->pad_w, s->q);
                                if (p < 0 || q < 0)
                                    continue;
                                acc += (double)dy[nchw(n, k, p, q, s->k, s->p, s->q)]
                                       * w[nchw(k, c, r, t, s->c, s->r, s->s)];
                            }
                    dx[nchw(n, c, h, v, s->c, s->h, s->w)] = (float)acc;
                }
    return LN_OK;
}

int ln_ref_conv2d_backward_filter(void *ctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate)
{
    for (int k = 0; k < s->k; k++)
        for (int c = 0; c < s->c; c++)
            for (int r = 0; r < s->r; r++)
                for (int t = 0; t < s->s; t++) {
                    double acc = 0;
                    for (int n = 0; n < s->n; n++)
                        for (int p = 0; p < s->p; p++)
                            for (int q = 0; q < s->q; q++) {
                                int h = p * s->stride_h - s->pad_h + r;
                                int v = q * s->stride_w - s->pad_w + t;
                                if (h < 0 || h >= s->h || v < 0 || v >= s->w)
                                    continue;
                                acc += (double)dy[nchw(n, k, p, q, s->k, s->p, s->q)]
                                       * x[nchw(n, c, h, v, s->c, s->h, s->w)];
                            }
                    float *out = &dw[nchw(k, c, r, t, s->c, s->r, s->s)];
                    *out = (float)(acc + (accumulate ? *out : 0.0));
                }
    /* db (+)= dy summed over everything but its channel */
    if (db)
        ln_ref_bias_backward(ctx, s->n, s->k, (int64_t)s->p * s->q, dy, db, accumulate);
    return LN_OK;
}

static int64_t max_pool_argmax(const ln_pool2d_shape *s, const float *plane, int p, int q);

/* The fused block is the three layers one after the other: the convolution
 * into a temporary, ReLU in place, then each 2x2 window's first maximum. */
int ln_ref_conv2d_relu_maxpool2x2_forward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                          const float *w, const float *bias, float *y,
                                          uint8_t *winner)
{
    size_t conv_size = (size_t)s->n * s->k * s->p * s->q;
    float *conv = malloc((conv_size ? conv_size : 1) * sizeof(float));
    if (!conv)
        return ln_error(LN_ENOMEM, "out of host memory for the convolution's output");
    ln_ref_conv2d_forward(ctx, s, x, w, bias, conv);
    ln_ref_relu_forward(ctx, (int64_t)conv_size, conv, conv);
    ln_pool2d_shape pool = {.n = s->n, .c = s->k, .h = s->p, .w = s->q,
                            .kernel_h = 2, .kernel_w = 2, .stride_h = 2, .stride_w = 2,
                            .pad_h = 0, .pad_w = 0, .p = s->p / 2, .q = s->q / 2};
    for (int64_t i = 0; i < (int64_t)s->n * s->k; i++) {
        const float *plane = conv + i * s->p * s->q;
        for (int p = 0; p < pool.p; p++)
            for (int q = 0; q < pool.q; q++) {
                int64_t at = max_pool_argmax(&pool, plane, p, q);
                int64_t out = (i * pool.p + p) * pool.q + q;
                int row = (int)(at / s->q) - 2 * p, col = (int)(at % s->q) - 2 * q;
                y[out] = plane[at];
                /* where the gradient goes: 0..3 in the window, 4 where ReLU passes none */
                if (winner)
                    winner[out] = (uint8_t)(plane[at] > 0.0f ? row * 2 + col : 4);
            }
    }
    free(conv);
    return LN_OK;
}

/* The pooled gradient spread back to the convolution's output (each value to
 * its window's winner, nothing where ReLU passes nothing), then the
 * convolution's own backward passes. */
int ln_ref_conv2d_relu_maxpool2x2_backward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                           const float *w, const float *dy,
                                           const uint8_t *winner, float *dx, float *dw,
                                           float *db, int accumulate)
{
    size_t conv_size = (size_t)s->n * s->k * s->p * s->q;
    float *grad = calloc(conv_size ? conv_size : 1, sizeof(float));
    if (!grad)
        return ln_error(LN_ENOMEM, "out of host memory for the convolution's gradient");
    int P = s->p / 2, Q = s->q / 2;
    for (int64_t plane = 0; plane < (int64_t)s->n * s->k; plane++)
        for (int p = 0; p < P; p++)
            for (int q = 0; q < Q; q++) {
                int64_t at = (plane * P + p) * Q + q;
                if (winner[at] < 4)
                    grad[(plane * s->p + 2 * p + winner[at] / 2) * s->q + 2 * q + winner[at] % 2] = dy[at];
            }
    if (dx)
        ln_ref_conv2d_backward_data(ctx, s, grad, w, dx);
    ln_ref_conv2d_backward_filter(ctx, s, x, grad, dw, db, accumulate);
    free(grad);
    return LN_OK;
}

/* The winning input position of a max-pooling window: the first maximum in
 * row-major order, NaN counting as the maximum (as in PyTorch). Padding
 * never wins; the core guarantees every window holds a real element. */
static int64_t max_pool_argmax(const ln_pool2d_shape *s, const float *plane, int p, int q)
{
    int64_t best = -1;
    float best_v = 0;
    for (int r = 0; r < s->kernel_h; r++)
        for (int t = 0; t < s->kernel_w; t++) {
            int h = p * s->stride_h - s->pad_h + r, v = q * s->stride_w - s->pad_w + t;
            if (h < 0 || h >= s->h || v < 0 || v >= s->w)
                continue;
            float x = plane[(int64_t)h * s->w + v];
            if (best < 0 || x > best_v || (x != x && best_v == best_v)) {
                best = (int64_t)h * s->w + v;
                best_v = x;
            }
        }
    return best;
}

/* Average pooling divides by the whole window, padding included (PyTorch's
 * default count_include_pad=True). */
static double avg_pool_sum(const ln_pool2d_shape *s, const float *plane, int p, int q)
{
    double acc = 0;
    for (int r = 0; r < s->kernel_h; r++)
        for (int t = 0; t < s->kernel_w; t++) {
            int h = p * s->stride_h - s->pad_h + r, v = q * s->stride_w - s->pad_w + t;
            if (h >= 0 && h < s->h && v >= 0 && v < s->w)
                acc += plane[(int64_t)h * s->w + v];
        }
    return acc;
}

int ln_ref_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y)
{
    (void)ctx;
    int64_t planes = (int64_t)s->n * s->c, in_size = (int64_t)s->h * s->w;
    double window = (double)s->kernel_h * s->kernel_w;
    for (int64_t i = 0; i < planes; i++) {
        const float *plane = x + i * in_size;
        float *out = y + i * s->p * s->q;
        for (int p = 0; p < s->p; p++)
            for (int q = 0; q < s->q; q++)
                out[p * s->q + q] = mode == LN_POOL_MAX
                                        ? plane[max_pool_argmax(s, plane, p, q)]
                                        : (float)(avg_pool_sum(s, plane, p, q) / window);
    }
    return LN_OK;
}

int ln_ref_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx)
{
    (void)ctx;
    (void)y;
    int64_t planes = (int64_t)s->n * s->c, in_size = (int64_t)s->h * s->w;
    float window = (float)s->kernel_h * (float)s->kernel_w;
    memset(dx, 0, sizeof(float) * (size_t)(planes * in_size));
    for (int64_t i = 0; i < planes; i++) {
        const float *plane = x + i * in_size, *g = dy + i * s->p * s->q;
        float *d = dx + i * in_size;
        for (int p = 0; p < s->p; p++)
            for (int q = 0; q < s->q; q++) {
                float grad = g[p * s->q + q];
                if (mode == LN_POOL_MAX) {
                    d[max_pool_argmax(s, plane, p, q)] += grad;
                    continue;
                }
                for (int r = 0; r < s->kernel_h; r++)
                    for (int t = 0; t < s->kernel_w; t++) {
                        int h = p * s->stride_h - s->pad_h + r;
                        int v = q * s->stride_w - s->pad_w + t;
                        if (h >= 0 && h < s->h && v >= 0 && v < s->w)
                            d[(int64_t)h * s->w + v] += grad / window;
                    }
            }
    }
    return LN_OK;
}

/* NaN stays NaN, as torch.relu leaves it. */
int ln_ref_relu_forward(void *ctx, int64_t n, const float *x, float *y)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
    return LN_OK;
}

int ln_ref_relu_backward(void *ctx, int64_t n, const float *y, const float *dy, float *dx)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++)
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
    return LN_OK;
}

int ln_ref_bias_add(void *ctx, int64_t outer, int64_t channels, int64_t inner, float *y,
                    const float *bias)
{
    (void)ctx;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t c = 0; c < channels; c++)
            for (int64_t i = 0; i < inner; i++)
                y[(o * channels + c) * inner + i] += bias[c];
    return LN_OK;
}

int ln_ref_bias_backward(void *ctx, int64_t outer, int64_t channels, int64_t inner,
                         const float *dy, float *db, int accumulate)
{
    (void)ctx;
    for (int64_t c = 0; c < channels; c++) {
        double acc = 0;
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++)
                acc += dy[(o * channels + c) * inner + i];
        db[c] = (float)(acc + (accumulate ? db[c] : 0.0));
    }
    return LN_OK;
}

/* Element i is kept when its uniform draw u (rand_uniform's i-th number for
 * this seed and offset) satisfies u < 1 - p: kept with probability 1 - p. */
int ln_ref_dropout_forward(void *ctx, int64_t n, float p, const float *x, float *y,
                           float *mask, uint64_t seed, uint64_t offset)
{
    (void)ctx;
    float keep = 1.0f - p, scale = p < 1.0f ? 1.0f / keep : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        mask[i] = ln_philox_uniform(seed, offset, (uint64_t)i) < keep ? scale : 0.0f;
        y[i] = x[i] * mask[i];
    }
    return LN_OK;
}

int ln_ref_batchnorm_forward_train(void *ctx, int64_t n, int64_t c, int64_t inner,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *running_mean, float *running_var,
                                   float momentum, float eps, float *save_mean,
                                   float *save_invstd)
{
    (void)ctx;
    int64_t count = n * inner;
    for (int64_t ch = 0; ch < c; ch++) {
        double sum = 0, sq = 0;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++)
                sum += x[(b * c + ch) * inner + i];
        double mean = sum / (double)count;
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++) {
                double d = x[(b * c + ch) * inner + i] - mean;
                sq += d * d;
            }
        double var = sq / (double)count; /* biased: normalises the batch */
        double invstd = 1.0 / sqrt(var + eps);
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (b * c + ch) * inner + i;
                y[at] = (float)((x[at] - mean) * invstd * gamma[ch] + beta[ch]);
            }
        save_mean[ch] = (float)mean;
        save_invstd[ch] = (float)invstd;
        /* the running variance is the unbiased estimate, as in PyTorch */
        double unbiased = count > 1 ? sq / (double)(count - 1) : var;
        running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
        running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
    }
    return LN_OK;
}

int ln_ref_batchnorm_forward_eval(void *ctx, int64_t n, int64_t c, int64_t inner,
                                  const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var,
                                  float eps, float *y)
{
    (void)ctx;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (b * c + ch) * inner + i;
                y[at] = (float)((x[at] - running_mean[ch]) * invstd * gamma[ch] + beta[ch]);
            }
        }
    return LN_OK;
}

/* With xhat = (x - mean) * invstd and m = n * inner values per channel:
 *   dbeta = sum dy, dgamma = sum dy * xhat,
 *   dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma). */
int ln_ref_batchnorm_backward(void *ctx, int64_t n, int64_t c, int64_t inner,
                              const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta, int accumulate)
{
    (void)ctx;
    double m = (double)(n * inner);
    for (int64_t ch = 0; ch < c; ch++) {
        double sum_dy = 0, sum_dy_xhat = 0, mean = save_mean[ch], invstd = save_invstd[ch];
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (b * c + ch) * inner + i;
                sum_dy += dy[at];
                sum_dy_xhat += dy[at] * (x[at] - mean) * invstd;
            }
        for (int64_t b = 0; b < n; b++)
            for (int64_t i = 0; i < inner; i++) {
                int64_t at = (b * c + ch) * inner + i;
                double xhat = (x[at] - mean) * invstd;
                dx[at] = (float)(gamma[ch] * invstd / m
                                 * (m * dy[at] - sum_dy - xhat * sum_dy_xhat));
            }
        dgamma[ch] = (float)(sum_dy_xhat + (accumulate ? dgamma[ch] : 0.0));
        dbeta[ch] = (float)(sum_dy + (accumulate ? dbeta[ch] : 0.0));
    }
    return LN_OK;
}

int ln_ref_cross_entropy_forward(void *ctx, int64_t n, int64_t classes,
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
        total += ln_f_log_sum_exp(row, classes) - row[labels[i] - 1];
    }
    *loss_host = total / (double)n;
    return LN_OK;
}

/* The one-hot term is a comparison, so a bad label is never used as an index. */
int ln_ref_cross_entropy_backward(void *ctx, int64_t n, int64_t classes,
                                  const float *logits, const int32_t *labels, float scale,
                                  float *dlogits)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits + i * classes;
        double lse = ln_f_log_sum_exp(row, classes);
        for (int64_t j = 0; j < classes; j++) {
            double onehot = labels[i] == j + 1 ? 1.0 : 0.0;
            dlogits[i * classes + j] = (float)(scale * (exp(row[j] - lse) - onehot));
        }
    }
    return LN_OK;
}

/* --- optimizers --------------------------------------------------------------
 * PyTorch 1.13's single-tensor updates, operation for operation in float32,
 * so the same gradients give the same parameters to rounding. */

int ln_ref_sgd_step(void *ctx, const ln_sgd_params *p, int64_t n, float *param,
                    const float *grad, float *momentum_buffer)
{
    (void)ctx;
    for (int64_t i = 0; i < n; i++) {
        float d = grad[i];
        if (p->weight_decay != 0.0f)
            d = d + p->weight_decay * param[i];
        if (p->momentum != 0.0f) {
            float *buf = &momentum_buffer[i];
            *buf = p->first_step ? d : *buf * p->momentum + (1.0f - p->dampening) * d;
            d = p->nesterov ? d + p->momentum * *buf : *buf;
        }
        param[i] = param[i] + -p->lr * d;
    }
    return LN_OK;
}

int ln_ref_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                     const float *grad, float *exp_avg, float *exp_avg_sq)
{
    (void)ctx;
    ln_adam_coeffs c = ln_adam_coefficients(p);
    for (int64_t i = 0; i < n; i++)
        ln_f_adam(&c, &param[i], grad[i], &exp_avg[i], &exp_avg_sq[i]);
    return LN_OK;
}

/* --- the device ------------------------------------------------------------ */

static int ref_device_count(int *count, char *reason, size_t len)
{
    (void)reason;
    (void)len;
    *count = 1;
    return LN_OK;
}

static int ref_open(int index, void **ctx)
{
    (void)index;
    static int token;
    *ctx = &token; /* stateless: any non-NULL context marks it open */
    return LN_OK;
}

static void ref_close(void *ctx)
{
    (void)ctx;
}

static int ref_info(void *ctx, ln_device_info *out)
{
    (void)ctx;
    memset(out, 0, sizeof *out);
    ln_host_cpu_name(out->name, sizeof out->name);
    out->cores = ln_host_cpu_cores();
    out->threads = 1;
    strcpy(out->blas, "none (reference loops)");
    return LN_OK;
}

const ln_backend ln_ref_backend = {
    .abi = LN_BACKEND_ABI,
    .name = "ref",
    .device_count = ref_device_count,
    .open = ref_open,
    .close = ref_close,
    .info = ref_info,
    .alloc = ln_host_alloc,
    .free = ln_host_free,
    .upload = ln_host_upload,
    .download = ln_host_download,
    .copy = ln_ref_copy,
    .fill = ln_ref_fill,
    .binary = ln_ref_binary,
    .binary_scalar = ln_ref_binary_scalar,
    .reduce = ln_ref_reduce,
    .argmax = ln_ref_argmax,
    .unary = ln_ref_unary,
    .unary_backward = ln_ref_unary_backward,
    .softmax = ln_ref_softmax,
    .softmax_backward = ln_ref_softmax_backward,
    .reduce_dim = ln_ref_reduce_dim,
    .gemm = ln_ref_gemm,
    .rand_uniform = ln_ref_rand_uniform,
    .rand_normal = ln_ref_rand_normal,
    .gather_rows = ln_ref_gather_rows,
    .conv2d_forward = ln_ref_conv2d_forward,
    .conv2d_backward_data = ln_ref_conv2d_backward_data,
    .conv2d_backward_filter = ln_ref_conv2d_backward_filter,
    .pool2d_forward = ln_ref_pool2d_forward,
    .pool2d_backward = ln_ref_pool2d_backward,
    .relu_forward = ln_ref_relu_forward,
    .relu_backward = ln_ref_relu_backward,
    .bias_add = ln_ref_bias_add,
    .bias_backward = ln_ref_bias_backward,
    .dropout_forward = ln_ref_dropout_forward,
    .batchnorm_forward_train = ln_ref_batchnorm_forward_train,
    .batchnorm_forward_eval = ln_ref_batchnorm_forward_eval,
    .batchnorm_backward = ln_ref_batchnorm_backward,
    .cross_entropy_forward = ln_ref_cross_entropy_forward,
    .cross_entropy_backward = ln_ref_cross_entropy_backward,
    .sgd_step = ln_ref_sgd_step,
    .adam_step = ln_ref_adam_step,
    .conv2d_relu_maxpool2x2_forward = ln_ref_conv2d_relu_maxpool2x2_forward,
    .conv2d_relu_maxpool2x2_backward = ln_ref_conv2d_relu_maxpool2x2_backward,
};
