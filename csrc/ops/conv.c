/* Convolution and the fused conv2d + ReLU + 2x2 max-pool block: shape rules,
 * then dispatch (see backend.h). */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- convolution ----------------------------------------------------------------- */

int ln_nn_conv2d_check_params(int kernel_h, int kernel_w, const ln_conv2d_params *p)
{
    return ln_op_check_window(kernel_h, kernel_w, p->stride_h, p->stride_w, p->pad_h, p->pad_w);
}

int ln_nn_conv2d_shape(const ln_tensor *x, const ln_tensor *w, const ln_conv2d_params *p,
                       ln_conv2d_shape *s)
{
    char sx[256], sw[256];
    LN_TRY(ln_op_check_input("the input", x));
    LN_TRY(ln_op_check_input("the weight", w));
    LN_TRY(ln_check_same_device("the input and the weight", x, w));
    if (w->ndim != 4 || w->shape[0] < 1 || w->shape[1] < 1 || w->shape[2] < 1
        || w->shape[3] < 1)
        return ln_error(LN_EINVAL, "the weight must be [out_channels, in_channels, kh, "
                        "kw] with sizes of at least 1, got %s",
                        ln_tensor_shape_string(w, sw, sizeof sw));
    if (x->ndim != 4 || x->shape[1] != w->shape[1])
        return ln_error(LN_EINVAL, "expected input [N, %lld, H, W], got %s",
                        (long long)w->shape[1], ln_tensor_shape_string(x, sx, sizeof sx));
    LN_TRY(ln_op_check_fits_int("the input", x));
    LN_TRY(ln_op_check_fits_int("the weight", w));
    LN_TRY(ln_nn_conv2d_check_params((int)w->shape[2], (int)w->shape[3], p));
    LN_TRY(ln_op_window_output(x, w->shape[2], w->shape[3], p->stride_h, p->stride_w,
                               p->pad_h, p->pad_w, &s->p, &s->q));
    s->n = (int)x->shape[0];
    s->c = (int)x->shape[1];
    s->h = (int)x->shape[2];
    s->w = (int)x->shape[3];
    s->k = (int)w->shape[0];
    s->r = (int)w->shape[2];
    s->s = (int)w->shape[3];
    s->stride_h = p->stride_h;
    s->stride_w = p->stride_w;
    s->pad_h = p->pad_h;
    s->pad_w = p->pad_w;
    return LN_OK;
}

/* The tensors of a convolution forward (the plain one, or the fused block,
 * whose winners may be NULL in evaluate mode): the shape rule has checked x
 * and w. */
typedef struct forward_call {
    const ln_conv2d_shape *s;
    int fused;
} forward_call;

static int conv_forward_kernel(ln_device *dev, void *arg, int64_t n, const void *const *in,
                               void *const *out)
{
    const forward_call *c = arg;
    (void)n;
    if (c->fused)
        return LN_CALL(dev, conv2d_relu_maxpool2x2_forward, c->s, in[0], in[1], in[2], out[0],
                       out[1]);
    return LN_CALL(dev, conv2d_forward, c->s, in[0], in[1], in[2], out[0]);
}

static int run_conv_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                            ln_conv2d_shape *s, const int64_t yshape[4], ln_tensor *y,
                            ln_tensor *winner, int fused)
{
    forward_call c = {s, fused};
    int64_t k = s->k;
    ln_op op = {.in = {{"the input", x}, {"the weight", w}, {"the bias", bias, 1, &k}},
                .out = {{"the output", y, 4, yshape},
                        {"the pooling winners", winner, 4, yshape, LN_UINT8}},
                .n = yshape[0] * yshape[1] * yshape[2] * yshape[3]};
    return ln_op_run(&op, conv_forward_kernel, &c);
}

int ln_nn_conv2d_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         const ln_conv2d_params *p, ln_tensor *y)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, w, p, &s));
    int64_t yshape[4] = {s.n, s.k, s.p, s.q};
    return run_conv_forward(x, w, bias, &s, yshape, y, NULL, 0);
}

static int conv_backward_data_kernel(ln_device *dev, void *arg, int64_t n,
                                     const void *const *in, void *const *out)
{
    (void)n;
    return LN_CALL(dev, conv2d_backward_data, arg, in[0], in[1], out[0]);
}

int ln_nn_conv2d_backward_data(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                               const ln_conv2d_params *p, ln_tensor *dx)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, w, p, &s));
    int64_t yshape[4] = {s.n, s.k, s.p, s.q};
    /* x gives only the shape and the device: dx may even be x */
    ln_op op = {.in = {{"the output gradient", dy, 4, yshape}, {"the weight", w}},
                .out = {{"the input gradient", dx, 4, x->shape}},
                .n = ln_tensor_numel(x)};
    return ln_op_run(&op, conv_backward_data_kernel, &s);
}

/* Gradients of parameters over an empty batch are zero (or unchanged). */
typedef struct filter_call {
    const ln_conv2d_shape *s;
    int accumulate;
} filter_call;

static int conv_backward_filter_kernel(ln_device *dev, void *arg, int64_t n,
                                       const void *const *in, void *const *out)
{
    const filter_call *c = arg;
    (void)n;
    return LN_CALL(dev, conv2d_backward_filter, c->s, in[0], in[1], out[0], out[1],
                   c->accumulate);
}

int ln_nn_conv2d_backward_filter(const ln_tensor *x, const ln_tensor *dy,
                                 const ln_conv2d_params *p, ln_tensor *dw, ln_tensor *db,
                                 int accumulate)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, dw, p, &s));
    int64_t yshape[4] = {s.n, s.k, s.p, s.q}, k = s.k;
    filter_call c = {&s, accumulate};
    ln_op op = {.in = {{"the input", x}, {"the output gradient", dy, 4, yshape}},
                .out = {{"the weight gradient", dw}, {"the bias gradient", db, 1, &k}},
                .n = s.n};
    LN_TRY(ln_op_run(&op, conv_backward_filter_kernel, &c));
    return s.n == 0 ? ln_op_zero_unless_accumulating(dw, db, accumulate) : LN_OK;
}

/* --- the fused block: conv2d, ReLU, 2x2 max pooling -------------------------------- */

int ln_nn_conv_block_supported(const ln_device *dev)
{
    return dev->backend->conv2d_relu_maxpool2x2_forward != NULL
           && dev->backend->conv2d_relu_maxpool2x2_backward != NULL;
}

int ln_nn_conv_block_shape(const ln_tensor *x, const ln_tensor *w, const ln_conv2d_params *p,
                           ln_conv2d_shape *s, int64_t pooled_shape[4])
{
    LN_TRY(ln_nn_conv2d_shape(x, w, p, s));
    if (s->p < 2 || s->q < 2)
        return ln_error(LN_EINVAL, "the convolution's output [%d, %d, %d, %d] is smaller than "
                        "the 2x2 pooling window", s->n, s->k, s->p, s->q);
    pooled_shape[0] = s->n;
    pooled_shape[1] = s->k;
    pooled_shape[2] = s->p / 2;
    pooled_shape[3] = s->q / 2;
    return LN_OK;
}

int ln_nn_conv_block_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                             const ln_conv2d_params *p, ln_tensor *y, ln_tensor *winner)
{
    ln_conv2d_shape s;
    int64_t yshape[4];
    LN_TRY(ln_nn_conv_block_shape(x, w, p, &s, yshape));
    return run_conv_forward(x, w, bias, &s, yshape, y, winner, 1);
}

static int conv_block_backward_kernel(ln_device *dev, void *arg, int64_t n,
                                      const void *const *in, void *const *out)
{
    const filter_call *c = arg;
    (void)n;
    return LN_CALL(dev, conv2d_relu_maxpool2x2_backward, c->s, in[0], in[1], in[2], in[3],
                   out[0], out[1], out[2], c->accumulate);
}

int ln_nn_conv_block_backward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                              const ln_tensor *winner, const ln_conv2d_params *p, ln_tensor *dx,
                              ln_tensor *dw, ln_tensor *db, int accumulate)
{
    ln_conv2d_shape s;
    int64_t yshape[4], k;
    LN_TRY(ln_nn_conv_block_shape(x, w, p, &s, yshape));
    k = s.k;
    filter_call c = {&s, accumulate};
    ln_op op = {.in = {{"the input", x}, {"the weight", w},
                       {"the output gradient", dy, 4, yshape},
                       {"the pooling winners", winner, 4, yshape, LN_UINT8}},
                .out = {{"the input gradient", dx, 4, x->shape},
                        {"the weight gradient", dw, 4, w->shape},
                        {"the bias gradient", db, 1, &k}},
                .n = s.n};
    LN_TRY(ln_op_run(&op, conv_block_backward_kernel, &c));
    return s.n == 0 ? ln_op_zero_unless_accumulating(dw, db, accumulate) : LN_OK;
}
