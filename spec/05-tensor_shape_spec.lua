-- API.md, Tensors: transpose, permute, unsqueeze, squeeze, view, lunet.cat,
-- lunet.stack, t[i], t[i] = v, t:item(), #t, and sum/mean/max/min along a
-- dimension. Every op on the reference device and the CPU against a plain-Lua
-- computation, on random inputs and odd shapes (size-1 and size-0 dimensions,
-- dim = -1, non-contiguous inputs), and every misuse against its message.
local lunet = require("lunet")
local helpers = require("helpers")

local devices = { "ref", "cpu" }

-- --- a plain-Lua model of a tensor: a flat row-major array and a shape ------------

local function numel(shape)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  return n
end

local function copy_list(t)
  local c = {}
  for i, v in ipairs(t) do c[i] = v end
  return c
end

--- Row-major flat position (1-based) of a 1-based multi-index.
local function flat_index(shape, idx)
  local pos = 0
  for d = 1, #shape do pos = pos * shape[d] + (idx[d] - 1) end
  return pos + 1
end

--- Calls fn(idx) for every multi-index of shape, in row-major order.
local function each_index(shape, fn)
  if numel(shape) == 0 then return end
  local idx = {}
  for d = 1, #shape do idx[d] = 1 end
  while true do
    fn(idx)
    local d = #shape
    while d >= 1 do
      idx[d] = idx[d] + 1
      if idx[d] <= shape[d] then break end
      idx[d] = 1
      d = d - 1
    end
    if d < 1 then return end
  end
end

local function flatten(nested, depth, out)
  out = out or {}
  if depth == 0 then
    out[#out + 1] = nested
    return out
  end
  for _, v in ipairs(nested) do flatten(v, depth - 1, out) end
  return out
end

--- The model of a tensor: its values (read back, so float32 rounding is in
-- them) and its shape.
local function model(t)
  return { data = flatten(t:totable(), t:dim()), shape = t:shape() }
end

--- A random tensor of `shape` on `device`: integers in [lo, hi] for integer
-- dtypes, else uniform reals in [-3, 3] (some repeated, so ties occur).
local function random_tensor(shape, seed, device, dtype)
  dtype = dtype or "float32"
  math.randomseed(seed)
  local n = numel(shape)
  local flat = {}
  for i = 1, n do
    if dtype == "uint8" then
      flat[i] = math.random(0, 255)
    elseif dtype == "int32" then
      flat[i] = math.random(-1000, 1000)
    elseif math.random() < 0.2 then
      flat[i] = math.random(-3, 3) -- exact, and often equal
    else
      flat[i] = math.random() * 6 - 3
    end
  end
  local host = lunet.tensor(flat, { dtype = dtype }):reshape(shape)
  return host:to(device)
end

local function permute_model(m, perm)
  local shape = {}
  for k, p in ipairs(perm) do shape[k] = m.shape[p] end
  local data = {}
  each_index(shape, function(o)
    local i = {}
    for k, p in ipairs(perm) do i[p] = o[k] end
    data[#data + 1] = m.data[flat_index(m.shape, i)]
  end)
  return { data = data, shape = shape }
end

local function cat_model(models, dim)
  local shape = copy_list(models[1].shape)
  shape[dim] = 0
  for _, m in ipairs(models) do shape[dim] = shape[dim] + m.shape[dim] end
  local data = {}
  each_index(shape, function(o)
    local i, k = copy_list(o), 1
    while i[dim] > models[k].shape[dim] do
      i[dim] = i[dim] - models[k].shape[dim]
      k = k + 1
    end
    data[#data + 1] = models[k].data[flat_index(models[k].shape, i)]
  end)
  return { data = data, shape = shape }
end

local function stack_model(models, dim)
  local shape = copy_list(models[1].shape)
  table.insert(shape, dim, #models)
  local data = {}
  each_index(shape, function(o)
    local i = copy_list(o)
    local k = table.remove(i, dim)
    data[#data + 1] = models[k].data[flat_index(models[k].shape, i)]
  end)
  return { data = data, shape = shape }
end

--- sum/mean/max/min along `dim` in plain Lua: values and 1-based positions
-- (first extreme; a NaN wins).
local function reduce_model(m, op, dim, keepdim)
  local shape = {}
  for d = 1, #m.shape do
    if d ~= dim then shape[#shape + 1] = m.shape[d] elseif keepdim then shape[#shape + 1] = 1 end
  end
  local rest = copy_list(m.shape)
  rest[dim] = 1
  local values, positions = {}, {}
  each_index(rest, function(o)
    local i = copy_list(o)
    local acc, best = (op == "sum" or op == "mean") and 0 or nil, nil
    for j = 1, m.shape[dim] do
      i[dim] = j
      local v = m.data[flat_index(m.shape, i)]
      if op == "sum" or op == "mean" then
        acc = acc + v
      elseif acc == nil or (acc == acc and (v ~= v or (op == "max" and v > acc) or (op == "min" and v < acc))) then
        acc, best = v, j
      end
    end
    if op == "mean" then acc = acc / m.shape[dim] end
    values[#values + 1], positions[#positions + 1] = acc, best
  end)
  return { data = values, shape = shape }, { data = positions, shape = shape }
end

local function same_shape(expected, t)
  assert.same(expected, t:shape())
end

--- A new tensor's layout is row-major (not asked of empty ones: their
-- strides are another issue's).
local function assert_contiguous(t)
  if t:numel() > 0 then assert.is_true(t:is_contiguous()) end
end

--- Exact comparison of a tensor with a model (NaN equals NaN).
local function assert_equal_model(m, t, what)
  same_shape(m.shape, t)
  local got = flatten(t:totable(), t:dim())
  assert.equal(#m.data, #got, what)
  for i = 1, #got do
    local a, b = got[i], m.data[i]
    if not (a == b or (a ~= a and b ~= b)) then
      error(("%s: element %d is %.9g, expected %.9g"):format(what or "values", i, a, b), 2)
    end
  end
end

local function assert_close_model(m, t, rtol, what)
  same_shape(m.shape, t)
  local got = flatten(t:totable(), t:dim())
  for i = 1, #got do
    local a, b = got[i], m.data[i]
    if not ((a ~= a and b ~= b) or math.abs(a - b) <= rtol * (1 + math.abs(b))) then
      error(("%s: element %d is %.9g, expected %.9g"):format(what or "values", i, a, b), 2)
    end
  end
end

-- Shapes with size-1 and size-0 dimensions among ordinary ones.
local shapes = {
  { 5 }, { 1 }, { 0 }, { 3, 4 }, { 1, 7 }, { 4, 1 }, { 0, 3 }, { 3, 1, 5 }, { 2, 0, 3 },
  { 2, 3, 4, 5 }, { 1, 1, 1 }, { 3, 2, 1, 2, 3 },
}

--- The inputs each op is checked on: the tensor itself and non-contiguous views
-- of it (a narrow along the last dimension, and along the first).
local function inputs(shape, seed, device, dtype)
  local list = {}
  list[1] = { "contiguous", random_tensor(shape, seed, device, dtype) }
  local wide = copy_list(shape)
  wide[#wide] = wide[#wide] + 3
  list[2] = { "narrow (last dim)", random_tensor(wide, seed + 1, device, dtype):narrow(#wide, 2, shape[#shape]) }
  if #shape >= 2 then
    local tall = copy_list(shape)
    tall[1] = tall[1] + 2
    list[3] = { "narrow (first dim)", random_tensor(tall, seed + 2, device, dtype):narrow(1, 3, shape[1]) }
  end
  return list
end

--- Every permutation of 1..n.
local function permutations(n)
  local out = {}
  local function gen(prefix, used)
    if #prefix == n then out[#out + 1] = copy_list(prefix) return end
    for i = 1, n do
      if not used[i] then
        used[i] = true
        prefix[#prefix + 1] = i
        gen(prefix, used)
        prefix[#prefix] = nil
        used[i] = false
      end
    end
  end
  gen({}, {})
  return out
end

for _, device in ipairs(devices) do
  describe("tensor shape ops on " .. device, function()
    it("transpose swaps two dimensions into a new contiguous tensor", function()
      for s, shape in ipairs(shapes) do
        for _, input in ipairs(inputs(shape, 10 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          for d1 = 1, #shape do
            for d2 = 1, #shape do
              local perm = {}
              for d = 1, #shape do perm[d] = d end
              perm[d1], perm[d2] = d2, d1
              local r = t:transpose(d1, d2)
              assert_contiguous(r)
              assert.equal(device, tostring(r:device()))
              assert_equal_model(permute_model(m, perm), r, ("%s %s transpose(%d, %d)"):format(name, table.concat(shape, "x"), d1, d2))
            end
          end
          -- negative dims count from the end
          if #shape >= 2 then
            assert_equal_model(model(t:transpose(1, #shape)), t:transpose(1, -1), "transpose(1, -1)")
            assert_equal_model(model(t:transpose(#shape - 1, #shape)), t:transpose(-2, -1), "transpose(-2, -1)")
          end
          -- a transpose of a transpose is the tensor again
          if #shape >= 2 then
            assert_equal_model(m, t:transpose(1, 2):transpose(2, 1), "transpose twice")
            assert_equal_model(m, t:transpose(1, -1):transpose(-1, 1), "transpose(1, -1) twice")
          end
        end
      end
    end)

    it("transpose writes nothing back to its input", function()
      local t = lunet.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }):to(device)
      local r = t:transpose(1, 2)
      assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, r:totable())
      r:fill(0)
      assert.same({ { 1, 2, 3 }, { 4, 5, 6 } }, t:totable())
    end)

    it("permute reorders every dimension, given as a table or as numbers", function()
      for s, shape in ipairs(shapes) do
        for _, input in ipairs(inputs(shape, 20 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          for _, perm in ipairs(permutations(#shape)) do
            if #shape <= 4 or perm[1] == #shape then -- 120 permutations of 5 are too many
              local r = t:permute(perm)
              assert_contiguous(r)
              assert_equal_model(permute_model(m, perm), r, ("%s %s permute{%s}"):format(name, table.concat(shape, "x"), table.concat(perm, ",")))
            end
          end
          -- negative entries, and the sizes as separate numbers
          local neg = {}
          for d = 1, #shape do neg[d] = -d end
          local rev = {}
          for d = 1, #shape do rev[d] = #shape + 1 - d end
          assert_equal_model(permute_model(m, rev), t:permute(neg), "permute with negative dims")
          assert_equal_model(permute_model(m, rev), t:permute(table.unpack(rev)), "permute(d1, d2, ...)")
        end
      end
    end)

    it("permute and transpose keep every dtype", function()
      for _, dtype in ipairs({ "int32", "uint8", "float16", "bfloat16" }) do
        local t = random_tensor({ 2, 3, 4 }, 7, device, dtype)
        local m = model(t)
        local r = t:permute({ 3, 1, 2 })
        assert.equal(dtype, r:dtype())
        assert_equal_model(permute_model(m, { 3, 1, 2 }), r, dtype)
        assert_equal_model(permute_model(m, { 1, 3, 2 }), t:transpose(2, 3), dtype)
      end
    end)

    it("unsqueeze inserts a size-1 dimension as a view", function()
      for s, shape in ipairs(shapes) do
        for _, input in ipairs(inputs(shape, 30 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          for d = 1, #shape + 1 do
            local expected = copy_list(shape)
            table.insert(expected, d, 1)
            local u = t:unsqueeze(d)
            assert_equal_model({ data = m.data, shape = expected }, u, ("%s unsqueeze(%d)"):format(name, d))
            -- negative: -1 puts it last, -(ndim + 1) first
            local neg = d - (#shape + 2)
            assert.same(expected, t:unsqueeze(neg):shape())
          end
        end
      end
      -- a scalar becomes a vector of one
      assert.same({ 1 }, lunet.tensor(4):to(device):unsqueeze(1):shape())
      assert.same({ 1 }, lunet.tensor(4):to(device):unsqueeze(-1):shape())
    end)

    it("squeeze removes size-1 dimensions as a view", function()
      for s, shape in ipairs(shapes) do
        for _, input in ipairs(inputs(shape, 40 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          local all = {}
          for _, size in ipairs(shape) do
            if size ~= 1 then all[#all + 1] = size end
          end
          assert_equal_model({ data = m.data, shape = all }, t:squeeze(), name .. " squeeze()")
          for d = 1, #shape do
            local expected = copy_list(shape)
            if shape[d] == 1 then table.remove(expected, d) end -- others are left as they are
            assert_equal_model({ data = m.data, shape = expected }, t:squeeze(d), ("%s squeeze(%d)"):format(name, d))
            assert.same(expected, t:squeeze(d - #shape - 1):shape())
          end
        end
      end
      assert.same({}, lunet.ones({ 1, 1 }):to(device):squeeze():shape())
      assert.same({}, lunet.tensor(2):to(device):squeeze():shape())
    end)

    it("unsqueeze, squeeze, view and t[i] share storage with their base", function()
      local base = lunet.zeros({ 2, 3 }):to(device)
      base:unsqueeze(2):set(1, 1, 1, 2)
      base:unsqueeze(1):squeeze(1):set(2, 2, 1)
      base:view({ 6 }):set(3, 6)
      base:view({ 3, -1 }):set(4, 2, 1) -- -1 inferred
      base[2]:set(5, 2)
      local col = base:narrow(2, 3, 1):squeeze(2) -- a non-contiguous view
      assert.same({ { 0, 1, 4 }, { 2, 5, 3 } }, base:totable())
      assert.same({ 4, 3 }, col:totable())
      col:set(7, 1)
      assert.same({ { 0, 1, 7 }, { 2, 5, 3 } }, base:totable())
      assert.same({ 2, 3 }, base:view(2, 3):shape())
      assert.same({ 3, 2 }, base:view({ -1, 2 }):shape())
      helpers.assert_error(function() base:view({ 4, -1 }) end, "lunet.Tensor:view", "cannot reshape [2, 3]", "[4, -1]")
      helpers.assert_error(function() base:view({ -1, -1 }) end, "lunet.Tensor:view", "only one size may be -1")
    end)

    it("lunet.cat joins along any dimension", function()
      for s, shape in ipairs(shapes) do
        for dim = 1, #shape do
          local parts, models = {}, {}
          for k, extra in ipairs({ 0, 2, 1 }) do
            local sh = copy_list(shape)
            sh[dim] = (k == 2) and 0 or sh[dim] + extra -- one part is empty along dim
            local t = random_tensor(sh, 50 * s + k, device)
            if k == 3 then t = random_tensor((function() local w = copy_list(sh); w[#w] = w[#w] + 2; return w end)(), 50 * s + k, device):narrow(#sh, 2, sh[#sh]) end
            parts[k], models[k] = t, model(t)
          end
          local what = ("cat %s dim %d"):format(table.concat(shape, "x"), dim)
          local r = lunet.cat(parts, dim)
          assert_contiguous(r)
          assert_equal_model(cat_model(models, dim), r, what)
          assert_equal_model(cat_model(models, dim), lunet.cat(parts, dim - #shape - 1), what .. " (negative)")
        end
      end
      -- the default dim is the first; one tensor gives a copy
      local a = lunet.tensor({ { 1, 2 } }):to(device)
      local b = lunet.tensor({ { 3, 4 }, { 5, 6 } }):to(device)
      assert.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, lunet.cat({ a, b }):totable())
      local c = lunet.cat({ a })
      c:fill(0)
      assert.same({ { 1, 2 } }, a:totable())
      -- integer dtypes stay exact
      local i = lunet.cat({ lunet.tensor({ 2147483647 }, { dtype = "int32" }):to(device),
        lunet.tensor({ -2147483648 }, { dtype = "int32" }):to(device) })
      assert.equal("int32", i:dtype())
      assert.same({ 2147483647, -2147483648 }, i:totable())
    end)

    it("lunet.stack joins along a new dimension", function()
      for s, shape in ipairs(shapes) do
        for dim = 1, #shape + 1 do
          local parts, models = {}, {}
          for k = 1, 3 do
            local t = random_tensor(shape, 60 * s + k, device)
            if k == 2 and #shape >= 1 then
              t = t:unsqueeze(1):squeeze(1) -- a view
            end
            parts[k], models[k] = t, model(t)
          end
          local what = ("stack %s dim %d"):format(table.concat(shape, "x"), dim)
          assert_equal_model(stack_model(models, dim), lunet.stack(parts, dim), what)
          assert_equal_model(stack_model(models, dim), lunet.stack(parts, dim - #shape - 2), what .. " (negative)")
        end
      end
      local a, b = lunet.tensor(1):to(device), lunet.tensor(2):to(device)
      assert.same({ 1, 2 }, lunet.stack({ a, b }):totable())
      assert.same({ { 1, 2 }, { 3, 4 } }, lunet.stack({ lunet.tensor({ 1, 2 }):to(device), lunet.tensor({ 3, 4 }):to(device) }):totable())
      assert.same({ { 1, 3 }, { 2, 4 } }, lunet.stack({ lunet.tensor({ 1, 2 }):to(device), lunet.tensor({ 3, 4 }):to(device) }, -1):totable())
    end)

    it("t[i] is a view of row i without its first dimension, or a number for 1-D", function()
      for s, shape in ipairs(shapes) do
        for _, input in ipairs(inputs(shape, 70 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          assert.equal(shape[1], #t)
          for i = 1, shape[1] do
            local row = t[i]
            if #shape == 1 then
              assert.equal(m.data[i], row, name)
              assert.equal(t:get(i), row)
            else
              local sub = copy_list(shape)
              table.remove(sub, 1)
              local per = numel(sub)
              local data = {}
              for k = 1, per do data[k] = m.data[(i - 1) * per + k] end
              assert_equal_model({ data = data, shape = sub }, row, ("%s %s t[%d]"):format(name, table.concat(shape, "x"), i))
            end
          end
        end
      end
      local t = lunet.tensor({ { { 1, 2 }, { 3, 4 } }, { { 5, 6 }, { 7, 8 } } }):to(device)
      assert.equal(7, t[2][2][1])
      assert.equal("integer", math.type(lunet.tensor({ 4, 5 }, { dtype = "int32" }):to(device)[2]))
      t[2][1]:fill(0) -- writes through
      assert.same({ { 1, 2 }, { 3, 4 } }, t[1]:totable())
      assert.same({ { 0, 0 }, { 7, 8 } }, t[2]:totable())
    end)

    it("t[i] = v sets an element of a 1-D tensor, and fills or copies a row otherwise", function()
      local v = lunet.zeros({ 4 }):to(device)
      v[1] = 2.5
      v[4] = -1
      assert.same({ 2.5, 0, 0, -1 }, v:totable())
      local view = lunet.zeros({ 3, 4 }):to(device)
      local col = view:narrow(2, 2, 1):squeeze(2) -- strided
      col[3] = 9
      assert.equal(9, view:get(3, 2))
      local u = lunet.zeros({ 2 }, { dtype = "uint8" }):to(device)
      u[2] = 255
      assert.same({ 0, 255 }, u:totable())
      local m = lunet.zeros({ 2, 3 }):to(device)
      m[2] = 4
      m[1] = lunet.tensor({ 1, 2, 3 }):to(device)
      assert.same({ { 1, 2, 3 }, { 4, 4, 4 } }, m:totable())
    end)

    it("item gives the number of a one-element tensor; #t is size(1)", function()
      assert.equal(3.5, lunet.tensor(3.5):to(device):item())
      assert.equal(-2, lunet.tensor({ { { -2 } } }):to(device):item())
      assert.equal("integer", math.type(lunet.tensor({ 7 }, { dtype = "int32" }):to(device):item()))
      assert.equal(6, lunet.tensor({ { 1, 2 }, { 3, 4 } }):to(device):narrow(1, 2, 1):narrow(2, 1, 1):item() + 3)
      assert.equal(0, #lunet.zeros({ 0, 4 }):to(device))
      assert.equal(3, #lunet.zeros({ 3, 0 }):to(device))
      assert.equal(5, #lunet.zeros({ 5 }):to(device))
      assert.equal(2, #lunet.zeros({ 4, 5 }):to(device):narrow(1, 2, 2))
    end)

    it("sum, mean, max and min along a dimension match plain Lua", function()
      local reduce_shapes = { { 5 }, { 1 }, { 3, 4 }, { 1, 7 }, { 4, 1 }, { 3, 1, 5 }, { 2, 3, 4, 5 }, { 0, 3 }, { 2, 0, 3 } }
      for s, shape in ipairs(reduce_shapes) do
        for _, input in ipairs(inputs(shape, 80 * s, device)) do
          local name, t = input[1], input[2]
          local m = model(t)
          for dim = 1, #shape do
            for _, keepdim in ipairs({ false, true }) do
              local what = ("%s %s dim %d keepdim %s"):format(name, table.concat(shape, "x"), dim, tostring(keepdim))
              local kd = keepdim or nil
              assert_close_model(reduce_model(m, "sum", dim, keepdim), t:sum(dim, kd), 1e-6, "sum " .. what)
              assert_close_model(reduce_model(m, "sum", dim, keepdim), t:sum(dim - #shape - 1, kd), 1e-6, "sum(negative) " .. what)
              if shape[dim] > 0 then
                assert_close_model(reduce_model(m, "mean", dim, keepdim), t:mean(dim, kd), 1e-6, "mean " .. what)
                for _, op in ipairs({ "max", "min" }) do
                  local values, positions = t[op](t, dim, kd)
                  local ev, ep = reduce_model(m, op, dim, keepdim)
                  assert_equal_model(ev, values, op .. " values " .. what)
                  assert.equal("int32", positions:dtype())
                  assert_equal_model(ep, positions, op .. " positions " .. what)
                end
              end
            end
          end
        end
      end
    end)

    it("reductions along a dimension: -1, ties, NaN, dtypes and empty dimensions", function()
      local t = lunet.tensor({ { 1, 9, 3, 9 }, { 7, 2, 7, 0 } }):to(device)
      local v, p = t:max(-1)
      assert.same({ 9, 7 }, v:totable())
      assert.same({ 2, 1 }, p:totable()) -- the first maximum
      v, p = t:min(1, true)
      assert.same({ { 1, 2, 3, 0 } }, v:totable())
      assert.same({ { 1, 2, 1, 2 } }, p:totable())
      local n = lunet.tensor({ { 1, 0 / 0, 5, 0 / 0 } }):to(device)
      v, p = n:max(2)
      assert.is_true(v:get(1) ~= v:get(1)) -- NaN wins, as in PyTorch
      assert.same({ 2 }, p:totable())
      v, p = n:min(2)
      assert.same({ 2 }, p:totable())
      -- a 1-D sum along its dimension is a scalar tensor
      local s = lunet.tensor({ 1, 2, 3 }):to(device):sum(1)
      assert.same({}, s:shape())
      assert.equal(6, s:item())
      assert.same({ 1 }, lunet.tensor({ 1, 2, 3 }):to(device):sum(1, true):shape())
      -- integer sums stay integers; their means are float32
      local i = lunet.tensor({ { 1, 2 }, { 3, 4 } }, { dtype = "int32" }):to(device)
      assert.equal("int32", i:sum(1):dtype())
      assert.same({ 4, 6 }, i:sum(1):totable())
      assert.equal("float32", i:mean(2):dtype())
      assert.same({ 1.5, 3.5 }, i:mean(2):totable())
      assert.equal("int32", i:max(2):dtype())
      local u = lunet.tensor({ { 200, 100 } }, { dtype = "uint8" }):to(device)
      assert.same({ 300 }, u:sum(2):totable())
      assert.same({ 200 }, u:max(2):totable())
      local h = lunet.tensor({ { 1, 2 }, { 3, 4 } }):to(device):to("float16")
      assert.equal("float16", h:sum(2):dtype())
      assert.same({ 3, 7 }, h:sum(2):totable())
      -- empty dimensions: sums are 0, means NaN, max/min an error
      local e = lunet.zeros({ 2, 0 }):to(device)
      assert.same({ 0, 0 }, e:sum(2):totable())
      local mean = e:mean(2):totable()
      assert.is_true(mean[1] ~= mean[1])
      assert.same({ 0 }, e:sum(1):shape())
      helpers.assert_error(function() e:max(2) end, "lunet.Tensor:max", "dimension 2 of shape [2, 0]", "empty")
      -- the whole-tensor forms are unchanged
      assert.equal(38, t:sum())
      assert.equal(9, t:max())
      assert.equal(0, t:min())
      assert.equal(38 / 8, t:mean())
    end)
  end)
end

describe("tensor shape ops misuse", function()
  local t = lunet.tensor({ { 1, 2, 3 }, { 4, 5, 6 } })

  it("a bad dim is an error naming the function, the argument and the shape, never ignored", function()
    for _, op in ipairs({ "sum", "mean", "max", "min" }) do
      local fname = "lunet.Tensor:" .. op
      helpers.assert_error(function() t[op](t, 3) end, fname, "dim = 3 is out of range for shape [2, 3]")
      helpers.assert_error(function() t[op](t, -3) end, fname, "dim = -3 is out of range")
      helpers.assert_error(function() t[op](t, 0) end, fname, "dim must be in 1..2 for shape [2, 3]")
      helpers.assert_error(function() t[op](t, "x") end, fname, "dim must be an integer, got string \"x\"")
      helpers.assert_error(function() t[op](t, 1.5) end, fname, "dim must be an integer, got 1.5")
      helpers.assert_error(function() t[op](t, {}) end, fname, "dim must be an integer, got table")
      helpers.assert_error(function() t[op](t, 1, 1) end, fname, "keepdim must be a boolean, got number")
      helpers.assert_error(function() t[op](t, nil, true) end, fname, "keepdim", "needs a dim")
      helpers.assert_error(function() lunet.tensor(5)[op](lunet.tensor(5), 1) end, fname, "a scalar tensor has no dimensions")
      helpers.assert_error(function() lunet.tensor({ 1, 2 })[op](lunet.tensor({ 1, 2 }), 2) end, fname, "dim = 2 is out of range for shape [2]")
    end
    helpers.assert_error(function() t:transpose(1, 3) end, "lunet.Tensor:transpose", "dim2 = 3 is out of range for shape [2, 3]")
    helpers.assert_error(function() t:transpose(0, 1) end, "lunet.Tensor:transpose", "dim1 must be in 1..2")
    helpers.assert_error(function() t:transpose(1) end, "lunet.Tensor:transpose", "dim2 must be an integer, got no value")
    helpers.assert_error(function() t:permute({ 1, 1 }) end, "lunet.Tensor:permute", "dimension 1 appears twice", "[2, 3]")
    helpers.assert_error(function() t:permute({ 2 }) end, "lunet.Tensor:permute", "expected 2 dimensions", "[2, 3]", "got 1")
    helpers.assert_error(function() t:permute({ 1, 3 }) end, "lunet.Tensor:permute", "dims[2] = 3 is out of range for shape [2, 3]")
    helpers.assert_error(function() t:permute({ 1, "2" }) end, "lunet.Tensor:permute", "dims[2] must be an integer")
    helpers.assert_error(function() t:permute(2, 1, 3) end, "lunet.Tensor:permute", "expected 2 dimensions", "got 3 arguments")
    helpers.assert_error(function() t:unsqueeze(4) end, "lunet.Tensor:unsqueeze", "dim = 4 is out of range for shape [2, 3] (1..3")
    helpers.assert_error(function() t:unsqueeze(-4) end, "lunet.Tensor:unsqueeze", "dim = -4 is out of range")
    helpers.assert_error(function() t:unsqueeze() end, "lunet.Tensor:unsqueeze", "dim must be an integer, got no value")
    helpers.assert_error(function() lunet.zeros({ 1, 1, 1, 1, 1, 1, 1, 1 }):unsqueeze(1) end, "lunet.Tensor:unsqueeze", "most dimensions allowed (8)")
    helpers.assert_error(function() t:squeeze(3) end, "lunet.Tensor:squeeze", "dim = 3 is out of range for shape [2, 3]")
    helpers.assert_error(function() t:squeeze("all") end, "lunet.Tensor:squeeze", "dim must be an integer")
    helpers.assert_error(function() t:view({ 5 }) end, "lunet.Tensor:view", "cannot reshape [2, 3] (6 elements) to [5]")
  end)

  it("t[i] out of range, not an integer, or of a scalar is an error naming the index and the shape", function()
    helpers.assert_error(function() return t[3] end, "lunet.Tensor[i]", "index 3 is out of range for dimension 1 of shape [2, 3] (1..2)")
    helpers.assert_error(function() return t[0] end, "lunet.Tensor[i]", "index 0 is out of range", "[2, 3]")
    helpers.assert_error(function() return t[-1] end, "lunet.Tensor[i]", "index -1 is out of range", "[2, 3]")
    helpers.assert_error(function() return t[1.5] end, "lunet.Tensor[i]", "index must be an integer, got 1.5 for shape [2, 3]")
    helpers.assert_error(function() return t[true] end, "lunet.Tensor[i]", "index must be an integer, got boolean")
    helpers.assert_error(function() return t[1][4] end, "lunet.Tensor[i]", "index 4 is out of range for dimension 1 of shape [3] (1..3)")
    helpers.assert_error(function() return lunet.tensor(2)[1] end, "lunet.Tensor[i]", "a scalar tensor", "t:item()")
    helpers.assert_error(function() return lunet.zeros({ 0 })[1] end, "lunet.Tensor[i]", "index 1 is out of range", "[0]")
    local v = lunet.zeros({ 3 })
    helpers.assert_error(function() v[4] = 1 end, "lunet.Tensor[i] = v", "index 4 is out of range", "[3]")
    helpers.assert_error(function() v[1] = "x" end, "lunet.Tensor[i] = v", "the value must be a number, got string")
    helpers.assert_error(function() v[1] = lunet.zeros({ 1 }) end, "lunet.Tensor[i] = v", "a number; got a tensor")
    helpers.assert_error(function() v.x = 1 end, "lunet.Tensor[i] = v", "cannot set field 'x'")
    helpers.assert_error(function() lunet.zeros({ 2 }, { dtype = "uint8" })[1] = 256 end, "lunet.Tensor[i] = v", "not a uint8")
    helpers.assert_error(function() t[1] = lunet.zeros({ 2 }) end, "lunet.Tensor[i] = v", "t[1] has shape [3] but the value has shape [2]")
    local freed = lunet.zeros({ 2 })
    freed:free()
    helpers.assert_error(function() return freed[1] end, "lunet.Tensor[i]", "freed")
    helpers.assert_error(function() return #freed end, "#t", "freed")
  end)

  it("method lookup still works beside indexing", function()
    assert.is_function(t.sum)
    assert.is_nil(t.no_such_method)
    assert.equal(t.shape, lunet.Tensor.shape)
    lunet.Tensor.double_sum = function(self) return 2 * self:sum() end
    assert.equal(42, t:double_sum())
    lunet.Tensor.double_sum = nil
    assert.is_nil(t.double_sum)
  end)

  it("item of many or no elements and #t of a scalar are errors naming the shape", function()
    helpers.assert_error(function() t:item() end, "lunet.Tensor:item", "expected a tensor of one element, got shape [2, 3] (6 elements)")
    helpers.assert_error(function() lunet.zeros({ 0 }):item() end, "lunet.Tensor:item", "shape [0] (0 elements)")
    helpers.assert_error(function() return #lunet.tensor(1) end, "#t", "a scalar tensor (shape [])")
  end)

  it("cat and stack of mismatched tensors are errors naming the entry and the shapes", function()
    local a, b = lunet.zeros({ 2, 3 }), lunet.zeros({ 3, 4 })
    helpers.assert_error(function() lunet.cat({ a, b }, 1) end, "lunet.cat", "tensor 2 of the list has shape [3, 4] but tensor 1 has [2, 3]", "except along dimension 1")
    helpers.assert_error(function() lunet.cat({ a, lunet.zeros({ 2, 3, 1 }) }, 1) end, "lunet.cat", "tensor 2 of the list has shape [2, 3, 1]")
    helpers.assert_error(function() lunet.cat({ a, a, lunet.zeros({ 2, 3 }, { dtype = "int32" }) }) end, "lunet.cat", "tensor 3 of the list is int32 but tensor 1 is float32")
    helpers.assert_error(function() lunet.cat({ a, lunet.zeros({ 2, 3 }):to("ref") }) end, "lunet.cat", "tensor 2 of the list is on ref but tensor 1 is on cpu")
    helpers.assert_error(function() lunet.cat({ a, 5 }) end, "lunet.cat", "argument #1: entry 2 is number, expected a lunet tensor")
    helpers.assert_error(function() lunet.cat({}) end, "lunet.cat", "non-empty list")
    helpers.assert_error(function() lunet.cat(a) end, "lunet.cat", "argument #1: expected a list of tensors", "got userdata")
    helpers.assert_error(function() lunet.cat({ a, a }, 3) end, "lunet.cat", "dim = 3 is out of range for shape [2, 3]")
    helpers.assert_error(function() lunet.cat({ lunet.tensor(1), lunet.tensor(2) }) end, "lunet.cat", "scalar tensors cannot be concatenated")
    helpers.assert_error(function() lunet.stack({ a, b }) end, "lunet.stack", "tensor 2 of the list has shape [3, 4] but tensor 1 has [2, 3]")
    helpers.assert_error(function() lunet.stack({ a, lunet.zeros({ 2, 3 }, { dtype = "uint8" }) }) end, "lunet.stack", "tensor 2 of the list is uint8")
    helpers.assert_error(function() lunet.stack({ a, a }, 4) end, "lunet.stack", "dim = 4 is out of range for shape [2, 3] (1..3")
    helpers.assert_error(function() lunet.stack({ lunet.zeros({ 1, 1, 1, 1, 1, 1, 1, 1 }) }) end, "lunet.stack", "most dimensions allowed (8)")
    local freed = lunet.zeros({ 2, 3 })
    freed:free()
    helpers.assert_error(function() lunet.cat({ a, freed }) end, "lunet.cat", "entry 2: the tensor was freed")
  end)
end)
