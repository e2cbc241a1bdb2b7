/* lunet.cuda.error_probe(): three calls that the CUDA runtime, cuBLAS and
 * cuDNN refuse on purpose (bad arguments, checked before any work is done),
 * made through the same checks as every op, so a GPU machine can confirm that
 * a library failure becomes a message naming the call, its status and our
 * source line, and that the device works on afterwards. */
#include <stdio.h>

#include "context.h"

static int probe_cuda_runtime(ln_cuda_context *ctx)
{
    (void)ctx;
    LN_CUDA_CHECK(cudaSetDevice(-1)); /* no such device */
    return LN_OK;
}

static int probe_cublas(ln_cuda_context *ctx)
{
    const float one = 1.0f, zero = 0.0f;
    /* lda = 0 is below its minimum: refused before any memory is touched */
    LN_CUBLAS_CHECK(cublasGemmEx(ctx->cublas, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one,
                                 ctx->partials, CUDA_R_32F, 0, ctx->partials, CUDA_R_32F, 4,
                                 &zero, ctx->partials, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
    return LN_OK;
}

static int probe_cudnn(ln_cuda_context *ctx)
{
    /* a negative batch; the descriptor is set afresh before every use */
    LN_CUDNN_CHECK(cudnnSetTensor4dDescriptor(ctx->x_desc, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT,
                                              -1, 1, 1, 1));
    return LN_OK;
}

/* Still usable: a memset and a synchronisation on the device's stream. */
static int probe_still_works(ln_cuda_context *ctx)
{
    LN_CUDA_ENTER(ctx);
    LN_CUDA_CHECK(cudaMemsetAsync(ctx->partials, 0, sizeof(double), ctx->stream));
    LN_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return LN_OK;
}

int ln_cuda_error_probe(void *vctx, char messages[3][512])
{
    ln_cuda_context *ctx = vctx;
    int (*probes[3])(ln_cuda_context *) = {probe_cuda_runtime, probe_cublas, probe_cudnn};
    for (int i = 0; i < 3; i++) {
        LN_CUDA_ENTER(ctx);
        if (probes[i](ctx) == LN_OK)
            snprintf(messages[i], 512, "(the call was accepted)");
        else
            snprintf(messages[i], 512, "%s", ln_cuda_last_error());
    }
    return probe_still_works(ctx);
}
