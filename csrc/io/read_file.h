/* Opening and reading data files, gzipped or raw.
 *
 * zlib's gzread reads gzip-compressed files and passes plain files through
 * unchanged, so the dataset readers accept either without being told which.
 * Only regular files are read: a named pipe, a device or a directory is
 * refused at open, without blocking (the file is opened with O_NONBLOCK and
 * checked with fstat before any read), so "/dev/zero" or a FIFO can neither
 * hang a reader nor feed it endless bytes. */
#ifndef LUNET_IO_READ_FILE_H
#define LUNET_IO_READ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Opens `path` read-only, without blocking, and refuses anything that is
 * not a regular file (LN_EIO naming what it is). On success *fd is an open
 * descriptor in blocking mode and *size the file's size in bytes. */
int ln_open_regular_file(const char *path, int *fd, uint64_t *size);

/* Refuses to write `path` when it exists and is not a regular file: saving
 * over /dev/null, a FIFO or a directory must not replace it (renaming a new
 * file over a device would, when run as root). A path that does not exist
 * yet is fine. Never blocks. */
int ln_check_writable_path(const char *path, const char *what);

/* What `path` is, without opening it (so without blocking): "file",
 * "directory", "fifo", "device", "socket" or "other"; NULL when it does not
 * exist or cannot be examined (errno says why). Symbolic links are followed. */
const char *ln_file_kind(const char *path);

/* A data file being read, gzipped or raw. */
typedef struct ln_data_file {
    void *gz;              /* gzFile */
    const char *path;      /* for messages; borrowed from the caller */
    uint64_t size;         /* bytes on disk (compressed size for gzip) */
    int compressed;        /* gzip data (the decompressed size is unknown) */
} ln_data_file;

/* Opens `path` for ln_data_file_read; every message starts with the path. */
int ln_data_file_open(const char *path, ln_data_file *f);

/* Reads up to `n` bytes into `buf`; *got < n only at the end of the data.
 * A corrupt or truncated gzip stream is LN_EFORMAT, an i/o error LN_EIO. */
int ln_data_file_read(ln_data_file *f, void *buf, size_t n, size_t *got);

/* Reads exactly `n` more bytes into a buffer that grows as data arrives (a
 * header's promise is not trusted with memory before the data is there);
 * fewer is LN_EFORMAT naming `what`. Then the data must end: trailing bytes
 * are LN_EFORMAT too. *out (freed by the caller) holds `prefix_len` bytes of
 * `prefix` followed by the data. */
int ln_data_file_read_rest(ln_data_file *f, const void *prefix, size_t prefix_len,
                           uint64_t n, const char *what, void **out);

/* The most decompressed bytes `f` can hold: deflate expands at most 1032:1,
 * so a header promising more than that of a small gzip file is a lie that
 * can be refused before reading. */
uint64_t ln_data_file_max_bytes(const ln_data_file *f);

void ln_data_file_close(ln_data_file *f);

/* Reads `path` (decompressing gzip transparently) into a new malloc'd buffer
 * that the caller frees. Refuses to grow past `max_bytes` of decompressed
 * data (a damaged or hostile file must not exhaust memory). A missing file is
 * LN_EIO; a truncated or corrupt gzip stream is LN_EFORMAT. Every message
 * starts with the path. */
int ln_read_file(const char *path, size_t max_bytes, void **data, size_t *len);

#endif
