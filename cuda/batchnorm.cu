/* Batch normalisation over [n, c, inner], in double as the reference computes
 * it. One block per channel: it reduces the channel's statistics (a fixed
 * tree, so no run-to-run differences) and then writes the channel's outputs,
 * so nothing needs a temporary buffer. */
#include <math.h>

#include "kernels.cuh"

/* Element j of channel ch, j in [0, n * inner). */
__device__ __forceinline__ int64_t channel_at(int64_t j, int64_t c, int64_t inner, int64_t ch)
{
    return ((j / inner) * c + ch) * inner + j % inner;
}

__global__ void batchnorm_train_kernel(int64_t n, int64_t c, int64_t inner, const float *x,
                                       const float *gamma, const float *beta, float *y,
                                       float *running_mean, float *running_var,
                                       float momentum, float eps, float *save_mean,
                                       float *save_invstd)
{
    int64_t count = n * inner;
    for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double sum = 0;
        for (int64_t j = threadIdx.x; j < count; j += blockDim.x)
            sum += x[channel_at(j, c, inner, ch)];
        sum = ln_block_reduce(sum, ln_add_op());
        double mean = sum / (double)count;
        double sq = 0;
        for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
            double d = x[channel_at(j, c, inner, ch)] - mean;
            sq += d * d;
        }
        sq = ln_block_reduce(sq, ln_add_op());
        double var = sq / (double)count; /* biased: normalises the batch */
        double invstd = 1.0 / sqrt(var + eps);
        double g = gamma ? (double)gamma[ch] : 1.0, b = beta ? (double)beta[ch] : 0.0;
        for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
            int64_t at = channel_at(j, c, inner, ch);
            y[at] = (float)((x[at] - mean) * invstd * g + b);
        }
        if (threadIdx.x == 0) {
            save_mean[ch] = (float)mean;
            save_invstd[ch] = (float)invstd;
            /* the running variance is the unbiased estimate, as in PyTorch */
            double unbiased = count > 1 ? sq / (double)(count - 1) : var;
            running_mean[ch] = (float)((1.0 - momentum) * running_mean[ch] + momentum * mean);
            running_var[ch] = (float)((1.0 - momentum) * running_var[ch] + momentum * unbiased);
        }
    }
}

__global__ void batchnorm_eval_kernel(int64_t total, int64_t c, int64_t inner, const float *x,
                                      const float *gamma, const float *beta,
                                      const float *running_mean, const float *running_var,
                                      float eps, float *y)
{
    LN_GRID_STRIDE(i, total)
    {
        int64_t ch = (i / inner) % c;
        double invstd = 1.0 / sqrt((double)running_var[ch] + eps);
        double g = gamma ? (double)gamma[ch] : 1.0, b = beta ? (double)beta[ch] : 0.0;
        y[i] = (float)((x[i] - running_mean[ch]) * invstd * g + b);
    }
}

/* With xhat = (x - mean) * invstd and m values per channel:
 *   dbeta = sum dy, dgamma = sum dy * xhat,
 *   dx = gamma * invstd / m * (m * dy - dbeta - xhat * dgamma). */
__global__ void batchnorm_backward_kernel(int64_t n, int64_t c, int64_t inner, const float *x,
                                          const float *dy, const float *gamma,
                                          const float *save_mean, const float *save_invstd,
                                          float *dx, float *dgamma, float *dbeta,
                                          int accumulate)
{
    int64_t count = n * inner;
    double m = (double)count;
    for (int64_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double mean = save_mean[ch], invstd = save_invstd[ch];
        double sum_dy = 0, sum_dy_xhat = 0;
        for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
            int64_t at = channel_at(j, c, inner, ch);
            sum_dy += dy[at];
            sum_dy_xhat += dy[at] * (x[at] - mean) * invstd;
        }
        sum_dy = ln_block_reduce(sum_dy, ln_add_op());
        sum_dy_xhat = ln_block_reduce(sum_dy_xhat, ln_add_op());
        double g = gamma ? (double)gamma[ch] : 1.0;
        for (int64_t j = threadIdx.x; j < count; j += blockDim.x) {
            int64_t at = channel_at(j, c, inner, ch);
            double xhat = (x[at] - mean) * invstd;
            dx[at] = (float)(g * invstd / m * (m * dy[at] - sum_dy - xhat * sum_dy_xhat));
        }
        if (threadIdx.x == 0) {
            if (dgamma)
                dgamma[ch] = (float)(sum_dy_xhat + (accumulate ? (double)dgamma[ch] : 0.0));
            if (dbeta)
                dbeta[ch] = (float)(sum_dy + (accumulate ? (double)dbeta[ch] : 0.0));
        }
    }
}

extern "C" int ln_cuda_batchnorm_forward_train(void *vctx, int64_t n, int64_t c, int64_t inner,
                                               const float *x, const float *gamma,
                                               const float *beta, float *y,
                                               float *running_mean, float *running_var,
                                               float momentum, float eps, float *save_mean,
                                               float *save_invstd)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (c == 0 || inner == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_capped_blocks(c, LN_MAX_BLOCKS); /* a block per channel */
    batchnorm_train_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(
        n, c, inner, x, gamma, beta, y, running_mean, running_var, momentum, eps, save_mean,
        save_invstd);
    LN_CUDA_CHECK_LAUNCH("batchnorm_train_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_batchnorm_forward_eval(void *vctx, int64_t n, int64_t c, int64_t inner,
                                              const float *x, const float *gamma,
                                              const float *beta, const float *running_mean,
                                              const float *running_var, float eps, float *y)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = n * c * inner;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    batchnorm_eval_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(
        total, c, inner, x, gamma, beta, running_mean, running_var, eps, y);
    LN_CUDA_CHECK_LAUNCH("batchnorm_eval_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_batchnorm_backward(void *vctx, int64_t n, int64_t c, int64_t inner,
                                          const float *x, const float *dy, const float *gamma,
                                          const float *save_mean, const float *save_invstd,
                                          float *dx, float *dgamma, float *dbeta,
                                          int accumulate)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (c == 0 || inner == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_capped_blocks(c, LN_MAX_BLOCKS); /* a block per channel */
    batchnorm_backward_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(
        n, c, inner, x, dy, gamma, save_mean, save_invstd, dx, dgamma, dbeta, accumulate);
    LN_CUDA_CHECK_LAUNCH("batchnorm_backward_kernel");
    return LN_OK;
}
