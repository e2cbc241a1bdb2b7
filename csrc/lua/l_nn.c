/* The functional layer, loss and optimizer ops behind lunet.nn and
 * lunet.optim: core.conv2d_forward(...), core.adam_step(...), ...
 *
 * Each op takes its output tensors as arguments: a tensor is reused when it
 * is a live, contiguous float32 tensor of the right shape on the input's
 * device that shares no memory with an input; otherwise (nil included) a new
 * one is allocated. The op returns the tensors it wrote, so a module keeps
 * them (`self.output = core.relu_forward(x, self.output)`) and a steady
 * training step allocates nothing. Gradient accumulators (dw, db) and
 * optimizer state are always given. The last argument, optional, names the
 * caller for error messages ("lunet.nn.Linear:forward"). */
#include <stdint.h>
#include <string.h>

#include "../nn_ops.h"
#include "../status.h"
#include "binding.h"

static const char *caller(lua_State *L, int idx, const char *fallback)
{
    return lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : fallback;
}

static ln_tensor *opt_tensor(lua_State *L, int idx, const char *fname)
{
    return lua_isnoneornil(L, idx) ? NULL : ln_lua_check_tensor(L, idx, fname);
}

/* Pushes the tensor of `dtype` to write into (see the top of the file) and
 * returns it. */
static ln_tensor *push_output_of(lua_State *L, int idx, const ln_tensor *like, ln_dtype dtype,
                                 int ndim, const int64_t *shape,
                                 const ln_tensor *const *inputs, int ninputs,
                                 const char *fname)
{
    ln_tensor *t = NULL;
    if (!lua_isnoneornil(L, idx)) {
        t = ln_lua_to_tensor(L, idx);
        if (!t)
            ln_lua_fail(L, fname, "argument #%d: expected a tensor to reuse or nil, got %s",
                        idx, luaL_typename(L, idx));
    }
    ln_device *dev = ln_tensor_device(like);
    int reuse = t && t->storage && ln_tensor_device(t) == dev && t->dtype == dtype
                && ln_tensor_is_contiguous(t) && t->ndim == ndim;
    for (int i = 0; reuse && i < ndim; i++)
        reuse = t->shape[i] == shape[i];
    for (int i = 0; reuse && i < ninputs; i++)
        reuse = !inputs[i] || inputs[i]->storage != t->storage;
    if (reuse) {
        lua_pushvalue(L, idx);
        return t;
    }
    t = ln_lua_new_tensor(L);
    ln_lua_check_status(L, ln_tensor_alloc(t, dev, dtype, ndim, shape), fname);
    return t;
}

/* A float32 output: see push_output_of. */
static ln_tensor *push_output(lua_State *L, int idx, const ln_tensor *like, int ndim,
                              const int64_t *shape, const ln_tensor *const *inputs,
                              int ninputs, const char *fname)
{
    return push_output_of(L, idx, like, LN_FLOAT32, ndim, shape, inputs, ninputs, fname);
}

static int check_int(lua_State *L, int idx, const char *fname, const char *what)
{
    return (int)ln_lua_check_integer(L, idx, fname, what, INT32_MIN, INT32_MAX);
}

static ln_conv2d_params conv_params(lua_State *L, int idx, const char *fname)
{
    ln_conv2d_params p;
    p.stride_h = check_int(L, idx, fname, "stride_h");
    p.stride_w = check_int(L, idx + 1, fname, "stride_w");
    p.pad_h = check_int(L, idx + 2, fname, "pad_h");
    p.pad_w = check_int(L, idx + 3, fname, "pad_w");
    return p;
}

/* The six sizes of a window (kh, kw, sh, sw, ph, pw from idx on), errors
 * calling them by `names`. */
static ln_pool2d_params read_window(lua_State *L, int idx, const char *fname,
                                    const char *const names[6])
{
    ln_pool2d_params p;
    p.kernel_h = check_int(L, idx, fname, names[0]);
    p.kernel_w = check_int(L, idx + 1, fname, names[1]);
    p.stride_h = check_int(L, idx + 2, fname, names[2]);
    p.stride_w = check_int(L, idx + 3, fname, names[3]);
    p.pad_h = check_int(L, idx + 4, fname, names[4]);
    p.pad_w = check_int(L, idx + 5, fname, names[5]);
    return p;
}

static ln_pool2d_params pool_params(lua_State *L, int idx, const char *fname)
{
    static const char *const names[6] = {"kernel_h", "kernel_w", "stride_h",
                                         "stride_w", "pad_h",    "pad_w"};
    return read_window(L, idx, fname, names);
}

static ln_pool_mode pool_mode(lua_State *L, int idx, const char *fname)
{
    const char *mode = lua_type(L, idx) == LUA_TSTRING ? lua_tostring(L, idx) : "";
    if (strcmp(mode, "max") == 0)
        return LN_POOL_MAX;
    if (strcmp(mode, "avg") == 0)
        return LN_POOL_AVG;
    ln_lua_fail(L, fname, "argument #%d: pooling mode must be \"max\" or \"avg\"", idx);
    return LN_POOL_MAX;
}

/* --- convolution --------------------------------------------------------------- */

/* conv2d_forward(x, w, bias|nil, sh, sw, ph, pw, y|nil [, caller]) -> y */
static int l_conv2d_forward(lua_State *L)
{
    const char *fname = caller(L, 9, "lunet.conv2d_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *b = opt_tensor(L, 3, fname);
    ln_conv2d_params p = conv_params(L, 4, fname);
    ln_conv2d_shape s;
    ln_lua_check_status(L, ln_nn_conv2d_shape(x, w, &p, &s), fname);
    int64_t shape[4] = {s.n, s.k, s.p, s.q};
    const ln_tensor *inputs[3] = {x, w, b};
    ln_tensor *y = push_output(L, 8, x, 4, shape, inputs, 3, fname);
    ln_lua_check_status(L, ln_nn_conv2d_forward(x, w, b, &p, y), fname);
    return 1;
}

/* conv2d_backward_data(x, w, dy, sh, sw, ph, pw, dx|nil [, caller]) -> dx */
static int l_conv2d_backward_data(lua_State *L)
{
    const char *fname = caller(L, 9, "lunet.conv2d_backward_data");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *dy = ln_lua_check_tensor(L, 3, fname);
    ln_conv2d_params p = conv_params(L, 4, fname);
    ln_conv2d_shape s;
    ln_lua_check_status(L, ln_nn_conv2d_shape(x, w, &p, &s), fname);
    const ln_tensor *inputs[3] = {x, w, dy};
    ln_tensor *dx = push_output(L, 8, x, 4, x->shape, inputs, 3, fname);
    ln_lua_check_status(L, ln_nn_conv2d_backward_data(x, w, dy, &p, dx), fname);
    return 1;
}

/* conv2d_backward_filter(x, dy, dw, db|nil, sh, sw, ph, pw, accumulate [, caller]) */
static int l_conv2d_backward_filter(lua_State *L)
{
    const char *fname = caller(L, 10, "lunet.conv2d_backward_filter");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *dy = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *dw = ln_lua_check_tensor(L, 3, fname), *db = opt_tensor(L, 4, fname);
    ln_conv2d_params p = conv_params(L, 5, fname);
    ln_lua_check_status(L, ln_nn_conv2d_backward_filter(x, dy, &p, dw, db,
                                                        lua_toboolean(L, 9)), fname);
    return 0;
}

/* The six sizes of a window (kh, kw, sh, sw, ph, pw from idx on) under the
 * names the layers' constructors take them by. */
static ln_pool2d_params window_params(lua_State *L, int idx, const char *fname)
{
    static const char *const names[6] = {"kernel size", "kernel size", "stride",
                                         "stride",      "padding",     "padding"};
    return read_window(L, idx, fname, names);
}

/* conv2d_check_params(kh, kw, sh, sw, ph, pw [, caller]): conv2d_forward's rule
 * for the geometry, without tensors (nn.Conv2d checks its arguments with it). */
static int l_conv2d_check_params(lua_State *L)
{
    const char *fname = caller(L, 7, "lunet.conv2d_check_params");
    ln_pool2d_params w = window_params(L, 1, fname);
    ln_conv2d_params p = {.stride_h = w.stride_h, .stride_w = w.stride_w, .pad_h = w.pad_h,
                          .pad_w = w.pad_w};
    ln_lua_check_status(L, ln_nn_conv2d_check_params(w.kernel_h, w.kernel_w, &p), fname);
    return 0;
}

/* --- the fused block: conv2d, ReLU, 2x2 max pooling ------------------------------ */

/* conv_block_supported(device) -> whether its backend has the fused block */
static int l_conv_block_supported(lua_State *L)
{
    ln_device *dev = ln_lua_check_device(L, 1, "lunet.conv_block_supported");
    lua_pushboolean(L, ln_nn_conv_block_supported(dev));
    return 1;
}

/* conv_block_forward(x, w, bias|nil, sh, sw, ph, pw, y|nil, winner|nil|false [, caller])
 * -> y, winner (nil when winner is false: evaluate mode, no winners computed) */
static int l_conv_block_forward(lua_State *L)
{
    const char *fname = caller(L, 10, "lunet.conv_block_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *b = opt_tensor(L, 3, fname);
    ln_conv2d_params p = conv_params(L, 4, fname);
    ln_conv2d_shape s;
    int64_t shape[4];
    ln_lua_check_status(L, ln_nn_conv_block_shape(x, w, &p, &s, shape), fname);
    const ln_tensor *inputs[3] = {x, w, b};
    ln_tensor *y = push_output(L, 8, x, 4, shape, inputs, 3, fname);
    const ln_tensor *before_winner[4] = {x, w, b, y};
    ln_tensor *winner = NULL;
    if (lua_isboolean(L, 9) && !lua_toboolean(L, 9))
        lua_pushnil(L);
    else
        winner = push_output_of(L, 9, x, LN_UINT8, 4, shape, before_winner, 4, fname);
    ln_lua_check_status(L, ln_nn_conv_block_forward(x, w, b, &p, y, winner), fname);
    return 2;
}

/* conv_block_backward(x, w, dy, winner, sh, sw, ph, pw, dx|nil|false, dw, db|nil,
 * accumulate [, caller]) -> dx (nothing when dx is false: no input gradient) */
static int l_conv_block_backward(lua_State *L)
{
    const char *fname = caller(L, 13, "lunet.conv_block_backward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *dy = ln_lua_check_tensor(L, 3, fname), *winner = ln_lua_check_tensor(L, 4, fname);
    ln_conv2d_params p = conv_params(L, 5, fname);
    ln_tensor *dw = ln_lua_check_tensor(L, 10, fname), *db = opt_tensor(L, 11, fname);
    ln_conv2d_shape s;
    int64_t shape[4];
    ln_lua_check_status(L, ln_nn_conv_block_shape(x, w, &p, &s, shape), fname);
    ln_tensor *dx = NULL;
    if (!(lua_type(L, 9) == LUA_TBOOLEAN && !lua_toboolean(L, 9))) {
        const ln_tensor *inputs[6] = {x, w, dy, winner, dw, db};
        dx = push_output(L, 9, x, 4, x->shape, inputs, 6, fname);
    }
    ln_lua_check_status(L, ln_nn_conv_block_backward(x, w, dy, winner, &p, dx, dw, db,
                                                     lua_toboolean(L, 12)), fname);
    return dx ? 1 : 0;
}

/* --- fully connected ------------------------------------------------------------ */

/* linear_forward(x, w, bias|nil, y|nil [, caller]) -> y */
static int l_linear_forward(lua_State *L)
{
    const char *fname = caller(L, 5, "lunet.linear_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *b = opt_tensor(L, 3, fname);
    ln_lua_check_status(L, ln_nn_linear_check(x, w), fname);
    int64_t shape[2] = {x->shape[0], w->shape[0]};
    const ln_tensor *inputs[3] = {x, w, b};
    ln_tensor *y = push_output(L, 4, x, 2, shape, inputs, 3, fname);
    ln_lua_check_status(L, ln_nn_linear_forward(x, w, b, y), fname);
    return 1;
}

/* linear_backward_data(dy, w, dx|nil [, caller]) -> dx */
static int l_linear_backward_data(lua_State *L)
{
    const char *fname = caller(L, 4, "lunet.linear_backward_data");
    ln_tensor *dy = ln_lua_check_tensor(L, 1, fname), *w = ln_lua_check_tensor(L, 2, fname);
    ln_lua_check_status(L, ln_nn_linear_check_grad(dy, w), fname);
    int64_t shape[2] = {dy->shape[0], w->shape[1]};
    const ln_tensor *inputs[2] = {dy, w};
    ln_tensor *dx = push_output(L, 3, dy, 2, shape, inputs, 2, fname);
    ln_lua_check_status(L, ln_nn_linear_backward_data(dy, w, dx), fname);
    return 1;
}

/* linear_backward_filter(x, dy, dw, db|nil, accumulate [, caller]) */
static int l_linear_backward_filter(lua_State *L)
{
    const char *fname = caller(L, 6, "lunet.linear_backward_filter");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *dy = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *dw = ln_lua_check_tensor(L, 3, fname), *db = opt_tensor(L, 4, fname);
    ln_lua_check_status(L, ln_nn_linear_backward_filter(x, dy, dw, db, lua_toboolean(L, 5)),
                        fname);
    return 0;
}

/* --- pooling --------------------------------------------------------------------- */

/* pool2d_forward("max"|"avg", x, kh, kw, sh, sw, ph, pw, y|nil [, caller]) -> y */
static int l_pool2d_forward(lua_State *L)
{
    const char *fname = caller(L, 10, "lunet.pool2d_forward");
    ln_pool_mode mode = pool_mode(L, 1, fname);
    ln_tensor *x = ln_lua_check_tensor(L, 2, fname);
    ln_pool2d_params p = pool_params(L, 3, fname);
    ln_pool2d_shape s;
    ln_lua_check_status(L, ln_nn_pool2d_shape(x, &p, &s), fname);
    int64_t shape[4] = {s.n, s.c, s.p, s.q};
    const ln_tensor *inputs[1] = {x};
    ln_tensor *y = push_output(L, 9, x, 4, shape, inputs, 1, fname);
    ln_lua_check_status(L, ln_nn_pool2d_forward(mode, x, &p, y), fname);
    return 1;
}

/* pool2d_backward(mode, x, y, dy, kh, kw, sh, sw, ph, pw, dx|nil [, caller]) -> dx */
static int l_pool2d_backward(lua_State *L)
{
    const char *fname = caller(L, 12, "lunet.pool2d_backward");
    ln_pool_mode mode = pool_mode(L, 1, fname);
    ln_tensor *x = ln_lua_check_tensor(L, 2, fname), *y = ln_lua_check_tensor(L, 3, fname);
    ln_tensor *dy = ln_lua_check_tensor(L, 4, fname);
    ln_pool2d_params p = pool_params(L, 5, fname);
    ln_pool2d_shape s;
    ln_lua_check_status(L, ln_nn_pool2d_shape(x, &p, &s), fname);
    const ln_tensor *inputs[3] = {x, y, dy};
    ln_tensor *dx = push_output(L, 11, x, 4, x->shape, inputs, 3, fname);
    ln_lua_check_status(L, ln_nn_pool2d_backward(mode, x, y, dy, &p, dx), fname);
    return 1;
}

/* pool2d_check_params(kh, kw, sh, sw, ph, pw [, caller]): pool2d_forward's rule
 * for the window, without tensors (the pools check their arguments with it). */
static int l_pool2d_check_params(lua_State *L)
{
    const char *fname = caller(L, 7, "lunet.pool2d_check_params");
    ln_pool2d_params p = window_params(L, 1, fname);
    ln_lua_check_status(L, ln_nn_pool2d_check_params(&p), fname);
    return 0;
}

/* --- activations and dropout ----------------------------------------------------------- */

/* relu_forward(x, y|nil [, caller]) -> y */
static int l_relu_forward(lua_State *L)
{
    const char *fname = caller(L, 3, "lunet.relu_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname);
    const ln_tensor *inputs[1] = {x};
    ln_tensor *y = push_output(L, 2, x, x->ndim, x->shape, inputs, 1, fname);
    ln_lua_check_status(L, ln_nn_relu_forward(x, y), fname);
    return 1;
}

/* relu_backward(y, dy, dx|nil [, caller]) -> dx */
static int l_relu_backward(lua_State *L)
{
    const char *fname = caller(L, 4, "lunet.relu_backward");
    ln_tensor *y = ln_lua_check_tensor(L, 1, fname), *dy = ln_lua_check_tensor(L, 2, fname);
    const ln_tensor *inputs[2] = {y, dy};
    ln_tensor *dx = push_output(L, 3, y, y->ndim, y->shape, inputs, 2, fname);
    ln_lua_check_status(L, ln_nn_relu_backward(y, dy, dx), fname);
    return 1;
}

/* dropout_forward(x, p, y|nil, mask|nil [, caller]) -> y, mask */
static int l_dropout_forward(lua_State *L)
{
    const char *fname = caller(L, 5, "lunet.dropout_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname);
    double p = ln_lua_check_number(L, 2, fname, "p");
    const ln_tensor *inputs[1] = {x};
    ln_tensor *y = push_output(L, 3, x, x->ndim, x->shape, inputs, 1, fname);
    const ln_tensor *inputs2[2] = {x, y};
    ln_tensor *mask = push_output(L, 4, x, x->ndim, x->shape, inputs2, 2, fname);
    ln_lua_check_status(L, ln_nn_dropout_forward(x, p, y, mask), fname);
    return 2;
}

/* dropout_backward(dy, mask, dx|nil [, caller]) -> dx */
static int l_dropout_backward(lua_State *L)
{
    const char *fname = caller(L, 4, "lunet.dropout_backward");
    ln_tensor *dy = ln_lua_check_tensor(L, 1, fname), *m = ln_lua_check_tensor(L, 2, fname);
    const ln_tensor *inputs[2] = {dy, m};
    ln_tensor *dx = push_output(L, 3, dy, dy->ndim, dy->shape, inputs, 2, fname);
    ln_lua_check_status(L, ln_nn_dropout_backward(dy, m, dx), fname);
    return 1;
}

/* --- batch normalisation ----------------------------------------------------------------- */

/* batchnorm_forward(x, gamma, beta, running_mean, running_var, training, momentum,
 *                   eps, y|nil, save_mean|nil, save_invstd|nil [, caller])
 *   -> y, save_mean, save_invstd (the last two only when training) */
static int l_batchnorm_forward(lua_State *L)
{
    const char *fname = caller(L, 12, "lunet.batchnorm_forward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *g = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *b = ln_lua_check_tensor(L, 3, fname);
    ln_tensor *rm = ln_lua_check_tensor(L, 4, fname), *rv = ln_lua_check_tensor(L, 5, fname);
    int training = lua_toboolean(L, 6);
    double momentum = ln_lua_check_number(L, 7, fname, "momentum");
    double eps = ln_lua_check_number(L, 8, fname, "eps");
    int64_t n, c, inner;
    ln_lua_check_status(L, ln_nn_batchnorm_check(x, g, &n, &c, &inner), fname);
    const ln_tensor *inputs[5] = {x, g, b, rm, rv};
    ln_tensor *y = push_output(L, 9, x, x->ndim, x->shape, inputs, 5, fname);
    ln_tensor *mean = NULL, *invstd = NULL;
    if (training) {
        mean = push_output(L, 10, x, 1, &c, inputs, 5, fname);
        const ln_tensor *inputs2[6] = {x, g, b, rm, rv, mean};
        invstd = push_output(L, 11, x, 1, &c, inputs2, 6, fname);
    }
    ln_lua_check_status(L, ln_nn_batchnorm_forward(x, g, b, rm, rv, training, momentum, eps,
                                                   y, mean, invstd), fname);
    return training ? 3 : 1;
}

/* batchnorm_backward(x, dy, gamma, save_mean, save_invstd, dx|nil, dgamma, dbeta,
 *                    accumulate [, caller]) -> dx */
static int l_batchnorm_backward(lua_State *L)
{
    const char *fname = caller(L, 10, "lunet.batchnorm_backward");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *dy = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *g = ln_lua_check_tensor(L, 3, fname);
    ln_tensor *mean = ln_lua_check_tensor(L, 4, fname);
    ln_tensor *invstd = ln_lua_check_tensor(L, 5, fname);
    ln_tensor *dg = ln_lua_check_tensor(L, 7, fname), *dbeta = ln_lua_check_tensor(L, 8, fname);
    int64_t n, c, inner;
    ln_lua_check_status(L, ln_nn_batchnorm_check(x, g, &n, &c, &inner), fname);
    const ln_tensor *inputs[7] = {x, dy, g, mean, invstd, dg, dbeta};
    ln_tensor *dx = push_output(L, 6, x, x->ndim, x->shape, inputs, 7, fname);
    ln_lua_check_status(L, ln_nn_batchnorm_backward(x, dy, g, mean, invstd, dx, dg, dbeta,
                                                    lua_toboolean(L, 9)), fname);
    return 1;
}

/* batchnorm_backward_eval(x, dy, gamma, running_mean, running_var, eps, dx|nil,
 *                         dgamma, dbeta, accumulate [, caller]) -> dx */
static int l_batchnorm_backward_eval(lua_State *L)
{
    const char *fname = caller(L, 11, "lunet.batchnorm_backward_eval");
    ln_tensor *x = ln_lua_check_tensor(L, 1, fname), *dy = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *g = ln_lua_check_tensor(L, 3, fname);
    ln_tensor *rm = ln_lua_check_tensor(L, 4, fname), *rv = ln_lua_check_tensor(L, 5, fname);
    double eps = ln_lua_check_number(L, 6, fname, "eps");
    ln_tensor *dg = ln_lua_check_tensor(L, 8, fname), *dbeta = ln_lua_check_tensor(L, 9, fname);
    int64_t n, c, inner;
    ln_lua_check_status(L, ln_nn_batchnorm_check(x, g, &n, &c, &inner), fname);
    const ln_tensor *inputs[7] = {x, dy, g, rm, rv, dg, dbeta};
    ln_tensor *dx = push_output(L, 7, x, x->ndim, x->shape, inputs, 7, fname);
    ln_lua_check_status(L, ln_nn_batchnorm_backward_eval(x, dy, g, rm, rv, eps, dx, dg, dbeta,
                                                         lua_toboolean(L, 10)), fname);
    return 1;
}

/* --- loss ---------------------------------------------------------------------------------- */

/* cross_entropy_forward(logits, labels [, caller]) -> mean loss (a number) */
static int l_cross_entropy_forward(lua_State *L)
{
    const char *fname = caller(L, 3, "lunet.cross_entropy_forward");
    ln_tensor *logits = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *labels = ln_lua_check_tensor(L, 2, fname);
    double loss = 0;
    ln_lua_check_status(L, ln_nn_cross_entropy_forward(logits, labels, &loss), fname);
    lua_pushnumber(L, loss);
    return 1;
}

/* cross_entropy_backward(logits, labels, scale, dlogits|nil [, caller]) -> dlogits */
static int l_cross_entropy_backward(lua_State *L)
{
    const char *fname = caller(L, 5, "lunet.cross_entropy_backward");
    ln_tensor *logits = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *labels = ln_lua_check_tensor(L, 2, fname);
    double scale = ln_lua_check_number(L, 3, fname, "scale");
    ln_lua_check_status(L, ln_nn_cross_entropy_check(logits, labels), fname);
    const ln_tensor *inputs[2] = {logits, labels};
    ln_tensor *d = push_output(L, 4, logits, 2, logits->shape, inputs, 2, fname);
    ln_lua_check_status(L, ln_nn_cross_entropy_backward(logits, labels, scale, d), fname);
    return 1;
}

/* --- optimizers ------------------------------------------------------------------------------ */

/* sgd_step(param, grad, buffer|nil, lr, momentum, dampening, weight_decay, nesterov,
 *          first_step [, caller]) */
static int l_sgd_step(lua_State *L)
{
    const char *fname = caller(L, 10, "lunet.sgd_step");
    ln_tensor *param = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *grad = ln_lua_check_tensor(L, 2, fname), *buf = opt_tensor(L, 3, fname);
    ln_sgd_params p;
    p.lr = (float)ln_lua_check_number(L, 4, fname, "lr");
    p.momentum = (float)ln_lua_check_number(L, 5, fname, "momentum");
    p.dampening = (float)ln_lua_check_number(L, 6, fname, "dampening");
    p.weight_decay = (float)ln_lua_check_number(L, 7, fname, "weight_decay");
    p.nesterov = lua_toboolean(L, 8);
    p.first_step = lua_toboolean(L, 9);
    ln_lua_check_status(L, ln_nn_sgd_step(param, grad, buf, &p), fname);
    return 0;
}

/* adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay,
 *           step [, caller]), and adamw_step (the same arguments) with PyTorch's
 * decoupled weight decay: one reading of the arguments for both. */
static int adam_update(lua_State *L, const char *default_name, int decoupled_weight_decay)
{
    const char *fname = caller(L, 11, default_name);
    ln_tensor *param = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *grad = ln_lua_check_tensor(L, 2, fname);
    ln_tensor *m = ln_lua_check_tensor(L, 3, fname), *v = ln_lua_check_tensor(L, 4, fname);
    ln_adam_params p = {0};
    p.lr = (float)ln_lua_check_number(L, 5, fname, "lr");
    p.beta1 = (float)ln_lua_check_number(L, 6, fname, "beta1");
    p.beta2 = (float)ln_lua_check_number(L, 7, fname, "beta2");
    p.eps = (float)ln_lua_check_number(L, 8, fname, "eps");
    p.weight_decay = (float)ln_lua_check_number(L, 9, fname, "weight_decay");
    p.step = ln_lua_check_integer(L, 10, fname, "step", 1, INT64_MAX);
    p.decoupled_weight_decay = decoupled_weight_decay;
    ln_lua_check_status(L, ln_nn_adam_step(param, grad, m, v, &p), fname);
    return 0;
}

static int l_adam_step(lua_State *L)
{
    return adam_update(L, "lunet.adam_step", 0);
}

static int l_adamw_step(lua_State *L)
{
    return adam_update(L, "lunet.adamw_step", 1);
}

/* tensor_allocations() -> how many tensor storages lunet has allocated so far
 * (for specs that check a training step allocates nothing). */
static int l_tensor_allocations(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)ln_tensor_allocation_count());
    return 1;
}

void ln_lua_open_nn(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"conv2d_forward", l_conv2d_forward},
        {"conv2d_backward_data", l_conv2d_backward_data},
        {"conv2d_backward_filter", l_conv2d_backward_filter},
        {"conv2d_check_params", l_conv2d_check_params},
        {"conv_block_supported", l_conv_block_supported},
        {"conv_block_forward", l_conv_block_forward},
        {"conv_block_backward", l_conv_block_backward},
        {"linear_forward", l_linear_forward},
        {"linear_backward_data", l_linear_backward_data},
        {"linear_backward_filter", l_linear_backward_filter},
        {"pool2d_forward", l_pool2d_forward},
        {"pool2d_backward", l_pool2d_backward},
        {"pool2d_check_params", l_pool2d_check_params},
        {"relu_forward", l_relu_forward},
        {"relu_backward", l_relu_backward},
        {"dropout_forward", l_dropout_forward},
        {"dropout_backward", l_dropout_backward},
        {"batchnorm_forward", l_batchnorm_forward},
        {"batchnorm_backward", l_batchnorm_backward},
        {"batchnorm_backward_eval", l_batchnorm_backward_eval},
        {"cross_entropy_forward", l_cross_entropy_forward},
        {"cross_entropy_backward", l_cross_entropy_backward},
        {"sgd_step", l_sgd_step},
        {"adam_step", l_adam_step},
        {"adamw_step", l_adamw_step},
        {NULL, NULL}};
    /* lunet.ops holds the low-level entry points (like torch.nn.functional);
     * the same functions stay at the top level as aliases. */
    luaL_setfuncs(L, functions, 0);
    lua_newtable(L);
    luaL_setfuncs(L, functions, 0);
    lua_setfield(L, -2, "ops");
    lua_pushcfunction(L, l_tensor_allocations);
    lua_setfield(L, -2, "tensor_allocations");
}
