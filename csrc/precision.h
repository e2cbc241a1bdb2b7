/* The compute precision of convolutions and matrix products (lunet.autocast):
 * one process-wide setting, read by the backends when they run those ops.
 * Parameters, gradients and optimizer state stay float32 whatever it is. */
#ifndef LUNET_PRECISION_H
#define LUNET_PRECISION_H

typedef enum ln_precision {
    LN_PRECISION_FLOAT32 = 0,
    LN_PRECISION_TF32,     /* CUDA only; the CPU computes these in float32 */
    LN_PRECISION_BFLOAT16, /* bf16 operands, float32 accumulation */
    LN_PRECISION_FLOAT16,  /* CUDA only; the CPU computes these in float32 */
} ln_precision;

ln_precision ln_precision_get(void);
void ln_precision_set(ln_precision p);
const char *ln_precision_name(ln_precision p);
/* "float32", "tf32", "bfloat16", "float16" (and "bf16", "fp32" as aliases);
 * LN_OK, or LN_EINVAL when the name is none of these. */
int ln_precision_parse(const char *name, ln_precision *out);

#endif
