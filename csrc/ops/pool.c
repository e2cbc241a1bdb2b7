/* 2-D pooling: shape rule, then dispatch. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- pooling ----------------------------------------------------------------------- */

int ln_nn_pool2d_check_params(const ln_pool2d_params *p)
{
    LN_TRY(ln_op_check_window(p->kernel_h, p->kernel_w, p->stride_h, p->stride_w, p->pad_h,
                              p->pad_w));
    /* as in PyTorch: every window then holds at least one real element */
    if (p->pad_h > p->kernel_h / 2 || p->pad_w > p->kernel_w / 2)
        return ln_error(LN_EINVAL, "padding {%d, %d} must be at most half the kernel "
                        "size {%d, %d}", p->pad_h, p->pad_w, p->kernel_h, p->kernel_w);
    return LN_OK;
}

int ln_nn_pool2d_shape(const ln_tensor *x, const ln_pool2d_params *p, ln_pool2d_shape *s)
{
    char sx[256];
    LN_TRY(ln_op_check_input("the input", x));
    if (x->ndim != 4)
        return ln_error(LN_EINVAL, "expected input [N, C, H, W], got %s",
                        ln_tensor_shape_string(x, sx, sizeof sx));
    LN_TRY(ln_nn_pool2d_check_params(p));
    LN_TRY(ln_op_check_fits_int("the input", x));
    LN_TRY(ln_op_window_output(x, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                               p->pad_h, p->pad_w, &s->p, &s->q));
    s->n = (int)x->shape[0];
    s->c = (int)x->shape[1];
    s->h = (int)x->shape[2];
    s->w = (int)x->shape[3];
    s->kernel_h = p->kernel_h;
    s->kernel_w = p->kernel_w;
    s->stride_h = p->stride_h;
    s->stride_w = p->stride_w;
    s->pad_h = p->pad_h;
    s->pad_w = p->pad_w;
    return LN_OK;
}

typedef struct pool_call {
    ln_pool_mode mode;
    const ln_pool2d_shape *s;
} pool_call;

static int pool_forward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                               void *const *out)
{
    const pool_call *c = arg;
    (void)n;
    return LN_CALL(dev, pool2d_forward, c->mode, c->s, in[0], out[0]);
}

int ln_nn_pool2d_forward(ln_pool_mode mode, const ln_tensor *x, const ln_pool2d_params *p,
                         ln_tensor *y)
{
    ln_pool2d_shape s;
    LN_TRY(ln_nn_pool2d_shape(x, p, &s));
    int64_t yshape[4] = {s.n, s.c, s.p, s.q};
    pool_call c = {mode, &s};
    ln_op op = {.in = {{"the input", x}},
                .out = {{"the output", y, 4, yshape}},
                .n = yshape[0] * yshape[1] * yshape[2] * yshape[3]};
    return ln_op_run(&op, pool_forward_kernel, &c);
}

static int pool_backward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                                void *const *out)
{
    const pool_call *c = arg;
    (void)n;
    return LN_CALL(dev, pool2d_backward, c->mode, c->s, in[0], in[1], in[2], out[0]);
}

int ln_nn_pool2d_backward(ln_pool_mode mode, const ln_tensor *x, const ln_tensor *y,
                          const ln_tensor *dy, const ln_pool2d_params *p, ln_tensor *dx)
{
    ln_pool2d_shape s;
    LN_TRY(ln_nn_pool2d_shape(x, p, &s));
    int64_t yshape[4] = {s.n, s.c, s.p, s.q};
    pool_call c = {mode, &s};
    ln_op op = {.in = {{"the input", x}, {"the output", y, 4, yshape},
                       {"the output gradient", dy, 4, yshape}},
                .out = {{"the input gradient", dx, 4, x->shape}},
                .n = ln_tensor_numel(x)};
    return ln_op_run(&op, pool_backward_kernel, &c);
}
