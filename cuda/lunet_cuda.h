/* The CUDA backend's entry points: one function per slot of ln_backend (see
 * csrc/backend.h for what each computes) plus the few module-level controls
 * that lua_cuda.c exposes as lunet.cuda.*.
 *
 * C linkage throughout: the slots live in .c files (host code calling the CUDA
 * runtime, cuBLAS and cuDNN) and in .cu files (our kernels), and the backend
 * struct that lists them is plain C (backend_cuda.c). */
#ifndef LUNET_CUDA_H
#define LUNET_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Not const: the unverified kernels' slots are switched (unverified.c). */
extern ln_backend ln_cuda_backend;

/* --- the device (context.c) ------------------------------------------------ */
int ln_cuda_attach(const ln_host_api *host);
int ln_cuda_device_count(int *count, char *reason, size_t reason_len);
int ln_cuda_open(int index, void **ctx);
void ln_cuda_close(void *ctx);
int ln_cuda_info(void *ctx, ln_device_info *out);
int ln_cuda_synchronize(void *ctx);
int ln_cuda_set_num_threads(void *ctx, int n);

/* --- memory (allocator.c, transfer.c) -------------------------------------- */
int ln_cuda_alloc(void *ctx, size_t nbytes, void **ptr);
void ln_cuda_free(void *ctx, void *ptr);
int ln_cuda_upload(void *ctx, void *dst, const void *host_src, size_t nbytes);
int ln_cuda_download(void *ctx, void *host_dst, const void *src, size_t nbytes);

/* --- tensor ops -------------------------------------------------------------- */
LN_DECLARE_TENSOR_OPS(ln_cuda)
LN_DECLARE_INDEX_RANDOM_OPS(ln_cuda)
/* The unary, softmax and reduce_dim families (families.cu). */
LN_DECLARE_FAMILY_OPS(ln_cuda)

/* --- layers, loss and optimizers (no fused block: cuDNN's three ops run) ----- */
LN_DECLARE_LAYER_OPS(ln_cuda)
LN_DECLARE_LOSS_OPS(ln_cuda)
int ln_cuda_cross_entropy_forward_device(void *ctx, int64_t n, int64_t classes,
                                        const float *logits, const int32_t *labels,
                                        float *loss, int accumulate);

/* --- augmentation (augment.cu) ------------------------------------------------- */
int ln_cuda_augment_random_crop(void *ctx, int64_t n, const ln_augment_geometry *g,
                                uint64_t seed, uint64_t counter, const float *in, float *out);
int ln_cuda_augment_random_hflip(void *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                                 double p, uint64_t seed, uint64_t counter, float *data);
int ln_cuda_augment_normalize(void *ctx, int64_t n, int64_t c, int64_t plane,
                              const float *mean, const float *std, float *data);

/* --- optimizers ---------------------------------------------------------------- */
LN_DECLARE_OPTIM_OPS(ln_cuda)

/* --- host-staged slots (host_staged.c): the reference backend on host copies -- */
int ln_cuda_staged_unary(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                         const float *x, float *y);
int ln_cuda_staged_unary_backward(void *ctx, ln_unary_op op, const ln_unary_params *p,
                                  int64_t n, const float *x, const float *y, const float *dy,
                                  float *dx);
int ln_cuda_staged_softmax(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                           const float *x, float *y);
int ln_cuda_staged_softmax_backward(void *ctx, int log, int64_t outer, int64_t dim,
                                    int64_t inner, const float *y, const float *dy, float *dx);
int ln_cuda_staged_reduce_dim(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim,
                              int64_t inner, const float *x, float *values, int32_t *positions);
int ln_cuda_staged_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n, const void *a,
                          const void *b, void *out);
int ln_cuda_staged_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                                 const void *a, double scalar, int scalar_first, void *out);
int ln_cuda_staged_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                             const float *grad, float *exp_avg, float *exp_avg_sq);

/* --- the kernels never run on a GPU (unverified.c) ----------------------------- */
/* Points b's slots at those kernels (unverified != 0) or at their host-staged
 * stand-ins; the optional loss slot is left empty when off. */
void ln_cuda_choose_kernels(ln_backend *b, int unverified);
/* The same for ln_cuda_backend, remembered for ln_cuda_get_unverified_kernels. */
void ln_cuda_set_unverified_kernels(int on);
int ln_cuda_get_unverified_kernels(void);
/* One line for device info and reports: which of them run host-staged. */
const char *ln_cuda_kernels_note(void);

/* --- module-level controls (lunet.cuda.*) ------------------------------------- */

/* TF32 tensor-core math for float32 GEMM and convolution. Off by default so
 * results match the CPU; applies to every device from the next op on. */
void ln_cuda_set_tf32(int enabled);
int ln_cuda_get_tf32(void);

/* How many devices the driver reports (0 with the reason when none). Asks the
 * driver once and remembers the answer. */
int ln_cuda_devices(const char **reason);

typedef struct ln_cuda_memory_stats {
    uint64_t allocated_bytes;   /* held by live tensors and workspaces */
    uint64_t cached_bytes;      /* freed blocks kept for reuse */
    uint64_t peak_bytes;        /* largest allocated_bytes so far */
    uint64_t device_allocations; /* cudaMalloc calls made */
    uint64_t cache_hits;        /* allocations served from the cache */
    uint64_t device_frees;      /* cudaFree calls made (empty_cache, OOM retry) */
    uint64_t conv_algorithms;   /* convolution shapes with a chosen algorithm */
    uint64_t workspace_bytes;   /* cuDNN workspace held */
} ln_cuda_memory_stats;

/* The context of device `index` when it has been opened, else NULL. */
void *ln_cuda_context_of(int index);
void ln_cuda_memory_stats_of(void *ctx, ln_cuda_memory_stats *out);
/* Returns every cached (free) block to the driver. */
int ln_cuda_empty_cache(void *ctx);
/* Checks of this module's host-side logic that need no GPU: the dtype
 * conversions the kernels use (their host build) against csrc/dtype.c, the
 * allocator's size classes, and the error messages of the check macros.
 * Returns the number of failures (the first ones described in `report`),
 * and how many checks ran; `samples` gets one message of each kind (CUDA,
 * cuBLAS, cuDNN), one per line. */
int ln_cuda_self_test(char *report, size_t report_len, long *checks, char *samples,
                      size_t samples_len);

/* Makes one refused call each to the CUDA runtime, cuBLAS and cuDNN on an
 * open device and writes the messages they become; returns LN_OK when the
 * device still works afterwards. */
int ln_cuda_error_probe(void *ctx, char messages[3][512]);

/* The message of the backend's last error (also given to the core). */
const char *ln_cuda_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
