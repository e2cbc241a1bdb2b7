/* Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3").
 *
 * Counter-based: the i-th number depends only on (seed, counter), so the CPU and
 * CUDA backends draw exactly the same values for the same generator state, and
 * each GPU thread computes its own numbers with no shared state. Header-only so
 * that C and CUDA compile the very same code. */
#ifndef LUNET_PHILOX_H
#define LUNET_PHILOX_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define LN_HOSTDEV __host__ __device__ __forceinline__
#else
#define LN_HOSTDEV static inline
#endif

typedef struct ln_philox4 {
    uint32_t v[4];
} ln_philox4;

LN_HOSTDEV uint32_t ln_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* Four 32-bit random words for `counter` under `seed`. */
LN_HOSTDEV ln_philox4 ln_philox(uint64_t seed, uint64_t counter)
{
    uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = ln_mulhilo32(0xD2511F53u, c0, &hi0);
        uint32_t lo1 = ln_mulhilo32(0xCD9E8D57u, c2, &hi1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    ln_philox4 r;
    r.v[0] = c0; r.v[1] = c1; r.v[2] = c2; r.v[3] = c3;
    return r;
}

/* Uniform in [0, 1) with 24 random bits: exactly representable in float32. */
LN_HOSTDEV float ln_uint_to_unit(uint32_t x)
{
    return (float)(x >> 8) * (1.0f / 16777216.0f);
}

/* Element i of a uniform draw of n at `offset` (counter offset + i/4). */
LN_HOSTDEV float ln_philox_uniform(uint64_t seed, uint64_t offset, uint64_t i)
{
    ln_philox4 r = ln_philox(seed, offset + i / 4);
    return ln_uint_to_unit(r.v[i % 4]);
}

/* Element i of a standard normal draw: Box-Muller on the pair of words
 * (0,1) or (2,3) of the counter, cosine for even lanes and sine for odd. */
LN_HOSTDEV float ln_philox_normal(uint64_t seed, uint64_t offset, uint64_t i)
{
    ln_philox4 r = ln_philox(seed, offset + i / 4);
    unsigned lane = (unsigned)(i % 4), pair = lane & 2u;
    /* u1 in (0, 1] so the logarithm is finite */
    float u1 = ((float)(r.v[pair] >> 8) + 1.0f) * (1.0f / 16777216.0f);
    float u2 = ln_uint_to_unit(r.v[pair + 1]);
    float radius = sqrtf(-2.0f * logf(u1));
    float angle = 6.283185307179586f * u2;
    return (lane & 1u) ? radius * sinf(angle) : radius * cosf(angle);
}

/* Counters a draw of n numbers consumes. */
LN_HOSTDEV uint64_t ln_philox_counters(uint64_t n)
{
    return (n + 3) / 4;
}

#endif
