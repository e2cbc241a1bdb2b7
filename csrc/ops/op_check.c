#include "op_check.h"

#include <stdio.h>

#include "../status.h"
#include "../tensor_ops.h"

/* Contiguous versions of strided inputs, released together at the end of an
 * op. A contiguous input is only referenced, never copied. */
typedef struct contiguous_inputs {
    ln_tensor held[LN_OP_MAX_INPUTS];
    int count;
} contiguous_inputs;

int ln_op_check_input(const char *what, const ln_tensor *t)
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
int ln_op_check_input_as(const char *what, const ln_tensor *t, const ln_tensor *on,
                         int ndim, const int64_t *shape)
{
    LN_TRY(ln_op_check_input(what, t));
    if (ln_tensor_device(t) != ln_tensor_device(on)) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s and the input", what);
        return ln_check_same_device(buf, t, on);
    }
    return check_shape(what, t, ndim, shape);
}

/* The bytes [*lo, *hi) of its storage that t's elements lie in. */
static void byte_span(const ln_tensor *t, size_t *lo, size_t *hi)
{
    size_t size = ln_dtype_size(t->dtype);
    int64_t last = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] == 0) {
            *lo = *hi = (size_t)t->offset * size;
            return;
        }
        last += (t->shape[d] - 1) * t->stride[d];
    }
    *lo = (size_t)t->offset * size;
    *hi = (size_t)(t->offset + last) * size + size;
}

/* Kernels read their inputs while writing their outputs: the two must not
 * overlap. Views of one storage are distinct when their elements do not
 * overlap (the parameters and gradients of a flat model are views of two
 * buffers). */
static int check_distinct(const char *out_what, const ln_tensor *out, const char *in_what,
                          const ln_tensor *in)
{
    size_t out_lo = 0, out_hi = 0, in_lo = 0, in_hi = 0;
    if (in && out->storage == in->storage) {
        byte_span(out, &out_lo, &out_hi);
        byte_span(in, &in_lo, &in_hi);
    }
    if (in && out->storage == in->storage && out_lo < in_hi && in_lo < out_hi)
        return ln_error(LN_EINVAL, "%s shares memory with %s; pass a separate tensor",
                        out_what, in_what);
    return LN_OK;
}

int ln_op_check_fits_int(const char *what, const ln_tensor *t)
{
    char s[256];
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] > LN_OP_MAX_DIM)
            return ln_error(LN_EINVAL, "%s %s is too large (each size must be below %d)",
                            what, ln_tensor_shape_string(t, s, sizeof s), LN_OP_MAX_DIM);
    return LN_OK;
}

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


/* Elementwise kernels may write in place; any other overlap is refused. */
static int check_same_or_distinct(const char *out_what, const ln_tensor *out,
                                  const char *in_what, const ln_tensor *in)
{
    if (out->storage == in->storage && ln_tensor_data(out) == ln_tensor_data(in)
        && ln_tensor_is_contiguous(in))
        return LN_OK;
    return check_distinct(out_what, out, in_what, in);
}


static int count_tensors(const ln_op_tensor *list, int max)
{
    int n = 0;
    while (n < max && list[n].what)
        n++;
    return n;
}

/* One tensor: live, its dtype, on `dev`'s device (unless it is `dev`), its
 * shape when one is given. */
static int check_tensor(const ln_op_tensor *a, const ln_op_tensor *dev)
{
    const ln_tensor *t = a->t;
    if (!t->storage)
        return ln_error(LN_EFREED, "%s was freed", a->what);
    if (a->dtype == LN_FLOAT32)
        LN_TRY(ln_op_check_input(a->what, t));
    else
        LN_TRY(ln_check_dtype(a->what, t, a->dtype));
    if (a != dev && ln_tensor_device(t) != ln_tensor_device(dev->t)) {
        char both[128];
        snprintf(both, sizeof both, "%s and %s", a->what, dev->what);
        return ln_check_same_device(both, t, dev->t);
    }
    if (a->shape)
        LN_TRY(check_shape(a->what, t, a->ndim, a->shape));
    return LN_OK;
}

int ln_op_run(const ln_op *op, ln_op_kernel kernel, void *arg)
{
    int n_in = count_tensors(op->in, LN_OP_MAX_INPUTS);
    int n_out = count_tensors(op->out, LN_OP_MAX_OUTPUTS);
    const ln_op_tensor *dev = &op->in[0];
    if (n_in == 0 || !dev->t)
        return ln_error(LN_EINVAL, "internal error: an op without its first input");
    for (int i = 0; i < n_in; i++)
        if (op->in[i].t)
            LN_TRY(check_tensor(&op->in[i], dev));
    for (int o = 0; o < n_out; o++) {
        const ln_op_tensor *a = &op->out[o];
        if (!a->t)
            continue;
        LN_TRY(check_tensor(a, dev));
        if (!ln_tensor_is_contiguous(a->t))
            return ln_error(LN_EINVAL, "%s must be contiguous (a tensor lunet allocated, "
                            "not a strided view)", a->what);
        for (int i = 0; i < n_in; i++) {
            const ln_op_tensor *b = &op->in[i];
            if (op->in_place[o] == i + 1)
                LN_TRY(check_same_or_distinct(a->what, a->t, b->what, b->t));
            else
                LN_TRY(check_distinct(a->what, a->t, b->what, b->t));
        }
        for (int p = 0; p < o; p++)
            if (op->out[p].t)
                LN_TRY(check_distinct(a->what, a->t, op->out[p].what, op->out[p].t));
    }
    if (op->n == 0)
        return LN_OK;
    contiguous_inputs set = {0};
    const void *in[LN_OP_MAX_INPUTS] = {0};
    void *out[LN_OP_MAX_OUTPUTS] = {0};
    int st = LN_OK;
    for (int i = 0; st == LN_OK && i < n_in; i++)
        st = contiguous(&set, op->in[i].t, &in[i]);
    for (int o = 0; o < n_out; o++)
        out[o] = op->out[o].t ? ln_tensor_data(op->out[o].t) : NULL;
    if (st == LN_OK)
        st = kernel(ln_tensor_device(dev->t), arg, op->n, in, out);
    release_inputs(&set);
    return st;
}

int ln_op_zero_unless_accumulating(ln_tensor *a, ln_tensor *b, int accumulate)
{
    if (accumulate)
        return LN_OK;
    LN_TRY(ln_tensor_fill(a, 0));
    return b ? ln_tensor_fill(b, 0) : LN_OK;
}

/* "3" for {3, 3}, else "{3, 2}": a number or a pair, as the layers take them. */
static const char *pair_string(int h, int w, char *buf, size_t size)
{
    if (h == w)
        snprintf(buf, size, "%d", h);
    else
        snprintf(buf, size, "{%d, %d}", h, w);
    return buf;
}

int ln_op_check_window(int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                       int pad_w)
{
    char s[64];
    if (kernel_h < 1 || kernel_w < 1)
        return ln_error(LN_EINVAL, "kernel size must be at least 1, got %s",
                        pair_string(kernel_h, kernel_w, s, sizeof s));
    if (stride_h < 1 || stride_w < 1)
        return ln_error(LN_EINVAL, "stride must be at least 1, got %s",
                        pair_string(stride_h, stride_w, s, sizeof s));
    if (pad_h < 0 || pad_w < 0)
        return ln_error(LN_EINVAL, "padding must not be negative, got %s",
                        pair_string(pad_h, pad_w, s, sizeof s));
    if (kernel_h > LN_OP_MAX_DIM || kernel_w > LN_OP_MAX_DIM)
        return ln_error(LN_EINVAL, "kernel size %s is too large",
                        pair_string(kernel_h, kernel_w, s, sizeof s));
    if (pad_h > LN_OP_MAX_DIM || pad_w > LN_OP_MAX_DIM)
        return ln_error(LN_EINVAL, "padding %s is too large",
                        pair_string(pad_h, pad_w, s, sizeof s));
    return LN_OK;
}

int ln_op_window_output(const ln_tensor *x, int64_t kernel_h, int64_t kernel_w, int stride_h,
                        int stride_w, int pad_h, int pad_w, int *p, int *q)
{
    char sx[256];
    int64_t hp = x->shape[2] + 2 * (int64_t)pad_h, wp = x->shape[3] + 2 * (int64_t)pad_w;
    if (hp < kernel_h || wp < kernel_w)
        return ln_error(LN_EINVAL, "the kernel %lldx%lld is larger than the input %s "
                        "padded by {%d, %d} (%lldx%lld)", (long long)kernel_h,
                        (long long)kernel_w, ln_tensor_shape_string(x, sx, sizeof sx), pad_h,
                        pad_w, (long long)hp, (long long)wp);
    *p = (int)((hp - kernel_h) / stride_h + 1);
    *q = (int)((wp - kernel_w) / stride_w + 1);
    return LN_OK;
}
