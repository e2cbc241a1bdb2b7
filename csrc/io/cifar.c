#include "cifar.h"

#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "read_file.h"

/* CIFAR-10's batches hold 10,000 records (30.7 MB); allow a few times more. */
#define LN_CIFAR_MAX_BYTES ((size_t)1 << 30) /* named in README.md, "Limits" */

static int check_length(uint64_t len)
{
    if (len == 0)
        return ln_error(LN_EFORMAT, "empty file: a CIFAR-10 batch holds records of "
                        "%d bytes", LN_CIFAR_RECORD_BYTES);
    if (len % LN_CIFAR_RECORD_BYTES != 0)
        return ln_error(LN_EFORMAT, "%llu bytes is not a whole number of %d-byte CIFAR-10 "
                        "records (truncated or not a CIFAR-10 binary batch)",
                        (unsigned long long)len, LN_CIFAR_RECORD_BYTES);
    return LN_OK;
}

/* Records first..first+n-1 of `b` (record `first` at b[0]) have labels 0..9. */
static int check_labels(const uint8_t *b, int64_t first, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        uint8_t label = b[i * LN_CIFAR_RECORD_BYTES];
        if (label >= LN_CIFAR_CLASSES)
            return ln_error(LN_EFORMAT, "record %lld has label %d, outside 0..%d (damaged, "
                            "or the CIFAR-100 format)", (long long)(first + i) + 1, label,
                            LN_CIFAR_CLASSES - 1);
    }
    return LN_OK;
}

int ln_cifar_parse(const void *buf, size_t len, int64_t *count)
{
    *count = 0;
    LN_TRY(check_length(len));
    int64_t n = (int64_t)(len / LN_CIFAR_RECORD_BYTES);
    LN_TRY(check_labels(buf, 0, n));
    *count = n;
    return LN_OK;
}

void ln_cifar_decode(const void *buf, int64_t count, uint8_t *images, int32_t *labels)
{
    const uint8_t *b = buf;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *record = b + i * LN_CIFAR_RECORD_BYTES;
        labels[i] = (int32_t)record[0] + 1;
        memcpy(images + i * LN_CIFAR_IMAGE_BYTES, record + 1, LN_CIFAR_IMAGE_BYTES);
    }
}

/* A raw file's length is checked before a byte is read; the records are
 * then read in pieces and their labels checked as they arrive, so a damaged
 * or foreign file fails at its first bad record, not after being read whole,
 * and memory grows only with data that was really there. */
#define RECORDS_PER_PIECE 1024

static int read_cifar(ln_data_file *f, ln_cifar_file *out)
{
    if (!f->compressed) {
        if (f->size > LN_CIFAR_MAX_BYTES)
            return ln_error(LN_EFORMAT, "%llu bytes, more than the largest CIFAR-10 file "
                            "lunet reads (%llu bytes)", (unsigned long long)f->size,
                            (unsigned long long)LN_CIFAR_MAX_BYTES);
        LN_TRY(check_length(f->size));
    }
    const size_t piece = (size_t)RECORDS_PER_PIECE * LN_CIFAR_RECORD_BYTES;
    size_t used = 0, cap = 0;
    uint8_t *buf = NULL;
    for (;;) {
        if (cap - used < piece) {
            if (cap >= LN_CIFAR_MAX_BYTES)
                return ln_error(LN_EFORMAT, "more than %llu bytes of data, the largest "
                                "CIFAR-10 file lunet reads", (unsigned long long)LN_CIFAR_MAX_BYTES);
            size_t grown = cap ? cap * 2 : piece;
            if (grown > LN_CIFAR_MAX_BYTES + piece)
                grown = LN_CIFAR_MAX_BYTES + piece;
            uint8_t *bigger = realloc(buf, grown);
            if (!bigger)
                return ln_error(LN_ENOMEM, "out of host memory");
            out->buffer = buf = bigger;
            cap = grown;
        }
        size_t got;
        LN_TRY(ln_data_file_read(f, buf + used, piece, &got));
        /* the whole records that arrived, checked now */
        size_t whole_before = used / LN_CIFAR_RECORD_BYTES;
        used += got;
        size_t whole_now = used / LN_CIFAR_RECORD_BYTES;
        LN_TRY(check_labels(buf + whole_before * LN_CIFAR_RECORD_BYTES,
                            (int64_t)whole_before, (int64_t)(whole_now - whole_before)));
        if (got < piece)
            break; /* the end of the data */
    }
    return ln_cifar_parse(buf, used, &out->count);
}

int ln_cifar_read_file(const char *path, ln_cifar_file *out)
{
    memset(out, 0, sizeof *out);
    ln_data_file f;
    LN_TRY(ln_data_file_open(path, &f));
    int st = read_cifar(&f, out);
    ln_data_file_close(&f);
    if (st != LN_OK) {
        ln_error_prefix(path);
        ln_cifar_file_free(out);
    }
    return st;
}

void ln_cifar_file_free(ln_cifar_file *f)
{
    free(f->buffer);
    memset(f, 0, sizeof *f);
}
