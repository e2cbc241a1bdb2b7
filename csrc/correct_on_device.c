#include "correct_on_device.h"

#include "nn_ops.h"
#include "status.h"

/* The first maximum of a row, a NaN winning (ln_ref_argmax's rule), 0-based. */
static int64_t row_argmax(const float *row, int64_t classes)
{
    int64_t best = 0;
    float best_v = row[0];
    for (int64_t j = 1; j < classes && best_v == best_v; j++)
        if (row[j] > best_v || row[j] != row[j]) {
            best = j;
            best_v = row[j];
        }
    return best;
}

int ln_nn_count_correct_into(const ln_tensor *logits, const ln_tensor *labels,
                             ln_tensor *counter)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    LN_TRY(ln_tensor_check_live(counter));
    ln_device *dev = ln_tensor_device(logits);
    if (ln_tensor_device(counter) != dev || counter->dtype != LN_FLOAT32
        || !ln_tensor_is_contiguous(counter) || ln_tensor_numel(counter) != 1)
        return ln_error(LN_EINVAL, "the counter must be a contiguous float32 tensor of 1 "
                        "element on %s", dev->name);
    if (!dev->host_memory)
        return LN_ENOTSUP;
    int64_t n = logits->shape[0], classes = logits->shape[1];
    ln_tensor cl = {0}, cy = {0};
    int st = ln_tensor_contiguous(&cl, logits);
    if (st == LN_OK)
        st = ln_tensor_contiguous(&cy, labels);
    if (st == LN_OK) {
        const float *x = ln_tensor_data(&cl);
        const int32_t *y = ln_tensor_data(&cy);
        int64_t hits = 0;
        for (int64_t i = 0; i < n && st == LN_OK; i++) {
            if (y[i] < 1 || y[i] > classes)
                st = ln_error(LN_EINVAL, "label %d at position %lld is outside 1..%lld", y[i],
                              (long long)i + 1, (long long)classes);
            else
                hits += row_argmax(x + i * classes, classes) + 1 == y[i];
        }
        if (st == LN_OK)
            *(float *)ln_tensor_data(counter) += (float)hits;
    }
    ln_tensor_release(&cl);
    ln_tensor_release(&cy);
    return st;
}
