/* Status codes and the error message that goes with them.
 *
 * Every core function that can fail returns an ln_status; on failure it has
 * written a message with ln_error() that the Lua binding turns into a Lua
 * error. The message says which function failed and why, with the shapes. */
#ifndef LUNET_STATUS_H
#define LUNET_STATUS_H

#include <stddef.h>

typedef enum ln_status {
    LN_OK = 0,
    LN_EINVAL = -1,   /* bad argument: wrong shape, dtype, range */
    LN_ENOMEM = -2,   /* allocation failed (host or device) */
    LN_EDEVICE = -3,  /* a device, driver or library call failed */
    LN_EIO = -4,      /* a file could not be read or written */
    LN_EFORMAT = -5,  /* a file is damaged or not what it claims to be */
    LN_ENOTSUP = -6,  /* the operation does not exist on this device/dtype */
    LN_EFREED = -7    /* use of a released tensor */
} ln_status;

#if defined(__GNUC__)
#define LN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LN_PRINTF(f, a)
#endif

/* Formats the message for the current thread and returns `code`, so callers
 * can write `return ln_error(LN_EINVAL, "...", ...)`. */
int ln_error(int code, const char *fmt, ...) LN_PRINTF(2, 3);

/* Prefixes the current message with "context: " (to name the Lua function). */
void ln_error_prefix(const char *context);

const char *ln_last_error(void);
const char *ln_status_name(int code);

/* Formats a shape as "[64, 1, 28, 28]" into buf; returns buf. */
#include <stdint.h>
char *ln_format_shape(char *buf, size_t len, int ndim, const int64_t *shape);

#define LN_TRY(expr)                          \
    do {                                      \
        int ln_try_status_ = (expr);          \
        if (ln_try_status_ != LN_OK)          \
            return ln_try_status_;            \
    } while (0)

#endif
