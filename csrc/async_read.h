/* Reading a few values of a device tensor without waiting for the device:
 * the progress line's path to the running loss and correct counts. Each
 * poll returns the values of the last copy that completed (or none yet)
 * and starts the next one, so the host never blocks on the device. */
#ifndef LUNET_ASYNC_READ_H
#define LUNET_ASYNC_READ_H

#include "tensor.h"

#define LN_ASYNC_READ_MAX 8 /* float32 values a reader carries */

typedef struct ln_async_read {
    ln_device *dev;     /* the device of the token below */
    void *token;        /* the backend's staging (pinned memory, an event) */
    int pending, pending_count; /* a copy of pending_count values is in flight */
    long long pending_tag, tag;
    int have, count;    /* values[] holds `count` values read at `tag` */
    float values[LN_ASYNC_READ_MAX];
} ln_async_read;

/* t: a contiguous float32 tensor of 1..LN_ASYNC_READ_MAX elements; tag: the
 * caller's mark for this moment (e.g. the batch number), handed back with
 * the values it belongs to. After the call, r->have says whether r->values
 * holds a read (taken at r->tag).
 *  - host-memory devices (ref, cpu): their ops are done when they return,
 *    so the values are read in place now, no wait and no host read counted;
 *  - a backend with read_async_begin/read_async_poll (backend.h): an
 *    asynchronous copy into staging memory, queried, never waited for: the
 *    values are those of the previous completed copy;
 *  - any other device: a plain (waiting) read, counted as a host read. */
int ln_async_read_poll(ln_async_read *r, const ln_tensor *t, long long tag);

/* Releases the backend's staging; r can be polled again afterwards. */
void ln_async_read_release(ln_async_read *r);

#endif
