/* What every op in csrc/ops/ shares: the argument checks and the op runner.
 *
 * An op checks its own shape rule (ln_nn_conv2d_shape, ...), then states its
 * tensors in an ln_op (inputs, outputs, the shape each must have, which
 * output may be written in place of which input) and calls ln_op_run: one
 * function checks that every tensor is live, of its dtype, on one device and
 * of its shape, that outputs are contiguous and overlap no input (except the
 * in-place pairs) and no other output, makes strided inputs contiguous, calls
 * the kernel and releases the copies. The single checks below serve the
 * shape rules. */
#ifndef LUNET_OPS_OP_CHECK_H
#define LUNET_OPS_OP_CHECK_H

#include "../tensor.h"

/* Sizes handed to kernels as int stay well clear of INT32_MAX, so that sums
 * such as h + 2 * pad cannot overflow. */
#define LN_OP_MAX_DIM (INT32_MAX / 4)
#define LN_OP_MAX_INPUTS 5
#define LN_OP_MAX_OUTPUTS 5

/* An op states each tensor as {what, t, ndim, shape} and leaves the fields
 * after the last it needs zero on purpose (dtype LN_FLOAT32, no shape to
 * check): clang's -Wextra would flag every such list (gcc does not), so the
 * warning is off in the files that include this header, the ops. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

/* One tensor of an op. */
typedef struct ln_op_tensor {
    const char *what;         /* "the input", for messages; NULL ends the list */
    const ln_tensor *t;       /* NULL: an optional tensor that was not given */
    int ndim;                 /* with `shape`: the shape it must have */
    const int64_t *shape;     /* NULL: the op's shape rule has checked it */
    ln_dtype dtype;           /* LN_FLOAT32 unless stated */
} ln_op_tensor;

typedef struct ln_op {
    ln_op_tensor in[LN_OP_MAX_INPUTS];   /* read; in[0] names the device */
    ln_op_tensor out[LN_OP_MAX_OUTPUTS]; /* written: contiguous */
    /* in_place[o] = 1 + index of the input output o may be written over (the
     * same contiguous memory), or 0 when it must be separate from them all. */
    int in_place[LN_OP_MAX_OUTPUTS];
    /* The elements (or any measure of work) the kernel gets as n; when 0 the
     * kernel is not called (empty tensors). */
    int64_t n;
} ln_op;

/* The kernel call: in[] are contiguous device pointers (NULL for an optional
 * input not given), out[] the outputs' data (NULL likewise). */
typedef int (*ln_op_kernel)(ln_device *dev, void *arg, int64_t n, const void *const *in,
                            void *const *out);

/* Checks every tensor of the op (live, dtype, device, shape, outputs
 * contiguous, no output overlapping an input or another output except the
 * in-place pairs), then, unless op->n is 0, makes strided inputs contiguous,
 * runs `kernel` and releases the copies. */
int ln_op_run(const ln_op *op, ln_op_kernel kernel, void *arg);

/* --- single checks, for the shape rules ------------------------------------ */

/* A live float32 tensor. */
int ln_op_check_input(const char *what, const ln_tensor *t);
/* An input of the given shape on `on`'s device. */
int ln_op_check_input_as(const char *what, const ln_tensor *t, const ln_tensor *on,
                         int ndim, const int64_t *shape);
/* Every size below LN_OP_MAX_DIM, so kernels can take them as int. */
int ln_op_check_fits_int(const char *what, const ln_tensor *t);
/* The rules every sliding window (convolution, pooling) shares: kernel and
 * stride at least 1, padding not negative, sizes that fit the kernels' int
 * arithmetic. Values are shown as the layers take them: 3 for {3, 3}. */
int ln_op_check_window(int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h,
                       int pad_w);
/* The output height *p and width *q of a kernel_h x kernel_w window over the
 * NCHW x padded by pad_h, pad_w; refuses a kernel larger than the padded input. */
int ln_op_window_output(const ln_tensor *x, int64_t kernel_h, int64_t kernel_w, int stride_h,
                        int stride_w, int pad_h, int pad_w, int *p, int *q);
/* Gradients written with accumulate = 0 start from zero (b may be NULL). */
int ln_op_zero_unless_accumulating(ln_tensor *a, ln_tensor *b, int accumulate);

#endif
