/* 3x3 convolutions with stride 1 by Winograd's minimal filtering F(2x2, 3x3)
 * (Lavin and Gray, 2016): each 2x2 block of outputs comes from a 4x4 block
 * of inputs through 16 products instead of 36, so the arithmetic of the
 * three passes of a convolution drops 2.25 times.
 *
 * For a 4x4 input tile d, a 3x3 filter g and the 2x2 output tile y:
 *     y = A^T [(G g G^T) . (B^T d B)] A          (. elementwise)
 *     B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *     G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *     A^T = [1 1 1 0; 0 1 -1 -1]
 * Over a batch the elementwise products become 16 matrix products, one per
 * position xi of the 4x4 transformed tile, across channels:
 *     M[xi] (tiles x out channels) = V[xi] (tiles x in channels) U[xi] (in x out)
 * Backward data is the same forward convolution of the output gradient
 * (padded by 2 - pad) with the filters flipped and their channels swapped.
 * Backward filter follows from y being linear in U:
 *     dU[xi] += V[xi]^T dM[xi],  dM = A dY A^T per tile,  dg = G^T dU G.
 *
 * Layout: tensors are NCHW; each image is first copied channels-last into a
 * zero-padded plane, so the transforms work on eight channels per AVX
 * register with plain loads, and outputs are written channels-last and
 * copied back. The 16 products are small (depth 64 or 128 here): OpenBLAS
 * would pack both operands and clear C on every call, which cost more than
 * its kernel gains; ln_cpu_gemm_tiles (small_gemm.c) reads them in place
 * (measured interleaved with OpenBLAS: forward 22-25% faster, backward
 * 4-12%). Images are processed in chunks of 49-98 tiles (the products' row
 * count); chunks are handed out dynamically, and the filter gradient is
 * summed per fixed group of images (ln_cpu_gradient_groups, within the
 * workspace budget) and the groups added in order, as conv.c does, so
 * results do not depend on the thread count. Applies to 3x3, stride 1,
 * padding up to 2, channel counts that are multiples of 8
 * (ln_cpu_winograd_applies). */
#include "cpu.h"

#ifdef LN_CPU_AVX2
#include <string.h>

#include "../precision.h"
#include "../status.h"
#include "simd.h"

/* bf16 products (lunet.autocast("bfloat16"), bf16.c) at the avx512bf16
 * level: forward and input gradient store V in bf16 as the input transform
 * makes it and pair U's rows once per call; the filter gradient's products
 * (depth: the tiles) take V and dM paired tile by tile, as their transforms
 * write them (input_pairs, gradient_pairs). */
int ln_cpu_winograd_bf16(void)
{
#ifdef LN_CPU_AVX512BF16
    return ln_precision_get() == LN_PRECISION_BFLOAT16;
#else
    return 0;
#endif
}

/* Eight transformed values to V: float32, or bf16 when v16 is given. */
static inline void store_v(float *v, uint16_t *v16, int64_t at, __m256 x)
{
#ifdef LN_CPU_AVX512BF16
    if (v16) {
        _mm_storeu_si128((__m128i *)(v16 + at), (__m128i)_mm256_cvtneps_pbh(x));
        return;
    }
#else
    (void)v16;
#endif
    _mm256_storeu_ps(v + at, x);
}

/* Tiles per chunk of images (the products' row count), measured (bench/NOTES.md
 * step 11): the backward pass keeps more per tile in cache, so smaller chunks. */
#define FORWARD_TILES_PER_CHUNK 98
#define BACKWARD_TILES_PER_CHUNK 49

int ln_cpu_winograd_applies(const ln_conv2d_shape *s)
{
    return s->r == 3 && s->s == 3 && s->stride_h == 1 && s->stride_w == 1 && s->pad_h <= 2
           && s->pad_w <= 2 && s->c % 8 == 0 && s->k % 8 == 0 && s->c >= 16 && s->k >= 16
           && s->p >= 1 && s->q >= 1;
}

/* One tiled convolution: input [ci, in_h, in_w] read through padding,
 * output [co, out_h, out_w] covered by tp x tq tiles of 2x2. The input sits
 * channels-last in a zero-padded plane of src_h x src_w positions where tile
 * (i, j) reads rows 2i..2i+3 and columns 2j..2j+3. */
typedef struct tiling {
    int ci, co;
    int in_h, in_w, pad_h, pad_w;
    int out_h, out_w;
    int tp, tq;
    int src_h, src_w;
} tiling;

static tiling make_tiling(int ci, int co, int in_h, int in_w, int pad_h, int pad_w)
{
    tiling t = {ci, co, in_h, in_w, pad_h, pad_w, 0, 0, 0, 0, 0, 0};
    t.out_h = in_h + 2 * pad_h - 2;
    t.out_w = in_w + 2 * pad_w - 2;
    t.tp = (t.out_h + 1) / 2;
    t.tq = (t.out_w + 1) / 2;
    t.src_h = 2 * t.tp + 2;
    t.src_w = 2 * t.tq + 2;
    return t;
}

static int64_t tiles_of(const tiling *t)
{
    return (int64_t)t->tp * t->tq;
}

/* Zeros in dst [rows, cols, c] around the h x w block at (top, left): the
 * block itself is written next, so clearing it too would write it twice. */
static void clear_border(float *dst, int c, int h, int w, int rows, int cols, int top, int left)
{
    size_t cell = sizeof(float) * (size_t)c, row_bytes = cell * (size_t)cols;
    int right = cols - left - w, bottom = rows - top - h;
    memset(dst, 0, row_bytes * (size_t)top);
    for (int y = top; y < top + h; y++) {
        float *row = dst + (int64_t)y * cols * c;
        memset(row, 0, cell * (size_t)left);
        memset(row + (int64_t)(left + w) * c, 0, cell * (size_t)right);
    }
    memset(dst + (int64_t)(top + h) * cols * c, 0, row_bytes * (size_t)bottom);
}

/* dst [rows, cols, c] = x [c, h, w] at (top, left), zero elsewhere: 8x8
 * blocks transposed in registers (a row's last, partial block loaded
 * through a mask), eight channels at a time. The eight planes of a group
 * are contiguous, but each is a stream too short for the hardware
 * prefetchers (14 x 14 floats: 12 lines), and x usually comes from memory
 * or L3 (the layer before wrote it): the loads waited on every line. So the
 * first group is fetched up front and each next group over the current
 * one's blocks (block 2's forward 0.96x float32, 0.94x bf16: bench/NOTES.md). */
static void to_channels_last(const float *x, int c, int h, int w, float *dst, int rows, int cols,
                             int top, int left)
{
    clear_border(dst, c, h, w, rows, cols, top, left);
    int64_t group_lines = (8 * (int64_t)h * w * (int64_t)sizeof(float) + 63) / 64;
    int blocks = h * ((w + 7) / 8);
    int per_block = (int)((group_lines + blocks - 1) / blocks);
    for (int64_t l = 0; l < group_lines; l++)
        _mm_prefetch((const char *)x + 64 * l, _MM_HINT_T0);
    for (int c0 = 0; c0 < c; c0 += 8) {
        const char *next = (const char *)(x + (int64_t)(c0 + 8) * h * w);
        int64_t fetched = c0 + 8 < c ? 0 : group_lines;
        for (int y = 0; y < h; y++)
            for (int x0 = 0; x0 < w; x0 += 8) {
                int n = w - x0 < 8 ? w - x0 : 8;
                for (int f = 0; f < per_block && fetched < group_lines; f++, fetched++)
                    _mm_prefetch(next + 64 * fetched, _MM_HINT_T0);
                __m256 r[8];
                for (int i = 0; i < 8; i++) {
                    const float *in = x + ((int64_t)(c0 + i) * h + y) * w + x0;
                    /* masked loads are cheap (only masked stores are slow on AMD) */
                    r[i] = n == 8 ? _mm256_loadu_ps(in) : _mm256_maskload_ps(in, ln_lanes(n));
                }
                ln_transpose8(r);
                float *out = dst + ((int64_t)(y + top) * cols + x0 + left) * c + c0;
                for (int j = 0; j < n; j++)
                    _mm256_storeu_ps(out + (int64_t)j * c, r[j]);
            }
    }
}

/* y [c, h, w] = src [rows, cols, c] (its first h rows and w columns) + bias. */
static void from_channels_last(const float *src, int c, int cols, float *y, int h, int w,
                               const float *bias)
{
    for (int c0 = 0; c0 < c; c0 += 8)
        for (int row = 0; row < h; row++)
            for (int x0 = 0; x0 < w; x0 += 8) {
                int n = w - x0 < 8 ? w - x0 : 8;
                __m256 r[8];
                const float *in = src + ((int64_t)row * cols + x0) * c + c0;
                for (int j = 0; j < 8; j++)
                    r[j] = j < n ? _mm256_loadu_ps(in + (int64_t)j * c) : _mm256_setzero_ps();
                ln_transpose8(r);
                for (int i = 0; i < 8; i++) {
                    __m256 v = bias ? _mm256_add_ps(r[i], _mm256_set1_ps(bias[c0 + i])) : r[i];
                    float *out = y + ((int64_t)(c0 + i) * h + row) * w + x0;
                    if (n == 8) {
                        _mm256_storeu_ps(out, v);
                    } else {
#ifdef LN_CPU_AVX512
                        /* AVX-512's masked stores are fast, unlike vmaskmovps */
                        _mm256_mask_storeu_ps(out, (__mmask8)((1u << n) - 1), v);
#else
                        float part[8];
                        _mm256_storeu_ps(part, v);
                        memcpy(out, part, sizeof(float) * (size_t)n);
#endif
                    }
                }
            }
}

/* The two copies for winograd4.c (F(4x4, 3x3)), which uses the same layout. */
void ln_cpu_winograd_to_channels_last(const float *x, int c, int h, int w, float *dst, int rows,
                                      int cols, int top, int left)
{
    to_channels_last(x, c, h, w, dst, rows, cols, top, left);
}

void ln_cpu_winograd_from_channels_last(const float *src, int c, int cols, float *y, int h,
                                        int w, const float *bias)
{
    from_channels_last(src, c, cols, y, h, w, bias);
}

/* V[xi][t0 + tile][ci] = B^T d B for every tile of one image (src channels-last,
 * padded); each V[xi] has `rows` rows. In bf16 (into v16) when v16 is given. */
static void input_transform(const tiling *t, const float *src, float *v, uint16_t *v16,
                            int64_t rows, int64_t t0)
{
    int ci = t->ci;
    int64_t plane = rows * ci;
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++) {
            const float *base = src + ((int64_t)(2 * i) * t->src_w + 2 * j) * ci;
            int64_t out = (t0 + (int64_t)i * t->tq + j) * ci;
            for (int c = 0; c < ci; c += 8) {
                __m256 d[4][4], b[4][4];
                for (int r = 0; r < 4; r++)
                    for (int s = 0; s < 4; s++)
                        d[r][s] = _mm256_loadu_ps(base + ((int64_t)r * t->src_w + s) * ci + c);
                for (int s = 0; s < 4; s++) {
                    b[0][s] = _mm256_sub_ps(d[0][s], d[2][s]);
                    b[1][s] = _mm256_add_ps(d[1][s], d[2][s]);
                    b[2][s] = _mm256_sub_ps(d[2][s], d[1][s]);
                    b[3][s] = _mm256_sub_ps(d[1][s], d[3][s]);
                }
                for (int r = 0; r < 4; r++) {
                    store_v(v, v16, out + (4 * r + 0) * plane + c, _mm256_sub_ps(b[r][0], b[r][2]));
                    store_v(v, v16, out + (4 * r + 1) * plane + c, _mm256_add_ps(b[r][1], b[r][2]));
                    store_v(v, v16, out + (4 * r + 2) * plane + c, _mm256_sub_ps(b[r][2], b[r][1]));
                    store_v(v, v16, out + (4 * r + 3) * plane + c, _mm256_sub_ps(b[r][1], b[r][3]));
                }
            }
        }
}

/* The 2x2 outputs (top-left, top-right, bottom-left, bottom-right) of tile
 * `tile` for channels c..c+7: A^T m A. */
static inline void output_tile(const float *m, int64_t plane, int co, int64_t tile, int c,
                               __m256 y[4])
{
    const float *base = m + tile * co + c;
    __m256 row0[4], row1[4];
    for (int j = 0; j < 4; j++) {
        __m256 m0 = _mm256_loadu_ps(base + (0 + j) * plane), m1 = _mm256_loadu_ps(base + (4 + j) * plane);
        __m256 m2 = _mm256_loadu_ps(base + (8 + j) * plane), m3 = _mm256_loadu_ps(base + (12 + j) * plane);
        row0[j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
        row1[j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
    }
    y[0] = _mm256_add_ps(_mm256_add_ps(row0[0], row0[1]), row0[2]);
    y[1] = _mm256_sub_ps(_mm256_sub_ps(row0[1], row0[2]), row0[3]);
    y[2] = _mm256_add_ps(_mm256_add_ps(row1[0], row1[1]), row1[2]);
    y[3] = _mm256_sub_ps(_mm256_sub_ps(row1[1], row1[2]), row1[3]);
}

/* One image's outputs channels-last [2 tp, 2 tq, co] from M (its tiles start
 * at t0). */
static void output_channels_last(const tiling *t, const float *m, int64_t rows, int64_t t0,
                                 float *out)
{
    int co = t->co, cols = 2 * t->tq;
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++)
            for (int c = 0; c < co; c += 8) {
                __m256 y[4];
                output_tile(m, rows * co, co, t0 + (int64_t)i * t->tq + j, c, y);
                float *o = out + ((int64_t)(2 * i) * cols + 2 * j) * co + c;
                _mm256_storeu_ps(o, y[0]);
                _mm256_storeu_ps(o + co, y[1]);
                _mm256_storeu_ps(o + (int64_t)cols * co, y[2]);
                _mm256_storeu_ps(o + (int64_t)cols * co + co, y[3]);
            }
}

/* The fused block's epilogue: bias, ReLU and 2x2 max pooling of each tile
 * (a tile is a pooling window), into pooled [co, out_h/2, out_w/2] and its
 * winners. */
static void output_pooled(const tiling *t, const float *m, int64_t rows, int64_t t0,
                          const float *bias, float *pooled, uint8_t *winner)
{
    int co = t->co, ph = t->out_h / 2, pw = t->out_w / 2;
    int64_t plane = (int64_t)ph * pw;
    for (int i = 0; i < ph; i++)
        for (int j = 0; j < pw; j++)
            for (int c = 0; c < co; c += 8) {
                __m256 y[4];
                output_tile(m, rows * co, co, t0 + (int64_t)i * t->tq + j, c, y);
                if (bias) {
                    __m256 b = _mm256_loadu_ps(bias + c);
                    for (int q = 0; q < 4; q++)
                        y[q] = _mm256_add_ps(y[q], b);
                }
                __m256i codes;
                float values[8];
                uint8_t bytes[16];
                _mm256_storeu_ps(values, ln_relu_window_max(y, &codes));
                _mm_storeu_si128((__m128i *)bytes, ln_codes_to_bytes(codes));
                int64_t at = (int64_t)c * plane + (int64_t)i * pw + j;
                for (int l = 0; l < 8; l++) {
                    pooled[at + l * plane] = values[l];
                    winner[at + l * plane] = bytes[l];
                }
            }
}

/* A g A^T (eight channels) for the 2x2 gradient tile at g (rows `row` floats
 * apart, columns `col`), for gradient_transform and the bf16 pairs. */
static inline void gradient_tile(const float *g, int64_t row, int64_t col, __m256 m[16])
{
    __m256 g00 = _mm256_loadu_ps(g), g01 = _mm256_loadu_ps(g + col);
    __m256 g10 = _mm256_loadu_ps(g + row), g11 = _mm256_loadu_ps(g + row + col);
    __m256 a[4][2] = {{g00, g01},
                      {_mm256_add_ps(g00, g10), _mm256_add_ps(g01, g11)},
                      {_mm256_sub_ps(g00, g10), _mm256_sub_ps(g01, g11)},
                      {_mm256_sub_ps(_mm256_setzero_ps(), g10),
                       _mm256_sub_ps(_mm256_setzero_ps(), g11)}};
    for (int r = 0; r < 4; r++) {
        m[4 * r + 0] = a[r][0];
        m[4 * r + 1] = _mm256_add_ps(a[r][0], a[r][1]);
        m[4 * r + 2] = _mm256_sub_ps(a[r][0], a[r][1]);
        m[4 * r + 3] = _mm256_sub_ps(_mm256_setzero_ps(), a[r][1]);
    }
}

/* dM[xi][t0 + tile][k] = A g A^T for the 2x2 gradient tile g of every tile
 * of one image; dy channels-last [.., cols, k] with zeros beyond the
 * output. */
static void gradient_transform(const tiling *t, const float *dy, int cols, float *dm,
                               int64_t rows, int64_t t0)
{
    int k = t->co;
    int64_t plane = rows * k;
    for (int i = 0; i < t->tp; i++)
        for (int j = 0; j < t->tq; j++) {
            const float *base = dy + ((int64_t)(2 * i) * cols + 2 * j) * k;
            float *out = dm + (t0 + (int64_t)i * t->tq + j) * k;
            for (int c = 0; c < k; c += 8) {
                __m256 m[16];
                gradient_tile(base + c, (int64_t)cols * k, k, m);
                for (int xi = 0; xi < 16; xi++)
                    _mm256_storeu_ps(out + xi * plane + c, m[xi]);
            }
        }
}

#ifdef LN_CPU_AVX512BF16
/* The filter gradient's bf16 operands, "paired tile by tile": per xi,
 * (rows + 1) / 2 rows of 32-bit words, one per channel, word p holding
 * tile 2p's value (low half) and tile 2p + 1's (high half); a chunk's odd
 * last tile has a zero partner. Written by the transforms below, two tiles
 * at a time where both halves are the current image's, so there is neither
 * a float32 copy nor a pairing pass (which this replaced: the same values,
 * rounded by the same instruction, in the same places). */

/* Eight channels of tiles 2p (a) and 2p + 1 (b) to their words. */
static inline void store_pair(uint32_t *w, __m256 a, __m256 b)
{
    /* cvtne2ps puts its second operand in the low half: a0..a7 b0..b7 */
    __m256i both = (__m256i)_mm256_cvtne2ps_pbh(b, a);
    const __m256i order = _mm256_set_epi16(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
    _mm256_storeu_si256((__m256i *)w, _mm256_permutexvar_epi16(order, both));
}

/* Eight channels of one tile whose partner is not at hand: an even tile
 * writes whole words with a zero high half (the odd tile after it, of the
 * next image, overwrites that half; after a chunk's last tile it stays
 * zero), an odd one its high halves only. */
static inline void store_half(uint32_t *w, int odd, __m256 x)
{
    __m256i words = _mm256_cvtepu16_epi32((__m128i)_mm256_cvtneps_pbh(x));
    if (odd)
        _mm256_mask_storeu_epi16(w, 0xAAAA, _mm256_slli_epi32(words, 16));
    else
        _mm256_storeu_si256((__m256i *)w, words);
}

/* Row r of B^T d B (eight channels) for the 4x4 tile whose row 0 starts at
 * d (rows `row` floats apart, columns `col`): input_transform's float32
 * operations, from the two rows of d that B^T's row r combines. */
static inline void input_row(const float *d, int64_t row, int64_t col, int r, __m256 v[4])
{
    static const int first[4] = {0, 1, 2, 1}, second[4] = {2, 2, 1, 3};
    __m256 b[4];
    for (int s = 0; s < 4; s++) {
        __m256 x = _mm256_loadu_ps(d + first[r] * row + s * col);
        __m256 y = _mm256_loadu_ps(d + second[r] * row + s * col);
        b[s] = r == 1 ? _mm256_add_ps(x, y) : _mm256_sub_ps(x, y);
    }
    v[0] = _mm256_sub_ps(b[0], b[2]);
    v[1] = _mm256_add_ps(b[1], b[2]);
    v[2] = _mm256_sub_ps(b[2], b[1]);
    v[3] = _mm256_sub_ps(b[1], b[3]);
}

/* input_transform into pairs (vp: per xi, (rows + 1) / 2 rows of ci words). */
static void input_pairs(const tiling *t, const float *src, uint32_t *vp, int64_t rows, int64_t t0)
{
    int ci = t->ci;
    int64_t plane = (rows + 1) / 2 * ci, count = tiles_of(t);
    for (int64_t at = 0; at < count;) {
        int64_t tile = t0 + at;
        int both = !(tile & 1) && at + 1 < count; /* the partner is this image's next tile */
        const float *a = src + ((int64_t)(2 * (at / t->tq)) * t->src_w + 2 * (at % t->tq)) * ci;
        const float *b = src + ((int64_t)(2 * ((at + 1) / t->tq)) * t->src_w + 2 * ((at + 1) % t->tq)) * ci;
        uint32_t *out = vp + (tile >> 1) * ci;
        for (int c = 0; c < ci; c += 8)
            for (int r = 0; r < 4; r++) {
                __m256 va[4], vb[4];
                input_row(a + c, (int64_t)t->src_w * ci, ci, r, va);
                if (both)
                    input_row(b + c, (int64_t)t->src_w * ci, ci, r, vb);
                for (int s = 0; s < 4; s++) {
                    uint32_t *w = out + (4 * r + s) * plane + c;
                    if (both)
                        store_pair(w, va[s], vb[s]);
                    else
                        store_half(w, (int)(tile & 1), va[s]);
                }
            }
        at += both ? 2 : 1;
    }
}


/* gradient_transform into pairs (mp: per xi, (rows + 1) / 2 rows of k words). */
static void gradient_pairs(const tiling *t, const float *dy, int cols, uint32_t *mp, int64_t rows,
                           int64_t t0)
{
    int k = t->co;
    int64_t plane = (rows + 1) / 2 * k, count = tiles_of(t);
    for (int64_t at = 0; at < count;) {
        int64_t tile = t0 + at;
        int both = !(tile & 1) && at + 1 < count;
        const float *a = dy + ((int64_t)(2 * (at / t->tq)) * cols + 2 * (at % t->tq)) * k;
        const float *b = dy + ((int64_t)(2 * ((at + 1) / t->tq)) * cols + 2 * ((at + 1) % t->tq)) * k;
        uint32_t *out = mp + (tile >> 1) * k;
        for (int c = 0; c < k; c += 8) {
            __m256 ma[16], mb[16];
            gradient_tile(a + c, (int64_t)cols * k, k, ma);
            if (both) {
                gradient_tile(b + c, (int64_t)cols * k, k, mb);
                for (int xi = 0; xi < 16; xi++)
                    store_pair(out + xi * plane + c, ma[xi], mb[xi]);
            } else
                for (int xi = 0; xi < 16; xi++)
                    store_half(out + xi * plane + c, (int)(tile & 1), ma[xi]);
        }
        at += both ? 2 : 1;
    }
}
#endif

/* U[xi][ci][co] = G g G^T of the filters of output channels [k0, k1), in
 * double then rounded. Forward: ci = C, co = K, g = w[k][c]. For backward
 * data (flip): ci = K, co = C, g = w[k][c] turned by 180 degrees. */
static void filter_transform_rows(const float *w, int k_count, int c_count, int flip, int k0,
                                  int k1, float *u)
{
    int64_t plane = (int64_t)k_count * c_count;
    for (int k = k0; k < k1; k++) {
        int c = 0;
        /* flipped: U's rows run along c, so four filters go side by side in
         * a register through the same double operations as the loop below */
        for (; flip && c + 4 <= c_count; c += 4) {
            double lanes[9][4];
            for (int l = 0; l < 4; l++)
                for (int e = 0; e < 9; e++)
                    lanes[e][l] = w[((int64_t)k * c_count + c + l) * 9 + 8 - e];
            __m256d half = _mm256_set1_pd(0.5), t[4][3];
            for (int col = 0; col < 3; col++) {
                __m256d g0 = _mm256_loadu_pd(lanes[col]), g1 = _mm256_loadu_pd(lanes[3 + col]),
                        g2 = _mm256_loadu_pd(lanes[6 + col]);
                t[0][col] = g0;
                t[1][col] = _mm256_mul_pd(_mm256_add_pd(_mm256_add_pd(g0, g1), g2), half);
                t[2][col] = _mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(g0, g1), g2), half);
                t[3][col] = g2;
            }
            float *out = u + (int64_t)k * c_count + c;
            for (int r = 0; r < 4; r++) {
                __m256d a = t[r][0], b = t[r][1], d = t[r][2];
                _mm_storeu_ps(out + (4 * r + 0) * plane, _mm256_cvtpd_ps(a));
                _mm_storeu_ps(out + (4 * r + 1) * plane,
                              _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_add_pd(_mm256_add_pd(a, b), d), half)));
                _mm_storeu_ps(out + (4 * r + 2) * plane,
                              _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_add_pd(_mm256_sub_pd(a, b), d), half)));
                _mm_storeu_ps(out + (4 * r + 3) * plane, _mm256_cvtpd_ps(d));
            }
        }
        for (; c < c_count; c++) {
            const float *g = w + ((int64_t)k * c_count + c) * 9;
            double gg[3][3], t[4][3];
            for (int r = 0; r < 3; r++)
                for (int s = 0; s < 3; s++)
                    gg[r][s] = flip ? g[(2 - r) * 3 + 2 - s] : g[r * 3 + s];
            for (int s = 0; s < 3; s++) {
                t[0][s] = gg[0][s];
                t[1][s] = (gg[0][s] + gg[1][s] + gg[2][s]) / 2;
                t[2][s] = (gg[0][s] - gg[1][s] + gg[2][s]) / 2;
                t[3][s] = gg[2][s];
            }
            int64_t at = flip ? (int64_t)k * c_count + c : (int64_t)c * k_count + k;
            for (int r = 0; r < 4; r++) {
                u[(4 * r + 0) * plane + at] = (float)t[r][0];
                u[(4 * r + 1) * plane + at] = (float)((t[r][0] + t[r][1] + t[r][2]) / 2);
                u[(4 * r + 2) * plane + at] = (float)((t[r][0] - t[r][1] + t[r][2]) / 2);
                u[(4 * r + 3) * plane + at] = (float)t[r][2];
            }
        }
    }
}

typedef struct filter_transform_job {
    const float *w;
    int k_count, c_count, flip;
    float *u;
} filter_transform_job;

/* Output channels 16 at a time */
static void filter_transform_task(void *p, int64_t item, int thread)
{
    (void)thread;
    const filter_transform_job *j = p;
    int k0 = (int)item * 16, k1 = k0 + 16 < j->k_count ? k0 + 16 : j->k_count;
    filter_transform_rows(j->w, j->k_count, j->c_count, j->flip, k0, k1, j->u);
}

/* U of every filter (see filter_transform_rows) on `threads` of the pool:
 * each backward step of a training loop transforms its changed weights. */
static void filter_transform(ln_cpu_context *ctx, int threads, const float *w, int k_count,
                             int c_count, int flip, float *u)
{
    filter_transform_job job = {w, k_count, c_count, flip, u};
    ln_cpu_parallel(ctx, threads, (k_count + 15) / 16, filter_transform_task, &job);
}

typedef struct filter_job {
    const float *du;
    int k_count, c_count;
    float *dw;
    int accumulate;
} filter_job;

/* dw[k][c] (+)= G^T dU G for the filters of input channel c. */
static void filter_back_transform(void *p, int64_t c, int thread)
{
    (void)thread;
    const filter_job *j = p;
    int64_t plane = (int64_t)j->k_count * j->c_count;
    for (int k = 0; k < j->k_count; k++) {
        double d[4][4], t[3][4];
        for (int xi = 0; xi < 16; xi++)
            d[xi / 4][xi % 4] = j->du[xi * plane + c * j->k_count + k];
        for (int col = 0; col < 4; col++) {
            t[0][col] = d[0][col] + (d[1][col] + d[2][col]) / 2;
            t[1][col] = (d[1][col] - d[2][col]) / 2;
            t[2][col] = (d[1][col] + d[2][col]) / 2 + d[3][col];
        }
        float *out = j->dw + ((int64_t)k * j->c_count + c) * 9;
        for (int r = 0; r < 3; r++) {
            double v[3] = {t[r][0] + (t[r][1] + t[r][2]) / 2, (t[r][1] - t[r][2]) / 2,
                           (t[r][1] + t[r][2]) / 2 + t[r][3]};
            for (int s = 0; s < 3; s++)
                out[r * 3 + s] = (float)((j->accumulate ? out[r * 3 + s] : 0.0) + v[s]);
        }
    }
}

/* dw[k][c] (+)= G^T dU G, where dU = the sum of the groups' dU[xi][c][k],
 * added in group order into the first group's. */
static void filter_gradient(ln_cpu_context *ctx, int threads, float *du, int groups,
                            int64_t group_stride, int k_count, int c_count, float *dw,
                            int accumulate)
{
    int64_t plane = (int64_t)k_count * c_count;
    ln_cpu_sum_groups(ctx, du, du + group_stride, groups - 1, group_stride, 16 * plane, 1);
    filter_job job = {du, k_count, c_count, dw, accumulate};
    ln_cpu_parallel(ctx, threads, c_count, filter_back_transform, &job);
}

/* The 16 products M[xi] = V[xi] U[xi] of a chunk, over its first `used`
 * rows (a last, shorter chunk leaves the rest of each V[xi] unfilled);
 * fetch: LN_WINOGRAD_FETCH_U (U's next plane fetched while a plane's
 * products run, as in bf16) or LN_WINOGRAD_FETCH_NONE. */
static void multiply(const float *v, const float *u, float *m, int64_t used, int64_t rows, int ci,
                     int co, int fetch)
{
    int64_t plane = (int64_t)ci * co;
    for (int xi = 0; xi < 16; xi++)
        ln_cpu_gemm_tiles((int)used, co, ci, v + xi * rows * ci, ci, 1, u + xi * plane, co,
                          m + xi * rows * co, co, 0,
                          fetch == LN_WINOGRAD_FETCH_U && xi + 1 < 16 ? u + (xi + 1) * plane : NULL,
                          4 * plane);
}

#ifdef LN_CPU_AVX512BF16
void ln_cpu_winograd_multiply_bf16(int planes, const uint16_t *v16, int64_t v_plane,
                                   const uint32_t *u16, float *m, int64_t m_plane, int64_t used,
                                   int ci, int co, int fetch)
{
    /* the next plane's U or M fetched while a plane's tiles run (block 2's
     * input gradient: U, 0.95x the time; F(4x4)'s forward: M, 0.94-0.97x,
     * where U made it 1.01x) */
    int64_t u_plane = (int64_t)(ci / 2) * co;
    for (int xi = 0; xi < planes; xi++) {
        const void *next = NULL;
        int64_t bytes = 0;
        if (xi + 1 < planes && fetch == LN_WINOGRAD_FETCH_U) {
            next = u16 + (xi + 1) * u_plane;
            bytes = 4 * u_plane;
        } else if (xi + 1 < planes && fetch == LN_WINOGRAD_FETCH_M) {
            next = m + (xi + 1) * m_plane;
            bytes = 4 * used * co;
        }
        ln_cpu_gemm_tiles_bf16((int)used, co, ci / 2, (const uint32_t *)(v16 + xi * v_plane),
                               ci / 2, 1, u16 + xi * u_plane, co, m + xi * m_plane, co, 0, next,
                               bytes);
    }
}

typedef struct pair_job {
    const float *u;
    uint32_t *u16;
    int ci, co;
} pair_job;

static void pair_task(void *p, int64_t xi, int thread)
{
    (void)thread;
    const pair_job *j = p;
    ln_cpu_bf16_pair_rows(j->u16 + xi * (j->ci / 2) * j->co, j->u + xi * j->ci * j->co, j->ci,
                          j->co, j->co);
}

void ln_cpu_winograd_pair_filters(ln_cpu_context *ctx, int threads, const float *u, uint32_t *u16,
                                  int planes, int ci, int co)
{
    pair_job job = {u, u16, ci, co};
    ln_cpu_parallel(ctx, threads, planes, pair_task, &job);
}
#endif

/* The same with V in bf16 and U paired by rows (u16: per xi, ci / 2 rows of
 * co pairs). */
static void multiply_bf16(const uint16_t *v16, const uint32_t *u16, float *m, int64_t used,
                          int64_t rows, int ci, int co, int fetch)
{
#ifdef LN_CPU_AVX512BF16
    ln_cpu_winograd_multiply_bf16(16, v16, rows * ci, u16, m, rows * co, used, ci, co, fetch);
#else
    (void)v16, (void)u16, (void)m, (void)used, (void)rows, (void)ci, (void)co, (void)fetch;
#endif
}

/* dU[xi] (+)= V[xi]^T dM[xi] over `used` tiles in bf16, V and dM paired
 * tile by tile (vp, mp: per xi, (rows + 1) / 2 rows of ci and co words, as
 * input_pairs and gradient_pairs write them): V^T read down its pairs. */
static void filter_products_bf16(const uint32_t *vp, const uint32_t *mp, int64_t used,
                                 int64_t rows, int ci, int co, float *du, int accumulate)
{
#ifdef LN_CPU_AVX512BF16
    int64_t half = (rows + 1) / 2, pairs = (used + 1) / 2, plane = (int64_t)ci * co;
    /* dU's next plane fetched while a plane's tiles run: the group's dU
     * (512 KB in block 2) leaves L2 while the chunk's transforms run */
    for (int xi = 0; xi < 16; xi++)
        ln_cpu_gemm_tiles_bf16(ci, co, (int)pairs, vp + xi * half * ci, 1, ci, mp + xi * half * co,
                               co, du + xi * plane, co, accumulate,
                               xi + 1 < 16 ? du + (xi + 1) * plane : NULL, 4 * plane);
#else
    (void)vp, (void)mp, (void)used, (void)rows, (void)ci, (void)co, (void)du, (void)accumulate;
#endif
}

/* U (16 planes [ci, co], float32) paired by rows for multiply_bf16. */
static void pair_filters(ln_cpu_context *ctx, int threads, const float *u, uint32_t *u16, int ci,
                         int co)
{
#ifdef LN_CPU_AVX512BF16
    ln_cpu_winograd_pair_filters(ctx, threads, u, u16, 16, ci, co);
#else
    (void)ctx, (void)threads, (void)u, (void)u16, (void)ci, (void)co;
#endif
}

static int images_per_chunk(int64_t target_tiles, int64_t tiles_per_image, int n)
{
    int64_t chunk = target_tiles / (tiles_per_image > 0 ? tiles_per_image : 1);
    if (chunk < 1)
        chunk = 1;
    return chunk < n ? (int)chunk : n;
}

static int64_t round16(int64_t floats)
{
    return (floats + 15) & ~(int64_t)15;
}

typedef struct forward_job {
    const ln_conv2d_shape *s;
    const tiling *t;
    const float *x, *u, *bias;
    const uint32_t *u16;       /* U paired by rows, in bf16 (NULL: float32 products) */
    float *y;
    uint8_t *winner;
    float *threads_base;       /* per thread: the padded plane, V, M, an output plane */
    int64_t thread_floats, src_floats, v_floats, m_floats;
    int chunk;
    int64_t rows;              /* tiles per chunk: the row count of each V[xi] and M[xi] */
} forward_job;

static void forward_chunk(void *p, int64_t ch, int thread)
{
    const forward_job *j = p;
    const ln_conv2d_shape *s = j->s;
    const tiling *t = j->t;
    int64_t per_image = tiles_of(t), chw = (int64_t)s->c * s->h * s->w;
    int64_t pooled = (int64_t)(s->p / 2) * (s->q / 2);
    float *src = j->threads_base + thread * j->thread_floats;
    float *v = src + j->src_floats, *m = v + j->v_floats, *out = m + j->m_floats;
    int first = (int)ch * j->chunk, count = s->n - first < j->chunk ? s->n - first : j->chunk;
    for (int b = 0; b < count; b++) {
        to_channels_last(j->x + (first + b) * chw, s->c, s->h, s->w, src, t->src_h, t->src_w,
                         s->pad_h, s->pad_w);
        input_transform(t, src, v, j->u16 ? (uint16_t *)v : NULL, j->rows, b * per_image);
    }
    if (j->u16)
        multiply_bf16((const uint16_t *)v, j->u16, m, per_image * count, j->rows, s->c, s->k,
                      LN_WINOGRAD_FETCH_NONE);
    else
        multiply(v, j->u, m, per_image * count, j->rows, s->c, s->k, LN_WINOGRAD_FETCH_NONE);
    for (int b = 0; b < count; b++) {
        int64_t image = first + b;
        if (j->winner) {
            output_pooled(t, m, j->rows, b * per_image, j->bias, j->y + image * s->k * pooled,
                          j->winner + image * s->k * pooled);
        } else {
            output_channels_last(t, m, j->rows, b * per_image, out);
            from_channels_last(out, s->k, 2 * t->tq, j->y + image * s->k * s->p * s->q, s->p,
                               s->q, j->bias);
        }
    }
}

int ln_cpu_winograd_forward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                            const float *w, const float *bias, float *y, uint8_t *winner)
{
    tiling t = make_tiling(s->c, s->k, s->h, s->w, s->pad_h, s->pad_w);
    int64_t per_image = tiles_of(&t);
    int chunk = images_per_chunk(FORWARD_TILES_PER_CHUNK, per_image, s->n);
    int chunks = (s->n + chunk - 1) / chunk;
    int64_t rows = per_image * chunk;
    int64_t u_floats = round16(16 * (int64_t)s->c * s->k);
    int64_t src_floats = round16((int64_t)t.src_h * t.src_w * s->c);
    int64_t v_floats = round16(16 * rows * s->c), m_floats = round16(16 * rows * s->k);
    int64_t out_floats = round16((int64_t)2 * t.tp * 2 * t.tq * s->k);
    int64_t thread_floats = src_floats + v_floats + m_floats + out_floats;
    int threads = ln_cpu_threads_for_macs(ctx, (int64_t)s->n * per_image * 16 * s->c * s->k);
    if (threads > chunks)
        threads = chunks;
    int bf16 = ln_cpu_winograd_bf16();
    int64_t u16_floats = bf16 ? round16(8 * (int64_t)s->c * s->k) : 0; /* 16 ci co bf16 */
    float *u = ln_cpu_scratch(ctx, (size_t)(u_floats + u16_floats + threads * thread_floats)
                                       * sizeof(float));
    if (!u)
        return LN_ENOMEM;
    filter_transform(ctx, threads, w, s->k, s->c, 0, u);
    uint32_t *u16 = bf16 ? (uint32_t *)(u + u_floats) : NULL;
    if (bf16)
        pair_filters(ctx, threads, u, u16, s->c, s->k);
    forward_job job = {s, &t, x, u, bias, u16, y, winner, u + u_floats + u16_floats,
                       thread_floats, src_floats, v_floats, m_floats, chunk, rows};
    ln_cpu_parallel(ctx, threads, chunks, forward_chunk, &job);
    return LN_OK;
}

/* The output gradient of one image channels-last [rows, cols, k] at (top,
 * left), zero elsewhere: dy [k, p, q], or for the fused block the pooled
 * gradient [k, p/2, q/2] put at its winners. Returns nothing; adds the
 * image's gradient sums per channel to bias_sum when not NULL. `pooled_t`:
 * room for the pooled gradient and its winners channels-last (pooled_room). */
static int64_t pooled_room(const ln_conv2d_shape *s)
{
    int64_t cells = (int64_t)(s->p / 2) * (s->q / 2) * s->k;
    return round16(cells) + round16((cells + 3) / 4);
}

static void gradient_channels_last(const ln_conv2d_shape *s, const float *dy,
                                   const uint8_t *winner, float *dst, int rows, int cols, int top,
                                   int left, double *bias_sum, float *pooled_t)
{
    int k_count = s->k;
    if (!winner) {
        to_channels_last(dy, k_count, s->p, s->q, dst, rows, cols, top, left);
        if (bias_sum)
            for (int k = 0; k < k_count; k++)
                bias_sum[k] += ln_cpu_sum(dy + (int64_t)k * s->p * s->q, (int64_t)s->p * s->q);
        return;
    }
    /* Unpooling, channels-last: each window's four places written whole
     * (the winner's gradient or zero) for all channels at once, so no
     * plane-wide clearing and no store per channel and window (the scalar
     * scatter this replaced was ~9% of the fused block's backward). */
    int ph = s->p / 2, pw = s->q / 2;
    int64_t cells = (int64_t)ph * pw;
    float *dyt = pooled_t;
    uint8_t *wt = (uint8_t *)(pooled_t + round16(cells * k_count));
    ln_transpose(dy, cells, dyt, k_count, k_count, cells);
    for (int k = 0; k < k_count; k++)
        for (int64_t at = 0; at < cells; at++)
            wt[at * k_count + k] = winner[k * cells + at];
    size_t row_bytes = sizeof(float) * (size_t)cols * (size_t)k_count;
    /* zero outside the windows: the rows above and below, then each
     * window row's columns left and right of them */
    memset(dst, 0, row_bytes * (size_t)top);
    memset(dst + (int64_t)(top + 2 * ph) * cols * k_count, 0, row_bytes * (size_t)(rows - top - 2 * ph));
    for (int r = top; r < top + 2 * ph; r++) {
        float *row = dst + (int64_t)r * cols * k_count;
        memset(row, 0, sizeof(float) * (size_t)left * (size_t)k_count);
        memset(row + (int64_t)(left + 2 * pw) * k_count, 0,
               sizeof(float) * (size_t)(cols - left - 2 * pw) * (size_t)k_count);
    }
    for (int i = 0; i < ph; i++)
        for (int j = 0; j < pw; j++) {
            const float *g = dyt + ((int64_t)i * pw + j) * k_count;
            const uint8_t *code = wt + ((int64_t)i * pw + j) * k_count;
            float *out[4];
            for (int q = 0; q < 4; q++)
                out[q] = dst + ((int64_t)(top + 2 * i + q / 2) * cols + left + 2 * j + q % 2) * k_count;
            /* eight channels a step (k is a multiple of 8 here): each place
             * gets the gradient where its code wins, else zero; the bias sums
             * add it where some place won (code < 4), in double, in the same
             * order per channel as a loop over i, then j */
            for (int k = 0; k < k_count; k += 8) {
                __m256 gv = _mm256_loadu_ps(g + k);
                __m256i cv = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(code + k)));
                for (int q = 0; q < 4; q++) {
                    __m256 hit = _mm256_castsi256_ps(_mm256_cmpeq_epi32(cv, _mm256_set1_epi32(q)));
                    _mm256_storeu_ps(out[q] + k, _mm256_and_ps(hit, gv));
                }
                if (bias_sum) {
                    __m256i won = _mm256_cmpgt_epi32(_mm256_set1_epi32(4), cv);
                    /* a channel without a winner adds -0.0: x + -0.0 is x for
                     * every x, so the sums are exactly the winners' */
                    __m256 add = _mm256_blendv_ps(_mm256_set1_ps(-0.0f), gv, _mm256_castsi256_ps(won));
                    _mm256_storeu_pd(bias_sum + k, _mm256_add_pd(_mm256_loadu_pd(bias_sum + k),
                                                                 _mm256_cvtps_pd(_mm256_castps256_ps128(add))));
                    _mm256_storeu_pd(bias_sum + k + 4,
                                     _mm256_add_pd(_mm256_loadu_pd(bias_sum + k + 4),
                                                   _mm256_cvtps_pd(_mm256_extractf128_ps(add, 1))));
                }
            }
        }
}

typedef struct backward_job {
    const ln_conv2d_shape *s;
    const tiling *td, *tf;     /* the data and the filter tilings */
    const float *x, *u, *dy;
    const uint32_t *u16;       /* the flipped U paired by rows, in bf16 (NULL: float32) */
    const uint8_t *winner;
    float *dx, *db;
    float *groups;             /* per group: dU, then bias sums (double) */
    int64_t group_floats, du_floats;
    float *threads_base;       /* per thread: gradient plane, x plane, V and M for data,
                                * the dx plane, V and dM for the filter */
    int64_t thread_floats, grad_plane, x_plane, vd, md, dx_plane, vf, dm, pooled_t;
    int bf16_filter;           /* the filter gradient's products in bf16 (V, dM in pairs) */
    int g_rows, g_cols, count, chunk;
    int64_t rows_d, rows_f;
    int want_data, want_filter;
} backward_job;

static void backward_group(void *p, int64_t g, int thread)
{
    const backward_job *j = p;
    const ln_conv2d_shape *s = j->s;
    const tiling *td = j->td, *tf = j->tf;
    int64_t td_image = tiles_of(td), tf_image = tiles_of(tf), ck = (int64_t)s->c * s->k;
    int64_t chw = (int64_t)s->c * s->h * s->w;
    int64_t dy_image = j->winner ? (int64_t)s->k * (s->p / 2) * (s->q / 2)
                                 : (int64_t)s->k * s->p * s->q;
    float *gplane = j->threads_base + thread * j->thread_floats;
    float *xplane = gplane + j->grad_plane, *v_d = xplane + j->x_plane, *m_d = v_d + j->vd;
    float *dxplane = m_d + j->md, *v_f = dxplane + j->dx_plane, *m_f = v_f + j->vf;
    float *pooled_t = gplane + j->thread_floats - j->pooled_t; /* the thread's last floats */
    float *du = j->groups + g * j->group_floats;
    double *bias_sum = j->want_filter && j->db ? (double *)(du + j->du_floats) : NULL;
    if (bias_sum)
        memset(bias_sum, 0, sizeof(double) * (size_t)s->k);
    int first = (int)(s->n * g / j->count), last = (int)(s->n * (g + 1) / j->count);
    for (int c0 = first; c0 < last; c0 += j->chunk) {
        int count = last - c0 < j->chunk ? last - c0 : j->chunk;
        for (int b = 0; b < count; b++) {
            int64_t image = c0 + b;
            gradient_channels_last(s, j->dy + image * dy_image,
                                   j->winner ? j->winner + image * dy_image : NULL, gplane,
                                   j->g_rows, j->g_cols, 2 - s->pad_h, 2 - s->pad_w, bias_sum,
                                   pooled_t);
            if (j->want_data)
                input_transform(td, gplane, v_d, j->u16 ? (uint16_t *)v_d : NULL, j->rows_d,
                                b * td_image);
            if (j->want_filter) {
                const float *gtile = gplane + ((int64_t)(2 - s->pad_h) * j->g_cols + 2 - s->pad_w) * s->k;
#ifdef LN_CPU_AVX512BF16
                if (j->bf16_filter)
                    gradient_pairs(tf, gtile, j->g_cols, (uint32_t *)m_f, j->rows_f, b * tf_image);
                else
#endif
                    gradient_transform(tf, gtile, j->g_cols, m_f, j->rows_f, b * tf_image);
                to_channels_last(j->x + image * chw, s->c, s->h, s->w, xplane, tf->src_h,
                                 tf->src_w, s->pad_h, s->pad_w);
#ifdef LN_CPU_AVX512BF16
                if (j->bf16_filter)
                    input_pairs(tf, xplane, (uint32_t *)v_f, j->rows_f, b * tf_image);
                else
#endif
                    input_transform(tf, xplane, v_f, NULL, j->rows_f, b * tf_image);
            }
        }
        /* dU[xi] (+)= V[xi]^T dM[xi]: V's rows give six channels side by side */
        if (j->want_filter && j->bf16_filter)
            filter_products_bf16((const uint32_t *)v_f, (const uint32_t *)m_f, tf_image * count,
                                 j->rows_f, s->c, s->k, du, c0 > first);
        else if (j->want_filter) /* the next plane of dU fetched, as in bf16 */
            for (int xi = 0; xi < 16; xi++)
                ln_cpu_gemm_tiles(s->c, s->k, (int)(tf_image * count), v_f + xi * j->rows_f * s->c,
                                  1, s->c, m_f + xi * j->rows_f * s->k, s->k, du + xi * ck, s->k,
                                  c0 > first, xi + 1 < 16 ? du + (xi + 1) * ck : NULL, 4 * ck);
        if (j->want_data) {
            if (j->u16)
                multiply_bf16((const uint16_t *)v_d, j->u16, m_d, td_image * count, j->rows_d,
                              s->k, s->c, LN_WINOGRAD_FETCH_U);
            else
                multiply(v_d, j->u, m_d, td_image * count, j->rows_d, s->k, s->c,
                         LN_WINOGRAD_FETCH_U);
            for (int b = 0; b < count; b++) {
                output_channels_last(td, m_d, j->rows_d, b * td_image, dxplane);
                from_channels_last(dxplane, s->c, 2 * td->tq, j->dx + (c0 + b) * chw, s->h,
                                   s->w, NULL);
            }
        }
    }
}

int ln_cpu_winograd_backward(ln_cpu_context *ctx, const ln_conv2d_shape *s, const float *x,
                             const float *w, const float *dy, const uint8_t *winner, float *dx,
                             float *dw, float *db, int accumulate)
{
    /* data: dx = the forward convolution of dy padded by 2 - pad, flipped filters */
    tiling td = make_tiling(s->k, s->c, s->p, s->q, 2 - s->pad_h, 2 - s->pad_w);
    /* filter: the tiles of dy over the forward tiling of x */
    tiling tf = make_tiling(s->c, s->k, s->h, s->w, s->pad_h, s->pad_w);
    /* one channels-last gradient plane serves both: the data view at its
     * origin, the filter view at (2 - pad_h, 2 - pad_w) */
    int g_rows = td.src_h, g_cols = td.src_w;
    if (2 - s->pad_h + 2 * tf.tp + 2 > g_rows)
        g_rows = 2 - s->pad_h + 2 * tf.tp + 2;
    if (2 - s->pad_w + 2 * tf.tq + 2 > g_cols)
        g_cols = 2 - s->pad_w + 2 * tf.tq + 2;
    td.src_h = g_rows; /* the data view reads the whole plane */
    td.src_w = g_cols;
    int64_t td_image = tiles_of(&td), tf_image = tiles_of(&tf);
    int chunk = images_per_chunk(BACKWARD_TILES_PER_CHUNK, td_image > tf_image ? td_image : tf_image,
                                 s->n);
    int64_t rows_d = td_image * chunk, rows_f = tf_image * chunk;
    int want_data = dx != NULL, want_filter = dw != NULL;

    /* the scratch: flipped filters; per group dU and bias sums; per thread
     * the planes and the transformed tiles */
    int64_t ck = (int64_t)s->c * s->k;
    int bf16 = want_data && ln_cpu_winograd_bf16();
    int64_t u_floats = want_data ? round16(16 * ck) : 0;
    int64_t u16_floats = bf16 ? round16(8 * ck) : 0;
    int64_t du_floats = round16(16 * ck);
    int64_t group_floats = want_filter ? du_floats + 2 * round16(s->k) : 0;
    int64_t grad_plane = round16((int64_t)g_rows * g_cols * s->k);
    int64_t x_plane = want_filter ? round16((int64_t)tf.src_h * tf.src_w * s->c) : 0;
    int64_t vd = want_data ? round16(16 * rows_d * s->k) : 0, md = want_data ? round16(16 * rows_d * s->c) : 0;
    int64_t dx_plane = want_data ? round16((int64_t)2 * td.tp * 2 * td.tq * s->c) : 0;
    /* V and dM for the filter: float32 rows, or for bf16 products
     * (rows_f + 1) / 2 rows of pairs, one 32-bit word per channel */
    int bf16_filter = want_filter && ln_cpu_winograd_bf16();
    int64_t rows_vf = bf16_filter ? (rows_f + 1) / 2 : rows_f;
    int64_t vf = want_filter ? round16(16 * rows_vf * s->c) : 0, dm = want_filter ? round16(16 * rows_vf * s->k) : 0;
    int64_t pooled_t = winner ? pooled_room(s) : 0;
    int64_t thread_floats = grad_plane + x_plane + vd + md + dx_plane + vf + dm + pooled_t;
    int groups = ln_cpu_gradient_groups(ctx, s->n, group_floats);
    int threads = ln_cpu_threads_for_macs(ctx, (int64_t)s->n * tf_image * 16 * ck);
    if (threads > groups)
        threads = groups;
    float *base = ln_cpu_scratch(ctx, (size_t)(u_floats + u16_floats + groups * group_floats
                                               + threads * thread_floats) * sizeof(float));
    if (!base)
        return LN_ENOMEM;
    float *u = base, *group_base = base + u_floats + u16_floats;
    uint32_t *u16 = bf16 ? (uint32_t *)(base + u_floats) : NULL;
    float *thread_base = group_base + groups * group_floats;
    if (want_data)
        filter_transform(ctx, threads, w, s->k, s->c, 1, u);
    if (bf16)
        pair_filters(ctx, threads, u, u16, s->k, s->c);
    backward_job job = {s, &td, &tf, x, u, dy, u16, winner, dx, db, group_base, group_floats,
                        du_floats, thread_base, thread_floats, grad_plane, x_plane, vd, md,
                        dx_plane, vf, dm, pooled_t, bf16_filter, g_rows, g_cols, groups, chunk, rows_d,
                        rows_f, want_data, want_filter};
    ln_cpu_parallel(ctx, threads, groups, backward_group, &job);
    if (want_filter) {
        filter_gradient(ctx, threads, group_base, groups, group_floats, s->k, s->c, dw,
                        accumulate);
        if (db)
            ln_cpu_finish_bias(db, group_base, groups, group_floats, du_floats, s->k, accumulate);
    }
    return LN_OK;
}

#endif
