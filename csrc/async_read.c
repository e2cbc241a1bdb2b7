#include "async_read.h"

#include <string.h>

#include "device.h"
#include "status.h"

void ln_async_read_release(ln_async_read *r)
{
    if (r->token && r->dev && r->dev->backend->read_async_free)
        r->dev->backend->read_async_free(r->dev->ctx, r->token);
    r->token = NULL;
    r->dev = NULL;
    r->pending = 0;
}

int ln_async_read_poll(ln_async_read *r, const ln_tensor *t, long long tag)
{
    LN_TRY(ln_tensor_check_live(t));
    int64_t n = ln_tensor_numel(t);
    if (t->dtype != LN_FLOAT32 || !ln_tensor_is_contiguous(t) || n < 1
        || n > LN_ASYNC_READ_MAX)
        return ln_error(LN_EINVAL, "expected a contiguous float32 tensor of 1 to %d elements",
                        LN_ASYNC_READ_MAX);
    ln_device *dev = ln_tensor_device(t);
    size_t bytes = (size_t)n * sizeof(float);
    if (dev->host_memory) {
        memcpy(r->values, ln_tensor_data(t), bytes);
        r->have = 1, r->count = (int)n, r->tag = tag;
        return LN_OK;
    }
    const ln_backend *b = dev->backend;
    if (!b->read_async_begin || !b->read_async_poll) {
        /* element by element: ln_tensor_get counts each as a host read */
        float host[LN_ASYNC_READ_MAX];
        for (int64_t i = 0; i < n; i++) {
            double v;
            LN_TRY(ln_tensor_get(t, &i, &v));
            host[i] = (float)v;
        }
        memcpy(r->values, host, bytes);
        r->have = 1, r->count = (int)n, r->tag = tag;
        return LN_OK;
    }
    if (r->dev != dev)
        ln_async_read_release(r);
    r->dev = dev;
    if (r->pending) {
        int ready = 0;
        float host[LN_ASYNC_READ_MAX];
        LN_TRY(b->read_async_poll(dev->ctx, r->token, host, &ready));
        if (ready) {
            memcpy(r->values, host, (size_t)r->pending_count * sizeof(float));
            r->have = 1, r->count = r->pending_count, r->tag = r->pending_tag, r->pending = 0;
        }
    }
    if (!r->pending) {
        LN_TRY(b->read_async_begin(dev->ctx, ln_tensor_data(t), bytes, &r->token));
        r->pending = 1, r->pending_tag = tag, r->pending_count = (int)n;
    }
    return LN_OK;
}
