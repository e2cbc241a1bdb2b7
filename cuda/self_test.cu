/* lunet.cuda.self_test(): checks of the module's own host-side logic that
 * run without a GPU, so that a machine with the toolkit but no device still
 * tests what it can:
 *  - the dtype conversions the kernels use, compiled for the host, against
 *    the core's (csrc/dtype.c, compiled into this module for the purpose):
 *    every float16 and bfloat16 value, a dense sweep of float32 bit
 *    patterns, and every dtype's load and store of awkward doubles;
 *  - the per-element index math of the kernels, run on the host: strided
 *    offsets against a plain multi-index walk, the gather-style pooling
 *    backward against the reference's scatter (to the bit) on hundreds of
 *    geometries, and argmax's tree reduction against the reference's scan;
 *  - the caching allocator's size classes;
 *  - the messages of the CUDA, cuBLAS and cuDNN checks. */
#include <stdio.h>
#include <string.h>

/* the core's conversions (C), compiled into this module */
#include "dtype.h"
#include "kernels.cuh"
#include "pool.cuh"

namespace {

struct results {
    char *report;
    size_t len, used;
    long checks;
    int failures;
};

void check(results &r, bool ok, const char *what, double detail)
{
    r.checks++;
    if (ok)
        return;
    if (r.failures++ < 8 && r.used < r.len) {
        int n = snprintf(r.report + r.used, r.len - r.used, "%s (%.9g); ", what, detail);
        if (n > 0)
            r.used += (size_t)n;
    }
}

bool same_bits(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

void check_conversions(results &r)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float a = ln_dev_half_to_float((uint16_t)h), b = ln_half_to_float((uint16_t)h);
        check(r, ln_float_bits(a) == ln_float_bits(b), "float16 -> float32 differs", h);
        a = ln_dev_bfloat16_to_float((uint16_t)h);
        b = ln_bfloat16_to_float((uint16_t)h);
        check(r, ln_float_bits(a) == ln_float_bits(b), "bfloat16 -> float32 differs", h);
    }
    /* every 4093rd float32 bit pattern (about a million: all exponents, signs,
     * NaN payloads), and each float16 value's rounding neighbourhood */
    for (uint64_t bits = 0; bits <= 0xffffffffull; bits += 4093) {
        float f = ln_bits_float((uint32_t)bits);
        check(r, ln_dev_float_to_half(f) == ln_float_to_half(f), "float32 -> float16 differs",
              (double)bits);
        check(r, ln_dev_float_to_bfloat16(f) == ln_float_to_bfloat16(f),
              "float32 -> bfloat16 differs", (double)bits);
    }
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t center = ln_float_bits(ln_half_to_float((uint16_t)h));
        for (int d = -2; d <= 2; d++) {
            uint32_t half_way = center + (1u << 12) + (uint32_t)d; /* around the midpoint */
            float f = ln_bits_float(half_way);
            check(r, ln_dev_float_to_half(f) == ln_float_to_half(f),
                  "float32 -> float16 rounding differs", (double)half_way);
        }
    }
    const double values[] = {0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 1.5, 2.5, 254.5, 255.0, 255.5,
                             256.0, -1e10, 1e10, 2147483647.0, 2147483648.0, -2147483649.0,
                             65504.0, 65520.0, 1e-8, 3.4e38, 1e39, -1e39, 1.0 / 3.0,
                             INFINITY, -INFINITY, NAN};
    for (int dt = 0; dt < LN_DTYPE_COUNT; dt++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            unsigned char a[8] = {0}, b[8] = {0};
            ln_dev_store(a, (ln_dtype)dt, 0, values[i]);
            ln_store_from_double(b, (ln_dtype)dt, 0, values[i]);
            check(r, memcmp(a, b, ln_dtype_size((ln_dtype)dt)) == 0, "store differs", values[i]);
            double x = ln_dev_load(a, (ln_dtype)dt, 0), y = ln_load_as_double(b, (ln_dtype)dt, 0);
            check(r, same_bits(x, y), "load differs", values[i]);
        }
    }
}

/* A small deterministic generator for the geometry sweeps. */
struct lcg {
    uint64_t state;
    uint32_t next()
    {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        return (uint32_t)(state >> 33);
    }
    int below(int n) { return (int)(next() % (uint32_t)n); }
};

void check_strided_offsets(results &r)
{
    lcg g = {1};
    for (int trial = 0; trial < 2000; trial++) {
        ln_strided s;
        memset(&s, 0, sizeof s);
        s.ndim = g.below(LN_MAX_DIMS + 1);
        int64_t n = 1;
        for (int d = 0; d < s.ndim; d++) {
            s.shape[d] = 1 + g.below(4);
            s.stride[d] = g.below(50);
            n *= s.shape[d];
        }
        int64_t index[LN_MAX_DIMS] = {0};
        for (int64_t linear = 0; linear < n; linear++) {
            int64_t expected = 0;
            for (int d = 0; d < s.ndim; d++)
                expected += index[d] * s.stride[d];
            check(r, ln_strided_offset(s, linear) == expected, "strided offset differs",
                  (double)trial);
            for (int d = s.ndim - 1; d >= 0; d--) { /* the reference's walk */
                if (++index[d] < s.shape[d])
                    break;
                index[d] = 0;
            }
        }
    }
}

/* The reference's pooling backward (csrc/ops_ref.c): scatter each window's
 * gradient, windows in row-major order. */
void scatter_pool_backward(ln_pool_mode mode, const ln_pool2d_shape &s, const float *x,
                           const float *dy, float *dx)
{
    int64_t planes = (int64_t)s.n * s.c, in_size = (int64_t)s.h * s.w;
    float window = (float)s.kernel_h * (float)s.kernel_w;
    memset(dx, 0, sizeof(float) * (size_t)(planes * in_size));
    for (int64_t i = 0; i < planes; i++) {
        const float *plane = x + i * in_size, *g = dy + i * s.p * s.q;
        float *d = dx + i * in_size;
        for (int p = 0; p < s.p; p++)
            for (int q = 0; q < s.q; q++) {
                float grad = g[p * s.q + q];
                if (mode == LN_POOL_MAX) {
                    d[ln_max_pool_argmax(s, plane, p, q)] += grad;
                    continue;
                }
                for (int rr = 0; rr < s.kernel_h; rr++)
                    for (int t = 0; t < s.kernel_w; t++) {
                        int h = p * s.stride_h - s.pad_h + rr, v = q * s.stride_w - s.pad_w + t;
                        if (h >= 0 && h < s.h && v >= 0 && v < s.w)
                            d[(int64_t)h * s.w + v] += grad / window;
                    }
            }
    }
}

void check_pooling(results &r)
{
    enum { MAX_ELEMS = 2 * 3 * 12 * 12 };
    float x[MAX_ELEMS], dy[MAX_ELEMS], dx[MAX_ELEMS];
    lcg g = {7};
    for (int trial = 0; trial < 600; trial++) {
        ln_pool2d_shape s;
        memset(&s, 0, sizeof s);
        s.n = 1 + g.below(2);
        s.c = 1 + g.below(3);
        s.kernel_h = 1 + g.below(4);
        s.kernel_w = 1 + g.below(4);
        s.stride_h = 1 + g.below(3);
        s.stride_w = 1 + g.below(3);
        s.pad_h = g.below(s.kernel_h / 2 + 1);
        s.pad_w = g.below(s.kernel_w / 2 + 1);
        s.h = s.kernel_h + g.below(9);
        s.w = s.kernel_w + g.below(9);
        s.p = (s.h + 2 * s.pad_h - s.kernel_h) / s.stride_h + 1;
        s.q = (s.w + 2 * s.pad_w - s.kernel_w) / s.stride_w + 1;
        int64_t in_count = (int64_t)s.n * s.c * s.h * s.w, out_count = (int64_t)s.n * s.c * s.p * s.q;
        for (int64_t i = 0; i < in_count; i++) /* few distinct values: many ties */
            x[i] = (float)g.below(4) - 1.5f;
        if (trial % 5 == 0)
            x[g.below((int)in_count)] = NAN;
        for (int64_t i = 0; i < out_count; i++)
            dy[i] = (float)(g.below(2001) - 1000) / 997.0f;
        for (int mode = 0; mode < 2; mode++) {
            ln_pool_mode m = mode ? LN_POOL_AVG : LN_POOL_MAX;
            scatter_pool_backward(m, s, x, dy, dx);
            for (int64_t i = 0; i < in_count; i++) {
                float mine = ln_pool_backward_at(m, s, x, dy, i);
                check(r, ln_float_bits(mine) == ln_float_bits(dx[i]),
                      mode ? "avg pool backward differs" : "max pool backward differs",
                      (double)trial);
            }
            if (trial % 5 == 0)
                continue; /* NaN: the backward above covers its routing */
            for (int64_t i = 0; i < out_count; i++) { /* forward: max and mean of the window */
                int64_t plane = i / ((int64_t)s.p * s.q), at = i % ((int64_t)s.p * s.q);
                int p = (int)(at / s.q), q = (int)(at % s.q);
                float top = -INFINITY;
                double sum = 0;
                for (int h = p * s.stride_h - s.pad_h; h < p * s.stride_h - s.pad_h + s.kernel_h; h++)
                    for (int v = q * s.stride_w - s.pad_w; v < q * s.stride_w - s.pad_w + s.kernel_w; v++)
                        if (h >= 0 && h < s.h && v >= 0 && v < s.w) {
                            float e = x[plane * s.h * s.w + (int64_t)h * s.w + v];
                            top = e > top ? e : top;
                            sum += e;
                        }
                float expected = m == LN_POOL_MAX ? top : (float)(sum / (s.kernel_h * s.kernel_w));
                check(r, ln_float_bits(ln_pool_forward_at(m, s, x, i)) == ln_float_bits(expected),
                      mode ? "avg pool forward differs" : "max pool forward differs", (double)trial);
            }
        }
    }
}

void check_argmax_reduction(results &r)
{
    enum { THREADS = 256, MAX_LEN = 3000 };
    static double row[MAX_LEN];
    ln_arg_best partial[THREADS];
    lcg g = {11};
    for (int trial = 0; trial < 300; trial++) {
        int len = 1 + g.below(MAX_LEN);
        for (int d = 0; d < len; d++)
            row[d] = g.below(5) == 0 ? -INFINITY : (double)g.below(6);
        if (trial % 3 == 0)
            row[g.below(len)] = NAN;
        if (trial % 6 == 0)
            row[g.below(len)] = NAN;
        /* the reference's scan */
        int64_t best = 0;
        double best_v = row[0];
        for (int d = 1; d < len && best_v == best_v; d++)
            if (row[d] > best_v || row[d] != row[d]) {
                best = d;
                best_v = row[d];
            }
        /* the long-row kernel: strided per-thread scans, then a tree */
        for (int t = 0; t < THREADS; t++) {
            ln_arg_best acc = {-INFINITY, INT64_MAX};
            for (int d = t; d < len; d += THREADS) {
                ln_arg_best here = {row[d], d};
                acc = ln_better_of(acc, here);
            }
            partial[t] = acc;
        }
        for (int half = THREADS / 2; half > 0; half /= 2)
            for (int t = 0; t < half; t++)
                partial[t] = ln_better_of(partial[t], partial[t + half]);
        check(r, partial[0].index == best, "argmax reduction differs from the scan", trial);
    }
}

void check_size_classes(results &r)
{
    size_t previous = 0;
    for (size_t n = 1; n < ((size_t)1 << 34); n += n / 7 + 1) {
        size_t c = ln_cuda_size_class(n);
        check(r, c >= n, "size class smaller than the request", (double)n);
        check(r, c % 512 == 0, "size class not a multiple of 512", (double)n);
        check(r, c <= n + n / 4 + 512, "size class wastes over 25%", (double)n);
        check(r, c >= previous, "size classes not monotonic", (double)n);
        check(r, ln_cuda_size_class(c) == c, "a size class is not its own class", (double)c);
        previous = c;
    }
}

/* The check macros as the backend uses them, on a call that fails. */
cudnnStatus_t refusing_call(int argument)
{
    return argument ? CUDNN_STATUS_BAD_PARAM : CUDNN_STATUS_SUCCESS;
}

int failing_cudnn_call(void)
{
    LN_CUDNN_CHECK(refusing_call(0));
    LN_CUDNN_CHECK(refusing_call(1));
    return LN_OK;
}

void check_messages(results &r, char *samples, size_t len)
{
    char one[512];
    size_t used = 0;
    int st = ln_cuda_fail_cuda(cudaErrorMemoryAllocation, "ln_cuda_alloc",
                               "cudaMalloc(&p, size)", "/src/lunet/cuda/allocator.c", 137);
    check(r, st == LN_ENOMEM, "out of memory is not LN_ENOMEM", st);
    snprintf(one, sizeof one, "%s", ln_cuda_last_error());
    check(r, strstr(one, "alloc: cudaMalloc: cudaErrorMemoryAllocation") == one
                 && strstr(one, "(cuda/allocator.c:137)"), "CUDA message format", 0);
    used += (size_t)snprintf(samples + used, len - used, "%s\n", one);

    st = ln_cuda_fail_cublas(CUBLAS_STATUS_INVALID_VALUE, "ln_cuda_gemm",
                             "cublasGemmEx(ctx->cublas, ...)", "cuda/gemm.c", 40);
    check(r, st == LN_EDEVICE, "cuBLAS failure is not LN_EDEVICE", st);
    snprintf(one, sizeof one, "%s", ln_cuda_last_error());
    check(r, strcmp(one, "gemm: cublasGemmEx: CUBLAS_STATUS_INVALID_VALUE (cuda/gemm.c:40)") == 0,
          "cuBLAS message format", 0);
    if (used < len)
        used += (size_t)snprintf(samples + used, len - used, "%s\n", one);

    st = ln_cuda_fail_cudnn(CUDNN_STATUS_BAD_PARAM, "ln_cuda_conv2d_forward",
                            "cudnnConvolutionForward(ctx->cudnn, &one, ...)",
                            "/home/x/cuda/conv.c", 88);
    check(r, st == LN_EDEVICE, "cuDNN failure is not LN_EDEVICE", st);
    snprintf(one, sizeof one, "%s", ln_cuda_last_error());
    check(r, strcmp(one, "conv2d_forward: cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM "
                         "(cuda/conv.c:88)") == 0, "cuDNN message format", 0);
    if (used < len)
        used += (size_t)snprintf(samples + used, len - used, "%s\n", one);

    st = failing_cudnn_call();
    snprintf(one, sizeof one, "%s", ln_cuda_last_error());
    check(r, st == LN_EDEVICE
                 && strstr(one, "failing_cudnn_call: refusing_call: CUDNN_STATUS_BAD_PARAM "
                                "(cuda/self_test.cu:") == one,
          "check macro message", 0);
    if (used < len)
        snprintf(samples + used, len - used, "%s\n", one);
}

} // namespace

extern "C" int ln_cuda_self_test(char *report, size_t report_len, long *checks,
                                 char *samples, size_t samples_len)
{
    results r = {report, report_len, 0, 0, 0};
    if (report_len)
        report[0] = '\0';
    if (samples_len)
        samples[0] = '\0';
    check_conversions(r);
    check_strided_offsets(r);
    check_pooling(r);
    check_argmax_reduction(r);
    check_size_classes(r);
    check_messages(r, samples, samples_len);
    *checks = r.checks;
    return r.failures;
}
