/* luaopen_lunet_core: the C module behind require("lunet"). */
#include <time.h>

#include "../random.h"
#include "../status.h"
#include "binding.h"

#define LUNET_VERSION "0.1.0"

static int l_manual_seed(lua_State *L)
{
    lua_Integer seed = ln_lua_check_integer(L, 1, "lunet.manual_seed", "seed", 0,
                                            LUA_MAXINTEGER);
    ln_random_seed((uint64_t)seed);
    return 0;
}

static int l_initial_seed(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ln_random_get_seed());
    return 1;
}

static int l_clock(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int l_set_num_threads(lua_State *L)
{
    const char *fname = "lunet.set_num_threads";
    lua_Integer n = ln_lua_check_integer(L, 1, fname, "n", 1, 1024);
    ln_device *cpu = ln_device_cpu();
    ln_lua_check_status(L, cpu->backend->set_num_threads(cpu->ctx, (int)n), fname);
    return 0;
}

static int l_get_num_threads(lua_State *L)
{
    ln_device *cpu = ln_device_cpu();
    ln_device_info info;
    ln_lua_check_status(L, cpu->backend->info(cpu->ctx, &info), "lunet.get_num_threads");
    lua_pushinteger(L, info.threads);
    return 1;
}

LUNET_EXPORT int luaopen_lunet_core(lua_State *L);
LUNET_EXPORT int luaopen_lunet_core(lua_State *L)
{
    static const luaL_Reg functions[] = {{"manual_seed", l_manual_seed},
                                         {"initial_seed", l_initial_seed},
                                         {"clock", l_clock},
                                         {"set_num_threads", l_set_num_threads},
                                         {"get_num_threads", l_get_num_threads},
                                         {"_raise", ln_lua_raise},
                                         {NULL, NULL}};
    if (!ln_device_cpu())
        return luaL_error(L, "lunet: could not open the cpu device: %s", ln_last_error());
    luaL_newlib(L, functions);
    lua_pushliteral(L, LUNET_VERSION);
    lua_setfield(L, -2, "version");
    ln_lua_open_device(L);
    ln_lua_open_tensor(L);
    ln_lua_open_io(L);
    ln_lua_open_nn(L);
    ln_lua_open_step(L);
    ln_lua_open_tensor_math(L); /* after nn: its entry points join lunet.ops */
    ln_lua_open_checkpoint(L);
    ln_lua_open_transforms(L);
    ln_lua_open_image(L);
    ln_lua_open_cpu(L);
    return 1;
}
