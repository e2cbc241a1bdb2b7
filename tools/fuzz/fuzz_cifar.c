/* libFuzzer harness: CIFAR-10 binary batches (csrc/io/cifar.c) parsed from
 * memory, decoded, and read as files through the gzip-or-raw reader.
 * Invariants: a batch that parses is a whole number of records with labels
 * 0..9, decoded into labels 1..10 and the images byte for byte; a plain file
 * reads as its bytes parse; every file error names the file. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/cifar.h"
#include "status.h"

static void check_decoded(const uint8_t *buf, size_t len, int64_t count)
{
    if (count <= 0 || (size_t)count * LN_CIFAR_RECORD_BYTES != len)
        fuzz_fail("count %lld does not match %zu bytes", (long long)count, len);
    uint8_t *images = malloc((size_t)count * LN_CIFAR_IMAGE_BYTES);
    int32_t *labels = malloc((size_t)count * sizeof *labels);
    if (!images || !labels)
        fuzz_fail("out of memory");
    ln_cifar_decode(buf, count, images, labels);
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *record = buf + i * LN_CIFAR_RECORD_BYTES;
        if (labels[i] < 1 || labels[i] > LN_CIFAR_CLASSES || labels[i] != record[0] + 1)
            fuzz_fail("record %lld: label %d from byte %d", (long long)i, labels[i], record[0]);
        if (memcmp(images + i * LN_CIFAR_IMAGE_BYTES, record + 1, LN_CIFAR_IMAGE_BYTES) != 0)
            fuzz_fail("record %lld: the image differs from the file", (long long)i);
    }
    free(images);
    free(labels);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t count = -1;
    int parsed = ln_cifar_parse(data, size, &count);
    if (parsed == LN_OK)
        check_decoded(data, size, count);
    else
        fuzz_check_message(NULL);

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    ln_cifar_file file;
    int read = ln_cifar_read_file(path, &file);
    if (fuzz_check_read(data, size, parsed, read, path)) {
        check_decoded(file.buffer, (size_t)file.count * LN_CIFAR_RECORD_BYTES, file.count);
        ln_cifar_file_free(&file);
    }
    fuzz_memfile_close(fd);
    return 0;
}
