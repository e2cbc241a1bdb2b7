/* Device objects: lunet.device, lunet.devices, lunet.cuda_available. */
#include <stdio.h>
#include <string.h>

#include "../status.h"
#include "binding.h"

/* Registry key of the table name -> device userdata, so each device has one
 * object and `t:device() == lunet.device("cpu")` holds. */
static const char device_cache_key = 'd';
/* Why the CUDA module could not be loaded, once tried. */
static char cuda_load_error[512];
static int cuda_load_tried;

/* Loads lunet/cuda.so on first need and registers its backend. It is a
 * separate module so that lunet works where CUDA is not installed. */
static void ensure_cuda_loaded(lua_State *L)
{
    if (cuda_load_tried)
        return;
    cuda_load_tried = 1;
    int top = lua_gettop(L);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "lunet.cuda");
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        if (msg && strstr(msg, "module 'lunet.cuda' not found"))
            snprintf(cuda_load_error, sizeof cuda_load_error,
                     "lunet was built without CUDA support (lunet/cuda.so is not "
                     "installed: build lunet where the CUDA toolkit and cuDNN 9 are "
                     "installed)");
        else
            snprintf(cuda_load_error, sizeof cuda_load_error,
                     "lunet/cuda.so could not be loaded: %s", msg ? msg : "?");
        lua_settop(L, top);
        return;
    }
    const ln_backend *backend = NULL;
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "backend");
        backend = lua_touserdata(L, -1);
    }
    if (!backend)
        snprintf(cuda_load_error, sizeof cuda_load_error,
                 "lunet.cuda did not provide a backend");
    else if (ln_device_register_cuda(backend) != LN_OK)
        snprintf(cuda_load_error, sizeof cuda_load_error, "%s", ln_last_error());
    lua_settop(L, top);
}

ln_device *ln_lua_device_by_name(lua_State *L, const char *name, const char *fname)
{
    ln_device *dev = NULL;
    ln_lua_check_status(L, ln_device_check_name(name), fname);
    if (strncmp(name, "cuda", 4) == 0) {
        ensure_cuda_loaded(L);
        if (!ln_device_cuda_registered())
            ln_lua_fail(L, fname, "device '%s' is not available: %s", name,
                        cuda_load_error);
    }
    ln_lua_check_status(L, ln_device_lookup(name, &dev), fname);
    return dev;
}

/* The device in the userdata at idx, or NULL. Every device userdata is made
 * once, into the device cache: one that is not there only wears the device
 * metatable (debug.setmetatable) and is not read. */
static ln_device **to_device(lua_State *L, int idx)
{
    ln_device **ud = luaL_testudata(L, idx, LN_DEVICE_MT);
    if (!ud || lua_rawlen(L, idx) != sizeof *ud)
        return NULL;
    idx = lua_absindex(L, idx);
    int found = 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &device_cache_key);
    lua_pushnil(L);
    while (!found && lua_next(L, -2)) {
        found = lua_rawequal(L, -1, idx);
        lua_pop(L, 1);
    }
    lua_pop(L, found ? 2 : 1);
    return found ? ud : NULL;
}

ln_device *ln_lua_check_device(lua_State *L, int idx, const char *fname)
{
    ln_device **ud = to_device(L, idx);
    if (ud)
        return *ud;
    if (lua_type(L, idx) == LUA_TSTRING)
        return ln_lua_device_by_name(L, lua_tostring(L, idx), fname);
    ln_lua_fail(L, fname, "argument #%d: expected a device or a device name such as "
                "\"cpu\" or \"cuda:0\", got %s", idx, luaL_typename(L, idx));
    return NULL;
}

void ln_lua_push_device(lua_State *L, ln_device *dev)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &device_cache_key);
    if (lua_getfield(L, -1, dev->name) == LUA_TNIL) {
        lua_pop(L, 1);
        ln_device **ud = lua_newuserdatauv(L, sizeof *ud, 0);
        *ud = dev;
        luaL_setmetatable(L, LN_DEVICE_MT);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, dev->name);
    }
    lua_remove(L, -2);
}

static ln_device *check_self(lua_State *L, const char *fname)
{
    ln_device **ud = to_device(L, 1);
    if (!ud)
        ln_lua_fail(L, fname, "expected a device as self (use dev:%s())",
                    strchr(fname, ':') ? strchr(fname, ':') + 1 : fname);
    return *ud;
}

static int l_device(lua_State *L)
{
    const char *fname = "lunet.device";
    if (lua_isnoneornil(L, 1)) {
        ln_lua_push_device(L, ln_device_cpu());
        return 1;
    }
    ln_lua_push_device(L, ln_lua_check_device(L, 1, fname));
    return 1;
}

static int l_devices(lua_State *L)
{
    ensure_cuda_loaded(L);
    lua_newtable(L);
    lua_pushliteral(L, "cpu");
    lua_rawseti(L, -2, 1);
    int n = ln_device_cuda_count(NULL);
    for (int i = 0; i < n; i++) {
        lua_pushfstring(L, "cuda:%d", i);
        lua_rawseti(L, -2, i + 2);
    }
    return 1;
}

static int l_cuda_available(lua_State *L)
{
    ensure_cuda_loaded(L);
    if (!ln_device_cuda_registered()) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, cuda_load_error);
        return 2;
    }
    const char *reason;
    if (ln_device_cuda_count(&reason) == 0) {
        lua_pushboolean(L, 0);
        lua_pushfstring(L, "no CUDA device: %s", reason);
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int l_synchronize(lua_State *L)
{
    const char *fname = "lunet.Device:synchronize";
    ln_device *dev = check_self(L, fname);
    ln_lua_check_status(L, ln_device_synchronize(dev), fname);
    return 0;
}

static void version_string(char *buf, size_t len, int v, int major_div)
{
    /* CUDA encodes 12040 as 12.4; cuDNN 91900 as 9.19.0; cuBLAS 130100 as 13.1.0 */
    if (v <= 0)
        snprintf(buf, len, "unknown");
    else if (major_div == 1000)
        snprintf(buf, len, "%d.%d", v / 1000, (v % 1000) / 10);
    else
        snprintf(buf, len, "%d.%d.%d", v / major_div, (v % major_div) / 100, v % 100);
}

static int l_info(lua_State *L)
{
    const char *fname = "lunet.Device:info";
    ln_device *dev = check_self(L, fname);
    ln_device_info info;
    memset(&info, 0, sizeof info);
    if (!dev->backend->info)
        ln_lua_check_status(L, ln_device_unsupported(dev, "info"), fname);
    ln_lua_check_status(L, dev->backend->info(dev->ctx, &info), fname);
    char buf[64];
    lua_newtable(L);
    lua_pushstring(L, info.name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, dev->name);
    lua_setfield(L, -2, "device");
    if (dev->type != LN_DEVICE_CUDA) {
        lua_pushinteger(L, info.cores);
        lua_setfield(L, -2, "cores");
        lua_pushinteger(L, info.threads);
        lua_setfield(L, -2, "threads");
        lua_pushstring(L, info.blas);
        lua_setfield(L, -2, "blas");
        lua_pushstring(L, info.kernels);
        lua_setfield(L, -2, "kernels");
        return 1;
    }
    snprintf(buf, sizeof buf, "%d.%d", info.cc_major, info.cc_minor);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "compute_capability");
    lua_pushinteger(L, (lua_Integer)info.memory_bytes);
    lua_setfield(L, -2, "memory_bytes");
    lua_pushinteger(L, info.multiprocessors);
    lua_setfield(L, -2, "multiprocessors");
    /* which ops run host-staged (cuda/unverified.c), so a timing says so */
    lua_pushstring(L, info.kernels);
    lua_setfield(L, -2, "kernels");
    version_string(buf, sizeof buf, info.driver_version, 1000);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "driver_version");
    version_string(buf, sizeof buf, info.runtime_version, 1000);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "runtime_version");
    version_string(buf, sizeof buf, info.cudnn_version, 10000);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "cudnn_version");
    version_string(buf, sizeof buf, info.cublas_version, 10000);
    lua_pushstring(L, buf);
    lua_setfield(L, -2, "cublas_version");
    return 1;
}

static int l_device_index(lua_State *L)
{
    ln_device *dev = check_self(L, "lunet.Device");
    const char *key = lua_tostring(L, 2);
    if (key && strcmp(key, "type") == 0) {
        lua_pushstring(L, ln_device_type_name(dev->type));
    } else if (key && strcmp(key, "index") == 0) {
        lua_pushinteger(L, dev->index);
    } else if (key && strcmp(key, "name") == 0) {
        lua_pushstring(L, dev->name);
    } else {
        luaL_getmetatable(L, LN_DEVICE_MT);
        lua_getfield(L, -1, "methods");
        lua_pushvalue(L, 2);
        lua_rawget(L, -2);
    }
    return 1;
}

static int l_device_tostring(lua_State *L)
{
    ln_device *dev = check_self(L, "lunet.Device:__tostring");
    lua_pushstring(L, dev->name);
    return 1;
}

void ln_lua_open_device(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"synchronize", l_synchronize}, {"info", l_info}, {NULL, NULL}};
    static const luaL_Reg functions[] = {{"device", l_device},
                                         {"devices", l_devices},
                                         {"cuda_available", l_cuda_available},
                                         {NULL, NULL}};
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &device_cache_key);
    luaL_newmetatable(L, LN_DEVICE_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "methods");
    lua_pushcfunction(L, l_device_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_device_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "lunet.Device");
    lua_setfield(L, -2, "__name");
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
