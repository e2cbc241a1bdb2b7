/* Broadcasting for the binary family, and its in-place forms. */
#ifndef LUNET_OPS_BROADCAST_H
#define LUNET_OPS_BROADCAST_H

#include "../backend.h"
#include "../tensor.h"

/* The broadcast shape of a and b, or an error naming both shapes. */
int ln_broadcast_shape(const ln_tensor *a, const ln_tensor *b, int *ndim, int64_t *shape);

/* out = a OP b over the broadcast shape (same device and dtype). */
int ln_op_binary_broadcast(ln_tensor *out, ln_binary_op op, const ln_tensor *a,
                           const ln_tensor *b);

/* t = t OP u in place, u broadcast to t's shape (an error if the broadcast
 * shape is not t's). u may share t's storage. */
int ln_op_binary_inplace(ln_tensor *t, ln_binary_op op, const ln_tensor *u);

/* t = t OP s in place. */
int ln_op_binary_scalar_inplace(ln_tensor *t, ln_binary_op op, double s);

#endif
