/* Data augmentation on batches of images: random crop with zero padding,
 * random horizontal flip, per-channel normalisation (lunet.transforms).
 *
 * Batches are float32 {N, C, H, W}, contiguous, in host memory (the cpu and
 * ref devices; on the cpu device the images are shared out over its thread
 * pool) or on a device whose backend has the augment_* slots (CUDA). The
 * random choices of image i come from Philox under (seed, counter + i) alone
 * (augment_image.h), so they do not depend on the device, the thread count or
 * how a batch is cut: the same seed gives the same augmented batches
 * everywhere. */
#ifndef LUNET_AUGMENT_H
#define LUNET_AUGMENT_H

#include <stdint.h>

#include "augment_image.h"
#include "device.h"
#include "tensor.h"

/* Whether dev runs the augmentations below: host memory, or a backend with
 * the augment_* slots (CUDA's, when its unverified kernels are on). */
int ln_augment_on_device(const ln_device *dev);

/* out {N, C, h, w} = a random h x w window of `in` {N, C, H, W} padded with
 * `padding` zeros on every side (H + 2 padding >= h, W + 2 padding >= w). */
int ln_augment_random_crop(ln_tensor *out, const ln_tensor *in, int padding, uint64_t seed,
                           uint64_t counter);
/* Mirrors each image left-right, in place, with probability p. */
int ln_augment_random_hflip(ln_tensor *t, double p, uint64_t seed, uint64_t counter);
/* t[:, c] = (t[:, c] - mean[c]) / std[c], in place; `channels` must be C. */
int ln_augment_normalize(ln_tensor *t, const float *mean, const float *std, int channels);

#endif
