/* Softmax cross-entropy, in double as the reference computes it: one thread
 * per row (rows are short: class scores), a fixed-order sum over rows. */
#include <math.h>

#include "formulas.h"
#include "kernels.cuh"

/* Per-block sums of the row losses; a label outside 1..classes is never used
 * as an index: the smallest such row goes to scalars->index instead. */
__global__ void cross_entropy_rows_kernel(int64_t n, int64_t classes, const float *logits,
                                          const int32_t *labels, double *partials,
                                          ln_cuda_scalars *scalars)
{
    double acc = 0;
    LN_GRID_STRIDE(i, n)
    {
        int32_t label = labels[i];
        if (label < 1 || label > classes) {
            atomicMin(&scalars->index, (unsigned long long)i);
            continue;
        }
        const float *row = logits + i * classes;
        acc += ln_f_log_sum_exp(row, classes) - row[label - 1];
    }
    acc = ln_block_reduce(acc, ln_add_op());
    if (threadIdx.x == 0)
        partials[blockIdx.x] = acc;
}

/* The rows' losses summed into ctx->scalars->value, and the smallest bad
 * row into ctx->scalars->index (all ones when every label is good), queued
 * on the stream: both forward slots start here. */
static int queue_loss_sum(ln_cuda_context *ctx, int64_t n, int64_t classes, const float *logits,
                          const int32_t *labels)
{
    LN_CUDA_CHECK(cudaMemsetAsync(&ctx->scalars->index, 0xff, sizeof ctx->scalars->index,
                                  ctx->stream));
    unsigned blocks = ln_capped_blocks(ln_blocks(n), LN_CUDA_MAX_PARTIALS);
    cross_entropy_rows_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(
        n, classes, logits, labels, ctx->partials, ctx->scalars);
    LN_CUDA_CHECK_LAUNCH("cross_entropy_rows_kernel");
    ln_add_op add;
    ln_reduce_partials_kernel<<<1, LN_THREADS, 0, ctx->stream>>>((int)blocks, ctx->partials,
                                                                0.0, add, ctx->scalars);
    LN_CUDA_CHECK_LAUNCH("ln_reduce_partials_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_cross_entropy_forward(void *vctx, int64_t n, int64_t classes,
                                             const float *logits, const int32_t *labels,
                                             double *loss_host, int64_t *bad_index)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    *bad_index = -1;
    *loss_host = NAN;
    if (n == 0 || classes == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    LN_TRY(queue_loss_sum(ctx, n, classes, logits, labels));
    LN_CUDA_CHECK(cudaMemcpyAsync(ctx->scalars_host, ctx->scalars, sizeof(ln_cuda_scalars),
                                  cudaMemcpyDeviceToHost, ctx->stream));
    LN_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    if (ctx->scalars_host->index != ~0ull) {
        *bad_index = (int64_t)ctx->scalars_host->index;
        return LN_OK;
    }
    /* the mean on the host: IEEE double division, as the device would round it */
    *loss_host = ctx->scalars_host->value / (double)n;
    return LN_OK;
}

/* The mean from the reduced sum, on the device: the same IEEE double
 * division the host does above; NaN when a label was bad. Written to
 * loss[0], or added to the running pair {sum, compensation} as
 * loss_on_device.c's add_to_pair does. */
__global__ void cross_entropy_finish_kernel(int64_t n, const ln_cuda_scalars *scalars, float *loss,
                                            int accumulate)
{
    if (threadIdx.x != 0 || blockIdx.x != 0)
        return;
    double mean = scalars->index != ~0ull ? (double)NAN : scalars->value / (double)n;
    if (!accumulate) {
        loss[0] = (float)mean;
        return;
    }
    double total = (double)loss[0] + (double)loss[1] + mean;
    float head = (float)total;
    loss[0] = head;
    loss[1] = (float)(total - (double)head);
}

extern "C" int ln_cuda_cross_entropy_forward_device(void *vctx, int64_t n, int64_t classes,
                                                    const float *logits, const int32_t *labels,
                                                    float *loss, int accumulate)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0 || classes == 0) /* the core never asks: it needs N, C >= 1 */
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    LN_TRY(queue_loss_sum(ctx, n, classes, logits, labels));
    cross_entropy_finish_kernel<<<1, 1, 0, ctx->stream>>>(n, ctx->scalars, loss, accumulate);
    LN_CUDA_CHECK_LAUNCH("cross_entropy_finish_kernel");
    return LN_OK;
}

/* dlogits = scale * (softmax(logits) - onehot(labels)); the one-hot term is a
 * comparison, so a bad label is never used as an index. */
__global__ void cross_entropy_backward_kernel(int64_t n, int64_t classes, const float *logits,
                                              const int32_t *labels, float scale,
                                              float *dlogits)
{
    LN_GRID_STRIDE(i, n)
    {
        const float *row = logits + i * classes;
        double lse = ln_f_log_sum_exp(row, classes);
        for (int64_t j = 0; j < classes; j++) {
            double onehot = labels[i] == j + 1 ? 1.0 : 0.0;
            dlogits[i * classes + j] = (float)(scale * (exp(row[j] - lse) - onehot));
        }
    }
}

extern "C" int ln_cuda_cross_entropy_backward(void *vctx, int64_t n, int64_t classes,
                                              const float *logits, const int32_t *labels,
                                              float scale, float *dlogits)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0 || classes == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    cross_entropy_backward_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(
        n, classes, logits, labels, scale, dlogits);
    LN_CUDA_CHECK_LAUNCH("cross_entropy_backward_kernel");
    return LN_OK;
}
