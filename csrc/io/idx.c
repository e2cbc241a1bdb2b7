#include "idx.h"

#include <stdlib.h>
#include <string.h>

#include "../status.h"
#include "read_file.h"

/* The largest IDX file accepted: far above MNIST's 47 MB, far below memory
 * (named in the error and in README.md, "Limits"). */
#define LN_IDX_MAX_BYTES ((uint64_t)1 << 32)

static uint32_t read_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Checks the magic number, the type and the sizes in the first `len` bytes;
 * sets out->ndim, dims, count and *header_len. A short buffer is reported as
 * a truncated header. */
static int parse_header(const uint8_t *b, size_t len, ln_idx *out, size_t *header_len)
{
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
    *header_len = header;
    return LN_OK;
}

static int length_mismatch(const ln_idx *idx, uint64_t have)
{
    char shape[256];
    ln_format_shape(shape, sizeof shape, idx->ndim, idx->dims);
    return ln_error(LN_EFORMAT, "the header says %s = %llu data bytes, the file "
                    "holds %llu (%s)", shape, (unsigned long long)idx->count,
                    (unsigned long long)have,
                    have < (uint64_t)idx->count ? "truncated" : "trailing bytes");
}

int ln_idx_parse(const void *buf, size_t len, ln_idx *out)
{
    const uint8_t *b = buf;
    size_t header = 0;
    int st = parse_header(b, len, out, &header);
    if (st != LN_OK) {
        memset(out, 0, sizeof *out);
        return st;
    }
    if ((uint64_t)(len - header) != (uint64_t)out->count)
        return length_mismatch(out, len - header);
    out->data = b + header;
    return LN_OK;
}

/* The header is read and checked first; then exactly the data it promises,
 * bounded by what the file can hold (a raw file's size, a gzip file's size
 * times deflate's largest ratio) and by LN_IDX_MAX_BYTES. */
static int read_idx(ln_data_file *f, ln_idx_file *out)
{
    uint8_t header[4 + 4 * LN_IDX_MAX_DIMS];
    size_t got, more, header_len = 0;
    LN_TRY(ln_data_file_read(f, header, 4, &got));
    if (got == 4 && header[0] == 0 && header[1] == 0 && header[2] == LN_IDX_UBYTE
        && header[3] >= 1 && header[3] <= LN_IDX_MAX_DIMS) {
        LN_TRY(ln_data_file_read(f, header + 4, 4 * (size_t)header[3], &more));
        got += more;
    }
    LN_TRY(parse_header(header, got, &out->idx, &header_len));
    uint64_t count = (uint64_t)out->idx.count;
    if (!f->compressed && f->size != header_len + count)
        return length_mismatch(&out->idx, f->size - header_len);
    if (header_len + count > ln_data_file_max_bytes(f))
        return ln_error(LN_EFORMAT, "the header promises %llu data bytes, more than "
                        "this %llu-byte gzip file can hold (damaged file?)",
                        (unsigned long long)count, (unsigned long long)f->size);
    if (header_len + count > LN_IDX_MAX_BYTES)
        return ln_error(LN_EFORMAT, "the header promises %llu data bytes, more than the "
                        "largest IDX file lunet reads (%llu bytes)", (unsigned long long)count,
                        (unsigned long long)LN_IDX_MAX_BYTES);
    LN_TRY(ln_data_file_read_rest(f, header, header_len, count, "the IDX data",
                                  &out->buffer));
    return ln_idx_parse(out->buffer, header_len + count, &out->idx);
}

int ln_idx_read_file(const char *path, ln_idx_file *out)
{
    memset(out, 0, sizeof *out);
    ln_data_file f;
    LN_TRY(ln_data_file_open(path, &f));
    int st = read_idx(&f, out);
    ln_data_file_close(&f);
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
