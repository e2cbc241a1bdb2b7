/* Forward 3x3 convolutions with stride 1 by Winograd's F(4x4, 3x3) (Lavin
 * and Gray, 2016), at the AVX-512 levels: each 4x4 block of outputs comes
 * from a 6x6 block of inputs through 36 products instead of 144 (F(2x2,
 * 3x3), winograd.c: 16 for 36, so 2.25x; here 4x). On the seed model's
 * second layer (14 x 14 outputs) the tiles cover 16 x 16, so the products
 * drop 784 -> 576 per channel pair and image (1.36x), not 1.78x.
 *
 *     y = A^T [(G g G^T) . (B^T d B)] A          (. elementwise)
 * with B^T, G and A^T below.
 *
 * The 36 products M[xi] = V[xi] U[xi] run the same register tile as F(2x2)
 * (ln_cpu_gemm_tiles); the transforms work channels-last on 16 channels per
 * register. Under lunet.autocast("bfloat16") at the avx512bf16 level the
 * products are bf16's, as F(2x2)'s are (winograd.c, bf16.c): the input
 * transform computes in float32 and stores V rounded to bf16 (channels side
 * by side: the pairs of depth), U is paired by rows once per weights and
 * cached, and M accumulates in float32; the output transform is unchanged.
 * Its larger transformed tiles make bf16's rounding ~4x F(2x2)'s (normwise
 * ~1e-2 against ~3e-3: bench/NOTES.md). Only the forward pass (and the
 * fused block's forward), which is all inference runs: the backward passes
 * stay F(2x2), whose smaller transforms keep the gradients closer to the
 * exact ones (F(4x4)'s forward rounds 4-8x more than F(2x2)'s,
 * bench/NOTES.md step 24). */
#include "cpu.h"

#ifdef LN_CPU_AVX512
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "simd.h"

/* Tiles per chunk of images: the products' row count. U (36 x 64 x 128
 * floats for the seed's second layer, 1.2 MB) no longer fits in L2 beside V
 * and M, so smaller chunks did better (measured 16 / 32 / 48 / 64 / 96 tiles:
 * bench/NOTES.md). */
#define TILES_PER_CHUNK 48

int ln_cpu_winograd4_applies(const ln_conv2d_shape *s)
{
    return ln_cpu_winograd_applies(s) && s->c % 16 == 0 && s->k % 16 == 0;
}

/* The distance between the 36 planes V[xi] (or M[xi]) of `rows` rows of
 * `ch` channels: one cache line more than the plane, so that a tile's 36
 * values (one per plane) do not all fall into the same L1 set, as they did
 * with plane sizes that are multiples of 4 KB (32 tiles x 64 or 128
 * channels). */
static int64_t xi_stride(int64_t rows, int ch)
{
    return rows * ch + 16;
}

/* The same for V in bf16, in bf16 values: one cache line is 32 of them. */
static int64_t xi_stride16(int64_t rows, int ch)
{
    return rows * ch + 32;
}

typedef struct tiling4 {
    int ci, co, out_h, out_w, tp, tq, src_h, src_w;
} tiling4;

static tiling4 make_tiling4(const ln_conv2d_shape *s)
{
    tiling4 t;
    t.ci = s->c;
    t.co = s->k;
    t.out_h = s->p;
    t.out_w = s->q;
    t.tp = (t.out_h + 3) / 4;
    t.tq = (t.out_w + 3) / 4;
    t.src_h = 4 * t.tp + 2;
    t.src_w = 4 * t.tq + 2;
    return t;
}

/* The transform matrices for the interpolation points 0, -1, 1, 1/2, -2
 * (and infinity). The textbook points 0, 1, -1, 2, -2 give integer
 * matrices and fewer operations, but their transformed tiles reach 100x the
 * inputs, and the rounding errors grow with them: on random 64-channel tiles
 * the worst error relative to the tile's largest output was 1.3e-5 with those
 * and 4.1e-6 with these (F(2x2): 2.1e-6; Barabasz et al., 2020, chose
 * points the same way). All entries are exact in binary but the 1/3 and 1/15
 * of G, which is computed in double. */
static const float BT4[6][6] = {{1, -1.5f, -2, 1.5f, 1, 0},   {0, 1, -2.5f, 0.5f, 1, 0},
                                {0, -1, 0.5f, 2.5f, 1, 0},    {0, -2, -1, 2, 1, 0},
                                {0, 0.5f, -1, -0.5f, 1, 0},   {0, 1, -1.5f, -2, 1.5f, 1}};
static const double G4[6][3] = {{1, 0, 0},
                                {-1.0 / 3, 1.0 / 3, -1.0 / 3},
                                {1.0 / 3, 1.0 / 3, 1.0 / 3},
                                {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                {1.0 / 15, -2.0 / 15, 4.0 / 15},
                                {0, 0, 1}};
static const float AT4[4][6] = {{1, 1, 1, 1, 1, 0},
                                {0, -1, 1, 0.5f, -2, 0},
                                {0, 1, 1, 0.25f, 4, 0},
                                {0, -1, 1, 0.125f, -8, 1}};

/* out[i] = sum of mat[i][j] in[j]; unrolled, so the constant entries fold
 * (zeros vanish, ones become additions). */
static inline __attribute__((always_inline)) __m512 row_times(const float *row, const __m512 *in)
{
    __m512 acc = _mm512_setzero_ps();
    int started = 0;
#pragma GCC unroll 6
    for (int j = 0; j < 6; j++) {
        float a = row[j];
        if (a == 0.0f)
            continue;
        if (!started) {
            acc = a == 1.0f ? in[j] : _mm512_mul_ps(_mm512_set1_ps(a), in[j]);
            started = 1;
        } else if (a == 1.0f) {
            acc = _mm512_add_ps(acc, in[j]);
        } else if (a == -1.0f) {
            acc = _mm512_sub_ps(acc, in[j]);
        } else {
            acc = _mm512_fmadd_ps(_mm512_set1_ps(a), in[j], acc);
        }
    }
    return acc;
}

/* B^T d on six vectors. */
static inline __attribute__((always_inline)) void input_1d(const __m512 d[6], __m512 t[6])
{
#pragma GCC unroll 6
    for (int i = 0; i < 6; i++)
        t[i] = row_times(BT4[i], d);
}

/* A^T m on six vectors. */
static inline __attribute__((always_inline)) void output_1d(const __m512 m[6], __m512 y[4])
{
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        y[i] = row_times(AT4[i], m);
}

/* V[xi][t0 + tile][c] = B^T d B for every tile of one image (src
 * channels-last [src_h, src_w, ci], padded); each V[xi] has `rows` rows.
 * Rounded to bf16 into v16 when v16 is given (v unused). */
static void input_transform4(const tiling4 *t, const float *src, float *v, uint16_t *v16,
                             int64_t rows, int64_t t0)
{
    int ci = t->ci;
    int64_t plane = v16 ? xi_stride16(rows, ci) : xi_stride(rows, ci);
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++) {
            const float *base = src + ((int64_t)(4 * i) * t->src_w + 4 * j) * ci;
            int64_t out = (t0 + (int64_t)i * t->tq + j) * ci;
            for (int c = 0; c < ci; c += 16) {
                __m512 cols[6][6]; /* [s][r]: B^T applied down each column */
                for (int s = 0; s < 6; s++) {
                    __m512 d[6];
                    for (int r = 0; r < 6; r++)
                        d[r] = _mm512_loadu_ps(base + ((int64_t)r * t->src_w + s) * ci + c);
                    input_1d(d, cols[s]);
                }
                for (int r = 0; r < 6; r++) {
                    __m512 d[6], e[6];
                    for (int s = 0; s < 6; s++)
                        d[s] = cols[s][r];
                    input_1d(d, e);
                    for (int s = 0; s < 6; s++) {
                        int64_t at = out + (6 * r + s) * plane + c;
#ifdef LN_CPU_AVX512BF16
                        if (v16) /* bf16 products: V rounded as it is stored */
                            _mm256_storeu_si256((__m256i *)(v16 + at),
                                                (__m256i)_mm512_cvtneps_pbh(e[s]));
                        else
#endif
                            _mm512_storeu_ps(v + at, e[s]);
                    }
                }
            }
        }
}

/* The 4x4 outputs y[r][s] of tile `tile` for channels c..c+15: A^T m A. */
static inline void output_tile4(const float *m, int64_t plane, int co, int64_t tile, int c,
                                __m512 y[4][4])
{
    const float *base = m + tile * co + c;
    __m512 rows[4][6]; /* A^T applied down each column: [r][s] */
    for (int s = 0; s < 6; s++) {
        __m512 col[6], out[4];
        for (int r = 0; r < 6; r++)
            col[r] = _mm512_loadu_ps(base + (6 * r + s) * plane);
        output_1d(col, out);
        for (int r = 0; r < 4; r++)
            rows[r][s] = out[r];
    }
    for (int r = 0; r < 4; r++)
        output_1d(rows[r], y[r]);
}

/* U[xi][c][k] = G g G^T of the filters of output channels k0..k0+15 (all
 * input channels), in double on eight filters per register, then rounded
 * to float: a filter's 36 values go to 36 planes 32 KB apart (64 x 128
 * filters), the same L1 set, so each (c, 16 filters) row of a plane is
 * written whole as one line, bypassing the caches (streaming stores): with
 * half lines through the caches, block 2's forward on weights that changed
 * (each training step) took 1.04x (fp32) and 1.07x (bf16) the time
 * (bench/NOTES.md). The task's sfence orders them before the pool counts
 * the task done. */
static void filter_transform4(const float *w, int k_count, int c_count, int k0, float *u)
{
    int64_t plane = (int64_t)k_count * c_count;
    for (int c = 0; c < c_count; c++) {
        double g[9][16];
        for (int l = 0; l < 16; l++)
            for (int e = 0; e < 9; e++)
                g[e][l] = w[((int64_t)(k0 + l) * c_count + c) * 9 + e];
        __m256 halves[2][36];
        for (int half = 0; half < 2; half++) {
            __m512d gv[9], t[6][3];
            for (int e = 0; e < 9; e++)
                gv[e] = _mm512_loadu_pd(&g[e][8 * half]);
            for (int a = 0; a < 6; a++)
                for (int s = 0; s < 3; s++)
                    t[a][s] = _mm512_fmadd_pd(
                        _mm512_set1_pd(G4[a][0]), gv[s],
                        _mm512_fmadd_pd(_mm512_set1_pd(G4[a][1]), gv[3 + s],
                                        _mm512_mul_pd(_mm512_set1_pd(G4[a][2]), gv[6 + s])));
            for (int a = 0; a < 6; a++)
                for (int b = 0; b < 6; b++) {
                    __m512d v = _mm512_fmadd_pd(
                        t[a][0], _mm512_set1_pd(G4[b][0]),
                        _mm512_fmadd_pd(t[a][1], _mm512_set1_pd(G4[b][1]),
                                        _mm512_mul_pd(t[a][2], _mm512_set1_pd(G4[b][2]))));
                    halves[half][6 * a + b] = _mm512_cvtpd_ps(v);
                }
        }
        /* 64-byte aligned: U starts on a line, and k, c, k0 are multiples of 16 */
        float *out = u + (int64_t)c * k_count + k0;
        for (int xi = 0; xi < 36; xi++)
            _mm512_stream_ps(out + xi * plane,
                             _mm512_insertf32x8(_mm512_castps256_ps512(halves[0][xi]), halves[1][xi], 1));
    }
}

typedef struct filter_job4 {
    const float *w;
    int k_count, c_count;
    float *u;
} filter_job4;

static void filter_task4(void *p, int64_t item, int thread)
{
    (void)thread;
    const filter_job4 *j = p;
    filter_transform4(j->w, j->k_count, j->c_count, (int)item * 16, j->u);
    _mm_sfence(); /* the streaming stores, before the pool counts the task done */
}

/* One image's outputs channels-last [4 tp, 4 tq, co] from M (its tiles
 * start at t0). */
static void output_channels_last4(const tiling4 *t, const float *m, int64_t rows, int64_t t0,
                                  float *out)
{
    int co = t->co, cols = 4 * t->tq;
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++)
            for (int c = 0; c < co; c += 16) {
                __m512 y[4][4];
                output_tile4(m, xi_stride(rows, co), co, t0 + (int64_t)i * t->tq + j, c, y);
                for (int r = 0; r < 4; r++)
                    for (int s = 0; s < 4; s++)
                        _mm512_storeu_ps(out + ((int64_t)(4 * i + r) * cols + 4 * j + s) * co + c,
                                         y[r][s]);
            }
}

/* The fused block's epilogue: bias, ReLU and 2x2 max pooling of the four
 * windows of each tile, into pooled [co, out_h/2, out_w/2] and its winners.
 * The windows come out 16 channels to a register, so they are collected
 * channels-last in `stage` (values, then the codes as 32-bit words: 2 x
 * pooled positions x co words) and transposed in 8x8 blocks at the end,
 * instead of 32 scalar stores per register; the codes are then narrowed to
 * bytes (via `codes`, co x pooled positions words). No codes when winner is
 * NULL (evaluate mode). */
static void output_pooled4(const tiling4 *t, const float *m, int64_t rows, int64_t t0,
                           const float *bias, float *stage, int32_t *codes, float *pooled,
                           uint8_t *winner)
{
    int co = t->co, ph = t->out_h / 2, pw = t->out_w / 2;
    int64_t positions = (int64_t)ph * pw;
    float *stage_codes = stage + positions * co;
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++)
            for (int c = 0; c < co; c += 16) {
                __m512 y[4][4];
                output_tile4(m, xi_stride(rows, co), co, t0 + (int64_t)i * t->tq + j, c, y);
                __m512 b = bias ? _mm512_loadu_ps(bias + c) : _mm512_setzero_ps();
                for (int a = 0; a < 2; a++)
                    for (int e = 0; e < 2; e++) {
                        int pi = 2 * i + a, pj = 2 * j + e;
                        if (pi >= ph || pj >= pw)
                            continue;
                        __m512 cand[4] = {_mm512_add_ps(y[2 * a][2 * e], b),
                                          _mm512_add_ps(y[2 * a][2 * e + 1], b),
                                          _mm512_add_ps(y[2 * a + 1][2 * e], b),
                                          _mm512_add_ps(y[2 * a + 1][2 * e + 1], b)};
                        __m128i code;
                        int64_t at = ((int64_t)pi * pw + pj) * co + c;
                        if (!winner) {
                            _mm512_storeu_ps(stage + at, ln_relu_window_max16_values(cand));
                            continue;
                        }
                        _mm512_storeu_ps(stage + at, ln_relu_window_max16(cand, &code));
                        _mm512_storeu_si512(stage_codes + at, _mm512_cvtepu8_epi32(code));
                    }
            }
    /* the codes move as raw 32-bit patterns: the transpose does no arithmetic */
    ln_cpu_winograd_from_channels_last(stage, co, pw, pooled, ph, pw, NULL);
    if (!winner)
        return;
    ln_cpu_winograd_from_channels_last(stage_codes, co, pw, (float *)codes, ph, pw, NULL);
    int64_t n = positions * co, l = 0;
    for (; l + 16 <= n; l += 16)
        _mm_storeu_si128((__m128i *)(winner + l),
                         _mm512_cvtepi32_epi8(_mm512_loadu_si512(codes + l)));
    for (; l < n; l++)
        winner[l] = (uint8_t)codes[l];
}

typedef struct forward_job4 {
    const ln_conv2d_shape *s;
    const tiling4 *t;
    const float *x, *u, *bias;
    const uint32_t *u16;       /* U paired by rows in bf16 (NULL: float32 products) */
    float *y;
    uint8_t *winner;           /* NULL in evaluate mode */
    int fused;
    float *threads_base;       /* per thread: the padded plane, V, M, an output plane */
    int64_t thread_floats, src_floats, v_floats, m_floats;
    int chunk;
    int64_t rows;
} forward_job4;

static void forward_chunk4(void *p, int64_t ch, int thread)
{
    const forward_job4 *j = p;
    const ln_conv2d_shape *s = j->s;
    const tiling4 *t = j->t;
    int64_t per_image = (int64_t)t->tp * t->tq, chw = (int64_t)s->c * s->h * s->w;
    int64_t pooled = (int64_t)(s->p / 2) * (s->q / 2);
    float *src = j->threads_base + thread * j->thread_floats;
    float *v = src + j->src_floats, *m = v + j->v_floats, *out = m + j->m_floats;
    int first = (int)ch * j->chunk, count = s->n - first < j->chunk ? s->n - first : j->chunk;
    for (int b = 0; b < count; b++) {
        ln_cpu_winograd_to_channels_last(j->x + (first + b) * chw, s->c, s->h, s->w, src,
                                         t->src_h, t->src_w, s->pad_h, s->pad_w);
        input_transform4(t, src, v, j->u16 ? (uint16_t *)v : NULL, j->rows, b * per_image);
    }
    int64_t used = per_image * count;
#ifdef LN_CPU_AVX512BF16
    if (j->u16)
        ln_cpu_winograd_multiply_bf16(36, (const uint16_t *)v, xi_stride16(j->rows, s->c), j->u16,
                                      m, xi_stride(j->rows, s->k), used, s->c, s->k,
                                      LN_WINOGRAD_FETCH_M);
    else
#endif
        for (int xi = 0; xi < 36; xi++) /* the next plane of M fetched, as in bf16 */
            ln_cpu_gemm_tiles((int)used, s->k, s->c, v + xi * xi_stride(j->rows, s->c), s->c, 1,
                              j->u + (int64_t)xi * s->c * s->k, s->k,
                              m + xi * xi_stride(j->rows, s->k), s->k, 0,
                              xi + 1 < 36 ? m + (xi + 1) * xi_stride(j->rows, s->k) : NULL,
                              4 * used * s->k);
    for (int b = 0; b < count; b++) {
        int64_t image = first + b;
        if (j->fused) {
            /* the output plane's space holds the staging (3 x pooled x k <= 16 x tiles x k) */
            output_pooled4(t, m, j->rows, b * per_image, j->bias, out,
                           (int32_t *)out + 2 * pooled * s->k, j->y + image * s->k * pooled,
                           j->winner ? j->winner + image * s->k * pooled : NULL);
        } else {
            output_channels_last4(t, m, j->rows, b * per_image, out);
            ln_cpu_winograd_from_channels_last(out, s->k, 4 * t->tq,
                                               j->y + image * s->k * s->p * s->q, s->p, s->q,
                                               j->bias);
        }
    }
}

static int64_t round16(int64_t floats)
{
    return (floats + 15) & ~(int64_t)15;
}

/* The words of U paired by rows in bf16: 36 planes of c / 2 rows of k pairs. */
static int64_t paired_words(int k, int c)
{
    return round16(36 * (int64_t)(c / 2) * k);
}

/* The slot holding U for the weights w [k, c, 3, 3]: a slot of the context
 * whose copy of the weights is w bit for bit (an inference pass keeps its
 * weights; a training step changes them and the comparison stops at the
 * first difference), else the least recently used (or an empty) slot, with
 * U transformed on the pool's threads. The pairs in bf16 are made on the
 * first bf16 call and dropped with U, so float32 and bf16 calls on the same
 * weights each get their own products' U. Slots beyond
 * LN_CPU_FILTER_CACHE_BYTES in all are freed, least recently used first.
 * NULL (error set) when out of memory. */
static ln_cpu_filter_slot *filter_slot(ln_cpu_context *ctx, int threads, const float *w, int k,
                                       int c, int64_t u_floats)
{
    int64_t w_floats = round16((int64_t)k * c * 9);
    size_t need = (size_t)(w_floats + u_floats + paired_words(k, c));
    size_t w_bytes = sizeof(float) * (size_t)k * (size_t)c * 9;
    ln_cpu_filter_slot *slots = ctx->filter_slots, *victim = &slots[0];
    for (int i = 0; i < LN_CPU_FILTER_SLOTS; i++) {
        if (slots[i].k == k && slots[i].c == c && memcmp(slots[i].data, w, w_bytes) == 0) {
            slots[i].last_use = ++ctx->filter_clock;
            return &slots[i];
        }
        if (slots[i].last_use < victim->last_use)
            victim = &slots[i];
    }
    victim->k = 0; /* invalid until U is complete */
    victim->paired = 0;
    victim->last_use = 0;
    /* within the total: drop the others, least recently used first */
    for (;;) {
        size_t total = need * sizeof(float);
        ln_cpu_filter_slot *oldest = NULL;
        for (int i = 0; i < LN_CPU_FILTER_SLOTS; i++)
            if (&slots[i] != victim && slots[i].data) {
                total += slots[i].floats * sizeof(float);
                if (!oldest || slots[i].last_use < oldest->last_use)
                    oldest = &slots[i];
            }
        if (total <= LN_CPU_FILTER_CACHE_BYTES || !oldest)
            break;
        free(oldest->data);
        memset(oldest, 0, sizeof *oldest);
    }
    if (need > victim->floats) {
        free(victim->data);
        victim->floats = 0;
        victim->data = aligned_alloc(64, ((need * sizeof(float)) + 63) & ~(size_t)63);
        if (!victim->data) {
            ln_error(LN_ENOMEM, "out of host memory for Winograd's filters (%zu bytes)",
                     need * sizeof(float));
            return NULL;
        }
        victim->floats = need;
    }
    filter_job4 fj = {w, k, c, victim->data + w_floats};
    ln_cpu_parallel(ctx, threads, (k + 15) / 16, filter_task4, &fj);
    memcpy(victim->data, w, w_bytes);
    victim->k = k;
    victim->c = c;
    victim->last_use = ++ctx->filter_clock;
    return victim;
}

/* U for the weights w (see filter_slot). */
static const float *filter_transform_cached(ln_cpu_context *ctx, int threads, const float *w,
                                            int k, int c, int64_t u_floats)
{
    ln_cpu_filter_slot *slot = filter_slot(ctx, threads, w, k, c, u_floats);
    return slot ? slot->data + round16((int64_t)k * c * 9) : NULL;
}

/* U paired by rows in bf16 for the weights w: the cache's (see above),
 * paired on the first bf16 call after U was made. */
static const uint32_t *paired_filters_cached(ln_cpu_context *ctx, int threads, const float *w,
                                             int k, int c, int64_t u_floats)
{
    ln_cpu_filter_slot *slot = filter_slot(ctx, threads, w, k, c, u_floats);
    if (!slot)
        return NULL;
    const float *u = slot->data + round16((int64_t)k * c * 9);
    uint32_t *u16 = (uint32_t *)(u + u_floats);
#ifdef LN_CPU_AVX512BF16
    if (!slot->paired) {
        ln_cpu_winograd_pair_filters(ctx, threads, u, u16, 36, c, k);
        slot->paired = 1;
    }
    return u16;
#else
    /* no bf16 products at this level (ln_cpu_winograd_bf16() is 0): never asked */
    (void)u16;
    ln_error(LN_ENOTSUP, "Winograd F(4x4): bf16 filters asked for below the avx512bf16 level");
    return NULL;
#endif
}

int ln_cpu_winograd4_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                             const float *w, const float *bias, float *y, uint8_t *winner,
                             int fused)
{
    tiling4 t = make_tiling4(s);
    int64_t per_image = (int64_t)t.tp * t.tq;
    int64_t chunk64 = TILES_PER_CHUNK / per_image;
    int chunk = chunk64 < 1 ? 1 : chunk64 > s->n ? s->n : (int)chunk64;
    int chunks = (s->n + chunk - 1) / chunk;
    int64_t rows = per_image * chunk;
    int64_t u_floats = round16(36 * (int64_t)s->c * s->k);
    int64_t src_floats = round16((int64_t)t.src_h * t.src_w * s->c);
    int64_t v_floats = 36 * xi_stride(rows, s->c), m_floats = 36 * xi_stride(rows, s->k);
    int64_t out_floats = round16((int64_t)4 * t.tp * 4 * t.tq * s->k);
    int64_t thread_floats = src_floats + v_floats + m_floats + out_floats;
    int threads = ln_cpu_threads_for_macs(ctx, (int64_t)s->n * per_image * 36 * s->c * s->k);
    if (threads > chunks)
        threads = chunks;
    float *base = ln_cpu_scratch(ctx, (size_t)(threads * thread_floats) * sizeof(float));
    if (!base)
        return LN_ENOMEM;
    const float *u = NULL;
    const uint32_t *u16 = NULL;
    if (ln_cpu_winograd_bf16())
        u16 = paired_filters_cached(ctx, threads, w, s->k, s->c, u_floats);
    else
        u = filter_transform_cached(ctx, threads, w, s->k, s->c, u_floats);
    if (!u && !u16)
        return LN_ENOMEM;
    forward_job4 job = {s, &t, x, u, bias, u16, y, winner, fused, base, thread_floats, src_floats,
                        v_floats, m_floats, chunk, rows};
    ln_cpu_parallel(ctx, threads, chunks, forward_chunk4, &job);
    return LN_OK;
}

#endif
