/* luaopen_lunet_cuda: the Lua face of lunet/cuda.so.
 *
 * require("lunet.cuda") returns a table whose `backend` field (a light
 * userdata pointing at ln_cuda_backend) the core registers on first use of a
 * CUDA device (csrc/lua/l_device.c). The other fields are CUDA-only
 * controls, reachable as lunet.cuda.* (lua/lunet/init.lua):
 *   set_tf32(bool), get_tf32()       TF32 math for float32 GEMM/convolution
 *   set_unverified_kernels(bool),    the kernels never run on a GPU (off:
 *   get_unverified_kernels()         host-staged; see unverified.c): the
 *                                    state and its one-line note
 *   available()                      true, or false and the reason
 *   device_count()                   number of devices (and the reason if 0)
 *   memory_stats([device])           the caching allocator's counters
 *   empty_cache([device])            returns cached blocks to the driver
 *   missing_slots()                  names of empty backend slots, and how
 *                                    many slots were checked
 *   self_test()                      host-side checks needing no GPU:
 *                                    failures, number of checks, sample
 *                                    error messages
 *   error_probe([device])            refused calls to the runtime, cuBLAS
 *                                    and cuDNN on a GPU: their messages */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend_slots.h"
#include "device.h"
#include "lunet_cuda.h"
#include "status.h"

#define LUNET_EXPORT __attribute__((visibility("default")))

static int l_set_tf32(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TBOOLEAN)
        return luaL_error(L, "lunet.cuda.set_tf32: expected true or false, got %s",
                          luaL_typename(L, 1));
    ln_cuda_set_tf32(lua_toboolean(L, 1));
    return 0;
}

static int l_set_unverified_kernels(lua_State *L)
{
    if (lua_type(L, 1) != LUA_TBOOLEAN)
        return luaL_error(L, "lunet.cuda.set_unverified_kernels: expected true or false, got %s",
                          luaL_typename(L, 1));
    ln_cuda_set_unverified_kernels(lua_toboolean(L, 1));
    return 0;
}

static int l_get_unverified_kernels(lua_State *L)
{
    lua_pushboolean(L, ln_cuda_get_unverified_kernels());
    lua_pushstring(L, ln_cuda_kernels_note());
    return 2;
}

/* LUNET_CUDA_UNVERIFIED_KERNELS=0|1 overrides the build's default. */
static int unverified_kernels_from_environment(lua_State *L)
{
    const char *v = getenv("LUNET_CUDA_UNVERIFIED_KERNELS");
    if (!v)
        ln_cuda_set_unverified_kernels(ln_cuda_get_unverified_kernels());
    else if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)
        ln_cuda_set_unverified_kernels(v[0] == '1');
    else
        return luaL_error(L, "lunet.cuda: LUNET_CUDA_UNVERIFIED_KERNELS must be 0 or 1, got '%s'",
                          v);
    return 0;
}

static int l_get_tf32(lua_State *L)
{
    lua_pushboolean(L, ln_cuda_get_tf32());
    return 1;
}

static int l_available(lua_State *L)
{
    const char *reason;
    if (ln_cuda_devices(&reason) > 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushfstring(L, "no CUDA device: %s", reason);
    return 2;
}

static int l_device_count(lua_State *L)
{
    const char *reason;
    int n = ln_cuda_devices(&reason);
    lua_pushinteger(L, n);
    if (n > 0)
        return 1;
    lua_pushstring(L, reason);
    return 2;
}

/* The CUDA device number named by argument 1: nil (device 0), a number
 * (0-based, as CUDA numbers devices), "cuda" / "cuda:N", or a device object. */
static int check_device_index(lua_State *L, const char *fname)
{
    const char *reason;
    int count = ln_cuda_devices(&reason);
    if (count == 0)
        luaL_error(L, "%s: CUDA not available: no CUDA device: %s", fname, reason);
    lua_Integer index = 0;
    int t = lua_type(L, 1);
    if (t == LUA_TNONE || t == LUA_TNIL) {
        index = 0;
    } else if (t == LUA_TNUMBER && lua_isinteger(L, 1)) {
        index = lua_tointeger(L, 1);
    } else if (t == LUA_TSTRING) {
        const char *name = lua_tostring(L, 1);
        /* digits only, at most 6: sscanf's %d wrapped "cuda:4294967296" to 0 */
        size_t digits = strncmp(name, "cuda:", 5) == 0 ? strspn(name + 5, "0123456789") : 0;
        if (strcmp(name, "cuda") == 0)
            index = 0;
        else if (digits == 0 || digits > 6 || name[5 + digits] != '\0')
            luaL_error(L, "%s: expected a CUDA device such as \"cuda:0\", got \"%s\"", fname,
                       name);
        else
            index = atoi(name + 5);
    } else {
        ln_device **ud = luaL_testudata(L, 1, "lunet.Device");
        /* the metatable alone proves nothing (debug.setmetatable): the size too */
        if (ud && lua_rawlen(L, 1) != sizeof *ud)
            ud = NULL;
        if (!ud || (*ud)->type != LN_DEVICE_CUDA) {
            luaL_error(L, "%s: expected a CUDA device (a device object, \"cuda:N\" or its "
                       "number), got %s", fname, ud ? (*ud)->name : luaL_typename(L, 1));
            return -1; /* not reached: luaL_error does not return */
        }
        index = (*ud)->index;
    }
    if (index < 0 || index >= count)
        luaL_error(L, "%s: device cuda:%I does not exist (%d CUDA device%s)", fname,
                   (LUAI_UACINT)index, count, count == 1 ? "" : "s");
    return (int)index;
}

static void set_number(lua_State *L, const char *key, uint64_t value)
{
    lua_pushinteger(L, (lua_Integer)value);
    lua_setfield(L, -2, key);
}

static int l_memory_stats(lua_State *L)
{
    int index = check_device_index(L, "lunet.cuda.memory_stats");
    ln_cuda_memory_stats s;
    ln_cuda_memory_stats_of(ln_cuda_context_of(index), &s);
    lua_createtable(L, 0, 9);
    set_number(L, "allocated_bytes", s.allocated_bytes);
    set_number(L, "cached_bytes", s.cached_bytes);
    set_number(L, "peak_bytes", s.peak_bytes);
    set_number(L, "device_allocations", s.device_allocations);
    set_number(L, "cache_hits", s.cache_hits);
    set_number(L, "device_frees", s.device_frees);
    set_number(L, "conv_algorithms", s.conv_algorithms);
    set_number(L, "workspace_bytes", s.workspace_bytes);
    lua_pushboolean(L, ln_cuda_get_tf32());
    lua_setfield(L, -2, "tf32");
    return 1;
}

static int l_empty_cache(lua_State *L)
{
    int index = check_device_index(L, "lunet.cuda.empty_cache");
    void *ctx = ln_cuda_context_of(index);
    if (!ctx)
        return 0; /* never opened: nothing cached */
    if (ln_cuda_empty_cache(ctx) != LN_OK)
        return luaL_error(L, "lunet.cuda.empty_cache: %s", ln_cuda_last_error());
    return 0;
}

static int l_missing_slots(lua_State *L)
{
    int count = ln_backend_slot_count(), missing = 0, required = 0;
    lua_newtable(L);
    for (int i = 0; i < count; i++) {
        if (ln_backend_slot_optional(i))
            continue;
        required++;
        if (!ln_backend_slot_filled(&ln_cuda_backend, i)) {
            lua_pushstring(L, ln_backend_slot_name(i));
            lua_rawseti(L, -2, ++missing);
        }
    }
    lua_pushinteger(L, required);
    return 2;
}

/* The three messages of ln_cuda_error_probe, on an open device. */
static int l_error_probe(lua_State *L)
{
    int index = check_device_index(L, "lunet.cuda.error_probe");
    void *ctx = ln_cuda_context_of(index);
    if (!ctx)
        return luaL_error(L, "lunet.cuda.error_probe: cuda:%d is not open yet (use it first, "
                          "e.g. lunet.device(\"cuda:%d\"))", index, index);
    char messages[3][512];
    if (ln_cuda_error_probe(ctx, messages) != LN_OK)
        return luaL_error(L, "lunet.cuda.error_probe: the device failed after the probes: %s",
                          ln_cuda_last_error());
    lua_createtable(L, 3, 0);
    for (int i = 0; i < 3; i++) {
        lua_pushstring(L, messages[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* failures, checks, samples: see ln_cuda_self_test. */
static int l_self_test(lua_State *L)
{
    char report[1024], samples[1024];
    long checks = 0;
    int failures = ln_cuda_self_test(report, sizeof report, &checks, samples, sizeof samples);
    lua_newtable(L);
    if (failures > 0) {
        lua_pushfstring(L, "%d failure%s: %s", failures, failures == 1 ? "" : "s", report);
        lua_rawseti(L, -2, 1);
    }
    lua_pushinteger(L, (lua_Integer)checks);
    lua_pushstring(L, samples);
    return 3;
}

LUNET_EXPORT int luaopen_lunet_cuda(lua_State *L);
LUNET_EXPORT int luaopen_lunet_cuda(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"set_tf32", l_set_tf32},         {"get_tf32", l_get_tf32},
        {"available", l_available},       {"device_count", l_device_count},
        {"memory_stats", l_memory_stats}, {"empty_cache", l_empty_cache},
        {"missing_slots", l_missing_slots}, {"self_test", l_self_test},
        {"error_probe", l_error_probe},
        {"set_unverified_kernels", l_set_unverified_kernels},
        {"get_unverified_kernels", l_get_unverified_kernels},
        {NULL, NULL}};
    unverified_kernels_from_environment(L);
    luaL_newlib(L, functions);
    lua_pushlightuserdata(L, (void *)&ln_cuda_backend);
    lua_setfield(L, -2, "backend");
    lua_pushliteral(L, "cuda");
    lua_setfield(L, -2, "name");
    return 1;
}
