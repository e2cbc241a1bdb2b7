#include "fuzz_util.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "status.h"

int luaopen_lunet_core(lua_State *L);

void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\n*** lunet fuzz invariant violated: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n", stderr);
    va_end(ap);
    abort();
}

int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t path_len)
{
    int fd = memfd_create("lunet-fuzz", 0);
    if (fd < 0)
        fuzz_fail("memfd_create failed");
    size_t done = 0;
    while (done < size) {
        ssize_t n = write(fd, data + done, size - done);
        if (n <= 0)
            fuzz_fail("writing the memfd failed");
        done += (size_t)n;
    }
    snprintf(path, path_len, "/proc/self/fd/%d", fd);
    return fd;
}

void fuzz_memfile_close(int fd)
{
    close(fd);
}

const char *fuzz_scratch_dir(void)
{
    const char *env = getenv("LUNET_FUZZ_TMPDIR");
    if (env && *env)
        return env;
    return access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
}

void fuzz_check_message(const char *prefix)
{
    const char *msg = ln_last_error();
    if (!msg || !*msg)
        fuzz_fail("a call failed without a message");
    if (prefix && strncmp(msg, prefix, strlen(prefix)) != 0)
        fuzz_fail("message \"%s\" does not start with \"%s\"", msg, prefix);
}

int fuzz_check_read(const uint8_t *data, size_t size, int parsed, int read, const char *path)
{
    int gzipped = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzipped && (read == LN_OK) != (parsed == LN_OK))
        fuzz_fail("a raw file reads %s but its bytes parse %s", read == LN_OK ? "ok" : "failed",
                  parsed == LN_OK ? "ok" : "failed");
    if (read != LN_OK)
        fuzz_check_message(path);
    return read == LN_OK;
}

lua_State *fuzz_lua_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        fuzz_fail("luaL_newstate failed");
    luaL_openlibs(L);
    luaL_requiref(L, "lunet.core", luaopen_lunet_core, 0);
    lua_pushvalue(L, -1);
    lua_setglobal(L, "core");
    lua_getfield(L, -1, "set_num_threads");
    lua_pushinteger(L, 1);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    return L;
}

void fuzz_lua_run(lua_State *L, const char *chunk_name, const char *chunk, int nargs)
{
    if (luaL_loadbuffer(L, chunk, strlen(chunk), chunk_name) != LUA_OK)
        fuzz_fail("the harness's Lua does not load: %s", lua_tostring(L, -1));
    lua_insert(L, -nargs - 1);
    if (lua_pcall(L, nargs, 0, 0) != LUA_OK)
        fuzz_fail("%s", lua_tostring(L, -1));
}
