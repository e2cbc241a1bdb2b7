/* The process-wide compute precision (precision.h). It is set from the Lua
 * thread between operations and read by the kernels that thread starts, so a
 * relaxed atomic is enough. */
#include "precision.h"

#include <stdatomic.h>
#include <string.h>

#include "status.h"

static _Atomic int current = LN_PRECISION_FLOAT32;

ln_precision ln_precision_get(void)
{
    return (ln_precision)atomic_load_explicit(&current, memory_order_relaxed);
}

void ln_precision_set(ln_precision p)
{
    atomic_store_explicit(&current, (int)p, memory_order_relaxed);
}

static const char *const names[] = {"float32", "tf32", "bfloat16", "float16"};

const char *ln_precision_name(ln_precision p)
{
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : "?";
}

int ln_precision_parse(const char *name, ln_precision *out)
{
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (ln_precision)i;
            return LN_OK;
        }
    if (strcmp(name, "bf16") == 0) {
        *out = LN_PRECISION_BFLOAT16;
        return LN_OK;
    }
    if (strcmp(name, "fp32") == 0) {
        *out = LN_PRECISION_FLOAT32;
        return LN_OK;
    }
    return LN_EINVAL;
}
