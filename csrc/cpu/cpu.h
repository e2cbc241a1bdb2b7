/* The CPU backend's context and the pieces its kernel files share. */
#ifndef LUNET_CPU_H
#define LUNET_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

/* Kernel levels (dispatch.c). conv.c, conv_pool_direct.c, pool.c,
 * winograd.c, winograd4.c, small_gemm.c, bf16.c and kernels.c (CMakeLists.txt's
 * LUNET_CPU_LEVELED) are compiled once per instruction-set level the compiler knows
 * (CMakeLists.txt: portable, avx2, avx512, avx512bf16), each time with
 * LN_CPU_LEVEL set to the level's name and that level's -m flags; their
 * public names get the level as a suffix here, so one binary holds every
 * level and dispatch.c picks one by cpuid when the device opens. */
#ifdef LN_CPU_LEVEL
#define LN_CPU_CAT2(a, b) a##_##b
#define LN_CPU_CAT(a, b) LN_CPU_CAT2(a, b)
#define LN_LEVELED(name) LN_CPU_CAT(name, LN_CPU_LEVEL)
#define ln_cpu_conv2d_forward LN_LEVELED(ln_cpu_conv2d_forward)
#define ln_cpu_conv2d_backward_data LN_LEVELED(ln_cpu_conv2d_backward_data)
#define ln_cpu_conv2d_backward_filter LN_LEVELED(ln_cpu_conv2d_backward_filter)
#define ln_cpu_pool2d_forward LN_LEVELED(ln_cpu_pool2d_forward)
#define ln_cpu_pool2d_backward LN_LEVELED(ln_cpu_pool2d_backward)
#define ln_cpu_conv2d_relu_maxpool2x2_forward LN_LEVELED(ln_cpu_conv2d_relu_maxpool2x2_forward)
#define ln_cpu_conv2d_relu_maxpool2x2_backward LN_LEVELED(ln_cpu_conv2d_relu_maxpool2x2_backward)
#define ln_cpu_relu_maxpool2x2_plane LN_LEVELED(ln_cpu_relu_maxpool2x2_plane)
#define ln_cpu_maxpool2x2_expand_plane LN_LEVELED(ln_cpu_maxpool2x2_expand_plane)
#define ln_cpu_gradient_groups LN_LEVELED(ln_cpu_gradient_groups)
#define ln_cpu_finish_bias LN_LEVELED(ln_cpu_finish_bias)
#define ln_cpu_small_gemm LN_LEVELED(ln_cpu_small_gemm)
#define ln_cpu_small_dot_gemm LN_LEVELED(ln_cpu_small_dot_gemm)
#define ln_cpu_gemm_tiles LN_LEVELED(ln_cpu_gemm_tiles)
#define ln_cpu_winograd_applies LN_LEVELED(ln_cpu_winograd_applies)
#define ln_cpu_winograd4_applies LN_LEVELED(ln_cpu_winograd4_applies)
#define ln_cpu_winograd4_forward LN_LEVELED(ln_cpu_winograd4_forward)
#define ln_cpu_winograd_to_channels_last LN_LEVELED(ln_cpu_winograd_to_channels_last)
#define ln_cpu_winograd_from_channels_last LN_LEVELED(ln_cpu_winograd_from_channels_last)
#define ln_cpu_winograd_bf16 LN_LEVELED(ln_cpu_winograd_bf16)
#define ln_cpu_winograd_multiply_bf16 LN_LEVELED(ln_cpu_winograd_multiply_bf16)
#define ln_cpu_winograd_pair_filters LN_LEVELED(ln_cpu_winograd_pair_filters)
#define ln_cpu_direct_block_applies LN_LEVELED(ln_cpu_direct_block_applies)
#define ln_cpu_direct_block_forward LN_LEVELED(ln_cpu_direct_block_forward)
#define ln_cpu_direct_block_backward LN_LEVELED(ln_cpu_direct_block_backward)
#define ln_cpu_winograd_forward LN_LEVELED(ln_cpu_winograd_forward)
#define ln_cpu_winograd_backward LN_LEVELED(ln_cpu_winograd_backward)
#define ln_cpu_gemm_bf16 LN_LEVELED(ln_cpu_gemm_bf16)
#define ln_cpu_gemm_f32 LN_LEVELED(ln_cpu_gemm_f32)
#define ln_cpu_bf16_round LN_LEVELED(ln_cpu_bf16_round)
#define ln_cpu_bf16_pair_rows LN_LEVELED(ln_cpu_bf16_pair_rows)
#define ln_cpu_gemm_tiles_bf16 LN_LEVELED(ln_cpu_gemm_tiles_bf16)
#define ln_cpu_level_kernels LN_LEVELED(ln_cpu_level_kernels)
#endif

struct ln_cpu_pool;

struct ln_cpu_context;

/* One level's kernels: the backend's slots that depend on the instruction
 * set (dispatch.c forwards to them). gemm_bf16 is NULL below avx512bf16. */
typedef struct ln_cpu_kernels {
    const char *name; /* "portable", "avx2", "avx512", "avx512bf16" */
    int (*conv2d_forward)(void *ctx, const ln_conv2d_shape *s, const float *x, const float *w,
                          const float *bias, float *y);
    int (*conv2d_backward_data)(void *ctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx);
    int (*conv2d_backward_filter)(void *ctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate);
    int (*pool2d_forward)(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y);
    int (*pool2d_backward)(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx);
    int (*conv2d_relu_maxpool2x2_forward)(void *ctx, const ln_conv2d_shape *s, const float *x,
                                          const float *w, const float *bias, float *y,
                                          uint8_t *winner);
    int (*conv2d_relu_maxpool2x2_backward)(void *ctx, const ln_conv2d_shape *s, const float *x,
                                           const float *w, const float *dy,
                                           const uint8_t *winner, float *dx, float *dw,
                                           float *db, int accumulate);
    int (*gemm_bf16)(struct ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);
    /* float32 products without packing (small_gemm.c), NULL below avx512;
     * LN_ENOTSUP for the shapes and scalings it leaves to BLAS */
    int (*gemm_f32)(struct ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc);
} ln_cpu_kernels;

/* One transformed filter bank of Winograd F(4x4) (winograd4.c): [a copy of
 * the weights [k, c, 3, 3], their U, room for U paired in bf16 (valid when
 * `paired`)]; k = 0 while empty or being made. */
typedef struct ln_cpu_filter_slot {
    float *data;
    size_t floats;             /* allocated */
    int k, c, paired;
    uint64_t last_use;         /* the context's filter_clock at the last hit (0: never) */
} ln_cpu_filter_slot;

/* A model's F(4x4) layers each keep their U across batches (cifar_resnet has
 * eight qualifying layers; one slot made every call a miss), within a total
 * size: the least recently used are dropped first. */
#define LN_CPU_FILTER_SLOTS 8
#define LN_CPU_FILTER_CACHE_BYTES ((size_t)256 << 20)

typedef struct ln_cpu_context {
    int threads;               /* for our parallel loops (OpenBLAS runs single-threaded) */
    struct ln_cpu_pool *pool;  /* threads.c */
    void *scratch;             /* grow-only workspace (im2col and friends) */
    size_t scratch_bytes;
    /* Largest workspace for a convolution's weight-gradient groups (conv.c,
     * winograd.c, through ln_cpu_gradient_groups): fewer groups beyond it.
     * $LUNET_CPU_WORKSPACE_MB sets it (default 256). */
    size_t conv_workspace_bytes;
    /* Winograd's algorithm for the 3x3 convolutions it applies to: 1 (the
     * default) F(4x4, 3x3) forward where it applies at the AVX-512 levels,
     * F(2x2, 3x3) otherwise; 2 ($LUNET_CPU_WINOGRAD=2) F(2x2) everywhere; 0
     * ($LUNET_CPU_WINOGRAD=0) im2col (both to compare). */
    int winograd;
    /* float32 matrix products by our own AVX-512 kernels where they apply,
     * unless $LUNET_CPU_GEMM=blas (to compare with OpenBLAS) */
    int own_gemm;
    /* the instruction-set level in use (dispatch.c): cpuid's best, or
     * $LUNET_CPU_LEVEL's */
    const ln_cpu_kernels *kernels;
    /* Winograd F(4x4)'s recent filter transforms (winograd4.c), reused while
     * a call brings the same weights as one of them (inference, batch after
     * batch) */
    ln_cpu_filter_slot filter_slots[LN_CPU_FILTER_SLOTS];
    uint64_t filter_clock;
    /* grow-only room for the pooling winners that evaluate mode drops, on
     * the fused paths that always write them (conv.c): no allocation per
     * inference batch */
    uint8_t *dropped_winners;
    size_t dropped_winners_bytes;
} ln_cpu_context;

/* dispatch.c: the levels this binary holds, best last (NULL-terminated),
 * whether this CPU runs a level, and choosing one: "auto" (or NULL) for the
 * best this CPU runs. Errors name the level and why. */
extern const ln_cpu_kernels *const ln_cpu_levels[];
int ln_cpu_level_supported(const ln_cpu_kernels *k);
int ln_cpu_select_level(ln_cpu_context *ctx, const char *name);

/* A workspace of at least `nbytes`, reused across calls: allocated once per
 * new largest shape, so a steady training step allocates nothing. The
 * contents are not preserved across calls. NULL (with the error set) when out
 * of memory. */
void *ln_cpu_scratch(ln_cpu_context *ctx, size_t nbytes);

/* The thread pool (threads.c). ln_cpu_parallel runs task(arg, i, thread) for
 * every i in [0, items) on up to `threads` threads, the caller being thread 0
 * (so thread < threads: an index for per-thread buffers); items are handed
 * out one at a time as threads ask, and it returns when all are done. A task
 * must not start parallel work itself. ln_cpu_parallel_range cuts [0, n)
 * into a few pieces per thread (multiples of 16 elements, threads chosen by
 * ln_cpu_threads_for) and runs task(arg, lo, hi) on each. */
typedef void (*ln_cpu_task)(void *arg, int64_t item, int thread);
typedef void (*ln_cpu_range_task)(void *arg, int64_t lo, int64_t hi);
int ln_cpu_pool_open(ln_cpu_context *ctx);
void ln_cpu_pool_close(ln_cpu_context *ctx);
void ln_cpu_parallel(ln_cpu_context *ctx, int threads, int64_t items, ln_cpu_task task,
                     void *arg);
void ln_cpu_parallel_range(ln_cpu_context *ctx, int64_t n, ln_cpu_range_task task, void *arg);
/* the same, threaded by `work` (elements touched) rather than by n: a range of
 * n columns of a matrix with many rows */
void ln_cpu_parallel_range_work(ln_cpu_context *ctx, int64_t n, int64_t work, ln_cpu_range_task task,
                                void *arg);
/* out[i] = (accumulate ? out[i] : 0) + groups[0 * stride + i] + groups[1 *
 * stride + i] + ... for i < n, added in group order: partial sums of fixed
 * groups of a batch combined the same way whatever the thread count. */
void ln_cpu_sum_groups(ln_cpu_context *ctx, float *out, const float *groups, int count,
                       int64_t stride, int64_t n, int accumulate);

/* A convolution's weight gradient is summed per fixed group of images and the
 * groups added in order, so it does not depend on the thread count (conv.c,
 * winograd.c). ln_cpu_gradient_groups: how many groups for n images when each
 * needs group_floats of workspace (8 at most, fewer within the context's
 * conv_workspace_bytes). ln_cpu_finish_bias: db[k] = (accumulate ? db[k] : 0)
 * + the groups' bias sums (k_count doubles at bias_offset floats into each
 * group of group_floats), added in group order in double. */
int ln_cpu_gradient_groups(const ln_cpu_context *ctx, int n, int64_t group_floats);
void ln_cpu_finish_bias(float *db, const float *groups, int count, int64_t group_floats,
                        int64_t bias_offset, int k_count, int accumulate);

/* Work below this many elements is not worth waking a second thread for: a
 * pass over 1 MB takes well under a millisecond, and on a shared machine the
 * other thread may first have to wait for a core. */
#define LN_CPU_PARALLEL_MIN 262144

/* Threads for a loop over `work` elements: the context's count, or 1 when the
 * work is too small to share. */
static inline int ln_cpu_threads_for(void *ctx, int64_t work)
{
    int t = ((ln_cpu_context *)ctx)->threads;
    return work >= LN_CPU_PARALLEL_MIN && t > 1 ? t : 1;
}

/* The sum of n floats: sixteen running float sums (vectorised, no long
 * dependency chain), added in double at the end. For bias gradients, which
 * add these per image in double. */
static inline double ln_cpu_sum(const float *v, int64_t n)
{
    float lanes[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++)
            lanes[l] += v[i + l];
    double acc = 0;
    for (int l = 0; l < 16; l++)
        acc += lanes[l];
    for (; i < n; i++)
        acc += v[i];
    return acc;
}

/* The same for products: below this many multiply-adds, one thread. */
#define LN_CPU_PARALLEL_MIN_MACS ((int64_t)1 << 20)

static inline int ln_cpu_threads_for_macs(void *ctx, int64_t macs)
{
    int t = ((ln_cpu_context *)ctx)->threads;
    return macs >= LN_CPU_PARALLEL_MIN_MACS && t > 1 ? t : 1;
}

/* The tensor ops (kernels.c, elementwise.c, gemm.c) and the unary, softmax
 * and reduce_dim families (families.c); argmax and random numbers are the
 * reference's. */
LN_DECLARE_TENSOR_OPS(ln_cpu)
LN_DECLARE_FAMILY_OPS(ln_cpu)

/* The hand-vectorised kernels need AVX2 and FMA; elsewhere the plain loops
 * and BLAS do everything. */
#if defined(__AVX2__) && defined(__FMA__)
#define LN_CPU_AVX2 1
#endif
/* ... and the 512-bit ones AVX-512 F, BW, DQ and VL (Skylake-X and later,
 * Zen 4), the bf16 ones also AVX512-BF16 (Cooper Lake, Zen 4). */
#if defined(LN_CPU_AVX2) && defined(__AVX512F__) && defined(__AVX512BW__) \
    && defined(__AVX512DQ__) && defined(__AVX512VL__)
#define LN_CPU_AVX512 1
#endif
#if defined(LN_CPU_AVX512) && defined(__AVX512BF16__)
#define LN_CPU_AVX512BF16 1
#endif

/* Each leveled build's table (kernels.c). */
#ifdef LN_CPU_LEVEL
extern const ln_cpu_kernels ln_cpu_level_kernels;
#endif

#ifdef LN_CPU_AVX2
/* Products with one short side (small_gemm.c), for convolutions with few
 * taps. ln_cpu_small_gemm: C[m, n] = init[i] (or 0) + A[m, depth] B[depth, n],
 * A addressed a[i * a_row + k * a_col], B and C row-major.
 * ln_cpu_small_dot_gemm: C[m, n] (+)= A[m, len] B[n, len]^T (rows of A and B
 * contiguous, long). */
void ln_cpu_small_gemm(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, const float *init);
void ln_cpu_small_dot_gemm(int m, int n, int len, const float *a, int64_t lda, const float *b,
                           int64_t ldb, float *c, int64_t ldc, int accumulate);
/* C[m, n] (+)= A[m, depth] B[depth, n] for n a multiple of 8, in 6 x 16
 * (AVX2) or 12 x 32 (AVX-512) tiles held in registers over the whole depth:
 * A addressed a[i * a_row + k * a_col] (broadcast), B rows of stride ldb
 * read in place, no packing; fetch (or NULL): fetch_bytes from there into
 * L1 while the tiles run, at the AVX-512 levels (what the caller reads
 * next). */
void ln_cpu_gemm_tiles(int m, int n, int depth, const float *a, int64_t a_row, int64_t a_col,
                       const float *b, int64_t ldb, float *c, int64_t ldc, int accumulate,
                       const void *fetch, int64_t fetch_bytes);

#ifdef LN_CPU_AVX512BF16
/* bf16 products with float32 accumulation (bf16.c). ln_cpu_bf16_round: dst
 * = src rounded to bf16. ln_cpu_bf16_pair_rows: B [rows, n] (row stride ld)
 * as (rows + 1) / 2 rows of n 32-bit pairs (B[2p][j], B[2p+1][j]), a missing
 * last row as zeros. ln_cpu_gemm_tiles_bf16: C[m, n] (+)= A B, `pairs` pairs
 * of depth; A's pair p of row i is the word a[i * a_row + p * a_col], B
 * paired rows of stride ldb (in words); fetch (or NULL): fetch_bytes from
 * there into L1 while the tiles run (what the caller's next product reads). */
void ln_cpu_bf16_round(uint16_t *dst, const float *src, int64_t n);
void ln_cpu_bf16_pair_rows(uint32_t *dst, const float *src, int64_t rows, int64_t n,
                           int64_t ld);
void ln_cpu_gemm_tiles_bf16(int m, int n, int pairs, const uint32_t *a, int64_t a_row,
                            int64_t a_col, const uint32_t *b, int64_t ldb, float *c, int64_t ldc,
                            int accumulate, const void *fetch, int64_t fetch_bytes);
#endif
/* C = alpha op(A) op(B) + beta C with bf16 products (bf16.c; the kernel
 * table's gemm_bf16, NULL below avx512bf16). */
int ln_cpu_gemm_f32(struct ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                    float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                    float *c, int ldc);
int ln_cpu_gemm_bf16(struct ln_cpu_context *ctx, int trans_a, int trans_b, int m, int n, int k,
                     float alpha, const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);

#ifdef LN_CPU_AVX512
/* The fused block's forward pass computed directly for 3x3 convolutions of
 * stride 1 with at most 3 input channels (conv_pool_direct.c), one pooled
 * row of 16 windows per vector. winner may be NULL (evaluate mode: y only).
 * The backward pass there computes the weight and bias gradients (db may be
 * NULL) but no input gradient, for finite x only (LN_ENOTSUP otherwise, with
 * nothing written). */
int ln_cpu_direct_block_applies(const ln_conv2d_shape *s);
int ln_cpu_direct_block_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                                const float *w, const float *bias, float *y, uint8_t *winner);
int ln_cpu_direct_block_backward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                                 const float *dy, const uint8_t *winner, float *dw, float *db,
                                 int accumulate);
#endif

/* Winograd F(2x2, 3x3) convolutions (winograd.c), for 3x3 kernels with
 * stride 1, padding up to 2 and channel counts that are multiples of 8.
 * Forward: y = the convolution (+ bias); with `winner`, y and winner are the
 * fused block's pooled output (backend.h). Backward: dx (unless NULL) = the
 * input gradient, dw (unless NULL; and db) (+)= the parameter gradients,
 * from dy, or with `winner` from the fused block's pooled gradient. */
int ln_cpu_winograd_applies(const ln_conv2d_shape *s);
int ln_cpu_winograd_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                            const float *w, const float *bias, float *y, uint8_t *winner);
int ln_cpu_winograd_backward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                             const float *w, const float *dy, const uint8_t *winner, float *dx,
                             float *dw, float *db, int accumulate);
/* x [c, h, w] into dst [rows, cols, c] at (top, left), zeros around it; y [c,
 * h, w] = src [rows, cols, c]'s first h rows and w columns (+ bias). For
 * channel counts that are multiples of 8. */
void ln_cpu_winograd_to_channels_last(const float *x, int c, int h, int w, float *dst, int rows,
                                      int cols, int top, int left);
void ln_cpu_winograd_from_channels_last(const float *src, int c, int cols, float *y, int h,
                                        int w, const float *bias);
/* What of the next plane Winograd's products fetch (ln_cpu_winograd_multiply_bf16
 * below, and winograd.c's float32 multiply). */
#define LN_WINOGRAD_FETCH_NONE 0
#define LN_WINOGRAD_FETCH_U 1
#define LN_WINOGRAD_FETCH_M 2
/* Whether Winograd's products are bf16's (winograd.c): under
 * lunet.autocast("bfloat16") at the avx512bf16 level; below it the setting
 * changes nothing (float32, the same as without it). */
int ln_cpu_winograd_bf16(void);
#ifdef LN_CPU_AVX512BF16
/* Winograd's products in bf16 (winograd.c, for F(2x2) and F(4x4)): M[xi]
 * [used, co] = V[xi] U[xi] for `planes` planes xi, V in bf16 (rows of ci
 * values, planes v_plane values apart), U paired by rows (per xi, ci / 2
 * rows of co pairs), M's planes m_plane floats apart; fetch: what of the
 * next plane to fetch while a plane's products run (LN_WINOGRAD_FETCH_*).
 * pair_filters: U (`planes` planes [ci, co], float32) to that pairing, a
 * plane a task on `threads` of the pool. ci even. */
void ln_cpu_winograd_multiply_bf16(int planes, const uint16_t *v16, int64_t v_plane,
                                   const uint32_t *u16, float *m, int64_t m_plane, int64_t used,
                                   int ci, int co, int fetch);
void ln_cpu_winograd_pair_filters(ln_cpu_context *ctx, int threads, const float *u, uint32_t *u16,
                                  int planes, int ci, int co);
#endif
#ifdef LN_CPU_AVX512
/* The forward pass by F(4x4, 3x3) (winograd4.c) where F(2x2) applies and
 * the channel counts are multiples of 16 (with bf16 products under
 * autocast's bf16 at the avx512bf16 level, float32 below it); as
 * ln_cpu_winograd_forward, but the fused block
 * is asked for by `fused`, and its winner may be NULL (evaluate mode: y
 * only). */
int ln_cpu_winograd4_applies(const ln_conv2d_shape *s);
int ln_cpu_winograd4_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                             const float *w, const float *bias, float *y, uint8_t *winner,
                             int fused);
#endif
#endif

/* layers (conv.c, pool.c, activation.c, bias.c, batchnorm.c; the loss is
 * the reference's) */
LN_DECLARE_LAYER_OPS(ln_cpu)

/* the fused conv2d + ReLU + 2x2 max-pooling block (conv.c, its pooling in pool.c) */
LN_DECLARE_FUSED_OPS(ln_cpu)
/* One plane [h, w] of convolution outputs to its pooled ReLU outputs and
 * winners [h/2, w/2] (backend.h gives the rule), and back: the plane's
 * gradient from the pooled one (every element written). */
void ln_cpu_relu_maxpool2x2_plane(const float *plane, int h, int w, float *out, uint8_t *winner);
void ln_cpu_maxpool2x2_expand_plane(const float *dy, const uint8_t *winner, int h, int w,
                                    float *d);

/* optimizers (optim.c) */
LN_DECLARE_OPTIM_OPS(ln_cpu)
/* A plain loop with the Adam update's reads and writes, for step_bench. */
void ln_cpu_stream_update_bench(void *ctx, int64_t n, float *param, const float *grad,
                                float *exp_avg, float *exp_avg_sq);

#endif
