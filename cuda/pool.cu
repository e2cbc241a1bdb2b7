/* Max and average pooling over NCHW planes, as the reference computes them.
 *
 * Forward: one thread per output. Backward: one thread per input element,
 * gathering from the windows that contain it, in the order the reference
 * scatters them (window row, then column): no atomics, the same sums to the
 * bit, and every element of dx written (zero where no window reaches). */
#include <math.h>

#include "kernels.cuh"

/* Plane-relative position of the first maximum of window (p, q), NaN
 * counting as the maximum; -1 when the window holds no element. */
__device__ int64_t max_pool_argmax(const ln_pool2d_shape s, const float *plane, int p, int q)
{
    int64_t best = -1;
    float best_v = 0;
    for (int r = 0; r < s.kernel_h; r++)
        for (int t = 0; t < s.kernel_w; t++) {
            int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
            if (h < 0 || h >= s.h || v < 0 || v >= s.w)
                continue;
            float x = plane[(int64_t)h * s.w + v];
            if (best < 0 || x > best_v || (x != x && best_v == best_v)) {
                best = (int64_t)h * s.w + v;
                best_v = x;
            }
        }
    return best;
}

__global__ void pool_forward_kernel(ln_pool_mode mode, const ln_pool2d_shape s,
                                    const float *x, float *y, int64_t total)
{
    int64_t out_size = (int64_t)s.p * s.q, in_size = (int64_t)s.h * s.w;
    LN_GRID_STRIDE(i, total)
    {
        int64_t plane = i / out_size, at = i % out_size;
        int p = (int)(at / s.q), q = (int)(at % s.q);
        const float *in = x + plane * in_size;
        if (mode == LN_POOL_MAX) {
            int64_t best = max_pool_argmax(s, in, p, q);
            y[i] = best >= 0 ? in[best] : -INFINITY;
        } else {
            double acc = 0;
            for (int r = 0; r < s.kernel_h; r++)
                for (int t = 0; t < s.kernel_w; t++) {
                    int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                    if (h >= 0 && h < s.h && v >= 0 && v < s.w)
                        acc += in[(int64_t)h * s.w + v];
                }
            y[i] = (float)(acc / ((double)s.kernel_h * s.kernel_w));
        }
    }
}

/* First and last output index whose window covers input index `at`. */
__device__ __forceinline__ void windows_covering(int at, int pad, int kernel, int stride,
                                                 int outputs, int *first, int *last)
{
    int low = at + pad - kernel + 1; /* smallest window start that still covers */
    *first = low <= 0 ? 0 : (low + stride - 1) / stride;
    int high = (at + pad) / stride;
    *last = high < outputs - 1 ? high : outputs - 1;
}

__global__ void pool_backward_kernel(ln_pool_mode mode, const ln_pool2d_shape s,
                                     const float *x, const float *dy, float *dx, int64_t total)
{
    int64_t out_size = (int64_t)s.p * s.q, in_size = (int64_t)s.h * s.w;
    float window = (float)s.kernel_h * (float)s.kernel_w;
    LN_GRID_STRIDE(i, total)
    {
        int64_t plane = i / in_size, at = i % in_size;
        int h = (int)(at / s.w), v = (int)(at % s.w);
        const float *in = x + plane * in_size, *g = dy + plane * out_size;
        int p0, p1, q0, q1;
        windows_covering(h, s.pad_h, s.kernel_h, s.stride_h, s.p, &p0, &p1);
        windows_covering(v, s.pad_w, s.kernel_w, s.stride_w, s.q, &q0, &q1);
        float acc = 0.0f;
        for (int p = p0; p <= p1; p++)
            for (int q = q0; q <= q1; q++) {
                float grad = g[(int64_t)p * s.q + q];
                if (mode == LN_POOL_MAX) {
                    if (max_pool_argmax(s, in, p, q) == at)
                        acc += grad;
                } else {
                    acc += grad / window;
                }
            }
        dx[i] = acc;
    }
}

extern "C" int ln_cuda_pool2d_forward(void *vctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                                      const float *x, float *y)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = (int64_t)s->n * s->c * s->p * s->q;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    pool_forward_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(mode, *s, x, y,
                                                                          total);
    LN_CUDA_CHECK_LAUNCH("pool_forward_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_pool2d_backward(void *vctx, ln_pool_mode mode,
                                       const ln_pool2d_shape *s, const float *x,
                                       const float *y, const float *dy, float *dx)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    (void)y; /* the winners are recomputed from x, as the reference does */
    int64_t total = (int64_t)s->n * s->c * s->h * s->w;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    pool_backward_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(mode, *s, x, dy,
                                                                           dx, total);
    LN_CUDA_CHECK_LAUNCH("pool_backward_kernel");
    return LN_OK;
}
