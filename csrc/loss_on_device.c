#include "loss_on_device.h"

#include "nn_ops.h"
#include "status.h"

/* The running sum's update: the total is formed in double and split again
 * into a float32 head and the float32 remainder, so the pair carries about
 * 48 bits of the sum (a compensated sum, as Neumaier's). */
static void add_to_pair(float *pair, double value)
{
    double total = (double)pair[0] + (double)pair[1] + value;
    float head = (float)total;
    pair[0] = head;
    pair[1] = (float)(total - (double)head);
}

static int check_loss_tensor(const ln_tensor *logits, const ln_tensor *loss, int accumulate)
{
    LN_TRY(ln_tensor_check_live(loss));
    int64_t want = accumulate ? 2 : 1;
    if (ln_tensor_device(loss) != ln_tensor_device(logits) || loss->dtype != LN_FLOAT32
        || !ln_tensor_is_contiguous(loss) || ln_tensor_numel(loss) != want)
        return ln_error(LN_EINVAL, "the loss tensor must be a contiguous float32 tensor of %lld "
                        "element%s on %s (%s)", (long long)want, want == 1 ? "" : "s",
                        ln_tensor_device(logits)->name,
                        accumulate ? "the running {sum, compensation}" : "the mean loss");
    return LN_OK;
}

/* The mean loss on a host-memory device, without counting a host read: the
 * value never leaves the device's own memory. */
static int host_memory_loss(const ln_tensor *logits, const ln_tensor *labels, double *loss)
{
    ln_device *dev = ln_tensor_device(logits);
    int64_t n = logits->shape[0], classes = logits->shape[1], bad = -1;
    ln_tensor cl = {0}, cy = {0};
    int st = ln_tensor_contiguous(&cl, logits);
    if (st == LN_OK)
        st = ln_tensor_contiguous(&cy, labels);
    if (st == LN_OK)
        st = LN_CALL(dev, cross_entropy_forward, n, classes, ln_tensor_data(&cl),
                     ln_tensor_data(&cy), loss, &bad);
    if (st == LN_OK && bad >= 0) {
        double v = ((const int32_t *)ln_tensor_data(&cy))[bad];
        st = ln_error(LN_EINVAL, "label %.0f at position %lld is outside 1..%lld", v,
                      (long long)bad + 1, (long long)classes);
    }
    ln_tensor_release(&cl);
    ln_tensor_release(&cy);
    return st;
}

int ln_nn_cross_entropy_forward_into(const ln_tensor *logits, const ln_tensor *labels,
                                     ln_tensor *loss, int accumulate)
{
    LN_TRY(ln_nn_cross_entropy_check(logits, labels));
    LN_TRY(check_loss_tensor(logits, loss, accumulate));
    ln_device *dev = ln_tensor_device(logits);
    double mean = 0;
    if (dev->host_memory) {
        LN_TRY(host_memory_loss(logits, labels, &mean));
        float *out = ln_tensor_data(loss);
        if (accumulate)
            add_to_pair(out, mean);
        else
            out[0] = (float)mean;
        return LN_OK;
    }
    if (dev->backend->cross_entropy_forward_device) {
        ln_tensor cl = {0}, cy = {0};
        int st = ln_tensor_contiguous(&cl, logits);
        if (st == LN_OK)
            st = ln_tensor_contiguous(&cy, labels);
        if (st == LN_OK)
            st = dev->backend->cross_entropy_forward_device(
                dev->ctx, logits->shape[0], logits->shape[1], ln_tensor_data(&cl),
                ln_tensor_data(&cy), ln_tensor_data(loss), accumulate);
        ln_tensor_release(&cl);
        ln_tensor_release(&cy);
        return st;
    }
    LN_TRY(ln_nn_cross_entropy_forward(logits, labels, &mean));
    int64_t first = 0, second = 1;
    if (!accumulate)
        return ln_tensor_set(loss, &first, mean);
    float pair[2];
    double v0 = 0, v1 = 0;
    LN_TRY(ln_tensor_get(loss, &first, &v0));
    LN_TRY(ln_tensor_get(loss, &second, &v1));
    pair[0] = (float)v0;
    pair[1] = (float)v1;
    add_to_pair(pair, mean);
    LN_TRY(ln_tensor_set(loss, &first, pair[0]));
    return ln_tensor_set(loss, &second, pair[1]);
}
