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
        ln_async_read_release(r); /* drop an older copy pending on another device */
        memcpy(r->values, ln_tensor_data(t), bytes);
        r->have = 1, r->count = (int)n, r->tag = tag;
        return LN_OK;
    }
    const ln_backend *b = dev->backend;
    if (!b->read_async_begin || !b->read_async_poll) {
        /* no asynchronous path: one plain (waiting) download, counted as a
         * host read; a copy queued earlier on another device is dropped so
         * that a later poll cannot return its older values */
        ln_async_read_release(r);
        float host[LN_ASYNC_READ_MAX];
        ln_device_note_host_read();
        LN_TRY(b->download(dev->ctx, host, ln_tensor_data(t), bytes));
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
        int status = b->read_async_poll(dev->ctx, r->token, host, &ready);
        if (status != LN_OK) {
            ln_async_read_release(r); /* the next poll starts a fresh copy */
            return status;
        }
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
