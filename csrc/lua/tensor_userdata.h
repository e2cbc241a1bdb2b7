/* The layout of a tensor's userdata, and the one safe way to read it.
 *
 * The metatable alone does not prove what a userdata holds: the debug
 * library can give the tensor metatable to any userdata (a file handle,
 * another library's object), and reading that as a tensor, or freeing it at
 * collection, would crash. So a tensor's userdata is the tensor followed by a
 * tag, and a userdata is read as a tensor only when its metatable, its size
 * and then its tag are right, as liolib checks its streams. The tensor comes
 * first, so the userdata's address is the tensor's. Header-only, for the
 * binding and for libraries loaded beside it (lunet/dist.so). */
#ifndef LUNET_TENSOR_USERDATA_H
#define LUNET_TENSOR_USERDATA_H

#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>

#include "../tensor.h"

#define LN_TENSOR_USERDATA_MT "lunet.Tensor"
#define LN_TENSOR_USERDATA_TAG UINT64_C(0x4c554e4554544e53) /* "LUNETTNS" */

typedef struct ln_tensor_userdata {
    ln_tensor tensor;
    uint64_t tag;
} ln_tensor_userdata;

/* The tensor in the userdata at idx, or NULL when it is not one. */
static inline ln_tensor *ln_tensor_userdata_at(lua_State *L, int idx)
{
    ln_tensor_userdata *u = (ln_tensor_userdata *)luaL_testudata(L, idx, LN_TENSOR_USERDATA_MT);
    if (!u || lua_rawlen(L, idx) != sizeof *u || u->tag != LN_TENSOR_USERDATA_TAG)
        return NULL;
    return &u->tensor;
}

#endif
