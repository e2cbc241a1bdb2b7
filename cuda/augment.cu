/* lunet.transforms on the device (resident mode): random crop with zero
 * padding, random horizontal flip and normalisation of float32 batches, one
 * thread per output element (crop, normalize) or per swapped pair (flip).
 * Each thread draws its image's Philox block with augment_image.h's own
 * functions, so one seed gives the host path's batches (csrc/augment.c), bit
 * for bit: the crop only copies, and normalize is the same float32 subtract
 * and divide (no contraction: --fmad=false). Never run on a GPU yet: off by
 * default (unverified.c). */
#include "kernels.cuh"

#include "augment_image.h"

__global__ void augment_crop_kernel(int64_t total, ln_augment_geometry g, uint64_t seed,
                                    uint64_t counter, const float *in, float *out)
{
    LN_GRID_STRIDE(k, total)
    {
        int64_t x = k % g.ow, y = (k / g.ow) % g.oh, plane = k / (g.ow * g.oh);
        int dy, dx;
        ln_augment_crop_offsets(seed, counter, plane / g.c, g.range_y, g.range_x, &dy, &dx);
        int64_t sy = y + dy - g.padding, sx = x + dx - g.padding;
        out[k] = sy >= 0 && sy < g.h && sx >= 0 && sx < g.w ? in[(plane * g.h + sy) * g.w + sx]
                                                            : 0.0f;
    }
}

extern "C" int ln_cuda_augment_random_crop(void *vctx, int64_t n, const ln_augment_geometry *g,
                                           uint64_t seed, uint64_t counter, const float *in,
                                           float *out)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = n * g->c * g->oh * g->ow;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    augment_crop_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(total, *g, seed,
                                                                           counter, in, out);
    LN_CUDA_CHECK_LAUNCH("augment_crop_kernel");
    return LN_OK;
}

/* Thread k swaps column x of a row with column w - 1 - x (x < w / 2). */
__global__ void augment_flip_kernel(int64_t total, int64_t rows_per_image, int64_t w, double p,
                                    uint64_t seed, uint64_t counter, float *data)
{
    LN_GRID_STRIDE(k, total)
    {
        int64_t half = w / 2, x = k % half, row = k / half;
        if (!ln_augment_flip_drawn(seed, counter, row / rows_per_image, p))
            continue;
        float *r = data + row * w;
        float t = r[x];
        r[x] = r[w - 1 - x];
        r[w - 1 - x] = t;
    }
}

extern "C" int ln_cuda_augment_random_hflip(void *vctx, int64_t n, int64_t c, int64_t h,
                                            int64_t w, double p, uint64_t seed,
                                            uint64_t counter, float *data)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = n * c * h * (w / 2);
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    augment_flip_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(total, c * h, w, p,
                                                                           seed, counter, data);
    LN_CUDA_CHECK_LAUNCH("augment_flip_kernel");
    return LN_OK;
}

/* Channel `channel` of every image: element k of the n * plane it holds. */
__global__ void augment_normalize_kernel(int64_t total, int64_t c, int64_t plane,
                                         int64_t channel, float mean, float std, float *data)
{
    LN_GRID_STRIDE(k, total)
    {
        float *p = data + ((k / plane) * c + channel) * plane + k % plane;
        *p = (*p - mean) / std; /* a division, as torchvision's Normalize does */
    }
}

/* One launch per channel: mean and std travel as arguments, with no limit on
 * the number of channels and nothing to upload. */
extern "C" int ln_cuda_augment_normalize(void *vctx, int64_t n, int64_t c, int64_t plane,
                                         const float *mean, const float *std, float *data)
{
    ln_cuda_context *ctx = (ln_cuda_context *)vctx;
    int64_t total = n * plane;
    if (total == 0)
        return LN_OK;
    LN_CUDA_ENTER(ctx);
    for (int64_t k = 0; k < c; k++) {
        augment_normalize_kernel<<<ln_blocks(total), LN_THREADS, 0, ctx->stream>>>(
            total, c, plane, k, mean[k], std[k], data);
        LN_CUDA_CHECK_LAUNCH("augment_normalize_kernel");
    }
    return LN_OK;
}
