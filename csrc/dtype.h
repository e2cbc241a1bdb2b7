/* Element types. float16 and bfloat16 are storage types: the CPU converts them
 * to and from float32; CUDA also computes with them (mixed precision). */
#ifndef LUNET_DTYPE_H
#define LUNET_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* C linkage for the CUDA backend's C++ files, which compile dtype.c in. */
#ifdef __cplusplus
extern "C" {
#endif

typedef enum ln_dtype {
    LN_FLOAT32 = 0,
    LN_INT32 = 1,
    LN_UINT8 = 2,
    LN_FLOAT16 = 3,
    LN_BFLOAT16 = 4,
    LN_DTYPE_COUNT
} ln_dtype;

size_t ln_dtype_size(ln_dtype dtype);
const char *ln_dtype_name(ln_dtype dtype);
/* Returns 0 and sets *out when `name` is a dtype name, else -1. */
int ln_dtype_from_name(const char *name, ln_dtype *out);
int ln_dtype_is_float(ln_dtype dtype);

/* Scalar conversions used by the CPU for the 16-bit float storage types:
 * round to nearest even, NaN kept NaN, overflow to infinity. */
uint16_t ln_float_to_half(float f);
float ln_half_to_float(uint16_t h);
uint16_t ln_float_to_bfloat16(float f);
float ln_bfloat16_to_float(uint16_t b);

/* Reads or writes element i of a buffer of `dtype` as a double. */
double ln_load_as_double(const void *data, ln_dtype dtype, int64_t i);
void ln_store_from_double(void *data, ln_dtype dtype, int64_t i, double v);

#ifdef __cplusplus
}
#endif

#endif
