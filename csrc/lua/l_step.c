/* The training step's extras in lunet.core: the loss and the correct
 * predictions left on the device, the reader that takes them to the
 * progress line without waiting (AdamW's update is adam_step's, l_nn.c), the debug counters the
 * step's specs read, and the plain memory-bound loop bench/step_bench.lua
 * holds the Adam update against. */
#include "binding.h"

#include <string.h>

#include "../async_read.h"
#include "../correct_on_device.h"
#include "../cpu/cpu.h"
#include "../host_memory.h"
#include "../loss_on_device.h"
#include "../nn_ops.h"
#include "../status.h"

static const char *caller(lua_State *L, int idx, const char *fallback)
{
    return lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : fallback;
}

/* cross_entropy_forward_into(logits, labels, loss|nil, accumulate [, caller]) -> loss
 * loss: a float32 tensor of 1 element (the mean) or, when accumulating, of 2
 * (the running {sum, compensation}); nil allocates one of zeros. */
static int l_cross_entropy_forward_into(lua_State *L)
{
    const char *fname = caller(L, 5, "lunet.cross_entropy_forward_into");
    ln_tensor *logits = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *labels = ln_lua_check_tensor(L, 2, fname);
    int accumulate = lua_toboolean(L, 4);
    ln_tensor *loss;
    if (lua_isnoneornil(L, 3)) {
        ln_lua_check_status(L, ln_tensor_check_live(logits), fname);
        int64_t shape[1] = {accumulate ? 2 : 1};
        loss = ln_lua_new_tensor(L);
        ln_lua_check_status(L, ln_tensor_alloc(loss, ln_tensor_device(logits), LN_FLOAT32, 1,
                                               shape), fname);
        ln_lua_check_status(L, ln_tensor_fill(loss, 0), fname);
    } else {
        loss = ln_lua_check_tensor(L, 3, fname);
        lua_pushvalue(L, 3);
    }
    ln_lua_check_status(L, ln_nn_cross_entropy_forward_into(logits, labels, loss, accumulate),
                        fname);
    return 1;
}

/* count_correct_into(logits, labels, counter [, caller]) -> counter, or nil
 * on a device without host memory (the caller composes argmax, eq and sum
 * there): adds the rows whose argmax is the label to counter[1]. */
static int l_count_correct_into(lua_State *L)
{
    const char *fname = caller(L, 4, "lunet.count_correct_into");
    ln_tensor *logits = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *labels = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *counter = ln_lua_check_tensor(L, 3, fname);
    int st = ln_nn_count_correct_into(logits, labels, counter);
    if (st == LN_ENOTSUP) {
        lua_pushnil(L);
        return 1;
    }
    ln_lua_check_status(L, st, fname);
    lua_pushvalue(L, 3);
    return 1;
}

/* async_reader() -> reader; reader:poll(t, tag) -> {values}, tag of the last
 * completed read, or nil while none has completed (async_read.h);
 * reader:close() releases its staging (also done when collected). */
#define ASYNC_READER "lunet.async_reader"

static ln_async_read *check_reader(lua_State *L, const char *fname)
{
    ln_async_read *r = luaL_testudata(L, 1, ASYNC_READER);
    if (!r)
        ln_lua_fail(L, fname, "argument #1: expected an async reader (lunet.core.async_reader())");
    return r;
}

static int l_async_reader(lua_State *L)
{
    ln_async_read *r = lua_newuserdatauv(L, sizeof *r, 0);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, ASYNC_READER);
    return 1;
}

static int l_async_reader_poll(lua_State *L)
{
    const char *fname = "lunet.core.async_reader:poll";
    ln_async_read *r = check_reader(L, fname);
    ln_tensor *t = ln_lua_check_tensor(L, 2, fname);
    lua_Integer tag = luaL_optinteger(L, 3, 0);
    ln_lua_check_status(L, ln_async_read_poll(r, t, (long long)tag), fname);
    if (!r->have) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, r->count, 0);
    for (int i = 0; i < r->count; i++) {
        lua_pushnumber(L, r->values[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushinteger(L, (lua_Integer)r->tag);
    return 2;
}

static int l_async_reader_close(lua_State *L)
{
    ln_async_read *r = luaL_testudata(L, 1, ASYNC_READER);
    if (r)
        ln_async_read_release(r);
    return 0;
}

/* debug_counters() -> {host_allocations=, host_reads=, tensor_allocations=}:
 * host allocations (tensor storage on ref and cpu, and the CPU's scratch),
 * the times the host waited for a device's result (synchronize, downloads,
 * values handed to the host), and tensor storages allocated on any device. */
static int l_debug_counters(lua_State *L)
{
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, (lua_Integer)ln_host_allocation_count());
    lua_setfield(L, -2, "host_allocations");
    lua_pushinteger(L, (lua_Integer)ln_device_host_read_count());
    lua_setfield(L, -2, "host_reads");
    lua_pushinteger(L, (lua_Integer)ln_tensor_allocation_count());
    lua_setfield(L, -2, "tensor_allocations");
    return 1;
}

/* bench_stream_update(param, grad, exp_avg, exp_avg_sq): the plain loop with
 * Adam's reads and writes on the CPU's threads (contiguous float32 CPU
 * tensors of one size); for bench/step_bench.lua. */
static int l_bench_stream_update(lua_State *L)
{
    const char *fname = "lunet.core.bench_stream_update";
    ln_tensor *t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = ln_lua_check_tensor(L, i + 1, fname);
        if (ln_tensor_device(t[i])->type != LN_DEVICE_CPU || t[i]->dtype != LN_FLOAT32
            || !ln_tensor_is_contiguous(t[i]) || ln_tensor_numel(t[i]) != ln_tensor_numel(t[0]))
            ln_lua_fail(L, fname, "argument #%d: expected a contiguous float32 CPU tensor of "
                        "%lld elements", i + 1, (long long)ln_tensor_numel(t[0]));
    }
    ln_cpu_stream_update_bench(ln_tensor_device(t[0])->ctx, ln_tensor_numel(t[0]),
                               ln_tensor_data(t[0]), ln_tensor_data(t[1]),
                               ln_tensor_data(t[2]), ln_tensor_data(t[3]));
    return 0;
}

void ln_lua_open_step(lua_State *L)
{
    static const luaL_Reg ops[] = {
        {"cross_entropy_forward_into", l_cross_entropy_forward_into},
        {"count_correct_into", l_count_correct_into},
        {NULL, NULL}};
    static const luaL_Reg tools[] = {
        {"debug_counters", l_debug_counters},
        {"bench_stream_update", l_bench_stream_update},
        {"async_reader", l_async_reader},
        {NULL, NULL}};
    static const luaL_Reg reader_methods[] = {
        {"poll", l_async_reader_poll},
        {"close", l_async_reader_close},
        {NULL, NULL}};
    if (luaL_newmetatable(L, ASYNC_READER)) {
        lua_newtable(L);
        luaL_setfuncs(L, reader_methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_async_reader_close);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    /* the ops in lunet.ops (made by ln_lua_open_nn) and at the top level,
     * as the other ops; the tools at the top level only */
    luaL_setfuncs(L, ops, 0);
    luaL_setfuncs(L, tools, 0);
    if (lua_getfield(L, -1, "ops") == LUA_TTABLE)
        luaL_setfuncs(L, ops, 0);
    lua_pop(L, 1);
}
