/* The per-element math of pooling, for the kernels in pool.cu and, compiled
 * for the host, for self_test.cu (which holds the gather-style backward
 * against the reference's scatter on many geometries, without a GPU). */
#ifndef LUNET_CUDA_POOL_CUH
#define LUNET_CUDA_POOL_CUH

#include "kernels.cuh"

/* Plane-relative position of the first maximum of window (p, q), NaN
 * counting as the maximum (the reference's rule); -1 when the window holds no
 * element. */
LN_HD int64_t ln_max_pool_argmax(const ln_pool2d_shape &s, const float *plane, int p, int q)
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

/* Output element i of [n, c, p, q]. Average pooling divides by the whole
 * window, padding included (PyTorch's count_include_pad). */
LN_HD float ln_pool_forward_at(ln_pool_mode mode, const ln_pool2d_shape &s, const float *x,
                               int64_t i)
{
    int64_t out_size = (int64_t)s.p * s.q, in_size = (int64_t)s.h * s.w;
    int64_t plane = i / out_size, at = i % out_size;
    int p = (int)(at / s.q), q = (int)(at % s.q);
    const float *in = x + plane * in_size;
    if (mode == LN_POOL_MAX) {
        int64_t best = ln_max_pool_argmax(s, in, p, q);
        return best >= 0 ? in[best] : -INFINITY;
    }
    double acc = 0;
    for (int r = 0; r < s.kernel_h; r++)
        for (int t = 0; t < s.kernel_w; t++) {
            int h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
            if (h >= 0 && h < s.h && v >= 0 && v < s.w)
                acc += in[(int64_t)h * s.w + v];
        }
    return (float)(acc / ((double)s.kernel_h * s.kernel_w));
}

/* First and last output index whose window covers input index `at` along one
 * dimension (last < first when none does). */
LN_HD void ln_windows_covering(int at, int pad, int kernel, int stride, int outputs,
                               int *first, int *last)
{
    int low = at + pad - kernel + 1; /* the smallest window start still covering */
    *first = low <= 0 ? 0 : (low + stride - 1) / stride;
    int high = (at + pad) / stride;
    *last = high < outputs - 1 ? high : outputs - 1;
}

/* Input-gradient element i of [n, c, h, w]: gathered from the windows that
 * cover it, in the order the reference scatters them (window row, then
 * column), so the float sums are the reference's to the bit. */
LN_HD float ln_pool_backward_at(ln_pool_mode mode, const ln_pool2d_shape &s, const float *x,
                                const float *dy, int64_t i)
{
    int64_t out_size = (int64_t)s.p * s.q, in_size = (int64_t)s.h * s.w;
    float window = (float)s.kernel_h * (float)s.kernel_w;
    int64_t plane = i / in_size, at = i % in_size;
    int h = (int)(at / s.w), v = (int)(at % s.w);
    const float *in = x + plane * in_size, *g = dy + plane * out_size;
    int p0, p1, q0, q1;
    ln_windows_covering(h, s.pad_h, s.kernel_h, s.stride_h, s.p, &p0, &p1);
    ln_windows_covering(v, s.pad_w, s.kernel_w, s.stride_w, s.q, &q0, &q1);
    float acc = 0.0f;
    for (int p = p0; p <= p1; p++)
        for (int q = q0; q <= q1; q++) {
            float grad = g[(int64_t)p * s.q + q];
            if (mode == LN_POOL_MAX) {
                if (ln_max_pool_argmax(s, in, p, q) == at)
                    acc += grad;
            } else {
                acc += grad / window;
            }
        }
    return acc;
}

#endif
