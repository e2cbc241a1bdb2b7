#include "cifar.h"

#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "read_file.h"

/* CIFAR-10's batches hold 10,000 records (30.7 MB); allow a few times more. */
#define LN_CIFAR_MAX_BYTES ((size_t)1 << 30)

int ln_cifar_parse(const void *buf, size_t len, int64_t *count)
{
    const uint8_t *b = buf;
    *count = 0;
    if (len == 0)
        return ln_error(LN_EFORMAT, "empty file: a CIFAR-10 batch holds records of "
                        "%d bytes", LN_CIFAR_RECORD_BYTES);
    if (len % LN_CIFAR_RECORD_BYTES != 0)
        return ln_error(LN_EFORMAT, "%zu bytes is not a whole number of %d-byte CIFAR-10 "
                        "records (truncated or not a CIFAR-10 binary batch)", len,
                        LN_CIFAR_RECORD_BYTES);
    int64_t n = (int64_t)(len / LN_CIFAR_RECORD_BYTES);
    for (int64_t i = 0; i < n; i++) {
        uint8_t label = b[i * LN_CIFAR_RECORD_BYTES];
        if (label >= LN_CIFAR_CLASSES)
            return ln_error(LN_EFORMAT, "record %lld has label %d, outside 0..%d (damaged, "
                            "or the CIFAR-100 format)", (long long)i + 1, label,
                            LN_CIFAR_CLASSES - 1);
    }
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

int ln_cifar_read_file(const char *path, ln_cifar_file *out)
{
    size_t len = 0;
    memset(out, 0, sizeof *out);
    LN_TRY(ln_read_file(path, LN_CIFAR_MAX_BYTES, &out->buffer, &len));
    int st = ln_cifar_parse(out->buffer, len, &out->count);
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
