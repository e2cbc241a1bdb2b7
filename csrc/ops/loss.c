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

int ln_nn_cross_entropy_forward(const ln_tensor *logits, const ln_tensor *labels,
                                double *loss)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    int64_t n = logits->shape[0], classes = logits->shape[1], bad = -1;
    ln_op_contiguous_inputs set = {0};
    const void *ld, *yd;
    int st = ln_op_contiguous(&set, logits, &ld);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, labels, &yd);
    if (st == LN_OK)
        st = LN_CALL(ln_tensor_device(logits), cross_entropy_forward, n, classes, ld, yd,
                     loss, &bad);
    ln_op_release_inputs(&set);
    if (st == LN_OK && bad >= 0)
        return bad_label_error(labels, bad, classes);
    return st;
}

int ln_nn_cross_entropy_backward(const ln_tensor *logits, const ln_tensor *labels,
                                 double scale, ln_tensor *dlogits)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    LN_TRY(ln_op_check_output("the logits gradient", dlogits, logits, 2, logits->shape));
    LN_TRY(ln_op_check_distinct("the logits gradient", dlogits, "the logits", logits));
    int64_t n = logits->shape[0], classes = logits->shape[1];
    ln_op_contiguous_inputs set = {0};
    const void *ld, *yd;
    int st = ln_op_contiguous(&set, logits, &ld);
    if (st == LN_OK)
        st = ln_op_contiguous(&set, labels, &yd);
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
    ln_op_release_inputs(&set);
    return st;
}
