#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: Lua states are single-threaded, but the CPU kernels
 * run on worker threads and must never clobber the caller's message. */
static _Thread_local char last_message[1024];

int ln_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return code;
}

void ln_error_prefix(const char *context)
{
    char copy[sizeof last_message];
    size_t n = strlen(context);
    if (n == 0 || strncmp(last_message, context, n) == 0)
        return; /* already says where it came from */
    memcpy(copy, last_message, sizeof copy);
    /* "context: message", cut to fit */
    size_t used = 0;
    for (const char *parts[3] = {context, ": ", copy}, **p = parts; p < parts + 3; p++) {
        size_t len = strlen(*p);
        if (len > sizeof last_message - 1 - used)
            len = sizeof last_message - 1 - used;
        memcpy(last_message + used, *p, len);
        used += len;
    }
    last_message[used] = '\0';
}

const char *ln_last_error(void)
{
    return last_message[0] ? last_message : "unknown error";
}

const char *ln_status_name(int code)
{
    switch (code) {
    case LN_OK: return "ok";
    case LN_EINVAL: return "invalid argument";
    case LN_ENOMEM: return "out of memory";
    case LN_EDEVICE: return "device error";
    case LN_EIO: return "i/o error";
    case LN_EFORMAT: return "bad file format";
    case LN_ENOTSUP: return "not supported";
    case LN_EFREED: return "tensor was freed";
    default: return "unknown status";
    }
}

char *ln_format_shape(char *buf, size_t len, int ndim, const int64_t *shape)
{
    size_t used = 0;
    if (len == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf + used, len - used, "[");
    for (int i = 0; i < ndim && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %lld" : "%lld",
                                 (long long)shape[i]);
    if (used < len)
        snprintf(buf + used, len - used, "]");
    return buf;
}
