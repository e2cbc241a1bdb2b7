/* IDX files, the format of MNIST and Fashion-MNIST.
 *
 * Layout (big-endian): two zero bytes, a type byte (0x08 = unsigned byte),
 * a byte with the number of dimensions, one 32-bit size per dimension, then
 * the data in row-major order. Only unsigned-byte data is accepted: it is
 * what the image and label files hold. */
#ifndef LUNET_IO_IDX_H
#define LUNET_IO_IDX_H

#include <stddef.h>
#include <stdint.h>

#define LN_IDX_MAX_DIMS 8
#define LN_IDX_UBYTE 0x08

typedef struct ln_idx {
    int ndim;
    int64_t dims[LN_IDX_MAX_DIMS];
    int64_t count;             /* product of dims: the number of data bytes */
    const uint8_t *data;       /* points into the parsed buffer */
} ln_idx;

/* Parses and validates an IDX file held in memory: the magic, the type, the
 * number of dimensions, sizes that are not zero, and a length that is exactly
 * header + data (a truncated file or trailing bytes are errors). On success
 * `out->data` points into `buf`. Never reads outside [buf, buf + len). */
int ln_idx_parse(const void *buf, size_t len, ln_idx *out);

/* An IDX file read from disk (gzipped or raw); `buffer` owns the bytes. */
typedef struct ln_idx_file {
    ln_idx idx;
    void *buffer;
} ln_idx_file;

/* Reads and parses `path`; every error message starts with the path. */
int ln_idx_read_file(const char *path, ln_idx_file *out);
void ln_idx_file_free(ln_idx_file *f);

#endif
