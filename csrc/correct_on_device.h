/* Correct predictions counted where the logits are, so a training step can
 * measure its accuracy without waiting for the device (the counterpart of
 * loss_on_device.h for the session's training accuracy). */
#ifndef LUNET_CORRECT_ON_DEVICE_H
#define LUNET_CORRECT_ON_DEVICE_H

#include "tensor.h"

/* counter: a contiguous float32 tensor of 1 element on the logits' device.
 * Adds the number of rows i of logits {N, C} whose argmax (the first
 * maximum, a NaN counting as the maximum, as ln_op_argmax) equals labels[i]
 * (int32, 1..C) to counter[0]. float32 holds every count up to 2^24 exactly
 * (16.7M images between reads). A label outside 1..C is an error naming its
 * position, as the loss's.
 * Host-memory devices (ref, cpu) only: nothing waits, nothing is allocated
 * or copied. Other devices give LN_ENOTSUP (the caller composes argmax, eq
 * and sum there, which stay on the device). */
int ln_nn_count_correct_into(const ln_tensor *logits, const ln_tensor *labels,
                             ln_tensor *counter);

#endif
