/* CIFAR-10's binary batches (data_batch_1.bin .. data_batch_5.bin, test_batch.bin).
 *
 * A file is a run of 3073-byte records: one label byte (0..9), then a 32x32
 * image as three 1024-byte planes (red, green, blue), each row-major. There
 * is no header, so the length and the labels are all there is to validate. */
#ifndef LUNET_IO_CIFAR_H
#define LUNET_IO_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#define LN_CIFAR_CLASSES 10
#define LN_CIFAR_IMAGE_BYTES (3 * 32 * 32)
#define LN_CIFAR_RECORD_BYTES (1 + LN_CIFAR_IMAGE_BYTES)

/* Validates a CIFAR-10 batch in memory: a non-empty whole number of records,
 * every label in 0..9. Sets *count to the number of records. */
int ln_cifar_parse(const void *buf, size_t len, int64_t *count);

/* Splits `count` validated records into images (count x 3072 bytes, CHW as
 * stored) and 1-based labels (1..10). */
void ln_cifar_decode(const void *buf, int64_t count, uint8_t *images, int32_t *labels);

/* A CIFAR-10 batch read from disk (gzipped or raw); `buffer` owns the bytes. */
typedef struct ln_cifar_file {
    int64_t count;
    void *buffer;
} ln_cifar_file;

/* Reads and validates `path`; every error message starts with the path. */
int ln_cifar_read_file(const char *path, ln_cifar_file *out);
void ln_cifar_file_free(ln_cifar_file *f);

#endif
