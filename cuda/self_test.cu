/* lunet.cuda.self_test(): checks of the module's own host-side logic that
 * run without a GPU, so that a machine with the toolkit but no device still
 * tests what it can:
 *  - the dtype conversions the kernels use, compiled for the host, against
 *    the core's (csrc/dtype.c, compiled into this module for the purpose):
 *    every float16 and bfloat16 value, a dense sweep of float32 bit
 *    patterns, and every dtype's load and store of awkward doubles;
 *  - the caching allocator's size classes;
 *  - the messages of the CUDA, cuBLAS and cuDNN checks. */
#include <stdio.h>
#include <string.h>

/* the core's conversions (C), compiled into this module: first, so that the
 * include guard does not leave them with C++ linkage */
extern "C" {
#include "dtype.h"
}

#include "kernels.cuh"

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
    check_size_classes(r);
    check_messages(r, samples, samples_len);
    *checks = r.checks;
    return r.failures;
}
