/* Runtime choice of the CPU kernels' instruction-set level.
 *
 * The leveled files are compiled once per level (cpu.h, CMakeLists.txt), so a
 * binary built on an AVX-512 machine still runs on one with AVX2 only, or
 * none: when the device opens, the best level this CPU runs is taken (cpuid,
 * through GCC's __builtin_cpu_supports, which also checks that the OS saves
 * the wide registers), unless $LUNET_CPU_LEVEL names one (portable, avx2,
 * avx512, avx512bf16; "auto" is the default). The backend's slots below
 * forward to the chosen level's table. */
#include <stdio.h>
#include <string.h>

#include "../status.h"
#include "cpu.h"

#ifdef LN_CPU_HAVE_PORTABLE
extern const ln_cpu_kernels ln_cpu_level_kernels_portable;
#endif
#ifdef LN_CPU_HAVE_AVX2
extern const ln_cpu_kernels ln_cpu_level_kernels_avx2;
#endif
#ifdef LN_CPU_HAVE_AVX512
extern const ln_cpu_kernels ln_cpu_level_kernels_avx512;
#endif
#ifdef LN_CPU_HAVE_AVX512BF16
extern const ln_cpu_kernels ln_cpu_level_kernels_avx512bf16;
#endif

const ln_cpu_kernels *const ln_cpu_levels[] = {
#ifdef LN_CPU_HAVE_PORTABLE
    &ln_cpu_level_kernels_portable,
#endif
#ifdef LN_CPU_HAVE_AVX2
    &ln_cpu_level_kernels_avx2,
#endif
#ifdef LN_CPU_HAVE_AVX512
    &ln_cpu_level_kernels_avx512,
#endif
#ifdef LN_CPU_HAVE_AVX512BF16
    &ln_cpu_level_kernels_avx512bf16,
#endif
    NULL,
};

int ln_cpu_level_supported(const ln_cpu_kernels *k)
{
    if (strcmp(k->name, "portable") == 0)
        return 1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                 && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    if (strcmp(k->name, "avx2") == 0)
        return avx2;
    if (strcmp(k->name, "avx512") == 0)
        return avx512;
    if (strcmp(k->name, "avx512bf16") == 0)
        return avx512 && __builtin_cpu_supports("avx512bf16");
#endif
    return 0;
}

int ln_cpu_select_level(ln_cpu_context *ctx, const char *name)
{
    const ln_cpu_kernels *best = NULL;
    int known = 0;
    for (int i = 0; ln_cpu_levels[i]; i++) {
        const ln_cpu_kernels *k = ln_cpu_levels[i];
        if (!name || strcmp(name, "") == 0 || strcmp(name, "auto") == 0) {
            if (ln_cpu_level_supported(k))
                best = k;
            continue;
        }
        if (strcmp(name, k->name) != 0)
            continue;
        known = 1;
        if (!ln_cpu_level_supported(k))
            return ln_error(LN_EINVAL, "cpu kernel level '%s': this CPU lacks its instructions",
                            name);
        best = k;
    }
    if (!best) {
        char list[128] = "";
        for (int i = 0; ln_cpu_levels[i]; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     ln_cpu_levels[i]->name);
        return ln_error(LN_EINVAL, "cpu kernel level '%s': %s (this build has: %s, or auto)",
                        name ? name : "auto", known ? "not available" : "unknown", list);
    }
    ctx->kernels = best;
    return LN_OK;
}

/* The backend's slots (backend_cpu.c): the chosen level's kernels. */
#define KERNELS(ctx) (((ln_cpu_context *)(ctx))->kernels)

int ln_cpu_conv2d_forward(void *ctx, const ln_conv2d_shape *s, const float *x, const float *w,
                          const float *bias, float *y)
{
    return KERNELS(ctx)->conv2d_forward(ctx, s, x, w, bias, y);
}

int ln_cpu_conv2d_backward_data(void *ctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx)
{
    return KERNELS(ctx)->conv2d_backward_data(ctx, s, dy, w, dx);
}

int ln_cpu_conv2d_backward_filter(void *ctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate)
{
    return KERNELS(ctx)->conv2d_backward_filter(ctx, s, x, dy, dw, db, accumulate);
}

int ln_cpu_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y)
{
    return KERNELS(ctx)->pool2d_forward(ctx, mode, s, x, y);
}

int ln_cpu_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx)
{
    return KERNELS(ctx)->pool2d_backward(ctx, mode, s, x, y, dy, dx);
}

int ln_cpu_conv2d_relu_maxpool2x2_forward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                          const float *w, const float *bias, float *y,
                                          uint8_t *winner)
{
    return KERNELS(ctx)->conv2d_relu_maxpool2x2_forward(ctx, s, x, w, bias, y, winner);
}

int ln_cpu_conv2d_relu_maxpool2x2_backward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                           const float *w, const float *dy,
                                           const uint8_t *winner, float *dx, float *dw,
                                           float *db, int accumulate)
{
    return KERNELS(ctx)->conv2d_relu_maxpool2x2_backward(ctx, s, x, w, dy, winner, dx, dw, db,
                                                          accumulate);
}
