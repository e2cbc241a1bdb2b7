/* ReLU and the per-channel bias of convolution and linear layers. */
#include "kernels.cuh"

/* NaN stays NaN, as torch.relu leaves it (the reference's rule). */
__global__ void relu_forward_kernel(int64_t n, const float *x, float *y)
{
    LN_GRID_STRIDE(i, n)
    {
        float v = x[i];
        y[i] = v < 0.0f ? 0.0f : v;
    }
}

__global__ void relu_backward_kernel(int64_t n, const float *y, const float *dy, float *dx)
{
    LN_GRID_STRIDE(i, n) { dx[i] = y[i] > 0.0f ? dy[i] : 0.0f; }
}

extern "C" int ln_cuda_relu_forward(void *vctx, int64_t n, const float *x, float *y)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    relu_forward_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(n, x, y);
    LN_CUDA_CHECK_LAUNCH("relu_forward_kernel");
    return LN_OK;
}

extern "C" int ln_cuda_relu_backward(void *vctx, int64_t n, const float *y, const float *dy,
                                     float *dx)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (n == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    relu_backward_kernel<<<ln_blocks(n), LN_THREADS, 0, ctx->stream>>>(n, y, dy, dx);
    LN_CUDA_CHECK_LAUNCH("relu_backward_kernel");
    return LN_OK;
}

/* y viewed as [outer, channels, inner]: y[o, c, i] += bias[c]. */
__global__ void bias_add_kernel(int64_t total, int64_t channels, int64_t inner, float *y,
                                const float *bias)
{
    LN_GRID_STRIDE(i, total) { y[i] += bias[(i / inner) % channels]; }
}

extern "C" int ln_cuda_bias_add(void *vctx, int64_t outer, int64_t channels, int64_t inner,
                                float *y, const float *bias)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = outer * channels * inner;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    bias_add_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(total, channels, inner,
                                                                      y, bias);
    LN_CUDA_CHECK_LAUNCH("bias_add_kernel");
    return LN_OK;
}

/* One block per channel sums dy[o, c, i] over o and i in double (as the
 * reference does), in a fixed order. */
__global__ void bias_backward_kernel(int64_t outer, int64_t channels, int64_t inner,
                                     const float *dy, float *db, int accumulate)
{
    for (int64_t c = blockIdx.x; c < channels; c += gridDim.x) {
        double acc = 0;
        for (int64_t j = threadIdx.x; j < outer * inner; j += blockDim.x) {
            int64_t o = j / inner, i = j % inner;
            acc += dy[(o * channels + c) * inner + i];
        }
        acc = ln_block_reduce(acc, ln_add_op());
        if (threadIdx.x == 0)
            db[c] = (float)(acc + (accumulate ? (double)db[c] : 0.0));
    }
}

extern "C" int ln_cuda_bias_backward(void *vctx, int64_t outer, int64_t channels,
                                     int64_t inner, const float *dy, float *db, int accumulate)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    if (channels == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    unsigned blocks = ln_capped_blocks(channels, LN_MAX_BLOCKS);
    bias_backward_kernel<<<blocks, LN_THREADS, 0, ctx->stream>>>(outer, channels, inner, dy,
                                                                 db, accumulate);
    LN_CUDA_CHECK_LAUNCH("bias_backward_kernel");
    return LN_OK;
}
