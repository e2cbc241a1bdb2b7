/* Image files for lunet.datasets.image_folder: directory listing, header
 * probes, decoding (csrc/io/image.c), the background batch decoder
 * (csrc/io/image_loader.c), and writing images (tests make their own). */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../io/image.h"
#include "../io/image_loader.h"
#include "../status.h"
#include "binding.h"

#define LOADER_TYPE "lunet.ImageLoader"

/* lunet.image_formats() -> {jpeg = bool, png = bool}: what this build decodes. */
static int l_image_formats(lua_State *L)
{
    lua_createtable(L, 0, 2);
    lua_pushboolean(L, ln_image_format_supported(LN_IMAGE_JPEG));
    lua_setfield(L, -2, "jpeg");
    lua_pushboolean(L, ln_image_format_supported(LN_IMAGE_PNG));
    lua_setfield(L, -2, "png");
    return 1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* lunet.list_dir(path) -> array of {name =, kind = "file" | "dir" | "other"},
 * sorted by name (bytewise); "." and ".." and hidden entries left out. A
 * symbolic link counts as what it points to. */
static int l_list_dir(lua_State *L)
{
    const char *fname = "lunet.list_dir";
    const char *path = ln_lua_check_path(L, 1, fname);
    DIR *dir = opendir(path);
    if (!dir)
        return ln_lua_fail(L, fname, "%s: cannot list: %s", path, strerror(errno));
    /* names are collected in a Lua table first, so an error cannot leak the DIR */
    lua_newtable(L);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(dir);
    const char **names = lua_newuserdatauv(L, sizeof(char *) * (size_t)(n > 0 ? n : 1), 0);
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, -2, i + 1);
        names[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* still referenced by the table */
    }
    qsort(names, (size_t)n, sizeof *names, compare_names);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, names[i]);
        lua_setfield(L, -2, "name");
        lua_pushfstring(L, "%s/%s", path, names[i]);
        struct stat st;
        const char *kind = "other";
        if (stat(lua_tostring(L, -1), &st) == 0)
            kind = S_ISDIR(st.st_mode) ? "dir" : (S_ISREG(st.st_mode) ? "file" : "other");
        lua_pop(L, 1);
        lua_pushstring(L, kind);
        lua_setfield(L, -2, "kind");
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* lunet.image_probe(path) -> width, height, format ("JPEG" or "PNG"), from
 * the header; an error naming the file when it is not a readable image. */
static int l_image_probe(lua_State *L)
{
    const char *fname = "lunet.image_probe";
    const char *path = ln_lua_check_path(L, 1, fname);
    ln_image_format format;
    int width, height;
    ln_lua_check_status(L, ln_image_probe(path, &format, &width, &height), fname);
    lua_pushinteger(L, width);
    lua_pushinteger(L, height);
    lua_pushstring(L, ln_image_format_name(format));
    return 3;
}

/* lunet.image_load(path, height, width) -> uint8 {3, height, width}: decoded,
 * scaled to cover the size and centre-cropped. */
static int l_image_load(lua_State *L)
{
    const char *fname = "lunet.image_load";
    const char *path = ln_lua_check_path(L, 1, fname);
    int height = (int)ln_lua_check_integer(L, 2, fname, "height", 1, 16384);
    int width = (int)ln_lua_check_integer(L, 3, fname, "width", 1, 16384);
    ln_tensor *t = ln_lua_new_tensor(L);
    int64_t shape[3] = {3, height, width};
    ln_lua_check_status(L, ln_tensor_alloc(t, ln_device_cpu(), LN_UINT8, 3, shape), fname);
    ln_lua_check_status(L, ln_image_load(path, height, width, ln_tensor_data(t)), fname);
    return 1;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (m > n)
        return 0;
    for (size_t i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != suffix[i])
            return 0;
    }
    return 1;
}

/* lunet.image_write(path, t [, {format = "jpeg" | "png", quality = 90}]):
 * t uint8 {C, H, W} with C 1 or 3 on the CPU; the format follows the file
 * name's extension unless given. */
static int l_image_write(lua_State *L)
{
    const char *fname = "lunet.image_write";
    const char *path = ln_lua_check_path(L, 1, fname);
    ln_tensor *t = ln_lua_check_tensor(L, 2, fname);
    ln_image_format format = LN_IMAGE_UNKNOWN;
    int quality = 90;
    if (ends_with(path, ".png"))
        format = LN_IMAGE_PNG;
    else if (ends_with(path, ".jpg") || ends_with(path, ".jpeg"))
        format = LN_IMAGE_JPEG;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        if (lua_getfield(L, 3, "format") != LUA_TNIL) {
            const char *f = lua_tostring(L, -1);
            if (f && strcmp(f, "png") == 0)
                format = LN_IMAGE_PNG;
            else if (f && strcmp(f, "jpeg") == 0)
                format = LN_IMAGE_JPEG;
            else
                ln_lua_fail(L, fname, "format must be \"jpeg\" or \"png\", got %s",
                            f ? f : luaL_typename(L, -1));
        }
        lua_pop(L, 1);
        if (lua_getfield(L, 3, "quality") != LUA_TNIL)
            quality = (int)ln_lua_check_integer(L, -1, fname, "quality", 1, 100);
        lua_pop(L, 1);
    }
    if (format == LN_IMAGE_UNKNOWN)
        ln_lua_fail(L, fname, "%s: name the format ({format = \"png\"}) or use a .png, .jpg or "
                    ".jpeg file name", path);
    char shape[96];
    if (t->dtype != LN_UINT8 || t->ndim != 3 || !ln_tensor_device(t)->host_memory
        || !ln_tensor_is_contiguous(t))
        ln_lua_fail(L, fname, "expected a contiguous uint8 CPU tensor [C, H, W], got %s %s",
                    ln_dtype_name(t->dtype), ln_tensor_shape_string(t, shape, sizeof shape));
    if (t->shape[1] > 65535 || t->shape[2] > 65535 || t->shape[1] < 1 || t->shape[2] < 1)
        ln_lua_fail(L, fname, "cannot write an image of shape %s",
                    ln_tensor_shape_string(t, shape, sizeof shape));
    ln_lua_check_status(L, ln_image_write(path, format, ln_tensor_data(t), (int)t->shape[0],
                                          (int)t->shape[1], (int)t->shape[2], quality),
                        fname);
    return 0;
}

/* --- the background decoder ------------------------------------------------------- */

static ln_image_loader **check_loader(lua_State *L, const char *fname)
{
    ln_image_loader **ud = luaL_checkudata(L, 1, LOADER_TYPE);
    if (!*ud)
        ln_lua_fail(L, fname, "the image loader was closed");
    return ud;
}

/* lunet.image_loader{threads =, height =, width =, skip_bad = false} */
static int l_image_loader(lua_State *L)
{
    const char *fname = "lunet.image_loader";
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "threads");
    int threads = (int)ln_lua_check_integer(L, -1, fname, "threads", 1, 256);
    lua_getfield(L, 1, "height");
    int height = (int)ln_lua_check_integer(L, -1, fname, "height", 1, 16384);
    lua_getfield(L, 1, "width");
    int width = (int)ln_lua_check_integer(L, -1, fname, "width", 1, 16384);
    lua_getfield(L, 1, "skip_bad");
    int skip_bad = lua_toboolean(L, -1);
    lua_pop(L, 4);
    ln_image_loader **ud = lua_newuserdatauv(L, sizeof *ud, 0);
    *ud = NULL;
    luaL_setmetatable(L, LOADER_TYPE);
    ln_lua_check_status(L, ln_image_loader_open(threads, height, width, skip_bad, ud), fname);
    return 1;
}

/* loader:submit(paths) -> ticket */
static int l_loader_submit(lua_State *L)
{
    const char *fname = "lunet.ImageLoader:submit";
    ln_image_loader **ud = check_loader(L, fname);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_Integer n = luaL_len(L, 2);
    if (n < 1 || n > 1 << 20)
        ln_lua_fail(L, fname, "expected 1 to %d paths, got %lld", 1 << 20, (long long)n);
    const char **paths = lua_newuserdatauv(L, sizeof(char *) * (size_t)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, 2, i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            ln_lua_fail(L, fname, "path %lld is %s, not a string", (long long)i + 1,
                        luaL_typename(L, -1));
        paths[i] = lua_tostring(L, -1);
        lua_pop(L, 1); /* the table keeps the string alive */
    }
    int64_t ticket;
    ln_lua_check_status(L, ln_image_loader_submit(*ud, paths, (int)n, &ticket), fname);
    lua_pushinteger(L, (lua_Integer)ticket);
    return 1;
}

/* loader:wait(ticket [, out]) -> true, bad | false, message. out: a
 * contiguous uint8 CPU tensor {count, 3, height, width}. */
static int l_loader_wait(lua_State *L)
{
    const char *fname = "lunet.ImageLoader:wait";
    ln_image_loader **ud = check_loader(L, fname);
    int64_t ticket = (int64_t)luaL_checkinteger(L, 2);
    ln_tensor *out = lua_isnoneornil(L, 3) ? NULL : ln_lua_check_tensor(L, 3, fname);
    uint8_t *dst = NULL;
    size_t bytes = 0;
    if (out) {
        if (out->dtype != LN_UINT8 || !ln_tensor_device(out)->host_memory
            || !ln_tensor_is_contiguous(out))
            ln_lua_fail(L, fname, "out must be a contiguous uint8 CPU tensor");
        dst = ln_tensor_data(out);
        bytes = (size_t)ln_tensor_numel(out);
    }
    int count = 0, bad = 0;
    int st = ln_image_loader_wait(*ud, ticket, dst, bytes, &count, &bad);
    if (st != LN_OK) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, ln_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_pushinteger(L, bad);
    return 2;
}

static int l_loader_close(lua_State *L)
{
    ln_image_loader **ud = luaL_checkudata(L, 1, LOADER_TYPE);
    ln_image_loader_close(*ud);
    *ud = NULL;
    return 0;
}

static int l_loader_threads(lua_State *L)
{
    ln_image_loader **ud = check_loader(L, "lunet.ImageLoader:threads");
    lua_pushinteger(L, ln_image_loader_threads(*ud));
    return 1;
}

void ln_lua_open_image(lua_State *L)
{
    static const luaL_Reg methods[] = {{"submit", l_loader_submit}, {"wait", l_loader_wait},
                                       {"close", l_loader_close}, {"threads", l_loader_threads},
                                       {NULL, NULL}};
    static const luaL_Reg metamethods[] = {{"__gc", l_loader_close}, {"__close", l_loader_close},
                                           {NULL, NULL}};
    luaL_newmetatable(L, LOADER_TYPE);
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    static const luaL_Reg functions[] = {
        {"image_formats", l_image_formats}, {"list_dir", l_list_dir},
        {"image_probe", l_image_probe},     {"image_load", l_image_load},
        {"image_write", l_image_write},     {"image_loader", l_image_loader},
        {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
}
