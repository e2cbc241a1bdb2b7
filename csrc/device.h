/* Devices and their registry.
 *
 * A device is a backend (the vtable) plus the context it opened. "cpu" and
 * "ref" (the plain reference kernels, for tests) always exist; "cuda:N" exist
 * once the CUDA backend has registered itself (it lives in its own shared
 * library, loaded on first use). */
#ifndef LUNET_DEVICE_H
#define LUNET_DEVICE_H

#include "backend.h"

typedef enum ln_device_type { LN_DEVICE_CPU, LN_DEVICE_REF, LN_DEVICE_CUDA } ln_device_type;

#define LN_MAX_CUDA_DEVICES 16

typedef struct ln_device {
    ln_device_type type;
    int index;                 /* 0 for cpu and ref; CUDA's own numbering */
    char name[24];             /* "cpu", "ref", "cuda:0" */
    int host_memory;           /* data pointers are plain host pointers */
    const ln_backend *backend;
    void *ctx;                 /* NULL until opened */
} ln_device;

extern const ln_backend ln_ref_backend;
extern const ln_backend ln_cpu_backend;

/* Finds (and opens on first use) the device called `name`: "cpu", "ref",
 * "cuda" (= "cuda:0") or "cuda:N". */
int ln_device_lookup(const char *name, ln_device **out);
/* LN_OK when `name` is a well-formed device name ("cpu", "ref", "cuda",
 * "cuda:N" with N in range), whether or not that device exists. */
int ln_device_check_name(const char *name);
ln_device *ln_device_cpu(void);

/* Registers the CUDA backend (from lunet/cuda.so); idempotent. */
int ln_device_register_cuda(const ln_backend *backend);
int ln_device_cuda_registered(void);
/* Number of CUDA devices; 0 with the reason when there are none. */
int ln_device_cuda_count(const char **reason);

const char *ln_device_type_name(ln_device_type type);
int ln_device_synchronize(ln_device *dev);

/* A debug counter of the places where the host waits for a device's result:
 * synchronize, downloads, and ops that hand a value to the host (reductions,
 * the loss as a number). Counted on every device, host-memory ones included,
 * so a spec on the reference device can show that a training step never
 * waits. */
void ln_device_note_host_read(void);
unsigned long long ln_device_host_read_count(void);

/* The "not supported on this device" error, for NULL op slots. */
int ln_device_unsupported(const ln_device *dev, const char *op);

/* Calls an op slot, or reports it unsupported when the slot is NULL. */
#define LN_CALL(dev, op, ...)                                          \
    ((dev)->backend->op ? (dev)->backend->op((dev)->ctx, __VA_ARGS__)  \
                        : ln_device_unsupported((dev), #op))

#endif
