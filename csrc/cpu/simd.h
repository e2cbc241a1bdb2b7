/* AVX2 helpers shared by the CPU kernels (pool.c, small_gemm.c, winograd.c):
 * lane masks, 8x8 transposes, and the 2x2 max-pooling window rule on eight
 * windows at once (sixteen at the AVX-512 levels).
 * Included only where LN_CPU_AVX2 is defined (cpu.h). */
#ifndef LUNET_CPU_SIMD_H
#define LUNET_CPU_SIMD_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* Lines to fetch into L1 while a product's tiles run, one a step of depth
 * (bf16.c, small_gemm.c): `rows` rows of `lines` cache lines from `row`
 * on, `stride` bytes apart (what the caller reads or writes next). Fetched
 * in one go instead, the prefetches queue up behind each other and the core
 * waits as long as for plain loads; spread over the tiles, the transfer
 * overlaps the multiply-adds. Into L1 (T0): fetched into L2 only (T1),
 * fc1's bf16 forward took 1.03x and its input gradient 1.10x the time
 * (bench/NOTES.md). */
typedef struct ln_fetch_cursor {
    const char *row;
    int64_t stride;
    int line, lines, rows;
} ln_fetch_cursor;

static inline void ln_fetch_step(ln_fetch_cursor *f)
{
    if (f->rows <= 0)
        return;
    _mm_prefetch(f->row + 64 * (int64_t)f->line, _MM_HINT_T0);
    if (++f->line == f->lines) {
        f->line = 0;
        f->row += f->stride;
        f->rows--;
    }
}

/* `rows` rows of `floats` floats from `first`, `ld` floats apart (one line
 * more a row: a row need not start on a line). */
static inline ln_fetch_cursor ln_fetch_rows(const float *first, int64_t ld, int rows, int floats)
{
    return (ln_fetch_cursor){(const char *)first, 4 * ld, 0, (floats * 4 + 63) / 64 + 1, rows};
}

/* `bytes` from `at` in one row (nothing for NULL or no bytes; one line more,
 * as `at` need not start one). */
static inline ln_fetch_cursor ln_fetch_region(const void *at, int64_t bytes)
{
    ln_fetch_cursor f = {0};
    if (at && bytes > 0)
        f = (ln_fetch_cursor){(const char *)at, 0, 0, (int)((bytes + 63) / 64) + 1, 1};
    return f;
}

/* Lanes [0, n) set, for n in 0..8 (fewer or more clamp). */
static inline __m256i ln_lanes(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Stores the first n lanes of v (all of them when n >= 8). Masked stores
 * (vmaskmovps) are slow on AMD's cores: the tail goes through a buffer. */
static inline void ln_store_first(float *dst, __m256 v, int n)
{
    if (n >= 8) {
        _mm256_storeu_ps(dst, v);
        return;
    }
    float part[8];
    _mm256_storeu_ps(part, v);
    for (int i = 0; i < n; i++)
        dst[i] = part[i];
}

/* 8x8 transpose in registers. */
static inline void ln_transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* dst[j * ldd + i] = src[i * lds + j] for i < rows, j < cols, on 32-bit
 * words of any kind (floats, bf16 pairs; strides in words): 8x8 blocks in
 * registers, the edges one by one through memcpy (no aliasing of types);
 * the words move unchanged (shuffles do no arithmetic). */
static inline void ln_transpose_words(const void *src_words, int64_t lds, void *dst_words,
                                      int64_t ldd, int64_t rows, int64_t cols)
{
    const char *src = src_words;
    char *dst = dst_words;
    int64_t i = 0;
    for (; i + 8 <= rows; i += 8) {
        int64_t j = 0;
        for (; j + 8 <= cols; j += 8) {
            __m256 r[8];
            for (int l = 0; l < 8; l++)
                r[l] = _mm256_castsi256_ps(
                    _mm256_loadu_si256((const __m256i *)(src + 4 * ((i + l) * lds + j))));
            ln_transpose8(r);
            for (int l = 0; l < 8; l++)
                _mm256_storeu_si256((__m256i *)(dst + 4 * ((j + l) * ldd + i)), _mm256_castps_si256(r[l]));
        }
        for (; j < cols; j++)
            for (int l = 0; l < 8; l++)
                memcpy(dst + 4 * (j * ldd + i + l), src + 4 * ((i + l) * lds + j), 4);
    }
    for (; i < rows; i++)
        for (int64_t j = 0; j < cols; j++)
            memcpy(dst + 4 * (j * ldd + i), src + 4 * (i * lds + j), 4);
}

/* The same on floats. */
static inline void ln_transpose(const float *src, int64_t lds, float *dst, int64_t ldd,
                                int64_t rows, int64_t cols)
{
    ln_transpose_words(src, lds, dst, ldd, rows, cols);
}

/* Eight windows' candidates c[0..3] (top-left, top-right, bottom-left,
 * bottom-right): the winner of each as a mask per candidate (exactly one set
 * per lane) and the winning value, by the reference's rule: the first
 * maximum in window order, NaN counting as the maximum. */
static inline __m256 ln_window_max(const __m256 c[4], __m256 wins[4])
{
    __m256 best = c[0], taken = _mm256_setzero_ps();
    for (int i = 1; i < 4; i++) {
        __m256 v = c[i];
        __m256 greater = _mm256_cmp_ps(v, best, _CMP_GT_OQ);
        __m256 nan_over_number = _mm256_and_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q),
                                               _mm256_cmp_ps(best, best, _CMP_ORD_Q));
        wins[i] = _mm256_or_ps(greater, nan_over_number);
        best = _mm256_blendv_ps(best, v, wins[i]);
    }
    /* a later winner overrides an earlier one */
    for (int i = 3; i >= 1; i--) {
        wins[i] = _mm256_andnot_ps(taken, wins[i]);
        taken = _mm256_or_ps(taken, wins[i]);
    }
    wins[0] = _mm256_andnot_ps(taken, _mm256_castsi256_ps(_mm256_set1_epi32(-1)));
    return best;
}

/* ReLU then 2x2 max pooling of eight windows (see backend.h's fused block):
 * max(relu(v)) = relu(max(v)), with the same first maximum whenever it is
 * positive, so the raw candidates are compared and ReLU applied to the
 * winner. Returns the pooled values; *codes gets each window's winner
 * 0..3, or 4 where the maximum is not positive (no gradient flows). */
static inline __m256 ln_relu_window_max(const __m256 c[4], __m256i *codes)
{
    __m256 wins[4];
    __m256 best = ln_window_max(c, wins);
    __m256 positive = _mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_GT_OQ);
    __m256i code = _mm256_or_si256(
        _mm256_and_si256(_mm256_castps_si256(wins[1]), _mm256_set1_epi32(1)),
        _mm256_or_si256(_mm256_and_si256(_mm256_castps_si256(wins[2]), _mm256_set1_epi32(2)),
                        _mm256_and_si256(_mm256_castps_si256(wins[3]), _mm256_set1_epi32(3))));
    *codes = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(_mm256_set1_epi32(4)),
                                                  _mm256_castsi256_ps(code), positive));
    /* negative becomes 0, NaN stays */
    return _mm256_andnot_ps(_mm256_cmp_ps(best, _mm256_setzero_ps(), _CMP_LT_OQ), best);
}

#ifdef LN_CPU_AVX512
/* The same rule on 16 windows in an AVX-512 register (conv_pool_direct.c,
 * winograd4.c): pooled values (ReLU applied) and codes 0..3 for the winner,
 * 4 where the maximum is not positive, as 16 bytes. A NaN test per 16 windows takes the
 * rare NaN case aside; otherwise the maximum and the first candidate equal
 * to it (14 mask operations per register before, 7 now: the window rule was
 * a fifth of the first block's time). */
static inline __m512 ln_relu_window_max16(const __m512 c[4], __m128i *code)
{
    /* the codes as bytes, one per window, made from the masks directly (no
     * vpmovdb narrowing 32-bit codes) */
    __m512 best;
    __m128i won;
    __mmask16 nan = _mm512_cmp_ps_mask(c[0], c[1], _CMP_UNORD_Q)
                    | _mm512_cmp_ps_mask(c[2], c[3], _CMP_UNORD_Q);
    if (__builtin_expect(nan == 0, 1)) {
        best = _mm512_max_ps(_mm512_max_ps(c[0], c[1]), _mm512_max_ps(c[2], c[3]));
        won = _mm_set1_epi8(3);
        won = _mm_mask_mov_epi8(won, _mm512_cmp_ps_mask(c[2], best, _CMP_EQ_OQ), _mm_set1_epi8(2));
        won = _mm_mask_mov_epi8(won, _mm512_cmp_ps_mask(c[1], best, _CMP_EQ_OQ), _mm_set1_epi8(1));
        won = _mm_mask_mov_epi8(won, _mm512_cmp_ps_mask(c[0], best, _CMP_EQ_OQ), _mm_setzero_si128());
    } else {
        /* in window order: a larger value or a first NaN takes over */
        best = c[0];
        won = _mm_setzero_si128();
        for (int i = 1; i < 4; i++) {
            __mmask16 take = _mm512_cmp_ps_mask(c[i], best, _CMP_GT_OQ)
                             | (_mm512_cmp_ps_mask(c[i], c[i], _CMP_UNORD_Q)
                                & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
            best = _mm512_mask_mov_ps(best, take, c[i]);
            won = _mm_mask_mov_epi8(won, take, _mm_set1_epi8((char)i));
        }
    }
    __mmask16 positive = _mm512_cmp_ps_mask(best, _mm512_setzero_ps(), _CMP_GT_OQ);
    *code = _mm_mask_mov_epi8(_mm_set1_epi8(4), positive, won);
    /* vmaxps(0, best) is best unless 0 > best, and best (NaN) when unordered:
     * negative becomes 0, NaN and -0 stay, as in ln_relu_window_max */
    return _mm512_max_ps(_mm512_setzero_ps(), best);
}

/* The pooled values of ln_relu_window_max16 alone (evaluate mode: no
 * winners), bit for bit the same. */
static inline __m512 ln_relu_window_max16_values(const __m512 c[4])
{
    __mmask16 nan = _mm512_cmp_ps_mask(c[0], c[1], _CMP_UNORD_Q)
                    | _mm512_cmp_ps_mask(c[2], c[3], _CMP_UNORD_Q);
    __m512 best;
    if (__builtin_expect(nan == 0, 1)) {
        best = _mm512_max_ps(_mm512_max_ps(c[0], c[1]), _mm512_max_ps(c[2], c[3]));
    } else {
        best = c[0];
        for (int i = 1; i < 4; i++) {
            __mmask16 take = _mm512_cmp_ps_mask(c[i], best, _CMP_GT_OQ)
                             | (_mm512_cmp_ps_mask(c[i], c[i], _CMP_UNORD_Q)
                                & _mm512_cmp_ps_mask(best, best, _CMP_ORD_Q));
            best = _mm512_mask_mov_ps(best, take, c[i]);
        }
    }
    return _mm512_max_ps(_mm512_setzero_ps(), best);
}
#endif

#ifdef LN_CPU_AVX512BF16
/* Two vectors of 16 floats rounded to bf16 (round to nearest even) and
 * interleaved into 16 pairs, (lo[j], hi[j]) in word j: the operand layout of
 * vdpbf16ps (bf16.c, conv_pool_direct.c). */
static inline __m512i ln_bf16_interleave(__m512 lo, __m512 hi)
{
    /* cvtne2ps puts its second operand in the even (low) halves */
    __m512i both = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);
    /* [lo0..lo15 | hi0..hi15] as words -> lo0 hi0 lo1 hi1 ... */
    const __m512i order = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                           24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17,
                                           1, 16, 0);
    return _mm512_permutexvar_epi16(order, both);
}
#endif

/* Eight 32-bit codes (each 0..255) as eight bytes, in order, in the low half. */
static inline __m128i ln_codes_to_bytes(__m256i codes)
{
    __m128i words = _mm_packus_epi32(_mm256_castsi256_si128(codes), _mm256_extracti128_si256(codes, 1));
    return _mm_packus_epi16(words, words);
}

#endif
