#include "random.h"

#include <math.h>

#include "philox.h"

static uint64_t generator_seed = LN_DEFAULT_SEED;
static uint64_t generator_offset = 0;

void ln_random_seed(uint64_t seed)
{
    generator_seed = seed;
    generator_offset = 0;
}

uint64_t ln_random_get_seed(void)
{
    return generator_seed;
}

uint64_t ln_random_reserve(uint64_t n)
{
    uint64_t offset = generator_offset;
    generator_offset += ln_philox_counters(n);
    return offset;
}

void ln_random_stream_init(ln_random_stream *s, uint64_t seed, uint64_t counter)
{
    s->seed = seed;
    s->counter = counter;
    s->left = 0;
}

uint32_t ln_random_stream_next(ln_random_stream *s)
{
    if (s->left == 0) {
        ln_philox4 r = ln_philox(s->seed, s->counter++);
        for (int i = 0; i < 4; i++)
            s->buffer[i] = r.v[i];
        s->left = 4;
    }
    return s->buffer[4 - s->left--];
}

uint32_t ln_random_stream_below(ln_random_stream *s, uint32_t bound)
{
    /* Lemire's nearly-divisionless method, with rejection for exactness */
    uint64_t m = (uint64_t)ln_random_stream_next(s) * bound;
    uint32_t low = (uint32_t)m;
    if (low < bound) {
        uint32_t threshold = (uint32_t)(-bound) % bound;
        while (low < threshold) {
            m = (uint64_t)ln_random_stream_next(s) * bound;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void ln_random_permutation(ln_random_stream *s, int32_t *perm, int32_t n)
{
    for (int32_t i = 0; i < n; i++)
        perm[i] = i;
    for (int32_t i = n - 1; i > 0; i--) {
        int32_t j = (int32_t)ln_random_stream_below(s, (uint32_t)i + 1);
        int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
