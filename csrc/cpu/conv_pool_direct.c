/* The fused Conv2d -> ReLU -> MaxPool2d(2) block's forward pass for 3x3
 * convolutions with few input channels (the seed model's first layer: one
 * channel, 9 taps), computed directly, one pooled row at a time, at the
 * AVX-512 levels.
 *
 * The im2col path (conv.c) writes the whole convolution output of an image
 * (64 x 28 x 28 floats, 200 KB) and reads it back to pool it, with shuffles
 * that split even and odd columns; on that layer it ran ~9x above its
 * memory floor. Here each input image is split once into the even and the
 * odd columns of its zero-padded copy; the four candidates of the 2x2
 * windows of pooled row p, columns q..q+15 (top-left, top-right,
 * bottom-left, bottom-right), are then four vectors that read those planes
 * with plain contiguous loads:
 *     candidate (dr, dc) = sum over (r, s) of w[r][s] x[2p + dr + r][2q + dc + s]
 * where padded column 2q + o (o = dc + s in 0..3) is column q + o / 2 of the
 * plane of parity o % 2. So a pooled row of one output channel is 36 FMAs on
 * 16 lanes, its 16 input vectors stay in registers across the output
 * channels (one input channel), and nothing but the pooled values and the
 * winners is written. Values and winners follow the fused block's rule
 * (backend.h: first maximum, NaN counts as the maximum, ReLU after).
 *
 * The backward pass, when no input gradient is asked for (the first layer of
 * a training step), mirrors it for the weight and bias gradients: the pooled
 * gradient g of a window flows to the one place its winner code names (none
 * for codes 4 and up: ReLU or no place), so
 *     dw[k][c][r][s] = sum over windows of g * x[2p + dr + r][2q + dc + s]
 * with (dr, dc) the winner's place. With the same 16 input vectors per
 * pooled row, each lane's 9 inputs are picked by its winner (21 blends) and
 * each tap is one FMA on 16 lanes: nothing is unpooled, no im2col, and the 9
 * sums of one filter stay in registers over a group of images. It reads only
 * the winners' places, so it takes finite inputs only: the reference's sum
 * over every place adds 0 * x elsewhere, NaN where x is NaN or infinite. */
#include "cpu.h"

#ifdef LN_CPU_AVX512
#include <immintrin.h>
#include <string.h>

#include "../precision.h"
#include "../status.h"
#include "simd.h"

/* Convolutions with at most this many input channels: the taps' input rows
 * are reloaded per output channel beyond one, from L1. */
#define DIRECT_MAX_CHANNELS 3

int ln_cpu_direct_block_applies(const ln_conv2d_shape *s)
{
    return s->r == 3 && s->s == 3 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h <= 2
           && s->pad_w <= 2 && s->c >= 1 && s->c <= DIRECT_MAX_CHANNELS && s->p >= 2
           && s->q >= 2;
}

/* The even/odd planes of one image: per input channel two planes of `rows`
 * rows x `cols` columns (zero beyond the image). */
typedef struct planes {
    int rows, cols;
    int64_t plane;             /* floats per plane, a multiple of 16 */
} planes;

static planes planes_of(const ln_conv2d_shape *s)
{
    int pooled_w = s->q / 2;
    planes pl;
    pl.rows = 2 * (s->p / 2) + 2;
    pl.cols = ((pooled_w + 15) / 16) * 16 + 16;
    pl.plane = ((int64_t)pl.rows * pl.cols + 15) & ~(int64_t)15;
    return pl;
}

/* The image [c, h, w] zero-padded, split into even and odd padded columns:
 * planes[2 c + parity][row][col] = padded x[c][row][2 col + parity]. */
static void split_image(const ln_conv2d_shape *s, const planes *pl, const float *x, float *dst)
{
    memset(dst, 0, sizeof(float) * (size_t)(2 * s->c * pl->plane));
    for (int c = 0; c < s->c; c++)
        for (int y = 0; y < s->h; y++) {
            int row = y + s->pad_h;
            if (row >= pl->rows)
                break;
            const float *in = x + ((int64_t)c * s->h + y) * s->w;
            for (int v = 0; v < s->w; v++) {
                int col = v + s->pad_w;
                if (col / 2 >= pl->cols)
                    break;
                dst[(2 * c + col % 2) * pl->plane + (int64_t)row * pl->cols + col / 2] = in[v];
            }
        }
}

/* The 16 input vectors of one input channel for pooled row p, columns q..:
 * v[R][o] = padded x[2p + R][2q + o], R, o in 0..3. */
static inline void load_inputs(const float *even, const float *odd, int cols, int p, int q,
                               __m512 v[4][4])
{
    for (int r = 0; r < 4; r++) {
        int64_t at = (int64_t)(2 * p + r) * cols + q;
        v[r][0] = _mm512_loadu_ps(even + at);
        v[r][1] = _mm512_loadu_ps(odd + at);
        v[r][2] = _mm512_loadu_ps(even + at + 1);
        v[r][3] = _mm512_loadu_ps(odd + at + 1);
    }
}

/* acc[2 dr + dc] += the 9 taps of filter g (3x3) on the inputs v. */
static inline void add_taps(const float *g, __m512 v[4][4], __m512 acc[4])
{
    for (int r = 0; r < 3; r++)
        for (int s = 0; s < 3; s++) {
            __m512 wv = _mm512_set1_ps(g[r * 3 + s]);
            for (int dr = 0; dr < 2; dr++)
                for (int dc = 0; dc < 2; dc++)
                    acc[2 * dr + dc] = _mm512_fmadd_ps(wv, v[dr + r][dc + s], acc[2 * dr + dc]);
        }
}

static inline void store_pooled(float *y, uint8_t *winner, __mmask16 lanes, const __m512 acc[4])
{
    if (!winner) { /* evaluate mode */
        _mm512_mask_storeu_ps(y, lanes, ln_relu_window_max16_values(acc));
        return;
    }
    __m128i code;
    _mm512_mask_storeu_ps(y, lanes, ln_relu_window_max16(acc, &code));
    _mm_mask_storeu_epi8(winner, lanes, code);
}

typedef struct direct_job {
    const ln_conv2d_shape *s;
    planes pl;
    const float *x, *w, *bias;
    float *y;
    uint8_t *winner;
    float *ws;
    int64_t ws_stride;
    const uint32_t *weight_pairs; /* bf16 products: k rows of `pairs` words; else NULL */
    int pairs;
    int group_rows;               /* bf16: pooled rows a group (PAIR_GROUP_BYTES) */
    int64_t split_floats;         /* bf16: where a thread's pair vectors start */
} direct_job;

#ifdef LN_CPU_AVX512BF16
/* bf16 products (lunet.autocast("bfloat16") at the avx512bf16 level). The
 * taps of all input channels, d = 9 c + 3 r + s, go to vdpbf16ps in pairs
 * (2t, 2t + 1; an odd last tap beside a zero weight). For a pooled row
 * segment, candidate (dr, dc)'s pair vector t holds in each lane the inputs
 * of taps 2t and 2t + 1 rounded to bf16; made once, it serves every output
 * channel, whose weights are one broadcast word a pair. One input channel:
 * 5 products a candidate instead of 9 FMAs. The bias, the sums and the
 * window rule stay float32. */
#define DIRECT_MAX_PAIRS ((9 * DIRECT_MAX_CHANNELS + 1) / 2)
/* Pooled rows a group: as many as have their pair vectors in about this
 * many bytes (of L1), at least one (image_bf16). */
#define PAIR_GROUP_BYTES 24576

/* Candidate (dr, dc)'s input of tap d for pooled row p, columns q..: padded
 * x[c][2p + dr + r][2q + dc + s], zero past the last tap. */
static inline __m512 tap_input(const float *split, const planes *pl, int taps, int d, int dr,
                               int dc, int p, int q)
{
    if (d >= taps)
        return _mm512_setzero_ps();
    int c = d / 9, r = d % 9 / 3, o = dc + d % 3;
    return _mm512_loadu_ps(split + (2 * c + o % 2) * pl->plane
                           + (int64_t)(2 * p + dr + r) * pl->cols + q + o / 2);
}

/* The 4 x pairs pair vectors of pooled row p, columns q.., candidate by
 * candidate, into pv. */
static inline __attribute__((always_inline)) void make_pairs(const direct_job *j,
                                                             const float *split, int pairs, int p,
                                                             int q, __m512i *pv)
{
    int taps = 9 * j->s->c;
    for (int cand = 0; cand < 4; cand++)
        for (int t = 0; t < pairs; t++)
            _mm512_storeu_si512(
                pv + cand * pairs + t,
                ln_bf16_interleave(tap_input(split, &j->pl, taps, 2 * t, cand / 2, cand % 2, p, q),
                                   tap_input(split, &j->pl, taps, 2 * t + 1, cand / 2, cand % 2,
                                             p, q)));
}

/* One image, a group of pooled rows at a time: the group's pair vectors are
 * made first (in L1: j->group_rows rows), then each output channel runs over
 * the whole group, so its pooled values are written in order along its
 * plane. Row segment by row segment, all channels each (as float32 does),
 * the 64 channels' stores went to 64 lines 784 bytes apart, and with
 * products half as many as float32's FMAs the stores set the pace: this
 * order takes 0.70x the time. (In float32 the same order took 1.3-1.5x:
 * the 16 input vectors are then loaded per channel instead of kept in
 * registers, and its FMAs, not its stores, set the pace.) */
static inline __attribute__((always_inline)) void image_bf16(const direct_job *j,
                                                             const float *split, int pairs,
                                                             __m512i *pv_rows, float *y,
                                                             uint8_t *winner)
{
    const ln_conv2d_shape *s = j->s;
    int ph = s->p / 2, pw = s->q / 2, segments = (pw + 15) / 16;
    int64_t pooled = (int64_t)ph * pw, per_segment = 4 * (int64_t)pairs;
    for (int p0 = 0; p0 < ph; p0 += j->group_rows) {
        int rows = ph - p0 < j->group_rows ? ph - p0 : j->group_rows;
        for (int i = 0; i < rows; i++)
            for (int g = 0; g < segments; g++)
                make_pairs(j, split, pairs, p0 + i, 16 * g,
                           pv_rows + ((int64_t)i * segments + g) * per_segment);
        for (int k = 0; k < s->k; k++) {
            __m512 b0 = _mm512_set1_ps(j->bias ? j->bias[k] : 0.0f);
            __m512bh wv[DIRECT_MAX_PAIRS];
            for (int t = 0; t < pairs; t++)
                wv[t] = (__m512bh)_mm512_set1_epi32((int)j->weight_pairs[(int64_t)k * pairs + t]);
            for (int i = 0; i < rows; i++)
                for (int g = 0; g < segments; g++) {
                    const __m512i *pv = pv_rows + ((int64_t)i * segments + g) * per_segment;
                    __m512 acc[4] = {b0, b0, b0, b0};
                    for (int t = 0; t < pairs; t++)
                        for (int cand = 0; cand < 4; cand++)
                            acc[cand] = _mm512_dpbf16_ps(
                                acc[cand], (__m512bh)_mm512_loadu_si512(pv + cand * pairs + t), wv[t]);
                    int n = pw - 16 * g < 16 ? pw - 16 * g : 16;
                    int64_t at = k * pooled + (int64_t)(p0 + i) * pw + 16 * g;
                    store_pooled(y + at, winner ? winner + at : NULL, (__mmask16)((1u << n) - 1),
                                 acc);
                }
        }
    }
}

/* An image with the pair count a constant (1, 2 or 3 channels). */
static void image_pairs(const direct_job *j, const float *split, __m512i *pv_rows, float *y,
                        uint8_t *winner)
{
    switch (j->pairs) {
    case 5:
        image_bf16(j, split, 5, pv_rows, y, winner);
        break;
    case 9:
        image_bf16(j, split, 9, pv_rows, y, winner);
        break;
    default:
        image_bf16(j, split, DIRECT_MAX_PAIRS, pv_rows, y, winner);
    }
}

/* w [k, taps] as k rows of `pairs` bf16 pairs (the last tap of an odd count
 * beside zero). */
static void pair_weights(const float *w, int k, int taps, int pairs, uint32_t *dst)
{
    for (int i = 0; i < k; i++) {
        float row[2 * DIRECT_MAX_PAIRS] = {0};
        memcpy(row, w + (int64_t)i * taps, sizeof(float) * (size_t)taps);
        ln_cpu_bf16_round((uint16_t *)(dst + (int64_t)i * pairs), row, 2 * pairs);
    }
}
#endif

static void direct_image(void *arg, int64_t b, int thread)
{
    const direct_job *j = arg;
    const ln_conv2d_shape *s = j->s;
    const planes *pl = &j->pl;
    int ph = s->p / 2, pw = s->q / 2, taps = 9 * s->c;
    int64_t pooled = (int64_t)ph * pw;
    float *split = j->ws + thread * j->ws_stride;
    split_image(s, pl, j->x + b * (int64_t)s->c * s->h * s->w, split);
    float *y = j->y + b * s->k * pooled;
    uint8_t *winner = j->winner ? j->winner + b * s->k * pooled : NULL;
#ifdef LN_CPU_AVX512BF16
    if (j->weight_pairs) {
        image_pairs(j, split, (__m512i *)(split + j->split_floats), y, winner);
        return;
    }
#endif
    for (int p = 0; p < ph; p++)
        for (int q = 0; q < pw; q += 16) {
            int n = pw - q < 16 ? pw - q : 16;
            __mmask16 lanes = (__mmask16)((1u << n) - 1);
            int64_t out = (int64_t)p * pw + q;
            if (s->c == 1) {
                /* one input channel: its 16 vectors serve every output channel */
                __m512 v[4][4];
                load_inputs(split, split + pl->plane, pl->cols, p, q, v);
                for (int k = 0; k < s->k; k++) {
                    __m512 b0 = _mm512_set1_ps(j->bias ? j->bias[k] : 0.0f);
                    __m512 acc[4] = {b0, b0, b0, b0};
                    add_taps(j->w + (int64_t)k * 9, v, acc);
                    store_pooled(y + k * pooled + out, winner ? winner + k * pooled + out : NULL, lanes,
                                 acc);
                }
                continue;
            }
            for (int k = 0; k < s->k; k++) {
                __m512 b0 = _mm512_set1_ps(j->bias ? j->bias[k] : 0.0f);
                __m512 acc[4] = {b0, b0, b0, b0};
                for (int c = 0; c < s->c; c++) {
                    __m512 v[4][4];
                    const float *even = split + 2 * c * pl->plane;
                    load_inputs(even, even + pl->plane, pl->cols, p, q, v);
                    add_taps(j->w + (int64_t)k * taps + 9 * c, v, acc);
                }
                store_pooled(y + k * pooled + out, winner ? winner + k * pooled + out : NULL, lanes,
                                 acc);
            }
        }
}

int ln_cpu_direct_block_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                                const float *w, const float *bias, float *y, uint8_t *winner)
{
    planes pl = planes_of(s);
    int64_t stride = 2 * s->c * pl.plane + 16; /* 16: slack (loads stay within the planes) */
    int64_t macs = (int64_t)s->n * s->k * 9 * s->c * s->p * s->q;
    int threads = ln_cpu_threads_for_macs(ctx, macs);
    if (threads > s->n)
        threads = s->n;
    int64_t split_floats = stride;
    int pairs = 0, group_rows = 0;
#ifdef LN_CPU_AVX512BF16
    if (ln_precision_get() == LN_PRECISION_BFLOAT16) {
        /* the thread's pair vectors for a group of rows after its planes */
        pairs = (9 * s->c + 1) / 2;
        int64_t row_bytes = (int64_t)((s->q / 2 + 15) / 16) * 4 * pairs * 64;
        group_rows = PAIR_GROUP_BYTES / row_bytes > 1 ? (int)(PAIR_GROUP_BYTES / row_bytes) : 1;
        stride += group_rows * row_bytes / (int64_t)sizeof(float);
    }
#endif
    float *ws = ln_cpu_scratch(ctx, (size_t)(stride * threads + (int64_t)s->k * pairs) * sizeof(float));
    if (!ws)
        return LN_ENOMEM;
    direct_job job = {s, pl, x, w, bias, y, winner, ws, stride, NULL, pairs, group_rows, split_floats};
#ifdef LN_CPU_AVX512BF16
    if (pairs) {
        uint32_t *weight_pairs = (uint32_t *)(ws + stride * threads);
        pair_weights(w, s->k, 9 * s->c, pairs, weight_pairs);
        job.weight_pairs = weight_pairs;
    }
#endif
    ln_cpu_parallel(ctx, threads, s->n, direct_image, &job);
    return LN_OK;
}

/* --- backward: weight and bias gradients ----------------------------------------- */

typedef struct gradient_job {
    const ln_conv2d_shape *s;
    planes pl;
    const float *x, *dy;
    const uint8_t *winner;
    float *groups;             /* per group: dw [k][c][9], then k bias sums (double) */
    int64_t group_floats, dw_floats;
    float *ws;                 /* per thread: a group's images split into planes */
    int64_t ws_stride;
    int count;                 /* groups */
} gradient_job;

/* acc[r][s] += g * v[dr + r][dc + s], (dr, dc) each lane's winner: its
 * inputs picked first (rows by dr, then columns by dc: 21 blends) so that
 * each tap is one FMA, not four masked ones; lanes not in `won` add 0. */
static inline void add_gradient_taps(__m512 g, __m512i code, __mmask16 won, __m512 v[4][4],
                                     __m512 acc[9])
{
    __mmask16 lower = _mm512_test_epi32_mask(code, _mm512_set1_epi32(2));
    __mmask16 right = _mm512_test_epi32_mask(code, _mm512_set1_epi32(1));
    __m512 gz = _mm512_maskz_mov_ps(won, g);
    for (int r = 0; r < 3; r++) {
        __m512 row[4];
        for (int o = 0; o < 4; o++)
            row[o] = _mm512_mask_blend_ps(lower, v[r][o], v[r + 1][o]);
        for (int t = 0; t < 3; t++)
            acc[3 * r + t] = _mm512_fmadd_ps(gz, _mm512_mask_blend_ps(right, row[t], row[t + 1]),
                                             acc[3 * r + t]);
    }
}

/* Group gi's images (first..last): per output channel k and input channel
 * c, the 9 sums over the group's windows in registers, then into the group's
 * dw; the bias sum (windows with a winner) in float over the group, kept in
 * double for the sum of the groups. */
static void gradient_group(void *arg, int64_t gi, int thread)
{
    const gradient_job *j = arg;
    const ln_conv2d_shape *s = j->s;
    const planes *pl = &j->pl;
    int ph = s->p / 2, pw = s->q / 2;
    int64_t pooled = (int64_t)ph * pw, chw = (int64_t)s->c * s->h * s->w;
    int64_t image_floats = 2 * s->c * pl->plane;
    int first = (int)(s->n * gi / j->count), last = (int)(s->n * (gi + 1) / j->count);
    float *split = j->ws + thread * j->ws_stride;
    for (int b = first; b < last; b++)
        split_image(s, pl, j->x + b * chw, split + (b - first) * image_floats);
    float *dw = j->groups + gi * j->group_floats;
    double *bias_sum = (double *)(dw + j->dw_floats);
    for (int k = 0; k < s->k; k++) {
        __m512 bias_acc = _mm512_setzero_ps();
        for (int c = 0; c < s->c; c++) {
            __m512 acc[9];
            for (int t = 0; t < 9; t++)
                acc[t] = _mm512_setzero_ps();
            for (int b = first; b < last; b++) {
                const float *even = split + (b - first) * image_floats + 2 * c * pl->plane;
                int64_t at = ((int64_t)b * s->k + k) * pooled;
                for (int p = 0; p < ph; p++)
                    for (int q = 0; q < pw; q += 16) {
                        int n = pw - q < 16 ? pw - q : 16;
                        __mmask16 lanes = (__mmask16)((1u << n) - 1);
                        int64_t cell = at + (int64_t)p * pw + q;
                        __m512 g = _mm512_maskz_loadu_ps(lanes, j->dy + cell);
                        __m512i code = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(lanes, j->winner + cell));
                        __m512 v[4][4];
                        load_inputs(even, even + pl->plane, pl->cols, p, q, v);
                        /* the lanes in the row whose window has a winner (code < 4) */
                        __mmask16 won = _mm512_mask_cmplt_epi32_mask(lanes, code, _mm512_set1_epi32(4));
                        add_gradient_taps(g, code, won, v, acc);
                        if (c == 0)
                            bias_acc = _mm512_mask_add_ps(bias_acc, won, bias_acc, g);
                    }
            }
            float *out = dw + ((int64_t)k * s->c + c) * 9;
            for (int t = 0; t < 9; t++)
                out[t] = _mm512_reduce_add_ps(acc[t]);
        }
        bias_sum[k] = (double)_mm512_reduce_add_ps(bias_acc);
    }
}

/* Whether all n floats are finite (no NaN, no infinity). */
static int all_finite(const float *x, int64_t n)
{
    const int classes = 0x01 | 0x08 | 0x10 | 0x80; /* quiet NaN, +inf, -inf, signalling NaN */
    __mmask16 found = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        found |= _mm512_fpclass_ps_mask(_mm512_loadu_ps(x + i), classes);
    if (i < n) {
        __mmask16 tail = (__mmask16)((1u << (n - i)) - 1);
        found |= _mm512_mask_fpclass_ps_mask(tail, _mm512_maskz_loadu_ps(tail, x + i), classes);
    }
    return found == 0;
}

/* At most this many images a group: a thread holds its group's images split
 * into planes (~8 KB each for the seed's 28x28), which should stay in L2. */
#define GROUP_IMAGES 16

int ln_cpu_direct_block_backward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                                 const float *dy, const uint8_t *winner, float *dw, float *db,
                                 int accumulate)
{
    if (!all_finite(x, (int64_t)s->n * s->c * s->h * s->w))
        return LN_ENOTSUP; /* the caller takes the general path (see the top) */
    planes pl = planes_of(s);
    int64_t dw_floats = ((int64_t)s->k * s->c * 9 + 15) & ~(int64_t)15;
    int64_t group_floats = dw_floats + 2 * (((int64_t)s->k + 7) & ~(int64_t)7);
    /* the group count depends on n alone: the same sums whatever the threads */
    int groups = ln_cpu_gradient_groups(ctx, s->n, group_floats);
    if (groups < (s->n + GROUP_IMAGES - 1) / GROUP_IMAGES)
        groups = (s->n + GROUP_IMAGES - 1) / GROUP_IMAGES;
    int per_group = (s->n + groups - 1) / groups;
    int64_t stride = (int64_t)per_group * 2 * s->c * pl.plane + 16; /* 16: slack */
    int64_t macs = (int64_t)s->n * s->k * 9 * s->c * s->p * s->q;
    int threads = ln_cpu_threads_for_macs(ctx, macs);
    if (threads > groups)
        threads = groups;
    float *base = ln_cpu_scratch(ctx, (size_t)(groups * group_floats + threads * stride)
                                          * sizeof(float));
    if (!base)
        return LN_ENOMEM;
    gradient_job job = {s, pl, x, dy, winner, base, group_floats, dw_floats,
                        base + groups * group_floats, stride, groups};
    ln_cpu_parallel(ctx, threads, groups, gradient_group, &job);
    /* the groups in order, whatever thread summed them */
    ln_cpu_sum_groups(ctx, dw, base, groups, group_floats, (int64_t)s->k * s->c * 9, accumulate);
    if (db)
        ln_cpu_finish_bias(db, base, groups, group_floats, dw_floats, s->k, accumulate);
    return LN_OK;
}

#endif
