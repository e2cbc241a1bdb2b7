#include "binding.h"
#include "tensor_userdata.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../status.h"

/* lunet's own Lua modules (the .lua files in a "lunet" directory) call the C
 * functions for the user: an error is reported at the first line outside
 * them, so a mistake in a script points at the script even when it went
 * through nn.Sequential. `source` is a chunk name such as "@./lua/lunet/nn.lua". */
static int is_lunet_module(const char *source)
{
    const char *slash = strrchr(source, '/');
    if (!slash || slash - source < 5 || strncmp(slash - 5, "lunet", 5) != 0)
        return 0;
    if (slash - source > 5 && slash[-6] != '/' && slash[-6] != '@')
        return 0; /* a directory such as "mylunet" */
    size_t len = strlen(slash);
    return len > 4 && strcmp(slash + len - 4, ".lua") == 0;
}

static void push_where(lua_State *L)
{
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0 || is_lunet_module(ar.source))
            continue;
        lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
        return;
    }
    lua_pushliteral(L, "");
}

static int raise_error(lua_State *L, const char *fname, const char *msg)
{
    push_where(L);
    lua_pushfstring(L, "%s: %s", fname, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

int ln_lua_raise(lua_State *L)
{
    const char *msg = luaL_checkstring(L, 1);
    push_where(L);
    lua_pushstring(L, msg);
    lua_concat(L, 2);
    return lua_error(L);
}

void ln_lua_check_status(lua_State *L, int st, const char *fname)
{
    if (st != LN_OK)
        raise_error(L, fname, ln_last_error());
}

int ln_lua_fail(lua_State *L, const char *fname, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return raise_error(L, fname, msg);
}

/* Lua's collector sees a tensor as a userdata of a hundred bytes, not the
 * megabytes behind it: a loop of `c = a + b` on 4 MB tensors piled up 1.8 GB
 * of garbage before a cycle ran. So tensor memory gets a collection policy of
 * its own, like Lua's for its own memory: once the tensors allocated since
 * the last full collection weigh as much as the tensors that were live after
 * it (and at least 16 MiB), a full collection runs, freeing the unreachable
 * ones. Garbage tensors never hold more than about the live ones; a steady
 * training step allocates nothing and never triggers it. */
#define GC_MIN_BYTES ((uint64_t)16 << 20)

static void pace_collector(lua_State *L)
{
    static uint64_t allocated_at_mark, live_at_mark;
    uint64_t allocated = ln_tensor_allocated_bytes();
    uint64_t since = allocated - allocated_at_mark;
    if (since < GC_MIN_BYTES || since < live_at_mark || !lua_gc(L, LUA_GCISRUNNING))
        return;
    lua_gc(L, LUA_GCCOLLECT);
    allocated_at_mark = ln_tensor_allocated_bytes();
    live_at_mark = ln_tensor_live_bytes();
}

ln_tensor *ln_lua_new_tensor(lua_State *L)
{
    pace_collector(L);
    /* tensor then tag: see tensor_userdata.h */
    ln_tensor_userdata *u = lua_newuserdatauv(L, sizeof *u, 0);
    memset(u, 0, sizeof *u);
    u->tag = LN_TENSOR_USERDATA_TAG;
    luaL_setmetatable(L, LN_TENSOR_MT);
    return &u->tensor;
}

ln_tensor *ln_lua_to_tensor(lua_State *L, int idx)
{
    return ln_tensor_userdata_at(L, idx);
}

ln_tensor *ln_lua_check_self(lua_State *L, const char *fname)
{
    ln_tensor *t = ln_lua_to_tensor(L, 1);
    if (!t) {
        const char *method = strchr(fname, ':');
        ln_lua_fail(L, fname, "expected a lunet tensor as self, got %s (call it as t:%s(...), "
                    "with a colon)", luaL_typename(L, 1), method ? method + 1 : fname);
    }
    if (!t->storage)
        ln_lua_fail(L, fname, "the tensor was freed");
    return t;
}

ln_tensor *ln_lua_check_tensor(lua_State *L, int idx, const char *fname)
{
    ln_tensor *t = ln_lua_to_tensor(L, idx);
    if (!t)
        ln_lua_fail(L, fname, "argument #%d: expected a lunet tensor, got %s", idx,
                    luaL_typename(L, idx));
    if (!t->storage)
        ln_lua_fail(L, fname, "argument #%d: the tensor was freed", idx);
    return t;
}

static int64_t check_size(lua_State *L, int idx, const char *fname, int pos)
{
    int isint = 0;
    lua_Integer v = 0;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        v = lua_tointegerx(L, idx, &isint);
        if (!isint) {
            lua_Number n = lua_tonumber(L, idx);
            /* 1e12 is a float in Lua; accept any integral float in range */
            if (n == floor(n) && fabs(n) < 9.2e18) {
                v = (lua_Integer)n;
                isint = 1;
            }
        }
    }
    if (!isint)
        ln_lua_fail(L, fname, "shape: size %d must be an integer, got %s", pos,
                    lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx)
                                                    : luaL_typename(L, idx));
    if (v < 0)
        ln_lua_fail(L, fname, "shape: size %d is negative (%lld)", pos, (long long)v);
    return (int64_t)v;
}

int ln_lua_check_shape(lua_State *L, int idx, const char *fname, int64_t *shape)
{
    if (lua_type(L, idx) == LUA_TTABLE) {
        lua_Unsigned n = lua_rawlen(L, idx);
        if (n > LN_MAX_DIMS)
            ln_lua_fail(L, fname, "shape has %d sizes; at most %d are allowed", (int)n,
                        LN_MAX_DIMS);
        for (int i = 0; i < (int)n; i++) {
            lua_rawgeti(L, idx, i + 1);
            shape[i] = check_size(L, -1, fname, i + 1);
            lua_pop(L, 1);
        }
        return (int)n;
    }
    if (lua_type(L, idx) == LUA_TNUMBER) {
        int n = 0;
        while (lua_type(L, idx + n) == LUA_TNUMBER) {
            if (n == LN_MAX_DIMS)
                ln_lua_fail(L, fname, "at most %d sizes are allowed", LN_MAX_DIMS);
            shape[n] = check_size(L, idx + n, fname, n + 1);
            n++;
        }
        return n;
    }
    return ln_lua_fail(L, fname, "argument #%d: expected a shape (an array of sizes "
                       "such as {64, 1, 28, 28}), got %s", idx, luaL_typename(L, idx));
}

ln_dtype ln_lua_check_dtype(lua_State *L, int idx, const char *fname)
{
    ln_dtype dt = LN_FLOAT32;
    if (lua_type(L, idx) != LUA_TSTRING)
        ln_lua_fail(L, fname, "dtype must be a name such as \"float32\", got %s",
                    luaL_typename(L, idx));
    const char *name = lua_tostring(L, idx);
    if (ln_dtype_from_name(name, &dt) != 0)
        ln_lua_fail(L, fname, "unknown dtype \"%s\" (expected \"float32\", \"int32\", "
                    "\"uint8\", \"float16\" or \"bfloat16\")", name);
    return dt;
}

void ln_lua_tensor_options(lua_State *L, int idx, const char *fname, ln_dtype *dtype,
                           ln_device **dev)
{
    *dtype = LN_FLOAT32;
    *dev = ln_device_cpu();
    if (lua_isnoneornil(L, idx))
        return;
    if (lua_type(L, idx) != LUA_TTABLE)
        ln_lua_fail(L, fname, "argument #%d: expected an options table {dtype=, device=}, "
                    "got %s", idx, luaL_typename(L, idx));
    int top = lua_gettop(L);
    idx = lua_absindex(L, idx);
    /* a misspelt option must not be silently ignored */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        if (!key || (strcmp(key, "dtype") != 0 && strcmp(key, "device") != 0))
            ln_lua_fail(L, fname, "unknown option %s%s%s (known: device, dtype)",
                        key ? "'" : "a ", key ? key : luaL_typename(L, -1), key ? "'" : " key");
    }
    if (lua_getfield(L, idx, "dtype") != LUA_TNIL)
        *dtype = ln_lua_check_dtype(L, top + 1, fname);
    if (lua_getfield(L, idx, "device") != LUA_TNIL) {
        if (lua_type(L, top + 2) != LUA_TSTRING && !luaL_testudata(L, top + 2, LN_DEVICE_MT))
            ln_lua_fail(L, fname, "option 'device' must be a device or a device name such as "
                        "\"cpu\" or \"cuda:0\", got %s", luaL_typename(L, top + 2));
        *dev = ln_lua_check_device(L, top + 2, fname);
    }
    lua_settop(L, top);
}

lua_Integer ln_lua_check_integer(lua_State *L, int idx, const char *fname,
                                 const char *argname, lua_Integer lo, lua_Integer hi)
{
    int isint = 0;
    lua_Integer v = 0;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        v = lua_tointegerx(L, idx, &isint);
        if (!isint) {
            lua_Number n = lua_tonumber(L, idx);
            if (n == floor(n) && fabs(n) < 9.2e18) {
                v = (lua_Integer)n;
                isint = 1;
            }
        }
    }
    if (!isint)
        ln_lua_fail(L, fname, "%s must be an integer, got %s", argname,
                    lua_type(L, idx) == LUA_TNUMBER ? lua_tostring(L, idx)
                                                    : luaL_typename(L, idx));
    if (v < lo || v > hi)
        ln_lua_fail(L, fname, "%s = %lld is out of range (%lld..%lld)", argname,
                    (long long)v, (long long)lo, (long long)hi);
    return v;
}

lua_Number ln_lua_check_number(lua_State *L, int idx, const char *fname,
                               const char *argname)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "%s must be a number, got %s", argname,
                    luaL_typename(L, idx));
    lua_Number v = lua_tonumber(L, idx);
    if (!isfinite(v))
        ln_lua_fail(L, fname, "%s must be finite, got %s", argname, lua_tostring(L, idx));
    return v;
}

const char *ln_lua_check_path(lua_State *L, int idx, const char *fname)
{
    if (lua_type(L, idx) != LUA_TSTRING)
        ln_lua_fail(L, fname, "argument #%d: expected a file path, got %s", idx,
                    luaL_typename(L, idx));
    return lua_tostring(L, idx);
}
