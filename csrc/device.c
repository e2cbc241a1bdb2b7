#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_slots.h"
#include "status.h"

static const ln_host_api host_api = {.error = ln_error, .reference = &ln_ref_backend};

static ln_device cpu_device = {LN_DEVICE_CPU, 0, "cpu", 1, &ln_cpu_backend, NULL};
static ln_device ref_device = {LN_DEVICE_REF, 0, "ref", 1, &ln_ref_backend, NULL};

static struct {
    const ln_backend *backend;
    int count;
    char reason[256];
    ln_device devices[LN_MAX_CUDA_DEVICES];
} cuda;

const char *ln_device_type_name(ln_device_type type)
{
    switch (type) {
    case LN_DEVICE_CPU: return "cpu";
    case LN_DEVICE_REF: return "ref";
    case LN_DEVICE_CUDA: return "cuda";
    }
    return "?";
}

/* Every backend fills every required slot of backend.h: checked once, when
 * the backend is first used, against the one list (backend_slots.c), so a
 * slot added to the vtable and forgotten by a backend is reported by name. */
static int check_slots(const ln_backend *backend, int on_host)
{
    char missing[512] = "";
    int count = 0;
    for (int i = 0; i < ln_backend_slot_count(); i++)
        if (!(on_host ? ln_backend_slot_optional_on_host(i) : ln_backend_slot_optional(i))
            && !ln_backend_slot_filled(backend, i)) {
            size_t used = strlen(missing);
            snprintf(missing + used, sizeof missing - used, "%s%s", count ? ", " : "",
                     ln_backend_slot_name(i));
            count++;
        }
    if (count)
        return ln_error(LN_EDEVICE, "the %s backend leaves %d required slot%s empty: %s",
                        backend->name, count, count == 1 ? "" : "s", missing);
    return LN_OK;
}

static int open_device(ln_device *dev)
{
    if (dev->ctx)
        return LN_OK;
    LN_TRY(check_slots(dev->backend, dev->host_memory));
    if (dev->backend->attach)
        LN_TRY(dev->backend->attach(&host_api));
    return dev->backend->open(dev->index, &dev->ctx);
}

ln_device *ln_device_cpu(void)
{
    /* The CPU context only holds scratch space; opening it cannot fail short
     * of the process being out of memory at load time. */
    if (!cpu_device.ctx && open_device(&cpu_device) != LN_OK)
        return NULL;
    return &cpu_device;
}

int ln_device_register_cuda(const ln_backend *backend)
{
    if (cuda.backend)
        return LN_OK;
    if (!backend || backend->abi != LN_BACKEND_ABI)
        return ln_error(LN_EDEVICE,
                        "lunet/cuda.so was built for another version of lunet "
                        "(backend ABI %d, this core expects %d): rebuild lunet",
                        backend ? backend->abi : -1, LN_BACKEND_ABI);
    LN_TRY(check_slots(backend, 0));
    LN_TRY(backend->attach(&host_api));
    int count = 0;
    if (backend->device_count(&count, cuda.reason, sizeof cuda.reason) != LN_OK
        || count <= 0) {
        count = 0;
        if (!cuda.reason[0])
            snprintf(cuda.reason, sizeof cuda.reason, "no CUDA device found");
    }
    if (count > LN_MAX_CUDA_DEVICES)
        count = LN_MAX_CUDA_DEVICES;
    for (int i = 0; i < count; i++) {
        ln_device *d = &cuda.devices[i];
        d->type = LN_DEVICE_CUDA;
        d->index = i;
        snprintf(d->name, sizeof d->name, "cuda:%d", i);
        d->host_memory = 0;
        d->backend = backend;
        d->ctx = NULL;
    }
    cuda.count = count;
    cuda.backend = backend;
    return LN_OK;
}

int ln_device_cuda_registered(void)
{
    return cuda.backend != NULL;
}

int ln_device_cuda_count(const char **reason)
{
    if (reason)
        *reason = cuda.backend ? cuda.reason : "the CUDA backend is not loaded";
    return cuda.count;
}

/* "cpu", "ref", "cuda" (index 0) or "cuda:N": digits only, and few enough
 * that the index cannot wrap (sscanf's %d took "cuda:4294967296" for
 * cuda:0). */
static int parse_name(const char *name, int *index)
{
    *index = 0;
    if (strcmp(name, "cpu") == 0 || strcmp(name, "ref") == 0 || strcmp(name, "cuda") == 0)
        return LN_OK;
    size_t digits = strncmp(name, "cuda:", 5) == 0 ? strspn(name + 5, "0123456789") : 0;
    if (digits == 0 || name[5 + digits] != '\0')
        return ln_error(LN_EINVAL, "unknown device '%s' (expected \"cpu\", \"cuda\" or "
                        "\"cuda:N\")", name);
    if (digits > 6)
        return ln_error(LN_EINVAL, "device '%s': the index is out of range (at most "
                        "cuda:999999)", name);
    *index = atoi(name + 5);
    return LN_OK;
}

int ln_device_check_name(const char *name)
{
    int index;
    return parse_name(name, &index);
}

int ln_device_lookup(const char *name, ln_device **out)
{
    *out = NULL;
    if (strcmp(name, "cpu") == 0 || strcmp(name, "ref") == 0) {
        ln_device *dev = name[0] == 'c' ? &cpu_device : &ref_device;
        LN_TRY(open_device(dev));
        *out = dev;
        return LN_OK;
    }
    int index = 0;
    LN_TRY(parse_name(name, &index));
    if (!cuda.backend)
        return ln_error(LN_EDEVICE, "device '%s' is not available: the CUDA "
                        "backend is not loaded", name);
    if (cuda.count == 0)
        return ln_error(LN_EDEVICE, "device '%s' is not available: %s", name,
                        cuda.reason);
    if (index >= cuda.count)
        return ln_error(LN_EDEVICE, "device '%s' does not exist: %d CUDA "
                        "device%s present (cuda:0%s%s)", name, cuda.count,
                        cuda.count == 1 ? "" : "s", cuda.count > 1 ? " to cuda:" : "",
                        cuda.count > 1 ? cuda.devices[cuda.count - 1].name + 5 : "");
    ln_device *dev = &cuda.devices[index];
    LN_TRY(open_device(dev));
    *out = dev;
    return LN_OK;
}

static _Atomic unsigned long long host_reads;

void ln_device_note_host_read(void)
{
    host_reads++;
}

unsigned long long ln_device_host_read_count(void)
{
    return host_reads;
}

int ln_device_synchronize(ln_device *dev)
{
    host_reads++;
    return dev->backend->synchronize ? dev->backend->synchronize(dev->ctx) : LN_OK;
}

int ln_device_unsupported(const ln_device *dev, const char *op)
{
    return ln_error(LN_ENOTSUP, "%s is not supported on device %s", op, dev->name);
}
