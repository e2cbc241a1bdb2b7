/* The one list of ln_backend's slots, by name. The core checks every backend
 * against it when it is registered (device.c), and lunet.cuda.missing_slots
 * reports from it; the CUDA module compiles this file too. */
#include "backend_slots.h"

#include <stddef.h>
#include <string.h>

/* Every function slot of ln_backend by name. The assertion below fails to
 * compile when a slot is added to backend.h and not listed here, so the
 * check for empty slots cannot silently miss one. Optional slots (the fused
 * blocks) may stay empty: callers ask before using them and otherwise run
 * the layers one by one. */
#define SLOT(name) {#name, offsetof(ln_backend, name), 0}
#define OPTIONAL_SLOT(name) {#name, offsetof(ln_backend, name), 1}
/* Backends on host memory (ref, cpu) have nothing to attach or wait for;
 * the core sets thread counts on the cpu device only. */
#define DEVICE_SLOT(name) {#name, offsetof(ln_backend, name), 2}
static const struct {
    const char *name;
    size_t offset;
    int optional;
} slots[] = {
    DEVICE_SLOT(attach), SLOT(device_count), SLOT(open), SLOT(close), SLOT(info),
    DEVICE_SLOT(synchronize), DEVICE_SLOT(set_num_threads), SLOT(alloc), SLOT(free), SLOT(upload),
    SLOT(download), SLOT(copy), SLOT(fill), SLOT(binary), SLOT(binary_scalar),
    SLOT(reduce), SLOT(argmax), SLOT(unary), SLOT(unary_backward), SLOT(softmax),
    SLOT(softmax_backward), SLOT(reduce_dim), SLOT(gemm), SLOT(rand_uniform), SLOT(rand_normal),
    SLOT(gather_rows), SLOT(conv2d_forward), SLOT(conv2d_backward_data),
    SLOT(conv2d_backward_filter), SLOT(pool2d_forward), SLOT(pool2d_backward),
    SLOT(relu_forward), SLOT(relu_backward), SLOT(bias_add), SLOT(bias_backward),
    SLOT(dropout_forward), SLOT(batchnorm_forward_train), SLOT(batchnorm_forward_eval),
    SLOT(batchnorm_backward), SLOT(cross_entropy_forward), SLOT(cross_entropy_backward),
    SLOT(sgd_step), SLOT(adam_step),
    OPTIONAL_SLOT(conv2d_relu_maxpool2x2_forward), OPTIONAL_SLOT(conv2d_relu_maxpool2x2_backward),
    OPTIONAL_SLOT(cross_entropy_forward_device),
    OPTIONAL_SLOT(read_async_begin), OPTIONAL_SLOT(read_async_poll), OPTIONAL_SLOT(read_async_free),
    OPTIONAL_SLOT(augment_random_crop), OPTIONAL_SLOT(augment_random_hflip),
    OPTIONAL_SLOT(augment_normalize),
};

typedef void (*any_function)(void);

_Static_assert(sizeof slots / sizeof slots[0]
                   == (sizeof(ln_backend) - offsetof(ln_backend, attach))
                          / sizeof(any_function),
               "a slot of ln_backend is missing from the list in csrc/backend_slots.c");

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
    return i >= 0 && i < ln_backend_slot_count() && slots[i].optional == 1;
}

int ln_backend_slot_optional_on_host(int i)
{
    return i >= 0 && i < ln_backend_slot_count() && slots[i].optional != 0;
}

int ln_backend_slot_filled(const ln_backend *backend, int i)
{
    any_function fn;
    if (i < 0 || i >= ln_backend_slot_count())
        return 0;
    memcpy(&fn, (const char *)backend + slots[i].offset, sizeof fn);
    return fn != NULL;
}
