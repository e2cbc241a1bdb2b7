/* The CPU backend: OpenBLAS (single-threaded) for matrix products, our own
 * kernels for the rest, all threaded by our pool (threads.c), and the
 * reference kernels for whatever has no fast path yet. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../device.h"
#include "../host_memory.h"
#include "../ops_ref.h"
#include "../status.h"
#include "cpu.h"

void *ln_cpu_scratch(ln_cpu_context *ctx, size_t nbytes)
{
    if (nbytes <= ctx->scratch_bytes)
        return ctx->scratch;
    void *p = NULL;
    if (ln_host_alloc(NULL, nbytes, &p) != LN_OK)
        return NULL;
    ln_host_free(NULL, ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_bytes = nbytes;
    return p;
}

static int cpu_device_count(int *count, char *reason, size_t len)
{
    (void)reason;
    (void)len;
    *count = 1;
    return LN_OK;
}

/* OPENBLAS_NUM_THREADS or OMP_NUM_THREADS when set (the variables users
 * already know), else one thread per core. */
static int default_threads(void)
{
    const char *names[2] = {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"};
    for (int i = 0; i < 2; i++) {
        const char *v = getenv(names[i]);
        if (v && atoi(v) > 0)
            return atoi(v);
    }
    return ln_host_cpu_cores();
}

static int cpu_open(int index, void **out)
{
    (void)index;
    ln_cpu_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ln_error(LN_ENOMEM, "out of host memory opening the cpu device");
    ctx->conv_workspace_bytes = (size_t)256 << 20;
    const char *mb = getenv("LUNET_CPU_WORKSPACE_MB");
    if (mb && atol(mb) > 0)
        ctx->conv_workspace_bytes = (size_t)atol(mb) << 20;
    const char *winograd = getenv("LUNET_CPU_WINOGRAD");
    ctx->winograd = !winograd ? 1 : strcmp(winograd, "0") == 0 ? 0 : strcmp(winograd, "2") == 0 ? 2 : 1;
    const char *gemm = getenv("LUNET_CPU_GEMM");
    ctx->own_gemm = !(gemm && strcmp(gemm, "blas") == 0);
    ctx->threads = default_threads();
    /* the instruction-set level: cpuid's best, or $LUNET_CPU_LEVEL's (dispatch.c) */
    int st = ln_cpu_select_level(ctx, getenv("LUNET_CPU_LEVEL"));
    if (st != LN_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", ln_last_error());
        free(ctx);
        return ln_error(st, "opening the cpu device: $LUNET_CPU_LEVEL: %s", why);
    }
    /* our loops are threaded, OpenBLAS runs single-threaded inside them (gemm.c) */
    openblas_set_num_threads(1);
    st = ln_cpu_pool_open(ctx);
    if (st != LN_OK) {
        free(ctx);
        return st;
    }
    *out = ctx;
    return LN_OK;
}

static void cpu_close(void *vctx)
{
    ln_cpu_context *ctx = vctx;
    ln_cpu_pool_close(ctx);
    ln_host_free(NULL, ctx->scratch);
    for (int i = 0; i < LN_CPU_FILTER_SLOTS; i++)
        free(ctx->filter_slots[i].data);
    free(ctx->dropped_winners);
    free(ctx);
}

static int cpu_info(void *vctx, ln_device_info *out)
{
    ln_cpu_context *ctx = vctx;
    memset(out, 0, sizeof *out);
    ln_host_cpu_name(out->name, sizeof out->name);
    out->cores = ln_host_cpu_cores();
    out->threads = ctx->threads;
    snprintf(out->blas, sizeof out->blas, "%s", openblas_get_config());
    /* the level's name first: scripts read it as the word before any comma */
    snprintf(out->kernels, sizeof out->kernels, "%s%s", ctx->kernels->name,
             ctx->winograd && strcmp(ctx->kernels->name, "portable") != 0 ? ", winograd" : "");
    return LN_OK;
}

static int cpu_set_num_threads(void *vctx, int n)
{
    ln_cpu_context *ctx = vctx;
    ctx->threads = n; /* OpenBLAS stays single-threaded: see gemm.c */
    return LN_OK;
}

const ln_backend ln_cpu_backend = {
    .abi = LN_BACKEND_ABI,
    .name = "cpu",
    .device_count = cpu_device_count,
    .open = cpu_open,
    .close = cpu_close,
    .info = cpu_info,
    .set_num_threads = cpu_set_num_threads,
    .alloc = ln_host_alloc,
    .free = ln_host_free,
    .upload = ln_host_upload,
    .download = ln_host_download,
    .copy = ln_cpu_copy,
    .fill = ln_cpu_fill,
    .binary = ln_cpu_binary,
    .binary_scalar = ln_cpu_binary_scalar,
    .reduce = ln_cpu_reduce,
    .argmax = ln_ref_argmax,
    .unary = ln_cpu_unary,
    .unary_backward = ln_cpu_unary_backward,
    .softmax = ln_cpu_softmax,
    .softmax_backward = ln_cpu_softmax_backward,
    .reduce_dim = ln_cpu_reduce_dim,
    .gemm = ln_cpu_gemm,
    .rand_uniform = ln_ref_rand_uniform,
    .rand_normal = ln_ref_rand_normal,
    .gather_rows = ln_cpu_gather_rows,
    .conv2d_forward = ln_cpu_conv2d_forward,
    .conv2d_backward_data = ln_cpu_conv2d_backward_data,
    .conv2d_backward_filter = ln_cpu_conv2d_backward_filter,
    .pool2d_forward = ln_cpu_pool2d_forward,
    .pool2d_backward = ln_cpu_pool2d_backward,
    .relu_forward = ln_cpu_relu_forward,
    .relu_backward = ln_cpu_relu_backward,
    .bias_add = ln_cpu_bias_add,
    .bias_backward = ln_cpu_bias_backward,
    .dropout_forward = ln_cpu_dropout_forward,
    .batchnorm_forward_train = ln_cpu_batchnorm_forward_train,
    .batchnorm_forward_eval = ln_cpu_batchnorm_forward_eval,
    .batchnorm_backward = ln_cpu_batchnorm_backward,
    /* the reference's, in double: a batch of logits is small next to the layers before it */
    .cross_entropy_forward = ln_ref_cross_entropy_forward,
    .cross_entropy_backward = ln_ref_cross_entropy_backward,
    .sgd_step = ln_cpu_sgd_step,
    .adam_step = ln_cpu_adam_step,
    .conv2d_relu_maxpool2x2_forward = ln_cpu_conv2d_relu_maxpool2x2_forward,
    .conv2d_relu_maxpool2x2_backward = ln_cpu_conv2d_relu_maxpool2x2_backward,
};
