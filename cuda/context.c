/* The CUDA device: discovery, opening a context (stream, cuBLAS and cuDNN
 * handles, reduction buffers), device information, and the TF32 switch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

#define LN_CUDA_MAX_DEVICES 16
/* cuBLAS's recommended workspace on Hopper (4 MiB suffices before it) */
#define CUBLAS_WORKSPACE_BYTES ((size_t)32 << 20)

static int tf32_enabled;
static ln_cuda_context *contexts[LN_CUDA_MAX_DEVICES];
static int devices_known = 0, device_total = 0;
static char devices_reason[256];

void ln_cuda_set_tf32(int enabled)
{
    tf32_enabled = enabled != 0;
}

int ln_cuda_get_tf32(void)
{
    return tf32_enabled;
}

int ln_cuda_attach(const ln_host_api *host)
{
    ln_cuda_set_host(host);
    return LN_OK;
}

/* Never fails: a machine without a driver or a GPU has 0 devices, and the
 * reason says which. */
int ln_cuda_device_count(int *count, char *reason, size_t reason_len)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        int driver = 0;
        if (cudaDriverGetVersion(&driver) != cudaSuccess)
            driver = 0;
        (void)cudaGetLastError();
        if (e == cudaErrorInsufficientDriver && driver == 0)
            snprintf(reason, reason_len,
                     "no NVIDIA driver is installed or it could not be loaded "
                     "(libcuda.so.1): cudaGetDeviceCount: %s (%s)",
                     cudaGetErrorString(e), cudaGetErrorName(e));
        else if (e == cudaErrorInsufficientDriver)
            snprintf(reason, reason_len,
                     "the NVIDIA driver (CUDA %d.%d) is older than the CUDA runtime "
                     "lunet was built with: cudaGetDeviceCount: %s (%s)",
                     driver / 1000, (driver % 1000) / 10, cudaGetErrorString(e),
                     cudaGetErrorName(e));
        else
            snprintf(reason, reason_len, "the NVIDIA driver reports no usable GPU: "
                     "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e),
                     cudaGetErrorName(e));
        n = 0;
    } else if (n <= 0) {
        snprintf(reason, reason_len, "the NVIDIA driver found no CUDA device");
        n = 0;
    } else if (reason_len > 0) {
        reason[0] = '\0';
    }
    if (n > LN_CUDA_MAX_DEVICES)
        n = LN_CUDA_MAX_DEVICES;
    *count = n;
    return LN_OK;
}

int ln_cuda_devices(const char **reason)
{
    if (!devices_known) {
        ln_cuda_device_count(&device_total, devices_reason, sizeof devices_reason);
        devices_known = 1;
    }
    if (reason)
        *reason = devices_reason;
    return device_total;
}

void *ln_cuda_context_of(int index)
{
    return index >= 0 && index < LN_CUDA_MAX_DEVICES ? contexts[index] : NULL;
}

/* Releases whatever open_context managed to create; errors are ignored, as
 * there is nothing left to do about them. */
static void destroy_context(ln_cuda_context *ctx)
{
    if (cudaSetDevice(ctx->device) != cudaSuccess) {
        (void)cudaGetLastError();
        free(ctx->algos);
        free(ctx);
        return;
    }
    if (ctx->stream)
        cudaStreamSynchronize(ctx->stream);
    /* the libraries first: their workspaces come from our allocator */
    if (ctx->conv_desc)
        cudnnDestroyConvolutionDescriptor(ctx->conv_desc);
    if (ctx->w_desc)
        cudnnDestroyFilterDescriptor(ctx->w_desc);
    if (ctx->y_desc)
        cudnnDestroyTensorDescriptor(ctx->y_desc);
    if (ctx->x_desc)
        cudnnDestroyTensorDescriptor(ctx->x_desc);
    if (ctx->cudnn)
        cudnnDestroy(ctx->cudnn);
    if (ctx->cublas)
        cublasDestroy(ctx->cublas);
    ln_cuda_allocator_release_all(ctx); /* tensors, cuDNN and cuBLAS workspaces */
    for (int i = 0; i < 2; i++) {
        if (ctx->staging[i])
            cudaFreeHost(ctx->staging[i]);
        if (ctx->staging_done[i])
            cudaEventDestroy(ctx->staging_done[i]);
    }
    if (ctx->scalars_host)
        cudaFreeHost(ctx->scalars_host);
    if (ctx->scalars)
        cudaFree(ctx->scalars);
    if (ctx->partials)
        cudaFree(ctx->partials);
    if (ctx->stream)
        cudaStreamDestroy(ctx->stream);
    (void)cudaGetLastError();
    free(ctx->algos);
    free(ctx);
}

static int open_context(ln_cuda_context *ctx)
{
    LN_CUDA_ENTER(ctx);
    /* non-blocking: our stream never waits for the legacy default stream */
    LN_CUDA_CHECK(cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking));
    LN_CUBLAS_CHECK(cublasCreate(&ctx->cublas));
    LN_CUBLAS_CHECK(cublasSetStream(ctx->cublas, ctx->stream));
    /* after cublasSetStream, which resets the workspace to cuBLAS's own pool */
    LN_TRY(ln_cuda_alloc(ctx, CUBLAS_WORKSPACE_BYTES, &ctx->cublas_workspace));
    LN_CUBLAS_CHECK(cublasSetWorkspace(ctx->cublas, ctx->cublas_workspace,
                                       CUBLAS_WORKSPACE_BYTES));
    LN_CUBLAS_CHECK(cublasSetMathMode(ctx->cublas, CUBLAS_DEFAULT_MATH));
    ctx->cublas_tf32 = 0;
    LN_CUDNN_CHECK(cudnnCreate(&ctx->cudnn));
    LN_CUDNN_CHECK(cudnnSetStream(ctx->cudnn, ctx->stream));
    LN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->x_desc));
    LN_CUDNN_CHECK(cudnnCreateTensorDescriptor(&ctx->y_desc));
    LN_CUDNN_CHECK(cudnnCreateFilterDescriptor(&ctx->w_desc));
    LN_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&ctx->conv_desc));
    for (int i = 0; i < 2; i++)
        LN_CUDA_CHECK(cudaEventCreateWithFlags(&ctx->staging_done[i],
                                               cudaEventDisableTiming));
    LN_CUDA_CHECK(cudaMalloc((void **)&ctx->partials,
                             LN_CUDA_MAX_PARTIALS * sizeof(double)));
    LN_CUDA_CHECK(cudaMalloc((void **)&ctx->scalars, sizeof(ln_cuda_scalars)));
    LN_CUDA_CHECK(cudaHostAlloc((void **)&ctx->scalars_host, sizeof(ln_cuda_scalars),
                                cudaHostAllocDefault));
    return LN_OK;
}

int ln_cuda_open(int index, void **out)
{
    *out = NULL;
    if (index < 0 || index >= LN_CUDA_MAX_DEVICES)
        return ln_cuda_error(LN_EINVAL, "open: CUDA device %d does not exist", index);
    if (contexts[index]) { /* the core opens each device once; be safe anyway */
        *out = contexts[index];
        return LN_OK;
    }
    ln_cuda_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ln_cuda_error(LN_ENOMEM, "open: out of host memory for a CUDA context");
    ctx->device = index;
    int st = open_context(ctx);
    if (st != LN_OK) {
        destroy_context(ctx);
        return st;
    }
    contexts[index] = ctx;
    *out = ctx;
    return LN_OK;
}

void ln_cuda_close(void *vctx)
{
    ln_cuda_context *ctx = vctx;
    if (!ctx)
        return;
    if (ctx->device >= 0 && ctx->device < LN_CUDA_MAX_DEVICES
        && contexts[ctx->device] == ctx)
        contexts[ctx->device] = NULL;
    destroy_context(ctx);
}

int ln_cuda_info(void *vctx, ln_device_info *out)
{
    ln_cuda_context *ctx = vctx;
    struct cudaDeviceProp prop;
    memset(out, 0, sizeof *out);
    LN_CUDA_ENTER(ctx);
    LN_CUDA_CHECK(cudaGetDeviceProperties(&prop, ctx->device));
    snprintf(out->name, sizeof out->name, "%.*s", (int)sizeof out->name - 1, prop.name);
    out->cc_major = prop.major;
    out->cc_minor = prop.minor;
    out->memory_bytes = (uint64_t)prop.totalGlobalMem;
    out->multiprocessors = prop.multiProcessorCount;
    LN_CUDA_CHECK(cudaDriverGetVersion(&out->driver_version));
    LN_CUDA_CHECK(cudaRuntimeGetVersion(&out->runtime_version));
    out->cudnn_version = (int)cudnnGetVersion();
    LN_CUBLAS_CHECK(cublasGetVersion(ctx->cublas, &out->cublas_version));
    snprintf(out->kernels, sizeof out->kernels, "%s", ln_cuda_kernels_note());
    return LN_OK;
}

int ln_cuda_synchronize(void *vctx)
{
    ln_cuda_context *ctx = vctx;
    LN_CUDA_ENTER(ctx);
    LN_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return LN_OK;
}

/* The GPU has no host threads to set; the slot exists for the CPU. */
int ln_cuda_set_num_threads(void *ctx, int n)
{
    (void)ctx;
    (void)n;
    return LN_OK;
}
