/* The CUDA backend: every slot of ln_backend (csrc/backend.h) filled. */
#include <stddef.h>
#include <string.h>

#include "backend_slots.h"
#include "lunet_cuda.h"

const ln_backend ln_cuda_backend = {
    .abi = LN_BACKEND_ABI,
    .name = "cuda",
    .attach = ln_cuda_attach,
    .device_count = ln_cuda_device_count,
    .open = ln_cuda_open,
    .close = ln_cuda_close,
    .info = ln_cuda_info,
    .synchronize = ln_cuda_synchronize,
    .set_num_threads = ln_cuda_set_num_threads,
    .alloc = ln_cuda_alloc,
    .free = ln_cuda_free,
    .upload = ln_cuda_upload,
    .download = ln_cuda_download,
    .copy = ln_cuda_copy,
    .fill = ln_cuda_fill,
    .binary = ln_cuda_binary,
    .binary_scalar = ln_cuda_binary_scalar,
    .reduce = ln_cuda_reduce,
    .argmax = ln_cuda_argmax,
    .gemm = ln_cuda_gemm,
    .rand_uniform = ln_cuda_rand_uniform,
    .rand_normal = ln_cuda_rand_normal,
    .gather_rows = ln_cuda_gather_rows,
    .conv2d_forward = ln_cuda_conv2d_forward,
    .conv2d_backward_data = ln_cuda_conv2d_backward_data,
    .conv2d_backward_filter = ln_cuda_conv2d_backward_filter,
    .pool2d_forward = ln_cuda_pool2d_forward,
    .pool2d_backward = ln_cuda_pool2d_backward,
    .relu_forward = ln_cuda_relu_forward,
    .relu_backward = ln_cuda_relu_backward,
    .bias_add = ln_cuda_bias_add,
    .bias_backward = ln_cuda_bias_backward,
    .dropout_forward = ln_cuda_dropout_forward,
    .batchnorm_forward_train = ln_cuda_batchnorm_forward_train,
    .batchnorm_forward_eval = ln_cuda_batchnorm_forward_eval,
    .batchnorm_backward = ln_cuda_batchnorm_backward,
    .cross_entropy_forward = ln_cuda_cross_entropy_forward,
    .cross_entropy_backward = ln_cuda_cross_entropy_backward,
    .sgd_step = ln_cuda_sgd_step,
    .adam_step = ln_cuda_adam_step,
};

/* Every function slot of ln_backend by name. The assertion below fails to
 * compile when a slot is added to backend.h and not listed here, so the
 * check for empty slots cannot silently miss one. Optional slots (the fused
 * blocks) may stay empty: callers ask before using them and otherwise run
 * the layers one by one. */
#define SLOT(name) {#name, offsetof(ln_backend, name), 0}
#define OPTIONAL_SLOT(name) {#name, offsetof(ln_backend, name), 1}
static const struct {
    const char *name;
    size_t offset;
    int optional;
} slots[] = {
    SLOT(attach), SLOT(device_count), SLOT(open), SLOT(close), SLOT(info),
    SLOT(synchronize), SLOT(set_num_threads), SLOT(alloc), SLOT(free), SLOT(upload),
    SLOT(download), SLOT(copy), SLOT(fill), SLOT(binary), SLOT(binary_scalar),
    SLOT(reduce), SLOT(argmax), SLOT(gemm), SLOT(rand_uniform), SLOT(rand_normal),
    SLOT(gather_rows), SLOT(conv2d_forward), SLOT(conv2d_backward_data),
    SLOT(conv2d_backward_filter), SLOT(pool2d_forward), SLOT(pool2d_backward),
    SLOT(relu_forward), SLOT(relu_backward), SLOT(bias_add), SLOT(bias_backward),
    SLOT(dropout_forward), SLOT(batchnorm_forward_train), SLOT(batchnorm_forward_eval),
    SLOT(batchnorm_backward), SLOT(cross_entropy_forward), SLOT(cross_entropy_backward),
    SLOT(sgd_step), SLOT(adam_step),
    OPTIONAL_SLOT(conv2d_relu_maxpool2x2_forward), OPTIONAL_SLOT(conv2d_relu_maxpool2x2_backward),
};

typedef void (*any_function)(void);

_Static_assert(sizeof slots / sizeof slots[0]
                   == (sizeof(ln_backend) - offsetof(ln_backend, attach))
                          / sizeof(any_function),
               "a slot of ln_backend is missing from the list in cuda/backend_cuda.c");

int ln_backend_slot_count(void)
{
    return (int)(sizeof slots / sizeof slots[0]);
}

const char *ln_backend_slot_name(int i)
{
    return i >= 0 && i < ln_backend_slot_count() ? slots[i].name : NULL;
}

int ln_backend_slot_optional(int i)
{
    return i >= 0 && i < ln_backend_slot_count() && slots[i].optional;
}

int ln_backend_slot_filled(const ln_backend *backend, int i)
{
    any_function fn;
    if (i < 0 || i >= ln_backend_slot_count())
        return 0;
    memcpy(&fn, (const char *)backend + slots[i].offset, sizeof fn);
    return fn != NULL;
}
