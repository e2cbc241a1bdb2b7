/* The caching device allocator.
 *
 * cudaMalloc and cudaFree are slow and synchronise the device, so freed
 * blocks are kept in per-size free lists and handed out again: once a training
 * step has run, the next ones allocate nothing from the driver. Sizes are
 * rounded up to size classes (512-byte steps up to 1 MiB, then four classes
 * per power of two) so that nearby sizes share blocks at no more than 25%
 * waste. When the driver is out of memory the cache is returned to it and the
 * allocation is tried once more before it fails with LN_ENOMEM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"

#define SMALL_LIMIT ((size_t)1 << 20)
#define SMALL_STEP ((size_t)512)

size_t ln_cuda_size_class(size_t n)
{
    if (n <= SMALL_LIMIT)
        return (n + SMALL_STEP - 1) / SMALL_STEP * SMALL_STEP;
    size_t power = SMALL_LIMIT;
    while (power <= n / 2)
        power *= 2; /* largest power of two <= n */
    size_t step = power / 4;
    if (n > SIZE_MAX - step)
        return n;
    return (n + step - 1) / step * step;
}

static size_t hash_bits(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)(key % LN_CUDA_BUCKETS);
}

static size_t ptr_bucket(const void *p)
{
    return hash_bits((uint64_t)(uintptr_t)p >> 9);
}

static size_t size_bucket(size_t size)
{
    return hash_bits((uint64_t)size);
}

static ln_cuda_block *new_node(ln_cuda_allocator *a)
{
    ln_cuda_block *b = a->spare;
    if (b) {
        a->spare = b->next;
        return b;
    }
    return malloc(sizeof *b);
}

/* Pops a cached block of exactly `size` bytes, or NULL. */
static ln_cuda_block *take_cached(ln_cuda_allocator *a, size_t size)
{
    ln_cuda_block **link = &a->cached[size_bucket(size)];
    for (ln_cuda_block *b = *link; b; link = &b->next, b = b->next) {
        if (b->size == size) {
            *link = b->next;
            a->cached_bytes -= size;
            return b;
        }
    }
    return NULL;
}

static void human_bytes(char *buf, size_t len, double bytes)
{
    static const char *units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024.0 && u < 4) {
        bytes /= 1024.0;
        u++;
    }
    snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
}

/* Returns every cached block to the driver. The stream is drained first:
 * a block may still be read by queued work when it was freed. */
static int release_cached(ln_cuda_context *ctx)
{
    ln_cuda_allocator *a = &ctx->allocator;
    LN_CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    for (int i = 0; i < LN_CUDA_BUCKETS; i++) {
        while (a->cached[i]) {
            ln_cuda_block *b = a->cached[i];
            a->cached[i] = b->next;
            a->cached_bytes -= b->size;
            a->device_frees++;
            cudaError_t e = cudaFree(b->ptr);
            b->next = a->spare;
            a->spare = b;
            LN_CUDA_CHECK(e);
        }
    }
    return LN_OK;
}

static int out_of_memory(ln_cuda_context *ctx, size_t asked)
{
    size_t free_bytes = 0, total_bytes = 0;
    char a[32], f[32], t[32], held[32];
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess)
        (void)cudaGetLastError();
    human_bytes(a, sizeof a, (double)asked);
    human_bytes(f, sizeof f, (double)free_bytes);
    human_bytes(t, sizeof t, (double)total_bytes);
    human_bytes(held, sizeof held, (double)ctx->allocator.allocated_bytes);
    return ln_cuda_error(LN_ENOMEM,
                         "cuda:%d is out of memory: cudaMalloc of %zu bytes (%s) failed "
                         "with %s free of %s (lunet's tensors hold %s)",
                         ctx->device, asked, a, f, t, held);
}

int ln_cuda_alloc(void *vctx, size_t nbytes, void **ptr)
{
    ln_cuda_context *ctx = vctx;
    ln_cuda_allocator *a = &ctx->allocator;
    *ptr = NULL;
    if (nbytes == 0)
        return LN_OK;
    size_t size = ln_cuda_size_class(nbytes);
    ln_cuda_block *b = take_cached(a, size);
    if (b) {
        a->cache_hits++;
    } else {
        void *p = NULL;
        LN_CUDA_ENTER(ctx);
        cudaError_t e = cudaMalloc(&p, size);
        if (e == cudaErrorMemoryAllocation) {
            (void)cudaGetLastError(); /* out of memory is not sticky: clear it */
            LN_TRY(release_cached(ctx));
            e = cudaMalloc(&p, size);
            if (e == cudaErrorMemoryAllocation) {
                (void)cudaGetLastError();
                return out_of_memory(ctx, nbytes);
            }
        }
        LN_CUDA_CHECK(e);
        b = new_node(a);
        if (!b) {
            cudaFree(p);
            return ln_cuda_error(LN_ENOMEM, "alloc: out of host memory");
        }
        b->ptr = p;
        b->size = size;
        a->device_allocations++;
    }
    size_t bucket = ptr_bucket(b->ptr);
    b->next = a->live[bucket];
    a->live[bucket] = b;
    a->allocated_bytes += b->size;
    if (a->allocated_bytes > a->peak_bytes)
        a->peak_bytes = a->allocated_bytes;
    *ptr = b->ptr;
    return LN_OK;
}

void ln_cuda_free(void *vctx, void *ptr)
{
    ln_cuda_context *ctx = vctx;
    ln_cuda_allocator *a = &ctx->allocator;
    if (!ptr)
        return;
    ln_cuda_block **link = &a->live[ptr_bucket(ptr)];
    for (ln_cuda_block *b = *link; b; link = &b->next, b = b->next) {
        if (b->ptr == ptr) {
            *link = b->next;
            a->allocated_bytes -= b->size;
            size_t bucket = size_bucket(b->size);
            b->next = a->cached[bucket];
            a->cached[bucket] = b;
            a->cached_bytes += b->size;
            return;
        }
    }
    /* not ours: ignoring it is the only safe choice in a void slot */
}

int ln_cuda_empty_cache(void *vctx)
{
    ln_cuda_context *ctx = vctx;
    LN_CUDA_ENTER(ctx);
    return release_cached(ctx);
}

void ln_cuda_memory_stats_of(void *vctx, ln_cuda_memory_stats *out)
{
    ln_cuda_context *ctx = vctx;
    memset(out, 0, sizeof *out);
    if (!ctx)
        return;
    out->allocated_bytes = ctx->allocator.allocated_bytes;
    out->cached_bytes = ctx->allocator.cached_bytes;
    out->peak_bytes = ctx->allocator.peak_bytes;
    out->device_allocations = ctx->allocator.device_allocations;
    out->cache_hits = ctx->allocator.cache_hits;
    out->device_frees = ctx->allocator.device_frees;
    out->conv_algorithms = (uint64_t)ctx->algo_count;
    out->workspace_bytes = ctx->workspace_bytes;
}

void ln_cuda_allocator_release_all(ln_cuda_context *ctx)
{
    ln_cuda_allocator *a = &ctx->allocator;
    for (int i = 0; i < LN_CUDA_BUCKETS; i++) {
        ln_cuda_block **lists[2] = {&a->live[i], &a->cached[i]};
        for (int l = 0; l < 2; l++) {
            while (*lists[l]) {
                ln_cuda_block *b = *lists[l];
                *lists[l] = b->next;
                cudaFree(b->ptr);
                free(b);
            }
        }
    }
    while (a->spare) {
        ln_cuda_block *b = a->spare;
        a->spare = b->next;
        free(b);
    }
    (void)cudaGetLastError();
    a->allocated_bytes = a->cached_bytes = 0;
    ctx->workspace = NULL;
    ctx->workspace_bytes = 0;
}
