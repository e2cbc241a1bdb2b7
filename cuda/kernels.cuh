/* What the kernel files share: launch geometry, dtype conversions that match
 * the CPU's (csrc/dtype.c) bit for bit, and a deterministic block reduction.
 * CUDA C++ only. */
#ifndef LUNET_CUDA_KERNELS_CUH
#define LUNET_CUDA_KERNELS_CUH

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "context.h"

#define LN_THREADS 256
/* Grid-stride loops cover any n; more blocks than this only add overhead. */
#define LN_MAX_BLOCKS 65535

/* One block per unit of work, at most `cap` blocks: the kernel's grid-stride
 * loop covers the rest. */
static inline unsigned ln_capped_blocks(int64_t units, int64_t cap)
{
    return (unsigned)(units < cap ? units : cap);
}

/* Blocks for n elements at LN_THREADS per block. Callers return early when
 * n == 0: a launch of zero blocks is an error. */
static inline unsigned ln_blocks(int64_t n)
{
    return ln_capped_blocks((n + LN_THREADS - 1) / LN_THREADS, LN_MAX_BLOCKS);
}

#define LN_GRID_STRIDE(i, n)                                                  \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
         i += (int64_t)blockDim.x * gridDim.x)

/* --- dtype conversions (mirror csrc/dtype.c exactly) ------------------------
 * Host and device: the host build of these very functions is checked against
 * csrc/dtype.c by lunet.cuda.self_test(), which needs no GPU. */
#define LN_HD __host__ __device__ __forceinline__

LN_HD uint32_t ln_float_bits(float f)
{
#ifdef __CUDA_ARCH__
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

LN_HD float ln_bits_float(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

LN_HD uint16_t ln_dev_float_to_half(float f)
{
    uint32_t x = ln_float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0));
    if (mag >= 0x477ff000u)
        return (uint16_t)(sign | 0x7c00u);
    if (mag < 0x38800000u) {
        float a = ln_bits_float(mag);
        uint32_t q = (uint32_t)rintf(a * 16777216.0f); /* rint: round half even */
        return (uint16_t)(sign | q);
    }
    uint32_t mant_odd = (mag >> 13) & 1u;
    mag += 0xc8000fffu + mant_odd;
    return (uint16_t)(sign | (mag >> 13));
}

LN_HD float ln_dev_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f)
        return ln_bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return ln_bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

LN_HD uint16_t ln_dev_float_to_bfloat16(float f)
{
    uint32_t x = ln_float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

LN_HD float ln_dev_bfloat16_to_float(uint16_t b)
{
    return ln_bits_float((uint32_t)b << 16);
}

/* Element i of a buffer of `dtype`, as a double (ln_load_as_double). */
LN_HD double ln_dev_load(const void *data, ln_dtype dtype, int64_t i)
{
    switch (dtype) {
    case LN_FLOAT32: return ((const float *)data)[i];
    case LN_INT32: return ((const int32_t *)data)[i];
    case LN_UINT8: return ((const uint8_t *)data)[i];
    case LN_FLOAT16: return ln_dev_half_to_float(((const uint16_t *)data)[i]);
    case LN_BFLOAT16: return ln_dev_bfloat16_to_float(((const uint16_t *)data)[i]);
    default: return 0;
    }
}

/* Integer stores saturate and NaN becomes 0 (ln_store_from_double). */
LN_HD double ln_dev_clamp(double v, double lo, double hi)
{
    if (v != v)
        return 0;
    return v < lo ? lo : v > hi ? hi : v;
}

LN_HD void ln_dev_store(void *data, ln_dtype dtype, int64_t i, double v)
{
    switch (dtype) {
    case LN_FLOAT32: ((float *)data)[i] = (float)v; break;
    case LN_INT32:
        ((int32_t *)data)[i] = (int32_t)ln_dev_clamp(trunc(v), -2147483648.0, 2147483647.0);
        break;
    case LN_UINT8: ((uint8_t *)data)[i] = (uint8_t)ln_dev_clamp(trunc(v), 0, 255); break;
    case LN_FLOAT16: ((uint16_t *)data)[i] = ln_dev_float_to_half((float)v); break;
    case LN_BFLOAT16: ((uint16_t *)data)[i] = ln_dev_float_to_bfloat16((float)v); break;
    default: break;
    }
}

/* --- indexing -------------------------------------------------------------------- */

/* Offset, in elements, of the element at row-major position `linear` of a
 * strided view (its own shape, so views of different shapes but equal
 * counts pair up in row-major order, as copy requires). */
LN_HD int64_t ln_strided_offset(const ln_strided &s, int64_t linear)
{
    int64_t off = 0;
    for (int d = s.ndim - 1; d >= 0; d--) {
        int64_t size = s.shape[d];
        off += (linear % size) * s.stride[d];
        linear /= size;
    }
    return off;
}

/* --- argmax as a reduction -----------------------------------------------------
 * The reference scans d = 0, 1, ... keeping the first maximum and stopping at
 * the first NaN. As a commutative, associative combination of (value, index)
 * pairs: NaN beats any number, the larger value wins, ties go to the smaller
 * index; so any tree of combinations gives the reference's answer. */
struct ln_arg_best {
    double value;
    int64_t index;
};

LN_HD ln_arg_best ln_better_of(ln_arg_best a, ln_arg_best b)
{
    bool a_nan = a.value != a.value, b_nan = b.value != b.value;
    if (a_nan || b_nan) {
        if (a_nan && b_nan)
            return a.index <= b.index ? a : b;
        return a_nan ? a : b;
    }
    if (a.value != b.value)
        return a.value > b.value ? a : b;
    return a.index <= b.index ? a : b;
}

/* --- reductions ---------------------------------------------------------------
 * A fixed tree over the block's threads: the same inputs always add up in
 * the same order, so results do not change from run to run. Every thread of
 * the block must call it; thread 0 gets the result. */
template <typename T, typename Combine>
__device__ T ln_block_reduce(T v, Combine combine)
{
    __shared__ T shared[LN_THREADS];
    shared[threadIdx.x] = v;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            shared[threadIdx.x] = combine(shared[threadIdx.x], shared[threadIdx.x + half]);
        __syncthreads();
    }
    T result = shared[0];
    __syncthreads(); /* the buffer may be reused by the next call */
    return result;
}

struct ln_add_op {
    __device__ double operator()(double a, double b) const { return a + b; }
};

/* The second pass of a two-pass reduction, launched as one block: combines
 * the first pass's `count` per-block partial results, in a fixed order, into
 * out->value. */
template <typename Combine>
__global__ void ln_reduce_partials_kernel(int count, const double *partials, double identity,
                                          Combine combine, ln_cuda_scalars *out)
{
    double acc = identity;
    for (int i = threadIdx.x; i < count; i += blockDim.x)
        acc = combine(acc, partials[i]);
    acc = ln_block_reduce(acc, combine);
    if (threadIdx.x == 0)
        out->value = acc;
}

#endif
