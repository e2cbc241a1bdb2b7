/* The core side of the unary, softmax and reduce_dim op families: each checks
 * its arguments once, makes its inputs contiguous float32, calls its backend
 * slot and releases what it made. Errors name the shapes; the binding adds
 * the function's name. */
#ifndef LUNET_OPS_FAMILIES_H
#define LUNET_OPS_FAMILIES_H

#include "../backend.h"
#include "../tensor.h"

/* out = op(x), a new float32 tensor of x's shape (other dtypes are read as
 * float32). */
int ln_op_unary(ln_tensor *out, ln_unary_op op, const ln_unary_params *p, const ln_tensor *x);

/* The _into forms write into `out` when it is a live tensor (contiguous
 * float32 of the result's shape on the input's device: an error otherwise;
 * the caller makes sure it shares no memory with the inputs) and allocate it
 * when it is zeroed, as the plain forms do; so a module reuses its output. */
int ln_op_unary_into(ln_tensor *out, ln_unary_op op, const ln_unary_params *p,
                     const ln_tensor *x);

/* dx = dy * op'(x) for an activation, from its forward input x and output y
 * (same shape, float32, same device). */
int ln_op_unary_backward(ln_tensor *dx, ln_unary_op op, const ln_unary_params *p,
                         const ln_tensor *x, const ln_tensor *y, const ln_tensor *dy);

int ln_op_unary_backward_into(ln_tensor *dx, ln_unary_op op, const ln_unary_params *p,
                              const ln_tensor *x, const ln_tensor *y, const ln_tensor *dy);

/* out = softmax (log_softmax when `log`) of x along 0-based `dim`. */
int ln_op_softmax(ln_tensor *out, int log, const ln_tensor *x, int dim);

int ln_op_softmax_into(ln_tensor *out, int log, const ln_tensor *x, int dim);

/* dx from the forward output y and the gradient dy of the same shape. */
int ln_op_softmax_backward(ln_tensor *dx, int log, const ln_tensor *y, const ln_tensor *dy,
                           int dim);

int ln_op_softmax_backward_into(ln_tensor *dx, int log, const ln_tensor *y, const ln_tensor *dy,
                                int dim);

/* The output of a family op: allocated (float32, like's shape and device,
 * *allocated = 1) when out is zeroed, else checked to fit. */
int ln_family_output(ln_tensor *out, const ln_tensor *like, int *allocated);

/* Reduction of x (any dtype) along 0-based `dim` (removed, or kept with size
 * 1): values float32 for float32 x, else x's dtype, except that sums of
 * integers are int32 and their means float32; positions (int32, 1-based,
 * first extreme, NaN wins) for LN_MAX and LN_MIN, NULL for LN_SUM and
 * LN_MEAN. float32 runs on x's device (the reduce_dim slot), the other dtypes
 * on the host. On failure both are left released. */
int ln_op_reduce_dim(ln_tensor *values, ln_tensor *positions, const ln_tensor *x,
                     ln_reduce_op op, int dim, int keepdim);

/* x viewed as [outer, shape[dim], inner]. */
void ln_split_at_dim(const ln_tensor *x, int dim, int64_t *outer, int64_t *inner);

/* A contiguous float32 version of t (shared when it already is one). */
int ln_contiguous_float(ln_tensor *out, const ln_tensor *t);

#endif
