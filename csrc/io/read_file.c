#include "read_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../status.h"

/* "a named pipe", "a directory", ... for messages about what a path is. */
static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a named pipe (FIFO)";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    return "not a regular file";
}

const char *ln_file_kind(const char *path)
{
    struct stat info;
    if (stat(path, &info) != 0)
        return NULL;
    if (S_ISREG(info.st_mode))
        return "file";
    if (S_ISDIR(info.st_mode))
        return "directory";
    if (S_ISFIFO(info.st_mode))
        return "fifo";
    if (S_ISCHR(info.st_mode) || S_ISBLK(info.st_mode))
        return "device";
    if (S_ISSOCK(info.st_mode))
        return "socket";
    return "other";
}

int ln_open_regular_file(const char *path, int *fd_out, uint64_t *size)
{
    *fd_out = -1;
    *size = 0;
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
     * writer; fstat then tells what was opened before anything is read */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int err = errno;
        if (err == EISDIR)
            return ln_error(LN_EIO, "'%s' is not a regular file: it is a directory", path);
        return ln_error(LN_EIO, "cannot open '%s': %s", path, strerror(err));
    }
    struct stat info;
    if (fstat(fd, &info) != 0) {
        int err = errno;
        close(fd);
        return ln_error(LN_EIO, "cannot open '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(info.st_mode)) {
        close(fd);
        return ln_error(LN_EIO, "'%s' is not a regular file: it is %s (lunet reads only "
                        "regular files)", path, file_kind(info.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    *fd_out = fd;
    *size = info.st_size > 0 ? (uint64_t)info.st_size : 0;
    return LN_OK;
}

int ln_check_writable_path(const char *path, const char *what)
{
    struct stat info;
    if (stat(path, &info) != 0)
        return LN_OK; /* missing (or unreadable): creating it reports the problem */
    if (!S_ISREG(info.st_mode))
        return ln_error(LN_EIO, "cannot write '%s': it is %s, and %s replaces only "
                        "regular files", path, file_kind(info.st_mode), what);
    return LN_OK;
}

int ln_data_file_open(const char *path, ln_data_file *f)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd;
    LN_TRY(ln_open_regular_file(path, &fd, &f->size));
    errno = 0;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        int err = errno;
        close(fd);
        return ln_error(LN_EIO, "%s: cannot open: %s", path,
                        err ? strerror(err) : "out of memory");
    }
    gzbuffer(gz, 1 << 17);
    f->gz = gz;
    f->compressed = !gzdirect(gz);
    return LN_OK;
}

uint64_t ln_data_file_max_bytes(const ln_data_file *f)
{
    if (!f->compressed)
        return f->size;
    return f->size > UINT64_MAX / 1032 ? UINT64_MAX : f->size * 1032 + 1024;
}

int ln_data_file_read(ln_data_file *f, void *buf, size_t n, size_t *got)
{
    unsigned char *p = buf;
    *got = 0;
    while (*got < n) {
        size_t want = n - *got;
        if (want > (1u << 30))
            want = 1u << 30; /* gzread counts in unsigned int */
        int r = gzread(f->gz, p + *got, (unsigned)want);
        if (r < 0) {
            int zerr = Z_OK;
            const char *msg = gzerror(f->gz, &zerr);
            return ln_error(zerr == Z_ERRNO ? LN_EIO : LN_EFORMAT, "%s: cannot read (%s): %s",
                            f->path, zerr == Z_ERRNO ? "i/o error" : "damaged gzip data",
                            zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    if (*got < n) {
        /* gzread returns what it could before a truncated gzip stream ends;
         * the error shows in gzerror (Z_BUF_ERROR) */
        int zerr = Z_OK;
        gzerror(f->gz, &zerr);
        if (zerr != Z_OK)
            return ln_error(LN_EFORMAT, "%s: the gzip data is truncated or damaged", f->path);
    }
    return LN_OK;
}

int ln_data_file_read_rest(ln_data_file *f, const void *prefix, size_t prefix_len,
                           uint64_t n, const char *what, void **out)
{
    *out = NULL;
    if (n > SIZE_MAX - prefix_len - 1)
        return ln_error(LN_EFORMAT, "%s: %s of %llu bytes is too large for this machine",
                        f->path, what, (unsigned long long)n);
    size_t total = prefix_len + (size_t)n;
    /* grow as the data arrives, so a header that promises more than the file
     * holds costs no more memory than the file does */
    size_t cap = total < ((size_t)1 << 24) ? total : ((size_t)1 << 24);
    unsigned char *buf = malloc(cap ? cap : 1);
    if (!buf)
        return ln_error(LN_ENOMEM, "%s: out of host memory", f->path);
    memcpy(buf, prefix, prefix_len);
    size_t used = prefix_len;
    while (used < total) {
        if (used == cap) {
            size_t grown = cap > total / 2 ? total : cap * 2;
            unsigned char *bigger = realloc(buf, grown);
            if (!bigger) {
                free(buf);
                return ln_error(LN_ENOMEM, "%s: out of host memory", f->path);
            }
            buf = bigger;
            cap = grown;
        }
        size_t want = cap - used, got;
        int st = ln_data_file_read(f, buf + used, want, &got);
        if (st != LN_OK) {
            free(buf);
            return st;
        }
        used += got;
        if (got < want)
            break; /* the end of the data */
    }
    if (used < total) {
        free(buf);
        return ln_error(LN_EFORMAT, "%s: truncated: %s needs %llu bytes, the file holds %zu",
                        f->path, what, (unsigned long long)n, used - prefix_len);
    }
    unsigned char extra;
    size_t got;
    int st = ln_data_file_read(f, &extra, 1, &got);
    if (st == LN_OK && got != 0)
        st = ln_error(LN_EFORMAT, "%s: trailing bytes after the %llu bytes of %s", f->path,
                      (unsigned long long)n, what);
    if (st != LN_OK) {
        free(buf);
        return st;
    }
    *out = buf;
    return LN_OK;
}

void ln_data_file_close(ln_data_file *f)
{
    if (f->gz)
        gzclose_r(f->gz);
    f->gz = NULL;
}

int ln_read_file(const char *path, size_t max_bytes, void **data, size_t *len)
{
    *data = NULL;
    *len = 0;
    ln_data_file f;
    LN_TRY(ln_data_file_open(path, &f));

    size_t cap = 1 << 20, used = 0;
    unsigned char *buf = malloc(cap);
    int st = buf ? LN_OK : ln_error(LN_ENOMEM, "%s: out of host memory", path);
    while (st == LN_OK) {
        if (used == cap) {
            if (cap >= max_bytes) {
                st = ln_error(LN_EFORMAT, "%s: more data than any valid file of this kind "
                              "holds (damaged file? at most %zu bytes)", path, max_bytes);
                break;
            }
            size_t grown = cap > max_bytes / 2 ? max_bytes : cap * 2;
            unsigned char *bigger = realloc(buf, grown);
            if (!bigger) {
                st = ln_error(LN_ENOMEM, "%s: out of host memory", path);
                break;
            }
            buf = bigger;
            cap = grown;
        }
        size_t got;
        st = ln_data_file_read(&f, buf + used, cap - used, &got);
        if (st != LN_OK)
            break;
        used += got;
        if (used < cap)
            break; /* the end of the data */
    }
    ln_data_file_close(&f);
    if (st != LN_OK) {
        free(buf);
        return st;
    }
    *data = buf;
    *len = used;
    return LN_OK;
}
