/* The backend interface: one struct of function pointers per kind of device.
 *
 * The reference backend (ops_ref.c), the CPU backend (cpu/) and the CUDA backend
 * (cuda/) each fill one. Layers and tensor methods call through it and never ask
 * which device they are on. A NULL op slot means "not supported on this device",
 * reported as such by the caller, never silently replaced.
 *
 * Conventions for every op:
 *  - `ctx` is the device context the backend returned from `open`.
 *  - pointers are device pointers of that backend, already offset to the first
 *    element; every buffer is contiguous row-major unless a stride says otherwise.
 *  - sizes are elements, never bytes, unless the name says bytes.
 *  - ops return LN_OK or an ln_status after writing a message with host->error.
 *  - ops are queued in order on the device's stream; nothing waits for the
 *    device unless the op returns a value to the host (reductions, loss).
 *  - "accumulate" means out += result; otherwise out = result.
 *  - the core has checked shapes, dtypes and devices before calling: backends
 *    may assume their arguments are consistent.
 */
#ifndef LUNET_BACKEND_H
#define LUNET_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"

#define LN_BACKEND_ABI 1
#define LN_MAX_DIMS 8

/* What a backend may call back into the core for. Handed over by `attach`,
 * because a backend built as its own shared library cannot link to the core. */
struct ln_backend;
typedef struct ln_host_api {
    int (*error)(int code, const char *fmt, ...);
    /* The reference backend (ops_ref.c), on host memory: what a device runs
     * host-staged where it keeps a kernel off (cuda/host_staged.c). */
    const struct ln_backend *reference;
    /* An allocator in the host's page-locked memory may be offered here later. */
} ln_host_api;

/* A strided view, for the few ops that must write through views. */
typedef struct ln_strided {
    void *data;
    ln_dtype dtype;
    int ndim;
    int64_t shape[LN_MAX_DIMS];
    int64_t stride[LN_MAX_DIMS]; /* in elements */
} ln_strided;

static inline int64_t ln_strided_numel(const ln_strided *s)
{
    int64_t n = 1;
    for (int d = 0; d < s->ndim; d++)
        n *= s->shape[d];
    return n;
}

/* Row-major contiguous: the elements are data[0 .. numel-1] in order (a
 * dimension of size 1 may have any stride). */
static inline int ln_strided_is_contiguous(const ln_strided *s)
{
    int64_t expected = 1;
    for (int d = s->ndim - 1; d >= 0; d--) {
        if (s->shape[d] != 1 && s->stride[d] != expected)
            return 0;
        expected *= s->shape[d];
    }
    return 1;
}

/* Comparisons write 1 or 0 in the operands' dtype. */
typedef enum ln_binary_op {
    LN_ADD, LN_SUB, LN_MUL, LN_DIV, LN_EQ, LN_NE, LN_LT, LN_LE, LN_GT, LN_GE
} ln_binary_op;
/* LN_MEAN is for reduce_dim only; the whole-tensor `reduce` takes the others. */
typedef enum ln_reduce_op { LN_SUM, LN_MAX, LN_MIN, LN_MEAN } ln_reduce_op;

/* The unary family, one slot for all: X(NAME, "name") per op, its formula
 * (and, for activations, its gradient) in formulas.h. Adding an op here and
 * there gives it to every backend, the CPU's loops and the CUDA kernel. */
#define LN_UNARY_OPS(X)                                                       \
    X(EXP, "exp") X(LOG, "log") X(SQRT, "sqrt") X(ABS, "abs") X(TANH, "tanh") \
    X(SIGMOID, "sigmoid") X(RELU, "relu") X(LEAKY_RELU, "leaky_relu")         \
    X(GELU, "gelu") X(GELU_TANH, "gelu_tanh") X(POW, "pow") X(CLAMP, "clamp")
#define LN_UNARY_ENUM_ENTRY(name, str) LN_UNARY_##name,
typedef enum ln_unary_op { LN_UNARY_OPS(LN_UNARY_ENUM_ENTRY) LN_UNARY_COUNT } ln_unary_op;

/* alpha: leaky_relu's slope, pow's exponent; lo, hi: clamp's bounds
 * (+-INFINITY when absent). */
typedef struct ln_unary_params {
    float alpha;
    float lo, hi;
} ln_unary_params;
typedef enum ln_pool_mode { LN_POOL_MAX, LN_POOL_AVG } ln_pool_mode;

/* Device description, for reports. Strings are empty when unknown. */
typedef struct ln_device_info {
    char name[128];
    int cores;                 /* CPU */
    int threads;               /* CPU */
    char blas[128];            /* CPU */
    char kernels[128];         /* CPU: which fast kernels this build runs */
    int cc_major, cc_minor;    /* CUDA compute capability */
    uint64_t memory_bytes;     /* CUDA total memory */
    int multiprocessors;       /* CUDA */
    int driver_version;        /* CUDA, e.g. 12040 */
    int runtime_version;       /* CUDA */
    int cudnn_version;         /* e.g. 91900 */
    int cublas_version;        /* e.g. 130100 */
} ln_device_info;

/* Geometry of a 2-D convolution over NCHW input and KCRS weights. */
typedef struct ln_conv2d_shape {
    int n, c, h, w;            /* input */
    int k, r, s;               /* output channels, kernel height, kernel width */
    int stride_h, stride_w;
    int pad_h, pad_w;
    int p, q;                  /* output height and width */
} ln_conv2d_shape;

/* Geometry of a 2-D pooling window over NCHW input. */
typedef struct ln_pool2d_shape {
    int n, c, h, w;
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
    int p, q;
} ln_pool2d_shape;

/* A batch's geometry for the augmentations (lunet.transforms): images
 * [c, h, w]; the crop's output [c, oh, ow] from the input padded by
 * `padding`, whose window offsets range over range_y = h + 2 padding - oh + 1
 * and range_x = w + 2 padding - ow + 1. */
typedef struct ln_augment_geometry {
    int64_t c, h, w, oh, ow;
    int padding, range_y, range_x;
} ln_augment_geometry;

/* One optimizer update over a flat run of parameters. */
typedef struct ln_sgd_params {
    float lr, momentum, dampening, weight_decay;
    int nesterov;
    int first_step;            /* momentum buffer starts as the gradient */
} ln_sgd_params;

typedef struct ln_adam_params {
    float lr, beta1, beta2, eps, weight_decay;
    int64_t step;              /* 1 on the first update */
    /* AdamW: param *= 1 - lr * weight_decay before the update, and no
     * weight_decay * param added to the gradient (PyTorch's AdamW). */
    int decoupled_weight_decay;
} ln_adam_params;

typedef struct ln_backend {
    int abi;                   /* LN_BACKEND_ABI */
    const char *name;          /* "ref", "cpu", "cuda" */

    /* --- the device ------------------------------------------------------ */
    int (*attach)(const ln_host_api *host);
    /* How many devices exist; when none, writes why into `reason`. */
    int (*device_count)(int *count, char *reason, size_t reason_len);
    int (*open)(int index, void **ctx);
    void (*close)(void *ctx);
    int (*info)(void *ctx, ln_device_info *out);
    int (*synchronize)(void *ctx);
    int (*set_num_threads)(void *ctx, int n);

    /* --- memory ---------------------------------------------------------- */
    int (*alloc)(void *ctx, size_t nbytes, void **ptr);
    void (*free)(void *ctx, void *ptr);
    /* Host <-> device, contiguous bytes; both synchronous with respect to the
     * host buffer (it may be reused when the call returns). */
    int (*upload)(void *ctx, void *dst, const void *host_src, size_t nbytes);
    int (*download)(void *ctx, void *host_dst, const void *src, size_t nbytes);

    /* --- tensor ops ------------------------------------------------------ */
    /* dst[idx] = convert(src[idx]) over equal shapes, any strides and dtypes. */
    int (*copy)(void *ctx, const ln_strided *dst, const ln_strided *src);
    int (*fill)(void *ctx, const ln_strided *dst, double value);
    /* out = a OP b, all of `dtype` (LN_EQ writes 1 or 0 in `dtype`). */
    int (*binary)(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out);
    /* out = a OP s, or s OP a when scalar_first. */
    int (*binary_scalar)(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out);
    /* *result = reduction of x; waits for the device. */
    int (*reduce)(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result);
    /* y = op(x) elementwise, float32; x == y allowed. */
    int (*unary)(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,
                 const float *x, float *y);
    /* dx = dy * op'(x) for the activations (sigmoid, tanh, relu, leaky_relu,
     * gelu, gelu_tanh): x is the forward input, y its output; each formula
     * reads the one it needs. dx == dy allowed. */
    int (*unary_backward)(void *ctx, ln_unary_op op, const ln_unary_params *p,
                          int64_t n, const float *x, const float *y,
                          const float *dy, float *dx);
    /* x viewed as [outer, dim, inner], softmax (or log_softmax when `log`)
     * along dim, max subtracted; float32. */
    int (*softmax)(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,
                   const float *x, float *y);
    /* From the forward output y: softmax dx = y * (dy - sum(dy * y)),
     * log_softmax dx = dy - exp(y) * sum(dy). */
    int (*softmax_backward)(void *ctx, int log, int64_t outer, int64_t dim,
                            int64_t inner, const float *y, const float *dy,
                            float *dx);
    /* x viewed as [outer, dim, inner] (dim >= 1), float32: values[o, i] =
     * sum/mean/max/min along dim; for max and min, positions[o, i] = the
     * 1-based position of the first extreme (a NaN wins), else NULL. */
    int (*reduce_dim)(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim,
                      int64_t inner, const float *x, float *values,
                      int32_t *positions);
    /* x viewed as [outer, dim, inner]: out[o, i] = 1-based position of the
     * first maximum along dim (NaN counts as the maximum, as in PyTorch). */
    int (*argmax)(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,
                  int64_t inner, const void *x, int32_t *out);
    /* Row-major C[M,N] = alpha * op(A) op(B) + beta * C, float32 (CUDA may
     * also take float16/bfloat16 with float32 accumulation). */
    int (*gemm)(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m,
                int n, int k, float alpha, const void *a, int lda,
                const void *b, int ldb, float beta, void *c, int ldc);
    /* Counter-based random numbers (Philox4x32-10, see philox.h): element i
     * uses counter offset + i/4, so every backend draws the same numbers. */
    int (*rand_uniform)(void *ctx, ln_dtype dtype, int64_t n, void *out,
                        double lo, double hi, uint64_t seed, uint64_t offset);
    int (*rand_normal)(void *ctx, ln_dtype dtype, int64_t n, void *out,
                       double mean, double std, uint64_t seed, uint64_t offset);
    /* dst[i, :] = src[indices[i], :] / divisor, computed in float32 as
     * ToTensor does (x / 255): indices are 0-based int32 on the device; src
     * (src_rows rows) and dst dtypes may differ. A backend never reads outside
     * src: a row whose index is not in [0, src_rows) is filled with zeros
     * (the core reports such indices where it can read them: host memory). */
    int (*gather_rows)(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, int64_t src_rows, double divisor);

    /* --- layers (float32 unless stated) ----------------------------------- */
    int (*conv2d_forward)(void *ctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias /* or NULL */,
                          float *y);
    int (*conv2d_backward_data)(void *ctx, const ln_conv2d_shape *s,
                                const float *dy, const float *w, float *dx);
    /* dw (and db when not NULL) accumulate when `accumulate` is set. */
    int (*conv2d_backward_filter)(void *ctx, const ln_conv2d_shape *s,
                                  const float *x, const float *dy, float *dw,
                                  float *db, int accumulate);
    /* Padding never wins a max (the core keeps it at most half the kernel,
     * so every window holds an input element); averages divide by the whole
     * window, padding included (PyTorch's count_include_pad=True). */
    int (*pool2d_forward)(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y);
    /* Max pooling routes each gradient to the first maximum of its window. */
    int (*pool2d_backward)(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy,
                           float *dx);
    /* y = max(x, 0); x == y allowed. */
    int (*relu_forward)(void *ctx, int64_t n, const float *x, float *y);
    /* dx = dy where y > 0 else 0; dx == dy allowed. */
    int (*relu_backward)(void *ctx, int64_t n, const float *y, const float *dy,
                         float *dx);
    /* y[n, c, i] += bias[c] for y viewed as [outer, channels, inner]. */
    int (*bias_add)(void *ctx, int64_t outer, int64_t channels, int64_t inner,
                    float *y, const float *bias);
    /* db[c] (+)= sum over n, i of dy[n, c, i]. */
    int (*bias_backward)(void *ctx, int64_t outer, int64_t channels,
                         int64_t inner, const float *dy, float *db,
                         int accumulate);
    /* Inverted dropout: mask[i] = 1/(1-p) with probability 1-p, else 0 (a
     * float mask, drawn like rand_uniform); y = x * mask. Exactly: element
     * i is kept when ln_philox_uniform(seed, offset, i) < 1.0f - p, so every
     * backend draws the same mask. */
    int (*dropout_forward)(void *ctx, int64_t n, float p, const float *x,
                           float *y, float *mask, uint64_t seed,
                           uint64_t offset);
    /* Batch normalisation over [n, c, inner]. Training: uses batch statistics,
     * saves mean and 1/sqrt(var+eps) per channel, updates running stats with
     * PyTorch's momentum rule (unbiased variance). Eval: running stats. */
    int (*batchnorm_forward_train)(void *ctx, int64_t n, int64_t c,
                                   int64_t inner, const float *x,
                                   const float *gamma, const float *beta,
                                   float *y, float *running_mean,
                                   float *running_var, float momentum,
                                   float eps, float *save_mean,
                                   float *save_invstd);
    int (*batchnorm_forward_eval)(void *ctx, int64_t n, int64_t c,
                                  int64_t inner, const float *x,
                                  const float *gamma, const float *beta,
                                  const float *running_mean,
                                  const float *running_var, float eps,
                                  float *y);
    /* dx = input gradient; dgamma, dbeta accumulate when `accumulate`. */
    int (*batchnorm_backward)(void *ctx, int64_t n, int64_t c, int64_t inner,
                              const float *x, const float *dy,
                              const float *gamma, const float *save_mean,
                              const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta, int accumulate);
    /* Mean softmax cross-entropy of logits [n, classes] against 1-based int32
     * labels. Writes the loss to *loss_host (waits for the device). A label
     * outside 1..classes is not read: *bad_index gets the 0-based position of
     * the first such label, else -1, and the loss is then meaningless. */
    int (*cross_entropy_forward)(void *ctx, int64_t n, int64_t classes,
                                 const float *logits, const int32_t *labels,
                                 double *loss_host, int64_t *bad_index);
    /* dlogits = scale * (softmax(logits) - onehot(labels)). */
    int (*cross_entropy_backward)(void *ctx, int64_t n, int64_t classes,
                                  const float *logits, const int32_t *labels,
                                  float scale, float *dlogits);

    /* --- optimizers -------------------------------------------------------- */
    int (*sgd_step)(void *ctx, const ln_sgd_params *p, int64_t n, float *param,
                    const float *grad, float *momentum_buffer /* or NULL */);
    int (*adam_step)(void *ctx, const ln_adam_params *p, int64_t n,
                     float *param, const float *grad, float *exp_avg,
                     float *exp_avg_sq);

    /* --- fused blocks (optional: NULL where a backend has none) ------------ */
    /* Conv2d (+ bias), ReLU, then 2x2 max pooling with stride 2 as one op, so
     * the convolution's output never has to be written out. y is [N, K, P/2,
     * Q/2] (rounded down) and holds the values of the three layers run one
     * after the other (first maximum wins, NaN counts as the maximum);
     * `winner` (uint8, the same shape) is where the gradient of each pooled
     * value goes: the position 0..3 of the first maximum in its window
     * (row-major), or 4 when that maximum is not positive, where ReLU passes
     * no gradient. `winner` may be NULL (evaluate mode): then only y is
     * written, with the same values. */
    int (*conv2d_relu_maxpool2x2_forward)(void *ctx, const ln_conv2d_shape *s,
                                          const float *x, const float *w,
                                          const float *bias /* or NULL */,
                                          float *y, uint8_t *winner);
    /* From the pooled gradient dy and `winner`: dx = the input gradient
     * (skipped when NULL); dw (and db when not NULL) the parameter gradients,
     * accumulated when `accumulate` is set. */
    int (*conv2d_relu_maxpool2x2_backward)(void *ctx, const ln_conv2d_shape *s,
                                           const float *x, const float *w,
                                           const float *dy, const uint8_t *winner,
                                           float *dx, float *dw, float *db,
                                           int accumulate);

    /* --- the loss left on the device (optional) ----------------------------- */
    /* cross_entropy_forward's mean loss without waiting for it: loss is
     * float32 on the device; loss[0] = the mean, or with `accumulate` the
     * mean (a double) is added to the pair {sum, compensation} in loss[0..1]
     * (loss_on_device.h). A label outside 1..classes makes the result NaN.
     * Host-memory backends need none (the core computes it in place). */
    int (*cross_entropy_forward_device)(void *ctx, int64_t n, int64_t classes,
                                        const float *logits, const int32_t *labels,
                                        float *loss, int accumulate);

    /* --- reading without waiting (optional; async_read.h) ------------------- */
    /* read_async_begin queues a copy of `bytes` (at most 32) from device
     * memory `src` into the staging behind *token (made on the first call,
     * NULL before, and reused), after every op queued so far, and returns
     * without waiting; read_async_poll says whether the last queued copy is
     * complete (*ready) and then puts its bytes in dst; read_async_free
     * releases the staging. Host-memory backends need none. */
    int (*read_async_begin)(void *ctx, const void *src, size_t bytes, void **token);
    int (*read_async_poll)(void *ctx, void *token, void *dst, int *ready);
    void (*read_async_free)(void *ctx, void *token);

    /* --- augmentation on the device (optional) ------------------------------ */
    /* lunet.transforms on float32 batches of n images [c, h, w] in device
     * memory, drawing as csrc/augment_image.h does, so a seed gives the very
     * batches of the host path (csrc/augment.c, which host-memory devices run
     * instead). Crop: out = each image's window (zeros outside the image).
     * Flip: in place, image i when drawn with probability p. Normalize: in
     * place, (x - mean[k]) / std[k] for channel k; mean and std are host
     * arrays of c floats. */
    int (*augment_random_crop)(void *ctx, int64_t n, const ln_augment_geometry *g,
                               uint64_t seed, uint64_t counter, const float *in, float *out);
    int (*augment_random_hflip)(void *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                                double p, uint64_t seed, uint64_t counter, float *data);
    int (*augment_normalize)(void *ctx, int64_t n, int64_t c, int64_t plane,
                             const float *mean, const float *std, float *data);
} ln_backend;

/* The op slots' prototypes for a backend whose functions are named
 * <prefix>_<slot> (ops_ref.h, cpu/cpu.h, cuda/lunet_cuda.h), written once here,
 * in groups, so that a header declares the groups its backend implements:
 * LN_DECLARE_TENSOR_OPS, _INDEX_RANDOM_OPS, _FAMILY_OPS, _LAYER_OPS,
 * _LOSS_OPS, _FUSED_OPS, _OPTIM_OPS. The slots' meaning is documented in
 * ln_backend above. */
#define LN_DECLARE_TENSOR_OPS(prefix)                                                    \
    int prefix##_copy(void *ctx, const ln_strided *dst, const ln_strided *src);          \
    int prefix##_fill(void *ctx, const ln_strided *dst, double value);                   \
    int prefix##_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,           \
                        const void *a, const void *b, void *out);                        \
    int prefix##_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,    \
                               const void *a, double s, int scalar_first, void *out);    \
    int prefix##_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,           \
                        const void *x, double *result);                                  \
    int prefix##_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n, \
                      int k, float alpha, const void *a, int lda, const void *b,         \
                      int ldb, float beta, void *c, int ldc);                            \
    int prefix##_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,             \
                             ln_dtype dst_dtype, void *dst, int64_t row_elems,           \
                             const int32_t *indices, int64_t n, int64_t src_rows,        \
                             double divisor);

#define LN_DECLARE_INDEX_RANDOM_OPS(prefix)                                              \
    int prefix##_argmax(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,           \
                        int64_t inner, const void *x, int32_t *out);                     \
    int prefix##_rand_uniform(void *ctx, ln_dtype dtype, int64_t n, void *out,           \
                              double lo, double hi, uint64_t seed, uint64_t offset);     \
    int prefix##_rand_normal(void *ctx, ln_dtype dtype, int64_t n, void *out,            \
                             double mean, double std, uint64_t seed, uint64_t offset);

#define LN_DECLARE_LAYER_OPS(prefix)                                                     \
    int prefix##_conv2d_forward(void *ctx, const ln_conv2d_shape *s, const float *x,     \
                                const float *w, const float *bias, float *y);            \
    int prefix##_conv2d_backward_data(void *ctx, const ln_conv2d_shape *s,               \
                                      const float *dy, const float *w, float *dx);       \
    int prefix##_conv2d_backward_filter(void *ctx, const ln_conv2d_shape *s,             \
                                        const float *x, const float *dy, float *dw,      \
                                        float *db, int accumulate);                      \
    int prefix##_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,  \
                                const float *x, float *y);                               \
    int prefix##_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s, \
                                 const float *x, const float *y, const float *dy,        \
                                 float *dx);                                             \
    int prefix##_relu_forward(void *ctx, int64_t n, const float *x, float *y);           \
    int prefix##_relu_backward(void *ctx, int64_t n, const float *y, const float *dy,    \
                               float *dx);                                               \
    int prefix##_bias_add(void *ctx, int64_t outer, int64_t channels, int64_t inner,     \
                          float *y, const float *bias);                                  \
    int prefix##_bias_backward(void *ctx, int64_t outer, int64_t channels,               \
                               int64_t inner, const float *dy, float *db,                \
                               int accumulate);                                          \
    int prefix##_dropout_forward(void *ctx, int64_t n, float p, const float *x,          \
                                 float *y, float *mask, uint64_t seed, uint64_t offset); \
    int prefix##_batchnorm_forward_train(void *ctx, int64_t n, int64_t c, int64_t inner, \
                                         const float *x, const float *gamma,             \
                                         const float *beta, float *y,                    \
                                         float *running_mean, float *running_var,        \
                                         float momentum, float eps, float *save_mean,    \
                                         float *save_invstd);                            \
    int prefix##_batchnorm_forward_eval(void *ctx, int64_t n, int64_t c, int64_t inner,  \
                                        const float *x, const float *gamma,              \
                                        const float *beta, const float *running_mean,    \
                                        const float *running_var, float eps, float *y);  \
    int prefix##_batchnorm_backward(void *ctx, int64_t n, int64_t c, int64_t inner,      \
                                    const float *x, const float *dy, const float *gamma, \
                                    const float *save_mean, const float *save_invstd,    \
                                    float *dx, float *dgamma, float *dbeta,              \
                                    int accumulate);

#define LN_DECLARE_LOSS_OPS(prefix)                                                      \
    int prefix##_cross_entropy_forward(void *ctx, int64_t n, int64_t classes,            \
                                       const float *logits, const int32_t *labels,       \
                                       double *loss_host, int64_t *bad_index);           \
    int prefix##_cross_entropy_backward(void *ctx, int64_t n, int64_t classes,           \
                                        const float *logits, const int32_t *labels,      \
                                        float scale, float *dlogits);

#define LN_DECLARE_FUSED_OPS(prefix)                                                     \
    int prefix##_conv2d_relu_maxpool2x2_forward(void *ctx, const ln_conv2d_shape *s,     \
                                                const float *x, const float *w,          \
                                                const float *bias, float *y,             \
                                                uint8_t *winner);                        \
    int prefix##_conv2d_relu_maxpool2x2_backward(void *ctx, const ln_conv2d_shape *s,    \
                                                 const float *x, const float *w,         \
                                                 const float *dy, const uint8_t *winner, \
                                                 float *dx, float *dw, float *db,        \
                                                 int accumulate);

#define LN_DECLARE_OPTIM_OPS(prefix)                                                     \
    int prefix##_sgd_step(void *ctx, const ln_sgd_params *p, int64_t n, float *param,    \
                          const float *grad, float *momentum_buffer);                    \
    int prefix##_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,  \
                           const float *grad, float *exp_avg, float *exp_avg_sq);

#define LN_DECLARE_FAMILY_OPS(prefix)                                                    \
    int prefix##_unary(void *ctx, ln_unary_op op, const ln_unary_params *p, int64_t n,   \
                       const float *x, float *y);                                        \
    int prefix##_unary_backward(void *ctx, ln_unary_op op, const ln_unary_params *p,     \
                                int64_t n, const float *x, const float *y,               \
                                const float *dy, float *dx);                             \
    int prefix##_softmax(void *ctx, int log, int64_t outer, int64_t dim, int64_t inner,  \
                         const float *x, float *y);                                      \
    int prefix##_softmax_backward(void *ctx, int log, int64_t outer, int64_t dim,        \
                                  int64_t inner, const float *y, const float *dy,        \
                                  float *dx);                                            \
    int prefix##_reduce_dim(void *ctx, ln_reduce_op op, int64_t outer, int64_t dim,      \
                            int64_t inner, const float *x, float *values,                \
                            int32_t *positions);

#endif
