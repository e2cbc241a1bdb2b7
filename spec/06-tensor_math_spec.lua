-- Tensor math of issue 13 on the op families: broadcasting arithmetic and
-- comparisons, in-place arithmetic, the unary family, softmax/log_softmax.
-- Every op on every device against plain Lua loops (the definition) on random
-- inputs and odd shapes (broadcast {3,1,5} with {4,1}, size-1 and size-0
-- dimensions, dim = -1), the fast devices against the reference bit for bit
-- where the formula is the same, and the misuse messages.
local lunet = require("lunet")
local helpers = require("helpers")

local devices = helpers.devices()

--- Row-major flat values of a tensor.
local function flat(t) return t:to("cpu"):reshape({ -1 }):totable() end

local function numel(shape)
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  return n
end

--- The flat index into `shape` of the broadcast position `idx` of `out_shape`.
local function source_index(shape, out_shape, idx)
  local off, stride = 0, 1
  local nd, od = #shape, #out_shape
  for d = nd, 1, -1 do
    local i = idx[od - nd + d]
    if shape[d] == 1 then i = 0 end
    off = off + i * stride
    stride = stride * shape[d]
  end
  return off + 1
end

--- a OP b by broadcasting, element by element in Lua.
local function lua_broadcast(a, b, f)
  local sa, sb = a:shape(), b:shape()
  local nd = math.max(#sa, #sb)
  local out = {}
  for i = 1, nd do
    local da = sa[#sa - nd + i] or 1
    local db = sb[#sb - nd + i] or 1
    out[i] = da == 1 and db or da
  end
  local fa, fb, res = flat(a), flat(b), {}
  local idx = {}
  for i = 1, nd do idx[i] = 0 end
  for k = 1, numel(out) do
    res[k] = f(fa[source_index(sa, out, idx)], fb[source_index(sb, out, idx)])
    for d = nd, 1, -1 do
      idx[d] = idx[d] + 1
      if idx[d] < out[d] then break end
      idx[d] = 0
    end
  end
  return out, res
end

local function f32(v) return string.unpack("f", string.pack("f", v)) end

local ops = {
  add = function(x, y) return f32(x + y) end,
  sub = function(x, y) return f32(x - y) end,
  mul = function(x, y) return f32(x * y) end,
  div = function(x, y) return f32(x / y) end,
  eq = function(x, y) return x == y and 1 or 0 end,
  ne = function(x, y) return x ~= y and 1 or 0 end,
  lt = function(x, y) return x < y and 1 or 0 end,
  le = function(x, y) return x <= y and 1 or 0 end,
  gt = function(x, y) return x > y and 1 or 0 end,
  ge = function(x, y) return x >= y and 1 or 0 end,
}
local operators = {
  add = function(a, b) return a + b end, sub = function(a, b) return a - b end,
  mul = function(a, b) return a * b end, div = function(a, b) return a / b end,
}

local shape_pairs = {
  { { 3, 1, 5 }, { 4, 1 } }, { { 4, 1 }, { 3, 1, 5 } }, { { 2, 3 }, { 3 } }, { { 1 }, { 4, 2 } },
  { { 2, 1, 3 }, { 2, 4, 1 } }, { { 0, 3 }, { 1, 3 } }, { { 5, 1 }, { 0 } }, { { 1, 1 }, { 1 } },
  { { 7 }, { 7 } },
}

describe("broadcasting arithmetic and comparisons", function()
  for _, dev in ipairs(devices) do
    for _, pair in ipairs(shape_pairs) do
      local sa, sb = pair[1], pair[2]
      it(("%s: [%s] with [%s], every op, against Lua"):format(dev, table.concat(sa, ","),
        table.concat(sb, ",")), function()
        local a = helpers.random(sa, 11, dev, -2, 2)
        local b = helpers.random(sb, 12, dev, 0.5, 2)
        if b:numel() > 1 and a:numel() > 0 then b:set(a:get(table.unpack((function()
          local i = {} for d = 1, #sa do i[d] = 1 end return i end)())), table.unpack((function()
          local i = {} for d = 1, #sb do i[d] = 1 end return i end)())) end -- a tie for eq/le/ge
        for name, f in pairs(ops) do
          local out = operators[name] and operators[name](a, b) or a[name](a, b)
          local shape, expected = lua_broadcast(a, b, f)
          assert.are.same(shape, out:shape(), name)
          assert.are.equal(dev, out:device().type == "cuda" and "cuda" or tostring(out:device()))
          assert.are.equal("float32", out:dtype())
          assert.are.same(expected, flat(out), name)
        end
      end)
    end

    it(dev .. ": numbers on either side, and the same-shape path", function()
      local a = helpers.random({ 3, 4 }, 3, dev, -2, 2)
      assert.are.same(lua_broadcast(a, lunet.tensor({ 2 }), ops.sub) and
        select(2, lua_broadcast(a, lunet.tensor({ 2 }), ops.sub)), flat(a - 2))
      assert.are.same(select(2, lua_broadcast(lunet.tensor({ 2 }), a, ops.sub)), flat(2 - a))
      assert.are.same(select(2, lua_broadcast(lunet.tensor({ 3 }), a, ops.div)), flat(3 / a))
      assert.are.same(select(2, lua_broadcast(a, lunet.tensor({ 0.5 }), ops.lt)), flat(a:lt(0.5)))
      assert.are.same(select(2, lua_broadcast(a, lunet.tensor({ 0.5 }), ops.ge)), flat(a:ge(0.5)))
      local b = helpers.random({ 3, 4 }, 4, dev)
      assert.are.same(select(2, lua_broadcast(a, b, ops.mul)), flat(a * b))
    end)

    it(dev .. ": comparisons give 0/1 in the first operand's dtype", function()
      local a = lunet.tensor({ { 1, 5 }, { 3, 3 } }, { dtype = "int32", device = dev })
      local b = lunet.tensor({ 3, 4 }, { dtype = "int32", device = dev })
      local r = a:lt(b)
      assert.are.equal("int32", r:dtype())
      assert.are.same({ { 1, 0 }, { 0, 1 } }, r:to("cpu"):totable())
      assert.are.same({ { 0, 1 }, { 0, 0 } }, a:gt(3):to("cpu"):totable())
      assert.are.same({ { 1, 1 }, { 0, 0 } }, a:ne(3):to("cpu"):totable())
      assert.are.same({ { 0, 1 }, { 1, 1 } }, a:ge(3):to("cpu"):totable())
      assert.are.same({ { 1, 0 }, { 1, 1 } }, a:le(3):to("cpu"):totable())
      local u = lunet.tensor({ 1, 200 }, { dtype = "uint8", device = dev })
      assert.are.same({ 0, 1 }, u:gt(lunet.tensor({ 100 }, { dtype = "uint8", device = dev })):to("cpu"):totable())
      local n = lunet.tensor({ 0 / 0, 1 }, { device = dev })
      assert.are.same({ 0, 1 }, n:eq(n):to("cpu"):totable())
      assert.are.same({ 1, 0 }, n:ne(n):to("cpu"):totable())
    end)

    it(dev .. ": in-place add_ sub_ mul_ div_ broadcast the operand to t's shape", function()
      for name, f in pairs({ add_ = ops.add, sub_ = ops.sub, mul_ = ops.mul, div_ = ops.div }) do
        local t = helpers.random({ 3, 4, 5 }, 5, dev, -2, 2)
        local u = helpers.random({ 4, 1 }, 6, dev, 0.5, 2)
        local _, expected = lua_broadcast(t, u, f)
        assert.are.equal(t, t[name](t, u))
        assert.are.same(expected, flat(t), name)
        local _, expected_n = lua_broadcast(t, lunet.tensor({ 3 }), f)
        t[name](t, 3)
        assert.are.same(expected_n, flat(t), name .. " number")
      end
      -- a view is written through; u may be t itself
      local base = helpers.random({ 4, 6 }, 7, dev)
      local before = flat(base)
      local view = base:narrow(2, 2, 3)
      view:mul_(lunet.tensor({ 10 }, { device = dev }))
      local after = flat(base)
      for i = 1, 24 do
        local col = (i - 1) % 6 + 1
        local want = (col >= 2 and col <= 4) and f32(before[i] * 10) or before[i]
        assert.are.equal(want, after[i])
      end
      local t = helpers.random({ 5 }, 8, dev)
      local v = flat(t)
      t:add_(t)
      for i = 1, 5 do assert.are.equal(f32(v[i] + v[i]), flat(t)[i]) end
    end)
  end

  it("refuses shapes that cannot broadcast, naming both", function()
    local a, b = lunet.rand({ 3, 4 }), lunet.rand({ 2, 4 })
    helpers.assert_error(function() return a + b end, "lunet.Tensor:add (+)", "[3, 4]", "[2, 4]")
    helpers.assert_error(function() return a:lt(b) end, "lunet.Tensor:lt", "[3, 4]", "[2, 4]")
    helpers.assert_error(function() return a:add_(lunet.rand({ 2, 3, 4 })) end,
      "lunet.Tensor:add_", "[2, 3, 4]", "[3, 4]")
    helpers.assert_error(function() return lunet.rand({ 1, 4 }):mul_(lunet.rand({ 3, 4 })) end,
      "lunet.Tensor:mul_", "[3, 4]", "[1, 4]")
    helpers.assert_error(function() return a:gt("x") end, "lunet.Tensor:gt", "tensor or a number")
    helpers.assert_error(function() return a:add_({}) end, "lunet.Tensor:add_", "got table")
    helpers.assert_error(function() return lunet.rand({ 2 }, { dtype = "int32" }) end)
  end)
end)

local function lua_unary(name, x, a, b)
  if name == "exp" then return math.exp(x) end
  if name == "log" then return math.log(x) end
  if name == "sqrt" then return math.sqrt(x) end
  if name == "abs" then return math.abs(x) end
  if name == "tanh" then return (math.exp(2 * x) - 1) / (math.exp(2 * x) + 1) end
  if name == "sigmoid" then return 1 / (1 + math.exp(-x)) end
  if name == "relu" then return x < 0 and 0 or x end
  if name == "pow" then return x ^ a end
  if name == "clamp" then
    local y = (a and x < a) and a or x
    return (b and y > b) and b or y
  end
end

describe("the unary family", function()
  local cases = {
    { "exp", { -3, 3 } }, { "log", { 0.01, 5 } }, { "sqrt", { 0, 5 } }, { "abs", { -3, 3 } },
    { "tanh", { -4, 4 } }, { "sigmoid", { -8, 8 } }, { "relu", { -2, 2 } },
    { "pow", { 0.1, 3 }, { 2.5 } }, { "pow", { -2, 2 }, { 2 } }, { "pow", { 0.1, 3 }, { -1 } },
    { "clamp", { -2, 2 }, { -0.5, 0.7 } }, { "clamp", { -2, 2 }, { nil, 0.3 } },
    { "clamp", { -2, 2 }, { 0.2, nil } },
  }
  for _, dev in ipairs(devices) do
    for _, c in ipairs(cases) do
      local name, range, args = c[1], c[2], c[3] or {}
      it(("%s: %s(%s) on odd shapes against Lua"):format(dev, name,
        table.concat((function() local s = {} for i = 1, 2 do s[i] = tostring(args[i]) end return s end)(), ", ")), function()
        for _, shape in ipairs({ { 3, 5, 7 }, { 1 }, { 0, 4 }, { 1000 } }) do
          local x = helpers.random(shape, 21, dev, range[1], range[2])
          local y = x[name](x, args[1], args[2])
          assert.are.same(shape, y:shape())
          assert.are.equal("float32", y:dtype())
          local fx, fy = flat(x), flat(y)
          for i = 1, #fx do
            local want = lua_unary(name, fx[i], args[1], args[2])
            assert(math.abs(fy[i] - want) <= 2e-6 * math.max(1, math.abs(want)),
              ("%s(%.9g) = %.9g, want %.9g"):format(name, fx[i], fy[i], want))
          end
        end
      end)
    end
    it(dev .. ": integer tensors come out as float32; NaN passes through", function()
      local i = lunet.tensor({ -4, 9 }, { dtype = "int32", device = dev })
      assert.are.equal("float32", i:abs():dtype())
      assert.are.same({ 4, 9 }, i:abs():to("cpu"):totable())
      local n = lunet.tensor({ 0 / 0 }, { device = dev })
      for _, name in ipairs({ "exp", "tanh", "sigmoid", "relu", "abs" }) do
        local v = n[name](n):get(1)
        assert(v ~= v, name .. " of NaN")
      end
      local v = n:clamp(0, 1):get(1)
      assert(v ~= v, "clamp of NaN")
    end)
  end

  --- The CPU compiles formulas.h with the reference's libm: the same bits. A
  -- GPU's expf, tanhf, erff, powf... are its own, within 2 ulp.
  local function same(dev, a, b, what)
    if dev == "cuda" then
      helpers.assert_close(b, a, 2.5e-7 * 4, 1e-30, what)
    else
      assert.are.equal(0, helpers.max_abs_diff(a, b), what)
    end
  end

  it("fast devices give the reference's bits (the CPU) or within 2 ulp (a GPU's libm)", function()
    for _, dev in ipairs(devices) do
      if dev ~= "ref" then
        local x = helpers.random({ 300001 }, 22, "ref", -6, 6)
        local xd = x:to(dev)
        for _, c in ipairs(cases) do
          local name, args = c[1], c[3] or {}
          local r = x[name](x, args[1], args[2])
          local d = xd[name](xd, args[1], args[2])
          same(dev, r, d, dev .. " " .. name)
        end
        for _, g in ipairs({ "none", "tanh" }) do
          same(dev, x:gelu(g), xd:gelu(g), dev .. " gelu " .. g)
        end
        same(dev, x:leaky_relu(0.3), xd:leaky_relu(0.3), dev .. " leaky_relu")
      end
    end
  end)

  it("refuses a non-number exponent, missing clamp bounds, a bad approximate", function()
    local x = lunet.rand({ 2, 3 })
    helpers.assert_error(function() return x:pow("2") end, "lunet.Tensor:pow", "exponent", "number", "string")
    helpers.assert_error(function() return x:pow(x) end, "lunet.Tensor:pow", "exponent")
    helpers.assert_error(function() return x:pow() end, "lunet.Tensor:pow", "got no value")
    helpers.assert_error(function() return x:clamp() end, "lunet.Tensor:clamp", "lo", "hi")
    helpers.assert_error(function() return x:clamp("a", 1) end, "lunet.Tensor:clamp", "lo must be a number")
    helpers.assert_error(function() return x:gelu("fast") end, "lunet.Tensor:gelu", "approximate")
    helpers.assert_error(function() return lunet.Tensor.exp(3) end, "lunet.Tensor:exp", "self")
  end)
end)

--- softmax along dim of a tensor, in Lua (double), as flat values.
local function lua_softmax(x, dim, log)
  local shape, fx = x:shape(), flat(x)
  local inner, outer = 1, 1
  for d = dim + 1, #shape do inner = inner * shape[d] end
  for d = 1, dim - 1 do outer = outer * shape[d] end
  local n, out = shape[dim], {}
  for o = 0, outer - 1 do
    for i = 0, inner - 1 do
      local at = function(k) return o * n * inner + k * inner + i + 1 end
      local m = -math.huge
      for k = 0, n - 1 do m = math.max(m, fx[at(k)]) end
      local s = 0
      for k = 0, n - 1 do s = s + math.exp(fx[at(k)] - m) end
      for k = 0, n - 1 do
        out[at(k)] = log and (fx[at(k)] - m - math.log(s)) or math.exp(fx[at(k)] - m) / s
      end
    end
  end
  return out
end

describe("softmax and log_softmax", function()
  for _, dev in ipairs(devices) do
    it(dev .. ": along every dim, negative dims, size-1 and size-0 dims, against Lua", function()
      for _, case in ipairs({ { { 3, 4, 5 }, 1 }, { { 3, 4, 5 }, 2 }, { { 3, 4, 5 }, 3 },
        { { 3, 4, 5 }, -1 }, { { 2, 1, 3 }, 2 }, { { 7 }, 1 }, { { 0, 3 }, 2 }, { { 3, 0 }, 1 },
        { { 4, 9 }, -2 } }) do
        local shape, dim = case[1], case[2]
        local x = helpers.random(shape, 31, dev, -10, 10)
        local d = dim < 0 and #shape + dim + 1 or dim
        for _, log in ipairs({ false, true }) do
          local y = log and x:log_softmax(dim) or x:softmax(dim)
          assert.are.same(shape, y:shape())
          local want, got = lua_softmax(x, d, log), flat(y)
          for i = 1, #want do
            assert(math.abs(got[i] - want[i]) <= 1e-6 * math.max(1, math.abs(want[i])),
              ("%s dim %d: %.9g vs %.9g"):format(log and "log_softmax" or "softmax", dim, got[i], want[i]))
          end
        end
      end
    end)
    it(dev .. ": stable for large logits", function()
      local x = lunet.tensor({ { 1000, 1001, 999 }, { -1000, -1000, -1000 } }, { device = dev })
      local y = flat(x:softmax(-1))
      for _, v in ipairs(y) do assert(v == v and v >= 0 and v <= 1) end
      assert(math.abs(y[4] - 1 / 3) < 1e-7)
      local l = flat(x:log_softmax(2))
      assert(math.abs(l[2] - (-math.log(1 + math.exp(-1) + math.exp(-2)))) < 1e-5)
    end)
  end
  it("fast devices give the reference's bits (a GPU: to 1e-6, its exp), forward and backward", function()
    local x = helpers.random({ 37, 41, 3 }, 32, "ref", -5, 5)
    local g = helpers.random({ 37, 41, 3 }, 33, "ref", -1, 1)
    for _, dev in ipairs(devices) do
      if dev ~= "ref" then
        for _, dim in ipairs({ 1, 2, 3 }) do
          for _, log in ipairs({ false, true }) do
            local r = log and x:log_softmax(dim) or x:softmax(dim)
            local d = log and x:to(dev):log_softmax(dim) or x:to(dev):softmax(dim)
            if dev == "cuda" then helpers.assert_close(d, r, 1e-6, 1e-30, "softmax") else
              assert.are.equal(0, helpers.max_abs_diff(r, d)) end
            local rb = lunet.softmax_backward(r, g, dim, log)
            local db = lunet.softmax_backward(d, g:to(dev), dim, log)
            if dev == "cuda" then helpers.assert_close(db, rb, 1e-6, 1e-7, "softmax_backward") else
              assert.are.equal(0, helpers.max_abs_diff(rb, db)) end
          end
        end
      end
    end
  end)
  it("refuses a bad dim, naming the shape", function()
    local x = lunet.rand({ 2, 3 })
    helpers.assert_error(function() return x:softmax(3) end, "lunet.Tensor:softmax", "dim", "[2, 3]")
    helpers.assert_error(function() return x:log_softmax(0) end, "lunet.Tensor:log_softmax", "dim", "[2, 3]")
    helpers.assert_error(function() return x:softmax() end, "lunet.Tensor:softmax", "dim is required")
    helpers.assert_error(function() return x:softmax(1.5) end, "lunet.Tensor:softmax", "integer")
    helpers.assert_error(function() return x:softmax("x") end, "lunet.Tensor:softmax", "integer")
    helpers.assert_error(function() return lunet.softmax_backward(x, lunet.rand({ 3, 2 }), 1) end,
      "lunet.softmax_backward", "[3, 2]", "[2, 3]")
  end)
end)

describe("the reduce_dim family (lunet.reduce_dim; t:sum(dim) and friends use it)", function()
  local function lua_reduce(x, op, dim)
    local shape, fx = x:shape(), flat(x)
    local inner, outer = 1, 1
    for d = dim + 1, #shape do inner = inner * shape[d] end
    for d = 1, dim - 1 do outer = outer * shape[d] end
    local n, vals, pos = shape[dim], {}, {}
    for o = 0, outer - 1 do
      for i = 0, inner - 1 do
        local acc, best = 0, 1
        if op == "sum" or op == "mean" then
          acc = 0
          for k = 0, n - 1 do acc = acc + fx[o * n * inner + k * inner + i + 1] end
          if op == "mean" then acc = acc / n end
          acc = f32(acc)
        else
          acc = fx[o * n * inner + i + 1]
          for k = 1, n - 1 do
            local v = fx[o * n * inner + k * inner + i + 1]
            if acc == acc and (v ~= v or (op == "max" and v > acc or op == "min" and v < acc)) then
              acc, best = v, k + 1
            end
          end
        end
        vals[#vals + 1], pos[#pos + 1] = acc, best
      end
    end
    return vals, pos
  end
  for _, dev in ipairs(devices) do
    it(dev .. ": sum, mean, max, min along every dim against Lua, with NaN, keepdim", function()
      local x = helpers.random({ 4, 5, 6 }, 71, dev, -3, 3)
      x:set(0 / 0, 2, 3, 4)
      x:set(x:get(1, 1, 1), 1, 2, 1) -- a tie: the first extreme wins
      for _, op in ipairs({ "sum", "mean", "max", "min" }) do
        for dim = 1, 3 do
          local want_v, want_p = lua_reduce(x, op, dim)
          local v, p = lunet.reduce_dim(x, op, dim)
          local got = flat(v)
          for i = 1, #want_v do
            local a, b = got[i], want_v[i]
            assert(a == b or (a ~= a and b ~= b) or math.abs(a - b) <= 1e-6 * math.abs(b),
              ("%s dim %d: %.9g vs %.9g"):format(op, dim, a, b))
          end
          if p then assert.are.same(want_p, flat(p)) end
          local kv = lunet.reduce_dim(x, op, dim - 4, true)
          local ks = x:shape()
          ks[dim] = 1
          assert.are.same(ks, kv:shape())
        end
      end
    end)
    it(dev .. ": empty dimensions: a sum is 0, a mean NaN, max an error naming the shape", function()
      local z = lunet.zeros({ 3, 0 }, { device = dev })
      assert.are.same({ 0, 0, 0 }, flat(lunet.reduce_dim(z, "sum", 2)))
      local m = flat(lunet.reduce_dim(z, "mean", 2))
      assert(m[1] ~= m[1])
      assert.are.same({ 0 }, lunet.reduce_dim(z, "max", 1):shape())
      helpers.assert_error(function() return lunet.reduce_dim(z, "max", 2) end,
        "lunet.reduce_dim", "[3, 0]", "empty")
      helpers.assert_error(function() return lunet.reduce_dim(z, "sum", 3) end,
        "lunet.reduce_dim", "[3, 0]")
    end)
  end
  it("fast devices give the reference's bits", function()
    local x = helpers.random({ 7, 300, 65 }, 72, "ref", -3, 3)
    x:set(0 / 0, 3, 100, 9)
    for _, dev in ipairs(devices) do
      if dev ~= "ref" then
        for _, op in ipairs({ "sum", "mean", "max", "min" }) do
          for dim = 1, 3 do
            local vr, pr = lunet.reduce_dim(x, op, dim)
            local vd, pd = lunet.reduce_dim(x:to(dev), op, dim)
            assert.are.equal(0, helpers.max_abs_diff(vr, vd), op .. " " .. dim)
            if pr then assert.are.same(flat(pr), flat(pd)) end
          end
        end
      end
    end
  end)
end)
