/* libFuzzer harness: the Lua-table-to-tensor path (csrc/lua/l_tensor.c:
 * lunet.tensor's shape inference and filling, the shape readers of
 * lunet.zeros and lunet.full, Tensor:reshape's).
 *
 * The input is decoded into a Lua value (nested tables of numbers, with
 * wrong lengths, holes, NaN, huge and negative numbers, strings, booleans,
 * tensors, freed tensors, functions, tables with metatables) and a call.
 * Invariants: an error is a string naming the function; a tensor made from a
 * table has the table's shape and values (converted to its dtype); a tensor
 * made from its own totable() is equal to it; every Lua state closes
 * without a leak (LeakSanitizer). */
#include <lauxlib.h>
#include <string.h>

#include "fuzz_util.h"

typedef struct input {
    const uint8_t *p;
    size_t n;
} input;

static unsigned take(input *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint64_t take64(input *in)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | take(in);
    return v;
}

#define MAX_DEPTH 11 /* beyond lunet's 8 dimensions */

static void push_value(lua_State *L, input *in, int depth);

static void push_table(lua_State *L, input *in, int depth)
{
    unsigned n = take(in) % 10;
    lua_createtable(L, (int)n, 0);
    for (unsigned i = 1; i <= n; i++) {
        push_value(L, in, depth + 1);
        lua_rawseti(L, -2, i);
    }
    unsigned extra = take(in);
    if (extra % 16 == 1 && n > 1) { /* a hole */
        lua_pushnil(L);
        lua_rawseti(L, -2, (lua_Integer)(take(in) % n) + 1);
    } else if (extra % 16 == 2) { /* a key past the end */
        lua_pushinteger(L, 1);
        lua_rawseti(L, -2, (lua_Integer)n + 2);
    } else if (extra % 16 == 3) { /* a key that is not an index */
        lua_pushinteger(L, 1);
        lua_setfield(L, -2, "x");
    }
}

static void push_value(lua_State *L, input *in, int depth)
{
    luaL_checkstack(L, 8, "fuzz_tensor");
    unsigned kind = take(in) % 16;
    if (depth >= MAX_DEPTH && kind >= 8 && kind <= 12)
        kind = 0; /* no deeper tables */
    switch (kind) {
    case 0: case 1: case 2: case 3:
        lua_pushinteger(L, (int8_t)take(in));
        return;
    case 4: { /* any double: NaN, infinities, huge, subnormal */
        uint64_t bits = take64(in);
        double d;
        memcpy(&d, &bits, sizeof d);
        lua_pushnumber(L, d);
        return;
    }
    case 5:
        lua_pushnumber(L, (int8_t)take(in) / 4.0);
        return;
    case 6:
        lua_pushinteger(L, (lua_Integer)take64(in));
        return;
    case 7: { /* an integral float, maybe beyond every integer type */
        static const double big[] = {1e12, -1e12, 2147483648.0, -2147483649.0, 256, 1e300,
                                     9.3e18, -9.3e18};
        lua_pushnumber(L, big[take(in) % 8]);
        return;
    }
    case 8: case 9: case 10: case 11: case 12:
        push_table(L, in, depth);
        return;
    case 13: {
        char s[4];
        unsigned len = take(in) % 4;
        for (unsigned i = 0; i < len; i++)
            s[i] = (char)take(in);
        lua_pushlstring(L, s, len);
        return;
    }
    default: { /* the odd ones, made in Lua by the driver's `special` */
        lua_getglobal(L, "special");
        lua_pushinteger(L, take(in) % 6);
        lua_call(L, 1, 1);
        return;
    }
    }
}

static const char *prelude =
    "function special(k)\n"
    "  if k == 0 then return nil elseif k == 1 then return true\n"
    "  elseif k == 2 then return core.zeros({1})\n"
    "  elseif k == 3 then local t = core.zeros({1}); t:free(); return t\n"
    "  elseif k == 4 then return print\n"
    "  else return setmetatable({}, {__index = function() return 1 end, __len = function() return 3 end}) end\n"
    "end\n";

/* ... = core, call (0..7), options code, the value, a fill value */
static const char *driver =
    "local core, call, opt_code, v, fill = ...\n"
    "local options = { false, {dtype = 'int32'}, {dtype = 'uint8'}, {dtype = 'float16'},\n"
    "  {dtype = 'bfloat16'}, {device = 'ref'}, {dtype = 'float64'}, {device = 7},\n"
    "  {dtype = 'int32', device = 'ref'}, 'float32' }\n"
    "local opts = options[opt_code % #options + 1] or nil\n"
    "local dtype = type(opts) == 'table' and opts.dtype or 'float32'\n"
    "local function expect_error(fname, ok, err)\n"
    "  if ok then return false end\n"
    "  assert(type(err) == 'string', 'an error that is not a string: ' .. tostring(err))\n"
    "  assert(err:find(fname .. ': ', 1, true), 'an error that does not name ' .. fname .. ': ' .. err)\n"
    "  return true\n"
    "end\n"
    "local function same_number(stored, x)\n"
    "  if dtype == 'float32' then x = string.unpack('f', string.pack('f', x))\n"
    "  elseif dtype ~= 'int32' and dtype ~= 'uint8' then return true end\n"
    "  return stored == x or (stored ~= stored and x ~= x)\n"
    "end\n"
    /* the tensor t made from v has v's shape and values */
    "local function check_matches(t, v)\n"
    "  local shape, flat, k = t:shape(), nil, 0\n"
    "  if t:numel() > 0 then flat = t:reshape({t:numel()}):totable() end\n"
    "  local function walk(node, d)\n"
    "    if d > #shape then\n"
    "      assert(type(node) == 'number', 'a leaf that is not a number was accepted')\n"
    "      k = k + 1\n"
    "      assert(same_number(flat[k], node), ('element %d: stored %s for %s'):format(k, tostring(flat[k]), tostring(node)))\n"
    "      return\n"
    "    end\n"
    "    assert(type(node) == 'table', ('dimension %d: a %s was accepted as a table'):format(d, type(node)))\n"
    "    assert(rawlen(node) == shape[d], ('dimension %d: %d entries for size %d'):format(d, rawlen(node), shape[d]))\n"
    "    for i = 1, shape[d] do walk(rawget(node, i), d + 1) end\n"
    "  end\n"
    "  walk(v, 1)\n"
    "  assert(k == t:numel(), 'element count differs')\n"
    "end\n"
    /* a shape whose tensor would be large but allowed is not made: the
     * fuzzer's memory limit is not lunet's */
    "local function affordable(shape)\n"
    "  if type(shape) == 'number' then shape = {shape} end\n"
    "  if type(shape) ~= 'table' then return true end\n"
    "  local n = 1\n"
    "  for i = 1, math.min(rawlen(shape), 9) do\n"
    "    local s = rawget(shape, i)\n"
    "    if type(s) ~= 'number' or s < 0 or s ~= s then return true end\n"
    "    n = n * s\n"
    "  end\n"
    "  return n <= 2^22 or n > 2^41\n"
    "end\n"
    "if call <= 3 then\n"
    "  local ok, t = pcall(core.tensor, v, opts)\n"
    "  if not expect_error('lunet.tensor', ok, t) then\n"
    "    assert(core.is_tensor(t) and t:dtype() == dtype, 'not a tensor of the asked dtype')\n"
    "    if type(v) == 'number' then\n"
    "      assert(t:dim() == 0 and same_number(t:totable(), v), 'a scalar changed')\n"
    "    else check_matches(t, v) end\n"
    "    if call == 3 then\n"
    "      local u = core.tensor(t:totable(), opts)\n"
    "      assert(table.concat(u:shape(), ',') == table.concat(t:shape(), ','), 'totable changes the shape')\n"
    "      if t:numel() > 0 and (dtype == 'int32' or dtype == 'uint8') then\n"
    "        assert(u:eq(t):sum() == t:numel(), 'totable changes values')\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "elseif call == 4 or call == 5 then\n"
    "  if affordable(v) then\n"
    "    local fname = call == 4 and 'lunet.zeros' or 'lunet.full'\n"
    "    local ok, t\n"
    "    if call == 4 then ok, t = pcall(core.zeros, v, opts)\n"
    "    else ok, t = pcall(core.full, v, fill, opts) end\n"
    "    if not expect_error(fname, ok, t) then\n"
    "      local sizes = type(v) == 'table' and v or {v}\n"
    "      assert(t:dim() == rawlen(sizes), 'the shape lost sizes')\n"
    "      for i = 1, t:dim() do assert(t:size(i) == sizes[i], 'size ' .. i .. ' changed') end\n"
    "    end\n"
    "  end\n"
    "else\n"
    "  local base = core.zeros({4, 6})\n"
    "  if call == 7 then base = base:narrow(2, 2, 3) end\n"
    "  local ok, t = pcall(base.reshape, base, v)\n"
    "  if not expect_error('lunet.Tensor:reshape', ok, t) then\n"
    "    assert(t:numel() == base:numel(), 'reshape changed the element count')\n"
    "  end\n"
    "end\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    input in = {data, size};
    lua_State *L = fuzz_lua_state();
    fuzz_lua_run(L, "=prelude", prelude, 0);
    unsigned call = take(&in) % 8, opt_code = take(&in);
    int8_t fill = (int8_t)take(&in);
    lua_getglobal(L, "core");
    lua_pushinteger(L, call);
    lua_pushinteger(L, opt_code);
    push_value(L, &in, 0);
    lua_pushinteger(L, fill);
    fuzz_lua_run(L, "=fuzz_tensor", driver, 5);
    lua_close(L);
    return 0;
}
