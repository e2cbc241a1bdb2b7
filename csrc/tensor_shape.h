/* Shape ops: reordering, inserting and removing dimensions, and joining
 * tensors. Dimensions are 0-based here (the binding converts Lua's 1-based and
 * negative ones). Views share their base's storage; the ops that must move data
 * (permute, transpose, cat, stack) do it with the device's strided `copy`, so
 * they work on every device and dtype. On failure `out` is left released. */
#ifndef LUNET_TENSOR_SHAPE_H
#define LUNET_TENSOR_SHAPE_H

#include "tensor.h"

/* A new contiguous tensor: out.shape[i] = t.shape[perm[i]]; `perm` must be a
 * permutation of 0..t.ndim-1. */
int ln_tensor_permute(ln_tensor *out, const ln_tensor *t, int ndim, const int *perm);
/* A new contiguous tensor with dimensions d1 and d2 swapped. */
int ln_tensor_transpose(ln_tensor *out, const ln_tensor *t, int d1, int d2);
/* A view with a size-1 dimension inserted before `dim` (0..t.ndim). */
int ln_tensor_unsqueeze(ln_tensor *out, const ln_tensor *t, int dim);
/* A view without dimension `dim` when its size is 1 (unchanged otherwise, as
 * PyTorch does); dim < 0 removes every size-1 dimension. */
int ln_tensor_squeeze(ln_tensor *out, const ln_tensor *t, int dim);
/* A view of entry `index` along `dim`, without that dimension. */
int ln_tensor_select(ln_tensor *out, const ln_tensor *t, int dim, int64_t index);
/* A new tensor joining `n` tensors along `dim`: same dtype, device and number
 * of dimensions, equal sizes except along `dim`. */
int ln_tensor_cat(ln_tensor *out, int n, const ln_tensor *const *ts, int dim);
/* A new tensor stacking `n` tensors of one shape along a new dimension `dim`
 * (0..ndim). */
int ln_tensor_stack(ln_tensor *out, int n, const ln_tensor *const *ts, int dim);

#endif
