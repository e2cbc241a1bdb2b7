/* The cross-entropy loss left on the device, so a training step never waits
 * for it (nn_ops.h's ln_nn_cross_entropy_forward hands it to the host). */
#ifndef LUNET_LOSS_ON_DEVICE_H
#define LUNET_LOSS_ON_DEVICE_H

#include "tensor.h"

/* loss: a contiguous float32 tensor on the logits' device.
 *  - accumulate = 0: loss has 1 element; loss[0] = the mean cross-entropy,
 *    rounded to float32.
 *  - accumulate = 1: loss has 2 elements, a running sum kept as {sum,
 *    compensation} (a compensated sum: a float32 pair keeps about 48 bits
 *    of the sum over an epoch; the total is sum + compensation), and
 *    the mean (a double) is added to it.
 * On host-memory devices (ref, cpu) nothing waits and nothing is copied, and
 * a label outside 1..C is an error naming its position, as in
 * ln_nn_cross_entropy_forward. On a device whose backend has the optional
 * cross_entropy_forward_device (CUDA) nothing waits either, and a bad label
 * makes the loss NaN (nothing can report it without waiting). Elsewhere the
 * value goes through the host (and counts as host reads). */
int ln_nn_cross_entropy_forward_into(const ln_tensor *logits, const ln_tensor *labels,
                                     ln_tensor *loss, int accumulate);

#endif
