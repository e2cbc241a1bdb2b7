/* Tensor math of API.md's Tensors beyond the basic arithmetic: comparisons,
 * in-place arithmetic, the unary family, softmax; and the activations'
 * gradients for the nn modules (lunet.activation_backward, lunet.softmax_backward). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../ops/broadcast.h"
#include "../formulas.h"
#include "../ops/families.h"
#include "../status.h"
#include "../tensor_ops.h"
#include "binding.h"

/* The tensor a method is called on (binding.c). */
#define check_self ln_lua_check_self

/* A dimension argument: 1..ndim or -ndim..-1, returned 0-based. */
static int check_dim(lua_State *L, int idx, const char *fname, const ln_tensor *t)
{
    char s[256];
    if (t->ndim == 0)
        ln_lua_fail(L, fname, "dim: a scalar tensor has no dimensions");
    int isint = 0;
    lua_Integer d = lua_tointegerx(L, idx, &isint);
    if (lua_type(L, idx) != LUA_TNUMBER || !isint)
        ln_lua_fail(L, fname, "argument #1: dim must be an integer in 1..%d (or -%d..-1 "
                    "from the end) for shape %s, got %s", t->ndim, t->ndim,
                    ln_tensor_shape_string(t, s, sizeof s),
                    lua_type(L, idx) == LUA_TNUMBER ? "a fraction" : luaL_typename(L, idx));
    if (d == 0 || d < -t->ndim || d > t->ndim)
        ln_lua_fail(L, fname, "argument #1: dim = %lld is out of range for shape %s (1..%d, "
                    "or -%d..-1 from the end)", (long long)d,
                    ln_tensor_shape_string(t, s, sizeof s), t->ndim, t->ndim);
    return d > 0 ? (int)d - 1 : t->ndim + (int)d;
}

/* The second operand of t: a live tensor, or a number (returned in *number). */
static ln_tensor *check_operand(lua_State *L, int idx, const char *fname, const ln_tensor *t,
                                double *number)
{
    char s[256];
    ln_tensor *u = ln_lua_to_tensor(L, idx);
    if (u) {
        if (!u->storage)
            ln_lua_fail(L, fname, "argument #1: the tensor was freed");
        return u;
    }
    if (lua_type(L, idx) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #1: expected a tensor or a number to combine with "
                    "shape %s, got %s", ln_tensor_shape_string(t, s, sizeof s),
                    luaL_typename(L, idx));
    *number = lua_tonumber(L, idx);
    return NULL;
}

/* --- comparisons: 0/1 in the first operand's dtype, broadcast ---------------------- */

static int compare(lua_State *L, const char *fname, ln_binary_op op)
{
    ln_tensor *t = check_self(L, fname);
    double s = 0;
    ln_tensor *u = check_operand(L, 2, fname, t, &s);
    ln_tensor *out = ln_lua_new_tensor(L);
    if (u)
        ln_lua_check_status(L, ln_op_binary(out, op, t, u), fname);
    else
        ln_lua_check_status(L, ln_op_binary_scalar(out, op, t, s, 0), fname);
    return 1;
}

static int l_ne(lua_State *L) { return compare(L, "lunet.Tensor:ne", LN_NE); }
static int l_lt(lua_State *L) { return compare(L, "lunet.Tensor:lt", LN_LT); }
static int l_le(lua_State *L) { return compare(L, "lunet.Tensor:le", LN_LE); }
static int l_gt(lua_State *L) { return compare(L, "lunet.Tensor:gt", LN_GT); }
static int l_ge(lua_State *L) { return compare(L, "lunet.Tensor:ge", LN_GE); }

/* --- in place: t = t OP u, u broadcast to t's shape; returns t ---------------------- */

static int inplace(lua_State *L, const char *fname, ln_binary_op op)
{
    ln_tensor *t = check_self(L, fname);
    double s = 0;
    ln_tensor *u = check_operand(L, 2, fname, t, &s);
    if (u)
        ln_lua_check_status(L, ln_op_binary_inplace(t, op, u), fname);
    else
        ln_lua_check_status(L, ln_op_binary_scalar_inplace(t, op, s), fname);
    lua_settop(L, 1);
    return 1;
}

static int l_add_(lua_State *L) { return inplace(L, "lunet.Tensor:add_", LN_ADD); }
static int l_sub_(lua_State *L) { return inplace(L, "lunet.Tensor:sub_", LN_SUB); }
static int l_mul_(lua_State *L) { return inplace(L, "lunet.Tensor:mul_", LN_MUL); }
static int l_div_(lua_State *L) { return inplace(L, "lunet.Tensor:div_", LN_DIV); }

/* --- the unary family ------------------------------------------------------------- */

static int unary(lua_State *L, const char *fname, ln_unary_op op, const ln_unary_params *p)
{
    ln_tensor *t = check_self(L, fname);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_unary(out, op, p, t), fname);
    return 1;
}

#define SIMPLE_UNARY(name, op)                                                \
    static int l_##name(lua_State *L)                                         \
    {                                                                         \
        ln_unary_params p = {0, 0, 0};                                        \
        return unary(L, "lunet.Tensor:" #name, op, &p);                       \
    }
SIMPLE_UNARY(exp, LN_UNARY_EXP)
SIMPLE_UNARY(log, LN_UNARY_LOG)
SIMPLE_UNARY(sqrt, LN_UNARY_SQRT)
SIMPLE_UNARY(abs, LN_UNARY_ABS)
SIMPLE_UNARY(tanh, LN_UNARY_TANH)
SIMPLE_UNARY(sigmoid, LN_UNARY_SIGMOID)
SIMPLE_UNARY(relu, LN_UNARY_RELU)

/* A number argument of an op on tensor t (named with t's shape when wrong). */
static float check_float(lua_State *L, int idx, const char *fname, const char *argname,
                         const ln_tensor *t)
{
    char s[256];
    if (lua_type(L, idx) != LUA_TNUMBER)
        ln_lua_fail(L, fname, "argument #%d: %s must be a number, got %s (tensor of shape %s)",
                    idx - 1, argname, luaL_typename(L, idx),
                    ln_tensor_shape_string(t, s, sizeof s));
    return (float)lua_tonumber(L, idx);
}

static int l_pow(lua_State *L)
{
    const char *fname = "lunet.Tensor:pow";
    ln_tensor *t = check_self(L, fname);
    ln_unary_params p = {check_float(L, 2, fname, "the exponent", t), 0, 0};
    return unary(L, fname, LN_UNARY_POW, &p);
}

/* clamp(lo, hi): either may be nil, not both (as PyTorch). */
static int l_clamp(lua_State *L)
{
    const char *fname = "lunet.Tensor:clamp";
    char s[256];
    ln_tensor *t = check_self(L, fname);
    if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3))
        ln_lua_fail(L, fname, "at least one of lo (argument #1) and hi (argument #2) must "
                    "be a number (tensor of shape %s)", ln_tensor_shape_string(t, s, sizeof s));
    ln_unary_params p = {0, -INFINITY, INFINITY};
    if (!lua_isnoneornil(L, 2))
        p.lo = check_float(L, 2, fname, "lo", t);
    if (!lua_isnoneornil(L, 3))
        p.hi = check_float(L, 3, fname, "hi", t);
    return unary(L, fname, LN_UNARY_CLAMP, &p);
}

static int l_leaky_relu(lua_State *L)
{
    const char *fname = "lunet.Tensor:leaky_relu";
    ln_tensor *t = check_self(L, fname);
    ln_unary_params p = {0.01f, 0, 0};
    if (!lua_isnoneornil(L, 2))
        p.alpha = check_float(L, 2, fname, "negative_slope", t);
    return unary(L, fname, LN_UNARY_LEAKY_RELU, &p);
}

/* gelu([approximate = "none" | "tanh"]) */
static ln_unary_op gelu_op(lua_State *L, int idx, const char *fname)
{
    if (lua_isnoneornil(L, idx))
        return LN_UNARY_GELU;
    const char *a = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : NULL;
    if (a && strcmp(a, "none") == 0)
        return LN_UNARY_GELU;
    if (a && strcmp(a, "tanh") == 0)
        return LN_UNARY_GELU_TANH;
    return (ln_unary_op)ln_lua_fail(L, fname, "approximate must be \"none\" or \"tanh\", got %s",
                                    a ? a : luaL_typename(L, idx));
}

static int l_gelu(lua_State *L)
{
    const char *fname = "lunet.Tensor:gelu";
    check_self(L, fname);
    ln_unary_params p = {0, 0, 0};
    return unary(L, fname, gelu_op(L, 2, fname), &p);
}

/* --- softmax ------------------------------------------------------------------------ */

static int softmax(lua_State *L, const char *fname, int log)
{
    ln_tensor *t = check_self(L, fname);
    if (lua_isnoneornil(L, 2))
        ln_lua_fail(L, fname, "argument #1: dim is required");
    int dim = check_dim(L, 2, fname, t);
    ln_tensor *out = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_op_softmax(out, log, t, dim), fname);
    return 1;
}

static int l_softmax(lua_State *L) { return softmax(L, "lunet.Tensor:softmax", 0); }
static int l_log_softmax(lua_State *L) { return softmax(L, "lunet.Tensor:log_softmax", 1); }

/* --- gradients for the nn modules ----------------------------------------------------- */

/* Argument idx of an nn op: the tensor its module kept from the last call
 * (or nil). Pushes and returns it when it can take the result (live,
 * contiguous float32, the shape of `like` on its device, sharing no memory
 * with an input), so a steady forward or backward allocates nothing; else
 * pushes and returns a new (zeroed) tensor for the op to allocate. */
static ln_tensor *push_reusable(lua_State *L, int idx, const char *fname, const ln_tensor *like,
                                const ln_tensor *const *inputs, int ninputs)
{
    if (!lua_isnoneornil(L, idx)) {
        ln_tensor *t = ln_lua_to_tensor(L, idx);
        if (!t)
            ln_lua_fail(L, fname, "argument #%d: expected a tensor to reuse or nil, got %s", idx,
                        luaL_typename(L, idx));
        int fits = t->storage && t->dtype == LN_FLOAT32 && ln_tensor_is_contiguous(t)
                   && ln_tensor_same_shape(t, like) && ln_tensor_device(t) == ln_tensor_device(like);
        for (int i = 0; fits && i < ninputs; i++)
            fits = inputs[i]->storage != t->storage;
        if (fits) {
            lua_pushvalue(L, idx);
            return t;
        }
    }
    return ln_lua_new_tensor(L);
}

/* The activation of the unary family named by argument 1 ("sigmoid", "tanh",
 * "relu", "leaky_relu", "gelu", "gelu_tanh": those with a gradient). */
static ln_unary_op check_activation(lua_State *L, const char *fname)
{
    const char *name = luaL_checkstring(L, 1);
    for (int op = 0; op < LN_UNARY_COUNT; op++)
        if (ln_unary_has_backward((ln_unary_op)op) && strcmp(name, ln_unary_name((ln_unary_op)op)) == 0)
            return (ln_unary_op)op;
    return (ln_unary_op)ln_lua_fail(L, fname, "argument #1: \"%s\" is not an activation with "
                                    "a gradient", name);
}

/* lunet.activation_forward(name, x [, alpha [, out]]): y of an activation (see
 * check_activation), written into `out` when it fits (push_reusable). */
static int l_activation_forward(lua_State *L)
{
    const char *fname = "lunet.activation_forward";
    ln_unary_op op = check_activation(L, fname);
    ln_tensor *x = ln_lua_check_tensor(L, 2, fname);
    ln_unary_params p = {op == LN_UNARY_LEAKY_RELU ? 0.01f : 0, 0, 0};
    if (!lua_isnoneornil(L, 3))
        p.alpha = check_float(L, 3, fname, "alpha", x);
    const ln_tensor *inputs[] = {x};
    ln_tensor *out = push_reusable(L, 4, fname, x, inputs, 1);
    ln_lua_check_status(L, ln_op_unary_into(out, op, &p, x), fname);
    return 1;
}

/* lunet.activation_backward(name, x, y, dy [, alpha [, out]]): dx of an
 * activation (see check_activation) from its input x and output y, written
 * into `out` when it fits (push_reusable). */
static int l_activation_backward(lua_State *L)
{
    const char *fname = "lunet.activation_backward";
    ln_unary_op op = check_activation(L, fname);
    ln_tensor *x = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *y = ln_lua_check_tensor(L, 3, fname);
    ln_tensor *dy = ln_lua_check_tensor(L, 4, fname);
    ln_unary_params p = {0, 0, 0};
    if (!lua_isnoneornil(L, 5))
        p.alpha = check_float(L, 5, fname, "alpha", x);
    const ln_tensor *inputs[] = {x, y, dy};
    ln_tensor *out = push_reusable(L, 6, fname, x, inputs, 3);
    ln_lua_check_status(L, ln_op_unary_backward_into(out, op, &p, x, y, dy), fname);
    return 1;
}

/* lunet.softmax_forward(x, dim [, log [, out]]): softmax (log_softmax) of x
 * along dim, written into `out` when it fits (push_reusable). */
static int l_softmax_forward(lua_State *L)
{
    const char *fname = "lunet.softmax_forward";
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname);
    int dim = check_dim(L, 2, fname, x);
    const ln_tensor *inputs[] = {x};
    ln_tensor *out = push_reusable(L, 4, fname, x, inputs, 1);
    ln_lua_check_status(L, ln_op_softmax_into(out, lua_toboolean(L, 3), x, dim), fname);
    return 1;
}

/* lunet.softmax_backward(y, dy, dim [, log [, out]]): dx from softmax's
 * output y, written into `out` when it fits (push_reusable). */
static int l_softmax_backward(lua_State *L)
{
    const char *fname = "lunet.softmax_backward";
    ln_tensor *y = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *dy = ln_lua_check_tensor(L, 2, fname);
    int dim = check_dim(L, 3, fname, y);
    const ln_tensor *inputs[] = {y, dy};
    ln_tensor *out = push_reusable(L, 5, fname, y, inputs, 2);
    ln_lua_check_status(L, ln_op_softmax_backward_into(out, lua_toboolean(L, 4), y, dy, dim), fname);
    return 1;
}

/* lunet.shares_memory(a, b): whether tensors a and b view the same storage
 * (as torch.shares_memory), so a buffer is never reused over an input. */
static int l_shares_memory(lua_State *L)
{
    const char *fname = "lunet.shares_memory";
    ln_tensor *a = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *b = ln_lua_check_tensor(L, 2, fname);
    lua_pushboolean(L, a->storage != NULL && a->storage == b->storage);
    return 1;
}

/* lunet.reduce_dim(t, "sum"|"mean"|"max"|"min", dim [, keepdim]): the
 * reduce_dim family on t (any dtype); values, and for max/min the int32 1-based
 * positions (t:sum(dim) and friends are the user's form of it). */
static int l_reduce_dim(lua_State *L)
{
    const char *fname = "lunet.reduce_dim";
    static const char *const names[] = {"sum", "mean", "max", "min", NULL};
    static const ln_reduce_op ops[] = {LN_SUM, LN_MEAN, LN_MAX, LN_MIN};
    ln_tensor *t = ln_lua_check_tensor(L, 1, fname);
    ln_reduce_op op = ops[luaL_checkoption(L, 2, NULL, names)];
    int dim = check_dim(L, 3, fname, t);
    int keepdim = lua_toboolean(L, 4);
    int with_positions = op == LN_MAX || op == LN_MIN;
    ln_tensor *values = ln_lua_new_tensor(L);
    ln_tensor *positions = with_positions ? ln_lua_new_tensor(L) : NULL;
    ln_lua_check_status(L, ln_op_reduce_dim(values, positions, t, op, dim, keepdim), fname);
    return with_positions ? 2 : 1;
}

void ln_lua_open_tensor_math(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt}, {"ge", l_ge},
        {"add_", l_add_}, {"sub_", l_sub_}, {"mul_", l_mul_}, {"div_", l_div_},
        {"exp", l_exp}, {"log", l_log}, {"sqrt", l_sqrt}, {"abs", l_abs}, {"tanh", l_tanh},
        {"sigmoid", l_sigmoid}, {"relu", l_relu}, {"pow", l_pow}, {"clamp", l_clamp},
        {"leaky_relu", l_leaky_relu}, {"gelu", l_gelu}, {"softmax", l_softmax},
        {"log_softmax", l_log_softmax}, {NULL, NULL}};
    static const luaL_Reg functions[] = {
        {"activation_forward", l_activation_forward},
        {"activation_backward", l_activation_backward},
        {"softmax_forward", l_softmax_forward},
        {"softmax_backward", l_softmax_backward}, {"reduce_dim", l_reduce_dim},
        {"shares_memory", l_shares_memory},
        {NULL, NULL}};
    lua_getfield(L, -1, "Tensor"); /* the methods table ln_lua_open_tensor made */
    luaL_setfuncs(L, methods, 0);
    lua_pop(L, 1);
    /* low-level entry points: in lunet.ops (ln_lua_open_nn made it), and at
     * the top level as aliases, like the others */
    luaL_setfuncs(L, functions, 0);
    if (lua_getfield(L, -1, "ops") == LUA_TTABLE)
        luaL_setfuncs(L, functions, 0);
    lua_pop(L, 1);
}
