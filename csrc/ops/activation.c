/* Elementwise layers: ReLU and dropout. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- elementwise -------------------------------------------------------------------- */

static int relu_forward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                               void *const *out)
{
    (void)arg;
    return LN_CALL(dev, relu_forward, n, in[0], out[0]);
}

int ln_nn_relu_forward(const ln_tensor *x, ln_tensor *y)
{
    ln_op op = {.in = {{"the input", x, x->ndim, x->shape}},
                .out = {{"the output", y, x->ndim, x->shape}}, .in_place = {1},
                .n = ln_tensor_numel(x)};
    return ln_op_run(&op, relu_forward_kernel, NULL);
}

static int relu_backward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                                void *const *out)
{
    (void)arg;
    return LN_CALL(dev, relu_backward, n, in[0], in[1], out[0]);
}

int ln_nn_relu_backward(const ln_tensor *y, const ln_tensor *dy, ln_tensor *dx)
{
    ln_op op = {.in = {{"the output", y, y->ndim, y->shape},
                       {"the output gradient", dy, y->ndim, y->shape}},
                .out = {{"the input gradient", dx, y->ndim, y->shape}}, .in_place = {2},
                .n = ln_tensor_numel(y)};
    return ln_op_run(&op, relu_backward_kernel, NULL);
}

static int dropout_forward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                                  void *const *out)
{
    uint64_t seed = ln_random_get_seed(), offset = ln_random_reserve((uint64_t)n);
    return LN_CALL(dev, dropout_forward, n, *(const float *)arg, in[0], out[0], out[1], seed,
                   offset);
}

int ln_nn_dropout_forward(const ln_tensor *x, double p, ln_tensor *y, ln_tensor *mask)
{
    LN_TRY(ln_op_check_input("the input", x));
    if (!(p >= 0.0 && p <= 1.0))
        return ln_error(LN_EINVAL, "dropout probability must be in [0, 1], got %g", p);
    float pf = (float)p;
    ln_op op = {.in = {{"the input", x, x->ndim, x->shape}},
                .out = {{"the output", y, x->ndim, x->shape}, {"the mask", mask, x->ndim, x->shape}},
                .n = ln_tensor_numel(x)};
    return ln_op_run(&op, dropout_forward_kernel, &pf);
}

static int dropout_backward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                                   void *const *out)
{
    (void)arg;
    return LN_CALL(dev, binary, LN_MUL, LN_FLOAT32, n, in[0], in[1], out[0]);
}

int ln_nn_dropout_backward(const ln_tensor *dy, const ln_tensor *mask, ln_tensor *dx)
{
    ln_op op = {.in = {{"the output gradient", dy, dy->ndim, dy->shape},
                       {"the mask", mask, dy->ndim, dy->shape}},
                .out = {{"the input gradient", dx, dy->ndim, dy->shape}}, .in_place = {1},
                .n = ln_tensor_numel(dy)};
    return ln_op_run(&op, dropout_backward_kernel, NULL);
}
