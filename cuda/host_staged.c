/* Host staging: a CUDA slot run by the reference backend (csrc/ops_ref.c) on
 * host copies of its device buffers. It serves the slots whose kernels are
 * kept off until they have run on a GPU (unverified.c), so the backend still
 * fills them, with the reference's results, and honestly slow.
 *
 * One op: each input is downloaded (a download waits for everything queued
 * before it on the device's stream), the reference runs on the copies, each
 * output is uploaded (queued before anything that follows). The op runner
 * hands a slot contiguous buffers that are either the very same (in place,
 * x == y) or disjoint (csrc/ops/op_check.c); a buffer met twice is staged
 * once, so an in-place op reads and writes one host copy as the reference
 * would in host memory. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

enum { IN = 1, OUT = 2 };
#define MAX_BUFFERS 6

typedef struct staged_buffer {
    const void *device;
    size_t bytes;
    void *host;
    int use; /* IN and/or OUT */
} staged_buffer;

typedef struct staging {
    void *ctx;
    const char *op;
    const ln_backend *ref;
    int status;
    int count;
    staged_buffer buf[MAX_BUFFERS];
} staging;

static staging begin(void *ctx, const char *op)
{
    staging s = {.ctx = ctx, .op = op, .ref = ln_cuda_reference(), .status = LN_OK};
    if (!s.ref)
        s.status = ln_cuda_error(LN_EDEVICE, "%s (host-staged): the core's reference backend "
                                 "was not handed over (attach)", op);
    return s;
}

/* The host copy of `device` (NULL stays NULL): downloaded when it is read. */
static void *stage(staging *s, const void *device, size_t bytes, int use)
{
    if (!device || s->status != LN_OK)
        return NULL;
    for (int i = 0; i < s->count; i++)
        if (s->buf[i].device == device && s->buf[i].bytes == bytes) {
            s->buf[i].use |= use; /* inputs are staged first: already downloaded */
            return s->buf[i].host;
        }
    if (s->count == MAX_BUFFERS) {
        s->status = ln_cuda_error(LN_EINVAL, "%s (host-staged): internal error: more than %d "
                                  "buffers", s->op, MAX_BUFFERS);
        return NULL;
    }
    void *host = malloc(bytes ? bytes : 1);
    if (!host) {
        s->status = ln_cuda_error(LN_ENOMEM, "%s (host-staged): out of host memory for %zu "
                                  "bytes", s->op, bytes);
        return NULL;
    }
    s->buf[s->count++] = (staged_buffer){device, bytes, host, use};
    if (use & IN)
        s->status = ln_cuda_download(s->ctx, host, device, bytes);
    return host;
}

/* Uploads the outputs when all went well, and frees the copies. */
static int finish(staging *s)
{
    for (int i = 0; i < s->count; i++) {
        if (s->status == LN_OK && (s->buf[i].use & OUT))
            s->status = ln_cuda_upload(s->ctx, (void *)s->buf[i].device, s->buf[i].host,
                                       s->buf[i].bytes);
        free(s->buf[i].host);
    }
    s->count = 0;
    return s->status;
}

static size_t floats(int64_t n)
{
    return (size_t)n * sizeof(float);
}

int ln_cuda_staged_unary(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                         const float *x, float *y)
{
    staging s = begin(ctx, "unary");
    const float *hx = stage(&s, x, floats(n), IN);
    float *hy = stage(&s, y, floats(n), OUT);
    if (s.status == LN_OK)
        s.status = s.ref->unary(NULL, op, p, n, hx, hy);
    return finish(&s);
}

int ln_cuda_staged_unary_backward(void *ctx, ln_unary_op op, const ln_unary_params *p,
                                  int64_t n, const float *x, const float *y, const float *dy,
                                  float *dx)
{
    staging s = begin(ctx, "unary_backward");
    const float *hx = stage(&s, x, floats(n), IN), *hy = stage(&s, y, floats(n), IN);
    const float *hdy = stage(&s, dy, floats(n), IN);
    float *hdx = stage(&s, dx, floats(n), OUT);
    if (s.status == LN_OK)
        s.status = s.ref->unary_backward(NULL, op, p, n, hx, hy, hdy, hdx);
    return finish(&s);
}

int ln_cuda_staged_softmax(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                           const float *x, float *y)
{
    staging s = begin(ctx, "softmax");
    size_t bytes = floats(outer * dim * inner);
    const float *hx = stage(&s, x, bytes, IN);
    float *hy = stage(&s, y, bytes, OUT);
    if (s.status == LN_OK)
        s.status = s.ref->softmax(NULL, log, outer, dim, inner, hx, hy);
    return finish(&s);
}

int ln_cuda_staged_softmax_backward(void *ctx, int log, int64_t outer, int64_t dim,
                                    int64_t inner, const float *y, const float *dy, float *dx)
{
    staging s = begin(ctx, "softmax_backward");
    size_t bytes = floats(outer * dim * inner);
    const float *hy = stage(&s, y, bytes, IN), *hdy = stage(&s, dy, bytes, IN);
    float *hdx = stage(&s, dx, bytes, OUT);
    if (s.status == LN_OK)
        s.status = s.ref->softmax_backward(NULL, log, outer, dim, inner, hy, hdy, hdx);
    return finish(&s);
}

int ln_cuda_staged_reduce_dim(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim,
                              int64_t inner, const float *x, float *values, int32_t *positions)
{
    staging s = begin(ctx, "reduce_dim");
    const float *hx = stage(&s, x, floats(outer * dim * inner), IN);
    float *hv = stage(&s, values, floats(outer * inner), OUT);
    int32_t *hp = stage(&s, positions, (size_t)(outer * inner) * sizeof(int32_t), OUT);
    if (s.status == LN_OK)
        s.status = s.ref->reduce_dim(NULL, op, outer, dim, inner, hx, hv, hp);
    return finish(&s);
}

/* float16 and bfloat16: the kernels compute in float32 and round once on the
 * store; the reference has neither dtype, so it gets float32 copies. */
static int is_half(ln_dtype dtype)
{
    return dtype == LN_FLOAT16 || dtype == LN_BFLOAT16;
}

static float half_load(const void *p, ln_dtype dtype, int64_t i)
{
    uint16_t h = ((const uint16_t *)p)[i];
    return dtype == LN_FLOAT16 ? ln_half_to_float(h) : ln_bfloat16_to_float(h);
}

static void half_store(void *p, ln_dtype dtype, int64_t i, float v)
{
    ((uint16_t *)p)[i] = dtype == LN_FLOAT16 ? ln_float_to_half(v) : ln_float_to_bfloat16(v);
}

/* out = a OP b (b != NULL) or a OP scalar, for half dtypes through float32. */
static int half_binary(staging *s, ln_binary_op op, ln_dtype dtype, int64_t n, const void *a,
                       const void *b, double scalar, int scalar_first, void *out)
{
    float *fa = malloc(floats(n) + 1), *fb = b ? malloc(floats(n) + 1) : NULL;
    float *fo = malloc(floats(n) + 1);
    int st = LN_OK;
    if (!fa || !fo || (b && !fb))
        st = ln_cuda_error(LN_ENOMEM, "%s (host-staged): out of host memory", s->op);
    for (int64_t i = 0; st == LN_OK && i < n; i++) {
        fa[i] = half_load(a, dtype, i);
        if (b)
            fb[i] = half_load(b, dtype, i);
    }
    if (st == LN_OK)
        st = b ? s->ref->binary(NULL, op, LN_FLOAT32, n, fa, fb, fo)
               : s->ref->binary_scalar(NULL, op, LN_FLOAT32, n, fa, scalar, scalar_first, fo);
    for (int64_t i = 0; st == LN_OK && i < n; i++)
        half_store(out, dtype, i, fo[i]);
    free(fa);
    free(fb);
    free(fo);
    return st;
}

int ln_cuda_staged_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n, const void *a,
                          const void *b, void *out)
{
    staging s = begin(ctx, "binary");
    size_t bytes = (size_t)n * ln_dtype_size(dtype);
    const void *ha = stage(&s, a, bytes, IN), *hb = stage(&s, b, bytes, IN);
    void *ho = stage(&s, out, bytes, OUT);
    if (s.status == LN_OK)
        s.status = is_half(dtype) ? half_binary(&s, op, dtype, n, ha, hb, 0, 0, ho)
                                  : s.ref->binary(NULL, op, dtype, n, ha, hb, ho);
    return finish(&s);
}

int ln_cuda_staged_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                                 const void *a, double scalar, int scalar_first, void *out)
{
    staging s = begin(ctx, "binary_scalar");
    size_t bytes = (size_t)n * ln_dtype_size(dtype);
    const void *ha = stage(&s, a, bytes, IN);
    void *ho = stage(&s, out, bytes, OUT);
    if (s.status == LN_OK)
        s.status = is_half(dtype)
                       ? half_binary(&s, op, dtype, n, ha, NULL, scalar, scalar_first, ho)
                       : s.ref->binary_scalar(NULL, op, dtype, n, ha, scalar, scalar_first, ho);
    return finish(&s);
}

int ln_cuda_staged_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                             const float *grad, float *exp_avg, float *exp_avg_sq)
{
    staging s = begin(ctx, "adam_step");
    float *hp = stage(&s, param, floats(n), IN | OUT);
    const float *hg = stage(&s, grad, floats(n), IN);
    float *hm = stage(&s, exp_avg, floats(n), IN | OUT);
    float *hv = stage(&s, exp_avg_sq, floats(n), IN | OUT);
    if (s.status == LN_OK)
        s.status = s.ref->adam_step(NULL, p, n, hp, hg, hm, hv);
    return finish(&s);
}
