/* Cross-entropy loss. */
#include "../nn_ops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "op_check.h"

/* --- loss ------------------------------------------------------------------------------ */

int ln_nn_cross_entropy_check(const ln_tensor *logits, const ln_tensor *labels)
{
    char sl[256], sy[256];
    LN_TRY(ln_op_check_input("the logits", logits));
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

typedef struct loss_call {
    const ln_tensor *labels;
    int64_t n, classes;
    double scale, *loss;
} loss_call;

static int cross_entropy_forward_kernel(ln_device *dev, void *arg, int64_t count,
                                        const void *const *in, void *const *out)
{
    loss_call *c = arg;
    int64_t bad = -1;
    (void)count;
    (void)out;
    LN_TRY(LN_CALL(dev, cross_entropy_forward, c->n, c->classes, in[0], in[1], c->loss, &bad));
    return bad >= 0 ? bad_label_error(c->labels, bad, c->classes) : LN_OK;
}

int ln_nn_cross_entropy_forward(const ln_tensor *logits, const ln_tensor *labels,
                                double *loss)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    loss_call c = {labels, logits->shape[0], logits->shape[1], 0, loss};
    ln_op op = {.in = {{"the logits", logits}, {"the labels", labels, .dtype = LN_INT32}},
                .n = c.n};
    ln_device_note_host_read(); /* the loss comes back to the host */
    return ln_op_run(&op, cross_entropy_forward_kernel, &c);
}

static int cross_entropy_backward_kernel(ln_device *dev, void *arg, int64_t count,
                                         const void *const *in, void *const *out)
{
    loss_call *c = arg;
    (void)count;
    /* Labels in host memory are checked here; on a GPU the forward pass checks
     * them, and the kernel never indexes with a label. */
    if (dev->host_memory) {
        const int32_t *y = in[1];
        for (int64_t i = 0; i < c->n; i++)
            if (y[i] < 1 || y[i] > c->classes)
                return bad_label_error(c->labels, i, c->classes);
    }
    return LN_CALL(dev, cross_entropy_backward, c->n, c->classes, in[0], in[1],
                   (float)c->scale, out[0]);
}

int ln_nn_cross_entropy_backward(const ln_tensor *logits, const ln_tensor *labels,
                                 double scale, ln_tensor *dlogits)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    loss_call c = {labels, logits->shape[0], logits->shape[1], scale, NULL};
    ln_op op = {.in = {{"the logits", logits}, {"the labels", labels, .dtype = LN_INT32}},
                .out = {{"the logits gradient", dlogits, 2, logits->shape}},
                .n = c.n};
    return ln_op_run(&op, cross_entropy_backward_kernel, &c);
}
