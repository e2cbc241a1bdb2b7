#include "read_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../status.h"

static int fail_read(gzFile f, const char *path, void *buf, int code,
                     const char *what)
{
    free(buf);
    gzclose_r(f);
    return ln_error(code, "%s: %s", path, what);
}

int ln_read_file(const char *path, size_t max_bytes, void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return ln_error(LN_EIO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1 << 17);

    size_t cap = 1 << 20, used = 0;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return fail_read(f, path, NULL, LN_ENOMEM, "out of host memory");
    for (;;) {
        if (used == cap) {
            if (cap >= max_bytes)
                return fail_read(f, path, buf, LN_EFORMAT,
                                 "more data than any valid file of this kind holds "
                                 "(damaged file?)");
            size_t grown = cap > max_bytes / 2 ? max_bytes : cap * 2;
            unsigned char *bigger = realloc(buf, grown);
            if (!bigger)
                return fail_read(f, path, buf, LN_ENOMEM, "out of host memory");
            buf = bigger;
            cap = grown;
        }
        size_t want = cap - used;
        if (want > (1u << 30))
            want = 1u << 30; /* gzread counts in unsigned int */
        int got = gzread(f, buf + used, (unsigned)want);
        if (got < 0) {
            int zerr = Z_OK;
            const char *msg = gzerror(f, &zerr);
            char what[256];
            snprintf(what, sizeof what, "cannot read (%s): %s",
                     zerr == Z_ERRNO ? "i/o error" : "damaged gzip data",
                     zerr == Z_ERRNO ? strerror(errno) : msg);
            return fail_read(f, path, buf, zerr == Z_ERRNO ? LN_EIO : LN_EFORMAT, what);
        }
        if (got == 0)
            break;
        used += (size_t)got;
    }
    /* gzread returns what it could before a truncated gzip stream ends; the
     * error shows in gzerror (Z_BUF_ERROR) and in gzclose_r's result. */
    int zerr = Z_OK;
    gzerror(f, &zerr);
    int closed = gzclose_r(f);
    if (zerr != Z_OK || closed != Z_OK) {
        free(buf);
        return ln_error(LN_EFORMAT, "%s: the gzip data is truncated or damaged "
                        "(%zu bytes could be read)", path, used);
    }
    *data = buf;
    *len = used;
    return LN_OK;
}
