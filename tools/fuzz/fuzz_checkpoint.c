/* libFuzzer harness: lunet's checkpoint format (csrc/io/checkpoint.c) and
 * lunet.load's Lua side (csrc/lua/l_checkpoint.c).
 * Invariants:
 *  - a parsed tree only points inside the buffer, and each tensor's byte
 *    count is its shape's;
 *  - the format is canonical: writing a parsed tree back gives the same bytes
 *    (but for the version, which the writer makes 1 when the tree holds no
 *    reference: a version-2 file without one comes back as version 1);
 *  - a reference names a table that came, complete, before it;
 *  - lunet.load accepts what ln_checkpoint_parse accepts (except tables that
 *    hold a key twice, which only Lua can see) and rejects the rest with an
 *    error naming lunet.load; what it loads survives lunet.save and a second
 *    load unchanged. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz_util.h"
#include "io/checkpoint.h"
#include "status.h"

typedef struct span {
    const uint8_t *begin, *end;
} span;

static void check_inside(span s, const void *p, uint64_t n, const char *what)
{
    const uint8_t *b = p;
    if (n == 0)
        return;
    if (b < s.begin || b > s.end || n > (uint64_t)(s.end - b))
        fuzz_fail("%s of %llu bytes lies outside the buffer", what, (unsigned long long)n);
}

/* Tables in the order they start, and whether each is complete, to check
 * references as the parser should have. */
typedef struct tables_seen {
    uint32_t count, capacity;  /* a table takes 5 bytes: size / 5 is enough */
    uint8_t *complete;
} tables_seen;

static void check_value(span s, const ln_ckpt_value *v, int depth, tables_seen *seen)
{
    if (depth > LN_CHECKPOINT_MAX_DEPTH + 1)
        fuzz_fail("a tree deeper than the format allows");
    switch (v->kind) {
    case LN_CKPT_BOOLEAN:
    case LN_CKPT_INTEGER:
    case LN_CKPT_NUMBER:
        return;
    case LN_CKPT_STRING:
        check_inside(s, v->as.string.bytes, v->as.string.length, "a string");
        return;
    case LN_CKPT_TABLE: {
        if (v->as.table.id != seen->count || seen->count >= seen->capacity)
            fuzz_fail("table number %u where %u was expected", (unsigned)v->as.table.id,
                      (unsigned)seen->count);
        seen->complete[seen->count++] = 0;
        for (uint32_t i = 0; i < v->as.table.count; i++) {
            const ln_ckpt_entry *e = &v->as.table.entries[i];
            if (e->key.kind != LN_CKPT_STRING && e->key.kind != LN_CKPT_INTEGER)
                fuzz_fail("a table key of kind %d", (int)e->key.kind);
            check_value(s, &e->key, depth + 1, seen);
            check_value(s, &e->value, depth + 1, seen);
        }
        seen->complete[v->as.table.id] = 1;
        return;
    }
    case LN_CKPT_REF:
        if (v->as.ref.id >= seen->count || !seen->complete[v->as.ref.id])
            fuzz_fail("a reference to table %u, not complete before it", (unsigned)v->as.ref.id);
        return;
    case LN_CKPT_TENSOR: {
        uint64_t count = 1;
        if (v->as.tensor.ndim < 0 || v->as.tensor.ndim > LN_MAX_DIMS)
            fuzz_fail("a tensor with %d dimensions", v->as.tensor.ndim);
        for (int i = 0; i < v->as.tensor.ndim; i++) {
            if (v->as.tensor.shape[i] < 0)
                fuzz_fail("a negative tensor size");
            count *= (uint64_t)v->as.tensor.shape[i];
        }
        if (count * ln_dtype_size(v->as.tensor.dtype) != v->as.tensor.nbytes)
            fuzz_fail("a tensor's byte count does not match its shape");
        check_inside(s, v->as.tensor.data, v->as.tensor.nbytes, "tensor data");
        volatile uint8_t sum = 0;
        for (uint64_t i = 0; i < v->as.tensor.nbytes; i++)
            sum += ((const uint8_t *)v->as.tensor.data)[i];
        (void)sum;
        return;
    }
    }
    fuzz_fail("a value of unknown kind %d", (int)v->kind);
}

static void write_value(ln_checkpoint_writer *w, const ln_ckpt_value *v)
{
    switch (v->kind) {
    case LN_CKPT_BOOLEAN: ln_checkpoint_write_boolean(w, v->as.boolean); return;
    case LN_CKPT_INTEGER: ln_checkpoint_write_integer(w, v->as.integer); return;
    case LN_CKPT_NUMBER: ln_checkpoint_write_number(w, v->as.number); return;
    case LN_CKPT_STRING:
        ln_checkpoint_write_string(w, v->as.string.bytes, v->as.string.length);
        return;
    case LN_CKPT_TABLE:
        ln_checkpoint_write_table(w, v->as.table.count);
        for (uint32_t i = 0; i < v->as.table.count; i++) {
            write_value(w, &v->as.table.entries[i].key);
            write_value(w, &v->as.table.entries[i].value);
        }
        return;
    case LN_CKPT_TENSOR:
        ln_checkpoint_write_tensor(w, v->as.tensor.dtype, v->as.tensor.ndim,
                                   v->as.tensor.shape, v->as.tensor.data);
        return;
    case LN_CKPT_REF:
        ln_checkpoint_write_ref(w, v->as.ref.id);
        return;
    }
}

static int has_refs(const ln_ckpt_value *v)
{
    if (v->kind == LN_CKPT_REF)
        return 1;
    if (v->kind == LN_CKPT_TABLE)
        for (uint32_t i = 0; i < v->as.table.count; i++)
            if (has_refs(&v->as.table.entries[i].value))
                return 1;
    return 0;
}

static void check_round_trip(const ln_ckpt_value *root, const uint8_t *data, size_t size,
                             const char *path)
{
    ln_checkpoint_writer *w;
    if (ln_checkpoint_writer_open(&w, path) != LN_OK)
        fuzz_fail("cannot open the writer: %s", ln_last_error());
    write_value(w, root);
    int st = ln_checkpoint_writer_commit(w);
    ln_checkpoint_writer_close(w);
    if (st != LN_OK)
        fuzz_fail("writing a parsed tree back failed: %s", ln_last_error());
    void *back;
    size_t len;
    if (ln_checkpoint_read_file(path, &back, &len) != LN_OK)
        fuzz_fail("cannot read back the written file: %s", ln_last_error());
    uint8_t expected_version = has_refs(root) ? 2 : 1;
    const uint8_t *b = back;
    if (len != size || memcmp(b, data, 8) != 0 || memcmp(b + 12, data + 12, size - 12) != 0)
        fuzz_fail("a parsed tree written back differs from the input (%zu vs %zu bytes)", len,
                  size);
    if (b[8] != expected_version || b[9] || b[10] || b[11]
        || (data[8] != b[8] && !(data[8] == 2 && expected_version == 1)))
        fuzz_fail("written back as version %u from version %u", b[8], data[8]);
    free(back);
}

/* ... = core, the input's path, a scratch path, whether the C parser accepted it */
static const char *lua_side =
    "local core, path, scratch, parsed_ok = ...\n"
    "local ok, value = pcall(core.checkpoint_load, path)\n"
    "if not ok then\n"
    "  value = tostring(value)\n"
    "  assert(value:find('lunet.load: ', 1, true), 'message without the function: ' .. value)\n"
    "  assert(not parsed_ok or value:find('twice', 1, true),\n"
    "    'the C parser accepts what lunet.load rejects: ' .. value)\n"
    "  return\n"
    "end\n"
    "assert(parsed_ok, 'lunet.load accepts what the C parser rejects')\n"
    "local done = {}\n" /* shared tables: each pair compared once */
    "local function same(a, b, where)\n"
    "  if type(a) == 'number' and type(b) == 'number' then\n"
    "    assert(math.type(a) == math.type(b) and (a == b or (a ~= a and b ~= b)), where)\n"
    "  elseif core.is_tensor(a) then\n"
    "    assert(core.is_tensor(b) and a:dtype() == b:dtype(), where)\n"
    "    assert(table.concat(a:shape(), ',') == table.concat(b:shape(), ','), where)\n"
    "    if a:numel() > 0 and a:numel() <= 4096 then\n"
    "      local fa, fb = a:reshape({a:numel()}):totable(), b:reshape({b:numel()}):totable()\n"
    "      for i = 1, #fa do same(fa[i], fb[i], where .. '{' .. i .. '}') end\n"
    "    end\n"
    "  elseif type(a) == 'table' then\n"
    "    assert(type(b) == 'table', where)\n"
    "    if done[a] == b then return end\n"
    "    done[a] = b\n"
    "    for k, v in pairs(a) do same(v, b[k], where .. '[' .. tostring(k) .. ']') end\n"
    "    for k in pairs(b) do assert(a[k] ~= nil, where .. ': extra key') end\n"
    "  else\n"
    "    assert(a == b, where)\n"
    "  end\n"
    "end\n"
    "core.checkpoint_save(value, scratch)\n"
    "same(value, core.checkpoint_load(scratch), 'value')\n";

/* Mutations would almost never keep the CRC-32 right and the parser would
 * stop at the checksum: the harness signs the body itself, unless the input's
 * CRC field is ffffffff (the seed "bad-crc" keeps that path covered). The
 * copy is exactly `size` bytes, so reads past the end are still caught. */
static uint8_t *signed_copy(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        fuzz_fail("out of memory");
    memcpy(copy, data, size);
    if (size >= LN_CHECKPOINT_HEADER_BYTES
        && !(copy[12] == 0xff && copy[13] == 0xff && copy[14] == 0xff && copy[15] == 0xff)) {
        size_t body = size - LN_CHECKPOINT_HEADER_BYTES;
        uint32_t crc = (uint32_t)crc32(0, Z_NULL, 0);
        crc = (uint32_t)crc32(crc, copy + LN_CHECKPOINT_HEADER_BYTES, (unsigned)body);
        for (int i = 0; i < 4; i++)
            copy[12 + i] = (uint8_t)(crc >> (8 * i));
    }
    return copy;
}

int LLVMFuzzerTestOneInput(const uint8_t *raw, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *raw, size_t size)
{
    uint8_t *data = signed_copy(raw, size);
    char scratch[256];
    snprintf(scratch, sizeof scratch, "%s/lunet-fuzz-checkpoint-%d", fuzz_scratch_dir(),
             (int)getpid());

    ln_ckpt_value *root = NULL;
    int parsed = ln_checkpoint_parse(data, size, &root);
    if (parsed == LN_OK) {
        span s = {data, data + size};
        tables_seen seen = {0, (uint32_t)(size / 5 + 1), calloc(size / 5 + 1, 1)};
        if (!seen.complete)
            fuzz_fail("out of memory");
        check_value(s, root, 0, &seen);
        free(seen.complete);
        check_round_trip(root, data, size, scratch);
    } else {
        fuzz_check_message(NULL);
        if (root)
            fuzz_fail("a failed parse returned a tree");
    }
    ln_checkpoint_free(root);

    char path[64];
    int fd = fuzz_memfile(data, size, path, sizeof path);
    lua_State *L = fuzz_lua_state();
    lua_getglobal(L, "core");
    lua_pushstring(L, path);
    lua_pushstring(L, scratch);
    lua_pushboolean(L, parsed == LN_OK);
    fuzz_lua_run(L, "=fuzz_checkpoint", lua_side, 4);
    lua_close(L);
    fuzz_memfile_close(fd);
    unlink(scratch);
    free(data);
    return 0;
}
