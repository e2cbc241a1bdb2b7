/* The CUDA backend's read_async slots (csrc/backend.h, csrc/async_read.h): a
 * few bytes copied to pinned memory behind an event, queried, never waited
 * for. Registered only when built with -DLUNET_CUDA_ASYNC_READ=ON: checked
 * on the host by tools/cuda_emu (async_read_test.c), not yet run on a GPU;
 * without it a CUDA progress read waits (a plain download, a few times a
 * second). */
#ifndef LUNET_CUDA_ASYNC_READ_SLOTS_H
#define LUNET_CUDA_ASYNC_READ_SLOTS_H

#include <stddef.h>

int ln_cuda_read_async_begin(void *ctx, const void *src, size_t bytes, void **token);
int ln_cuda_read_async_poll(void *ctx, void *token, void *dst, int *ready);
void ln_cuda_read_async_free(void *ctx, void *token);

#endif
