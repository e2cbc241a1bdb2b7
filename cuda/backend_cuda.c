/* The CUDA backend: every slot of ln_backend (csrc/backend.h) filled. The
 * slots of kernels never run on a GPU are switched by unverified.c when
 * lunet.cuda loads (off by default: host-staged); listed here as kernels. */
#include <stddef.h>
#include <string.h>

#include "async_read_slots.h"
#include "backend_slots.h"
#include "lunet_cuda.h"

ln_backend ln_cuda_backend = {
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
    .unary = ln_cuda_unary,
    .unary_backward = ln_cuda_unary_backward,
    .softmax = ln_cuda_softmax,
    .softmax_backward = ln_cuda_softmax_backward,
    .reduce_dim = ln_cuda_reduce_dim,
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
    .cross_entropy_forward_device = ln_cuda_cross_entropy_forward_device,
#ifdef LUNET_CUDA_ASYNC_READ /* emulator-checked, not yet run on a GPU (async_read_slots.h) */
    .read_async_begin = ln_cuda_read_async_begin,
    .read_async_poll = ln_cuda_read_async_poll,
    .read_async_free = ln_cuda_read_async_free,
#endif
    .augment_random_crop = ln_cuda_augment_random_crop,
    .augment_random_hflip = ln_cuda_augment_random_hflip,
    .augment_normalize = ln_cuda_augment_normalize,
    .sgd_step = ln_cuda_sgd_step,
    .adam_step = ln_cuda_adam_step,
};

