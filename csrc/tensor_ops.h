/* Tensor math: argument checks, output allocation and dispatch to the device's
 * backend. Every function validates everything before it allocates, and on
 * failure leaves `out` released, so the caller has nothing to clean up. */
#ifndef LUNET_TENSOR_OPS_H
#define LUNET_TENSOR_OPS_H

#include "tensor.h"

/* out = a OP b (same devices and dtypes; shapes broadcast as in PyTorch, see
 * ops/broadcast.h); comparisons give 1/0 in a's dtype. */
int ln_op_binary(ln_tensor *out, ln_binary_op op, const ln_tensor *a, const ln_tensor *b);
/* out = a OP s, or s OP a when scalar_first. */
int ln_op_binary_scalar(ln_tensor *out, ln_binary_op op, const ln_tensor *a,
                        double s, int scalar_first);

/* t = t OP s in place, for a contiguous t (no temporary). */
int ln_op_binary_scalar_self(ln_tensor *t, ln_binary_op op, double s);

/* Sum, max or min of every element, as a double (waits for the device). */
int ln_op_reduce(const ln_tensor *t, ln_reduce_op op, double *result);
/* int32 1-based positions of the maximum along 0-based `dim` (removed). */
int ln_op_argmax(ln_tensor *out, const ln_tensor *t, int dim);
/* 2-D matrix product. */
int ln_op_matmul(ln_tensor *out, const ln_tensor *a, const ln_tensor *b);
/* In place, from the global generator. */
int ln_op_rand_uniform(ln_tensor *t, double lo, double hi);
int ln_op_rand_normal(ln_tensor *t, double mean, double std);
/* out[i, ...] = src[indices[i], ...] / divisor, into an existing `out` of
 * shape [#indices, src rows...]; indices are 0-based int32 on src's device. */
int ln_op_gather_rows(ln_tensor *out, const ln_tensor *src, const ln_tensor *indices,
                      double divisor);

/* Shared checks, for the layer code too. */
int ln_check_same_device(const char *what, const ln_tensor *a, const ln_tensor *b);
int ln_check_dtype(const char *what, const ln_tensor *t, ln_dtype dtype);

#endif
