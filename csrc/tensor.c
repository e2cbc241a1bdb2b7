#include "tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int ln_shape_check(int ndim, const int64_t *shape, ln_dtype dtype, int64_t *numel)
{
    char buf[256];
    if (ndim < 0 || ndim > LN_MAX_DIMS)
        return ln_error(LN_EINVAL, "a tensor has at most %d dimensions, got %d",
                        LN_MAX_DIMS, ndim);
    int has_zero = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return ln_error(LN_EINVAL, "size %lld of dimension %d in shape %s is negative",
                            (long long)shape[i], i + 1,
                            ln_format_shape(buf, sizeof buf, ndim, shape));
        has_zero |= shape[i] == 0;
    }
    /* The non-zero sizes are bounded even when a zero makes the tensor empty:
     * strides and view offsets are products of them and must not overflow. */
    uint64_t count = 1, limit = LN_MAX_TENSOR_BYTES / ln_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            continue;
        if ((uint64_t)shape[i] > limit / count)
            return ln_error(LN_EINVAL, "shape %s is too large: %s%llu bytes of %s",
                            ln_format_shape(buf, sizeof buf, ndim, shape),
                            has_zero ? "even without its zero sizes, over " : "over ",
                            (unsigned long long)LN_MAX_TENSOR_BYTES, ln_dtype_name(dtype));
        count *= (uint64_t)shape[i];
    }
    *numel = has_zero ? 0 : (int64_t)count;
    return LN_OK;
}

static _Atomic uint64_t allocation_count;
static _Atomic uint64_t allocated_bytes, released_bytes;

uint64_t ln_tensor_allocation_count(void)
{
    return allocation_count;
}

uint64_t ln_tensor_allocated_bytes(void)
{
    return allocated_bytes;
}

uint64_t ln_tensor_live_bytes(void)
{
    return allocated_bytes - released_bytes;
}

static void set_contiguous_strides(ln_tensor *t)
{
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->stride[i] = stride;
        stride *= t->shape[i] ? t->shape[i] : 1;
    }
}

int ln_tensor_alloc(ln_tensor *t, ln_device *dev, ln_dtype dtype, int ndim,
                    const int64_t *shape)
{
    int64_t numel;
    memset(t, 0, sizeof *t);
    if ((unsigned)dtype >= LN_DTYPE_COUNT)
        return ln_error(LN_EINVAL, "unknown dtype %d", (int)dtype);
    LN_TRY(ln_shape_check(ndim, shape, dtype, &numel));
    ln_storage *s = calloc(1, sizeof *s);
    if (!s)
        return ln_error(LN_ENOMEM, "out of host memory for a tensor header");
    s->refcount = 1;
    s->device = dev;
    s->nbytes = (size_t)numel * ln_dtype_size(dtype);
    if (s->nbytes > 0) {
        int st = dev->backend->alloc(dev->ctx, s->nbytes, &s->data);
        if (st != LN_OK) {
            free(s);
            return st;
        }
    }
    allocation_count++;
    allocated_bytes += s->nbytes;
    t->storage = s;
    t->offset = 0;
    t->dtype = dtype;
    t->ndim = ndim;
    memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(t);
    return LN_OK;
}

int ln_tensor_alloc_like(ln_tensor *t, const ln_tensor *like)
{
    return ln_tensor_alloc(t, like->storage->device, like->dtype, like->ndim,
                           like->shape);
}

void ln_tensor_release(ln_tensor *t)
{
    ln_storage *s = t->storage;
    t->storage = NULL;
    if (s && --s->refcount == 0) {
        released_bytes += s->nbytes;
        if (s->data)
            s->device->backend->free(s->device->ctx, s->data);
        free(s);
    }
}

void ln_tensor_share(ln_tensor *view, const ln_tensor *base)
{
    *view = *base;
    view->storage->refcount++;
}

int ln_tensor_check_live(const ln_tensor *t)
{
    if (!t->storage)
        return ln_error(LN_EFREED, "the tensor was freed");
    return LN_OK;
}

int64_t ln_tensor_numel(const ln_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int ln_tensor_is_contiguous(const ln_tensor *t)
{
    /* an empty tensor holds no element to be out of place: whatever its
     * strides, it is contiguous (as in PyTorch), so every op accepts it */
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0)
            return 1;
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expected)
            return 0;
        expected *= t->shape[i];
    }
    return 1;
}

ln_device *ln_tensor_device(const ln_tensor *t)
{
    return t->storage->device;
}

void *ln_tensor_data(const ln_tensor *t)
{
    if (!t->storage->data)
        return NULL;
    return (char *)t->storage->data + (size_t)t->offset * ln_dtype_size(t->dtype);
}

ln_strided ln_tensor_strided(const ln_tensor *t)
{
    ln_strided s;
    memset(&s, 0, sizeof s);
    s.data = ln_tensor_data(t);
    s.dtype = t->dtype;
    s.ndim = t->ndim;
    memcpy(s.shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    memcpy(s.stride, t->stride, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

int ln_tensor_same_shape(const ln_tensor *a, const ln_tensor *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

char *ln_tensor_shape_string(const ln_tensor *t, char *buf, size_t len)
{
    return ln_format_shape(buf, len, t->ndim, t->shape);
}

int ln_tensor_contiguous(ln_tensor *out, const ln_tensor *t)
{
    LN_TRY(ln_tensor_check_live(t));
    if (ln_tensor_is_contiguous(t)) {
        ln_tensor_share(out, t);
        return LN_OK;
    }
    LN_TRY(ln_tensor_alloc_like(out, t));
    int st = ln_tensor_copy(out, t);
    if (st != LN_OK)
        ln_tensor_release(out);
    return st;
}

int ln_tensor_reshape(ln_tensor *out, const ln_tensor *t, int ndim,
                      const int64_t *shape_in)
{
    char a[256], b[256];
    int64_t shape[LN_MAX_DIMS];
    int infer = -1;
    int64_t known = 1;
    LN_TRY(ln_tensor_check_live(t));
    if (ndim < 0 || ndim > LN_MAX_DIMS)
        return ln_error(LN_EINVAL, "a tensor has at most %d dimensions, got %d",
                        LN_MAX_DIMS, ndim);
    for (int i = 0; i < ndim; i++) {
        shape[i] = shape_in[i];
        if (shape[i] == -1) {
            if (infer >= 0)
                return ln_error(LN_EINVAL, "only one size may be -1, got %s",
                                ln_format_shape(a, sizeof a, ndim, shape_in));
            infer = i;
        } else if (shape[i] < 0) {
            return ln_error(LN_EINVAL, "size %lld in shape %s is negative",
                            (long long)shape[i],
                            ln_format_shape(a, sizeof a, ndim, shape_in));
        } else if (shape[i] != 0 && known > INT64_MAX / shape[i]) {
            known = -1; /* cannot match any real element count */
            break;
        } else {
            known *= shape[i];
        }
    }
    int64_t numel = ln_tensor_numel(t);
    if (infer >= 0 && known > 0 && numel % known == 0)
        shape[infer] = numel / known;
    int64_t count;
    int ok = (infer < 0 || (known > 0 && numel % known == 0));
    if (ok && ln_shape_check(ndim, shape, t->dtype, &count) == LN_OK)
        ok = count == numel;
    else
        ok = 0;
    if (!ok)
        return ln_error(LN_EINVAL, "cannot reshape %s (%lld elements) to %s",
                        ln_tensor_shape_string(t, a, sizeof a), (long long)numel,
                        ln_format_shape(b, sizeof b, ndim, shape_in));
    if (ln_tensor_is_contiguous(t)) {
        ln_tensor_share(out, t);
    } else {
        LN_TRY(ln_tensor_contiguous(out, t));
    }
    out->ndim = ndim;
    memcpy(out->shape, shape, sizeof(int64_t) * (size_t)ndim);
    set_contiguous_strides(out);
    return LN_OK;
}

int ln_tensor_narrow(ln_tensor *out, const ln_tensor *t, int dim, int64_t start,
                     int64_t length)
{
    char a[256];
    LN_TRY(ln_tensor_check_live(t));
    if (t->ndim == 0)
        return ln_error(LN_EINVAL, "cannot narrow a scalar tensor");
    if (dim < 0 || dim >= t->ndim)
        return ln_error(LN_EINVAL, "dimension %d out of range for shape %s (1..%d)",
                        dim + 1, ln_tensor_shape_string(t, a, sizeof a), t->ndim);
    if (start < 0 || length < 0 || start > t->shape[dim]
        || length > t->shape[dim] - start)
        return ln_error(LN_EINVAL,
                        "range start %lld, length %lld is outside dimension %d "
                        "of shape %s", (long long)start + 1, (long long)length,
                        dim + 1, ln_tensor_shape_string(t, a, sizeof a));
    ln_tensor_share(out, t);
    out->offset += start * t->stride[dim];
    out->shape[dim] = length;
    return LN_OK;
}

static int check_copy_shapes(const ln_tensor *dst, const ln_tensor *src)
{
    char a[256], b[256];
    if (ln_tensor_numel(dst) != ln_tensor_numel(src))
        return ln_error(LN_EINVAL, "cannot copy %s into %s: element counts differ",
                        ln_tensor_shape_string(src, a, sizeof a),
                        ln_tensor_shape_string(dst, b, sizeof b));
    return LN_OK;
}

/* Views `t` as a strided description with src's geometry when both have the
 * same element count but different shapes (copy matches elements in
 * row-major order, like Torch's copy). Only contiguous tensors reshape freely. */
static ln_strided strided_as_flat(const ln_tensor *t)
{
    ln_strided s = ln_tensor_strided(t);
    s.ndim = 1;
    s.shape[0] = ln_tensor_numel(t);
    s.stride[0] = 1;
    return s;
}

static int copy_same_device(ln_tensor *dst, const ln_tensor *src)
{
    ln_device *dev = ln_tensor_device(dst);
    if (ln_tensor_same_shape(dst, src)) {
        ln_strided d = ln_tensor_strided(dst), s = ln_tensor_strided(src);
        return LN_CALL(dev, copy, &d, &s);
    }
    /* Different shapes with equal counts: go through contiguous buffers. */
    ln_tensor csrc = {0};
    int st = ln_tensor_contiguous(&csrc, src);
    if (st == LN_OK && !ln_tensor_is_contiguous(dst)) {
        ln_tensor reshaped = {0};
        st = ln_tensor_alloc(&reshaped, dev, src->dtype, dst->ndim, dst->shape);
        if (st == LN_OK) {
            ln_strided d = strided_as_flat(&reshaped), s = strided_as_flat(&csrc);
            st = LN_CALL(dev, copy, &d, &s);
        }
        if (st == LN_OK) {
            ln_strided d = ln_tensor_strided(dst), s = ln_tensor_strided(&reshaped);
            st = LN_CALL(dev, copy, &d, &s);
        }
        ln_tensor_release(&reshaped);
    } else if (st == LN_OK) {
        ln_strided d = strided_as_flat(dst), s = strided_as_flat(&csrc);
        st = LN_CALL(dev, copy, &d, &s);
    }
    ln_tensor_release(&csrc);
    return st;
}

int ln_tensor_copy(ln_tensor *dst, const ln_tensor *src)
{
    LN_TRY(ln_tensor_check_live(dst));
    LN_TRY(ln_tensor_check_live(src));
    LN_TRY(check_copy_shapes(dst, src));
    if (ln_tensor_numel(src) == 0)
        return LN_OK;
    ln_device *ddev = ln_tensor_device(dst), *sdev = ln_tensor_device(src);
    if (ddev == sdev)
        return copy_same_device(dst, src);

    /* Across devices: bring src to the host as contiguous bytes of its own
     * dtype, upload them to a contiguous staging tensor on dst's device, and
     * let that device convert and scatter into dst. */
    int st;
    ln_tensor csrc = {0}, staged = {0};
    void *host = NULL;
    size_t nbytes = (size_t)ln_tensor_numel(src) * ln_dtype_size(src->dtype);
    st = ln_tensor_contiguous(&csrc, src);
    if (st != LN_OK)
        return st;
    const void *host_src = ln_tensor_data(&csrc);
    if (!sdev->host_memory) {
        host = malloc(nbytes);
        if (!host) {
            ln_tensor_release(&csrc);
            return ln_error(LN_ENOMEM, "out of host memory staging %zu bytes", nbytes);
        }
        ln_device_note_host_read();
        st = LN_CALL(sdev, download, host, ln_tensor_data(&csrc), nbytes);
        host_src = host;
    }
    if (st == LN_OK) {
        if (dst->dtype == src->dtype && ln_tensor_is_contiguous(dst)) {
            st = LN_CALL(ddev, upload, ln_tensor_data(dst), host_src, nbytes);
        } else {
            st = ln_tensor_alloc(&staged, ddev, src->dtype, src->ndim, src->shape);
            if (st == LN_OK)
                st = LN_CALL(ddev, upload, ln_tensor_data(&staged), host_src, nbytes);
            if (st == LN_OK)
                st = copy_same_device(dst, &staged);
        }
    }
    free(host);
    ln_tensor_release(&staged);
    ln_tensor_release(&csrc);
    return st;
}

int ln_tensor_to(ln_tensor *out, const ln_tensor *src, ln_device *dev, ln_dtype dtype)
{
    LN_TRY(ln_tensor_check_live(src));
    LN_TRY(ln_tensor_alloc(out, dev, dtype, src->ndim, src->shape));
    int st = ln_tensor_copy(out, src);
    if (st != LN_OK)
        ln_tensor_release(out);
    return st;
}

int ln_tensor_fill(ln_tensor *t, double value)
{
    LN_TRY(ln_tensor_check_live(t));
    if (ln_tensor_numel(t) == 0)
        return LN_OK;
    ln_strided s = ln_tensor_strided(t);
    return LN_CALL(ln_tensor_device(t), fill, &s, value);
}

static int element_offset(const ln_tensor *t, const int64_t *index, int64_t *offset)
{
    char a[256];
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i])
            return ln_error(LN_EINVAL, "index %lld is out of range for dimension %d "
                            "of shape %s (1..%lld)", (long long)index[i] + 1, i + 1,
                            ln_tensor_shape_string(t, a, sizeof a),
                            (long long)t->shape[i]);
        off += index[i] * t->stride[i];
    }
    *offset = off;
    return LN_OK;
}

int ln_tensor_get(const ln_tensor *t, const int64_t *index, double *value)
{
    int64_t off;
    unsigned char buf[8];
    LN_TRY(ln_tensor_check_live(t));
    LN_TRY(element_offset(t, index, &off));
    ln_device *dev = ln_tensor_device(t);
    size_t size = ln_dtype_size(t->dtype);
    const char *p = (const char *)ln_tensor_data(t) + (size_t)off * size;
    ln_device_note_host_read();
    if (dev->host_memory) {
        memcpy(buf, p, size);
    } else {
        LN_TRY(LN_CALL(dev, download, buf, p, size));
    }
    *value = ln_load_as_double(buf, t->dtype, 0);
    return LN_OK;
}

int ln_tensor_set(ln_tensor *t, const int64_t *index, double value)
{
    int64_t off;
    unsigned char buf[8];
    LN_TRY(ln_tensor_check_live(t));
    LN_TRY(element_offset(t, index, &off));
    ln_device *dev = ln_tensor_device(t);
    size_t size = ln_dtype_size(t->dtype);
    char *p = (char *)ln_tensor_data(t) + (size_t)off * size;
    ln_store_from_double(buf, t->dtype, 0, value);
    if (dev->host_memory) {
        memcpy(p, buf, size);
        return LN_OK;
    }
    return LN_CALL(dev, upload, p, buf, size);
}

int ln_tensor_to_host(const ln_tensor *t, void **host)
{
    *host = NULL;
    LN_TRY(ln_tensor_check_live(t));
    size_t nbytes = (size_t)ln_tensor_numel(t) * ln_dtype_size(t->dtype);
    ln_tensor c = {0};
    LN_TRY(ln_tensor_contiguous(&c, t));
    void *buf = malloc(nbytes ? nbytes : 1);
    int st = LN_OK;
    if (!buf) {
        st = ln_error(LN_ENOMEM, "out of host memory copying %zu bytes", nbytes);
    } else if (nbytes) {
        ln_device *dev = ln_tensor_device(&c);
        ln_device_note_host_read();
        if (dev->host_memory)
            memcpy(buf, ln_tensor_data(&c), nbytes);
        else
            st = LN_CALL(dev, download, buf, ln_tensor_data(&c), nbytes);
    }
    ln_tensor_release(&c);
    if (st != LN_OK) {
        free(buf);
        return st;
    }
    *host = buf;
    return LN_OK;
}
