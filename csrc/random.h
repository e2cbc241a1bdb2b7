/* The generator every random draw of lunet uses: a seed and a running counter
 * offset for Philox. Each draw reserves the counters it consumes, so draws do
 * not overlap and the same seed replays the same sequence on any device. */
#ifndef LUNET_RANDOM_H
#define LUNET_RANDOM_H

#include <stdint.h>

#define LN_DEFAULT_SEED 0x6c756e6574ull /* "lunet" */

void ln_random_seed(uint64_t seed);
uint64_t ln_random_get_seed(void);
/* Returns the counter offset to use for a draw of n numbers, and advances. */
uint64_t ln_random_reserve(uint64_t n);

/* A host-side stream for shuffling: 32 random bits at a time. */
typedef struct ln_random_stream {
    uint64_t seed, counter;
    uint32_t buffer[4];
    int left;
} ln_random_stream;

void ln_random_stream_init(ln_random_stream *s, uint64_t seed, uint64_t counter);
uint32_t ln_random_stream_next(ln_random_stream *s);
/* Unbiased integer in [0, bound). */
uint32_t ln_random_stream_below(ln_random_stream *s, uint32_t bound);

/* perm[0..n) = a uniformly random permutation of 0..n-1 (Fisher-Yates). */
void ln_random_permutation(ln_random_stream *s, int32_t *perm, int32_t n);

#endif
