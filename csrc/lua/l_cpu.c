/* lunet.autocast, lunet.precision (API.md "Precision"), and the CPU kernel
 * levels: lunet.cpu_levels() lists the instruction-set levels this build and
 * this CPU both have, lunet.set_cpu_level(name) switches the cpu device to
 * one (tests run every level in one process; $LUNET_CPU_LEVEL does the same
 * at load time). */
#include <string.h>

#include "../cpu/cpu.h"
#include "../device.h"
#include "../precision.h"
#include "../status.h"
#include "binding.h"

static int l_autocast(lua_State *L)
{
    const char *fname = "lunet.autocast";
    ln_precision p = LN_PRECISION_FLOAT32;
    if (lua_type(L, 1) == LUA_TBOOLEAN && !lua_toboolean(L, 1)) {
        p = LN_PRECISION_FLOAT32;
    } else if (lua_type(L, 1) == LUA_TSTRING) {
        if (ln_precision_parse(lua_tostring(L, 1), &p) != LN_OK)
            return ln_lua_fail(L, fname,
                               "unknown dtype '%s' (expected \"float32\", \"bfloat16\", "
                               "\"tf32\", \"float16\" or false)",
                               lua_tostring(L, 1));
    } else {
        return ln_lua_fail(L, fname, "expected a dtype name or false, got %s",
                           luaL_typename(L, 1));
    }
    ln_precision_set(p);
    return 0;
}

static int l_precision(lua_State *L)
{
    lua_pushstring(L, ln_precision_name(ln_precision_get()));
    return 1;
}

static ln_cpu_context *cpu_context(lua_State *L, const char *fname)
{
    ln_device *cpu = ln_device_cpu();
    if (!cpu || !cpu->ctx)
        ln_lua_fail(L, fname, "the cpu device is not open");
    return cpu->ctx;
}

static int l_cpu_levels(lua_State *L)
{
    lua_newtable(L);
    int n = 0;
    for (int i = 0; ln_cpu_levels[i]; i++)
        if (ln_cpu_level_supported(ln_cpu_levels[i])) {
            lua_pushstring(L, ln_cpu_levels[i]->name);
            lua_rawseti(L, -2, ++n);
        }
    return 1;
}

static int l_set_cpu_level(lua_State *L)
{
    const char *fname = "lunet.set_cpu_level";
    const char *name = luaL_checkstring(L, 1);
    ln_cpu_context *ctx = cpu_context(L, fname);
    const char *before = ctx->kernels->name;
    ln_lua_check_status(L, ln_cpu_select_level(ctx, name), fname);
    lua_pushstring(L, before);
    return 1;
}

void ln_lua_open_cpu(lua_State *L)
{
    static const luaL_Reg functions[] = {{"autocast", l_autocast},
                                         {"precision", l_precision},
                                         {"cpu_levels", l_cpu_levels},
                                         {"set_cpu_level", l_set_cpu_level},
                                         {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
}
