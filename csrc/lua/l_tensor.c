/* Tensor objects: constructors, methods and operators of API.md's Tensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ops/families.h"
#include "../random.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "../tensor_shape.h"
#include "binding.h"

/* The tensor a method is called on (binding.c). */
#define check_self ln_lua_check_self

#define SELF(fname) check_self(L, fname)

/* --- constructors ------------------------------------------------------------ */

/* A value stored into an integer tensor must be one of its values: 300 in a
 * uint8 tensor is a mistake, not 255. Returns what v fails to be (for "... is
 * not %s"), or NULL when it fits; NaN fits no integer dtype. */
static const char *dtype_problem(ln_dtype dtype, double v)
{
    if (dtype == LN_INT32 && !(v == floor(v) && v >= -2147483648.0 && v <= 2147483647.0))
        return "an int32";
    if (dtype == LN_UINT8 && !(v == floor(v) && v >= 0 && v <= 255))
        return "a uint8 (an integer in 0..255)";
    return NULL;
}

static void check_fits(lua_State *L, const char *fname, ln_dtype dtype, double v)
{
    const char *problem = dtype_problem(dtype, v);
    if (problem)
        ln_lua_fail(L, fname, "the value %.17g is not %s", v, problem);
}

static ln_tensor *new_filled(lua_State *L, const char *fname, int shape_idx,
                             int opts_idx, int has_value, double value)
{
    int64_t shape[LN_MAX_DIMS];
    ln_dtype dtype;
    ln_device *dev;
    int nd = ln_lua_check_shape(L, shape_idx, fname, shape);
    ln_lua_tensor_options(L, opts_idx, fname, &dtype, &dev);
    if (has_value)
        check_fits(L, fname, dtype, value);
    ln_tensor *t = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_alloc(t, dev, dtype, nd, shape), fname);
    if (has_value)
        ln_lua_check_status(L, ln_tensor_fill(t, value), fname);
    return t;
}

/* The options table follows the shape: it is the first table argument after
 * the sizes when they are given as separate numbers. */
static int options_index(lua_State *L, int shape_idx)
{
    if (lua_type(L, shape_idx) == LUA_TTABLE)
        return shape_idx + 1;
    int i = shape_idx;
    while (lua_type(L, i) == LUA_TNUMBER)
        i++;
    return i;
}

static int l_empty(lua_State *L)
{
    new_filled(L, "lunet.empty", 1, options_index(L, 1), 0, 0);
    return 1;
}

static int l_zeros(lua_State *L)
{
    new_filled(L, "lunet.zeros", 1, options_index(L, 1), 1, 0);
    return 1;
}

static int l_ones(lua_State *L)
{
    new_filled(L, "lunet.ones", 1, options_index(L, 1), 1, 1);
    return 1;
}

static int l_full(lua_State *L)
{
    const char *fname = "lunet.full";
    if (lua_type(L, 1) != LUA_TTABLE)
        ln_lua_fail(L, fname, "argument #1: expected a shape table, got %s",
                    luaL_typename(L, 1));
    if (lua_type(L, 2) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #2: expected the fill value (a number), got %s",
                    luaL_typename(L, 2));
    new_filled(L, fname, 1, 3, 1, lua_tonumber(L, 2));
    return 1;
}

static int random_tensor(lua_State *L, const char *fname, int normal)
{
    ln_tensor *t = new_filled(L, fname, 1, options_index(L, 1), 0, 0);
    ln_lua_check_status(L, normal ? ln_op_rand_normal(t, 0, 1) : ln_op_rand_uniform(t, 0, 1),
                        fname);
    return 1;
}

static int l_rand(lua_State *L)
{
    return random_tensor(L, "lunet.rand", 0);
}

static int l_randn(lua_State *L)
{
    return random_tensor(L, "lunet.randn", 1);
}

/* lunet.randperm(n [, {seed=, offset=, device=}]): int32 permutation of 1..n.
 * With a seed it draws from its own stream (seed, offset), leaving the global
 * generator untouched: the data loader's shuffles stay reproducible however
 * much else is drawn. */
static int l_randperm(lua_State *L)
{
    const char *fname = "lunet.randperm";
    lua_Integer n = ln_lua_check_integer(L, 1, fname, "n", 0, INT32_MAX);
    ln_device *dev = ln_device_cpu();
    uint64_t seed = ln_random_get_seed(), counter = 0;
    int own_stream = 0;
    if (!lua_isnoneornil(L, 2)) {
        if (lua_type(L, 2) != LUA_TTABLE)
            ln_lua_fail(L, fname, "argument #2: expected an options table {seed=, offset=, "
                        "device=}, got %s", luaL_typename(L, 2));
        if (lua_getfield(L, 2, "seed") != LUA_TNIL) {
            seed = (uint64_t)ln_lua_check_integer(L, -1, fname, "seed", 0, INT64_MAX);
            own_stream = 1;
        }
        if (lua_getfield(L, 2, "offset") != LUA_TNIL)
            counter = (uint64_t)ln_lua_check_integer(L, -1, fname, "offset", 0, INT64_MAX)
                      << 32;
        if (lua_getfield(L, 2, "device") != LUA_TNIL)
            dev = ln_lua_check_device(L, -1, fname);
        lua_pop(L, 3);
    }
    if (!own_stream)
        counter = ln_random_reserve((uint64_t)n * 2);
    int32_t *perm = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
    if (!perm)
        ln_lua_fail(L, fname, "out of host memory for %lld indices", (long long)n);
    ln_random_stream stream;
    ln_random_stream_init(&stream, seed, counter);
    ln_random_permutation(&stream, perm, (int32_t)n);
    for (lua_Integer i = 0; i < n; i++)
        perm[i] += 1;
    ln_tensor host = {0};
    int64_t shape[1] = {n};
    int st = ln_tensor_alloc(&host, ln_device_cpu(), LN_INT32, 1, shape);
    if (st == LN_OK && n)
        memcpy(ln_tensor_data(&host), perm, sizeof(int32_t) * (size_t)n);
    free(perm);
    ln_lua_check_status(L, st, fname);
    ln_tensor *t = ln_lua_new_tensor(L);
    st = dev == ln_device_cpu() ? (ln_tensor_share(t, &host), LN_OK)
                                : ln_tensor_to(t, &host, dev, LN_INT32);
    ln_tensor_release(&host);
    ln_lua_check_status(L, st, fname);
    return 1;
}

/* lunet.tensor(data [, opts]): the shape comes from the first element at each
 * depth; every other element must agree, and every leaf must be a number that
 * the dtype can hold. */
static void infer_shape(lua_State *L, int idx, const char *fname, int *ndim,
                        int64_t *shape)
{
    int top = lua_gettop(L);
    lua_pushvalue(L, idx);
    *ndim = 0;
    while (lua_type(L, -1) == LUA_TTABLE) {
        if (*ndim == LN_MAX_DIMS)
            ln_lua_fail(L, fname, "data is nested deeper than %d levels", LN_MAX_DIMS);
        lua_Unsigned n = lua_rawlen(L, -1);
        if (n > (lua_Unsigned)INT32_MAX)
            ln_lua_fail(L, fname, "data has too many elements");
        shape[(*ndim)++] = (int64_t)n;
        if (n == 0)
            break;
        lua_rawgeti(L, -1, 1);
    }
    lua_settop(L, top);
}

static void format_position(char *buf, size_t len, int depth, const int64_t *pos)
{
    size_t used = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < depth && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, i ? ", %lld" : "%lld",
                                 (long long)pos[i] + 1);
    if (used < len)
        snprintf(buf + used, len - used, "]");
}

static double check_leaf(lua_State *L, const char *fname, ln_dtype dtype, int depth,
                         const int64_t *pos)
{
    char where[128];
    if (lua_type(L, -1) != LUA_TNUMBER) {
        format_position(where, sizeof where, depth, pos);
        ln_lua_fail(L, fname, "element %s is %s, expected a number", where,
                    luaL_typename(L, -1));
    }
    double v = lua_tonumber(L, -1);
    const char *problem = dtype_problem(dtype, v);
    if (problem) {
        format_position(where, sizeof where, depth, pos);
        ln_lua_fail(L, fname, "element %s = %s is not %s", where, lua_tostring(L, -1),
                    problem);
    }
    return v;
}

static void fill_from_table(lua_State *L, const char *fname, int depth, int ndim,
                            const int64_t *shape, int64_t *pos, void *data,
                            ln_dtype dtype, int64_t *next)
{
    char where[128];
    if (lua_type(L, -1) != LUA_TTABLE || (int64_t)lua_rawlen(L, -1) != shape[depth]) {
        format_position(where, sizeof where, depth, pos);
        ln_lua_fail(L, fname, "data is not rectangular: element %s should be a table "
                    "of %lld entries, got %s%s", where, (long long)shape[depth],
                    lua_type(L, -1) == LUA_TTABLE ? "a table of another length"
                                                  : luaL_typename(L, -1), "");
    }
    luaL_checkstack(L, 4, fname);
    for (int64_t i = 0; i < shape[depth]; i++) {
        pos[depth] = i;
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (depth + 1 == ndim) {
            double v = check_leaf(L, fname, dtype, depth + 1, pos);
            ln_store_from_double(data, dtype, (*next)++, v);
        } else {
            fill_from_table(L, fname, depth + 1, ndim, shape, pos, data, dtype, next);
        }
        lua_pop(L, 1);
    }
}

static int l_tensor(lua_State *L)
{
    const char *fname = "lunet.tensor";
    int64_t shape[LN_MAX_DIMS], pos[LN_MAX_DIMS] = {0};
    int ndim = 0;
    ln_dtype dtype;
    ln_device *dev;
    int t1 = lua_type(L, 1);
    if (t1 != LUA_TTABLE && t1 != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #1: expected a (nested) table of numbers or a "
                    "number, got %s", luaL_typename(L, 1));
    ln_lua_tensor_options(L, 2, fname, &dtype, &dev);
    if (t1 == LUA_TTABLE)
        infer_shape(L, 1, fname, &ndim, shape);
    /* build on the host in the target dtype, then move */
    ln_tensor *host = ln_lua_new_tensor(L);
    int host_idx = lua_gettop(L);
    ln_lua_check_status(L, ln_tensor_alloc(host, ln_device_cpu(), dtype, ndim, shape),
                        fname);
    lua_pushvalue(L, 1);
    if (t1 == LUA_TNUMBER) {
        ln_store_from_double(ln_tensor_data(host), dtype, 0,
                             check_leaf(L, fname, dtype, 0, pos));
    } else {
        /* an empty tensor is walked too: {{}, 5} is not rectangular */
        int64_t next = 0;
        fill_from_table(L, fname, 0, ndim, shape, pos, ln_tensor_data(host), dtype, &next);
    }
    lua_settop(L, host_idx);
    if (dev == ln_device_cpu())
        return 1;
    ln_tensor *t = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_to(t, host, dev, dtype), fname);
    ln_tensor_release(host);
    return 1;
}

static int l_is_tensor(lua_State *L)
{
    lua_pushboolean(L, ln_lua_to_tensor(L, 1) != NULL);
    return 1;
}

/* --- inspection -------------------------------------------------------------- */

static int l_shape(lua_State *L)
{
    ln_tensor *t = SELF("lunet.Tensor:shape");
    lua_createtable(L, t->ndim, 0);
    for (int i = 0; i < t->ndim; i++) {
        lua_pushinteger(L, t->shape[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* A dimension argument, returned 0-based: 1..ndim, or -ndim..-1 counting from
 * the end (-1 is the last). `ndim` is t's, or one more for ops that may place
 * a new dimension after the last (unsqueeze, stack). Anything else is an
 * error naming the argument and the shape, never a silent default. */
static int check_dim_in(lua_State *L, int idx, const char *fname, const char *argname,
                        const ln_tensor *t, int ndim)
{
    char s[256];
    if (ndim == 0)
        ln_lua_fail(L, fname, "%s: a scalar tensor has no dimensions", argname);
    int isint = 0;
    lua_Integer d = 0;
    if (lua_type(L, idx) == LUA_TNUMBER) {
        d = lua_tointegerx(L, idx, &isint);
        if (!isint) {
            lua_Number n = lua_tonumber(L, idx);
            if (n == floor(n) && fabs(n) < 9.2e18) {
                d = (lua_Integer)n;
                isint = 1;
            }
        }
    }
    if (!isint) {
        char got[96];
        if (lua_type(L, idx) == LUA_TNUMBER)
            snprintf(got, sizeof got, "%.17g", lua_tonumber(L, idx));
        else if (lua_type(L, idx) == LUA_TSTRING)
            snprintf(got, sizeof got, "string \"%.60s\"", lua_tostring(L, idx));
        else
            snprintf(got, sizeof got, "%s", luaL_typename(L, idx));
        ln_lua_fail(L, fname, "%s must be an integer, got %s for shape %s", argname, got,
                    ln_tensor_shape_string(t, s, sizeof s));
    }
    if (d == 0)
        ln_lua_fail(L, fname, "%s must be in 1..%d for shape %s (or negative, from "
                    "the end), got 0", argname, ndim, ln_tensor_shape_string(t, s, sizeof s));
    if (d < -ndim || d > ndim)
        ln_lua_fail(L, fname, "%s = %lld is out of range for shape %s (1..%d, or -%d..-1 "
                    "from the end)", argname, (long long)d,
                    ln_tensor_shape_string(t, s, sizeof s), ndim, ndim);
    return d > 0 ? (int)d - 1 : ndim + (int)d;
}

static int check_dim(lua_State *L, int idx, const char *fname, const ln_tensor *t)
{
    return check_dim_in(L, idx, fname, "dim", t, t->ndim);
}

static int l_size(lua_State *L)
{
    const char *fname = "lunet.Tensor:size";
    ln_tensor *t = SELF(fname);
    if (lua_isnoneornil(L, 2))
        return l_shape(L);
    lua_pushinteger(L, t->shape[check_dim(L, 2, fname, t)]);
    return 1;
}

static int l_dim(lua_State *L)
{
    lua_pushinteger(L, SELF("lunet.Tensor:dim")->ndim);
    return 1;
}

static int l_numel(lua_State *L)
{
    lua_pushinteger(L, ln_tensor_numel(SELF("lunet.Tensor:numel")));
    return 1;
}

static int l_dtype(lua_State *L)
{
    lua_pushstring(L, ln_dtype_name(SELF("lunet.Tensor:dtype")->dtype));
    return 1;
}

static int l_device_of(lua_State *L)
{
    ln_lua_push_device(L, ln_tensor_device(SELF("lunet.Tensor:device")));
    return 1;
}

static int l_is_contiguous(lua_State *L)
{
    lua_pushboolean(L, ln_tensor_is_contiguous(SELF("lunet.Tensor:is_contiguous")));
    return 1;
}

/* --- views and copies -------------------------------------------------------- */

static int reshape(lua_State *L, const char *fname)
{
    ln_tensor *t = SELF(fname);
    int64_t shape[LN_MAX_DIMS];
    int nd;
    /* -1 is allowed here, so read the sizes without the non-negative check */
    if (lua_type(L, 2) == LUA_TTABLE) {
        nd = (int)lua_rawlen(L, 2);
        if (nd > LN_MAX_DIMS)
            ln_lua_fail(L, fname, "shape has %d sizes; at most %d are allowed", nd,
                        LN_MAX_DIMS);
        for (int i = 0; i < nd; i++) {
            lua_rawgeti(L, 2, i + 1);
            shape[i] = ln_lua_check_integer(L, -1, fname, "shape size", -1, INT64_MAX);
            lua_pop(L, 1);
        }
    } else if (lua_type(L, 2) == LUA_TNUMBER) {
        nd = 0;
        while (lua_type(L, 2 + nd) == LUA_TNUMBER) {
            if (nd == LN_MAX_DIMS)
                ln_lua_fail(L, fname, "at most %d sizes are allowed", LN_MAX_DIMS);
            shape[nd] = ln_lua_check_integer(L, 2 + nd, fname, "shape size", -1, INT64_MAX);
            nd++;
        }
    } else {
        return ln_lua_fail(L, fname, "argument #1: expected a shape such as {64, -1}, "
                           "got %s", luaL_typename(L, 2));
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_reshape(out, t, nd, shape), fname);
    return 1;
}

static int l_reshape(lua_State *L)
{
    return reshape(L, "lunet.Tensor:reshape");
}

/* view is reshape (API.md): a view when the tensor is contiguous */
static int l_view(lua_State *L)
{
    return reshape(L, "lunet.Tensor:view");
}

static int l_narrow(lua_State *L)
{
    const char *fname = "lunet.Tensor:narrow";
    ln_tensor *t = SELF(fname);
    int dim = check_dim(L, 2, fname, t);
    lua_Integer start = ln_lua_check_integer(L, 3, fname, "start", 1, INT64_MAX);
    lua_Integer length = ln_lua_check_integer(L, 4, fname, "length", 0, INT64_MAX);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_narrow(out, t, dim, start - 1, length), fname);
    return 1;
}

/* --- reordering, inserting and removing dimensions; joining ------------------ */

static int l_transpose(lua_State *L)
{
    const char *fname = "lunet.Tensor:transpose";
    ln_tensor *t = SELF(fname);
    int d1 = check_dim_in(L, 2, fname, "dim1", t, t->ndim);
    int d2 = check_dim_in(L, 3, fname, "dim2", t, t->ndim);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_transpose(out, t, d1, d2), fname);
    return 1;
}

/* t:permute({3, 1, 2}) or t:permute(3, 1, 2), as PyTorch accepts both. */
static int l_permute(lua_State *L)
{
    const char *fname = "lunet.Tensor:permute";
    ln_tensor *t = SELF(fname);
    char argname[32];
    int perm[LN_MAX_DIMS], n;
    if (lua_type(L, 2) == LUA_TTABLE) {
        lua_Unsigned len = lua_rawlen(L, 2);
        if (len != (lua_Unsigned)t->ndim) {
            char s[256];
            ln_lua_fail(L, fname, "argument #1: expected %d dimensions (a permutation of "
                        "1..%d) for shape %s, got %d", t->ndim, t->ndim,
                        ln_tensor_shape_string(t, s, sizeof s), (int)(len < 1000 ? len : 1000));
        }
        n = (int)len;
        for (int i = 0; i < n; i++) {
            lua_rawgeti(L, 2, i + 1);
            snprintf(argname, sizeof argname, "dims[%d]", i + 1);
            perm[i] = check_dim_in(L, -1, fname, argname, t, t->ndim);
            lua_pop(L, 1);
        }
    } else {
        n = lua_gettop(L) - 1;
        if (n != t->ndim) {
            char s[256];
            ln_lua_fail(L, fname, "expected %d dimensions (a permutation of 1..%d, as a "
                        "table) for shape %s, got %d arguments", t->ndim, t->ndim,
                        ln_tensor_shape_string(t, s, sizeof s), n);
        }
        for (int i = 0; i < n; i++) {
            snprintf(argname, sizeof argname, "dim %d", i + 1);
            perm[i] = check_dim_in(L, 2 + i, fname, argname, t, t->ndim);
        }
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_permute(out, t, n, perm), fname);
    return 1;
}

static int l_unsqueeze(lua_State *L)
{
    const char *fname = "lunet.Tensor:unsqueeze";
    ln_tensor *t = SELF(fname);
    /* one more place than t has dimensions: -1 puts the new one last */
    int dim = check_dim_in(L, 2, fname, "dim", t, t->ndim + 1);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_unsqueeze(out, t, dim), fname);
    return 1;
}

static int l_squeeze(lua_State *L)
{
    const char *fname = "lunet.Tensor:squeeze";
    ln_tensor *t = SELF(fname);
    int dim = lua_isnoneornil(L, 2) ? -1 : check_dim(L, 2, fname, t);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_squeeze(out, t, dim), fname);
    return 1;
}

/* The tensors of a list argument, in a userdata array (freed by the collector
 * if an error interrupts); errors name the entry. */
static const ln_tensor **check_tensor_list(lua_State *L, int idx, const char *fname,
                                           int *count)
{
    if (lua_type(L, idx) != LUA_TTABLE)
        ln_lua_fail(L, fname, "argument #%d: expected a list of tensors {t1, t2, ...}, "
                    "got %s", idx, luaL_typename(L, idx));
    lua_Unsigned n = lua_rawlen(L, idx);
    if (n == 0)
        ln_lua_fail(L, fname, "argument #%d: expected a non-empty list of tensors", idx);
    if (n > INT32_MAX / sizeof(ln_tensor *))
        ln_lua_fail(L, fname, "argument #%d: too many tensors", idx);
    const ln_tensor **ts = lua_newuserdatauv(L, sizeof(ln_tensor *) * (size_t)n, 0);
    for (lua_Unsigned i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        ln_tensor *t = ln_lua_to_tensor(L, -1);
        if (!t)
            ln_lua_fail(L, fname, "argument #%d: entry %d is %s, expected a lunet tensor",
                        idx, (int)i + 1, luaL_typename(L, -1));
        if (!t->storage)
            ln_lua_fail(L, fname, "argument #%d: entry %d: the tensor was freed", idx,
                        (int)i + 1);
        ts[i] = t;
        lua_pop(L, 1); /* the list keeps it alive */
    }
    *count = (int)n;
    return ts;
}

/* lunet.cat({t1, t2, ...} [, dim = 1]): joined along an existing dimension. */
static int l_cat(lua_State *L)
{
    const char *fname = "lunet.cat";
    int n;
    lua_settop(L, 2); /* the list's array goes above the arguments */
    const ln_tensor **ts = check_tensor_list(L, 1, fname, &n);
    if (ts[0]->ndim == 0)
        ln_lua_fail(L, fname, "argument #1: scalar tensors cannot be concatenated "
                    "(lunet.stack joins them)");
    int dim = lua_isnoneornil(L, 2) ? 0 : check_dim(L, 2, fname, ts[0]);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_cat(out, n, ts, dim), fname);
    return 1;
}

/* lunet.stack({t1, t2, ...} [, dim = 1]): joined along a new dimension. */
static int l_stack(lua_State *L)
{
    const char *fname = "lunet.stack";
    int n;
    lua_settop(L, 2); /* the list's array goes above the arguments */
    const ln_tensor **ts = check_tensor_list(L, 1, fname, &n);
    int dim = lua_isnoneornil(L, 2) ? 0 : check_dim_in(L, 2, fname, "dim", ts[0],
                                                       ts[0]->ndim + 1);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_stack(out, n, ts, dim), fname);
    return 1;
}

static int l_contiguous(lua_State *L)
{
    const char *fname = "lunet.Tensor:contiguous";
    ln_tensor *t = SELF(fname);
    if (ln_tensor_is_contiguous(t)) {
        lua_settop(L, 1);
        return 1;
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_contiguous(out, t), fname);
    return 1;
}

static int l_clone(lua_State *L)
{
    const char *fname = "lunet.Tensor:clone";
    ln_tensor *t = SELF(fname);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_to(out, t, ln_tensor_device(t), t->dtype), fname);
    return 1;
}

static int l_copy(lua_State *L)
{
    const char *fname = "lunet.Tensor:copy";
    ln_tensor *t = SELF(fname);
    ln_tensor *src = ln_lua_check_tensor(L, 2, fname);
    ln_lua_check_status(L, ln_tensor_copy(t, src), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_to(lua_State *L)
{
    const char *fname = "lunet.Tensor:to";
    ln_tensor *t = SELF(fname);
    ln_device *dev = ln_tensor_device(t);
    ln_dtype dtype = t->dtype;
    const char *name = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
    if (name && ln_dtype_from_name(name, &dtype) == 0)
        ; /* a dtype */
    else if (luaL_testudata(L, 2, LN_DEVICE_MT) || (name && (strncmp(name, "cpu", 3) == 0
             || strncmp(name, "cuda", 4) == 0 || strncmp(name, "ref", 3) == 0)))
        dev = ln_lua_check_device(L, 2, fname);
    else if (name)
        ln_lua_fail(L, fname, "argument #1: '%s' is neither a device (\"cpu\", \"cuda\", "
                    "\"cuda:N\") nor a dtype (\"float32\", \"int32\", \"uint8\", "
                    "\"float16\", \"bfloat16\")", name);
    else
        ln_lua_fail(L, fname, "argument #1: expected a device, a device name or a dtype "
                    "name, got %s", luaL_typename(L, 2));
    /* t:to(device, dtype) is accepted as a convenience */
    if (lua_type(L, 3) == LUA_TSTRING)
        dtype = ln_lua_check_dtype(L, 3, fname);
    if (dev == ln_tensor_device(t) && dtype == t->dtype) {
        lua_settop(L, 1);
        return 1;
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_to(out, t, dev, dtype), fname);
    return 1;
}

static int l_fill(lua_State *L)
{
    const char *fname = "lunet.Tensor:fill";
    ln_tensor *t = SELF(fname);
    if (lua_type(L, 2) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #1: expected a number, got %s", luaL_typename(L, 2));
    check_fits(L, fname, t->dtype, lua_tonumber(L, 2));
    ln_lua_check_status(L, ln_tensor_fill(t, lua_tonumber(L, 2)), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_zero(lua_State *L)
{
    const char *fname = "lunet.Tensor:zero";
    ln_lua_check_status(L, ln_tensor_fill(SELF(fname), 0), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_uniform(lua_State *L)
{
    const char *fname = "lunet.Tensor:uniform";
    ln_tensor *t = SELF(fname);
    double lo = lua_isnoneornil(L, 2) ? 0 : ln_lua_check_number(L, 2, fname, "lo");
    double hi = lua_isnoneornil(L, 3) ? 1 : ln_lua_check_number(L, 3, fname, "hi");
    ln_lua_check_status(L, ln_op_rand_uniform(t, lo, hi), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_normal(lua_State *L)
{
    const char *fname = "lunet.Tensor:normal";
    ln_tensor *t = SELF(fname);
    double mean = lua_isnoneornil(L, 2) ? 0 : ln_lua_check_number(L, 2, fname, "mean");
    double std = lua_isnoneornil(L, 3) ? 1 : ln_lua_check_number(L, 3, fname, "std");
    ln_lua_check_status(L, ln_op_rand_normal(t, mean, std), fname);
    lua_settop(L, 1);
    return 1;
}

/* --- elements ------------------------------------------------------------------ */

static void read_index(lua_State *L, int first, const char *fname, const ln_tensor *t,
                       int64_t *index)
{
    char s[256];
    int given = lua_gettop(L) - first + 1;
    if (given < 0)
        given = 0;
    if (given != t->ndim)
        ln_lua_fail(L, fname, "expected %d indices for shape %s, got %d", t->ndim,
                    ln_tensor_shape_string(t, s, sizeof s), given);
    for (int i = 0; i < t->ndim; i++) {
        lua_Integer v = ln_lua_check_integer(L, first + i, fname, "index", INT64_MIN + 1,
                                             INT64_MAX);
        index[i] = v - 1; /* range is checked by the core, with the shape */
    }
}

static void push_element(lua_State *L, ln_dtype dtype, double v)
{
    if (ln_dtype_is_float(dtype))
        lua_pushnumber(L, v);
    else
        lua_pushinteger(L, (lua_Integer)v);
}

static int l_get(lua_State *L)
{
    const char *fname = "lunet.Tensor:get";
    ln_tensor *t = SELF(fname);
    int64_t index[LN_MAX_DIMS];
    double v;
    read_index(L, 2, fname, t, index);
    ln_lua_check_status(L, ln_tensor_get(t, index, &v), fname);
    push_element(L, t->dtype, v);
    return 1;
}

static int l_set(lua_State *L)
{
    const char *fname = "lunet.Tensor:set";
    ln_tensor *t = SELF(fname);
    int64_t index[LN_MAX_DIMS];
    if (lua_type(L, 2) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #1: expected the value (a number), got %s",
                    luaL_typename(L, 2));
    read_index(L, 3, fname, t, index);
    check_fits(L, fname, t->dtype, lua_tonumber(L, 2));
    ln_lua_check_status(L, ln_tensor_set(t, index, lua_tonumber(L, 2)), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_item(lua_State *L)
{
    const char *fname = "lunet.Tensor:item";
    ln_tensor *t = SELF(fname);
    char s[256];
    int64_t index[LN_MAX_DIMS] = {0};
    double v;
    if (ln_tensor_numel(t) != 1)
        ln_lua_fail(L, fname, "expected a tensor of one element, got shape %s (%lld "
                    "elements); use t:get(i, ...) for one of many",
                    ln_tensor_shape_string(t, s, sizeof s), (long long)ln_tensor_numel(t));
    ln_lua_check_status(L, ln_tensor_get(t, index, &v), fname);
    push_element(L, t->dtype, v);
    return 1;
}

/* #t = t:size(1); a scalar tensor has no first dimension (PyTorch's len()
 * refuses it too). */
static int l_len(lua_State *L)
{
    const char *fname = "lunet.Tensor:__len (#t)";
    ln_tensor *t = SELF(fname);
    if (t->ndim == 0)
        ln_lua_fail(L, fname, "a scalar tensor (shape []) has no size(1); use t:numel()");
    lua_pushinteger(L, t->shape[0]);
    return 1;
}

/* The tensor of t[i] (a metamethod may be called by hand with anything). */
static ln_tensor *check_indexed(lua_State *L, const char *fname)
{
    ln_tensor *t = ln_lua_to_tensor(L, 1);
    if (!t)
        ln_lua_fail(L, fname, "expected a lunet tensor, got %s", luaL_typename(L, 1));
    return t;
}

/* The position i of t[i], 0-based, checked against t's first dimension. */
static int64_t check_position(lua_State *L, const char *fname, const ln_tensor *t)
{
    char s[256];
    if (!t->storage)
        ln_lua_fail(L, fname, "the tensor was freed");
    if (t->ndim == 0)
        ln_lua_fail(L, fname, "a scalar tensor (shape []) cannot be indexed; use t:item()");
    int isint = 0;
    lua_Integer i = 0;
    if (lua_type(L, 2) == LUA_TNUMBER) {
        i = lua_tointegerx(L, 2, &isint);
        if (!isint) {
            lua_Number n = lua_tonumber(L, 2);
            if (n == floor(n) && fabs(n) < 9.2e18) {
                i = (lua_Integer)n;
                isint = 1;
            }
        }
    }
    if (!isint) {
        char got[64];
        if (lua_type(L, 2) == LUA_TNUMBER)
            snprintf(got, sizeof got, "%.17g", lua_tonumber(L, 2));
        else
            snprintf(got, sizeof got, "%s", luaL_typename(L, 2));
        ln_lua_fail(L, fname, "index must be an integer, got %s for shape %s", got,
                    ln_tensor_shape_string(t, s, sizeof s));
    }
    if (i < 1 || i > t->shape[0])
        ln_lua_fail(L, fname, "index %lld is out of range for dimension 1 of shape %s "
                    "(1..%lld)", (long long)i, ln_tensor_shape_string(t, s, sizeof s),
                    (long long)t->shape[0]);
    return (int64_t)i - 1;
}

/* __index: a string key is a method (looked up in the methods table, the
 * upvalue, so methods added from Lua are found too); a number is t[i]. */
static int l_index(lua_State *L)
{
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_pushvalue(L, 2);
        lua_rawget(L, lua_upvalueindex(1));
        return 1;
    }
    const char *fname = "lunet.Tensor[i]";
    ln_tensor *t = check_indexed(L, fname);
    int64_t i = check_position(L, fname, t);
    if (t->ndim == 1) {
        double v;
        ln_lua_check_status(L, ln_tensor_get(t, &i, &v), fname);
        push_element(L, t->dtype, v);
        return 1;
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_select(out, t, 0, i), fname);
    return 1;
}

/* __newindex: t[i] = v sets an element of a 1-D tensor. For more dimensions
 * t[i] is a view: a number fills it and a tensor of its shape is copied in
 * (as PyTorch's t[i] = v does, without broadcasting). */
static int l_newindex(lua_State *L)
{
    const char *fname = "lunet.Tensor[i] = v";
    char s[256], s2[256];
    ln_tensor *t = check_indexed(L, fname);
    if (lua_type(L, 2) == LUA_TSTRING)
        ln_lua_fail(L, fname, "cannot set field '%s' of a tensor (only t[i] = v)",
                    lua_tostring(L, 2));
    int64_t i = check_position(L, fname, t);
    ln_tensor *src = ln_lua_to_tensor(L, 3);
    if (!src && lua_type(L, 3) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "the value must be a number%s, got %s (t has shape %s)",
                    t->ndim > 1 ? " or a tensor" : "", luaL_typename(L, 3),
                    ln_tensor_shape_string(t, s, sizeof s));
    if (src && t->ndim == 1)
        ln_lua_fail(L, fname, "t[i] of a 1-D tensor is a number; got a tensor");
    if (!src)
        check_fits(L, fname, t->dtype, lua_tonumber(L, 3));
    if (t->ndim == 1) {
        ln_lua_check_status(L, ln_tensor_set(t, &i, lua_tonumber(L, 3)), fname);
        return 0;
    }
    ln_tensor *row = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_select(row, t, 0, i), fname);
    if (!src) {
        ln_lua_check_status(L, ln_tensor_fill(row, lua_tonumber(L, 3)), fname);
    } else {
        if (!src->storage)
            ln_lua_fail(L, fname, "the value tensor was freed");
        if (!ln_tensor_same_shape(row, src))
            ln_lua_fail(L, fname, "t[%lld] has shape %s but the value has shape %s",
                        (long long)i + 1, ln_tensor_shape_string(row, s, sizeof s),
                        ln_tensor_shape_string(src, s2, sizeof s2));
        ln_lua_check_status(L, ln_tensor_copy(row, src), fname);
    }
    ln_tensor_release(row);
    return 0;
}

/* A host buffer owned by a userdata, so a Lua error while it is in use (out of
 * memory building a table) frees it instead of leaking it. */
#define LN_HOST_BUFFER_MT "lunet.HostBuffer"

static int host_buffer_gc(lua_State *L)
{
    void **box = luaL_checkudata(L, 1, LN_HOST_BUFFER_MT);
    free(*box);
    *box = NULL;
    return 0;
}

static void **push_host_buffer(lua_State *L, void *buffer)
{
    void **box = lua_newuserdatauv(L, sizeof(void *), 0);
    *box = NULL;
    if (luaL_newmetatable(L, LN_HOST_BUFFER_MT)) {
        lua_pushcfunction(L, host_buffer_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    *box = buffer;
    return box;
}

static void push_nested(lua_State *L, const ln_tensor *t, const void *data, int depth,
                        int64_t *next)
{
    if (depth == t->ndim) {
        push_element(L, t->dtype, ln_load_as_double(data, t->dtype, (*next)++));
        return;
    }
    luaL_checkstack(L, 3, "lunet.Tensor:totable");
    lua_createtable(L, (int)t->shape[depth], 0);
    for (int64_t i = 0; i < t->shape[depth]; i++) {
        push_nested(L, t, data, depth + 1, next);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static int l_totable(lua_State *L)
{
    const char *fname = "lunet.Tensor:totable";
    ln_tensor *t = SELF(fname);
    void *host;
    luaL_checkstack(L, 2 * LN_MAX_DIMS + 8, fname);
    ln_lua_check_status(L, ln_tensor_to_host(t, &host), fname);
    void **box = push_host_buffer(L, host);
    int64_t next = 0;
    push_nested(L, t, host, 0, &next);
    free(*box);
    *box = NULL;
    return 1;
}

/* --- reductions and comparisons ---------------------------------------------- */

/* t:sum(dim [, keepdim]) and its kin: along a dimension, tensors (values, and
 * positions for max and min). */
static int reduce_along(lua_State *L, const char *fname, ln_tensor *t, ln_reduce_op op)
{
    int dim = check_dim(L, 2, fname, t);
    if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TBOOLEAN)
        ln_lua_fail(L, fname, "argument #2: keepdim must be a boolean, got %s",
                    luaL_typename(L, 3));
    int keepdim = lua_toboolean(L, 3);
    int with_positions = op == LN_MAX || op == LN_MIN;
    ln_tensor *values = ln_lua_new_tensor(L);
    ln_tensor *positions = with_positions ? ln_lua_new_tensor(L) : NULL;
    ln_lua_check_status(L, ln_op_reduce_dim(values, positions, t, op, dim, keepdim),
                        fname);
    return with_positions ? 2 : 1;
}

/* t:sum() and its kin without a dim: the whole tensor, as a Lua number. A dim
 * argument reduces along it; anything else there is an error, never ignored. */
static int reduce(lua_State *L, const char *fname, ln_reduce_op op, int mean)
{
    ln_tensor *t = SELF(fname);
    double v;
    if (!lua_isnoneornil(L, 2)) {
        return reduce_along(L, fname, t, mean ? LN_MEAN : op);
    }
    if (lua_gettop(L) > 2)
        ln_lua_fail(L, fname, "argument #2 (keepdim) needs a dim before it");
    if (mean && ln_tensor_numel(t) == 0)
        ln_lua_fail(L, fname, "mean of an empty tensor is undefined");
    ln_lua_check_status(L, ln_op_reduce(t, op, &v), fname);
    if (mean)
        v /= (double)ln_tensor_numel(t);
    if (!mean && !ln_dtype_is_float(t->dtype))
        lua_pushinteger(L, (lua_Integer)v);
    else
        lua_pushnumber(L, v);
    return 1;
}

static int l_sum(lua_State *L)
{
    return reduce(L, "lunet.Tensor:sum", LN_SUM, 0);
}

static int l_mean(lua_State *L)
{
    return reduce(L, "lunet.Tensor:mean", LN_SUM, 1);
}

static int l_max(lua_State *L)
{
    return reduce(L, "lunet.Tensor:max", LN_MAX, 0);
}

static int l_min(lua_State *L)
{
    return reduce(L, "lunet.Tensor:min", LN_MIN, 0);
}

static int l_argmax(lua_State *L)
{
    const char *fname = "lunet.Tensor:argmax";
    ln_tensor *t = SELF(fname);
    int dim;
    if (lua_isnoneornil(L, 2)) {
        if (t->ndim != 1)
            ln_lua_fail(L, fname, "argument #1: dim is required for a %d-dimensional "
                        "tensor", t->ndim);
        dim = 0;
    } else {
        dim = check_dim(L, 2, fname, t);
    }
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_argmax(out, t, dim), fname);
    return 1;
}

/* --- arithmetic ------------------------------------------------------------------ */

static int arith(lua_State *L, const char *fname, ln_binary_op op)
{
    ln_tensor *a = ln_lua_to_tensor(L, 1), *b = ln_lua_to_tensor(L, 2);
    if ((a && !a->storage) || (b && !b->storage))
        ln_lua_fail(L, fname, "argument #%d: the tensor was freed",
                    (a && !a->storage) ? 1 : 2);
    if (a && b) {
        ln_tensor *out = ln_lua_new_tensor(L);
        ln_lua_check_status(L, ln_op_binary(out, op, a, b), fname);
        return 1;
    }
    int number_idx = a ? 2 : 1;
    if (!(a || b) || lua_type(L, number_idx) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "expected tensors or numbers, got %s and %s",
                    luaL_typename(L, 1), luaL_typename(L, 2));
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_binary_scalar(out, op, a ? a : b,
                                               lua_tonumber(L, number_idx), !a),
                        fname);
    return 1;
}

static int l_add(lua_State *L) { return arith(L, "lunet.Tensor:add (+)", LN_ADD); }
static int l_sub(lua_State *L) { return arith(L, "lunet.Tensor:sub (-)", LN_SUB); }
static int l_mul(lua_State *L) { return arith(L, "lunet.Tensor:mul (*)", LN_MUL); }
static int l_div(lua_State *L) { return arith(L, "lunet.Tensor:div (/)", LN_DIV); }
static int l_eq(lua_State *L)
{
    SELF("lunet.Tensor:eq");
    return arith(L, "lunet.Tensor:eq", LN_EQ);
}

static int l_unm(lua_State *L)
{
    const char *fname = "lunet.Tensor:neg (unary -)";
    ln_tensor *t = SELF(fname);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_binary_scalar(out, LN_SUB, t, 0, 1), fname);
    return 1;
}

static int l_matmul(lua_State *L)
{
    const char *fname = "lunet.matmul";
    ln_tensor *a = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *b = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_matmul(out, a, b), fname);
    return 1;
}

/* --- life cycle and printing --------------------------------------------------- */

static int l_free(lua_State *L)
{
    ln_tensor *t = ln_lua_to_tensor(L, 1);
    if (!t)
        ln_lua_fail(L, "lunet.Tensor:free", "expected a tensor as self, got %s",
                    luaL_typename(L, 1));
    ln_tensor_release(t);
    return 0;
}

/* Collection of a userdata that was given the tensor metatable without being
 * a tensor (debug.setmetatable) leaves it alone. */
static int l_gc(lua_State *L)
{
    ln_tensor *t = ln_lua_to_tensor(L, 1);
    if (t)
        ln_tensor_release(t);
    return 0;
}

static int l_tostring(lua_State *L)
{
    ln_tensor *t = ln_lua_to_tensor(L, 1);
    if (!t)
        ln_lua_fail(L, "tostring(tensor)", "expected a tensor, got %s", luaL_typename(L, 1));
    char shape[256], num[64];
    if (!t->storage) {
        lua_pushliteral(L, "Tensor(freed)");
        return 1;
    }
    int64_t n = ln_tensor_numel(t), shown = n < 8 ? n : 6;
    void *host = NULL;
    if (n > 0 && ln_tensor_to_host(t, &host) != LN_OK)
        host = NULL;
    void **box = push_host_buffer(L, host);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "Tensor(");
    luaL_addstring(&b, ln_tensor_device(t)->name);
    luaL_addstring(&b, ", ");
    luaL_addstring(&b, ln_dtype_name(t->dtype));
    luaL_addstring(&b, ", ");
    luaL_addstring(&b, ln_tensor_shape_string(t, shape, sizeof shape));
    luaL_addstring(&b, ")");
    if (host) {
        luaL_addstring(&b, " {");
        for (int64_t i = 0; i < shown; i++) {
            double v = ln_load_as_double(host, t->dtype, i);
            snprintf(num, sizeof num, ln_dtype_is_float(t->dtype) ? "%s%.6g" : "%s%.0f",
                     i ? ", " : "", v);
            luaL_addstring(&b, num);
        }
        if (shown < n)
            luaL_addstring(&b, ", ...");
        luaL_addstring(&b, "}");
    }
    luaL_pushresult(&b);
    free(*box);
    *box = NULL;
    return 1;
}

static int l_gather_rows(lua_State *L)
{
    const char *fname = "lunet.gather_rows";
    ln_tensor *out = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *src = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *idx = ln_lua_check_tensor(L, 3, fname);
    double divisor = lua_isnoneornil(L, 4) ? 1.0 : ln_lua_check_number(L, 4, fname, "divisor");
    if (divisor == 0)
        ln_lua_fail(L, fname, "divisor must not be 0");
    ln_lua_check_status(L, ln_op_gather_rows(out, src, idx, divisor), fname);
    lua_settop(L, 1);
    return 1;
}

void ln_lua_open_tensor(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"shape", l_shape}, {"size", l_size}, {"dim", l_dim}, {"numel", l_numel},
        {"dtype", l_dtype}, {"device", l_device_of}, {"is_contiguous", l_is_contiguous},
        {"to", l_to}, {"reshape", l_reshape}, {"view", l_view}, {"narrow", l_narrow},
        {"contiguous", l_contiguous}, {"clone", l_clone}, {"copy", l_copy},
        {"fill", l_fill}, {"zero", l_zero}, {"uniform", l_uniform}, {"normal", l_normal},
        {"get", l_get}, {"set", l_set}, {"totable", l_totable}, {"sum", l_sum},
        {"mean", l_mean}, {"max", l_max}, {"min", l_min}, {"argmax", l_argmax},
        {"eq", l_eq}, {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div},
        {"neg", l_unm}, {"free", l_free}, {"transpose", l_transpose},
        {"permute", l_permute}, {"unsqueeze", l_unsqueeze}, {"squeeze", l_squeeze},
        {"item", l_item}, {NULL, NULL}};
    static const luaL_Reg metamethods[] = {
        {"__add", l_add}, {"__sub", l_sub}, {"__mul", l_mul}, {"__div", l_div},
        {"__unm", l_unm}, {"__tostring", l_tostring}, {"__gc", l_gc},
        {"__close", l_free}, {"__len", l_len}, {"__newindex", l_newindex},
        {NULL, NULL}};
    static const luaL_Reg functions[] = {
        {"tensor", l_tensor}, {"empty", l_empty}, {"zeros", l_zeros}, {"ones", l_ones},
        {"full", l_full}, {"rand", l_rand}, {"randn", l_randn}, {"randperm", l_randperm},
        {"matmul", l_matmul}, {"is_tensor", l_is_tensor}, {"gather_rows", l_gather_rows},
        {"cat", l_cat}, {"stack", l_stack}, {NULL, NULL}};
    luaL_newmetatable(L, LN_TENSOR_MT);
    luaL_setfuncs(L, metamethods, 0);
    luaL_newlib(L, methods);
    /* __index is a function so that t[i] indexes; it finds methods in this table */
    lua_pushvalue(L, -1);
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, -3, "__index");
    lua_setfield(L, -3, "Tensor"); /* module.Tensor = methods, for Lua additions */
    lua_pop(L, 1);
    luaL_setfuncs(L, functions, 0);
}
