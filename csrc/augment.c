#include "augment.h"

#include <math.h>
#include <string.h>

#include "cpu/cpu.h"
#include "philox.h"
#include "status.h"

/* Each transform draws from its own words of one Philox block per image:
 * v[0], v[1] the crop offsets, v[2] the flip. */
void ln_augment_crop_offsets(uint64_t seed, uint64_t counter, int64_t image, int range_y,
                             int range_x, int *dy, int *dx)
{
    ln_philox4 r = ln_philox(seed, counter + (uint64_t)image);
    *dy = (int)(r.v[0] % (uint32_t)range_y);
    *dx = (int)(r.v[1] % (uint32_t)range_x);
}

int ln_augment_flip_drawn(uint64_t seed, uint64_t counter, int64_t image, double p)
{
    ln_philox4 r = ln_philox(seed, counter + (uint64_t)image);
    return (double)ln_uint_to_unit(r.v[2]) < p;
}

/* A float32 {N, C, H, W} contiguous batch in host memory, else an error. */
static int check_batch(const ln_tensor *t, const char *what)
{
    char shape[96];
    LN_TRY(ln_tensor_check_live(t));
    ln_tensor_shape_string(t, shape, sizeof shape);
    if (t->ndim != 4 || t->dtype != LN_FLOAT32)
        return ln_error(LN_EINVAL, "%s must be a float32 batch [N, C, H, W], got %s %s", what,
                        ln_dtype_name(t->dtype), shape);
    if (!ln_tensor_is_contiguous(t))
        return ln_error(LN_EINVAL, "%s must be contiguous", what);
    if (!ln_tensor_device(t)->host_memory)
        return ln_error(LN_ENOTSUP, "%s is on %s: augmentation runs on host tensors (cpu, ref)",
                        what, ln_tensor_device(t)->name);
    return LN_OK;
}

/* Runs task over `images` items: on the cpu device's pool, else in a loop. */
static void for_each_image(const ln_tensor *t, int64_t images, int64_t per_image,
                           ln_cpu_task task, void *arg)
{
    ln_device *dev = ln_tensor_device(t);
    if (dev->type == LN_DEVICE_CPU && dev->ctx) {
        int threads = ln_cpu_threads_for(dev->ctx, images * per_image);
        ln_cpu_parallel(dev->ctx, threads, images, task, arg);
    } else {
        for (int64_t i = 0; i < images; i++)
            task(arg, i, 0);
    }
}

typedef struct crop_job {
    float *out;
    const float *in;
    int64_t c, h, w, oh, ow;
    int padding, range_y, range_x;
    uint64_t seed, counter;
} crop_job;

static void crop_image(void *arg, int64_t i, int thread)
{
    (void)thread;
    const crop_job *j = arg;
    int dy, dx;
    ln_augment_crop_offsets(j->seed, j->counter, i, j->range_y, j->range_x, &dy, &dx);
    /* window row y, column x reads input row y + dy - padding, column x + dx - padding */
    int64_t y0 = dy - j->padding, x0 = dx - j->padding;
    for (int64_t c = 0; c < j->c; c++) {
        const float *src = j->in + (i * j->c + c) * j->h * j->w;
        float *dst = j->out + (i * j->c + c) * j->oh * j->ow;
        for (int64_t y = 0; y < j->oh; y++) {
            float *row = dst + y * j->ow;
            int64_t sy = y + y0;
            if (sy < 0 || sy >= j->h) {
                memset(row, 0, (size_t)j->ow * sizeof *row);
                continue;
            }
            /* columns [lo, hi) of the window lie inside the image */
            int64_t lo = x0 < 0 ? -x0 : 0;
            int64_t hi = j->w - x0 < j->ow ? j->w - x0 : j->ow;
            if (hi < lo)
                hi = lo;
            memset(row, 0, (size_t)lo * sizeof *row);
            memcpy(row + lo, src + sy * j->w + x0 + lo, (size_t)(hi - lo) * sizeof *row);
            memset(row + hi, 0, (size_t)(j->ow - hi) * sizeof *row);
        }
    }
}

int ln_augment_random_crop(ln_tensor *out, const ln_tensor *in, int padding, uint64_t seed,
                           uint64_t counter)
{
    LN_TRY(check_batch(in, "input"));
    LN_TRY(check_batch(out, "output"));
    char a[96], b[96];
    ln_tensor_shape_string(in, a, sizeof a);
    ln_tensor_shape_string(out, b, sizeof b);
    if (out->shape[0] != in->shape[0] || out->shape[1] != in->shape[1])
        return ln_error(LN_EINVAL, "output %s must have the input's %s batch and channels", b, a);
    if (padding < 0)
        return ln_error(LN_EINVAL, "padding must not be negative, got %d", padding);
    int64_t range_y = in->shape[2] + 2 * (int64_t)padding - out->shape[2] + 1;
    int64_t range_x = in->shape[3] + 2 * (int64_t)padding - out->shape[3] + 1;
    if (range_y < 1 || range_x < 1)
        return ln_error(LN_EINVAL, "a %lldx%lld crop does not fit in input %s padded by %d",
                        (long long)out->shape[2], (long long)out->shape[3], a, padding);
    if (range_y > INT32_MAX || range_x > INT32_MAX)
        return ln_error(LN_EINVAL, "input %s is too large to crop", a);
    if (ln_tensor_device(in) != ln_tensor_device(out))
        return ln_error(LN_EINVAL, "input on %s and output on %s", ln_tensor_device(in)->name,
                        ln_tensor_device(out)->name);
    if (ln_tensor_data(in) == ln_tensor_data(out))
        return ln_error(LN_EINVAL, "the output must not be the input");
    crop_job job = {ln_tensor_data(out), ln_tensor_data(in), in->shape[1], in->shape[2],
                    in->shape[3], out->shape[2], out->shape[3], padding, (int)range_y,
                    (int)range_x, seed, counter};
    for_each_image(out, out->shape[0], ln_tensor_numel(out) / (out->shape[0] ? out->shape[0] : 1),
                   crop_image, &job);
    return LN_OK;
}

typedef struct flip_job {
    float *data;
    int64_t c, h, w;
    double p;
    uint64_t seed, counter;
} flip_job;

static void flip_image(void *arg, int64_t i, int thread)
{
    (void)thread;
    const flip_job *j = arg;
    if (!ln_augment_flip_drawn(j->seed, j->counter, i, j->p))
        return;
    float *img = j->data + i * j->c * j->h * j->w;
    for (int64_t r = 0; r < j->c * j->h; r++) {
        float *row = img + r * j->w;
        for (int64_t x = 0, y = j->w - 1; x < y; x++, y--) {
            float t = row[x];
            row[x] = row[y];
            row[y] = t;
        }
    }
}

int ln_augment_random_hflip(ln_tensor *t, double p, uint64_t seed, uint64_t counter)
{
    LN_TRY(check_batch(t, "input"));
    if (!(p >= 0 && p <= 1))
        return ln_error(LN_EINVAL, "p must be a probability in [0, 1], got %g", p);
    flip_job job = {ln_tensor_data(t), t->shape[1], t->shape[2], t->shape[3], p, seed, counter};
    for_each_image(t, t->shape[0], t->shape[1] * t->shape[2] * t->shape[3], flip_image, &job);
    return LN_OK;
}

typedef struct normalize_job {
    float *data;
    int64_t c, plane;
    const float *mean, *std;
} normalize_job;

static void normalize_image(void *arg, int64_t i, int thread)
{
    (void)thread;
    const normalize_job *j = arg;
    for (int64_t c = 0; c < j->c; c++) {
        float *p = j->data + (i * j->c + c) * j->plane;
        float m = j->mean[c], s = j->std[c];
        for (int64_t k = 0; k < j->plane; k++)
            p[k] = (p[k] - m) / s; /* a division, as torchvision's Normalize does */
    }
}

int ln_augment_normalize(ln_tensor *t, const float *mean, const float *std, int channels)
{
    LN_TRY(check_batch(t, "input"));
    if (t->shape[1] != channels) {
        char shape[96];
        return ln_error(LN_EINVAL, "%d means and stds for input %s with %lld channels", channels,
                        ln_tensor_shape_string(t, shape, sizeof shape), (long long)t->shape[1]);
    }
    for (int c = 0; c < channels; c++)
        if (!(std[c] > 0) || mean[c] != mean[c])
            return ln_error(LN_EINVAL, "channel %d: std must be positive and mean a number, got "
                            "mean %g, std %g", c + 1, mean[c], std[c]);
    normalize_job job = {ln_tensor_data(t), t->shape[1], t->shape[2] * t->shape[3], mean, std};
    for_each_image(t, t->shape[0], t->shape[1] * job.plane, normalize_image, &job);
    return LN_OK;
}
