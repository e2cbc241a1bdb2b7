/* The CUDA backend's per-device context and the error checks every file uses.
 *
 * C and CUDA C++ both include this header: host files (.c) call the runtime,
 * cuBLAS and cuDNN; kernel files (.cu) launch on ctx->stream. */
#ifndef LUNET_CUDA_CONTEXT_H
#define LUNET_CUDA_CONTEXT_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "lunet_cuda.h"
#include "status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- the caching allocator ----------------------------------------------------
 * Freed blocks are kept in free lists keyed by their (rounded) size and handed
 * out again for the same size class, so a training step that allocates the
 * same shapes every time reaches a steady state with no cudaMalloc. Reuse is
 * safe without events because every op of a device runs on its one stream. */
#define LN_CUDA_BUCKETS 4096

typedef struct ln_cuda_block {
    void *ptr;
    size_t size;
    struct ln_cuda_block *next;
} ln_cuda_block;

typedef struct ln_cuda_allocator {
    ln_cuda_block *live[LN_CUDA_BUCKETS];   /* hashed by pointer */
    ln_cuda_block *cached[LN_CUDA_BUCKETS]; /* hashed by size class */
    ln_cuda_block *spare;                   /* unused list nodes */
    uint64_t allocated_bytes, cached_bytes, peak_bytes;
    uint64_t device_allocations, cache_hits, device_frees;
} ln_cuda_allocator;

/* --- cuDNN convolution algorithms, chosen once per shape -------------------- */
typedef enum ln_cuda_conv_kind {
    LN_CONV_FORWARD,
    LN_CONV_BACKWARD_DATA,
    LN_CONV_BACKWARD_FILTER
} ln_cuda_conv_kind;

typedef struct ln_cuda_conv_algo {
    ln_conv2d_shape shape;
    int kind;                  /* ln_cuda_conv_kind */
    int tf32;                  /* TF32 allowed when it was chosen */
    int algo;                  /* cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    cudnnMathType_t math;
    size_t workspace_bytes;
} ln_cuda_conv_algo;

/* Values an op returns to the host: written by a kernel, copied to pinned
 * memory, read after the stream is synchronised. */
typedef struct ln_cuda_scalars {
    double value;
    unsigned long long index;
} ln_cuda_scalars;

/* Block-partial results of reductions (one per block of the first pass). */
#define LN_CUDA_MAX_PARTIALS 1024

typedef struct ln_cuda_context {
    int device;                /* CUDA's device number */
    cudaStream_t stream;       /* every op of this device runs here, in order */
    cublasHandle_t cublas;
    int cublas_tf32;           /* the math mode set on the handle */
    void *cublas_workspace;    /* ours, so cuBLAS allocates nothing itself */
    cudnnHandle_t cudnn;
    cudnnTensorDescriptor_t x_desc, y_desc;
    cudnnFilterDescriptor_t w_desc;
    cudnnConvolutionDescriptor_t conv_desc;
    ln_cuda_conv_algo *algos;
    int algo_count, algo_capacity;
    void *workspace;           /* cuDNN workspace, grow-only */
    size_t workspace_bytes;
    ln_cuda_allocator allocator;
    /* pinned host staging for upload/download: two slots so one can be filled
     * while the other is still being copied */
    void *staging[2];
    size_t staging_bytes;      /* per slot */
    cudaEvent_t staging_done[2];
    int staging_next;
    double *partials;          /* device, LN_CUDA_MAX_PARTIALS */
    ln_cuda_scalars *scalars;  /* device */
    ln_cuda_scalars *scalars_host; /* pinned */
} ln_cuda_context;

/* --- errors -------------------------------------------------------------------
 * Every CUDA, cuBLAS and cuDNN call is checked; a failure becomes a message
 * like "conv2d_forward: cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM
 * (cuda/conv.c:88)" given to the core's ln_error (see attach), and the
 * function returns LN_ENOMEM for allocation failures, else LN_EDEVICE. */
void ln_cuda_set_host(const ln_host_api *host);
/* The core's reference backend (NULL before attach): host_staged.c runs it. */
const ln_backend *ln_cuda_reference(void);
int ln_cuda_error(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int ln_cuda_fail_cuda(cudaError_t e, const char *func, const char *call, const char *file,
                      int line);
int ln_cuda_fail_cublas(cublasStatus_t s, const char *func, const char *call,
                        const char *file, int line);
int ln_cuda_fail_cudnn(cudnnStatus_t s, const char *func, const char *call,
                       const char *file, int line);
/* "not supported" for a dtype an op does not handle. */
int ln_cuda_unsupported_dtype(const char *func, ln_dtype dtype);

#define LN_CUDA_CHECK(call)                                                      \
    do {                                                                         \
        cudaError_t ln_e_ = (call);                                              \
        if (ln_e_ != cudaSuccess)                                                \
            return ln_cuda_fail_cuda(ln_e_, __func__, #call, __FILE__, __LINE__); \
    } while (0)

#define LN_CUBLAS_CHECK(call)                                                      \
    do {                                                                           \
        cublasStatus_t ln_s_ = (call);                                             \
        if (ln_s_ != CUBLAS_STATUS_SUCCESS)                                        \
            return ln_cuda_fail_cublas(ln_s_, __func__, #call, __FILE__, __LINE__); \
    } while (0)

#define LN_CUDNN_CHECK(call)                                                      \
    do {                                                                          \
        cudnnStatus_t ln_s_ = (call);                                             \
        if (ln_s_ != CUDNN_STATUS_SUCCESS)                                        \
            return ln_cuda_fail_cudnn(ln_s_, __func__, #call, __FILE__, __LINE__); \
    } while (0)

/* After a kernel launch: a bad configuration or a missing kernel image shows
 * up here (faults inside the kernel show up at the next synchronising call). */
#define LN_CUDA_CHECK_LAUNCH(kernel_name)                                     \
    do {                                                                      \
        cudaError_t ln_e_ = cudaGetLastError();                               \
        if (ln_e_ != cudaSuccess)                                             \
            return ln_cuda_fail_cuda(ln_e_, __func__, kernel_name " launch",  \
                                     __FILE__, __LINE__);                     \
    } while (0)

/* Makes the context's device current for this host thread (cheap). */
#define LN_CUDA_ENTER(ctx) LN_CUDA_CHECK(cudaSetDevice((ctx)->device))

/* The size class an allocation of n bytes is served from (>= n). */
size_t ln_cuda_size_class(size_t n);

/* At close: returns every block, live or cached, to the driver. */
void ln_cuda_allocator_release_all(ln_cuda_context *ctx);

#ifdef __cplusplus
}
#endif

#endif
