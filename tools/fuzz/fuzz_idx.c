/* libFuzzer harness: IDX files (csrc/io/idx.c) parsed from memory and read
 * as files through the gzip-or-raw reader (csrc/io/read_file.c).
 * Invariants: a parse that succeeds describes exactly the bytes it was given;
 * a failure leaves a message; a plain (not gzipped) file reads as its bytes
 * parse, and every file error names the file. */
#include <string.h>

#include "fuzz_util.h"
#include "io/idx.h"
#include "status.h"

static void check_parsed(const ln_idx *idx, const uint8_t *buf, size_t len)
{
    if (idx->ndim < 1 || idx->ndim > LN_IDX_MAX_DIMS)
        fuzz_fail("ndim %d out of range", idx->ndim);
    int64_t count = 1;
    for (int d = 0; d < idx->ndim; d++) {
        if (idx->dims[d] <= 0)
            fuzz_fail("size %d is %lld", d, (long long)idx->dims[d]);
        count *= idx->dims[d];
    }
    size_t header = 4 + 4 * (size_t)idx->ndim;
    if (count != idx->count || header + (size_t)count != len)
        fuzz_fail("count %lld, header %zu, length %zu disagree", (long long)idx->count,
                  header, len);
    if (idx->data != buf + header)
        fuzz_fail("data does not start after the header");
    /* read every byte, so the sanitizers see any read outside the buffer */
    volatile unsigned sum = 0;
    for (int64_t i = 0; i < count; i++)
        sum += idx->data[i];
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ln_idx idx;
    int parsed = ln_idx_parse(data, size, &idx);
    if (parsed == LN_OK)
        check_parsed(&idx, data, size);
    else
        fuzz_check_message(NULL);

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    ln_idx_file file;
    int read = ln_idx_read_file(path, &file);
    if (fuzz_check_read(data, size, parsed, read, path)) {
        /* the decompressed length is header + data, by check_parsed */
        check_parsed(&file.idx, file.buffer, 4 + 4 * (size_t)file.idx.ndim + (size_t)file.idx.count);
        ln_idx_file_free(&file);
    }
    fuzz_memfile_close(fd);
    return 0;
}
