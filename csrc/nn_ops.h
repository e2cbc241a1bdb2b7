/* Layer, loss and optimizer ops on tensors: argument checks, then dispatch to
 * the device's backend (see backend.h for what each kernel computes).
 *
 * Every op writes into outputs the caller allocated, so a layer can allocate
 * them once per input shape and reuse them: nothing here allocates on the hot
 * path (a strided input is copied to contiguous memory first, and the rare
 * eval-mode batch-norm backward uses temporaries). Inputs may be any float32
 * tensors on the op's device; outputs, parameters, gradients and optimizer
 * state must be contiguous float32 and must not share memory with an input.
 * Messages name the tensors and their shapes; the binding prefixes them with
 * the caller ("lunet.nn.Linear:forward: expected input [N, 6272], got ..."). */
#ifndef LUNET_NN_OPS_H
#define LUNET_NN_OPS_H

#include "tensor.h"

typedef struct ln_conv2d_params {
    int stride_h, stride_w;
    int pad_h, pad_w;
} ln_conv2d_params;

typedef struct ln_pool2d_params {
    int kernel_h, kernel_w;
    int stride_h, stride_w;
    int pad_h, pad_w;
} ln_pool2d_params;

/* --- convolution: x [N, C, H, W], w [K, C, R, S], bias [K], y [N, K, P, Q] --- */

/* The geometry alone (kernel and stride >= 1, padding >= 0): the rule the
 * shape check below applies, and that nn.Conv2d's constructor asks for. */
int ln_nn_conv2d_check_params(int kernel_h, int kernel_w, const ln_conv2d_params *p);

/* Checks x and w against each other and the geometry (stride >= 1, padding
 * >= 0, kernel no larger than the padded input) and fills `s`. */
int ln_nn_conv2d_shape(const ln_tensor *x, const ln_tensor *w, const ln_conv2d_params *p,
                       ln_conv2d_shape *s);
int ln_nn_conv2d_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         const ln_conv2d_params *p, ln_tensor *y);
/* dx = gradient w.r.t. x (x gives only the shape). */
int ln_nn_conv2d_backward_data(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                               const ln_conv2d_params *p, ln_tensor *dx);
/* dw (and db unless NULL) = (or +=, when accumulate) the parameter gradients. */
int ln_nn_conv2d_backward_filter(const ln_tensor *x, const ln_tensor *dy,
                                 const ln_conv2d_params *p, ln_tensor *dw, ln_tensor *db,
                                 int accumulate);

/* --- the fused block: conv2d (+ bias), ReLU, 2x2 max pooling with stride 2 --
 * y [N, K, P/2, Q/2] and winner (uint8, the same shape) as backend.h defines
 * them; the values are those of the three layers run one after the other. */

/* Whether the device's backend has the fused block. */
int ln_nn_conv_block_supported(const ln_device *dev);
/* The convolution's geometry, and the pooled output's shape. */
int ln_nn_conv_block_shape(const ln_tensor *x, const ln_tensor *w, const ln_conv2d_params *p,
                           ln_conv2d_shape *s, int64_t pooled_shape[4]);
int ln_nn_conv_block_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                             const ln_conv2d_params *p, ln_tensor *y, ln_tensor *winner);
/* dx (unless NULL) = the input gradient; dw and db (unless NULL) = (or +=,
 * when accumulate) the parameter gradients. */
int ln_nn_conv_block_backward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                              const ln_tensor *winner, const ln_conv2d_params *p, ln_tensor *dx,
                              ln_tensor *dw, ln_tensor *db, int accumulate);

/* --- fully connected: x [N, in], w [out, in], bias [out], y [N, out] --------- */

/* Checks x [N, in] against w [out, in], and dy [N, out] against w. */
int ln_nn_linear_check(const ln_tensor *x, const ln_tensor *w);
int ln_nn_linear_check_grad(const ln_tensor *dy, const ln_tensor *w);
int ln_nn_linear_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         ln_tensor *y);
int ln_nn_linear_backward_data(const ln_tensor *dy, const ln_tensor *w, ln_tensor *dx);
int ln_nn_linear_backward_filter(const ln_tensor *x, const ln_tensor *dy, ln_tensor *dw,
                                 ln_tensor *db, int accumulate);

/* --- pooling: x [N, C, H, W], y [N, C, P, Q] --------------------------------- */

/* The window alone (kernel and stride >= 1, 0 <= padding <= kernel / 2): the
 * rule the shape check below applies, and that the pools' constructors ask for. */
int ln_nn_pool2d_check_params(const ln_pool2d_params *p);

/* Checks the window (kernel and stride >= 1, 0 <= padding <= kernel / 2,
 * kernel no larger than the padded input) and fills `s`. */
int ln_nn_pool2d_shape(const ln_tensor *x, const ln_pool2d_params *p, ln_pool2d_shape *s);
int ln_nn_pool2d_forward(ln_pool_mode mode, const ln_tensor *x, const ln_pool2d_params *p,
                         ln_tensor *y);
int ln_nn_pool2d_backward(ln_pool_mode mode, const ln_tensor *x, const ln_tensor *y,
                          const ln_tensor *dy, const ln_pool2d_params *p, ln_tensor *dx);

/* --- elementwise: any shape ---------------------------------------------------- */

int ln_nn_relu_forward(const ln_tensor *x, ln_tensor *y);
int ln_nn_relu_backward(const ln_tensor *y, const ln_tensor *dy, ln_tensor *dx);
/* Inverted dropout with probability p in [0, 1], from the global generator. */
int ln_nn_dropout_forward(const ln_tensor *x, double p, ln_tensor *y, ln_tensor *mask);
int ln_nn_dropout_backward(const ln_tensor *dy, const ln_tensor *mask, ln_tensor *dx);

/* --- batch normalisation: x [N, C, ...], per-channel tensors [C] ------------- */

/* Checks x [N, C, ...] against gamma [C]; n = N, c = C, inner = the rest. */
int ln_nn_batchnorm_check(const ln_tensor *x, const ln_tensor *gamma, int64_t *n,
                          int64_t *c, int64_t *inner);
/* Training uses batch statistics, fills save_mean and save_invstd and updates
 * the running statistics; eval uses the running statistics (save_* unused). */
int ln_nn_batchnorm_forward(const ln_tensor *x, const ln_tensor *gamma,
                            const ln_tensor *beta, ln_tensor *running_mean,
                            ln_tensor *running_var, int training, double momentum,
                            double eps, ln_tensor *y, ln_tensor *save_mean,
                            ln_tensor *save_invstd);
/* Backward of a training-mode forward. */
int ln_nn_batchnorm_backward(const ln_tensor *x, const ln_tensor *dy, const ln_tensor *gamma,
                             const ln_tensor *save_mean, const ln_tensor *save_invstd,
                             ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta,
                             int accumulate);
/* Backward of an eval-mode forward (the statistics are constants). */
int ln_nn_batchnorm_backward_eval(const ln_tensor *x, const ln_tensor *dy,
                                  const ln_tensor *gamma, const ln_tensor *running_mean,
                                  const ln_tensor *running_var, double eps, ln_tensor *dx,
                                  ln_tensor *dgamma, ln_tensor *dbeta, int accumulate);

/* --- loss: logits [N, C] float32, labels [N] int32 in 1..C -------------------- */

/* Checks logits [N, C] (N, C >= 1) against int32 labels [N]. */
int ln_nn_cross_entropy_check(const ln_tensor *logits, const ln_tensor *labels);
/* Mean cross-entropy; a label outside 1..C is an error naming its position. */
int ln_nn_cross_entropy_forward(const ln_tensor *logits, const ln_tensor *labels,
                                double *loss);
/* dlogits = scale * (softmax(logits) - onehot(labels)). */
int ln_nn_cross_entropy_backward(const ln_tensor *logits, const ln_tensor *labels,
                                 double scale, ln_tensor *dlogits);

/* --- optimizers: param, grad and state of one shape --------------------------- */

/* momentum_buffer may be NULL when p->momentum is 0. */
int ln_nn_sgd_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *momentum_buffer,
                   const ln_sgd_params *p);
int ln_nn_adam_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *exp_avg,
                    ln_tensor *exp_avg_sq, const ln_adam_params *p);

#endif
