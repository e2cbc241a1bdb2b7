/* The reference kernels: plain loops, written to be read, never optimised.
 * They fill the "ref" backend, serve as the CPU backend's implementation of
 * whatever has no fast path yet, and are the oracle every fast kernel is tested
 * against. Signatures are exactly the backend slots (see backend.h). */
#ifndef LUNET_OPS_REF_H
#define LUNET_OPS_REF_H

#include "backend.h"

int ln_ref_copy(void *ctx, const ln_strided *dst, const ln_strided *src);
int ln_ref_fill(void *ctx, const ln_strided *dst, double value);
int ln_ref_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out);
int ln_ref_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out);
LN_DECLARE_FAMILY_OPS(ln_ref)
int ln_ref_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result);
int ln_ref_argmax(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,
                  int64_t inner, const void *x, int32_t *out);
int ln_ref_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc);
int ln_ref_rand_uniform(void *ctx, ln_dtype dtype, int64_t n, void *out,
                        double lo, double hi, uint64_t seed, uint64_t offset);
int ln_ref_rand_normal(void *ctx, ln_dtype dtype, int64_t n, void *out,
                       double mean, double std, uint64_t seed, uint64_t offset);
int ln_ref_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, int64_t src_rows, double divisor);

/* layers */
int ln_ref_conv2d_forward(void *ctx, const ln_conv2d_shape *s, const float *x,
                          const float *w, const float *bias, float *y);
int ln_ref_conv2d_backward_data(void *ctx, const ln_conv2d_shape *s, const float *dy,
                                const float *w, float *dx);
int ln_ref_conv2d_backward_filter(void *ctx, const ln_conv2d_shape *s, const float *x,
                                  const float *dy, float *dw, float *db, int accumulate);
int ln_ref_conv2d_relu_maxpool2x2_forward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                          const float *w, const float *bias, float *y,
                                          uint8_t *winner);
int ln_ref_conv2d_relu_maxpool2x2_backward(void *ctx, const ln_conv2d_shape *s, const float *x,
                                           const float *w, const float *dy,
                                           const uint8_t *winner, float *dx, float *dw,
                                           float *db, int accumulate);
int ln_ref_pool2d_forward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                          const float *x, float *y);
int ln_ref_pool2d_backward(void *ctx, ln_pool_mode mode, const ln_pool2d_shape *s,
                           const float *x, const float *y, const float *dy, float *dx);
int ln_ref_relu_forward(void *ctx, int64_t n, const float *x, float *y);
int ln_ref_relu_backward(void *ctx, int64_t n, const float *y, const float *dy, float *dx);
int ln_ref_bias_add(void *ctx, int64_t outer, int64_t channels, int64_t inner, float *y,
                    const float *bias);
int ln_ref_bias_backward(void *ctx, int64_t outer, int64_t channels, int64_t inner,
                         const float *dy, float *db, int accumulate);
int ln_ref_dropout_forward(void *ctx, int64_t n, float p, const float *x, float *y,
                           float *mask, uint64_t seed, uint64_t offset);
int ln_ref_batchnorm_forward_train(void *ctx, int64_t n, int64_t c, int64_t inner,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *running_mean, float *running_var,
                                   float momentum, float eps, float *save_mean,
                                   float *save_invstd);
int ln_ref_batchnorm_forward_eval(void *ctx, int64_t n, int64_t c, int64_t inner,
                                  const float *x, const float *gamma, const float *beta,
                                  const float *running_mean, const float *running_var,
                                  float eps, float *y);
int ln_ref_batchnorm_backward(void *ctx, int64_t n, int64_t c, int64_t inner,
                              const float *x, const float *dy, const float *gamma,
                              const float *save_mean, const float *save_invstd, float *dx,
                              float *dgamma, float *dbeta, int accumulate);
int ln_ref_cross_entropy_forward(void *ctx, int64_t n, int64_t classes,
                                 const float *logits, const int32_t *labels,
                                 double *loss_host, int64_t *bad_index);
int ln_ref_cross_entropy_backward(void *ctx, int64_t n, int64_t classes,
                                  const float *logits, const int32_t *labels, float scale,
                                  float *dlogits);

/* optimizers */
int ln_ref_sgd_step(void *ctx, const ln_sgd_params *p, int64_t n, float *param,
                    const float *grad, float *momentum_buffer);
int ln_ref_adam_step(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                     const float *grad, float *exp_avg, float *exp_avg_sq);

#endif
