-- The contract of /work/shared/API.md, entry by entry, for the sections issue
-- 13 extended (Tensors, Neural-network modules, Optimizers, Serialization):
-- every name called as API.md writes it, with the values it states, on every
-- device (ref, cpu, and cuda where a GPU is present); and the misuse errors of
-- issue 13's "Done when" (a bad dim, shapes that cannot broadcast, a
-- non-number exponent, item() of many elements, an out-of-range t[i]) name the
-- function, the argument and the shapes.
local lunet = require("lunet")
local helpers = require("helpers")
local nn, optim = lunet.nn, lunet.optim

local function T(data, dev, dtype) return lunet.tensor(data, { device = dev, dtype = dtype }) end
local function shape(t) return table.concat(t:shape(), "x") end
local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * math.max(1, math.abs(b)) end

-- An error whose message holds every fragment.
local err = helpers.assert_error

for _, dev in ipairs(helpers.devices()) do
  describe("API.md Tensors on " .. dev, function()
    it("lunet.tensor(data, {dtype=, device=}) with a device object or name", function()
      local a = lunet.tensor({ { 1, 2 }, { 3, 4 } }, { dtype = "int32", device = lunet.device(dev == "ref" and "cpu" or dev) })
      assert.equal("int32", a:dtype())
      local b = lunet.tensor({ 1.5, 2.5 }, { device = dev })
      assert.equal(dev, b:device().type == "cuda" and "cuda" or tostring(b:device()))
      assert.equal("float32", b:dtype())
      assert.same({ { 1, 2 }, { 3, 4 } }, a:totable())
    end)

    it("empty/zeros/ones/full/rand/randn take a shape and opts", function()
      assert.same({ 2, 3 }, lunet.empty({ 2, 3 }, { device = dev }):shape())
      assert.equal(0, lunet.zeros({ 2, 3 }, { device = dev }):sum())
      assert.equal(6, lunet.ones({ 2, 3 }, { device = dev }):sum())
      local f = lunet.full({ 2, 2 }, 2.5, { device = dev, dtype = "float32" })
      assert.equal(10, f:sum())
      assert.equal("int32", lunet.full({ 3 }, 7, { dtype = "int32", device = dev }):dtype())
      lunet.manual_seed(5)
      local r = lunet.rand({ 1000 }, { device = dev })
      assert.is_true(r:min() >= 0 and r:max() < 1)
      assert.is_true(math.abs(r:mean() - 0.5) < 0.05)
      local n = lunet.randn({ 4000 }, { device = dev })
      assert.is_true(math.abs(n:mean()) < 0.1)
      assert.is_true(math.abs((n * n):mean() - 1) < 0.1)
    end)

    it("shape, size(d), dim, numel, dtype, device", function()
      local t = lunet.zeros({ 2, 3, 4 }, { device = dev })
      assert.same({ 2, 3, 4 }, t:shape())
      assert.equal(3, t:size(2))
      assert.equal(4, t:size(-1))
      assert.equal(3, t:dim())
      assert.equal(24, t:numel())
      assert.equal("float32", t:dtype())
      assert.is_truthy(t:device())
      err(function() t:size(4) end, "lunet.Tensor:size", "[2, 3, 4]")
    end)

    it("to(x): a device, name or dtype; t itself when nothing changes", function()
      local t = T({ 1.5, 2.5 }, dev)
      assert.is_true(rawequal(t, t:to("float32")))
      assert.is_true(rawequal(t, t:to(t:device())))
      local i = t:to("int32")
      assert.equal("int32", i:dtype())
      assert.same({ 1, 2 }, i:totable())
      local c = t:to("cpu")
      assert.same({ 1.5, 2.5 }, c:totable())
    end)

    it("reshape (one -1), narrow and view are views sharing storage", function()
      local t = T({ 1, 2, 3, 4, 5, 6 }, dev)
      local r = t:reshape({ 2, -1 })
      assert.same({ 2, 3 }, r:shape())
      r:set(60, 2, 3)
      assert.equal(60, t:get(6))
      local n = r:narrow(2, 2, 2)
      assert.same({ { 2, 3 }, { 5, 60 } }, n:totable())
      n:fill(0)
      assert.same({ 1, 0, 0, 4, 0, 0 }, t:totable())
      local v = t:view({ 3, 2 })
      v:set(9, 1, 1)
      assert.equal(9, t:get(1))
      err(function() t:reshape({ 4, -1 }) end, "lunet.Tensor:reshape", "[6]")
    end)

    it("clone, copy (across dtypes), fill and zero (in place, returning t)", function()
      local t = T({ 1, 2, 3 }, dev)
      local c = t:clone()
      c:fill(5)
      assert.same({ 1, 2, 3 }, t:totable())
      local dst = lunet.zeros({ 3 }, { device = dev })
      assert.is_true(rawequal(dst, dst:copy(T({ 7, 8, 9 }, "cpu", "int32"))))
      assert.same({ 7, 8, 9 }, dst:totable())
      assert.is_true(rawequal(dst, dst:fill(2)))
      assert.equal(6, dst:sum())
      assert.is_true(rawequal(dst, dst:zero()))
      assert.equal(0, dst:sum())
    end)

    it("get, set and totable", function()
      local t = lunet.zeros({ 2, 3 }, { device = dev })
      t:set(4.5, 2, 3)
      assert.equal(4.5, t:get(2, 3))
      assert.same({ { 0, 0, 0 }, { 0, 0, 4.5 } }, t:totable())
    end)

    it("sum, mean, max, min of the whole tensor are Lua numbers", function()
      local t = T({ { 1, 5, 3 }, { 4, 2, 6 } }, dev)
      assert.equal(21, t:sum())
      assert.equal(3.5, t:mean())
      assert.equal(6, t:max())
      assert.equal(1, t:min())
      assert.equal("number", type(t:sum()))
    end)

    it("sum(dim [, keepdim]) and mean(dim [, keepdim]) along a dimension, dim -1 the last", function()
      local t = T({ { 1, 5, 3 }, { 4, 2, 6 } }, dev)
      assert.same({ 5, 7, 9 }, t:sum(1):totable())
      assert.same({ 9, 12 }, t:sum(2):totable())
      assert.same({ 9, 12 }, t:sum(-1):totable())
      assert.same({ { 9 }, { 12 } }, t:sum(2, true):totable())
      assert.same({ { 2.5, 3.5, 4.5 } }, t:mean(1, true):totable())
      assert.same({ 3, 4 }, t:mean(-1):totable())
      assert.same({ 2, 1 }, t:mean(2, true):shape())
    end)

    it("max/min(dim [, keepdim]): values and int32 1-based positions, the first extreme, NaN wins", function()
      local t = T({ { 1, 6, 3, 6 }, { 4, 2, 2, 0 } }, dev)
      local v, p = t:max(2)
      assert.same({ 6, 4 }, v:totable())
      assert.same({ 2, 1 }, p:totable())
      assert.equal("int32", p:dtype())
      v, p = t:min(2, true)
      assert.same({ { 1 }, { 0 } }, v:totable())
      assert.same({ { 1 }, { 4 } }, p:totable())
      v, p = t:max(1)
      assert.same({ 4, 6, 3, 6 }, v:totable())
      assert.same({ 2, 1, 1, 1 }, p:totable())
      v, p = t:min(-1)
      assert.same({ 1, 4 }, p:totable())
      local nan = T({ { 1, 0 / 0, 9 } }, dev)
      v, p = nan:max(2)
      assert.is_true(v:get(1) ~= v:get(1))
      assert.same({ 2 }, p:totable())
      v, p = nan:min(2)
      assert.same({ 2 }, p:totable())
    end)

    it("reductions along a dimension on every dtype", function()
      for _, dtype in ipairs({ "float32", "int32", "uint8" }) do
        local t = T({ { 1, 5, 3 }, { 4, 2, 6 } }, dev, dtype)
        assert.same({ 5, 7, 9 }, t:sum(1):totable(), dtype)
        assert.same({ 3, 4 }, t:mean(2):totable(), dtype)
        local v, p = t:max(2)
        assert.same({ 5, 6 }, v:totable(), dtype)
        assert.same({ 2, 3 }, p:totable(), dtype)
        v, p = t:min(1, true)
        assert.same({ { 1, 2, 3 } }, v:totable(), dtype)
        assert.same({ { 1, 2, 1 } }, p:totable(), dtype)
        local e = lunet.zeros({ 2, 0 }, { device = dev, dtype = dtype })
        assert.same({ 0, 0 }, e:sum(2):totable(), dtype)
        assert.is_true(e:mean(2):get(1) ~= e:mean(2):get(1), dtype)
      end
      -- exact int32 extremes beyond float32's 2^24, and sums that leave int32
      local big = T({ { 16777217, 16777216 }, { -2147483647, 2147483647 } }, dev, "int32")
      local v, p = big:max(2)
      assert.same({ 16777217, 2147483647 }, v:totable())
      assert.same({ 1, 2 }, p:totable())
      assert.same({ 33554433, 0 }, big:sum(2):totable())
      err(function() big:sum(1) end, "lunet.Tensor:sum", "does not fit in int32")
    end)

    it("a dim that is not an integer in 1..dim() (or -1) is an error, never ignored", function()
      local t = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      for _, m in ipairs({ "sum", "mean", "max", "min", "argmax", "softmax", "log_softmax" }) do
        for _, bad in ipairs({ 0, 3, -3, 1.5, "x" }) do
          local msg = err(function() return t[m](t, bad) end, "lunet.Tensor:" .. m, "[2, 3]")
          assert.truthy(msg:find("dim", 1, true), msg)
        end
      end
    end)

    it("argmax(dim): int32 1-based positions, that dim removed", function()
      local t = T({ { 1, 9, 3 }, { 7, 2, 7 } }, dev)
      local a = t:argmax(2)
      assert.equal("int32", a:dtype())
      assert.same({ 2, 1 }, a:totable())
      assert.same({ 2, 1, 2 }, t:argmax(1):totable())
    end)

    it("eq ne lt le gt ge: 0/1 of the first operand's dtype, a tensor (broadcast) or a number", function()
      local a = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      local b = T({ 2, 2, 6 }, dev)
      assert.same({ { 0, 1, 0 }, { 0, 0, 1 } }, a:eq(b):totable())
      assert.same({ { 1, 0, 1 }, { 1, 1, 0 } }, a:ne(b):totable())
      assert.same({ { 1, 0, 1 }, { 0, 0, 0 } }, a:lt(b):totable())
      assert.same({ { 1, 1, 1 }, { 0, 0, 1 } }, a:le(b):totable())
      assert.same({ { 0, 0, 0 }, { 1, 1, 0 } }, a:gt(b):totable())
      assert.same({ { 0, 1, 0 }, { 1, 1, 1 } }, a:ge(b):totable())
      assert.same({ { 0, 0, 1 }, { 1, 1, 1 } }, a:gt(2):totable())
      assert.same({ { 0, 0, 0 }, { 0, 1, 0 } }, a:eq(5):totable())
      local i = T({ 1, 2, 3 }, dev, "int32")
      assert.equal("int32", i:lt(2):dtype())
      assert.same({ 1, 0, 0 }, i:lt(2):totable())
      assert.equal("float32", a:ge(b):dtype())
    end)

    it("+ - * / with PyTorch's broadcasting, numbers on either side, and -t", function()
      local a = T({ { { 1, 2, 3, 4, 5 } }, { { 6, 7, 8, 9, 10 } }, { { 11, 12, 13, 14, 15 } } }, dev) -- {3,1,5}
      local b = T({ { 1 }, { 2 }, { 3 }, { 4 } }, dev) -- {4,1}
      local s = a + b
      assert.same({ 3, 4, 5 }, s:shape())
      assert.equal(a:get(2, 1, 3) + b:get(4, 1), s:get(2, 4, 3))
      assert.equal(a:get(3, 1, 5) * b:get(3, 1), (a * b):get(3, 3, 5))
      assert.equal(a:get(1, 1, 2) - b:get(2, 1), (a - b):get(1, 2, 2))
      assert.equal(a:get(2, 1, 4) / b:get(4, 1), (a / b):get(2, 4, 4))
      local m = T({ { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10, 11, 12 } }, dev)
      local r = T({ { 10, 20, 30, 40 } }, dev)
      assert.same({ { 11, 22, 33, 44 }, { 15, 26, 37, 48 }, { 19, 30, 41, 52 } }, (m + r):totable())
      assert.same({ 3, 4 }, (m + T({ 1, 1, 1, 1 }, dev)):shape())
      assert.same({ 3, 5, 7 }, (T({ 4, 6, 8 }, dev) - 1):totable())
      assert.same({ { 2, 2, 2 }, { 2, 2, 2 } }, (2 + lunet.zeros({ 2, 3 }, { device = dev })):totable())
      assert.same({ 1, 2, 3 }, (T({ 2, 4, 6 }, dev) / 2):totable())
      assert.same({ 8, 6, 4 }, (10 - T({ 2, 4, 6 }, dev)):totable())
      assert.same({ 4, 8, 12 }, (2 * T({ 2, 4, 6 }, dev)):totable())
      assert.same({ 3, 1.5, 1 }, (6 / T({ 2, 4, 6 }, dev)):totable())
      assert.same({ -2, 4, -6 }, (-T({ 2, -4, 6 }, dev)):totable())
      -- size-0 dimensions broadcast to size 0
      assert.same({ 0, 3 }, (lunet.zeros({ 0, 3 }, { device = dev }) + T({ 1, 2, 3 }, dev)):shape())
    end)

    it("add_ sub_ mul_ div_ are in place, broadcast u, and return t", function()
      local t = T({ { 1, 2 }, { 3, 4 } }, dev)
      assert.is_true(rawequal(t, t:add_(T({ 10, 20 }, dev))))
      assert.same({ { 11, 22 }, { 13, 24 } }, t:totable())
      assert.is_true(rawequal(t, t:sub_(1)))
      assert.same({ { 10, 21 }, { 12, 23 } }, t:totable())
      assert.is_true(rawequal(t, t:mul_(T({ { 2 }, { 3 } }, dev))))
      assert.same({ { 20, 42 }, { 36, 69 } }, t:totable())
      assert.is_true(rawequal(t, t:div_(2)))
      assert.same({ { 10, 21 }, { 18, 34.5 } }, t:totable())
      -- u may be t itself or a view of it
      local q = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      assert.same({ { 1, 4, 9 }, { 16, 25, 36 } }, q:mul_(q):totable())
      local r = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      assert.same({ { 2, 4, 6 }, { 5, 7, 9 } }, r:add_(r[1]):totable())
      local c = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      c:narrow(2, 2, 2):sub_(c:narrow(2, 1, 2))
      assert.same({ { 1, 1, 1 }, { 4, 1, 1 } }, c:totable()) -- the overlapping operand read first
      -- a number or the tensor itself in place: no temporary
      local before = lunet.tensor_allocations()
      q:mul_(0.5):add_(1):mul_(q)
      assert.equal(0, lunet.tensor_allocations() - before)
      assert.same({ { 2.25, 9, 30.25 }, { 81, 182.25, 361 } }, q:totable())
    end)

    it("exp log sqrt abs tanh sigmoid relu pow clamp: new float tensors", function()
      local x = T({ -2, -0.5, 0, 0.5, 2 }, dev)
      local p = T({ 0.25, 1, 4 }, dev)
      local function each(t) return t:to("cpu"):totable() end
      local cases = {
        { x:exp(), { math.exp(-2), math.exp(-0.5), 1, math.exp(0.5), math.exp(2) } },
        { p:log(), { math.log(0.25), 0, math.log(4) } },
        { p:sqrt(), { 0.5, 1, 2 } },
        { x:abs(), { 2, 0.5, 0, 0.5, 2 } },
        { x:tanh(), { -0.9640275800758169, -0.46211715726000974, 0, 0.46211715726000974, 0.9640275800758169 } },
        { x:sigmoid(), { 1 / (1 + math.exp(2)), 1 / (1 + math.exp(0.5)), 0.5, 1 / (1 + math.exp(-0.5)), 1 / (1 + math.exp(-2)) } },
        { x:relu(), { 0, 0, 0, 0.5, 2 } },
        { p:pow(2), { 0.0625, 1, 16 } },
        { p:pow(-0.5), { 2, 1, 0.5 } },
        { x:clamp(-1, 1), { -1, -0.5, 0, 0.5, 1 } },
        { x:clamp(0, nil), { 0, 0, 0, 0.5, 2 } },
        { x:clamp(nil, 0), { -2, -0.5, 0, 0, 0 } },
      }
      for k, c in ipairs(cases) do
        local got = each(c[1])
        assert.equal("float32", c[1]:dtype())
        for i = 1, #c[2] do assert(close(got[i], c[2][i]), ("case %d element %d: %.9g vs %.9g"):format(k, i, got[i], c[2][i])) end
      end
      local i = T({ 1, 4, 9 }, dev, "int32")
      assert.equal("float32", i:sqrt():dtype())
      assert.same({ 1, 2, 3 }, i:sqrt():totable())
      assert.same({ 3 }, x:narrow(1, 1, 3):exp():shape())
    end)

    it("softmax(dim) and log_softmax(dim): rows sum to 1, stable for large values", function()
      local x = T({ { 1000, 1001, 1002 }, { -5, 0, 5 } }, dev)
      local s = x:softmax(2)
      local e1, e2 = math.exp(-2), math.exp(-1)
      local z = e1 + e2 + 1
      assert(close(s:get(1, 3), 1 / z) and close(s:get(1, 1), e1 / z))
      assert.same({ 1, 1 }, s:sum(2):totable())
      local l = x:log_softmax(-1)
      assert(close(l:get(1, 3), -math.log(z)))
      assert.is_true(l:max() <= 0)
      local c = x:softmax(1)
      assert(close(c:get(1, 1), 1) and close(c:get(2, 1), 0))
      assert(close(x:log_softmax(2):exp():get(2, 2), x:softmax(2):get(2, 2)))
    end)

    it("transpose and permute: new contiguous tensors with the dimensions reordered", function()
      local t = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      local tt = t:transpose(1, 2)
      assert.same({ { 1, 4 }, { 2, 5 }, { 3, 6 } }, tt:totable())
      tt:set(100, 1, 1)
      assert.equal(1, t:get(1, 1)) -- a new tensor
      local c = lunet.tensor({ { { 1, 2 }, { 3, 4 }, { 5, 6 } } }, { device = dev }) -- {1,3,2}
      local p = c:permute({ 3, 1, 2 })
      assert.same({ 2, 1, 3 }, p:shape())
      assert.same({ { { 1, 3, 5 } }, { { 2, 4, 6 } } }, p:totable())
      assert.same({ 2, 3, 1 }, c:transpose(1, -1):shape())
    end)

    it("unsqueeze, squeeze([d]) and view are views", function()
      local t = T({ 1, 2, 3 }, dev)
      local u = t:unsqueeze(1)
      assert.same({ 1, 3 }, u:shape())
      assert.same({ 3, 1 }, t:unsqueeze(2):shape())
      assert.same({ 3, 1 }, t:unsqueeze(-1):shape())
      u:set(10, 1, 2)
      assert.equal(10, t:get(2))
      local z = lunet.zeros({ 1, 3, 1 }, { device = dev })
      assert.same({ 3 }, z:squeeze():shape())
      assert.same({ 1, 3 }, z:squeeze(3):shape())
      assert.same({ 1, 3, 1 }, z:squeeze(2):shape()) -- not of size 1: unchanged, as PyTorch
      local sq = z:squeeze()
      sq:set(4, 2)
      assert.equal(4, z:get(1, 2, 1))
      local v = lunet.zeros({ 2, 3 }, { device = dev }):view({ 3, 2 })
      assert.same({ 3, 2 }, v:shape())
    end)

    it("lunet.cat(list, dim) and lunet.stack(list, dim)", function()
      local a, b = T({ { 1, 2 }, { 3, 4 } }, dev), T({ { 5, 6 } }, dev)
      assert.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, lunet.cat({ a, b }, 1):totable())
      assert.same({ { 1, 2, 1, 2 }, { 3, 4, 3, 4 } }, lunet.cat({ a, a }, 2):totable())
      local s = lunet.stack({ a, a * 10 }, 1)
      assert.same({ 2, 2, 2 }, s:shape())
      assert.equal(40, s:get(2, 2, 2))
      local s3 = lunet.stack({ a, a * 10 }, 3)
      assert.same({ 2, 2, 2 }, s3:shape())
      assert.same({ 3, 30 }, s3[2][1]:totable())
      err(function() lunet.cat({ a, T({ 1, 2, 3 }, dev) }, 1) end, "lunet.cat", "[2, 2]")
    end)

    it("t[i]: a view without the first dimension, or the number of a 1-D tensor; t[i] = v", function()
      local t = T({ { 1, 2, 3 }, { 4, 5, 6 } }, dev)
      local row = t[2]
      assert.same({ 3 }, row:shape())
      assert.same({ 4, 5, 6 }, row:totable())
      row:set(50, 2)
      assert.equal(50, t:get(2, 2)) -- a view: narrow(1, i, 1) without its first dimension
      local v = T({ 7, 8, 9 }, dev)
      assert.equal(8, v[2])
      assert.equal("number", type(v[2]))
      v[3] = 90
      assert.equal(90, v:get(3))
      assert.equal(2, #t)
      assert.equal(3, #v)
      assert.equal(6, T({ 6 }, dev):item())
      assert.equal("number", type(T({ { 6 } }, dev):item()))
    end)

    it("lunet.matmul(a, b): the 2-D product", function()
      local a = T({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, dev)
      local b = T({ { 1, 0, 2 }, { 0, 1, 3 } }, dev)
      assert.same({ { 1, 2, 8 }, { 3, 4, 18 }, { 5, 6, 28 } }, lunet.matmul(a, b):totable())
    end)

    it("tostring(t) names the device, dtype and shape", function()
      local s = tostring(lunet.zeros({ 2, 3 }, { device = dev }))
      assert.truthy(s:find("^Tensor%(" .. dev), s)
      assert.truthy(s:find("float32, [2, 3])", 1, true), s)
    end)

    it("free(): any later use is an error", function()
      local t = lunet.ones({ 3 }, { device = dev })
      t:free()
      err(function() return t:sum() end, "lunet.Tensor:sum", "freed")
      err(function() return t[1] end, "freed")
    end)
  end)

  describe("issue 13's misuse errors on " .. dev .. " name the function, the argument and the shapes", function()
    local t
    before_each(function() t = lunet.zeros({ 2, 3 }, { device = dev }) end)

    it("a bad dim", function()
      err(function() t:sum(3) end, "lunet.Tensor:sum", "dim", "3", "[2, 3]")
      err(function() t:max(0) end, "lunet.Tensor:max", "dim", "[2, 3]")
      err(function() t:mean("rows") end, "lunet.Tensor:mean", "dim", "[2, 3]")
      err(function() t:softmax(5) end, "lunet.Tensor:softmax", "dim", "[2, 3]")
      err(function() t:unsqueeze(4) end, "lunet.Tensor:unsqueeze", "dim", "[2, 3]")
      err(function() t:transpose(1, 3) end, "lunet.Tensor:transpose", "dim2", "[2, 3]")
      err(function() t:squeeze(3) end, "lunet.Tensor:squeeze", "dim", "[2, 3]")
      err(function() lunet.cat({ t, t }, 3) end, "lunet.cat", "dim")
    end)

    it("shapes that cannot broadcast, in every operator and in place", function()
      local u = lunet.zeros({ 4, 3 }, { device = dev })
      err(function() return t + u end, "lunet.Tensor:add", "[2, 3]", "[4, 3]")
      err(function() return t - u end, "lunet.Tensor:sub", "[2, 3]", "[4, 3]")
      err(function() return t * u end, "lunet.Tensor:mul", "[2, 3]", "[4, 3]")
      err(function() return t / u end, "lunet.Tensor:div", "[2, 3]", "[4, 3]")
      err(function() return t:lt(u) end, "lunet.Tensor:lt", "[2, 3]", "[4, 3]")
      err(function() return t:eq(u) end, "lunet.Tensor:eq", "[2, 3]", "[4, 3]")
      err(function() return t:add_(lunet.zeros({ 2, 2 }, { device = dev })) end, "lunet.Tensor:add_", "[2, 3]", "[2, 2]")
      -- in place, the result keeps t's shape: {1,3} cannot take {2,3}
      err(function() return lunet.zeros({ 1, 3 }, { device = dev }):mul_(t) end, "lunet.Tensor:mul_", "[1, 3]", "[2, 3]")
    end)

    it("a non-number exponent or bound", function()
      err(function() t:pow("2") end, "lunet.Tensor:pow", "exponent", "string", "[2, 3]")
      err(function() t:pow() end, "lunet.Tensor:pow", "exponent", "[2, 3]")
      err(function() t:pow(t) end, "lunet.Tensor:pow", "exponent", "[2, 3]")
      err(function() t:clamp("a", 1) end, "lunet.Tensor:clamp", "lo", "[2, 3]")
      err(function() t:lt("a") end, "lunet.Tensor:lt", "argument #1", "[2, 3]")
    end)

    it("item() of a many-element tensor", function()
      err(function() t:item() end, "lunet.Tensor:item", "one element", "[2, 3]")
      err(function() lunet.zeros({ 0 }, { device = dev }):item() end, "lunet.Tensor:item", "[0]")
    end)

    it("an out-of-range t[i], read or written", function()
      err(function() return t[3] end, "lunet.Tensor[i]", "index 3", "[2, 3]")
      err(function() return t[0] end, "lunet.Tensor[i]", "index 0", "[2, 3]")
      local v = lunet.zeros({ 3 }, { device = dev })
      err(function() return v[4] end, "lunet.Tensor[i]", "index 4", "[3]")
      err(function() v[4] = 1 end, "lunet.Tensor[i] = v", "index 4", "[3]")
      err(function() return v[1.5] end, "lunet.Tensor[i]", "integer", "[3]")
      err(function() v[1] = "x" end, "lunet.Tensor[i] = v", "number", "[3]")
    end)
  end)
end

-- --- Neural-network modules -------------------------------------------------------------

local function fill_from(t, seed)
  lunet.manual_seed(seed)
  t:copy(lunet.randn(t:shape()))
  return t
end

describe("API.md nn modules", function()
  for _, dev in ipairs(helpers.devices()) do
    it(dev .. ": forward keeps m.output; backward returns grad_input and accumulates parameter gradients", function()
      lunet.manual_seed(1)
      local m = nn.Linear(3, 2):to(dev)
      local x = fill_from(lunet.empty({ 4, 3 }), 2):to(dev)
      local y = m:forward(x)
      assert.is_true(rawequal(y, m.output))
      assert.same({ 4, 2 }, y:shape())
      local expect = lunet.matmul(x, m.weight:transpose(1, 2)) + m.bias
      helpers.assert_close(y, expect, 1e-5, 1e-6)
      local g = lunet.ones({ 4, 2 }, { device = dev })
      m:zero_grad()
      local gi = m:backward(x, g)
      assert.same({ 4, 3 }, gi:shape())
      helpers.assert_close(gi, lunet.matmul(g, m.weight), 1e-5, 1e-6)
      local once = m.grad_weight:clone()
      m:backward(x, g)
      helpers.assert_close(m.grad_weight, once * 2, 1e-5, 1e-6) -- accumulates
      helpers.assert_close(m.grad_bias, T({ 8, 8 }, "cpu"), 1e-6, 0)
      m:zero_grad()
      assert.equal(0, m.grad_weight:abs():sum() + m.grad_bias:abs():sum())
    end)

    it(dev .. ": parameters() in module order, weight before bias; train/eval; to() returns m", function()
      local a, b = nn.Linear(3, 4), nn.Linear(4, 2, { bias = false })
      local s = nn.Sequential(a, nn.ReLU(), b)
      assert.is_true(rawequal(s, s:to(dev)))
      local ps, gs = s:parameters()
      assert.equal(3, #ps)
      assert.equal(3, #gs)
      assert.is_true(rawequal(ps[1], a.weight) and rawequal(ps[2], a.bias) and rawequal(ps[3], b.weight))
      assert.is_true(rawequal(gs[1], a.grad_weight) and rawequal(gs[3], b.grad_weight))
      assert.is_nil(b.bias)
      assert.is_true(s.training)
      s:eval()
      assert.is_false(s.training)
      assert.is_false(a.training)
      s:train()
      assert.is_true(a.training)
    end)

    it(dev .. ": state_dict gives CPU tensors; load_state_dict restores", function()
      lunet.manual_seed(3)
      local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 2 * 2, 3)):to(dev)
      local sd = m:state_dict()
      for _, t in pairs(sd) do assert.equal("cpu", tostring(t:device())) end
      local n = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(8, 3)):to(dev)
      n:load_state_dict(sd)
      local x = fill_from(lunet.empty({ 2, 1, 4, 4 }), 4):to(dev)
      helpers.assert_close(n:forward(x), m:forward(x), 0, 0)
    end)

    it(dev .. ": flat_parameters: the parameters become views of one tensor", function()
      local m = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2)):to(dev)
      local p, g = m:flat_parameters()
      assert.equal(3 * 4 + 4 + 4 * 2 + 2, p:numel())
      assert.equal(p:numel(), g:numel())
      p:fill(0.5)
      assert.equal(0.5 * 12, m[1].weight:sum())
      g:fill(1)
      assert.equal(2, m[2].grad_bias:sum())
    end)
  end

  it("tostring(m) is the tree; m:summary(input_shape) lists shapes, parameters and FLOPs with totals", function()
    local m = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(4 * 14 * 14, 10), nn.Softmax(2))
    local s = tostring(m)
    assert.truthy(s:find("Conv2d", 1, true) and s:find("Linear", 1, true) and s:find("Softmax", 1, true), s)
    local text = m:summary({ 1, 28, 28 })
    local params = 4 * 9 + 4 + 4 * 14 * 14 * 10 + 10
    assert.truthy(text:find("Total params: " .. params, 1, true), text)
    assert.truthy(text:find("[1, 10]", 1, true) or text:find("1, 10", 1, true), text)
    assert.truthy(text:find("FLOPs", 1, true), text)
    assert.equal(text, m:summary({ 1, 1, 28, 28 }))
  end)

  it("Sequential(m1, m2) and Sequential{m1, m2}; add, #seq, seq[i]", function()
    local r, t = nn.ReLU(), nn.Tanh()
    local a = nn.Sequential(r, t)
    local b = nn.Sequential({ nn.ReLU(), nn.Tanh() })
    assert.equal(2, #a)
    assert.equal(2, #b)
    assert.is_true(rawequal(a[1], r) and rawequal(a[2], t))
    a:add(nn.Identity())
    assert.equal(3, #a)
    assert.equal("Identity", a[3].__typename)
  end)

  it("Linear, Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, Dropout, Flatten as API.md states", function()
    local l = nn.Linear(5, 3)
    assert.same({ 3, 5 }, l.weight:shape())
    local bound = 1 / math.sqrt(5)
    assert.is_true(l.weight:abs():max() <= bound and l.bias:abs():max() <= bound)
    local c = nn.Conv2d(2, 4, { 3, 5 }, { stride = 2, padding = 1, bias = false })
    assert.same({ 4, 2, 3, 5 }, c.weight:shape())
    assert.is_nil(c.bias)
    assert.same({ 1, 4, 3, 2 }, c:forward(lunet.zeros({ 1, 2, 6, 6 })):shape())
    local mp = nn.MaxPool2d(2)
    local x = T({ { { { 1, 2, 3, 4 }, { 5, 6, 7, 8 }, { 9, 10, 11, 12 }, { 13, 14, 15, 16 } } } }, "cpu")
    assert.same({ { { { 6, 8 }, { 14, 16 } } } }, mp:forward(x):totable())
    assert.same({ { { { 6, 7, 8 }, { 10, 11, 12 }, { 14, 15, 16 } } } }, nn.MaxPool2d(2, 1):forward(x):totable())
    assert.same({ { { { 3.5, 5.5 }, { 11.5, 13.5 } } } }, nn.AvgPool2d(2):forward(x):totable())
    assert.same({ 1, 16 }, nn.Flatten():forward(x):shape())
    local bn = nn.BatchNorm2d(1)
    local y = bn:forward(x)
    assert(math.abs(y:mean()) < 1e-5)
    local d = nn.Dropout(0.5)
    d:eval()
    helpers.assert_close(d:forward(x), x, 0, 0)
  end)

  for _, dev in ipairs(helpers.devices()) do
    it(dev .. ": Sigmoid, Tanh, LeakyReLU([0.01]), GELU (exact and tanh), Softmax(dim), LogSoftmax(dim), Identity", function()
      local x = T({ { -3, -0.5, 0, 0.5, 3 } }, dev)
      local g = T({ { 1, 2, 3, 4, 5 } }, dev)
      local function check(m, f, df)
        local y = m:forward(x)
        assert.is_true(rawequal(y, m.output))
        local gi = m:backward(x, g)
        for i = 1, 5 do
          local xi = x:get(1, i)
          assert(close(y:get(1, i), f(xi), 1e-6), ("%s forward at %g: %.9g vs %.9g"):format(m.__typename, xi, y:get(1, i), f(xi)))
          assert(close(gi:get(1, i), g:get(1, i) * df(xi), 1e-5),
            ("%s backward at %g: %.9g vs %.9g"):format(m.__typename, xi, gi:get(1, i), g:get(1, i) * df(xi)))
        end
      end
      local function sig(v) return 1 / (1 + math.exp(-v)) end
      local function tanh(v) local e = math.exp(2 * v); return (e - 1) / (e + 1) end
      check(nn.Sigmoid(), sig, function(v) return sig(v) * (1 - sig(v)) end)
      check(nn.Tanh(), tanh, function(v) return 1 - tanh(v) ^ 2 end)
      check(nn.LeakyReLU(), function(v) return v > 0 and v or 0.01 * v end, function(v) return v > 0 and 1 or 0.01 end)
      check(nn.LeakyReLU(0.2), function(v) return v > 0 and v or 0.2 * v end, function(v) return v > 0 and 1 or 0.2 end)
      -- exact GELU, x * Phi(x) (Lua has no erf): PyTorch's values at these points
      local exact = { [-3] = -0.00404987, [-0.5] = -0.15426879, [0] = 0, [0.5] = 0.3457312, [3] = 2.99595022 }
      local ge = nn.GELU():forward(x)
      for i = 1, 5 do assert(math.abs(ge:get(1, i) - exact[x:get(1, i)]) < 1e-6, ge:get(1, i)) end
      local function gelu_tanh(v) return 0.5 * v * (1 + tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ^ 3))) end
      check(nn.GELU({ approximate = "tanh" }), gelu_tanh, function(v)
        local h = 1e-4
        return (gelu_tanh(v + h) - gelu_tanh(v - h)) / (2 * h)
      end)
      check(nn.Identity(), function(v) return v end, function() return 1 end)
      local sm = nn.Softmax(2)
      local p = sm:forward(x)
      assert(close(p:sum(), 1))
      helpers.assert_close(p, x:softmax(2), 0, 0)
      local ls = nn.LogSoftmax(-1)
      helpers.assert_close(ls:forward(x), x:log_softmax(2), 0, 0)
      -- log_softmax backward: g - softmax * sum(g)
      local gl = ls:backward(x, g)
      for i = 1, 5 do assert(close(gl:get(1, i), g:get(1, i) - p:get(1, i) * 15, 1e-5)) end
    end)

    it(dev .. ": AdaptiveAvgPool2d(1) averages each plane; Residual(block) is block(x) + x", function()
      local x = T({ { { { 1, 2 }, { 3, 4 } }, { { 5, 5 }, { 5, 9 } } } }, dev)
      local gap = nn.AdaptiveAvgPool2d(1)
      local y = gap:forward(x)
      assert.same({ 1, 2, 1, 1 }, y:shape())
      assert.same({ 2.5, 6 }, y:reshape({ 2 }):totable())
      local gi = gap:backward(x, T({ { { { 4 } }, { { 8 } } } }, dev))
      assert.same({ { { { 1, 1 }, { 1, 1 } }, { { 2, 2 }, { 2, 2 } } } }, gi:totable())
      lunet.manual_seed(7)
      local lin = nn.Linear(3, 3)
      local r = nn.Residual(lin):to(dev)
      local v = fill_from(lunet.empty({ 2, 3 }), 8):to(dev)
      helpers.assert_close(r:forward(v), lin:forward(v) + v, 1e-6, 1e-7)
      local g = lunet.ones({ 2, 3 }, { device = dev })
      r:zero_grad()
      helpers.assert_close(r:backward(v, g), lunet.matmul(g, lin.weight) + g, 1e-5, 1e-6)
      assert.equal(2, #(r:parameters()))
    end)

    it(dev .. ": MSELoss, NLLLoss, BCEWithLogitsLoss, CrossEntropyLoss([{label_smoothing}]) return Lua numbers and gradients", function()
      local x = T({ { 1, 2 }, { 3, 5 } }, dev)
      local t = T({ { 0, 2 }, { 4, 1 } }, dev)
      local mse = nn.MSELoss()
      assert.equal("number", type(mse:forward(x, t)))
      assert(close(mse:forward(x, t), (1 + 0 + 1 + 16) / 4))
      helpers.assert_close(mse:backward(x, t), T({ { 0.5, 0 }, { -0.5, 2 } }, "cpu"), 1e-6, 0)

      local logits = T({ { 1, 2, 3 }, { 1, 1, 1 } }, dev)
      local labels = T({ 3, 1 }, dev, "int32")
      local lp = logits:log_softmax(2)
      local nll = nn.NLLLoss()
      local want = -(lp:get(1, 3) + lp:get(2, 1)) / 2
      assert(close(nll:forward(lp, labels), want, 1e-6))
      helpers.assert_close(nll:backward(lp, labels), T({ { 0, 0, -0.5 }, { -0.5, 0, 0 } }, "cpu"), 0, 0)

      local ce = nn.CrossEntropyLoss()
      assert(close(ce:forward(logits, labels), want, 1e-6))
      local p = logits:softmax(2):to("cpu")
      local gce = ce:backward(logits, labels)
      assert(close(gce:get(1, 3), (p:get(1, 3) - 1) / 2, 1e-6) and close(gce:get(2, 2), p:get(2, 2) / 2, 1e-6))
      local eps = 0.3
      local ces = nn.CrossEntropyLoss({ label_smoothing = eps })
      local smooth = 0
      for i, y in ipairs({ 3, 1 }) do
        local s = 0
        for c = 1, 3 do s = s + lp:get(i, c) end
        smooth = smooth - (1 - eps) * lp:get(i, y) - eps / 3 * s
      end
      assert(close(ces:forward(logits, labels), smooth / 2, 1e-6))
      local gs = ces:backward(logits, labels)
      assert(close(gs:get(1, 3), (p:get(1, 3) - (1 - eps) - eps / 3) / 2, 1e-6))
      assert(close(gs:get(1, 1), (p:get(1, 1) - eps / 3) / 2, 1e-6))

      local bx = T({ -2, 0, 3 }, dev)
      local bt = T({ 0, 1, 0.5 }, dev)
      local bce = nn.BCEWithLogitsLoss()
      local function sp(v) return math.log(1 + math.exp(v)) end
      local lw = (sp(-2) - 0 + sp(0) - 0 + sp(3) - 1.5) / 3
      assert(close(bce:forward(bx, bt), lw, 1e-6))
      local function sg(v) return 1 / (1 + math.exp(-v)) end
      helpers.assert_close(bce:backward(bx, bt), { (sg(-2) - 0) / 3, (0.5 - 1) / 3, (sg(3) - 0.5) / 3 }, 1e-6, 1e-7)

      err(function() ce:forward(logits, T({ 4, 1 }, dev, "int32")) end, "lunet.nn.CrossEntropyLoss:forward", "1..3")
      err(function() mse:forward(x, T({ 1, 2 }, dev)) end, "lunet.nn.MSELoss:forward", "[2, 2]", "[2]")
    end)
  end
end)

-- --- Optimizers ------------------------------------------------------------------------------------

describe("API.md optimizers", function()
  --- one Linear(2, 1) with weight w, bias 0 and gradient g for the weight.
  local function model(w, g)
    local m = nn.Linear(2, 1)
    m.weight:copy(T({ w }, "cpu"))
    m.bias:zero()
    m.grad_weight:copy(T({ g }, "cpu"))
    m.grad_bias:zero()
    return m
  end

  for _, dev in ipairs(helpers.devices()) do
    it(dev .. ": SGD with momentum, weight decay and nesterov follows PyTorch's rule", function()
      local m = model({ 1, -2 }, { 0.5, 0.25 }):to(dev)
      local opt = optim.SGD(m, { lr = 0.1, momentum = 0.9, weight_decay = 0.01, nesterov = true })
      opt:step()
      -- d = g + wd * w; buf = d; update d + mu * buf
      local d1 = 0.5 + 0.01 * 1
      local w1 = 1 - 0.1 * (d1 + 0.9 * d1)
      assert(close(m.weight:get(1, 1), w1, 1e-6))
      opt:zero_grad()
      assert.equal(0, m.grad_weight:abs():sum())
      local plain = model({ 1, -2 }, { 0.5, 0.25 }):to(dev)
      optim.SGD(plain, { lr = 0.1 }):step()
      assert(close(plain.weight:get(1, 2), -2 - 0.025, 1e-6))
    end)

    it(dev .. ": Adam and AdamW (decoupled decay); opt.lr may change between steps", function()
      local m = model({ 1, -2 }, { 0.5, 0.25 }):to(dev)
      local opt = optim.Adam(m, { lr = 0.01 })
      assert.same({ 0.9, 0.999 }, opt.betas)
      assert.equal(1e-8, opt.eps)
      opt:step()
      -- the first Adam step moves every weight by lr * sign(g) (up to eps)
      assert(close(m.weight:get(1, 1), 1 - 0.01, 1e-6))
      opt.lr = 0.1
      opt:step()
      local mw = model({ 1, -2 }, { 0.5, 0.25 }):to(dev)
      local adamw = optim.AdamW(mw, { lr = 0.01, weight_decay = 0.5 })
      adamw:step()
      -- decoupled: w * (1 - lr * wd) then the Adam step
      assert(close(mw.weight:get(1, 1), 1 * (1 - 0.005) - 0.01, 1e-6))
      assert(close(mw.weight:get(1, 2), -2 * (1 - 0.005) - 0.01, 1e-6))
      assert.is_true(m.weight:get(1, 1) < 1 - 0.01 - 0.05)
    end)

    it(dev .. ": clip_grad_norm returns the total norm before clipping and scales the gradients", function()
      local m = model({ 0, 0 }, { 3, 4 }):to(dev)
      local total = optim.clip_grad_norm(m, 1)
      assert(close(total, 5, 1e-6))
      assert(close(m.grad_weight:get(1, 1), 0.6, 1e-5) and close(m.grad_weight:get(1, 2), 0.8, 1e-5))
      assert(close(optim.clip_grad_norm(m, 10), 1, 1e-5))
      assert(close(m.grad_weight:get(1, 2), 0.8, 1e-5))
    end)
  end

  it("StepLR, CosineAnnealingLR and OneCycleLR drive opt.lr with sched:step()", function()
    local opt = optim.SGD(nn.Linear(1, 1), { lr = 1 })
    local s = optim.StepLR(opt, { step_size = 2 })
    local seen = {}
    for k = 1, 5 do
      seen[k] = opt.lr
      s:step()
    end
    for k, v in ipairs({ 1, 1, 0.1, 0.1, 0.01 }) do assert(close(seen[k], v, 1e-9), k) end
    opt = optim.SGD(nn.Linear(1, 1), { lr = 1 })
    s = optim.CosineAnnealingLR(opt, { t_max = 4, eta_min = 0.2 })
    s:step()
    assert(close(opt.lr, 0.2 + 0.8 * (1 + math.cos(math.pi / 4)) / 2, 1e-9))
    s:step()
    assert(close(opt.lr, 0.6, 1e-9))
    opt = optim.SGD(nn.Linear(1, 1), { lr = 1, momentum = 0.9 })
    s = optim.OneCycleLR(opt, { max_lr = 1, total_steps = 10 })
    -- PyTorch: starts at max_lr / 25, peaks at max_lr after 30%, ends at max_lr / (25 * 1e4)
    assert(close(opt.lr, 0.04, 1e-9))
    local peak = 0
    for _ = 1, 9 do
      s:step()
      peak = math.max(peak, opt.lr)
    end
    assert(close(peak, 1, 1e-9))
    assert(close(opt.lr, 0.04 / 1e4, 1e-6))
  end)
end)

-- --- Serialization ---------------------------------------------------------------------------------

describe("API.md serialization", function()
  local dir
  setup(function() dir = helpers.tmpdir() end)
  teardown(function() helpers.rmdir(dir) end)

  it("save/load of tensors, state dicts and plain tables of them", function()
    local path = dir .. "/t.lunet"
    lunet.save({ a = T({ 1, 2 }, "cpu"), nested = { b = T({ { 3 } }, "cpu", "int32") }, n = 5, s = "x" }, path)
    local r = lunet.load(path)
    assert.same({ 1, 2 }, r.a:totable())
    assert.equal("int32", r.nested.b:dtype())
    assert.equal(5, r.n)
    assert.equal("x", r.s)
    local m = nn.Linear(2, 2)
    lunet.save(m:state_dict(), path)
    local sd = lunet.load(path)
    assert.is_nil(getmetatable(sd) and getmetatable(sd).__typename)
    assert.is_false(nn.is_module(sd))
    helpers.assert_close(sd.weight, m.weight, 0, 0)
  end)

  for _, dev in ipairs(helpers.devices()) do
    it(dev .. ": save(model) stores the architecture; load rebuilds a working module on the CPU", function()
      lunet.manual_seed(11)
      local m = nn.Sequential(nn.Conv2d(1, 3, 3, { padding = 1 }), nn.BatchNorm2d(3), nn.LeakyReLU(0.1),
        nn.Residual(nn.Sequential(nn.Conv2d(3, 3, 3, { padding = 1 }), nn.GELU({ approximate = "tanh" }))),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.25), nn.Linear(3, 4, { bias = false }),
        nn.Sigmoid(), nn.Tanh(), nn.Identity(), nn.Linear(4, 3), nn.LogSoftmax(2)):to(dev)
      m:eval()
      local path = dir .. "/m.lunet"
      lunet.save(m, path)
      local back = lunet.load(path)
      assert.is_true(nn.is_module(back))
      assert.equal(tostring(m), tostring(back))
      back:eval()
      local x = fill_from(lunet.empty({ 2, 1, 5, 5 }), 12)
      helpers.assert_close(back:forward(x), m:forward(x:to(dev)), 1e-5, 1e-6)
      assert.equal("cpu", tostring(back[1].weight:device()))
    end)
  end

  it("an unknown module type in a file is a clear error", function()
    local m = nn.Sequential(nn.Linear(2, 2))
    local path = dir .. "/u.lunet"
    lunet.save(m, path)
    -- the file's data, its Linear renamed (the checksum made anew)
    local core = require("lunet.core")
    local raw = core.checkpoint_load(path)
    local renamed = 0
    for _, node in pairs(raw.modules) do
      if node.type == "Linear" then node.type, renamed = "Lineaz", renamed + 1 end
    end
    assert.equal(1, renamed)
    core.checkpoint_save(raw, path)
    err(function() lunet.load(path) end, "lunet.load", "Lineaz")
  end)
end)

-- --- README's examples ----------------------------------------------------------------------------

describe("README.md's example section", function()
  --- The ```lua blocks of README.md's "## A short example" section.
  local function example_blocks()
    local readme = assert(helpers.read_file(helpers.ROOT .. "/README.md"), "README.md is missing")
    local section = readme:match("\n## A short example\n(.-)\n## ")
    assert(section, "README.md has no \"## A short example\" section")
    local blocks = {}
    for code in section:gmatch("```lua\n(.-)\n```") do blocks[#blocks + 1] = code end
    return blocks, section
  end

  it("shows a classifier with softmax probabilities, a scheduler and save/load of the whole model", function()
    local blocks, section = example_blocks()
    assert.is_true(#blocks >= 2, section)
    local classifier = blocks[2]
    for _, needed in ipairs({ ":softmax(", "lunet.optim.StepLR(", "sched:step()", "lunet.save(model",
      "lunet.load(" }) do
      assert.truthy(classifier:find(needed, 1, true), "the classifier example lacks " .. needed)
    end
  end)

  it("runs as written on the current code, and its classifier learns", function()
    local blocks = example_blocks()
    local dir = helpers.tmpdir()
    local outputs = {}
    for i, code in ipairs(blocks) do
      local ok, out = helpers.run_child(helpers.checkout_paths() .. code,
        { prefix = "cd " .. helpers.sh_quote(dir) .. " &&" })
      assert(ok, ("README example %d failed:\n%s"):format(i, out))
      outputs[i] = out
    end
    helpers.rmdir(dir)
    local out = outputs[2]
    -- the loss falls over the scheduled steps
    local losses = {}
    for l in out:gmatch("loss (%d+%.%d+)") do losses[#losses + 1] = tonumber(l) end
    assert.is_true(#losses >= 2, out)
    assert.is_true(losses[#losses] < losses[1], out)
    -- the restored model's probabilities: two rows summing to 1, classes 1 and 3
    local probs = out:match("Tensor%(cpu, float32, %[2, 3%]%) {([^}]*)}")
    assert(probs, out)
    local p = {}
    for v in probs:gmatch("[-%d.e]+") do p[#p + 1] = tonumber(v) end
    assert.equal(6, #p)
    assert.is_true(math.abs(p[1] + p[2] + p[3] - 1) < 1e-3 and math.abs(p[4] + p[5] + p[6] - 1) < 1e-3, probs)
    assert.truthy(out:find("Tensor(cpu, int32, [2]) {1, 3}", 1, true), out)
  end)
end)

-- --- the new modules reuse their buffers ----------------------------------------------------------

describe("issue 13's modules reuse their output and gradient buffers while the shape stays", function()
  for _, dev in ipairs(helpers.devices()) do
    local layers = {
      { "Sigmoid", function() return nn.Sigmoid() end, function(x) return x:sigmoid() end },
      { "Tanh", function() return nn.Tanh() end, function(x) return x:tanh() end },
      { "LeakyReLU", function() return nn.LeakyReLU(0.2) end, function(x) return x:leaky_relu(0.2) end },
      { "GELU", function() return nn.GELU() end, function(x) return x:gelu() end },
      { "GELU tanh", function() return nn.GELU("tanh") end, function(x) return x:gelu("tanh") end },
      { "Softmax", function() return nn.Softmax(2) end, function(x) return x:softmax(2) end },
      { "LogSoftmax", function() return nn.LogSoftmax(-1) end, function(x) return x:log_softmax(-1) end },
      { "Identity", function() return nn.Identity() end, function(x) return x end },
      { "Residual", function()
        lunet.manual_seed(2)
        return nn.Residual(nn.Sequential(nn.Linear(5, 5), nn.Tanh()))
      end },
    }
    for _, case in ipairs(layers) do
      it(dev .. ": " .. case[1] .. ": same numbers, no allocation on the second call, a new buffer for a new shape", function()
        local m = case[2]():to(dev)
        local x = fill_from(lunet.empty({ 4, 5 }), 21):to(dev)
        local g = fill_from(lunet.empty({ 4, 5 }), 22):to(dev)
        local fresh = case[2]():to(dev)
        local y1 = m:forward(x)
        local gi1 = m:backward(x, g)
        local y1c, gi1c = y1:clone(), gi1:clone()
        m:zero_grad()
        local before = lunet.tensor_allocations()
        local y2 = m:forward(x)
        local gi2 = m:backward(x, g)
        local allocations = lunet.tensor_allocations() - before
        if case[1] ~= "Residual" then assert.equal(0, allocations) end
        assert.is_true(rawequal(y1, y2))
        assert.is_true(rawequal(gi1, gi2))
        helpers.assert_close(y2, y1c, 0, 0, "output")
        helpers.assert_close(gi2, gi1c, 0, 0, "grad_input")
        helpers.assert_close(y2, fresh:forward(x), 0, 0, "a fresh module's output")
        if case[3] then helpers.assert_close(y2, case[3](x), 0, 0, "the tensor method's output") end
        local other = m:forward(lunet.zeros({ 2, 5 }, { device = dev }))
        assert.same({ 2, 5 }, other:shape())
        assert.same({ 4, 5 }, y1c:shape())
      end)
    end

    it(dev .. ": Residual and AdaptiveAvgPool2d keep their buffers", function()
      local gap = nn.AdaptiveAvgPool2d(1):to(dev)
      local x = fill_from(lunet.empty({ 2, 3, 4, 4 }), 23):to(dev)
      local y1 = gap:forward(x)
      local g1 = gap:backward(x, lunet.ones({ 2, 3, 1, 1 }, { device = dev }))
      local before = lunet.tensor_allocations()
      assert.is_true(rawequal(y1, gap:forward(x)))
      assert.is_true(rawequal(g1, gap:backward(x, lunet.ones({ 2, 3, 1, 1 }, { device = dev }))) )
      assert.equal(1, lunet.tensor_allocations() - before) -- the ones() above
    end)

    it(dev .. ": the losses' gradients reuse grad_input, with the numbers of a fresh criterion", function()
      local x = fill_from(lunet.empty({ 6, 4 }), 24):to(dev)
      local t = fill_from(lunet.empty({ 6, 4 }), 25):to(dev):sigmoid()
      local labels = T({ 1, 4, 2, 3, 3, 1 }, dev, "int32")
      local cases = {
        { nn.MSELoss, {}, function() return x, t end },
        { nn.BCEWithLogitsLoss, {}, function() return x, t end },
        { nn.NLLLoss, {}, function() return x:log_softmax(2), labels end },
        { nn.CrossEntropyLoss, { { label_smoothing = 0.2 } }, function() return x, labels end },
        { nn.CrossEntropyLoss, {}, function() return x, labels end },
      }
      for _, c in ipairs(cases) do
        local crit = c[1](table.unpack(c[2]))
        local a, b = c[3]()
        local l1 = crit:forward(a, b)
        local g1 = crit:backward(a, b)
        local g1c = g1:clone()
        local g2 = crit:backward(a, b)
        assert.is_true(rawequal(g1, g2), crit.__typename)
        helpers.assert_close(g2, g1c, 0, 0, crit.__typename)
        assert.equal(l1, crit:forward(a, b))
        if crit.__typename == "MSELoss" then -- its forward keeps a scratch tensor too
          local before = lunet.tensor_allocations()
          crit:forward(a, b)
          crit:backward(a, b)
          assert.equal(0, lunet.tensor_allocations() - before)
        end
        -- never written over an operand: a grad_input passed back in as the input
        local g3 = crit:backward(g2, b)
        assert.is_false(rawequal(g3, g2), crit.__typename)
      end
    end)
  end
end)
