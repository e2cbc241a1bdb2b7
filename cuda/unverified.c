/* The switch for the CUDA kernels that have never run on a GPU.
 *
 * The project's rule: no GPU code is on by default before it has run on a
 * GPU. These kernels are checked on the host emulator only (tools/cuda_emu):
 *   - families.cu: unary, unary_backward, softmax, softmax_backward, reduce_dim
 *   - the comparisons ne lt le gt ge of elementwise.cu (binary, binary_scalar)
 *   - AdamW's decoupled weight decay in optim.cu's adam kernel
 *   - loss.cu's cross_entropy_forward_device (the loss left on the device)
 *   - augment.cu: the resident loader's crop, flip and normalize
 * Off (the default): those slots run host-staged (host_staged.c) on the
 * reference backend; the optional loss and augmentation slots are left
 * empty, so the core takes the loss through the host (csrc/loss_on_device.c)
 * and the loader augments on the host (lua/lunet/data.lua). On: the kernels.
 *
 * The build's default is the CMake option LUNET_CUDA_UNVERIFIED_KERNELS; the
 * environment variable of the same name (0 or 1) overrides it when lunet.cuda
 * is loaded, and lunet.cuda.set_unverified_kernels switches it at any time
 * (from the next op on). */
#include "context.h"

#ifndef LUNET_CUDA_UNVERIFIED_KERNELS
#define LUNET_CUDA_UNVERIFIED_KERNELS 0
#endif

static int enabled = LUNET_CUDA_UNVERIFIED_KERNELS;

/* == came with the original backend (and ran as the EQ case of its kernels);
 * the other comparisons came later. */
static int is_new_comparison(ln_binary_op op)
{
    return op != LN_ADD && op != LN_SUB && op != LN_MUL && op != LN_DIV && op != LN_EQ;
}

static int binary_staging_comparisons(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                                      const void *a, const void *b, void *out)
{
    return is_new_comparison(op) ? ln_cuda_staged_binary(ctx, op, dtype, n, a, b, out)
                                 : ln_cuda_binary(ctx, op, dtype, n, a, b, out);
}

static int binary_scalar_staging_comparisons(void *ctx, ln_binary_op op, ln_dtype dtype,
                                             int64_t n, const void *a, double s,
                                             int scalar_first, void *out)
{
    return is_new_comparison(op)
               ? ln_cuda_staged_binary_scalar(ctx, op, dtype, n, a, s, scalar_first, out)
               : ln_cuda_binary_scalar(ctx, op, dtype, n, a, s, scalar_first, out);
}

static int adam_staging_adamw(void *ctx, const ln_adam_params *p, int64_t n, float *param,
                              const float *grad, float *exp_avg, float *exp_avg_sq)
{
    return p->decoupled_weight_decay
               ? ln_cuda_staged_adam_step(ctx, p, n, param, grad, exp_avg, exp_avg_sq)
               : ln_cuda_adam_step(ctx, p, n, param, grad, exp_avg, exp_avg_sq);
}

void ln_cuda_choose_kernels(ln_backend *b, int unverified)
{
    b->unary = unverified ? ln_cuda_unary : ln_cuda_staged_unary;
    b->unary_backward = unverified ? ln_cuda_unary_backward : ln_cuda_staged_unary_backward;
    b->softmax = unverified ? ln_cuda_softmax : ln_cuda_staged_softmax;
    b->softmax_backward = unverified ? ln_cuda_softmax_backward
                                     : ln_cuda_staged_softmax_backward;
    b->reduce_dim = unverified ? ln_cuda_reduce_dim : ln_cuda_staged_reduce_dim;
    b->binary = unverified ? ln_cuda_binary : binary_staging_comparisons;
    b->binary_scalar = unverified ? ln_cuda_binary_scalar : binary_scalar_staging_comparisons;
    b->adam_step = unverified ? ln_cuda_adam_step : adam_staging_adamw;
    b->cross_entropy_forward_device = unverified ? ln_cuda_cross_entropy_forward_device : NULL;
    b->augment_random_crop = unverified ? ln_cuda_augment_random_crop : NULL;
    b->augment_random_hflip = unverified ? ln_cuda_augment_random_hflip : NULL;
    b->augment_normalize = unverified ? ln_cuda_augment_normalize : NULL;
}

void ln_cuda_set_unverified_kernels(int on)
{
    enabled = on != 0;
    ln_cuda_choose_kernels(&ln_cuda_backend, enabled);
}

int ln_cuda_get_unverified_kernels(void)
{
    return enabled;
}

const char *ln_cuda_kernels_note(void)
{
    return enabled ? "unverified kernels on (never run on a GPU): families, comparisons, "
                     "AdamW, device loss, augmentation"
                   : "host-staged (unverified kernels off): unary, softmax, reduce_dim, "
                     "ne/lt/le/gt/ge, AdamW; loss and augmentation via host";
}
