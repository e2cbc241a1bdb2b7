#include "augment.h"

#include "augment_image.h"
#include "cpu/cpu.h"
#include "device.h"
#include "status.h"

/* Whether dev runs the augmentations: host memory (this file's loops),
 * or a backend with the three optional slots (CUDA's kernels, when switched on). */
int ln_augment_on_device(const ln_device *dev)
{
    const ln_backend *b = dev->backend;
    return dev->host_memory
           || (b->augment_random_crop && b->augment_random_hflip && b->augment_normalize);
}

/* A float32 {N, C, H, W} contiguous batch on a device that augments, else an error. */
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
    if (!ln_augment_on_device(ln_tensor_device(t)))
        return ln_error(LN_ENOTSUP, "%s is on %s: augmentation runs on host tensors (cpu, ref)%s",
                        what, ln_tensor_device(t)->name,
                        ln_tensor_device(t)->type == LN_DEVICE_CUDA
                            ? "; CUDA's kernels are off until run on a GPU "
                              "(LUNET_CUDA_UNVERIFIED_KERNELS=1 turns them on)"
                            : "");
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
    ln_augment_geometry g;
    uint64_t seed, counter;
} crop_job;

static void crop_image(void *arg, int64_t i, int thread)
{
    (void)thread;
    const crop_job *j = arg;
    ln_augment_crop_image(&j->g, j->out, j->in, i, j->seed, j->counter);
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
    ln_augment_geometry g = {in->shape[1], in->shape[2], in->shape[3], out->shape[2],
                             out->shape[3], padding, (int)range_y, (int)range_x};
    ln_device *dev = ln_tensor_device(in);
    if (!dev->host_memory)
        return LN_CALL(dev, augment_random_crop, out->shape[0], &g, seed, counter,
                       ln_tensor_data(in), ln_tensor_data(out));
    crop_job job = {ln_tensor_data(out), ln_tensor_data(in), g, seed, counter};
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
    ln_augment_flip_image(j->data, j->c, j->h, j->w, i, j->p, j->seed, j->counter);
}

int ln_augment_random_hflip(ln_tensor *t, double p, uint64_t seed, uint64_t counter)
{
    LN_TRY(check_batch(t, "input"));
    if (!(p >= 0 && p <= 1))
        return ln_error(LN_EINVAL, "p must be a probability in [0, 1], got %g", p);
    ln_device *dev = ln_tensor_device(t);
    if (!dev->host_memory)
        return LN_CALL(dev, augment_random_hflip, t->shape[0], t->shape[1], t->shape[2],
                       t->shape[3], p, seed, counter, ln_tensor_data(t));
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
    ln_augment_normalize_image(j->data, j->c, j->plane, i, j->mean, j->std);
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
    ln_device *dev = ln_tensor_device(t);
    if (!dev->host_memory)
        return LN_CALL(dev, augment_normalize, t->shape[0], t->shape[1],
                       t->shape[2] * t->shape[3], mean, std, ln_tensor_data(t));
    normalize_job job = {ln_tensor_data(t), t->shape[1], t->shape[2] * t->shape[3], mean, std};
    for_each_image(t, t->shape[0], t->shape[1] * job.plane, normalize_image, &job);
    return LN_OK;
}
