/* The per-element math of the op families, written once and compiled by both
 * the C compiler (reference and CPU backends) and nvcc (CUDA kernels), so every
 * backend computes the same formula. Adding an elementwise op is an enum entry
 * in backend.h plus its case here.
 *
 * Everything is `static inline`; under nvcc also `__host__ __device__`. */
#ifndef LUNET_FORMULAS_H
#define LUNET_FORMULAS_H

#include <math.h>
#include <stdint.h>

#include "backend.h"

#ifdef __CUDACC__
#define LN_FORMULA static inline __host__ __device__
#else
#define LN_FORMULA static inline
#endif

/* --- binary: a OP b in float32 (one IEEE operation, as PyTorch) ------------- */

LN_FORMULA float ln_f_binary(ln_binary_op op, float a, float b)
{
    switch (op) {
    case LN_ADD: return a + b;
    case LN_SUB: return a - b;
    case LN_MUL: return a * b;
    case LN_DIV: return a / b;
    case LN_EQ: return a == b ? 1.0f : 0.0f;
    case LN_NE: return a != b ? 1.0f : 0.0f;
    case LN_LT: return a < b ? 1.0f : 0.0f;
    case LN_LE: return a <= b ? 1.0f : 0.0f;
    case LN_GT: return a > b ? 1.0f : 0.0f;
    case LN_GE: return a >= b ? 1.0f : 0.0f;
    }
    return 0;
}

/* Integer arithmetic wraps around, as in PyTorch, done in unsigned arithmetic
 * because signed overflow is undefined in C. Division is refused by the core. */
LN_FORMULA int64_t ln_i_binary(ln_binary_op op, int64_t a, int64_t b)
{
    switch (op) {
    case LN_ADD: return (int64_t)((uint64_t)a + (uint64_t)b);
    case LN_SUB: return (int64_t)((uint64_t)a - (uint64_t)b);
    case LN_MUL: return (int64_t)((uint64_t)a * (uint64_t)b);
    case LN_DIV: return b ? a / b : 0;
    case LN_EQ: return a == b;
    case LN_NE: return a != b;
    case LN_LT: return a < b;
    case LN_LE: return a <= b;
    case LN_GT: return a > b;
    case LN_GE: return a >= b;
    }
    return 0;
}

/* --- unary: y = op(x), float32 ------------------------------------------------ */

#define LN_SQRT_2_OVER_PI 0.7978845608028654f /* sqrt(2 / pi) */
#define LN_SQRT1_2 0.7071067811865476f        /* 1 / sqrt(2) */
#define LN_INV_SQRT_2PI 0.3989422804014327f   /* 1 / sqrt(2 pi) */
#define LN_GELU_KAPPA 0.044715f

LN_FORMULA float ln_f_sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* The op's name ("exp", "leaky_relu", ...), for messages and lookups. */
static inline const char *ln_unary_name(ln_unary_op op)
{
#define LN_UNARY_NAME_ENTRY(name, str) str,
    static const char *const names[] = {LN_UNARY_OPS(LN_UNARY_NAME_ENTRY)};
#undef LN_UNARY_NAME_ENTRY
    return op >= 0 && op < LN_UNARY_COUNT ? names[op] : "unary";
}

/* NaN passes through every activation, as in PyTorch. gelu is exact (erf);
 * gelu_tanh is PyTorch's approximate="tanh". */
LN_FORMULA float ln_f_unary(ln_unary_op op, const ln_unary_params *p, float x)
{
    switch (op) {
    case LN_UNARY_EXP: return expf(x);
    case LN_UNARY_LOG: return logf(x);
    case LN_UNARY_SQRT: return sqrtf(x);
    case LN_UNARY_ABS: return fabsf(x);
    case LN_UNARY_TANH: return tanhf(x);
    case LN_UNARY_SIGMOID: return ln_f_sigmoid(x);
    case LN_UNARY_RELU: return x < 0.0f ? 0.0f : x;
    case LN_UNARY_LEAKY_RELU: return x > 0.0f ? x : x * p->alpha;
    case LN_UNARY_GELU: return 0.5f * x * (1.0f + erff(x * LN_SQRT1_2));
    case LN_UNARY_GELU_TANH: {
        float inner = LN_SQRT_2_OVER_PI * (x + LN_GELU_KAPPA * x * x * x);
        return 0.5f * x * (1.0f + tanhf(inner));
    }
    case LN_UNARY_POW: return powf(x, p->alpha);
    case LN_UNARY_CLAMP: {
        /* min(max(x, lo), hi) as PyTorch orders it; NaN stays NaN */
        float y = x < p->lo ? p->lo : x;
        return y > p->hi ? p->hi : y;
    }
    case LN_UNARY_COUNT: break;
    }
    return x;
}

/* dx = dy * op'(x) for the activations; x the forward input, y its output. */
LN_FORMULA float ln_f_unary_backward(ln_unary_op op, const ln_unary_params *p, float x,
                                     float y, float dy)
{
    switch (op) {
    case LN_UNARY_SIGMOID: return dy * y * (1.0f - y);
    case LN_UNARY_TANH: return dy * (1.0f - y * y);
    case LN_UNARY_RELU: return y > 0.0f ? dy : 0.0f;
    case LN_UNARY_LEAKY_RELU: return x > 0.0f ? dy : dy * p->alpha;
    case LN_UNARY_GELU: {
        float cdf = 0.5f * (1.0f + erff(x * LN_SQRT1_2));
        float pdf = LN_INV_SQRT_2PI * expf(-0.5f * x * x);
        return dy * (cdf + x * pdf);
    }
    case LN_UNARY_GELU_TANH: {
        /* PyTorch's GeluBackward with approximate="tanh", term for term */
        float x_sq = x * x;
        float inner = LN_SQRT_2_OVER_PI * (x + LN_GELU_KAPPA * x_sq * x);
        float t = tanhf(inner);
        float left = 0.5f * x, right = 1.0f + t;
        float right_derivative = left * (1.0f - t * t) * LN_SQRT_2_OVER_PI
                                 * (1.0f + 3.0f * LN_GELU_KAPPA * x_sq);
        return dy * (0.5f * right + right_derivative);
    }
    default: break;
    }
    return dy;
}

/* Whether ln_f_unary_backward has a formula for op (the core refuses the rest). */
LN_FORMULA int ln_unary_has_backward(ln_unary_op op)
{
    return op == LN_UNARY_SIGMOID || op == LN_UNARY_TANH || op == LN_UNARY_RELU
           || op == LN_UNARY_LEAKY_RELU || op == LN_UNARY_GELU || op == LN_UNARY_GELU_TANH;
}

/* --- rows along a dimension: x[k * stride], k in 0..n-1 ------------------------
 * Accumulated in double, so the order of a backend's loop cannot change the
 * float32 result. Every backend calls these per row. */

LN_FORMULA void ln_f_softmax_row(int take_log, int64_t n, int64_t stride, const float *x,
                                 float *y)
{
    float max = x[0];
    for (int64_t k = 1; k < n; k++) {
        float v = x[k * stride];
        if (v > max || v != v)
            max = v;
    }
    double sum = 0;
    for (int64_t k = 0; k < n; k++)
        sum += exp((double)x[k * stride] - (double)max);
    if (take_log) {
        double lse = (double)max + log(sum);
        for (int64_t k = 0; k < n; k++)
            y[k * stride] = (float)((double)x[k * stride] - lse);
    } else {
        for (int64_t k = 0; k < n; k++)
            y[k * stride] = (float)(exp((double)x[k * stride] - (double)max) / sum);
    }
}

LN_FORMULA void ln_f_softmax_backward_row(int take_log, int64_t n, int64_t stride, const float *y,
                                          const float *dy, float *dx)
{
    double dot = 0;
    for (int64_t k = 0; k < n; k++)
        dot += take_log ? (double)dy[k * stride] : (double)dy[k * stride] * (double)y[k * stride];
    for (int64_t k = 0; k < n; k++) {
        double yk = y[k * stride], g = dy[k * stride];
        dx[k * stride] = (float)(take_log ? g - exp(yk) * dot : yk * (g - dot));
    }
}

/* The rules of a reduction of one row of n elements, written once for every
 * dtype: LOAD(k) reads element k, and the result lands in `value` (a double)
 * and `best` (the 0-based position of the extreme). Sums and means add in
 * double; max and min keep the first extreme, held in type T (the row's own
 * precision), and a NaN wins and ends the search, as in PyTorch. */
#define LN_REDUCE_ROW(op, n, T, LOAD, value, best)                                  \
    do {                                                                            \
        (best) = 0;                                                                 \
        if ((op) == LN_SUM || (op) == LN_MEAN) {                                    \
            double acc_ = 0;                                                        \
            for (int64_t k_ = 0; k_ < (n); k_++)                                    \
                acc_ += (double)(LOAD(k_));                                         \
            (value) = (op) == LN_MEAN ? acc_ / (double)(n) : acc_;                  \
        } else {                                                                    \
            T ext_ = (T)(LOAD(0));                                                  \
            for (int64_t k_ = 1; k_ < (n) && ext_ == ext_; k_++) {                  \
                T v_ = (T)(LOAD(k_));                                               \
                if (v_ != v_ || ((op) == LN_MAX ? v_ > ext_ : v_ < ext_)) {         \
                    (best) = k_;                                                    \
                    ext_ = v_;                                                      \
                }                                                                   \
            }                                                                       \
            (value) = (double)ext_;                                                 \
        }                                                                           \
    } while (0)

/* values = reduction of a float32 row; *position = 1-based first extreme (max/min). */
LN_FORMULA void ln_f_reduce_row(ln_reduce_op op, int64_t n, int64_t stride, const float *x,
                                float *value, int32_t *position)
{
    double v;
    int64_t best;
#define LN_LOAD_F32_(k) x[(k) * stride]
    LN_REDUCE_ROW(op, n, float, LN_LOAD_F32_, v, best);
#undef LN_LOAD_F32_
    *value = (float)v;
    if (position && op != LN_SUM && op != LN_MEAN)
        *position = (int32_t)(best + 1);
}

/* --- log(sum(exp(row))) in double, shifted by the row's maximum so exp cannot
 * overflow (the cross-entropy loss: reference and CUDA) --------------------- */

LN_FORMULA double ln_f_log_sum_exp(const float *row, int64_t classes)
{
    double max = row[0], sum = 0;
    for (int64_t j = 1; j < classes; j++)
        if (row[j] > max)
            max = row[j];
    for (int64_t j = 0; j < classes; j++)
        sum += exp(row[j] - max);
    return max + log(sum);
}

/* --- Adam and AdamW: one element's update ------------------------------------ */

/* A step's constants: the bias corrections in double, as PyTorch computes them
 * in Python; AdamW's factor 1 - lr * weight_decay is a Python double that
 * mul_ rounds to float32. */
typedef struct ln_adam_coeffs {
    float beta1, beta2, one_minus_b1, one_minus_b2, eps, weight_decay;
    float step_size, bc2_sqrt, decay;
    int decoupled;
} ln_adam_coeffs;

LN_FORMULA ln_adam_coeffs ln_adam_coefficients(const ln_adam_params *p)
{
    double bc1 = 1.0 - pow((double)p->beta1, (double)p->step);
    double bc2 = 1.0 - pow((double)p->beta2, (double)p->step);
    ln_adam_coeffs c;
    c.beta1 = p->beta1;
    c.beta2 = p->beta2;
    c.one_minus_b1 = 1.0f - p->beta1;
    c.one_minus_b2 = 1.0f - p->beta2;
    c.eps = p->eps;
    c.weight_decay = p->weight_decay;
    c.step_size = (float)(p->lr / bc1);
    c.bc2_sqrt = (float)sqrt(bc2);
    c.decay = (float)(1.0 - (double)p->lr * (double)p->weight_decay);
    c.decoupled = p->decoupled_weight_decay;
    return c;
}

/* param, exp_avg and exp_avg_sq of one element updated from its gradient
 * (torch.optim.Adam / AdamW, float32). */
LN_FORMULA void ln_f_adam(const ln_adam_coeffs *c, float *param, float grad, float *exp_avg,
                          float *exp_avg_sq)
{
    float g = grad;
    if (c->decoupled)
        *param = *param * c->decay;
    else if (c->weight_decay != 0.0f)
        g = g + c->weight_decay * *param;
    float m = *exp_avg * c->beta1 + c->one_minus_b1 * g;
    float v = *exp_avg_sq * c->beta2 + c->one_minus_b2 * g * g;
    *exp_avg = m;
    *exp_avg_sq = v;
    float denom = sqrtf(v) / c->bc2_sqrt + c->eps;
    *param = *param + -c->step_size * m / denom;
}

#endif
