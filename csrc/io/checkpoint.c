#include "checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "../status.h"
#include "../tensor.h"
#include "read_file.h"

static const unsigned char magic[8] = {0x89, 'L', 'U', 'N', 'E', 'T', '\r', '\n'};

/* Tensor data is written and read as host bytes: lunet runs on
 * little-endian machines (x86-64, arm64), which this checks. */
static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const unsigned char *)&one == 1;
}

static uint64_t load_le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void store_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

/* zlib's crc32 takes an unsigned int length: feed it in pieces. */
static uint32_t crc_update(uint32_t crc, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        unsigned int piece = len > (1u << 30) ? (1u << 30) : (unsigned int)len;
        crc = (uint32_t)crc32(crc, p, piece);
        p += piece;
        len -= piece;
    }
    return crc;
}

/* --- reading ------------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *body;
    size_t len, pos;
    uint32_t version;
    uint8_t *complete;         /* per table, in the order tables start */
    uint32_t tables, capacity;
} reader;

/* Offsets in messages count from the start of the file. */
#define FILE_OFFSET(r, at) ((size_t)(at) + LN_CHECKPOINT_HEADER_BYTES)

static int need(reader *r, size_t n, const char *what)
{
    if (n > r->len - r->pos)
        return ln_error(LN_EFORMAT, "damaged checkpoint: %s at byte %zu needs %zu bytes, "
                        "only %zu are left", what, FILE_OFFSET(r, r->pos), n,
                        r->len - r->pos);
    return LN_OK;
}

static int read_uint(reader *r, int bytes, const char *what, uint64_t *out)
{
    LN_TRY(need(r, (size_t)bytes, what));
    *out = load_le(r->body + r->pos, bytes);
    r->pos += (size_t)bytes;
    return LN_OK;
}

static void free_value(ln_ckpt_value *v)
{
    if (v->kind != LN_CKPT_TABLE || !v->as.table.entries)
        return;
    for (uint32_t i = 0; i < v->as.table.count; i++) {
        free_value(&v->as.table.entries[i].key);
        free_value(&v->as.table.entries[i].value);
    }
    free(v->as.table.entries);
    v->as.table.entries = NULL;
}

static int read_value(reader *r, ln_ckpt_value *v, int depth);

static int read_tensor(reader *r, ln_ckpt_value *v, size_t start)
{
    uint64_t dtype, ndim, nbytes;
    LN_TRY(read_uint(r, 1, "a tensor's dtype", &dtype));
    LN_TRY(read_uint(r, 1, "a tensor's dimension count", &ndim));
    if (dtype >= LN_DTYPE_COUNT)
        return ln_error(LN_EFORMAT, "damaged checkpoint: tensor at byte %zu has unknown "
                        "dtype code %u", FILE_OFFSET(r, start), (unsigned)dtype);
    if (ndim > LN_MAX_DIMS)
        return ln_error(LN_EFORMAT, "damaged checkpoint: tensor at byte %zu has %u "
                        "dimensions (at most %d)", FILE_OFFSET(r, start), (unsigned)ndim,
                        LN_MAX_DIMS);
    v->kind = LN_CKPT_TENSOR;
    v->as.tensor.dtype = (ln_dtype)dtype;
    v->as.tensor.ndim = (int)ndim;
    for (int i = 0; i < (int)ndim; i++) {
        uint64_t size;
        LN_TRY(read_uint(r, 8, "a tensor's size", &size));
        if (size > (uint64_t)INT64_MAX)
            return ln_error(LN_EFORMAT, "damaged checkpoint: tensor at byte %zu has a "
                            "negative size in dimension %d", FILE_OFFSET(r, start), i + 1);
        v->as.tensor.shape[i] = (int64_t)size;
    }
    /* the same limits as a tensor made in memory, so what loads can be made */
    int64_t numel;
    if (ln_shape_check((int)ndim, v->as.tensor.shape, (ln_dtype)dtype, &numel) != LN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", ln_last_error());
        return ln_error(LN_EFORMAT, "damaged checkpoint: tensor at byte %zu: %s",
                        FILE_OFFSET(r, start), why);
    }
    uint64_t count = (uint64_t)numel, elem = ln_dtype_size((ln_dtype)dtype);
    LN_TRY(read_uint(r, 8, "a tensor's byte count", &nbytes));
    if (nbytes != count * elem)
        return ln_error(LN_EFORMAT, "damaged checkpoint: tensor at byte %zu declares %llu "
                        "bytes of data, its shape needs %llu", FILE_OFFSET(r, start),
                        (unsigned long long)nbytes, (unsigned long long)(count * elem));
    if (nbytes > 0 && !host_is_little_endian())
        return ln_error(LN_ENOTSUP, "checkpoints hold little-endian data; this machine "
                        "is big-endian");
    LN_TRY(need(r, (size_t)nbytes, "a tensor's data"));
    v->as.tensor.data = r->body + r->pos;
    v->as.tensor.nbytes = nbytes;
    r->pos += (size_t)nbytes;
    return LN_OK;
}

/* Every entry takes at least 6 bytes (an empty string key and a boolean), so
 * a count larger than the remaining bytes allow is a lie: checked before the
 * entries are allocated. */
#define MIN_ENTRY_BYTES 6

static int read_table(reader *r, ln_ckpt_value *v, size_t start, int depth)
{
    uint64_t count;
    LN_TRY(read_uint(r, 4, "a table's entry count", &count));
    if (depth >= LN_CHECKPOINT_MAX_DEPTH)
        return ln_error(LN_EFORMAT, "damaged checkpoint: tables nest deeper than %d "
                        "levels at byte %zu", LN_CHECKPOINT_MAX_DEPTH, FILE_OFFSET(r, start));
    if (count > (r->len - r->pos) / MIN_ENTRY_BYTES)
        return ln_error(LN_EFORMAT, "damaged checkpoint: table at byte %zu claims %llu "
                        "entries, more than the %zu bytes left can hold",
                        FILE_OFFSET(r, start), (unsigned long long)count, r->len - r->pos);
    if (r->tables == r->capacity) {
        uint32_t grown = r->capacity ? r->capacity * 2 : 64;
        uint8_t *bigger = realloc(r->complete, grown);
        if (!bigger)
            return ln_error(LN_ENOMEM, "out of memory reading a checkpoint");
        r->complete = bigger;
        r->capacity = grown;
    }
    uint32_t id = r->tables++;
    r->complete[id] = 0;
    v->kind = LN_CKPT_TABLE;
    v->as.table.id = id;
    v->as.table.count = 0;
    v->as.table.entries = count ? calloc((size_t)count, sizeof(ln_ckpt_entry)) : NULL;
    if (count && !v->as.table.entries)
        return ln_error(LN_ENOMEM, "out of memory reading a table of %llu entries",
                        (unsigned long long)count);
    for (uint64_t i = 0; i < count; i++) {
        ln_ckpt_entry *e = &v->as.table.entries[i];
        size_t key_at = r->pos;
        v->as.table.count = (uint32_t)i + 1; /* so that free_value sees this entry */
        LN_TRY(read_value(r, &e->key, depth + 1));
        if (e->key.kind != LN_CKPT_STRING && e->key.kind != LN_CKPT_INTEGER)
            return ln_error(LN_EFORMAT, "damaged checkpoint: table key at byte %zu is "
                            "neither a string nor an integer", FILE_OFFSET(r, key_at));
        LN_TRY(read_value(r, &e->value, depth + 1));
    }
    r->complete[v->as.table.id] = 1;
    return LN_OK;
}

static int read_ref(reader *r, ln_ckpt_value *v, size_t start)
{
    uint64_t id;
    LN_TRY(read_uint(r, 4, "a reference", &id));
    if (id >= r->tables)
        return ln_error(LN_EFORMAT, "damaged checkpoint: reference at byte %zu names table "
                        "%llu, but only %u table%s come%s before it", FILE_OFFSET(r, start),
                        (unsigned long long)id, (unsigned)r->tables, r->tables == 1 ? "" : "s",
                        r->tables == 1 ? "s" : "");
    if (!r->complete[id])
        return ln_error(LN_EFORMAT, "damaged checkpoint: reference at byte %zu names table "
                        "%llu, which contains it (a cycle)", FILE_OFFSET(r, start),
                        (unsigned long long)id);
    v->kind = LN_CKPT_REF;
    v->as.ref.id = (uint32_t)id;
    return LN_OK;
}

static int read_value(reader *r, ln_ckpt_value *v, int depth)
{
    size_t start = r->pos;
    uint64_t tag, bits;
    memset(v, 0, sizeof *v);
    LN_TRY(read_uint(r, 1, "a value's tag", &tag));
    switch (tag) {
    case 0x01:
    case 0x02:
        v->kind = LN_CKPT_BOOLEAN;
        v->as.boolean = tag == 0x02;
        return LN_OK;
    case 0x03:
        LN_TRY(read_uint(r, 8, "an integer", &bits));
        v->kind = LN_CKPT_INTEGER;
        v->as.integer = (int64_t)bits;
        return LN_OK;
    case 0x04:
        LN_TRY(read_uint(r, 8, "a number", &bits));
        v->kind = LN_CKPT_NUMBER;
        memcpy(&v->as.number, &bits, sizeof bits);
        return LN_OK;
    case 0x05:
        LN_TRY(read_uint(r, 4, "a string's length", &bits));
        LN_TRY(need(r, (size_t)bits, "a string"));
        v->kind = LN_CKPT_STRING;
        v->as.string.bytes = (const char *)r->body + r->pos;
        v->as.string.length = (size_t)bits;
        r->pos += (size_t)bits;
        return LN_OK;
    case 0x06:
        return read_table(r, v, start, depth);
    case 0x07:
        return read_tensor(r, v, start);
    case 0x08:
        if (r->version >= 2)
            return read_ref(r, v, start);
        break; /* version 1 has no references */
    default:
        break;
    }
    return ln_error(LN_EFORMAT, "damaged checkpoint: unknown value tag 0x%02x at byte "
                    "%zu", (unsigned)tag, FILE_OFFSET(r, start));
}

/* Checks the first `have` bytes of a file of `file_len` bytes: the magic,
 * the version and the body length against the file's. */
static int check_header(const unsigned char *p, size_t have, uint64_t file_len,
                        uint32_t *version_out, uint64_t *body_len_out)
{
    if (have < sizeof magic || memcmp(p, magic, sizeof magic) != 0)
        return ln_error(LN_EFORMAT, "not a lunet checkpoint (the file does not start "
                        "with lunet's magic bytes)");
    if (have < LN_CHECKPOINT_HEADER_BYTES)
        return ln_error(LN_EFORMAT, "truncated checkpoint: %zu bytes, shorter than the "
                        "%d-byte header", have, LN_CHECKPOINT_HEADER_BYTES);
    uint32_t version = (uint32_t)load_le(p + 8, 4);
    uint64_t body_len = load_le(p + 16, 8);
    if (version < 1 || version > LN_CHECKPOINT_VERSION)
        return ln_error(LN_EFORMAT, "checkpoint format version %u is not supported (this "
                        "lunet reads versions 1 to %d)", (unsigned)version,
                        LN_CHECKPOINT_VERSION);
    uint64_t body_have = file_len - LN_CHECKPOINT_HEADER_BYTES;
    if (body_len > body_have)
        return ln_error(LN_EFORMAT, "truncated checkpoint: the header announces %llu "
                        "bytes of data, the file holds %llu", (unsigned long long)body_len,
                        (unsigned long long)body_have);
    if (body_len < body_have)
        return ln_error(LN_EFORMAT, "damaged checkpoint: %llu unexpected bytes after the "
                        "%llu bytes of data", (unsigned long long)(body_have - body_len),
                        (unsigned long long)body_len);
    *version_out = version;
    *body_len_out = body_len;
    return LN_OK;
}

int ln_checkpoint_parse(const void *buf, size_t len, ln_ckpt_value **root)
{
    const unsigned char *p = buf;
    *root = NULL;
    uint32_t version;
    uint64_t body_len;
    LN_TRY(check_header(p, len, len, &version, &body_len));
    uint32_t crc = (uint32_t)load_le(p + 12, 4);
    reader r = {p + LN_CHECKPOINT_HEADER_BYTES, (size_t)body_len, 0, version, NULL, 0, 0};
    if (crc_update((uint32_t)crc32(0, Z_NULL, 0), r.body, r.len) != crc)
        return ln_error(LN_EFORMAT, "damaged checkpoint: the data does not match its "
                        "checksum");
    ln_ckpt_value *v = calloc(1, sizeof *v);
    if (!v)
        return ln_error(LN_ENOMEM, "out of memory reading a checkpoint");
    int st = read_value(&r, v, 0);
    if (st == LN_OK && r.pos != r.len)
        st = ln_error(LN_EFORMAT, "damaged checkpoint: %zu bytes left over after the "
                      "value ending at byte %zu", r.len - r.pos, FILE_OFFSET(&r, r.pos));
    free(r.complete);
    if (st != LN_OK) {
        ln_checkpoint_free(v);
        return st;
    }
    *root = v;
    return LN_OK;
}

void ln_checkpoint_free(ln_ckpt_value *root)
{
    if (!root)
        return;
    free_value(root);
    free(root);
}

static int read_fully(int fd, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        ssize_t r = read(fd, buf + *got, n - *got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

int ln_checkpoint_read_file(const char *path, void **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    int fd;
    uint64_t size;
    int st = ln_open_regular_file(path, &fd, &size);
    if (st != LN_OK)
        return st;
    /* the header first: a foreign or damaged file is refused after 24
     * bytes, and the body is read only as far as the header promises */
    unsigned char header[LN_CHECKPOINT_HEADER_BYTES];
    size_t got;
    uint32_t version;
    uint64_t body_len;
    if (read_fully(fd, header, sizeof header, &got) != 0) {
        st = ln_error(LN_EIO, "could not read '%s': %s", path, strerror(errno));
    } else if (check_header(header, got, size < got ? got : size, &version, &body_len)
               != LN_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", ln_last_error());
        st = ln_error(LN_EFORMAT, "'%s': %s", path, why);
    } else if (body_len > SIZE_MAX - sizeof header) {
        st = ln_error(LN_EFORMAT, "%s: a checkpoint of %llu bytes is too large for this "
                      "machine", path, (unsigned long long)body_len);
    }
    unsigned char *data = NULL;
    size_t total = sizeof header + (size_t)(st == LN_OK ? body_len : 0);
    if (st == LN_OK && !(data = malloc(total)))
        st = ln_error(LN_ENOMEM, "out of memory reading %zu bytes of '%s'", total, path);
    if (st == LN_OK) {
        memcpy(data, header, sizeof header);
        if (read_fully(fd, data + sizeof header, total - sizeof header, &got) != 0)
            st = ln_error(LN_EIO, "could not read '%s': %s", path, strerror(errno));
        else if (got != total - sizeof header)
            st = ln_error(LN_EIO, "could not read '%s': it changed while being read", path);
    }
    close(fd);
    if (st != LN_OK) {
        free(data);
        return st;
    }
    *buf = data;
    *len = total;
    return LN_OK;
}

/* --- writing -------------------------------------------------------------------- */

struct ln_checkpoint_writer {
    FILE *file;
    char *path, *tmp_path;
    uint32_t crc;
    uint64_t body_len;
    uint32_t tables;           /* tables begun so far: references name them */
    int has_refs;              /* the file needs version 2 */
    int status;                /* first error, sticky */
    int committed;
};

/* The path the user gave comes first; the temporary file is named so that
 * one left by a crash can be recognised. */
static int write_error(const ln_checkpoint_writer *w, int err)
{
    return ln_error(LN_EIO, "could not write '%s': %s (writing its temporary file '%s'; "
                    "an existing '%s' is unchanged)", w->path, strerror(err), w->tmp_path,
                    w->path);
}

static void put(ln_checkpoint_writer *w, const void *data, size_t len)
{
    if (w->status != LN_OK || len == 0)
        return;
    if (fwrite(data, 1, len, w->file) != len) {
        w->status = write_error(w, errno);
        return;
    }
    w->crc = crc_update(w->crc, data, len);
    w->body_len += len;
}

static void put_uint(ln_checkpoint_writer *w, uint64_t v, int bytes)
{
    unsigned char b[8];
    store_le(b, v, bytes);
    put(w, b, (size_t)bytes);
}

int ln_checkpoint_writer_open(ln_checkpoint_writer **out, const char *path)
{
    *out = NULL;
    LN_TRY(ln_check_writable_path(path, "lunet.save"));
    ln_checkpoint_writer *w = calloc(1, sizeof *w);
    size_t n = strlen(path);
    if (w) {
        w->path = malloc(n + 1);
        w->tmp_path = malloc(n + 16);
    }
    if (!w || !w->path || !w->tmp_path) {
        ln_checkpoint_writer_close(w);
        return ln_error(LN_ENOMEM, "out of memory opening '%s'", path);
    }
    memcpy(w->path, path, n + 1);
    snprintf(w->tmp_path, n + 16, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(w->tmp_path);
    if (fd < 0) {
        int err = errno;
        w->tmp_path[0] = '\0';
        ln_checkpoint_writer_close(w);
        return ln_error(LN_EIO, "cannot create a file beside '%s': %s", path, strerror(err));
    }
    /* mkstemp makes the file private; give it the permissions a plain
     * fopen would (0666 less the umask) */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);
    w->file = fdopen(fd, "wb");
    if (!w->file) {
        int err = errno;
        close(fd);
        ln_checkpoint_writer_close(w);
        return ln_error(LN_EIO, "cannot write beside '%s': %s", path, strerror(err));
    }
    w->crc = (uint32_t)crc32(0, Z_NULL, 0);
    unsigned char header[LN_CHECKPOINT_HEADER_BYTES] = {0}; /* completed by commit */
    if (fwrite(header, 1, sizeof header, w->file) != sizeof header)
        w->status = write_error(w, errno);
    *out = w;
    return LN_OK;
}

void ln_checkpoint_write_boolean(ln_checkpoint_writer *w, int value)
{
    put_uint(w, value ? 0x02 : 0x01, 1);
}

void ln_checkpoint_write_integer(ln_checkpoint_writer *w, int64_t value)
{
    put_uint(w, 0x03, 1);
    put_uint(w, (uint64_t)value, 8);
}

void ln_checkpoint_write_number(ln_checkpoint_writer *w, double value)
{
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    put_uint(w, 0x04, 1);
    put_uint(w, bits, 8);
}

void ln_checkpoint_write_string(ln_checkpoint_writer *w, const char *bytes, size_t length)
{
    if (w->status == LN_OK && length > UINT32_MAX)
        w->status = ln_error(LN_EINVAL, "a string of %zu bytes is too long for a "
                             "checkpoint (at most 4 GiB)", length);
    put_uint(w, 0x05, 1);
    put_uint(w, (uint64_t)length, 4);
    put(w, bytes, length);
}

void ln_checkpoint_write_table(ln_checkpoint_writer *w, uint32_t count)
{
    if (w->status == LN_OK && w->tables == UINT32_MAX)
        w->status = ln_error(LN_EINVAL, "more than %u tables do not fit in a checkpoint",
                             (unsigned)UINT32_MAX);
    w->tables++;
    put_uint(w, 0x06, 1);
    put_uint(w, count, 4);
}

void ln_checkpoint_write_ref(ln_checkpoint_writer *w, uint32_t id)
{
    if (w->status == LN_OK && id >= w->tables)
        w->status = ln_error(LN_EINVAL, "internal error: a reference to table %u of %u",
                             (unsigned)id, (unsigned)w->tables);
    w->has_refs = 1;
    put_uint(w, 0x08, 1);
    put_uint(w, id, 4);
}

int ln_checkpoint_writer_status(const ln_checkpoint_writer *w)
{
    return w->status;
}

void ln_checkpoint_write_tensor(ln_checkpoint_writer *w, ln_dtype dtype, int ndim,
                                const int64_t *shape, const void *data)
{
    uint64_t count = 1;
    for (int i = 0; i < ndim; i++)
        count *= (uint64_t)shape[i];
    uint64_t nbytes = count * ln_dtype_size(dtype);
    if (w->status == LN_OK && nbytes > 0 && !host_is_little_endian())
        w->status = ln_error(LN_ENOTSUP, "checkpoints hold little-endian data; this "
                             "machine is big-endian");
    put_uint(w, 0x07, 1);
    put_uint(w, (uint64_t)dtype, 1);
    put_uint(w, (uint64_t)ndim, 1);
    for (int i = 0; i < ndim; i++)
        put_uint(w, (uint64_t)shape[i], 8);
    put_uint(w, nbytes, 8);
    put(w, data, (size_t)nbytes);
}

int ln_checkpoint_writer_commit(ln_checkpoint_writer *w)
{
    unsigned char header[LN_CHECKPOINT_HEADER_BYTES];
    if (w->status != LN_OK)
        return w->status;
    memcpy(header, magic, sizeof magic);
    store_le(header + 8, w->has_refs ? 2 : 1, 4);
    store_le(header + 12, w->crc, 4);
    store_le(header + 16, w->body_len, 8);
    int ok = fflush(w->file) == 0 && fseek(w->file, 0, SEEK_SET) == 0
             && fwrite(header, 1, sizeof header, w->file) == sizeof header
             && fflush(w->file) == 0 && fsync(fileno(w->file)) == 0;
    int err = errno;
    int closed = fclose(w->file) == 0;
    w->file = NULL;
    if (!ok || !closed)
        return w->status = write_error(w, ok ? errno : err);
    if (rename(w->tmp_path, w->path) != 0)
        return w->status = ln_error(LN_EIO, "could not replace '%s': %s", w->path,
                                    strerror(errno));
    w->committed = 1;
    return LN_OK;
}

void ln_checkpoint_writer_close(ln_checkpoint_writer *w)
{
    if (!w)
        return;
    if (w->file)
        fclose(w->file);
    if (!w->committed && w->tmp_path && w->tmp_path[0])
        unlink(w->tmp_path);
    free(w->path);
    free(w->tmp_path);
    free(w);
}
