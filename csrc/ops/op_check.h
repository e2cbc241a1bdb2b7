/* What every op in csrc/ops/ shares: the argument checks and the op runner.
 *
 * An op states its tensors in an ln_op (inputs, outputs, which output may be
 * written in place of which input, the shape they all have) and calls
 * ln_op_run: one function checks that inputs are live float32 tensors on one
 * device, that outputs are contiguous and of the shape, that no output
 * overlaps an input (except the allowed in-place pairs) or another output,
 * makes strided inputs contiguous, calls the kernel and releases the copies.
 * The op itself keeps only its shape rule. Ops with several shapes (conv,
 * linear, batch norm) use the single checks below the same way. */
#ifndef LUNET_OPS_OP_CHECK_H
#define LUNET_OPS_OP_CHECK_H

#include "../tensor.h"

/* Sizes handed to kernels as int stay well clear of INT32_MAX, so that sums
 * such as h + 2 * pad cannot overflow. */
#define LN_OP_MAX_DIM (INT32_MAX / 4)
#define LN_OP_MAX_INPUTS 5
#define LN_OP_MAX_OUTPUTS 3

typedef struct ln_op {
    int n_in, n_out;
    const ln_tensor *in[LN_OP_MAX_INPUTS];   /* an optional input may be NULL */
    const char *in_what[LN_OP_MAX_INPUTS];   /* "the input", for messages */
    ln_tensor *out[LN_OP_MAX_OUTPUTS];
    const char *out_what[LN_OP_MAX_OUTPUTS];
    /* in_place[o] = 1 + index of the input output o may be written over (the
     * same contiguous memory), or 0 when it must be separate. */
    int in_place[LN_OP_MAX_OUTPUTS];
    /* When not NULL: the shape of every input and output (elementwise ops). */
    int ndim;
    const int64_t *shape;
} ln_op;

/* The kernel call: in[] are contiguous device pointers (NULL for a NULL
 * optional input), out[] the outputs' data, n the number of elements of the
 * shared shape (0 when the op has none). */
typedef int (*ln_op_kernel)(ln_device *dev, void *arg, int64_t n, const void *const *in,
                            void *const *out);

/* Checks the op's tensors, runs `kernel` unless there are no elements,
 * releases the contiguous copies. */
int ln_op_run(const ln_op *op, ln_op_kernel kernel, void *arg);

/* --- single checks, for ops that do their own dispatch --------------------- */

/* A live float32 tensor. */
int ln_op_check_input(const char *what, const ln_tensor *t);
int ln_op_check_shape(const char *what, const ln_tensor *t, int ndim, const int64_t *shape);
/* An input of the given shape on `on`'s device. */
int ln_op_check_input_as(const char *what, const ln_tensor *t, const ln_tensor *on,
                         int ndim, const int64_t *shape);
/* A tensor the op writes: float32, contiguous, on `on`'s device, of the shape. */
int ln_op_check_output(const char *what, const ln_tensor *t, const ln_tensor *on,
                       int ndim, const int64_t *shape);
/* Kernels read their inputs while writing their outputs: the two must not
 * overlap (in may be NULL). */
int ln_op_check_distinct(const char *out_what, const ln_tensor *out, const char *in_what,
                         const ln_tensor *in);
/* Like ln_op_check_distinct, but out may be exactly in (same contiguous data). */
int ln_op_check_same_or_distinct(const char *out_what, const ln_tensor *out,
                                 const char *in_what, const ln_tensor *in);
int ln_op_check_fits_int(const char *what, const ln_tensor *t);
/* Gradients written with accumulate = 0 start from zero (b may be NULL). */
int ln_op_zero_unless_accumulating(ln_tensor *a, ln_tensor *b, int accumulate);

/* Contiguous versions of strided inputs, released together at the end of an
 * op. A contiguous input is only referenced, never copied. */
typedef struct ln_op_contiguous_inputs {
    ln_tensor held[LN_OP_MAX_INPUTS];
    int count;
} ln_op_contiguous_inputs;

int ln_op_contiguous(ln_op_contiguous_inputs *set, const ln_tensor *in, const void **data);
void ln_op_release_inputs(ln_op_contiguous_inputs *set);

#endif
