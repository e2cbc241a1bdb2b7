/* Error messages of the CUDA backend.
 *
 * cuda.so cannot link against the core, so messages go through the host API
 * the core handed over in attach (its ln_error). Each names the backend op, the
 * library call, its status and where in our source it failed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "context.h"

static const ln_host_api *host_api;
/* A copy of the last message, for lua_cuda.c (the core's is out of reach). */
static _Thread_local char last_message[1024];

void ln_cuda_set_host(const ln_host_api *host)
{
    host_api = host;
}

const ln_backend *ln_cuda_reference(void)
{
    return host_api ? host_api->reference : NULL;
}

int ln_cuda_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    if (host_api && host_api->error)
        return host_api->error(code, "%s", last_message);
    return code;
}

const char *ln_cuda_last_error(void)
{
    return last_message[0] ? last_message : "unknown error";
}

/* "ln_cuda_conv2d_forward" -> "conv2d_forward": the op as the vtable names it. */
static const char *op_name(const char *func)
{
    return strncmp(func, "ln_cuda_", 8) == 0 ? func + 8 : func;
}

/* "cudnnConvolutionForward(ctx->cudnn, ...)" -> "cudnnConvolutionForward" */
static const char *call_name(const char *call, char *buf, size_t len)
{
    size_t n = 0;
    while (*call == ' ' || *call == '(')
        call++;
    while (call[n] && call[n] != '(' && n + 1 < len)
        n++;
    memcpy(buf, call, n);
    buf[n] = '\0';
    return buf;
}

/* "/home/me/lunet/cuda/conv.c" -> "cuda/conv.c" */
static const char *short_file(const char *file)
{
    const char *best = file;
    for (const char *p = strstr(file, "cuda/"); p; p = strstr(p + 1, "cuda/"))
        if (p == file || p[-1] == '/')
            best = p;
    return best;
}

int ln_cuda_fail_cuda(cudaError_t e, const char *func, const char *call, const char *file,
                      int line)
{
    char name[128];
    /* Reset the runtime's last error, so that a recoverable failure (out of
     * memory) is not reported again by the next launch check. Sticky errors
     * (a fault inside a kernel) stay, and every later call reports them. */
    (void)cudaGetLastError();
    int code = e == cudaErrorMemoryAllocation ? LN_ENOMEM : LN_EDEVICE;
    return ln_cuda_error(code, "%s: %s: %s: %s (%s:%d)", op_name(func),
                         call_name(call, name, sizeof name), cudaGetErrorName(e),
                         cudaGetErrorString(e), short_file(file), line);
}

int ln_cuda_fail_cublas(cublasStatus_t s, const char *func, const char *call,
                        const char *file, int line)
{
    char name[128];
    int code = s == CUBLAS_STATUS_ALLOC_FAILED ? LN_ENOMEM : LN_EDEVICE;
    return ln_cuda_error(code, "%s: %s: %s (%s:%d)", op_name(func),
                         call_name(call, name, sizeof name), cublasGetStatusName(s),
                         short_file(file), line);
}

int ln_cuda_fail_cudnn(cudnnStatus_t s, const char *func, const char *call,
                       const char *file, int line)
{
    char name[128];
    int code = s == CUDNN_STATUS_ALLOC_FAILED ? LN_ENOMEM : LN_EDEVICE;
    return ln_cuda_error(code, "%s: %s: %s (%s:%d)", op_name(func),
                         call_name(call, name, sizeof name), cudnnGetErrorString(s),
                         short_file(file), line);
}

int ln_cuda_unsupported_dtype(const char *func, ln_dtype dtype)
{
    return ln_cuda_error(LN_ENOTSUP, "%s of %s tensors is not supported on CUDA; "
                         "convert with t:to(\"float32\") first", op_name(func),
                         ln_dtype_name(dtype));
}
