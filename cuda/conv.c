/* 2-D convolutions on cuDNN: forward, backward-data and backward-filter.
 *
 * The algorithm for each (shape, direction, TF32 setting) is chosen once by
 * timing the candidates with cudnnFind...Ex on our own buffers, then cached
 * in the context; the workspace it needs is kept and only ever grows. A
 * steady training step therefore makes no cuDNN search and no allocation.
 * Deterministic algorithms are preferred, and with TF32 off the convolution
 * math is CUDNN_FMA_MATH (plain float32), so results match the CPU's. */
#include <stdlib.h>
#include <string.h>

#include "context.h"

/* The most workspace a search may try: candidate algorithms needing more are
 * skipped (cuDNN reports them as failed allocations). */
#define FIND_WORKSPACE_LIMIT ((size_t)1 << 30)
#define MAX_RESULTS 32

/* The three cuDNN perf-result structs, in one shape. */
typedef struct candidate {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} candidate;

static const char *kind_name(int kind)
{
    return kind == LN_CONV_FORWARD ? "conv2d_forward"
           : kind == LN_CONV_BACKWARD_DATA ? "conv2d_backward_data"
                                           : "conv2d_backward_filter";
}

static cudnnMathType_t math_for(int tf32)
{
    return tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
}

static int set_descriptors(ln_cuda_context *ctx, const ln_conv2d_shape *s)
{
    LN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              s->n, s->c, s->h, s->w));
    LN_CUDNN_CHECK(cudnnSetFilter4dDescriptor(ctx->w_desc, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW,
                                              s->k, s->c, s->r, s->s));
    LN_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(ctx->conv_desc, s->pad_h, s->pad_w,
                                                   s->stride_h, s->stride_w, 1, 1,
                                                   CUDNN_CROSS_CORRELATION,
                                                   CUDNN_DATA_FLOAT));
    LN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->y_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              s->n, s->k, s->p, s->q));
    return LN_OK;
}

/* cuDNN's output shape for the descriptors just set must be the core's: only
 * asked for shapes not yet cached (a cached shape has passed). */
static int check_output_shape(ln_cuda_context *ctx, const ln_conv2d_shape *s)
{
    int n, k, p, q;
    LN_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(ctx->conv_desc, ctx->x_desc,
                                                         ctx->w_desc, &n, &k, &p, &q));
    if (n != s->n || k != s->k || p != s->p || q != s->q)
        return ln_cuda_error(LN_EINVAL, "conv2d: cuDNN computes an output of [%d, %d, %d, %d] "
                             "where the core expects [%d, %d, %d, %d]", n, k, p, q, s->n,
                             s->k, s->p, s->q);
    return LN_OK;
}

static const ln_cuda_conv_algo *cached_algo(const ln_cuda_context *ctx,
                                            const ln_conv2d_shape *s, int kind, int tf32)
{
    for (int i = 0; i < ctx->algo_count; i++) {
        const ln_cuda_conv_algo *a = &ctx->algos[i];
        if (a->kind == kind && a->tf32 == tf32 && memcmp(&a->shape, s, sizeof *s) == 0)
            return a;
    }
    return NULL;
}

/* The largest workspace any algorithm of `kind` could use for this shape
 * (algorithms that do not apply are skipped). */
static size_t largest_workspace(ln_cuda_context *ctx, int kind)
{
    size_t largest = 0;
    int count = kind == LN_CONV_FORWARD ? CUDNN_CONVOLUTION_FWD_ALGO_COUNT
                : kind == LN_CONV_BACKWARD_DATA ? CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT
                                                : CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT;
    for (int algo = 0; algo < count; algo++) {
        size_t size = 0;
        cudnnStatus_t st;
        if (kind == LN_CONV_FORWARD)
            st = cudnnGetConvolutionForwardWorkspaceSize(ctx->cudnn, ctx->x_desc, ctx->w_desc,
                                                         ctx->conv_desc, ctx->y_desc,
                                                         (cudnnConvolutionFwdAlgo_t)algo, &size);
        else if (kind == LN_CONV_BACKWARD_DATA)
            st = cudnnGetConvolutionBackwardDataWorkspaceSize(
                ctx->cudnn, ctx->w_desc, ctx->y_desc, ctx->conv_desc, ctx->x_desc,
                (cudnnConvolutionBwdDataAlgo_t)algo, &size);
        else
            st = cudnnGetConvolutionBackwardFilterWorkspaceSize(
                ctx->cudnn, ctx->x_desc, ctx->y_desc, ctx->conv_desc, ctx->w_desc,
                (cudnnConvolutionBwdFilterAlgo_t)algo, &size);
        if (st == CUDNN_STATUS_SUCCESS && size > largest)
            largest = size;
    }
    return largest;
}

/* Device memory for a search, directly from the driver (it is given back
 * right after): as much as `want`, less when memory is short (candidates
 * that need more are then skipped). */
static void search_workspace(ln_cuda_context *ctx, size_t want, void **ptr, size_t *size)
{
    size_t free_bytes = 0, total_bytes = 0;
    int released = 0;
    *ptr = NULL;
    *size = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && want > free_bytes / 2)
        want = free_bytes / 2;
    (void)cudaGetLastError();
    if (want > FIND_WORKSPACE_LIMIT)
        want = FIND_WORKSPACE_LIMIT;
    while (want > 0) {
        if (cudaMalloc(ptr, want) == cudaSuccess) {
            *size = want;
            return;
        }
        (void)cudaGetLastError(); /* out of memory is not sticky */
        *ptr = NULL;
        if (!released) { /* our cache may hold what is missing */
            released = 1;
            if (ln_cuda_empty_cache(ctx) == LN_OK)
                continue;
        }
        if (want < ((size_t)1 << 20))
            return;
        want /= 2;
    }
}

/* Runs cuDNN's search for `kind` with the descriptors already set, and fills
 * `out` with the candidates, fastest first. */
static int find_candidates(ln_cuda_context *ctx, int kind, const void *x, const void *w,
                           const void *dy, void *out_buffer, void *workspace,
                           size_t workspace_bytes, candidate *out, int *count)
{
    int returned = 0;
    *count = 0;
    if (kind == LN_CONV_FORWARD) {
        cudnnConvolutionFwdAlgoPerf_t perf[MAX_RESULTS];
        LN_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(
            ctx->cudnn, ctx->x_desc, x, ctx->w_desc, w, ctx->conv_desc, ctx->y_desc,
            out_buffer, MAX_RESULTS, &returned, perf, workspace, workspace_bytes));
        for (int i = 0; i < returned && i < MAX_RESULTS; i++)
            out[i] = (candidate){(int)perf[i].algo, perf[i].status, perf[i].memory,
                                 perf[i].determinism, perf[i].mathType};
    } else if (kind == LN_CONV_BACKWARD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t perf[MAX_RESULTS];
        LN_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(
            ctx->cudnn, ctx->w_desc, w, ctx->y_desc, dy, ctx->conv_desc, ctx->x_desc,
            out_buffer, MAX_RESULTS, &returned, perf, workspace, workspace_bytes));
        for (int i = 0; i < returned && i < MAX_RESULTS; i++)
            out[i] = (candidate){(int)perf[i].algo, perf[i].status, perf[i].memory,
                                 perf[i].determinism, perf[i].mathType};
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[MAX_RESULTS];
        LN_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(
            ctx->cudnn, ctx->x_desc, x, ctx->y_desc, dy, ctx->conv_desc, ctx->w_desc,
            out_buffer, MAX_RESULTS, &returned, perf, workspace, workspace_bytes));
        for (int i = 0; i < returned && i < MAX_RESULTS; i++)
            out[i] = (candidate){(int)perf[i].algo, perf[i].status, perf[i].memory,
                                 perf[i].determinism, perf[i].mathType};
    }
    *count = returned < MAX_RESULTS ? returned : MAX_RESULTS;
    return LN_OK;
}

/* The fastest usable candidate, deterministic ones first; -1 when none. */
static int pick(const candidate *c, int count, int tf32, size_t workspace_bytes)
{
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < count; i++) {
            int usable = c[i].status == CUDNN_STATUS_SUCCESS && c[i].memory <= workspace_bytes
                         && (tf32 || (c[i].math != CUDNN_TENSOR_OP_MATH
                                      && c[i].math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION));
            if (usable && (pass == 1 || c[i].determinism == CUDNN_DETERMINISTIC))
                return i;
        }
    return -1;
}

static int remember(ln_cuda_context *ctx, const ln_cuda_conv_algo *a)
{
    if (ctx->algo_count == ctx->algo_capacity) {
        int capacity = ctx->algo_capacity ? ctx->algo_capacity * 2 : 16;
        ln_cuda_conv_algo *grown = realloc(ctx->algos, sizeof *grown * (size_t)capacity);
        if (!grown)
            return ln_cuda_error(LN_ENOMEM, "conv2d: out of host memory");
        ctx->algos = grown;
        ctx->algo_capacity = capacity;
    }
    ctx->algos[ctx->algo_count++] = *a;
    return LN_OK;
}

/* The cuDNN workspace holds at least `bytes` (grow-only). */
static int ensure_workspace(ln_cuda_context *ctx, size_t bytes)
{
    if (bytes <= ctx->workspace_bytes)
        return LN_OK;
    void *grown = NULL;
    LN_TRY(ln_cuda_alloc(ctx, bytes, &grown));
    ln_cuda_free(ctx, ctx->workspace); /* stream order keeps queued users safe */
    ctx->workspace = grown;
    ctx->workspace_bytes = bytes;
    return LN_OK;
}

/* Chooses (or recalls) the algorithm for this shape and direction, with the
 * descriptors set, and makes sure its workspace exists. `out_buffer` is
 * scratch the search may overwrite. */
static int choose(ln_cuda_context *ctx, const ln_conv2d_shape *s, int kind, const void *x,
                  const void *w, const void *dy, void *out_buffer,
                  const ln_cuda_conv_algo **chosen)
{
    int tf32 = ln_cuda_get_tf32();
    LN_TRY(set_descriptors(ctx, s));
    const ln_cuda_conv_algo *known = cached_algo(ctx, s, kind, tf32);
    if (!known) {
        LN_TRY(check_output_shape(ctx, s));
        candidate c[MAX_RESULTS];
        int count = 0;
        void *search = NULL;
        size_t search_bytes = 0;
        LN_CUDNN_CHECK(cudnnSetConvolutionMathType(ctx->conv_desc, math_for(tf32)));
        search_workspace(ctx, largest_workspace(ctx, kind), &search, &search_bytes);
        int st = find_candidates(ctx, kind, x, w, dy, out_buffer, search, search_bytes, c,
                                 &count);
        if (search) { /* the search has finished with it: cudnnFind blocks the host */
            if (cudaStreamSynchronize(ctx->stream) == cudaSuccess)
                cudaFree(search);
            (void)cudaGetLastError();
        }
        LN_TRY(st);
        int best = pick(c, count, tf32, search_bytes);
        if (best < 0)
            return ln_cuda_error(LN_EDEVICE, "%s: cuDNN has no working algorithm for input "
                                 "[%d, %d, %d, %d], weight [%d, %d, %d, %d], stride %dx%d, "
                                 "padding %dx%d (%d candidates tried)", kind_name(kind),
                                 s->n, s->c, s->h, s->w, s->k, s->c, s->r, s->s, s->stride_h,
                                 s->stride_w, s->pad_h, s->pad_w, count);
        ln_cuda_conv_algo a;
        memset(&a, 0, sizeof a);
        a.shape = *s;
        a.kind = kind;
        a.tf32 = tf32;
        a.algo = c[best].algo;
        /* without TF32 the math stays plain float32, whatever the search says */
        a.math = tf32 ? c[best].math : CUDNN_FMA_MATH;
        a.workspace_bytes = c[best].memory;
        LN_TRY(remember(ctx, &a));
        known = &ctx->algos[ctx->algo_count - 1];
    }
    LN_TRY(ensure_workspace(ctx, known->workspace_bytes));
    LN_CUDNN_CHECK(cudnnSetConvolutionMathType(ctx->conv_desc, known->math));
    *chosen = known;
    return LN_OK;
}

static int empty_geometry(const ln_conv2d_shape *s)
{
    return s->n == 0 || s->c == 0 || s->h == 0 || s->w == 0 || s->k == 0 || s->r == 0
           || s->s == 0 || s->p == 0 || s->q == 0;
}

int ln_cuda_conv2d_forward(void *vctx, const ln_conv2d_shape *s, const float *x,
                           const float *w, const float *bias, float *y)
{
    ln_cuda_context *ctx = vctx;
    const float one = 1.0f, zero = 0.0f;
    int64_t y_count = (int64_t)s->n * s->k * s->p * s->q;
    LN_CUDA_ENTER(ctx);
    if (empty_geometry(s)) { /* no products: y is the bias alone */
        if (y_count > 0)
            LN_CUDA_CHECK(cudaMemsetAsync(y, 0, (size_t)y_count * sizeof(float), ctx->stream));
    } else {
        const ln_cuda_conv_algo *a;
        LN_TRY(choose(ctx, s, LN_CONV_FORWARD, x, w, NULL, y, &a));
        LN_CUDNN_CHECK(cudnnConvolutionForward(
            ctx->cudnn, &one, ctx->x_desc, x, ctx->w_desc, w, ctx->conv_desc,
            (cudnnConvolutionFwdAlgo_t)a->algo, ctx->workspace, a->workspace_bytes, &zero,
            ctx->y_desc, y));
    }
    if (bias && y_count > 0)
        LN_TRY(ln_cuda_bias_add(ctx, s->n, s->k, (int64_t)s->p * s->q, y, bias));
    return LN_OK;
}

int ln_cuda_conv2d_backward_data(void *vctx, const ln_conv2d_shape *s, const float *dy,
                                 const float *w, float *dx)
{
    ln_cuda_context *ctx = vctx;
    const float one = 1.0f, zero = 0.0f;
    int64_t x_count = (int64_t)s->n * s->c * s->h * s->w;
    LN_CUDA_ENTER(ctx);
    if (empty_geometry(s)) {
        if (x_count > 0)
            LN_CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)x_count * sizeof(float), ctx->stream));
        return LN_OK;
    }
    const ln_cuda_conv_algo *a;
    LN_TRY(choose(ctx, s, LN_CONV_BACKWARD_DATA, NULL, w, dy, dx, &a));
    LN_CUDNN_CHECK(cudnnConvolutionBackwardData(
        ctx->cudnn, &one, ctx->w_desc, w, ctx->y_desc, dy, ctx->conv_desc,
        (cudnnConvolutionBwdDataAlgo_t)a->algo, ctx->workspace, a->workspace_bytes, &zero,
        ctx->x_desc, dx));
    return LN_OK;
}

int ln_cuda_conv2d_backward_filter(void *vctx, const ln_conv2d_shape *s, const float *x,
                                   const float *dy, float *dw, float *db, int accumulate)
{
    ln_cuda_context *ctx = vctx;
    const float one = 1.0f, zero = 0.0f;
    int64_t w_count = (int64_t)s->k * s->c * s->r * s->s;
    LN_CUDA_ENTER(ctx);
    if (empty_geometry(s)) {
        if (w_count > 0 && !accumulate)
            LN_CUDA_CHECK(cudaMemsetAsync(dw, 0, (size_t)w_count * sizeof(float), ctx->stream));
    } else {
        const ln_cuda_conv_algo *a;
        if (!cached_algo(ctx, s, LN_CONV_BACKWARD_FILTER, ln_cuda_get_tf32())) {
            /* the search writes its output: give it scratch, not the
             * gradient being accumulated */
            void *scratch = NULL;
            LN_TRY(ln_cuda_alloc(ctx, (size_t)w_count * sizeof(float), &scratch));
            int st = choose(ctx, s, LN_CONV_BACKWARD_FILTER, x, NULL, dy, scratch, &a);
            ln_cuda_free(ctx, scratch);
            LN_TRY(st);
        } else {
            LN_TRY(choose(ctx, s, LN_CONV_BACKWARD_FILTER, x, NULL, dy, NULL, &a));
        }
        LN_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
            ctx->cudnn, &one, ctx->x_desc, x, ctx->y_desc, dy, ctx->conv_desc,
            (cudnnConvolutionBwdFilterAlgo_t)a->algo, ctx->workspace, a->workspace_bytes,
            accumulate ? &one : &zero, ctx->w_desc, dw));
    }
    if (db)
        LN_TRY(ln_cuda_bias_backward(ctx, s->n, s->k, (int64_t)s->p * s->q, dy, db,
                                     accumulate));
    return LN_OK;
}
