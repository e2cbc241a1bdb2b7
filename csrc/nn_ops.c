#include "nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "random.h"
#include "status.h"
#include "tensor_ops.h"

/* --- argument checks ---------------------------------------------------------- */

/* Sizes handed to kernels as int stay well clear of INT32_MAX, so that sums
 * such as h + 2 * pad cannot overflow. */
#define LN_NN_MAX_DIM (INT32_MAX / 4)

static int check_input(const char *what, const ln_tensor *t)
{
    if (!t->storage)
        return ln_error(LN_EFREED, "%s was freed", what);
    if (t->dtype != LN_FLOAT32)
        return ln_error(LN_EINVAL, "%s must be float32, got %s; convert it with "
                        "t:to(\"float32\")", what, ln_dtype_name(t->dtype));
    return LN_OK;
}

static int check_shape(const char *what, const ln_tensor *t, int ndim, const int64_t *shape)
{
    char want[256], got[256];
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        ok = t->shape[i] == shape[i];
    if (!ok)
        return ln_error(LN_EINVAL, "%s must be %s, got %s", what,
                        ln_format_shape(want, sizeof want, ndim, shape),
                        ln_tensor_shape_string(t, got, sizeof got));
    return LN_OK;
}

/* An input of the given shape on `dev`. */
static int check_input_as(const char *what, const ln_tensor *t, const ln_tensor *on,
                          int ndim, const int64_t *shape)
{
    LN_TRY(check_input(what, t));
    if (ln_tensor_device(t) != ln_tensor_device(on)) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s and the input", what);
        return ln_check_same_device(buf, t, on);
    }
    return check_shape(what, t, ndim, shape);
}

/* A tensor the op writes: float32, contiguous, on the input's device, of the
 * exact shape. */
static int check_output(const char *what, const ln_tensor *t, const ln_tensor *on,
                        int ndim, const int64_t *shape)
{
    LN_TRY(check_input_as(what, t, on, ndim, shape));
    if (!ln_tensor_is_contiguous(t))
        return ln_error(LN_EINVAL, "%s must be contiguous (a tensor lunet allocated, "
                        "not a strided view)", what);
    return LN_OK;
}

/* Kernels read their inputs while writing their outputs: the two must not
 * overlap. */
static int check_distinct(const char *out_what, const ln_tensor *out, const char *in_what,
                          const ln_tensor *in)
{
    if (in && out->storage == in->storage)
        return ln_error(LN_EINVAL, "%s shares memory with %s; pass a separate tensor",
                        out_what, in_what);
    return LN_OK;
}

static int check_fits_int(const char *what, const ln_tensor *t)
{
    char s[256];
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > LN_NN_MAX_DIM)
            return ln_error(LN_EINVAL, "%s %s is too large (each size must be below %d)",
                            what, ln_tensor_shape_string(t, s, sizeof s), LN_NN_MAX_DIM);
    return LN_OK;
}

/* Contiguous versions of strided inputs, released together at the end of an
 * op. A contiguous input is only referenced, never copied. */
typedef struct contiguous_inputs {
    ln_tensor held[5];
    int count;
} contiguous_inputs;

static int contiguous(contiguous_inputs *set, const ln_tensor *in, const void **data)
{
    *data = NULL;
    if (!in)
        return LN_OK;
    if (set->count == (int)(sizeof set->held / sizeof set->held[0]))
        return ln_error(LN_EINVAL, "internal error: too many inputs for one op");
    ln_tensor *slot = &set->held[set->count];
    LN_TRY(ln_tensor_contiguous(slot, in));
    set->count++;
    *data = ln_tensor_data(slot);
    return LN_OK;
}

static void release_inputs(contiguous_inputs *set)
{
    for (int i = 0; i < set->count; i++)
        ln_tensor_release(&set->held[i]);
    set->count = 0;
}

/* --- convolution ----------------------------------------------------------------- */

int ln_nn_conv2d_shape(const ln_tensor *x, const ln_tensor *w, const ln_conv2d_params *p,
                       ln_conv2d_shape *s)
{
    char sx[256], sw[256];
    LN_TRY(check_input("the input", x));
    LN_TRY(check_input("the weight", w));
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
    LN_TRY(check_fits_int("the input", x));
    LN_TRY(check_fits_int("the weight", w));
    if (p->pad_h > LN_NN_MAX_DIM || p->pad_w > LN_NN_MAX_DIM)
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
    return check_input_as("the bias", bias, x, 1, &k);
}

/* The checks every convolution forward makes of its output. */
static int check_conv_output(const ln_tensor *y, const ln_tensor *x, const ln_tensor *w,
                             const ln_tensor *bias, const int64_t yshape[4])
{
    LN_TRY(check_output("the output", y, x, 4, yshape));
    LN_TRY(check_distinct("the output", y, "the input", x));
    LN_TRY(check_distinct("the output", y, "the weight", w));
    return check_distinct("the output", y, "the bias", bias);
}

/* Runs a convolution forward on contiguous inputs: the plain one, or the
 * fused block when `winner` is given. */
static int run_conv_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                            const ln_conv2d_shape *s, ln_tensor *y, ln_tensor *winner)
{
    contiguous_inputs set = {0};
    const void *xd, *wd, *bd;
    ln_device *dev = ln_tensor_device(x);
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = contiguous(&set, bias, &bd);
    if (st == LN_OK)
        st = winner ? LN_CALL(dev, conv2d_relu_maxpool2x2_forward, s, xd, wd, bd,
                              ln_tensor_data(y), ln_tensor_data(winner))
                    : LN_CALL(dev, conv2d_forward, s, xd, wd, bd, ln_tensor_data(y));
    release_inputs(&set);
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
    return check_input_as("the output gradient", dy, x, 4, shape);
}

int ln_nn_conv2d_backward_data(const ln_tensor *x, const ln_tensor *w, const ln_tensor *dy,
                               const ln_conv2d_params *p, ln_tensor *dx)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, w, p, &s));
    LN_TRY(check_conv_grad_output(dy, x, &s));
    LN_TRY(check_output("the input gradient", dx, x, 4, x->shape));
    LN_TRY(check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(check_distinct("the input gradient", dx, "the weight", w));
    if (ln_tensor_numel(dx) == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *dyd, *wd;
    int st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_backward_data, &s, dyd, wd,
                     ln_tensor_data(dx));
    release_inputs(&set);
    return st;
}

/* Gradients of parameters over an empty batch are zero (or unchanged). */
static int zero_unless_accumulating(ln_tensor *a, ln_tensor *b, int accumulate)
{
    if (accumulate)
        return LN_OK;
    LN_TRY(ln_tensor_fill(a, 0));
    return b ? ln_tensor_fill(b, 0) : LN_OK;
}

int ln_nn_conv2d_backward_filter(const ln_tensor *x, const ln_tensor *dy,
                                 const ln_conv2d_params *p, ln_tensor *dw, ln_tensor *db,
                                 int accumulate)
{
    ln_conv2d_shape s;
    LN_TRY(ln_nn_conv2d_shape(x, dw, p, &s));
    LN_TRY(check_conv_grad_output(dy, x, &s));
    LN_TRY(check_output("the weight gradient", dw, x, 4, dw->shape));
    LN_TRY(check_distinct("the weight gradient", dw, "the input", x));
    LN_TRY(check_distinct("the weight gradient", dw, "the output gradient", dy));
    if (db) {
        int64_t k = s.k;
        LN_TRY(check_output("the bias gradient", db, x, 1, &k));
        LN_TRY(check_distinct("the bias gradient", db, "the output gradient", dy));
        LN_TRY(check_distinct("the bias gradient", db, "the weight gradient", dw));
    }
    if (s.n == 0)
        return zero_unless_accumulating(dw, db, accumulate);
    contiguous_inputs set = {0};
    const void *xd, *dyd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_backward_filter, &s, xd, dyd,
                     ln_tensor_data(dw), db ? ln_tensor_data(db) : NULL, accumulate);
    release_inputs(&set);
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
    LN_TRY(check_shape("the pooling winners", winner, 4, shape));
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
    LN_TRY(check_distinct("the pooling winners", winner, "the output", y));
    LN_TRY(check_distinct("the pooling winners", winner, "the input", x));
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
    LN_TRY(check_input_as("the output gradient", dy, x, 4, yshape));
    LN_TRY(check_winner(winner, x, yshape));
    const ln_tensor *outputs[3] = {dx, dw, db};
    const char *names[3] = {"the input gradient", "the weight gradient", "the bias gradient"};
    int64_t k = s.k;
    if (dx)
        LN_TRY(check_output(names[0], dx, x, 4, x->shape));
    LN_TRY(check_output(names[1], dw, x, 4, w->shape));
    if (db)
        LN_TRY(check_output(names[2], db, x, 1, &k));
    const ln_tensor *inputs[5] = {x, w, dy, winner, NULL};
    const char *input_names[5] = {"the input", "the weight", "the output gradient",
                                  "the pooling winners", NULL};
    for (int o = 0; o < 3; o++) {
        if (!outputs[o])
            continue;
        for (int i = 0; i < 4; i++)
            LN_TRY(check_distinct(names[o], outputs[o], input_names[i], inputs[i]));
        for (int other = 0; other < o; other++)
            LN_TRY(check_distinct(names[o], outputs[o], names[other], outputs[other]));
    }
    if (s.n == 0)
        return zero_unless_accumulating(dw, db, accumulate);
    contiguous_inputs set = {0};
    const void *xd, *wd, *dyd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), conv2d_relu_maxpool2x2_backward, &s, xd, wd, dyd,
                     ln_tensor_data(winner), dx ? ln_tensor_data(dx) : NULL,
                     ln_tensor_data(dw), db ? ln_tensor_data(db) : NULL, accumulate);
    release_inputs(&set);
    return st;
}

/* --- fully connected ------------------------------------------------------------- */

/* x is the input (or the output gradient, named by `what`), w the weight
 * (or its gradient). */
static int check_linear_weight(const char *what, const ln_tensor *x, const char *w_what,
                               const ln_tensor *w)
{
    char sw[256];
    LN_TRY(check_input(what, x));
    LN_TRY(check_input(w_what, w));
    if (ln_tensor_device(x) != ln_tensor_device(w)) {
        char both[128];
        snprintf(both, sizeof both, "%s and %s", what, w_what);
        return ln_check_same_device(both, x, w);
    }
    if (w->ndim != 2)
        return ln_error(LN_EINVAL, "%s must be [out_features, in_features], got %s", w_what,
                        ln_tensor_shape_string(w, sw, sizeof sw));
    LN_TRY(check_fits_int(what, x));
    return check_fits_int(w_what, w);
}

int ln_nn_linear_check(const ln_tensor *x, const ln_tensor *w)
{
    char sx[256];
    LN_TRY(check_linear_weight("the input", x, "the weight", w));
    if (x->ndim != 2 || x->shape[1] != w->shape[1])
        return ln_error(LN_EINVAL, "expected input [N, %lld], got %s",
                        (long long)w->shape[1], ln_tensor_shape_string(x, sx, sizeof sx));
    return LN_OK;
}

int ln_nn_linear_check_grad(const ln_tensor *dy, const ln_tensor *w)
{
    char s[256];
    LN_TRY(check_linear_weight("the output gradient", dy, "the weight", w));
    if (dy->ndim != 2 || dy->shape[1] != w->shape[0])
        return ln_error(LN_EINVAL, "expected the output gradient [N, %lld], got %s",
                        (long long)w->shape[0], ln_tensor_shape_string(dy, s, sizeof s));
    return LN_OK;
}

int ln_nn_linear_forward(const ln_tensor *x, const ln_tensor *w, const ln_tensor *bias,
                         ln_tensor *y)
{
    LN_TRY(ln_nn_linear_check(x, w));
    int n = (int)x->shape[0], in = (int)w->shape[1], out = (int)w->shape[0];
    int64_t out64 = out, yshape[2] = {n, out};
    if (bias)
        LN_TRY(check_input_as("the bias", bias, x, 1, &out64));
    LN_TRY(check_output("the output", y, x, 2, yshape));
    LN_TRY(check_distinct("the output", y, "the input", x));
    LN_TRY(check_distinct("the output", y, "the weight", w));
    LN_TRY(check_distinct("the output", y, "the bias", bias));
    if (ln_tensor_numel(y) == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(x);
    contiguous_inputs set = {0};
    const void *xd, *wd, *bd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, w, &wd);
    if (st == LN_OK)
        st = contiguous(&set, bias, &bd);
    /* y = x w^T as one GEMM over the batch, then the bias per output feature */
    if (st == LN_OK)
        st = LN_CALL(dev, gemm, LN_FLOAT32, 0, 1, n, out, in, 1.0f, xd, in ? in : 1, wd,
                     in ? in : 1, 0.0f, ln_tensor_data(y), out);
    if (st == LN_OK && bias)
        st = LN_CALL(dev, bias_add, n, out, 1, ln_tensor_data(y), bd);
    release_inputs(&set);
    return st;
}

int ln_nn_linear_backward_data(const ln_tensor *dy, const ln_tensor *w, ln_tensor *dx)
{
    LN_TRY(ln_nn_linear_check_grad(dy, w));
    int n = (int)dy->shape[0], in = (int)w->shape[1], out = (int)w->shape[0];
    int64_t xshape[2] = {n, in};
    LN_TRY(check_output("the input gradient", dx, dy, 2, xshape));
    LN_TRY(check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(check_distinct("the input gradient", dx, "the weight", w));
    if (ln_tensor_numel(dx) == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *dyd, *wd;
    int st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = contiguous(&set, w, &wd);
    /* dx = dy w */
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(dy), gemm, LN_FLOAT32, 0, 0, n, in, out, 1.0f, dyd,
                     out ? out : 1, wd, in, 0.0f, ln_tensor_data(dx), in);
    release_inputs(&set);
    return st;
}

int ln_nn_linear_backward_filter(const ln_tensor *x, const ln_tensor *dy, ln_tensor *dw,
                                 ln_tensor *db, int accumulate)
{
    char sx[256], sd[256];
    LN_TRY(check_linear_weight("the input", x, "the weight gradient", dw));
    LN_TRY(check_input("the output gradient", dy));
    LN_TRY(ln_check_same_device("the output gradient and the input", dy, x));
    int64_t out = dw->shape[0], in = dw->shape[1];
    if (x->ndim != 2 || x->shape[1] != in)
        return ln_error(LN_EINVAL, "expected input [N, %lld], got %s", (long long)in,
                        ln_tensor_shape_string(x, sx, sizeof sx));
    if (dy->ndim != 2 || dy->shape[0] != x->shape[0] || dy->shape[1] != out)
        return ln_error(LN_EINVAL, "expected the output gradient [%lld, %lld] for input "
                        "%s, got %s", (long long)x->shape[0], (long long)out, sx,
                        ln_tensor_shape_string(dy, sd, sizeof sd));
    LN_TRY(check_output("the weight gradient", dw, x, 2, dw->shape));
    LN_TRY(check_distinct("the weight gradient", dw, "the input", x));
    LN_TRY(check_distinct("the weight gradient", dw, "the output gradient", dy));
    if (db) {
        LN_TRY(check_output("the bias gradient", db, x, 1, &out));
        LN_TRY(check_distinct("the bias gradient", db, "the output gradient", dy));
        LN_TRY(check_distinct("the bias gradient", db, "the weight gradient", dw));
    }
    int n = (int)x->shape[0];
    if (n == 0)
        return zero_unless_accumulating(dw, db, accumulate);
    if (ln_tensor_numel(dw) == 0)
        return LN_OK;
    ln_device *dev = ln_tensor_device(x);
    contiguous_inputs set = {0};
    const void *xd, *dyd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, dy, &dyd);
    /* dw (+)= dy^T x, db (+)= column sums of dy */
    if (st == LN_OK)
        st = LN_CALL(dev, gemm, LN_FLOAT32, 1, 0, (int)out, (int)in, n, 1.0f, dyd, (int)out,
                     xd, (int)in, accumulate ? 1.0f : 0.0f, ln_tensor_data(dw), (int)in);
    if (st == LN_OK && db)
        st = LN_CALL(dev, bias_backward, n, out, 1, dyd, ln_tensor_data(db), accumulate);
    release_inputs(&set);
    return st;
}

/* --- pooling ----------------------------------------------------------------------- */

int ln_nn_pool2d_shape(const ln_tensor *x, const ln_pool2d_params *p, ln_pool2d_shape *s)
{
    char sx[256];
    LN_TRY(check_input("the input", x));
    if (x->ndim != 4)
        return ln_error(LN_EINVAL, "expected input [N, C, H, W], got %s",
                        ln_tensor_shape_string(x, sx, sizeof sx));
    if (p->kernel_h < 1 || p->kernel_w < 1)
        return ln_error(LN_EINVAL, "kernel size must be at least 1, got {%d, %d}",
                        p->kernel_h, p->kernel_w);
    if (p->stride_h < 1 || p->stride_w < 1)
        return ln_error(LN_EINVAL, "stride must be at least 1, got {%d, %d}",
                        p->stride_h, p->stride_w);
    if (p->pad_h < 0 || p->pad_w < 0)
        return ln_error(LN_EINVAL, "padding must not be negative, got {%d, %d}",
                        p->pad_h, p->pad_w);
    /* as in PyTorch: every window then holds at least one real element */
    if (p->pad_h > p->kernel_h / 2 || p->pad_w > p->kernel_w / 2)
        return ln_error(LN_EINVAL, "padding {%d, %d} must be at most half the kernel "
                        "size {%d, %d}", p->pad_h, p->pad_w, p->kernel_h, p->kernel_w);
    LN_TRY(check_fits_int("the input", x));
    if (p->kernel_h > LN_NN_MAX_DIM || p->kernel_w > LN_NN_MAX_DIM)
        return ln_error(LN_EINVAL, "kernel size {%d, %d} is too large", p->kernel_h,
                        p->kernel_w);
    int64_t hp = x->shape[2] + 2 * (int64_t)p->pad_h, wp = x->shape[3] + 2 * (int64_t)p->pad_w;
    if (hp < p->kernel_h || wp < p->kernel_w)
        return ln_error(LN_EINVAL, "the kernel %dx%d is larger than the input %s padded "
                        "by {%d, %d} (%lldx%lld)", p->kernel_h, p->kernel_w,
                        ln_tensor_shape_string(x, sx, sizeof sx), p->pad_h, p->pad_w,
                        (long long)hp, (long long)wp);
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
    s->p = (int)((hp - p->kernel_h) / p->stride_h + 1);
    s->q = (int)((wp - p->kernel_w) / p->stride_w + 1);
    return LN_OK;
}

int ln_nn_pool2d_forward(ln_pool_mode mode, const ln_tensor *x, const ln_pool2d_params *p,
                         ln_tensor *y)
{
    ln_pool2d_shape s;
    LN_TRY(ln_nn_pool2d_shape(x, p, &s));
    int64_t yshape[4] = {s.n, s.c, s.p, s.q};
    LN_TRY(check_output("the output", y, x, 4, yshape));
    LN_TRY(check_distinct("the output", y, "the input", x));
    if (ln_tensor_numel(y) == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *xd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), pool2d_forward, mode, &s, xd, ln_tensor_data(y));
    release_inputs(&set);
    return st;
}

int ln_nn_pool2d_backward(ln_pool_mode mode, const ln_tensor *x, const ln_tensor *y,
                          const ln_tensor *dy, const ln_pool2d_params *p, ln_tensor *dx)
{
    ln_pool2d_shape s;
    LN_TRY(ln_nn_pool2d_shape(x, p, &s));
    int64_t yshape[4] = {s.n, s.c, s.p, s.q};
    LN_TRY(check_input_as("the output", y, x, 4, yshape));
    LN_TRY(check_input_as("the output gradient", dy, x, 4, yshape));
    LN_TRY(check_output("the input gradient", dx, x, 4, x->shape));
    LN_TRY(check_distinct("the input gradient", dx, "the input", x));
    LN_TRY(check_distinct("the input gradient", dx, "the output", y));
    LN_TRY(check_distinct("the input gradient", dx, "the output gradient", dy));
    if (ln_tensor_numel(dx) == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *xd, *yd, *dyd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = contiguous(&set, y, &yd);
    if (st == LN_OK)
        st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), pool2d_backward, mode, &s, xd, yd, dyd,
                     ln_tensor_data(dx));
    release_inputs(&set);
    return st;
}

/* --- elementwise -------------------------------------------------------------------- */

/* Elementwise kernels may write in place; any other overlap is refused. */
static int check_same_or_distinct(const char *out_what, const ln_tensor *out,
                                  const char *in_what, const ln_tensor *in)
{
    if (out->storage == in->storage && ln_tensor_data(out) == ln_tensor_data(in)
        && ln_tensor_is_contiguous(in))
        return LN_OK;
    return check_distinct(out_what, out, in_what, in);
}

int ln_nn_relu_forward(const ln_tensor *x, ln_tensor *y)
{
    LN_TRY(check_input("the input", x));
    LN_TRY(check_output("the output", y, x, x->ndim, x->shape));
    LN_TRY(check_same_or_distinct("the output", y, "the input", x));
    int64_t n = ln_tensor_numel(x);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *xd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), relu_forward, n, xd, ln_tensor_data(y));
    release_inputs(&set);
    return st;
}

int ln_nn_relu_backward(const ln_tensor *y, const ln_tensor *dy, ln_tensor *dx)
{
    LN_TRY(check_input("the output", y));
    LN_TRY(check_input_as("the output gradient", dy, y, y->ndim, y->shape));
    LN_TRY(check_output("the input gradient", dx, y, y->ndim, y->shape));
    LN_TRY(check_distinct("the input gradient", dx, "the output", y));
    LN_TRY(check_same_or_distinct("the input gradient", dx, "the output gradient", dy));
    int64_t n = ln_tensor_numel(y);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *yd, *dyd;
    int st = contiguous(&set, y, &yd);
    if (st == LN_OK)
        st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(y), relu_backward, n, yd, dyd, ln_tensor_data(dx));
    release_inputs(&set);
    return st;
}

int ln_nn_dropout_forward(const ln_tensor *x, double p, ln_tensor *y, ln_tensor *mask)
{
    LN_TRY(check_input("the input", x));
    if (!(p >= 0.0 && p <= 1.0))
        return ln_error(LN_EINVAL, "dropout probability must be in [0, 1], got %g", p);
    LN_TRY(check_output("the output", y, x, x->ndim, x->shape));
    LN_TRY(check_output("the mask", mask, x, x->ndim, x->shape));
    LN_TRY(check_distinct("the output", y, "the input", x));
    LN_TRY(check_distinct("the mask", mask, "the input", x));
    LN_TRY(check_distinct("the mask", mask, "the output", y));
    int64_t n = ln_tensor_numel(x);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *xd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK) {
        uint64_t seed = ln_random_get_seed(), offset = ln_random_reserve((uint64_t)n);
        st = LN_CALL(ln_tensor_device(x), dropout_forward, n, (float)p, xd,
                     ln_tensor_data(y), ln_tensor_data(mask), seed, offset);
    }
    release_inputs(&set);
    return st;
}

int ln_nn_dropout_backward(const ln_tensor *dy, const ln_tensor *mask, ln_tensor *dx)
{
    LN_TRY(check_input("the output gradient", dy));
    LN_TRY(check_input_as("the mask", mask, dy, dy->ndim, dy->shape));
    LN_TRY(check_output("the input gradient", dx, dy, dy->ndim, dy->shape));
    LN_TRY(check_same_or_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(check_distinct("the input gradient", dx, "the mask", mask));
    int64_t n = ln_tensor_numel(dy);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *dyd, *md;
    int st = contiguous(&set, dy, &dyd);
    if (st == LN_OK)
        st = contiguous(&set, mask, &md);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(dy), binary, LN_MUL, LN_FLOAT32, n, dyd, md,
                     ln_tensor_data(dx));
    release_inputs(&set);
    return st;
}

/* --- batch normalisation -------------------------------------------------------------- */

int ln_nn_batchnorm_check(const ln_tensor *x, const ln_tensor *gamma, int64_t *n,
                          int64_t *c, int64_t *inner)
{
    char sx[256];
    LN_TRY(check_input("the input", x));
    LN_TRY(check_input("the weight", gamma));
    LN_TRY(ln_check_same_device("the input and the weight", x, gamma));
    if (gamma->ndim != 1)
        return ln_error(LN_EINVAL, "the weight must be [C], got %s",
                        ln_tensor_shape_string(gamma, sx, sizeof sx));
    if (x->ndim < 2 || x->shape[1] != gamma->shape[0])
        return ln_error(LN_EINVAL, "expected input [N, %lld, ...], got %s",
                        (long long)gamma->shape[0], ln_tensor_shape_string(x, sx, sizeof sx));
    *n = x->shape[0];
    *c = x->shape[1];
    *inner = 1;
    for (int i = 2; i < x->ndim; i++)
        *inner *= x->shape[i];
    return LN_OK;
}

int ln_nn_batchnorm_forward(const ln_tensor *x, const ln_tensor *gamma,
                            const ln_tensor *beta, ln_tensor *running_mean,
                            ln_tensor *running_var, int training, double momentum,
                            double eps, ln_tensor *y, ln_tensor *save_mean,
                            ln_tensor *save_invstd)
{
    char sx[256];
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(check_input_as("the bias", beta, x, 1, &c));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    if (!(momentum >= 0 && momentum <= 1))
        return ln_error(LN_EINVAL, "momentum must be in [0, 1], got %g", momentum);
    LN_TRY(check_output("the output", y, x, x->ndim, x->shape));
    LN_TRY(check_distinct("the output", y, "the input", x));
    ln_device *dev = ln_tensor_device(x);
    if (!training) {
        LN_TRY(check_input_as("the running mean", running_mean, x, 1, &c));
        LN_TRY(check_input_as("the running variance", running_var, x, 1, &c));
        if (ln_tensor_numel(x) == 0)
            return LN_OK;
        contiguous_inputs set = {0};
        const void *xd, *gd, *bd, *md, *vd;
        int st = contiguous(&set, x, &xd);
        if (st == LN_OK) st = contiguous(&set, gamma, &gd);
        if (st == LN_OK) st = contiguous(&set, beta, &bd);
        if (st == LN_OK) st = contiguous(&set, running_mean, &md);
        if (st == LN_OK) st = contiguous(&set, running_var, &vd);
        if (st == LN_OK)
            st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, xd, gd, bd, md, vd,
                         (float)eps, ln_tensor_data(y));
        release_inputs(&set);
        return st;
    }
    if (n * inner < 2)
        return ln_error(LN_EINVAL, "expected more than 1 value per channel when "
                        "training, got input %s", ln_tensor_shape_string(x, sx, sizeof sx));
    LN_TRY(check_output("the running mean", running_mean, x, 1, &c));
    LN_TRY(check_output("the running variance", running_var, x, 1, &c));
    LN_TRY(check_output("the saved mean", save_mean, x, 1, &c));
    LN_TRY(check_output("the saved inverse deviation", save_invstd, x, 1, &c));
    const ln_tensor *written[5] = {y, running_mean, running_var, save_mean, save_invstd};
    const ln_tensor *read[3] = {x, gamma, beta};
    for (int i = 0; i < 5; i++) {
        for (int j = 0; j < 3; j++)
            LN_TRY(check_distinct("an output", written[i], "an input", read[j]));
        for (int j = i + 1; j < 5; j++)
            LN_TRY(check_distinct("an output", written[i], "another output", written[j]));
    }
    contiguous_inputs set = {0};
    const void *xd, *gd, *bd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK) st = contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = contiguous(&set, beta, &bd);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_train, n, c, inner, xd, gd, bd,
                     ln_tensor_data(y), ln_tensor_data(running_mean),
                     ln_tensor_data(running_var), (float)momentum, (float)eps,
                     ln_tensor_data(save_mean), ln_tensor_data(save_invstd));
    release_inputs(&set);
    return st;
}

static int check_batchnorm_grads(const ln_tensor *x, const ln_tensor *dy, int64_t c,
                                 ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta)
{
    LN_TRY(check_input_as("the output gradient", dy, x, x->ndim, x->shape));
    LN_TRY(check_output("the input gradient", dx, x, x->ndim, x->shape));
    LN_TRY(check_output("the weight gradient", dgamma, x, 1, &c));
    LN_TRY(check_output("the bias gradient", dbeta, x, 1, &c));
    LN_TRY(check_distinct("the input gradient", dx, "the input", x));
    LN_TRY(check_distinct("the input gradient", dx, "the output gradient", dy));
    LN_TRY(check_distinct("the weight gradient", dgamma, "the output gradient", dy));
    LN_TRY(check_distinct("the bias gradient", dbeta, "the output gradient", dy));
    return check_distinct("the bias gradient", dbeta, "the weight gradient", dgamma);
}

int ln_nn_batchnorm_backward(const ln_tensor *x, const ln_tensor *dy, const ln_tensor *gamma,
                             const ln_tensor *save_mean, const ln_tensor *save_invstd,
                             ln_tensor *dx, ln_tensor *dgamma, ln_tensor *dbeta,
                             int accumulate)
{
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(check_input_as("the saved mean", save_mean, x, 1, &c));
    LN_TRY(check_input_as("the saved inverse deviation", save_invstd, x, 1, &c));
    LN_TRY(check_batchnorm_grads(x, dy, c, dx, dgamma, dbeta));
    if (n * inner == 0)
        return zero_unless_accumulating(dgamma, dbeta, accumulate);
    contiguous_inputs set = {0};
    const void *xd, *dyd, *gd, *md, *sd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK) st = contiguous(&set, dy, &dyd);
    if (st == LN_OK) st = contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = contiguous(&set, save_mean, &md);
    if (st == LN_OK) st = contiguous(&set, save_invstd, &sd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(x), batchnorm_backward, n, c, inner, xd, dyd, gd, md,
                     sd, ln_tensor_data(dx), ln_tensor_data(dgamma), ln_tensor_data(dbeta),
                     accumulate);
    release_inputs(&set);
    return st;
}

/* In eval mode y = (x - mean) * invstd * gamma + beta with constant statistics:
 *   dx = dy * gamma * invstd       (the eval forward of dy with mean 0, beta 0)
 *   dgamma = sum dy * xhat         (xhat: the eval forward of x with gamma 1, beta 0)
 *   dbeta = sum dy
 * composed from existing kernels, so every backend has it. It uses
 * temporaries: eval-mode training is rare. */
int ln_nn_batchnorm_backward_eval(const ln_tensor *x, const ln_tensor *dy,
                                  const ln_tensor *gamma, const ln_tensor *running_mean,
                                  const ln_tensor *running_var, double eps, ln_tensor *dx,
                                  ln_tensor *dgamma, ln_tensor *dbeta, int accumulate)
{
    int64_t n = 0, c = 0, inner = 0;
    LN_TRY(ln_nn_batchnorm_check(x, gamma, &n, &c, &inner));
    LN_TRY(check_input_as("the running mean", running_mean, x, 1, &c));
    LN_TRY(check_input_as("the running variance", running_var, x, 1, &c));
    if (!(eps > 0) || !isfinite(eps))
        return ln_error(LN_EINVAL, "eps must be a positive number, got %g", eps);
    LN_TRY(check_batchnorm_grads(x, dy, c, dx, dgamma, dbeta));
    if (n * inner == 0)
        return zero_unless_accumulating(dgamma, dbeta, accumulate);
    ln_device *dev = ln_tensor_device(x);
    ln_tensor zeros = {0}, ones = {0}, xhat = {0};
    contiguous_inputs set = {0};
    const void *xd, *dyd, *gd, *md, *vd;
    int st = contiguous(&set, x, &xd);
    if (st == LN_OK) st = contiguous(&set, dy, &dyd);
    if (st == LN_OK) st = contiguous(&set, gamma, &gd);
    if (st == LN_OK) st = contiguous(&set, running_mean, &md);
    if (st == LN_OK) st = contiguous(&set, running_var, &vd);
    if (st == LN_OK) st = ln_tensor_alloc(&zeros, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&zeros, 0);
    if (st == LN_OK) st = ln_tensor_alloc(&ones, dev, LN_FLOAT32, 1, &c);
    if (st == LN_OK) st = ln_tensor_fill(&ones, 1);
    if (st == LN_OK) st = ln_tensor_alloc(&xhat, dev, LN_FLOAT32, x->ndim, x->shape);
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, dyd, gd,
                     ln_tensor_data(&zeros), ln_tensor_data(&zeros), vd, (float)eps,
                     ln_tensor_data(dx));
    if (st == LN_OK)
        st = LN_CALL(dev, batchnorm_forward_eval, n, c, inner, xd, ln_tensor_data(&ones),
                     ln_tensor_data(&zeros), md, vd, (float)eps, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, binary, LN_MUL, LN_FLOAT32, n * c * inner, ln_tensor_data(&xhat),
                     dyd, ln_tensor_data(&xhat));
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, ln_tensor_data(&xhat),
                     ln_tensor_data(dgamma), accumulate);
    if (st == LN_OK)
        st = LN_CALL(dev, bias_backward, n, c, inner, dyd, ln_tensor_data(dbeta), accumulate);
    ln_tensor_release(&zeros);
    ln_tensor_release(&ones);
    ln_tensor_release(&xhat);
    release_inputs(&set);
    return st;
}

/* --- loss ------------------------------------------------------------------------------ */

int ln_nn_cross_entropy_check(const ln_tensor *logits, const ln_tensor *labels)
{
    char sl[256], sy[256];
    LN_TRY(check_input("the logits", logits));
    if (!labels->storage)
        return ln_error(LN_EFREED, "the labels were freed");
    if (logits->ndim != 2 || logits->shape[0] < 1 || logits->shape[1] < 1)
        return ln_error(LN_EINVAL, "expected logits [N, C] with N, C >= 1, got %s",
                        ln_tensor_shape_string(logits, sl, sizeof sl));
    if (labels->dtype != LN_INT32)
        return ln_error(LN_EINVAL, "labels must be int32 class numbers in 1..%lld, got "
                        "%s labels; convert them with labels:to(\"int32\")",
                        (long long)logits->shape[1], ln_dtype_name(labels->dtype));
    LN_TRY(ln_check_same_device("the logits and the labels", logits, labels));
    if (labels->ndim != 1 || labels->shape[0] != logits->shape[0])
        return ln_error(LN_EINVAL, "expected labels [%lld] for logits %s, got %s",
                        (long long)logits->shape[0],
                        ln_tensor_shape_string(logits, sl, sizeof sl),
                        ln_tensor_shape_string(labels, sy, sizeof sy));
    return LN_OK;
}

static int bad_label_error(const ln_tensor *labels, int64_t position, int64_t classes)
{
    double v = 0;
    LN_TRY(ln_tensor_get(labels, &position, &v));
    return ln_error(LN_EINVAL, "label %.0f at position %lld is outside 1..%lld", v,
                    (long long)position + 1, (long long)classes);
}

int ln_nn_cross_entropy_forward(const ln_tensor *logits, const ln_tensor *labels,
                                double *loss)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    int64_t n = logits->shape[0], classes = logits->shape[1], bad = -1;
    contiguous_inputs set = {0};
    const void *ld, *yd;
    int st = contiguous(&set, logits, &ld);
    if (st == LN_OK)
        st = contiguous(&set, labels, &yd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(logits), cross_entropy_forward, n, classes, ld, yd,
                     loss, &bad);
    release_inputs(&set);
    if (st == LN_OK && bad >= 0)
        return bad_label_error(labels, bad, classes);
    return st;
}

int ln_nn_cross_entropy_backward(const ln_tensor *logits, const ln_tensor *labels,
                                 double scale, ln_tensor *dlogits)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    LN_TRY(check_output("the logits gradient", dlogits, logits, 2, logits->shape));
    LN_TRY(check_distinct("the logits gradient", dlogits, "the logits", logits));
    int64_t n = logits->shape[0], classes = logits->shape[1];
    contiguous_inputs set = {0};
    const void *ld, *yd;
    int st = contiguous(&set, logits, &ld);
    if (st == LN_OK)
        st = contiguous(&set, labels, &yd);
    /* Labels in host memory are checked here; on a GPU the forward pass checks
     * them, and the kernel never indexes with a label. */
    if (st == LN_OK && ln_tensor_device(labels)->host_memory) {
        const int32_t *y = yd;
        for (int64_t i = 0; i < n; i++)
            if (y[i] < 1 || y[i] > classes) {
                st = bad_label_error(labels, i, classes);
                break;
            }
    }
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(logits), cross_entropy_backward, n, classes, ld, yd,
                     (float)scale, ln_tensor_data(dlogits));
    release_inputs(&set);
    return st;
}

/* --- optimizers -------------------------------------------------------------------------- */

static int check_step_tensors(ln_tensor *param, const ln_tensor *grad, ln_tensor *s1,
                              const char *s1_what, ln_tensor *s2, const char *s2_what)
{
    LN_TRY(check_input("the parameter", param));
    if (!ln_tensor_is_contiguous(param))
        return ln_error(LN_EINVAL, "the parameter must be contiguous");
    LN_TRY(check_input_as("the gradient", grad, param, param->ndim, param->shape));
    LN_TRY(check_distinct("the parameter", param, "the gradient", grad));
    ln_tensor *state[2] = {s1, s2};
    const char *names[2] = {s1_what, s2_what};
    for (int i = 0; i < 2; i++) {
        if (!state[i])
            continue;
        LN_TRY(check_output(names[i], state[i], param, param->ndim, param->shape));
        LN_TRY(check_distinct(names[i], state[i], "the parameter", param));
        LN_TRY(check_distinct(names[i], state[i], "the gradient", grad));
    }
    if (s1 && s2)
        LN_TRY(check_distinct(s1_what, s1, s2_what, s2));
    return LN_OK;
}

int ln_nn_sgd_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *momentum_buffer,
                   const ln_sgd_params *p)
{
    if (!isfinite(p->lr) || p->lr < 0 || !isfinite(p->momentum) || p->momentum < 0
        || !isfinite(p->dampening) || !isfinite(p->weight_decay))
        return ln_error(LN_EINVAL, "SGD needs finite lr >= 0 and momentum >= 0, got lr "
                        "%g, momentum %g, dampening %g, weight decay %g", p->lr,
                        p->momentum, p->dampening, p->weight_decay);
    if (p->momentum != 0 && !momentum_buffer)
        return ln_error(LN_EINVAL, "SGD with momentum needs a momentum buffer");
    LN_TRY(check_step_tensors(param, grad, p->momentum != 0 ? momentum_buffer : NULL,
                              "the momentum buffer", NULL, NULL));
    int64_t n = ln_tensor_numel(param);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *gd;
    int st = contiguous(&set, grad, &gd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(param), sgd_step, p, n, ln_tensor_data(param), gd,
                     p->momentum != 0 ? ln_tensor_data(momentum_buffer) : NULL);
    release_inputs(&set);
    return st;
}

int ln_nn_adam_step(ln_tensor *param, const ln_tensor *grad, ln_tensor *exp_avg,
                    ln_tensor *exp_avg_sq, const ln_adam_params *p)
{
    if (!isfinite(p->lr) || p->lr < 0 || !(p->beta1 >= 0 && p->beta1 < 1)
        || !(p->beta2 >= 0 && p->beta2 < 1) || !(p->eps > 0) || !isfinite(p->eps)
        || !isfinite(p->weight_decay) || p->step < 1)
        return ln_error(LN_EINVAL, "Adam needs finite lr >= 0, betas in [0, 1), eps > 0 "
                        "and step >= 1, got lr %g, betas {%g, %g}, eps %g, step %lld",
                        p->lr, p->beta1, p->beta2, p->eps, (long long)p->step);
    LN_TRY(check_step_tensors(param, grad, exp_avg, "the first moment", exp_avg_sq,
                              "the second moment"));
    int64_t n = ln_tensor_numel(param);
    if (n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *gd;
    int st = contiguous(&set, grad, &gd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(param), adam_step, p, n, ln_tensor_data(param), gd,
                     ln_tensor_data(exp_avg), ln_tensor_data(exp_avg_sq));
    release_inputs(&set);
    return st;
}
