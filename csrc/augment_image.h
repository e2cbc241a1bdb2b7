/* The augmentations' arithmetic on raw float32 batches [N, C, H, W], one image
 * at a time: what csrc/augment.c shares out over the cpu's threads, and what
 * tools/cuda_emu holds the CUDA kernels (cuda/augment.cu) against, bit for
 * bit. The draws are header-only, so host and device run the very same code
 * (as philox.h): image i of a batch uses the Philox block (seed, counter + i)
 * alone, words v[0], v[1] for the crop's offsets and v[2] for the flip. */
#ifndef LUNET_AUGMENT_IMAGE_H
#define LUNET_AUGMENT_IMAGE_H

#include <stdint.h>

#include "backend.h" /* ln_augment_geometry */
#include "philox.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The crop window of image i: offsets into the zero-padded image. */
LN_HOSTDEV void ln_augment_crop_offsets(uint64_t seed, uint64_t counter, int64_t image,
                                        int range_y, int range_x, int *dy, int *dx)
{
    ln_philox4 r = ln_philox(seed, counter + (uint64_t)image);
    *dy = (int)(r.v[0] % (uint32_t)range_y);
    *dx = (int)(r.v[1] % (uint32_t)range_x);
}

/* Whether image i is flipped, with probability p. */
LN_HOSTDEV int ln_augment_flip_drawn(uint64_t seed, uint64_t counter, int64_t image, double p)
{
    ln_philox4 r = ln_philox(seed, counter + (uint64_t)image);
    return (double)ln_uint_to_unit(r.v[2]) < p;
}

/* Image i of out = its random window of image i of in (zeros outside it). */
void ln_augment_crop_image(const ln_augment_geometry *g, float *out, const float *in, int64_t i,
                           uint64_t seed, uint64_t counter);
/* Mirrors image i of data [n, c, h, w] left-right, in place, when drawn (p). */
void ln_augment_flip_image(float *data, int64_t c, int64_t h, int64_t w, int64_t i, double p,
                           uint64_t seed, uint64_t counter);
/* Image i of data [n, c, plane]: (x - mean[c]) / std[c], in place. */
void ln_augment_normalize_image(float *data, int64_t c, int64_t plane, int64_t i,
                                const float *mean, const float *std);

#ifdef __cplusplus
}
#endif

#endif
