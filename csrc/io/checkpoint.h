/* Checkpoints: lunet's file format for tensors and plain tables of them
 * (lunet.save / lunet.load). Data only: no code is ever stored or run.
 *
 * Layout, every integer little-endian:
 *   header (24 bytes)
 *     magic     8 bytes   "\x89LUNET\r\n" (the high byte and the line ending
 *                         catch 7-bit and text-mode transfers, as PNG's do)
 *     version   u32       1, or 2 when the body holds a reference (0x08);
 *                         a file without references is version 1, readable
 *                         by every lunet
 *     crc32     u32       zlib's CRC-32 of the body
 *     length    u64       bytes in the body
 *   body: exactly one value
 *     0x01 false | 0x02 true
 *     0x03 integer   i64
 *     0x04 number    f64 (IEEE 754 binary64)
 *     0x05 string    u32 length, the bytes
 *     0x06 table     u32 count, then count (key, value) pairs; keys are
 *                    strings or integers
 *     0x07 tensor    u8 dtype (0 float32, 1 int32, 2 uint8, 3 float16,
 *                    4 bfloat16), u8 ndim (0..8), ndim i64 sizes, u64 byte
 *                    count, then the elements in row-major order
 *     0x08 reference u32 n (version 2): the same table as the n-th table
 *                    of the file (0-based, counted where tables start),
 *                    which must be complete: a table shared by several
 *                    others is stored once, and a file can hold no cycle
 * Tables nest at most LN_CHECKPOINT_MAX_DEPTH deep.
 *
 * The reader trusts nothing: ln_checkpoint_parse checks every length, count,
 * size and tag against the buffer and the header, and reports the first
 * problem with its byte offset. It is the entry point for fuzzing. */
#ifndef LUNET_CHECKPOINT_H
#define LUNET_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"
#include "../dtype.h"

#define LN_CHECKPOINT_VERSION 2        /* the newest version read and written */
#define LN_CHECKPOINT_MAX_DEPTH 64
#define LN_CHECKPOINT_HEADER_BYTES 24

typedef enum ln_ckpt_kind {
    LN_CKPT_BOOLEAN = 1,
    LN_CKPT_INTEGER = 3,
    LN_CKPT_NUMBER = 4,
    LN_CKPT_STRING = 5,
    LN_CKPT_TABLE = 6,
    LN_CKPT_TENSOR = 7,
    LN_CKPT_REF = 8
} ln_ckpt_kind;

typedef struct ln_ckpt_entry ln_ckpt_entry;

/* A parsed value. Strings and tensor data point into the parsed buffer,
 * which must outlive the tree. */
typedef struct ln_ckpt_value {
    ln_ckpt_kind kind;
    union {
        int boolean;
        int64_t integer;
        double number;
        struct {
            const char *bytes;
            size_t length;
        } string;
        struct {
            ln_ckpt_entry *entries;
            uint32_t count;
            uint32_t id;       /* its number, in the order tables start */
        } table;
        struct {
            uint32_t id;       /* the table referred to, already complete */
        } ref;
        struct {
            ln_dtype dtype;
            int ndim;
            int64_t shape[LN_MAX_DIMS];
            const void *data; /* little-endian, possibly unaligned */
            uint64_t nbytes;
        } tensor;
    } as;
} ln_ckpt_value;

struct ln_ckpt_entry {
    ln_ckpt_value key; /* LN_CKPT_STRING or LN_CKPT_INTEGER */
    ln_ckpt_value value;
};

/* Parses a whole checkpoint from memory into a tree (*root, freed with
 * ln_checkpoint_free). LN_EFORMAT with a message on any inconsistency. */
int ln_checkpoint_parse(const void *buf, size_t len, ln_ckpt_value **root);
void ln_checkpoint_free(ln_ckpt_value *root);

/* Reads a checkpoint file into a new buffer (freed with free()): a regular
 * file only (a FIFO or a device is refused without blocking), its header
 * checked before the body is read, and the body read only as far as the
 * header promises and the file's size allows. Messages start with the path. */
int ln_checkpoint_read_file(const char *path, void **buf, size_t *len);

/* The writer streams values into a temporary file beside `path`; `path`
 * itself is replaced only by a successful commit, so a failed save never
 * damages an existing file. A `path` that exists and is not a regular file
 * (a device, a FIFO, a directory) is refused at open. A table is announced with its entry count, then
 * its keys and values follow alternately. Errors are sticky: after the first,
 * writes do nothing and commit reports it. */
typedef struct ln_checkpoint_writer ln_checkpoint_writer;

int ln_checkpoint_writer_open(ln_checkpoint_writer **w, const char *path);
void ln_checkpoint_write_boolean(ln_checkpoint_writer *w, int value);
void ln_checkpoint_write_integer(ln_checkpoint_writer *w, int64_t value);
void ln_checkpoint_write_number(ln_checkpoint_writer *w, double value);
void ln_checkpoint_write_string(ln_checkpoint_writer *w, const char *bytes, size_t length);
void ln_checkpoint_write_table(ln_checkpoint_writer *w, uint32_t count);
/* A reference to the `id`-th table written (0-based), which must be complete. */
void ln_checkpoint_write_ref(ln_checkpoint_writer *w, uint32_t id);
/* The first error so far (LN_OK if none): a walk stops at the first. */
int ln_checkpoint_writer_status(const ln_checkpoint_writer *w);
/* `data`: the elements in row-major order, in host memory. */
void ln_checkpoint_write_tensor(ln_checkpoint_writer *w, ln_dtype dtype, int ndim,
                                const int64_t *shape, const void *data);
/* Completes the header, syncs the file and renames it over `path`. */
int ln_checkpoint_writer_commit(ln_checkpoint_writer *w);
/* Frees the writer, removing the temporary file unless it was committed. */
void ln_checkpoint_writer_close(ln_checkpoint_writer *w);

#endif
