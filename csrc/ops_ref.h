/* The reference kernels: plain loops, written to be read, never optimised.
 * They fill the "ref" backend, serve as the CPU backend's implementation of
 * whatever has no fast path yet, and are the oracle every fast kernel is tested
 * against. Signatures are exactly the backend slots (see backend.h). */
#ifndef LUNET_OPS_REF_H
#define LUNET_OPS_REF_H

#include "backend.h"

LN_DECLARE_TENSOR_OPS(ln_ref)
LN_DECLARE_INDEX_RANDOM_OPS(ln_ref)
LN_DECLARE_FAMILY_OPS(ln_ref)
LN_DECLARE_LAYER_OPS(ln_ref)
LN_DECLARE_LOSS_OPS(ln_ref)
LN_DECLARE_FUSED_OPS(ln_ref)
LN_DECLARE_OPTIM_OPS(ln_ref)

#endif
