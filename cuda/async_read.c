/* Reading a few bytes of device memory without waiting (async_read.h): the
 * copy is queued on the device's stream after every op before it, into
 * pinned memory (so it is truly asynchronous), with an event recorded
 * behind it; a poll asks the event and hands the bytes over once it has
 * fired. One copy in flight per token. */
#include <stdlib.h>
#include <string.h>

#include "async_read_slots.h"
#include "context.h"

#define READ_MAX 32 /* bytes: LN_ASYNC_READ_MAX float32 values */

typedef struct read_token {
    unsigned char *pinned; /* READ_MAX bytes of page-locked memory */
    cudaEvent_t done;
    size_t bytes;          /* of the copy in flight, 0 when none */
} read_token;

void ln_cuda_read_async_free(void *vctx, void *vtoken)
{
    ln_cuda_context *ctx = vctx;
    read_token *t = vtoken;
    if (!t)
        return;
    cudaSetDevice(ctx->device);
    /* a queued copy may still write the pinned bytes */
    if (t->done) {
        cudaEventSynchronize(t->done);
        cudaEventDestroy(t->done);
    }
    if (t->pinned)
        cudaFreeHost(t->pinned);
    free(t);
}

static int new_token(ln_cuda_context *ctx, read_token **out)
{
    read_token *t = calloc(1, sizeof *t);
    if (!t)
        return ln_cuda_error(LN_ENOMEM, "out of host memory for a read token");
    cudaError_t e = cudaHostAlloc((void **)&t->pinned, READ_MAX, cudaHostAllocDefault);
    if (e == cudaSuccess)
        e = cudaEventCreateWithFlags(&t->done, cudaEventDisableTiming);
    if (e != cudaSuccess) {
        ln_cuda_read_async_free(ctx, t);
        return ln_cuda_fail_cuda(e, __func__, "cudaHostAlloc/cudaEventCreateWithFlags",
                                 __FILE__, __LINE__);
    }
    *out = t;
    return LN_OK;
}

int ln_cuda_read_async_begin(void *vctx, const void *src, size_t bytes, void **token)
{
    ln_cuda_context *ctx = vctx;
    if (bytes == 0 || bytes > READ_MAX)
        return ln_cuda_error(LN_EINVAL, "an asynchronous read carries 1 to %d bytes, not %zu",
                             READ_MAX, bytes);
    LN_CUDA_ENTER(ctx);
    if (!*token)
        LN_TRY(new_token(ctx, (read_token **)token));
    read_token *t = *token;
    if (t->bytes)
        return ln_cuda_error(LN_EINVAL, "an asynchronous read is still in flight on this token");
    LN_CUDA_CHECK(cudaMemcpyAsync(t->pinned, src, bytes, cudaMemcpyDeviceToHost, ctx->stream));
    LN_CUDA_CHECK(cudaEventRecord(t->done, ctx->stream));
    t->bytes = bytes;
    return LN_OK;
}

int ln_cuda_read_async_poll(void *vctx, void *vtoken, void *dst, int *ready)
{
    ln_cuda_context *ctx = vctx;
    read_token *t = vtoken;
    *ready = 0;
    if (!t || !t->bytes)
        return ln_cuda_error(LN_EINVAL, "no asynchronous read in flight on this token");
    LN_CUDA_ENTER(ctx);
    cudaError_t e = cudaEventQuery(t->done);
    if (e == cudaErrorNotReady) {
        cudaGetLastError(); /* not an error: clear it */
        return LN_OK;
    }
    if (e != cudaSuccess)
        return ln_cuda_fail_cuda(e, __func__, "cudaEventQuery", __FILE__, __LINE__);
    memcpy(dst, t->pinned, t->bytes);
    t->bytes = 0;
    *ready = 1;
    return LN_OK;
}
