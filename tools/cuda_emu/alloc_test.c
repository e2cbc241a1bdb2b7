/* cuda/allocator.c and cuda/transfer.c on host stand-ins for the runtime
 * calls they make (with a 1 GiB limit, to take the out-of-memory path): random
 * allocations and frees never overlap, the counters agree with the driver's,
 * out of memory empties the cache and says how much was asked, and uploads and
 * downloads round-trip through the staging slots at sizes around a chunk. */
#include <cuda_runtime_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include "context.h"

static size_t shim_limit = (size_t)1 << 30, shim_used;
static long shim_mallocs, shim_frees;
typedef struct { void *p; size_t n; } rec;
static rec recs[100000]; static int nrecs;

cudaError_t cudaMalloc(void **p, size_t n) {
    if (shim_used + n > shim_limit) { *p = NULL; return cudaErrorMemoryAllocation; }
    *p = aligned_alloc(512, (n + 511) / 512 * 512); shim_used += n; shim_mallocs++;
    recs[nrecs].p = *p; recs[nrecs].n = n; nrecs++;
    return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
    for (int i = 0; i < nrecs; i++) if (recs[i].p == p) { shim_used -= recs[i].n; recs[i] = recs[--nrecs]; free(p); shim_frees++; return cudaSuccess; }
    fprintf(stderr, "cudaFree of unknown %p\n", p); abort();
}
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned f) { (void)f; *p = malloc(n); return cudaSuccess; }
cudaError_t cudaFreeHost(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaSetDevice(int d) { (void)d; return cudaSuccess; }
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t s) { (void)s; return cudaSuccess; }
cudaError_t cudaEventSynchronize(cudaEvent_t e) { (void)e; return cudaSuccess; }
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { (void)e; (void)s; return cudaSuccess; }
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) { *f = shim_limit - shim_used; *t = shim_limit; return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) { (void)k; (void)st; memcpy(d, s, n); return cudaSuccess; }
const char *cudaGetErrorName(cudaError_t e) { return e == cudaErrorMemoryAllocation ? "cudaErrorMemoryAllocation" : "cudaError"; }
const char *cudaGetErrorString(cudaError_t e) { (void)e; return "shim"; }
static char last_msg[1024];
int ln_cuda_error(int code, const char *fmt, ...) { va_list ap; va_start(ap, fmt); vsnprintf(last_msg, sizeof last_msg, fmt, ap); va_end(ap); return code; }
int ln_cuda_fail_cuda(cudaError_t e, const char *func, const char *call, const char *file, int line) {
    return ln_cuda_error(e == cudaErrorMemoryAllocation ? LN_ENOMEM : LN_EDEVICE, "%s: %s (%s:%d)", func, call, file, line); }
static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; fprintf(stderr, "FAIL line %d: ", __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } while (0)
static unsigned long long s = 1;
static unsigned rnd(void) { s = s * 6364136223846793005ull + 1442695040888963407ull; return (unsigned)(s >> 33); }
int main(void) {
    ln_cuda_context *ctx = calloc(1, sizeof *ctx);
    enum { N = 3000 };
    void *live[N] = {0}; size_t size[N] = {0};
    for (int step = 0; step < 200000; step++) {
        int i = rnd() % N;
        if (live[i]) {
            unsigned char *p = live[i]; /* our pattern intact: no other block overlapped it */
            CHECK((size[i] == 1 || p[0] == (unsigned char)i) && p[size[i] - 1] == (unsigned char)(i * 7), "block %d corrupted", i);
            ln_cuda_free(ctx, live[i]); live[i] = NULL;
        } else {
            size_t n = rnd() % 3 == 0 ? 1 + rnd() % (3u << 20) : 1 + rnd() % 5000;
            int st = ln_cuda_alloc(ctx, n, &live[i]);
            if (st != LN_OK) { CHECK(st == LN_ENOMEM && live[i] == NULL, "alloc failed %d", st); continue; }
            size[i] = n;
            CHECK(ln_cuda_size_class(n) >= n, "class");
            unsigned char *p = live[i]; p[0] = (unsigned char)i; p[n - 1] = (unsigned char)(i * 7);
        }
    }
    uint64_t held = 0; for (int i = 0; i < N; i++) if (live[i]) held += ln_cuda_size_class(size[i]);
    CHECK(held == ctx->allocator.allocated_bytes, "allocated_bytes %llu vs %llu", (unsigned long long)ctx->allocator.allocated_bytes, (unsigned long long)held);
    CHECK(shim_used == ctx->allocator.allocated_bytes + ctx->allocator.cached_bytes, "driver holds %zu, allocator says %llu + %llu", shim_used,
          (unsigned long long)ctx->allocator.allocated_bytes, (unsigned long long)ctx->allocator.cached_bytes);
    printf("mallocs %ld frees %ld hits %llu peak %llu\n", shim_mallocs, shim_frees, (unsigned long long)ctx->allocator.cache_hits, (unsigned long long)ctx->allocator.peak_bytes);
    /* out of memory: a huge request fails with the message and leaves things usable */
    void *big = NULL;
    int st = ln_cuda_alloc(ctx, (size_t)1 << 40, &big);
    CHECK(st == LN_ENOMEM && big == NULL && strstr(last_msg, "1099511627776 bytes") && strstr(last_msg, " free of "), "oom: %d %s", st, last_msg);
    CHECK(ctx->allocator.cached_bytes == 0, "cache not emptied on OOM");
    /* empty cache */
    for (int i = 0; i < N; i++) if (live[i]) { ln_cuda_free(ctx, live[i]); live[i] = NULL; }
    CHECK(ctx->allocator.allocated_bytes == 0, "all freed");
    ln_cuda_empty_cache(ctx);
    CHECK(shim_used == 0 && ctx->allocator.cached_bytes == 0, "empty_cache left %zu", shim_used);
    /* transfers: round trips through the staging slots, sizes around the 16 MiB chunk */
    size_t sizes[] = {1, 4, 65536, 65537, (16u << 20) - 1, 16u << 20, (16u << 20) + 3, (40u << 20) + 5};
    for (int k = 0; k < 8; k++) {
        size_t n = sizes[k];
        unsigned char *h = malloc(n), *back = malloc(n); void *d;
        for (size_t j = 0; j < n; j++) h[j] = (unsigned char)rnd();
        CHECK(ln_cuda_alloc(ctx, n, &d) == LN_OK, "alloc");
        CHECK(ln_cuda_upload(ctx, d, h, n) == LN_OK, "upload");
        CHECK(ln_cuda_download(ctx, back, d, n) == LN_OK, "download");
        CHECK(memcmp(h, back, n) == 0, "round trip of %zu bytes", n);
        ln_cuda_free(ctx, d); free(h); free(back);
    }
    printf("%s (%d failures)\n", fails ? "FAILED" : "ok", fails);
    return fails != 0;
}
