/* Reductions along one dimension: sum, mean, max and min, with PyTorch's
 * semantics (max/min give the first extreme's 1-based position, and a NaN wins).
 *
 * float32 tensors run on their device through the reduce_dim backend family
 * (csrc/ops/reduce.c). Other dtypes (int32, uint8, and the 16-bit floats of
 * CUDA) are read on the host (in place on host-memory devices, else through a
 * download) and reduced there with double accumulators, the result written
 * on the tensor's device. */
#ifndef LUNET_TENSOR_REDUCE_DIM_H
#define LUNET_TENSOR_REDUCE_DIM_H

#include "tensor.h"

typedef enum ln_dim_reduction {
    LN_DIM_SUM,
    LN_DIM_MEAN,
    LN_DIM_MAX,
    LN_DIM_MIN
} ln_dim_reduction;

/* values = reduction of t along 0-based `dim` (removed, or kept with size 1
 * when keepdim). Sums of integer tensors are int32, means of them float32;
 * otherwise values has t's dtype. For max and min, `positions` (int32, the
 * shape of values) receives the 1-based positions; pass NULL for sum/mean.
 * On failure both outputs are left released. */
int ln_tensor_reduce_dim(ln_tensor *values, ln_tensor *positions, const ln_tensor *t,
                         ln_dim_reduction op, int dim, int keepdim);

#endif
