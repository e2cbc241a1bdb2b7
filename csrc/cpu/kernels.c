/* The kernel table of one instruction-set level: this file is compiled once
 * per level (see cpu.h), and each copy names that level's conv.c, pool.c,
 * winograd.c and small_gemm.c functions. */
#include "cpu.h"

#ifndef LN_CPU_LEVEL
#error "kernels.c is compiled once per level, with LN_CPU_LEVEL set (CMakeLists.txt)"
#endif

#define LN_CPU_STR2(x) #x
#define LN_CPU_STR(x) LN_CPU_STR2(x)

const ln_cpu_kernels ln_cpu_level_kernels = {
    .name = LN_CPU_STR(LN_CPU_LEVEL),
    .conv2d_forward = ln_cpu_conv2d_forward,
    .conv2d_backward_data = ln_cpu_conv2d_backward_data,
    .conv2d_backward_filter = ln_cpu_conv2d_backward_filter,
    .pool2d_forward = ln_cpu_pool2d_forward,
    .pool2d_backward = ln_cpu_pool2d_backward,
    .conv2d_relu_maxpool2x2_forward = ln_cpu_conv2d_relu_maxpool2x2_forward,
    .conv2d_relu_maxpool2x2_backward = ln_cpu_conv2d_relu_maxpool2x2_backward,
#ifdef LN_CPU_AVX512BF16
    .gemm_bf16 = ln_cpu_gemm_bf16,
#endif
#ifdef LN_CPU_AVX512
    .gemm_f32 = ln_cpu_gemm_f32,
#endif
};
