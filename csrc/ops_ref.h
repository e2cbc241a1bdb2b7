/* The reference kernels: plain loops, written to be read, never optimised.
 * They fill the "ref" backend, serve as the CPU backend's implementation of
 * whatever has no fast path yet, and are the oracle every fast kernel is tested
 * against. Signatures are exactly the backend slots (see backend.h). */
#ifndef LUNET_OPS_REF_H
#define LUNET_OPS_REF_H

#include "backend.h"

int ln_ref_copy(void *ctx, const ln_strided *dst, const ln_strided *src);
int ln_ref_fill(void *ctx, const ln_strided *dst, double value);
int ln_ref_binary(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                  const void *a, const void *b, void *out);
int ln_ref_binary_scalar(void *ctx, ln_binary_op op, ln_dtype dtype, int64_t n,
                         const void *a, double s, int scalar_first, void *out);
int ln_ref_reduce(void *ctx, ln_reduce_op op, ln_dtype dtype, int64_t n,
                  const void *x, double *result);
int ln_ref_argmax(void *ctx, ln_dtype dtype, int64_t outer, int64_t dim,
                  int64_t inner, const void *x, int32_t *out);
int ln_ref_gemm(void *ctx, ln_dtype dtype, int trans_a, int trans_b, int m, int n,
                int k, float alpha, const void *a, int lda, const void *b,
                int ldb, float beta, void *c, int ldc);
int ln_ref_rand_uniform(void *ctx, ln_dtype dtype, int64_t n, void *out,
                        double lo, double hi, uint64_t seed, uint64_t offset);
int ln_ref_rand_normal(void *ctx, ln_dtype dtype, int64_t n, void *out,
                       double mean, double std, uint64_t seed, uint64_t offset);
int ln_ref_gather_rows(void *ctx, ln_dtype src_dtype, const void *src,
                       ln_dtype dst_dtype, void *dst, int64_t row_elems,
                       const int32_t *indices, int64_t n, double divisor);

#endif
