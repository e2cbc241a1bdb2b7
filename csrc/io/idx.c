#include "idx.h"

#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "read_file.h"

/* The largest IDX file accepted: far above MNIST's 47 MB, far below memory. */
#define LN_IDX_MAX_BYTES ((size_t)1 << 32)

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int ln_idx_parse(const void *buf, size_t len, ln_idx *out)
{
    const uint8_t *b = buf;
    memset(out, 0, sizeof *out);
    if (len < 4)
        return ln_error(LN_EFORMAT, "not an IDX file: %zu bytes, shorter than the "
                        "4-byte magic number", len);
    uint32_t magic = read_be32(b); /* e.g. 0x00000803; only for messages */
    if (b[0] != 0 || b[1] != 0)
        return ln_error(LN_EFORMAT, "not an IDX file: magic number 0x%08x does not "
                        "start with two zero bytes", (unsigned)magic);
    if (b[2] != LN_IDX_UBYTE)
        return ln_error(LN_EFORMAT, "IDX data type 0x%02x (magic number 0x%08x) is not "
                        "supported: only unsigned bytes (0x08) are", b[2],
                        (unsigned)magic);
    int ndim = b[3];
    if (ndim < 1 || ndim > LN_IDX_MAX_DIMS)
        return ln_error(LN_EFORMAT, "IDX file with %d dimensions (magic number 0x%08x): "
                        "1 to %d are supported", ndim, (unsigned)magic,
                        LN_IDX_MAX_DIMS);
    size_t header = 4 + 4 * (size_t)ndim;
    if (len < header)
        return ln_error(LN_EFORMAT, "truncated IDX header: %zu bytes, the %d sizes "
                        "need %zu", len, ndim, header);
    uint64_t count = 1;
    for (int d = 0; d < ndim; d++) {
        uint32_t size = read_be32(b + 4 + 4 * d);
        if (size == 0)
            return ln_error(LN_EFORMAT, "IDX size %d of %d is 0", d + 1, ndim);
        /* sizes are < 2^32, so this cannot wrap while count <= 2^40 */
        count *= size;
        if (count > ((uint64_t)1 << 40))
            return ln_error(LN_EFORMAT, "IDX sizes multiply to more than 2^40 elements");
        out->dims[d] = size;
    }
    out->ndim = ndim;
    out->count = (int64_t)count;
    if ((uint64_t)(len - header) != count) {
        char shape[256];
        ln_format_shape(shape, sizeof shape, ndim, out->dims);
        return ln_error(LN_EFORMAT, "the header says %s = %llu data bytes, the file "
                        "holds %zu (%s)", shape, (unsigned long long)count, len - header,
                        (uint64_t)(len - header) < count ? "truncated" : "trailing bytes");
    }
    out->data = b + header;
    return LN_OK;
}

int ln_idx_read_file(const char *path, ln_idx_file *out)
{
    size_t len = 0;
    memset(out, 0, sizeof *out);
    LN_TRY(ln_read_file(path, LN_IDX_MAX_BYTES, &out->buffer, &len));
    int st = ln_idx_parse(out->buffer, len, &out->idx);
    if (st != LN_OK) {
        ln_error_prefix(path);
        ln_idx_file_free(out);
    }
    return st;
}

void ln_idx_file_free(ln_idx_file *f)
{
    free(f->buffer);
    memset(f, 0, sizeof *f);
}
