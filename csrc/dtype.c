#include "dtype.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtype_table[LN_DTYPE_COUNT] = {
    [LN_FLOAT32] = {"float32", 4}, [LN_INT32] = {"int32", 4},
    [LN_UINT8] = {"uint8", 1},     [LN_FLOAT16] = {"float16", 2},
    [LN_BFLOAT16] = {"bfloat16", 2},
};

size_t ln_dtype_size(ln_dtype dtype)
{
    return (unsigned)dtype < LN_DTYPE_COUNT ? dtype_table[dtype].size : 0;
}

const char *ln_dtype_name(ln_dtype dtype)
{
    return (unsigned)dtype < LN_DTYPE_COUNT ? dtype_table[dtype].name : "?";
}

int ln_dtype_from_name(const char *name, ln_dtype *out)
{
    for (int i = 0; i < LN_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (ln_dtype)i;
            return 0;
        }
    }
    return -1;
}

int ln_dtype_is_float(ln_dtype dtype)
{
    return dtype == LN_FLOAT32 || dtype == LN_FLOAT16 || dtype == LN_BFLOAT16;
}

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t ln_float_to_half(float f)
{
    uint32_t x = float_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t mag = x & 0x7fffffffu;
    if (mag >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (mag > 0x7f800000u ? 0x200u : 0));
    if (mag >= 0x477ff000u) /* rounds to >= 65520: overflow */
        return (uint16_t)(sign | 0x7c00u);
    if (mag < 0x38800000u) { /* result is subnormal or zero */
        float a = bits_float(mag);
        /* scale so that the subnormal lsb (2^-24) becomes 1, then round-even */
        uint32_t q = (uint32_t)nearbyintf(a * 16777216.0f);
        return (uint16_t)(sign | q);
    }
    uint32_t mant_odd = (mag >> 13) & 1u;
    mag += 0xc8000fffu + mant_odd; /* rebias exponent (-112<<23) and round */
    return (uint16_t)(sign | (mag >> 13));
}

float ln_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1f)
        return bits_float(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        float v = (float)mant * (1.0f / 16777216.0f); /* 2^-24 */
        return sign ? -v : v;
    }
    return bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
}

uint16_t ln_float_to_bfloat16(float f)
{
    uint32_t x = float_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* keep NaN a quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float ln_bfloat16_to_float(uint16_t b)
{
    return bits_float((uint32_t)b << 16);
}

double ln_load_as_double(const void *data, ln_dtype dtype, int64_t i)
{
    switch (dtype) {
    case LN_FLOAT32: return ((const float *)data)[i];
    case LN_INT32: return ((const int32_t *)data)[i];
    case LN_UINT8: return ((const uint8_t *)data)[i];
    case LN_FLOAT16: return ln_half_to_float(((const uint16_t *)data)[i]);
    case LN_BFLOAT16: return ln_bfloat16_to_float(((const uint16_t *)data)[i]);
    default: return 0;
    }
}

/* Integer stores saturate (and NaN becomes 0) so no conversion is undefined. */
static double clamp_to(double v, double lo, double hi)
{
    if (v != v)
        return 0;
    return v < lo ? lo : v > hi ? hi : v;
}

void ln_store_from_double(void *data, ln_dtype dtype, int64_t i, double v)
{
    switch (dtype) {
    case LN_FLOAT32: ((float *)data)[i] = (float)v; break;
    case LN_INT32:
        ((int32_t *)data)[i] = (int32_t)clamp_to(trunc(v), -2147483648.0, 2147483647.0);
        break;
    case LN_UINT8: ((uint8_t *)data)[i] = (uint8_t)clamp_to(trunc(v), 0, 255); break;
    case LN_FLOAT16: ((uint16_t *)data)[i] = ln_float_to_half((float)v); break;
    case LN_BFLOAT16: ((uint16_t *)data)[i] = ln_float_to_bfloat16((float)v); break;
    default: break;
    }
}
