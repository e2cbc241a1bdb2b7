/* Augmentation ops for lunet.transforms (csrc/augment.c): random crop,
 * random horizontal flip, normalisation of float32 batches in host memory,
 * or on a device with augmentation kernels. */
#include "../augment.h"
#include "../status.h"
#include "binding.h"

#define MAX_CHANNELS 64

static uint64_t check_key(lua_State *L, int idx, const char *fname, const char *name)
{
    return (uint64_t)ln_lua_check_integer(L, idx, fname, name, LUA_MININTEGER, LUA_MAXINTEGER);
}

/* lunet.augment_random_crop(out, in, padding, seed, counter) -> out */
static int l_random_crop(lua_State *L)
{
    const char *fname = "lunet.transforms.RandomCrop";
    ln_tensor *out = ln_lua_check_tensor(L, 1, fname);
    ln_tensor *in = ln_lua_check_tensor(L, 2, fname);
    int padding = (int)ln_lua_check_integer(L, 3, fname, "padding", 0, 1 << 20);
    uint64_t seed = check_key(L, 4, fname, "seed"), counter = check_key(L, 5, fname, "counter");
    ln_lua_check_status(L, ln_augment_random_crop(out, in, padding, seed, counter), fname);
    lua_settop(L, 1);
    return 1;
}

/* lunet.augment_random_hflip(t, p, seed, counter) -> t */
static int l_random_hflip(lua_State *L)
{
    const char *fname = "lunet.transforms.RandomHorizontalFlip";
    ln_tensor *t = ln_lua_check_tensor(L, 1, fname);
    double p = ln_lua_check_number(L, 2, fname, "p");
    uint64_t seed = check_key(L, 3, fname, "seed"), counter = check_key(L, 4, fname, "counter");
    ln_lua_check_status(L, ln_augment_random_hflip(t, p, seed, counter), fname);
    lua_settop(L, 1);
    return 1;
}

static int read_floats(lua_State *L, int idx, const char *fname, const char *name, float *out)
{
    luaL_checktype(L, idx, LUA_TTABLE);
    int n = (int)luaL_len(L, idx);
    if (n < 1 || n > MAX_CHANNELS)
        ln_lua_fail(L, fname, "%s must list 1 to %d numbers, got %d", name, MAX_CHANNELS, n);
    for (int i = 0; i < n; i++) {
        lua_geti(L, idx, i + 1);
        if (!lua_isnumber(L, -1))
            ln_lua_fail(L, fname, "%s[%d] must be a number, got %s", name, i + 1,
                        luaL_typename(L, -1));
        out[i] = (float)lua_tonumber(L, -1);
        lua_pop(L, 1);
    }
    return n;
}

/* lunet.augment_normalize(t, mean, std) -> t, mean and std arrays of C numbers */
static int l_normalize(lua_State *L)
{
    const char *fname = "lunet.transforms.Normalize";
    ln_tensor *t = ln_lua_check_tensor(L, 1, fname);
    float mean[MAX_CHANNELS], std[MAX_CHANNELS];
    int nm = read_floats(L, 2, fname, "mean", mean);
    int ns = read_floats(L, 3, fname, "std", std);
    if (nm != ns)
        ln_lua_fail(L, fname, "mean has %d numbers but std has %d", nm, ns);
    ln_lua_check_status(L, ln_augment_normalize(t, mean, std, nm), fname);
    lua_settop(L, 1);
    return 1;
}

/* lunet.augment_draws(seed, counter, image, range_y, range_x, p) -> dy, dx, flipped:
 * the choices the crop and the flip make for one image (for tests, and for
 * devices that apply the same transforms elsewhere). */
static int l_draws(lua_State *L)
{
    const char *fname = "lunet.augment_draws";
    uint64_t seed = check_key(L, 1, fname, "seed"), counter = check_key(L, 2, fname, "counter");
    int64_t image = (int64_t)ln_lua_check_integer(L, 3, fname, "image", 0, LUA_MAXINTEGER);
    int ry = (int)ln_lua_check_integer(L, 4, fname, "range_y", 1, INT32_MAX);
    int rx = (int)ln_lua_check_integer(L, 5, fname, "range_x", 1, INT32_MAX);
    double p = ln_lua_check_number(L, 6, fname, "p");
    int dy, dx;
    ln_augment_crop_offsets(seed, counter, image, ry, rx, &dy, &dx);
    lua_pushinteger(L, dy);
    lua_pushinteger(L, dx);
    lua_pushboolean(L, ln_augment_flip_drawn(seed, counter, image, p));
    return 3;
}

/* lunet.augment_on_device(device) -> whether the device runs the
 * augmentations itself (host memory, or CUDA's kernels when switched on) */
static int l_on_device(lua_State *L)
{
    lua_pushboolean(L, ln_augment_on_device(ln_lua_check_device(L, 1, "lunet.augment_on_device")));
    return 1;
}

void ln_lua_open_transforms(lua_State *L)
{
    static const luaL_Reg functions[] = {{"augment_random_crop", l_random_crop},
                                         {"augment_random_hflip", l_random_hflip},
                                         {"augment_normalize", l_normalize},
                                         {"augment_draws", l_draws},
                                         {"augment_on_device", l_on_device},
                                         {NULL, NULL}};
    luaL_setfuncs(L, functions, 0);
}
