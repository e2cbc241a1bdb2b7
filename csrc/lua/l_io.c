/* Dataset file readers: lunet.read_idx and lunet.read_cifar.
 *
 * The parsing and validation live in csrc/io/; this only turns a parsed file
 * into tensors. The datasets module (lua/lunet/datasets.lua) finds the files
 * and checks that they are the ones it expects, with core.file_kind, which
 * never blocks (opening a named pipe to see whether it exists would). */
#include <errno.h>
#include <string.h>

#include "../io/cifar.h"
#include "../io/read_file.h"
#include "../io/idx.h"
#include "../status.h"
#include "binding.h"

/* core.file_kind(path): "file", "directory", "fifo", "device", "socket" or
 * "other"; nil and a message when it does not exist or cannot be seen. */
static int l_file_kind(lua_State *L)
{
    const char *path = ln_lua_check_path(L, 1, "lunet.file_kind");
    const char *kind = ln_file_kind(path);
    if (kind) {
        lua_pushstring(L, kind);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
}

/* lunet.read_idx(path): a uint8 CPU tensor shaped as the file's sizes. */
static int l_read_idx(lua_State *L)
{
    const char *fname = "lunet.read_idx";
    const char *path = ln_lua_check_path(L, 1, fname);
    /* the userdata exists before the file's memory, so no error can leak it */
    ln_tensor *t = ln_lua_new_tensor(L);
    ln_idx_file file;
    int st = ln_idx_read_file(path, &file);
    if (st == LN_OK) {
        st = ln_tensor_alloc(t, ln_device_cpu(), LN_UINT8, file.idx.ndim, file.idx.dims);
        if (st == LN_OK)
            memcpy(ln_tensor_data(t), file.idx.data, (size_t)file.idx.count);
        ln_idx_file_free(&file);
    }
    ln_lua_check_status(L, st, fname);
    return 1;
}

/* lunet.read_cifar(path): images uint8 {N, 3, 32, 32} and labels int32 {N}
 * in 1..10, as CPU tensors. */
static int l_read_cifar(lua_State *L)
{
    const char *fname = "lunet.read_cifar";
    const char *path = ln_lua_check_path(L, 1, fname);
    ln_tensor *images = ln_lua_new_tensor(L);
    ln_tensor *labels = ln_lua_new_tensor(L);
    ln_cifar_file file;
    int st = ln_cifar_read_file(path, &file);
    if (st == LN_OK) {
        int64_t image_shape[4] = {file.count, 3, 32, 32};
        int64_t label_shape[1] = {file.count};
        st = ln_tensor_alloc(images, ln_device_cpu(), LN_UINT8, 4, image_shape);
        if (st == LN_OK)
            st = ln_tensor_alloc(labels, ln_device_cpu(), LN_INT32, 1, label_shape);
        if (st == LN_OK)
            ln_cifar_decode(file.buffer, file.count, ln_tensor_data(images),
                            ln_tensor_data(labels));
        ln_cifar_file_free(&file);
    }
    ln_lua_check_status(L, st, fname);
    return 2;
}

void ln_lua_open_io(lua_State *L)
{
    static const luaL_Reg functions[] = {{"read_idx", l_read_idx},
                                         {"file_kind", l_file_kind},
                                         {"read_cifar", l_read_cifar},
                                         {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
}
