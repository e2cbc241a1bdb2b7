/* Peak float32 multiply-add rate of this CPU: independent FMA chains in
 * registers (no memory), 1 and 2 threads, 256- and 512-bit.
 *   gcc -O2 -march=native -pthread bench/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

#define ITERS 50000000L
#define CHAINS 12

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *run256(void *out)
{
    __m256 acc[CHAINS], a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += acc[i][0];
    *(float *)out = s;
    return NULL;
}

#ifdef __AVX512F__
static void *run512(void *out)
{
    __m512 acc[CHAINS], a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (long n = 0; n < ITERS; n++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += acc[i][0];
    *(float *)out = s;
    return NULL;
}
#endif

static void measure(const char *name, void *(*fn)(void *), int lanes, int threads)
{
    pthread_t t[8];
    float sink[8];
    double t0 = now();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, fn, &sink[i]);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double dt = now() - t0;
    double flops = 2.0 * lanes * CHAINS * (double)ITERS * threads;
    printf("%s, %d thread%s: %.1f GFLOP/s (%.3f s)\n", name, threads, threads > 1 ? "s" : "",
           flops / dt / 1e9, dt);
}

int main(void)
{
    for (int threads = 1; threads <= 2; threads++) {
        measure("ymm fma", run256, 8, threads);
#ifdef __AVX512F__
        measure("zmm fma", run512, 16, threads);
#endif
    }
    return 0;
}
