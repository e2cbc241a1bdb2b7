/* Host <-> device copies through pinned staging memory.
 *
 * Copies from pageable memory are slow and synchronous; page-locked memory
 * lets the DMA engine read directly. The context keeps two pinned slots
 * (grow-only, at most STAGING_MAX bytes each): an upload copies the caller's
 * bytes into a slot and queues the transfer, so the caller's buffer is free
 * when upload returns while the transfer itself runs in stream order. Before
 * a slot is refilled, its previous transfer is waited for (an event), so the
 * data loader's next batch overlaps the current step. Larger copies go
 * through in chunks, alternating slots. */
#include <string.h>

#include "context.h"

#define STAGING_MIN ((size_t)64 << 10)
#define STAGING_MAX ((size_t)16 << 20)

static int ensure_staging(ln_cuda_context *ctx, size_t want)
{
    if (want > STAGING_MAX)
        want = STAGING_MAX;
    if (want <= ctx->staging_bytes)
        return LN_OK;
    size_t size = STAGING_MIN;
    while (size < want)
        size *= 2;
    for (int i = 0; i < 2; i++) {
        /* a queued transfer may still read the old slot */
        LN_CUDA_CHECK(cudaEventSynchronize(ctx->staging_done[i]));
        if (ctx->staging[i]) {
            void *old = ctx->staging[i];
            ctx->staging[i] = NULL;
            LN_CUDA_CHECK(cudaFreeHost(old));
        }
    }
    ctx->staging_bytes = 0;
    for (int i = 0; i < 2; i++)
        LN_CUDA_CHECK(cudaHostAlloc(&ctx->staging[i], size, cudaHostAllocDefault));
    ctx->staging_bytes = size;
    return LN_OK;
}

int ln_cuda_upload(void *vctx, void *dst, const void *host_src, size_t nbytes)
{
    ln_cuda_context *ctx = vctx;
    if (nbytes == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    LN_TRY(ensure_staging(ctx, nbytes));
    for (size_t done = 0; done < nbytes;) {
        size_t len = nbytes - done < ctx->staging_bytes ? nbytes - done : ctx->staging_bytes;
        int slot = ctx->staging_next;
        ctx->staging_next ^= 1;
        LN_CUDA_CHECK(cudaEventSynchronize(ctx->staging_done[slot]));
        memcpy(ctx->staging[slot], (const char *)host_src + done, len);
        LN_CUDA_CHECK(cudaMemcpyAsync((char *)dst + done, ctx->staging[slot], len,
                                      cudaMemcpyHostToDevice, ctx->stream));
        LN_CUDA_CHECK(cudaEventRecord(ctx->staging_done[slot], ctx->stream));
        done += len;
    }
    return LN_OK;
}

int ln_cuda_download(void *vctx, void *host_dst, const void *src, size_t nbytes)
{
    ln_cuda_context *ctx = vctx;
    if (nbytes == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    LN_TRY(ensure_staging(ctx, nbytes));
    for (size_t done = 0; done < nbytes;) {
        size_t len = nbytes - done < ctx->staging_bytes ? nbytes - done : ctx->staging_bytes;
        int slot = ctx->staging_next;
        ctx->staging_next ^= 1;
        /* stream order: the copy starts after every op queued before it */
        LN_CUDA_CHECK(cudaMemcpyAsync(ctx->staging[slot], (const char *)src + done, len,
                                      cudaMemcpyDeviceToHost, ctx->stream));
        LN_CUDA_CHECK(cudaEventRecord(ctx->staging_done[slot], ctx->stream));
        LN_CUDA_CHECK(cudaEventSynchronize(ctx->staging_done[slot]));
        memcpy((char *)host_dst + done, ctx->staging[slot], len);
        done += len;
    }
    return LN_OK;
}
