/* Shared helpers of the Lua binding, the only C that includes lua.h.
 *
 * Userdata follow the conventions of Lua's own libraries: created with their
 * metatable before any resource is acquired, one idempotent release for
 * __gc, __close and :free(), and argument errors that name the function. */
#ifndef LUNET_BINDING_H
#define LUNET_BINDING_H

#include <lauxlib.h>
#include <lua.h>

#include "../tensor.h"

/* The module's entry points are its only exported symbols. */
#define LUNET_EXPORT __attribute__((visibility("default")))

#define LN_TENSOR_MT "lunet.Tensor"
#define LN_DEVICE_MT "lunet.Device"

/* Raises a Lua error "fname: <message>" when st is not LN_OK. */
void ln_lua_check_status(lua_State *L, int st, const char *fname);
/* Raises "fname: <formatted message>" (never returns). */
int ln_lua_fail(lua_State *L, const char *fname, const char *fmt, ...);
/* core._raise(message): the same error path for lunet's Lua modules (the
 * message already names the function), at the user's line. */
int ln_lua_raise(lua_State *L);

/* Pushes a new, empty (released) tensor userdata and returns it; fill it with
 * a core function that allocates. */
ln_tensor *ln_lua_new_tensor(lua_State *L);
/* The live tensor at idx, else an error naming fname and the argument. */
ln_tensor *ln_lua_check_tensor(lua_State *L, int idx, const char *fname);
/* The tensor at idx or NULL when it is not a tensor (freed ones included). */
ln_tensor *ln_lua_to_tensor(lua_State *L, int idx);
/* The live tensor a method is called on (t:sum() gives it as argument 1),
 * else an error naming fname ("lunet.Tensor:sum") that says to call it with a
 * colon. */
ln_tensor *ln_lua_check_self(lua_State *L, const char *fname);

/* Reads a shape: an array of sizes, or the sizes as separate numbers from idx
 * on. Errors name fname. */
int ln_lua_check_shape(lua_State *L, int idx, const char *fname, int64_t *shape);

/* Device argument: a device object or a name ("cpu", "cuda", "cuda:N"). */
ln_device *ln_lua_check_device(lua_State *L, int idx, const char *fname);
ln_device *ln_lua_device_by_name(lua_State *L, const char *name, const char *fname);
/* Pushes the (unique, cached) device object for dev. */
void ln_lua_push_device(lua_State *L, ln_device *dev);
ln_dtype ln_lua_check_dtype(lua_State *L, int idx, const char *fname);

/* Reads {dtype=, device=} from the options table at idx (absent = defaults). */
void ln_lua_tensor_options(lua_State *L, int idx, const char *fname, ln_dtype *dtype,
                           ln_device **dev);

/* An integer argument in [lo, hi]; errors name the function and argument. */
lua_Integer ln_lua_check_integer(lua_State *L, int idx, const char *fname,
                                 const char *argname, lua_Integer lo, lua_Integer hi);
/* A finite number argument. */
lua_Number ln_lua_check_number(lua_State *L, int idx, const char *fname,
                               const char *argname);
/* A file path argument (a string). */
const char *ln_lua_check_path(lua_State *L, int idx, const char *fname);

/* Registration of each part of the binding into the module table at -1. */
void ln_lua_open_tensor(lua_State *L);
void ln_lua_open_tensor_math(lua_State *L); /* after ln_lua_open_tensor and _nn */
void ln_lua_open_device(lua_State *L);
void ln_lua_open_io(lua_State *L);
void ln_lua_open_transforms(lua_State *L);
void ln_lua_open_image(lua_State *L);
void ln_lua_open_nn(lua_State *L);
void ln_lua_open_step(lua_State *L);
void ln_lua_open_checkpoint(lua_State *L);
void ln_lua_open_cpu(lua_State *L);

#endif
