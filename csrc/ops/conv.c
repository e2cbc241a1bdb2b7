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
    if (p->stride_h < 1 || p->stride_w < 1)
        return ln_error(LN_EINVAL, "stride must be at least 1, got {%d, %d}",
                        p->stride_h, p->stride_w);
    if (p->pad_h < 0 || p->pad_w < 0)
        return ln_error(LN_EINVAL, "padding must not be negative, got {%d, %d}",
                        p->pad_h, p->pad_w);
    LN_TRY(ln_op_check_fits_int("the input", x));
    LN_TRY(ln_op_check_fits_int("the weight", w));
    if (p->pad_h > LN_OP_MAX_DIM || p->pad_w > LN_OP_MAX_DIM)
        return ln_error(LN_EINVAL, "padding {%d, %d} is too large", p->pad_h, p->pad_w);
    int64_t hp = x->shape[2] + 2 * (int64_t)p->pad_h, wp = x->shape[3] + 2 * (int64_t)p->pad_w;
    if (hp < w->shape[2] || wp < w->shape[3])
        return ln_error(LN_EINVAL, "the kernel %lldx%lld is larger than the input %s "
                        "padded by {%d, %d} (%lldx%lld)", (long long)w->shape[2],
                        (long long)w->shape[3], ln_tensor_shape_string(x, sx, sizeof sx),
                        p->pad_h, p->pad_w, (long long)hp, (long long)wp);
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
    s->p = (int)((hp - s->r) / p->stride_h + 1);
    s->q = (int)((wp - s->s) / p->stride_w + 1);
    return LN_OK;
}

static int check_conv_bias(const ln_tensor *bias, const ln_tensor *x, int64_t k)
{
    if (!bias)
        return LN_OK;
    return ln_op_check_input_as("the bias", bias, x, 1, &k);
}

/* The checks every convolution forward makes of its output. */
static int check_conv_output(const ln_tensor *y, const ln_tensor *x, const ln_tensor *w,
                             const ln_tensor *bias, const int64_t yshape[4])
{
    LN_TRY(ln_op_check_output("the output", y, x, 4, yshape));
    LN_TRY(ln_op_check_distinct("the output", y, "the input", x));
    LN_TRY(ln_op_check_distinct("the output", y, "the weight", w));
    return ln_op_check_distinct("the output", y, "the bias", bias);
}

/* Runs a convolution forward on contiguous inputs: the plain one, or the
 * fused block when `winner` is given. */
static int run_conv_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                            const ln_conv2d_shape *s, ln_tensor *y, ln_tensor *winner)
{
    ln_op_contiguous_inputs set = {0};
    const void *xd, *wd, *bd;
    ln_device *dev = ln_tensor_device(x);
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, bias, &bd);
    if (st == LN_OK)
        st = winner ? LN_CALL(dev, conv2d_relu_maxpool2x2_forward, s, xd, wd, bd,
                              ln_tensor_data(y), ln_tensor_data(winner))
                    : LN_CALL(dev, conv2d_forward, s, xd, wd, bd, ln_tensor_data(y));
    ln_op_release_inputs(&set);
    return st;
}

int ln_nn_conv2d_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         const ln_conv2d_params *p, ln_tensor *y)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, w, p, &s));
    LN_TRY(check_conv_bias(bias, x, s.k));
    int64_t yshape[4] = {s.n, s.k, s.p, s.q};
    LN_TRY(check_conv_output(y, x, w, bias, yshape));
    if (ln_tensor_numel(y) == 0)
        return LN_OK;
    return run_conv_forward(x, w, bias, &s, y, NULL);
}

static int check_conv_grad_output(const ln_tensor *dy, const ln_tensor *x,
                                  const ln_conv2d_shape *s)
{
    int64_t shape[4] = {s->n, s->k, s->p, s->q};
    return ln_op_check_input_as("the output gradient", dy, x, 4, shape);
}

int ln_nn_conv2d_backward_data(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                               const ln_conv2d_params *p, ln_tensor *dx)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, w, p, &s));
    LN_TRY(check_conv_grad_output(dy, x, &s));
    LN_TRY(ln_op_check_output("the input gradient", dx, x, 4, x->shape));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(ln_op_check_distinct("the input gradient", dx, "the weight", w));
    if (ln_tensor_numel(dx) == 0)
        return LN_OK;
    ln_op_contiguous_inputs set = {0};
    const void *dyd, *wd;
    int st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_backward_data, &s, dyd, wd,
                     ln_tensor_data(dx));
    ln_op_release_inputs(&set);
    return st;
}

/* Gradients of parameters over an empty batch are zero (or unchanged). */

int ln_nn_conv2d_backward_filter(const ln_tensor *x, const ln_tensor *dy,
                                 const ln_conv2d_params *p, ln_tensor *dw, ln_tensor *db,
                                 int accumulate)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, dw, p, &s));
    LN_TRY(check_conv_grad_output(dy, x, &s));
    LN_TRY(ln_op_check_output("the weight gradient", dw, x, 4, dw->shape));
    LN_TRY(ln_op_check_distinct("the weight gradient", dw, "the input", x));
    LN_TRY(ln_op_check_distinct("the weight gradient", dw, "the output gradient", dy));
    if (db) {
        int64_t k = s.k;
        LN_TRY(ln_op_check_output("the bias gradient", db, x, 1, &k));
        LN_TRY(ln_op_check_distinct("the bias gradient", db, "the output gradient", dy));
        LN_TRY(ln_op_check_distinct("the bias gradient", db, "the weight gradient", dw));
    }
    if (s.n == 0)
        return ln_op_zero_unless_accumulating(dw, db, accumulate);
    ln_op_contiguous_inputs set = {0};
    const void *xd, *dyd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_backward_filter, &s, xd, dyd,
                     ln_tensor_data(dw), db ? ln_tensor_data(db) : NULL, accumulate);
    ln_op_release_inputs(&set);
    return st;
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

/* The winners: uint8, contiguous, on the input's device, the pooled shape. */
static int check_winner(const ln_tensor *winner, const ln_tensor *on, const int64_t shape[4])
{
    if (!winner->storage)
        return ln_error(LN_EFREED, "the pooling winners were freed");
    LN_TRY(ln_check_dtype("the pooling winners", winner, LN_UINT8));
    LN_TRY(ln_check_same_device("the pooling winners and the input", winner, on));
    LN_TRY(ln_op_check_shape("the pooling winners", winner, 4, shape));
    if (!ln_tensor_is_contiguous(winner))
        return ln_error(LN_EINVAL, "the pooling winners must be contiguous");
    return LN_OK;
}

int ln_nn_conv_block_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                             const ln_conv2d_params *p, ln_tensor *y, ln_tensor *winner)
{
    ln_conv2d_shape s;
    int64_t yshape[4];
    LN_TRY(ln_nn_conv_block_shape(x, w, p, &s, yshape));
    LN_TRY(check_conv_bias(bias, x, s.k));
    LN_TRY(check_conv_output(y, x, w, bias, yshape));
    LN_TRY(check_winner(winner, x, yshape));
    LN_TRY(ln_op_check_distinct("the pooling winners", winner, "the output", y));
    LN_TRY(ln_op_check_distinct("the pooling winners", winner, "the input", x));
    if (ln_tensor_numel(y) == 0)
        return LN_OK;
    return run_conv_forward(x, w, bias, &s, y, winner);
}

int ln_nn_conv_block_backward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                              const ln_tensor *winner, const ln_conv2d_params *p, ln_tensor *dx,
                              ln_tensor *dw, ln_tensor *db, int accumulate)
{
    ln_conv2d_shape s;
    int64_t yshape[4];
    LN_TRY(ln_nn_conv_block_shape(x, w, p, &s, yshape));
    LN_TRY(ln_op_check_input_as("the output gradient", dy, x, 4, yshape));
    LN_TRY(check_winner(winner, x, yshape));
    const ln_tensor *outputs[3] = {dx, dw, db};
    const char *names[3] = {"the input gradient", "the weight gradient", "the bias gradient"};
    int64_t k = s.k;
    if (dx)
        LN_TRY(ln_op_check_output(names[0], dx, x, 4, x->shape));
    LN_TRY(ln_op_check_output(names[1], dw, x, 4, w->shape));
    if (db)
        LN_TRY(ln_op_check_output(names[2], db, x, 1, &k));
    const ln_tensor *inputs[5] = {x, w, dy, winner, NULL};
    const char *input_names[5] = {"the input", "the weight", "the output gradient",
                                  "the pooling winners", NULL};
    for (int o = 0; o < 3; o++) {
        if (!outputs[o])
            continue;
        for (int i = 0; i < 4; i++)
            LN_TRY(ln_op_check_distinct(names[o], outputs[o], input_names[i], inputs[i]));
        for (int other = 0; other < o; other++)
            LN_TRY(ln_op_check_distinct(names[o], outputs[o], names[other], outputs[other]));
    }
    if (s.n == 0)
        return ln_op_zero_unless_accumulating(dw, db, accumulate);
    ln_op_contiguous_inputs set = {0};
    const void *xd, *wd, *dyd;
    int st = ln_op_contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_relu_maxpool2x2_backward, &s, xd, wd, dyd,
                     ln_tensor_data(winner), dx ? ln_tensor_data(dx) : NULL,
                     ln_tensor_data(dw), db ? ln_tensor_data(db) : NULL, accumulate);
    ln_op_release_inputs(&set);
    return st;
}
