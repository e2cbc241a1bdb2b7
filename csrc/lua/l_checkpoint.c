/* core.checkpoint_save(value, path) and core.checkpoint_load(path): Lua values
 * to and from csrc/io/checkpoint's format. lunet.save and lunet.load
 * (lua/lunet/serialize.lua) wrap them.
 *
 * Saving walks the value: tables (string and integer keys, no metatable, no
 * cycles), tensors of any device (stored as CPU data), numbers (integers stay
 * integers), strings and booleans; anything else is an error naming where it
 * sits ("value["layers"][2]: cannot save a function"). A table met again
 * (shared, not cyclic) is stored once and referred to after, so the work and
 * the file grow with the number of tables, not with the number of paths to
 * them; the walk stops at the first write error. Loading rebuilds the value
 * with tensors on the CPU, shared tables shared again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../io/checkpoint.h"
#include "../status.h"
#include "binding.h"

#define WRITER_MT "lunet.CheckpointWriter"
#define LOADED_MT "lunet.CheckpointBuffer"

/* --- saving ------------------------------------------------------------------------ */

/* Where the walk is, for messages: value["a"][3]... */
typedef struct walk {
    const char *fname;
    ln_checkpoint_writer *w;
    int seen;                  /* stack index of: table -> its number once written
                                  whole, or the path where it is being written */
    lua_Integer tables;        /* tables begun so far (the writer's numbering) */
    char where[512];
} walk;

static int writer_gc(lua_State *L)
{
    ln_checkpoint_writer **box = luaL_checkudata(L, 1, WRITER_MT);
    ln_checkpoint_writer_close(*box);
    *box = NULL;
    return 0;
}

static void where_push(lua_State *L, walk *k, int key_idx, size_t *saved)
{
    size_t used = strlen(k->where);
    *saved = used;
    if (lua_type(L, key_idx) == LUA_TSTRING)
        snprintf(k->where + used, sizeof k->where - used, "[\"%.60s\"]",
                 lua_tostring(L, key_idx));
    else
        snprintf(k->where + used, sizeof k->where - used, "[%lld]",
                 (long long)lua_tointeger(L, key_idx));
}

static void fail_at(lua_State *L, walk *k, const char *fmt, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, detail);
    ln_lua_fail(L, k->fname, "%s: %s", k->where, msg);
}

static void check_key(lua_State *L, walk *k, int key_idx)
{
    if (lua_type(L, key_idx) == LUA_TSTRING || lua_isinteger(L, key_idx))
        return;
    fail_at(L, k, "table keys must be strings or integers, got a %s key",
            lua_type(L, key_idx) == LUA_TNUMBER ? "non-integer number"
                                                : luaL_typename(L, key_idx));
}

static void save_tensor(lua_State *L, walk *k, ln_tensor *t)
{
    if (!t->storage)
        fail_at(L, k, "%s", "cannot save a freed tensor");
    if (ln_tensor_device(t)->host_memory && ln_tensor_is_contiguous(t)) {
        ln_checkpoint_write_tensor(k->w, t->dtype, t->ndim, t->shape, ln_tensor_data(t));
        return;
    }
    void *host = NULL;
    ln_lua_check_status(L, ln_tensor_to_host(t, &host), k->fname);
    ln_checkpoint_write_tensor(k->w, t->dtype, t->ndim, t->shape, host);
    free(host);
}

static void save_value(lua_State *L, walk *k, int idx, int depth);

static void save_table(lua_State *L, walk *k, int idx, int depth)
{
    if (depth >= LN_CHECKPOINT_MAX_DEPTH)
        ln_lua_fail(L, k->fname, "%s: tables nest deeper than %d levels", k->where,
                    LN_CHECKPOINT_MAX_DEPTH);
    if (lua_getmetatable(L, idx)) {
        lua_pop(L, 1);
        fail_at(L, k, "%s", "cannot save a table with a metatable (a module or another "
                "object); save model:state_dict() instead");
    }
    lua_pushvalue(L, idx);
    int seen = lua_rawget(L, k->seen);
    if (seen == LUA_TNUMBER) {
        /* written whole before: stored once, referred to here */
        ln_checkpoint_write_ref(k->w, (uint32_t)lua_tointeger(L, -1));
        lua_pop(L, 1);
        return;
    }
    if (seen == LUA_TSTRING)
        ln_lua_fail(L, k->fname, "%s: the table contains itself (a cycle): it is %s",
                    k->where, lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_Integer id = k->tables++;
    lua_pushvalue(L, idx);
    lua_pushstring(L, k->where);
    lua_rawset(L, k->seen);

    uint64_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        check_key(L, k, lua_gettop(L));
        count++;
    }
    if (count > UINT32_MAX)
        fail_at(L, k, "%s", "a table has too many entries for a checkpoint");
    ln_checkpoint_write_table(k->w, (uint32_t)count);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        int key = lua_gettop(L) - 1, value = lua_gettop(L);
        size_t saved;
        if (lua_type(L, key) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, key, &len);
            ln_checkpoint_write_string(k->w, s, len);
        } else {
            ln_checkpoint_write_integer(k->w, lua_tointeger(L, key));
        }
        where_push(L, k, key, &saved);
        save_value(L, k, value, depth + 1);
        k->where[saved] = '\0';
        lua_pop(L, 1);
    }

    lua_pushvalue(L, idx);
    lua_pushinteger(L, id);
    lua_rawset(L, k->seen); /* complete: met again, it is a reference */
}

static void save_value(lua_State *L, walk *k, int idx, int depth)
{
    luaL_checkstack(L, 8, k->fname);
    /* the first write error ends the walk (a full disk is not a reason to
     * go on walking a large value) */
    if (ln_checkpoint_writer_status(k->w) != LN_OK)
        ln_lua_check_status(L, ln_checkpoint_writer_status(k->w), k->fname);
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        ln_checkpoint_write_boolean(k->w, lua_toboolean(L, idx));
        return;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            ln_checkpoint_write_integer(k->w, lua_tointeger(L, idx));
        else
            ln_checkpoint_write_number(k->w, lua_tonumber(L, idx));
        return;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        ln_checkpoint_write_string(k->w, s, len);
        return;
    }
    case LUA_TTABLE:
        save_table(L, k, idx, depth);
        return;
    case LUA_TUSERDATA: {
        ln_tensor *t = ln_lua_to_tensor(L, idx);
        if (t) {
            save_tensor(L, k, t);
            return;
        }
        fail_at(L, k, "%s", "cannot save a userdata that is not a lunet tensor");
        return;
    }
    default:
        fail_at(L, k, "cannot save a %s (only tensors, tables, numbers, strings and "
                "booleans)", luaL_typename(L, idx));
    }
}

/* checkpoint_save(value, path [, caller]) */
static int l_checkpoint_save(lua_State *L)
{
    walk k;
    k.fname = lua_type(L, 3) == LUA_TSTRING ? lua_tostring(L, 3) : "lunet.save";
    if (lua_isnone(L, 1) || lua_isnil(L, 1))
        ln_lua_fail(L, k.fname, "argument #1: expected the value to save, got nil");
    const char *path = ln_lua_check_path(L, 2, k.fname);
    lua_settop(L, 3);
    lua_newtable(L);
    k.seen = lua_gettop(L);
    k.tables = 0;
    snprintf(k.where, sizeof k.where, "value");

    ln_checkpoint_writer **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    if (luaL_newmetatable(L, WRITER_MT)) {
        lua_pushcfunction(L, writer_gc);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "__gc");
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1); /* an error anywhere below removes the temporary file */
    ln_lua_check_status(L, ln_checkpoint_writer_open(box, path), k.fname);
    k.w = *box;
    save_value(L, &k, 1, 0);
    /* the box's __close then closes the writer; it leaves a committed file */
    ln_lua_check_status(L, ln_checkpoint_writer_commit(k.w), k.fname);
    return 0;
}

/* --- loading ------------------------------------------------------------------------- */

/* The file's bytes and the parsed tree, owned by a userdata so an error
 * while building the Lua value frees them. */
typedef struct loaded {
    void *bytes;
    ln_ckpt_value *root;
} loaded;

static int loaded_gc(lua_State *L)
{
    loaded *box = luaL_checkudata(L, 1, LOADED_MT);
    ln_checkpoint_free(box->root);
    free(box->bytes);
    box->root = NULL;
    box->bytes = NULL;
    return 0;
}

/* `built`: the stack index of a table of the tables made so far, by number
 * (1-based), for references. */
static void push_value(lua_State *L, const ln_ckpt_value *v, const char *fname, int built);

static void push_table(lua_State *L, const ln_ckpt_value *v, const char *fname, int built)
{
    lua_createtable(L, 0, (int)(v->as.table.count < 1024 ? v->as.table.count : 1024));
    int table = lua_gettop(L);
    lua_pushvalue(L, table);
    lua_rawseti(L, built, (lua_Integer)v->as.table.id + 1);
    for (uint32_t i = 0; i < v->as.table.count; i++) {
        const ln_ckpt_entry *e = &v->as.table.entries[i];
        push_value(L, &e->key, fname, built);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, table) != LUA_TNIL)
            ln_lua_fail(L, fname, "damaged checkpoint: a table holds the key %s twice",
                        lua_tostring(L, -2));
        lua_pop(L, 1);
        push_value(L, &e->value, fname, built);
        lua_rawset(L, table);
    }
}

static void push_value(lua_State *L, const ln_ckpt_value *v, const char *fname, int built)
{
    luaL_checkstack(L, 6, fname);
    switch (v->kind) {
    case LN_CKPT_BOOLEAN:
        lua_pushboolean(L, v->as.boolean);
        return;
    case LN_CKPT_INTEGER:
        lua_pushinteger(L, (lua_Integer)v->as.integer);
        return;
    case LN_CKPT_NUMBER:
        lua_pushnumber(L, v->as.number);
        return;
    case LN_CKPT_STRING:
        lua_pushlstring(L, v->as.string.bytes, v->as.string.length);
        return;
    case LN_CKPT_TABLE:
        push_table(L, v, fname, built);
        return;
    case LN_CKPT_REF:
        /* the parser checked that the table came, whole, before */
        if (lua_rawgeti(L, built, (lua_Integer)v->as.ref.id + 1) != LUA_TTABLE)
            ln_lua_fail(L, fname, "internal error: a reference to table %u, not yet built",
                        (unsigned)v->as.ref.id);
        return;
    case LN_CKPT_TENSOR: {
        ln_tensor *t = ln_lua_new_tensor(L);
        ln_lua_check_status(L, ln_tensor_alloc(t, ln_device_cpu(), v->as.tensor.dtype,
                                               v->as.tensor.ndim, v->as.tensor.shape),
                            fname);
        if (v->as.tensor.nbytes)
            memcpy(ln_tensor_data(t), v->as.tensor.data, (size_t)v->as.tensor.nbytes);
        return;
    }
    }
    ln_lua_fail(L, fname, "internal error: unknown checkpoint value kind %d", (int)v->kind);
}

/* checkpoint_load(path [, caller]) -> value */
static int l_checkpoint_load(lua_State *L)
{
    const char *fname = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "lunet.load";
    const char *path = ln_lua_check_path(L, 1, fname);
    loaded *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->bytes = NULL;
    box->root = NULL;
    if (luaL_newmetatable(L, LOADED_MT)) {
        lua_pushcfunction(L, loaded_gc);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, "__gc");
        lua_setfield(L, -2, "__close");
    }
    lua_setmetatable(L, -2);
    lua_toclose(L, -1); /* the buffers go as soon as the call ends, error or not */
    size_t len = 0;
    ln_lua_check_status(L, ln_checkpoint_read_file(path, &box->bytes, &len), fname);
    int st = ln_checkpoint_parse(box->bytes, len, &box->root);
    if (st != LN_OK)
        ln_lua_fail(L, fname, "'%s': %s", path, ln_last_error());
    lua_newtable(L);
    int built = lua_gettop(L);
    push_value(L, box->root, fname, built);
    return 1; /* the box's __close frees the buffers */
}

void ln_lua_open_checkpoint(lua_State *L)
{
    static const luaL_Reg functions[] = {{"checkpoint_save", l_checkpoint_save},
                                         {"checkpoint_load", l_checkpoint_load},
                                         {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
}
