/* The CPU backend's context and the pieces its kernel files share. */
#ifndef LUNET_CPU_H
#define LUNET_CPU_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

typedef struct ln_cpu_context {
    int threads;               /* for OpenBLAS and our own parallel loops */
    void *scratch;             /* grow-only workspace (im2col and friends) */
    size_t scratch_bytes;
} ln_cpu_context;

/* A workspace of at least `nbytes`, reused across calls: allocated once per
 * new largest shape, so a steady training step allocates nothing. The
 * contents are not preserved across calls. NULL (with the error set) when out
 * of memory. */
void *ln_cpu_scratch(ln_cpu_context *ctx, size_t nbytes);

/* Work below this many elements is not worth waking a second thread for. */
#define LN_CPU_PARALLEL_MIN 32768

int ln_cpu_copy(void *ctx, const ln_strided *dst, const ln_strided *src);
int ln_cpu_fill(void *ctx, const ln_strided *dst, double value);
int ln_cpu_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out);
int ln_cpu_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out);
int ln_cpu_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result);
int ln_cpu_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc);
int ln_cpu_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, double divisor);

#endif
