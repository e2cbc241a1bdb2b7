/* luaopen_lunet_dist: the Lua face of lunet/dist.so, used by
 * lua/lunet/dist.lua (which is what `lunet.dist` is; it loads this library
 * with package.loadlib and falls back to a single process without it).
 *
 *   launched()                 started by mpirun/mpiexec/srun?
 *   init()                     MPI_Init once; rank, size
 *   rank(), size(), local_rank(), local_size(), library_version()
 *   barrier()
 *   allreduce(t, op)           t: contiguous tensor in host memory (or CUDA
 *                              memory when built with NCCL); op "sum"|"avg"|"max"
 *   broadcast(t, root)
 *   abort(message [, code])    ends every rank (MPI_Abort), naming this one
 *   seconds()                  time spent in collectives so far, and the part
 *                              of it spent waiting for the other ranks
 *   nccl                       true when built with NCCL (LUNET_NCCL=ON)
 *
 * Tensors are read through the core's struct layout (tensor.h): this
 * library never links the core, and it only reads the pointer, dtype and
 * shape of a live tensor. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "collectives.h"
#include "lua/tensor_userdata.h"
#include "nccl_comm.h"
#include "tensor.h"

#define LUNET_EXPORT __attribute__((visibility("default")))

/* An error without a source position: the message says where. */
static int fail(lua_State *L, const char *fname)
{
    lua_pushfstring(L, "lunet.dist.%s: %s", fname, ln_dist_error());
    return lua_error(L);
}

static void check_initialized(lua_State *L, const char *fname)
{
    if (!ln_dist_initialized())
        luaL_error(L, "lunet.dist.%s: MPI is not initialized (call lunet.dist.init() first, "
                      "under mpirun)", fname);
}

/* A live contiguous tensor; fills the call record and the data pointer. */
static const ln_tensor *check_tensor(lua_State *L, int idx, const char *fname,
                                     ln_dist_call *call, void **data, int64_t *numel)
{
    const ln_tensor *t = ln_tensor_userdata_at(L, idx); /* size and tag checked too */
    if (!t)
        luaL_error(L, "lunet.dist.%s: argument #%d: expected a lunet tensor, got %s", fname, idx,
                   luaL_typename(L, idx));
    if (!t->storage)
        luaL_error(L, "lunet.dist.%s: argument #%d: the tensor was freed", fname, idx);
    int64_t n = 1, expected = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    /* an empty tensor is contiguous whatever its strides (csrc/tensor.c) */
    for (int d = t->ndim - 1; d >= 0 && n > 0; d--) {
        if (t->shape[d] != 1 && t->stride[d] != expected)
            luaL_error(L, "lunet.dist.%s: argument #%d: the tensor must be contiguous "
                          "(a strided view is not; use t:clone())", fname, idx);
        expected *= t->shape[d];
    }
    const ln_device *dev = t->storage->device;
    call->dtype = t->dtype;
    call->device_type = dev->host_memory ? 0 : 1;
    call->ndim = t->ndim;
    for (int d = 0; d < t->ndim && d < LN_MAX_DIMS; d++)
        call->shape[d] = t->shape[d];
    *data = (char *)t->storage->data + (size_t)t->offset * ln_dtype_size(t->dtype);
    *numel = n;
    return t;
}

static int l_launched(lua_State *L)
{
    lua_pushboolean(L, ln_dist_launched());
    return 1;
}

static int l_init(lua_State *L)
{
    int rank, size;
    if (ln_dist_init(&rank, &size) != 0)
        return fail(L, "init");
    lua_pushinteger(L, rank);
    lua_pushinteger(L, size);
    return 2;
}

static int l_rank(lua_State *L) { lua_pushinteger(L, ln_dist_rank()); return 1; }
static int l_size(lua_State *L) { lua_pushinteger(L, ln_dist_size()); return 1; }
static int l_local_rank(lua_State *L) { lua_pushinteger(L, ln_dist_local_rank()); return 1; }
static int l_local_size(lua_State *L) { lua_pushinteger(L, ln_dist_local_size()); return 1; }
static int l_seconds(lua_State *L)
{
    lua_pushnumber(L, ln_dist_seconds());
    lua_pushnumber(L, ln_dist_wait_seconds());
    return 2;
}

static int l_library_version(lua_State *L)
{
    lua_pushstring(L, ln_dist_library_version());
    return 1;
}

static int l_barrier(lua_State *L)
{
    check_initialized(L, "barrier");
    ln_dist_call call = {.kind = LN_DIST_BARRIER, .dtype = -1};
    if (ln_dist_agree(&call) != 0)
        return fail(L, "barrier");
    return 0;
}

static int l_allreduce(lua_State *L)
{
    static const char *const ops[] = {"sum", "avg", "max", NULL};
    ln_dist_call call = {.kind = LN_DIST_ALLREDUCE};
    void *data;
    int64_t numel;
    const ln_tensor *t = check_tensor(L, 1, "allreduce", &call, &data, &numel);
    call.op = luaL_checkoption(L, 2, "sum", ops);
    check_initialized(L, "allreduce");
    if (call.op == LN_DIST_AVG && t->dtype != LN_FLOAT32)
        return luaL_error(L, "lunet.dist.allreduce: \"avg\" needs a float32 tensor, got %s",
                          ln_dtype_name(t->dtype));
    if (ln_dist_agree(&call) != 0)
        return fail(L, "allreduce");
    int rc = call.device_type
                 ? ln_dist_nccl_allreduce(data, numel, t->dtype, (int)call.op,
                                          t->storage->device->index)
                 : ln_dist_allreduce(data, numel, t->dtype, (ln_dist_op)call.op);
    if (rc != 0)
        return fail(L, "allreduce");
    lua_settop(L, 1);
    return 1;
}

static int l_broadcast(lua_State *L)
{
    ln_dist_call call = {.kind = LN_DIST_BROADCAST};
    void *data;
    int64_t numel;
    const ln_tensor *t = check_tensor(L, 1, "broadcast", &call, &data, &numel);
    check_initialized(L, "broadcast");
    lua_Integer root = luaL_optinteger(L, 2, 0);
    if (root < 0 || root >= ln_dist_size())
        return luaL_error(L, "lunet.dist.broadcast: argument #2: root must be a rank in 0..%d, "
                             "got %d", ln_dist_size() - 1, (int)root);
    call.root = root;
    if (ln_dist_agree(&call) != 0)
        return fail(L, "broadcast");
    int rc = call.device_type
                 ? ln_dist_nccl_broadcast(data, numel, t->dtype, (int)root,
                                          t->storage->device->index)
                 : ln_dist_broadcast(data, numel, t->dtype, (int)root);
    if (rc != 0)
        return fail(L, "broadcast");
    lua_settop(L, 1);
    return 1;
}

static int l_abort(lua_State *L)
{
    const char *message = luaL_checkstring(L, 1);
    int code = (int)luaL_optinteger(L, 2, 1);
    ln_dist_abort(code, message);
    return 0;
}

static const luaL_Reg functions[] = {
    {"launched", l_launched},
    {"init", l_init},
    {"rank", l_rank},
    {"size", l_size},
    {"local_rank", l_local_rank},
    {"local_size", l_local_size},
    {"library_version", l_library_version},
    {"barrier", l_barrier},
    {"allreduce", l_allreduce},
    {"broadcast", l_broadcast},
    {"abort", l_abort},
    {"seconds", l_seconds},
    {NULL, NULL},
};

LUNET_EXPORT int luaopen_lunet_dist(lua_State *L);
LUNET_EXPORT int luaopen_lunet_dist(lua_State *L)
{
    luaL_newlib(L, functions);
    lua_pushboolean(L, ln_dist_nccl_built());
    lua_setfield(L, -2, "nccl");
    return 1;
}
