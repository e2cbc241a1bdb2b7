/* Tensors: a shape and strides over refcounted storage on one device.
 *
 * A tensor made by lunet is contiguous and row-major. Views (reshape, narrow)
 * share their base's storage and keep it alive: freeing or collecting the base
 * never leaves a view dangling. Ops that compute read contiguous inputs (the
 * core makes a contiguous copy of a strided view first); only copy, fill and
 * element access write through strides. An ln_tensor whose storage is NULL has
 * been released, and every function rejects it. */
#ifndef LUNET_TENSOR_H
#define LUNET_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "device.h"
#include "dtype.h"

typedef struct ln_storage {
    int refcount;
    ln_device *device;
    void *data;
    size_t nbytes;
} ln_storage;

typedef struct ln_tensor {
    ln_storage *storage;       /* NULL when released */
    int64_t offset;            /* of the first element, in elements */
    ln_dtype dtype;
    int ndim;                  /* 0 for a scalar tensor */
    int64_t shape[LN_MAX_DIMS];
    int64_t stride[LN_MAX_DIMS];
} ln_tensor;

/* The largest tensor lunet agrees to allocate: 2^40 bytes. Larger requests are
 * mistakes (a shape of {1e12, 1e12}), reported before any allocation. */
#define LN_MAX_TENSOR_BYTES ((uint64_t)1 << 40)

/* Checks a shape (0..LN_MAX_DIMS sizes, each >= 0) and computes its element
 * count without overflow. */
int ln_shape_check(int ndim, const int64_t *shape, ln_dtype dtype, int64_t *numel);

/* How many tensor storages have been allocated since the process started
 * (specs use it to check that a steady training step allocates none). */
uint64_t ln_tensor_allocation_count(void);
/* The bytes of all those storages together, and of those not yet released
 * (the Lua binding paces its garbage collector with them). */
uint64_t ln_tensor_allocated_bytes(void);
uint64_t ln_tensor_live_bytes(void);

/* Allocates a new contiguous tensor; `t` must be zeroed or released. */
int ln_tensor_alloc(ln_tensor *t, ln_device *dev, ln_dtype dtype, int ndim,
                    const int64_t *shape);
int ln_tensor_alloc_like(ln_tensor *t, const ln_tensor *like);
/* Drops this tensor's reference to its storage; idempotent. */
void ln_tensor_release(ln_tensor *t);
/* `view` shares `base`'s storage and geometry (a new reference). */
void ln_tensor_share(ln_tensor *view, const ln_tensor *base);

int ln_tensor_check_live(const ln_tensor *t);
int64_t ln_tensor_numel(const ln_tensor *t);
int ln_tensor_is_contiguous(const ln_tensor *t);
ln_device *ln_tensor_device(const ln_tensor *t);
void *ln_tensor_data(const ln_tensor *t);
ln_strided ln_tensor_strided(const ln_tensor *t);
int ln_tensor_same_shape(const ln_tensor *a, const ln_tensor *b);
/* "[64, 1, 28, 28]" */
char *ln_tensor_shape_string(const ln_tensor *t, char *buf, size_t len);

/* A view with a new shape (one size may be -1) when `t` is contiguous, else a
 * contiguous copy with that shape. */
int ln_tensor_reshape(ln_tensor *out, const ln_tensor *t, int ndim,
                      const int64_t *shape);
/* A view of `length` entries from `start` (both 0-based) along `dim`. */
int ln_tensor_narrow(ln_tensor *out, const ln_tensor *t, int dim, int64_t start,
                     int64_t length);
/* `t` itself (a new reference) when contiguous, else a contiguous copy. */
int ln_tensor_contiguous(ln_tensor *out, const ln_tensor *t);

/* dst = src, element by element: any devices, dtypes and strides. */
int ln_tensor_copy(ln_tensor *dst, const ln_tensor *src);
/* A new tensor on `dev` with `dtype` holding src's values. */
int ln_tensor_to(ln_tensor *out, const ln_tensor *src, ln_device *dev, ln_dtype dtype);
int ln_tensor_fill(ln_tensor *t, double value);

/* One element by 0-based index (slow path, waits for the device). */
int ln_tensor_get(const ln_tensor *t, const int64_t *index, double *value);
int ln_tensor_set(ln_tensor *t, const int64_t *index, double value);

/* Copies the whole tensor, in row-major order, into a new host buffer of the
 * tensor's dtype; the caller frees it with free(). */
int ln_tensor_to_host(const ln_tensor *t, void **host);

#endif
