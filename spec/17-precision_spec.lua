-- lunet.autocast / lunet.precision (API.md "Precision") and the CPU's bf16
-- products (csrc/cpu/bf16.c, winograd.c), which run at the avx512bf16 kernel
-- level; below it the CPU computes in float32 whatever the setting. In bf16
-- mode products under 2^20 multiply-adds, and convolutions that are not
-- Winograd's (few taps, strides: memory-bound here), stay float32.
--
-- Tolerances. A bf16 product rounds both operands to 8 significant bits
-- (relative error at most 2^-9 each) and accumulates in float32:
--  - the matrix products equal float32 products of the bf16-rounded operands
--    up to the order of the float32 additions: 1e-5 normwise;
--  - Winograd's convolutions round the transformed tiles, not the inputs, so
--    they are compared with the float32 reference: random operands give a
--    normwise error of about 2 x 2^-9 (measured 2.4e-3 to 4.0e-3 on these
--    shapes); 1.5e-2 leaves room for the transforms' growth without letting
--    a wrong pair or tail (errors of order 1) through. Each check also asks
--    for an error above 1e-4, so a silent fall back to float32 fails.
local lunet = require("lunet")
local core = require("lunet.core")
local helpers = require("helpers")

local function relative_error(actual, expected)
  local d = (actual:to("cpu") - expected:to("cpu")):reshape({ -1 })
  local e = expected:to("cpu"):reshape({ -1 })
  local norm = math.sqrt((e * e):sum())
  return math.sqrt((d * d):sum()) / (norm > 0 and norm or 1)
end

local function has_level(name)
  for _, l in ipairs(lunet.cpu_levels()) do
    if l == name then return true end
  end
  return false
end

--- fn() with the cpu at `level` and autocast `precision`, both restored after.
local function at(level, precision, fn)
  local level_before, precision_before = lunet.set_cpu_level(level), lunet.precision()
  lunet.autocast(precision)
  local ok, a, b = pcall(fn)
  lunet.autocast(precision_before)
  lunet.set_cpu_level(level_before)
  if not ok then error(a, 0) end
  return a, b
end

local function bf16(t) return t:to("bfloat16"):to("float32") end

describe("lunet.autocast and lunet.precision", function()
  after_each(function() lunet.autocast(false) end)

  it("start at float32, switch, and switch back with false", function()
    assert.equal("float32", lunet.precision())
    lunet.autocast("bfloat16")
    assert.equal("bfloat16", lunet.precision())
    lunet.autocast("float32")
    assert.equal("float32", lunet.precision())
    lunet.autocast("bfloat16")
    lunet.autocast(false)
    assert.equal("float32", lunet.precision())
    lunet.autocast("tf32") -- CUDA's; the CPU computes in float32
    assert.equal("tf32", lunet.precision())
  end)

  it("refuse what is not a compute dtype, naming the function", function()
    for _, bad in ipairs({ "int32", "half", 16, true, {} }) do
      local ok, err = pcall(lunet.autocast, bad)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("lunet.autocast:", 1, true), tostring(err))
    end
    assert.equal("float32", lunet.precision())
  end)
end)

describe("bf16 products on the cpu", function()
  local bf16_level = has_level("avx512bf16")

  it("matrix products equal float32 products of the bf16-rounded operands (odd shapes)", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    -- {batch, inputs, outputs}: odd depth, column tails under 16 and 32, rows not
    -- a multiple of 12, a single row; each big enough for the bf16 path. The
    -- task grids of bf16.c: a batch over 128 (the weight rounded up front, not
    -- by the tasks), inputs and outputs both small (the tasks convert both
    -- operands), a depth that leaves a task 12 rows of the weight, and one too
    -- deep for a task to hold its rows (rounded up front).
    for i, shape in ipairs({ { 37, 2001, 333 }, { 13, 4097, 31 }, { 70, 129, 513 }, { 1, 3000, 1000 },
                             { 150, 301, 200 }, { 40, 120, 700 }, { 5, 9001, 300 }, { 3, 16391, 40 } }) do
      local n, fin, fout = shape[1], shape[2], shape[3]
      local x = helpers.random({ n, fin }, 10 + i, nil, -1, 1)
      local w = helpers.random({ fout, fin }, 20 + i, nil, -1, 1)
      local dy = helpers.random({ n, fout }, 30 + i, nil, -1, 1)
      local what = table.concat(shape, "x")
      local y, dx = at("avx512bf16", "bfloat16", function()
        return core.linear_forward(x, w), core.linear_backward_data(dy, w)
      end)
      local dw = lunet.full({ fout, fin }, 0.5)
      at("avx512bf16", "bfloat16", function() core.linear_backward_filter(x, dy, dw, nil, true) end)
      local xr, wr, dyr = bf16(x):to("ref"), bf16(w):to("ref"), bf16(dy):to("ref")
      local rdw = lunet.full({ fout, fin }, 0.5, { device = "ref" })
      core.linear_backward_filter(xr, dyr, rdw, nil, true)
      local pairs_ = { { y, core.linear_forward(xr, wr), "forward" },
        { dx, core.linear_backward_data(dyr, wr), "input gradient" }, { dw, rdw, "weight gradient (accumulated)" } }
      for _, p in ipairs(pairs_) do
        local e = relative_error(p[1], p[2])
        assert.is_true(e < 1e-5, ("%s %s: %g"):format(what, p[3], e))
      end
      if n > 1 then -- with one row, dy^T x is exact in either precision
        local e = relative_error(y, core.linear_forward(x:to("ref"), w:to("ref")))
        assert.is_true(e > 1e-4, ("%s: bf16 ran (error against float32 %g)"):format(what, e))
      end
    end
  end)

  it("lunet.matmul in bf16 equals float32 products of the bf16-rounded operands (task grids)", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    -- rows over 96 and columns over 128 (both operands converted up front, 2-D
    -- grid with column tails), few rows and columns (both converted by the
    -- tasks), few rows, many columns and an odd depth over two depth blocks
    for i, s in ipairs({ { 300, 257, 515 }, { 50, 333, 100 }, { 7, 801, 1300 } }) do
      local a = helpers.random({ s[1], s[2] }, 100 + i, nil, -1, 1)
      local b = helpers.random({ s[2], s[3] }, 110 + i, nil, -1, 1)
      local got = at("avx512bf16", "bfloat16", function() return lunet.matmul(a, b) end)
      local want = lunet.matmul(bf16(a):to("ref"), bf16(b):to("ref"))
      local what = table.concat(s, "x")
      local e = relative_error(got, want)
      assert.is_true(e < 1e-5, ("%s: %g"):format(what, e))
      assert.is_true(relative_error(got, lunet.matmul(a:to("ref"), b:to("ref"))) > 1e-4, what .. ": bf16 ran")
    end
  end)

  it("Winograd convolutions: all three passes within bf16's error of float32", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    for i, c in ipairs({ { { 8, 64, 14, 14 }, { 128, 64, 3, 3 }, 1 }, { { 3, 16, 9, 7 }, { 24, 16, 3, 3 }, 1 },
                         { { 2, 32, 8, 10 }, { 16, 32, 3, 3 }, 0 }, { { 29, 16, 5, 6 }, { 16, 16, 3, 3 }, 2 } }) do
      local x = helpers.random(c[1], 40 + i, nil, -1, 1)
      local w = helpers.random(c[2], 50 + i, nil, -0.3, 0.3)
      local b = helpers.random({ c[2][1] }, 60 + i, nil, -1, 1)
      local p = c[3]
      local y0 = core.conv2d_forward(x:to("ref"), w:to("ref"), b:to("ref"), 1, 1, p, p)
      local dy = helpers.random(y0:shape(), 70 + i, nil, -1, 1)
      local function passes(dev)
        local xd, wd, dyd = x:to(dev), w:to(dev), dy:to(dev)
        local y = core.conv2d_forward(xd, wd, b:to(dev), 1, 1, p, p)
        local dx = core.conv2d_backward_data(xd, wd, dyd, 1, 1, p, p)
        local dw, db = lunet.zeros(c[2], { device = dev }), lunet.zeros({ c[2][1] }, { device = dev })
        core.conv2d_backward_filter(xd, dyd, dw, db, 1, 1, p, p, false)
        return { y = y, dx = dx, dw = dw, db = db }
      end
      local ref = passes("ref")
      local got = at("avx512bf16", "bfloat16", function() return passes("cpu") end)
      for _, name in ipairs({ "y", "dx", "dw" }) do
        local e = relative_error(got[name], ref[name])
        local what = ("%s of x %s"):format(name, table.concat(c[1], "x"))
        assert.is_true(e < 1.5e-2, ("%s: %g"):format(what, e))
        assert.is_true(e > 1e-4, ("%s: bf16 ran (%g)"):format(what, e))
      end
      -- the bias gradient is a sum of float32 values: no bf16 in it
      helpers.assert_close(got.db, ref.db:to("cpu"), 1e-5, 1e-5, "bias gradient")
    end
  end)

  it("bf16 weight gradients and products are the same, bit for bit, with 1 or 2 threads", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    local x = helpers.random({ 11, 16, 8, 8 }, 81, nil, -1, 1)
    local w = helpers.random({ 16, 16, 3, 3 }, 82, nil, -1, 1)
    local dy = helpers.random({ 11, 16, 8, 8 }, 83, nil, -1, 1)
    local fx, fw, fdy = helpers.random({ 64, 1500 }, 84), helpers.random({ 700, 1500 }, 85), helpers.random({ 64, 700 }, 86)
    local grads = {}
    local before = lunet.get_num_threads()
    for _, threads in ipairs({ 1, 2 }) do
      lunet.set_num_threads(threads)
      grads[threads] = at("avx512bf16", "bfloat16", function()
        local gw = lunet.zeros(w:shape())
        core.conv2d_backward_filter(x, dy, gw, nil, 1, 1, 1, 1, false)
        local lw = lunet.zeros(fw:shape())
        core.linear_backward_filter(fx, fdy, lw, nil, false)
        return { gw, lw, core.linear_forward(fx, fw), core.linear_backward_data(fdy, fw) }
      end)
    end
    lunet.set_num_threads(before)
    helpers.assert_close(grads[2][1], grads[1][1], 0, 0, "convolution weight gradient")
    helpers.assert_close(grads[2][2], grads[1][2], 0, 0, "linear weight gradient")
    helpers.assert_close(grads[2][3], grads[1][3], 0, 0, "linear forward")
    helpers.assert_close(grads[2][4], grads[1][4], 0, 0, "linear input gradient")
  end)

  it("below avx512bf16 the setting changes nothing: float32 results, bit for bit", function()
    local x, w = helpers.random({ 4, 16, 9, 9 }, 91, nil, -1, 1), helpers.random({ 24, 16, 3, 3 }, 92, nil, -1, 1)
    local a, b = helpers.random({ 40, 1100 }, 93), helpers.random({ 1100, 90 }, 94)
    for _, level in ipairs(lunet.cpu_levels()) do
      if level ~= "avx512bf16" then
        local y32, m32 = at(level, "float32", function() return core.conv2d_forward(x, w, nil, 1, 1, 1, 1), lunet.matmul(a, b) end)
        local y16, m16 = at(level, "bfloat16", function() return core.conv2d_forward(x, w, nil, 1, 1, 1, 1), lunet.matmul(a, b) end)
        helpers.assert_close(y16, y32, 0, 0, level .. " convolution")
        helpers.assert_close(m16, m32, 0, 0, level .. " product")
      end
    end
  end)

  it("parameters, gradients and Adam's state stay float32; a bf16 step follows the float32 one", function()
    local function steps(precision)
      lunet.manual_seed(5)
      local model = lunet.models.fashion_alexnet()
      local opt = lunet.optim.Adam(model, { lr = 1e-3 })
      local crit = lunet.nn.CrossEntropyLoss()
      local x = helpers.random({ 16, 1, 28, 28 }, 95, nil, 0, 1)
      local labels = {}
      for j = 1, 16 do labels[j] = j % 10 + 1 end
      local y = lunet.tensor(labels, { dtype = "int32" })
      local losses = {}
      local level = lunet.cpu_levels()[#lunet.cpu_levels()]
      at(level, precision, function()
        for s = 1, 3 do
          opt:zero_grad()
          local out = model:forward(x)
          losses[s] = crit:forward(out, y)
          model:backward(x, crit:backward(out, y))
          opt:step()
        end
      end)
      local params, grads = model:parameters()
      for i, p in ipairs(params) do
        assert.equal("float32", p:dtype())
        assert.equal("float32", grads[i]:dtype())
      end
      return losses
    end
    local l32, l16 = steps("float32"), steps("bfloat16")
    for s = 1, 3 do
      assert.is_true(math.abs(l16[s] - l32[s]) < 2e-2 * math.abs(l32[s]),
        ("step %d: loss %g in bf16, %g in float32"):format(s, l16[s], l32[s]))
    end
  end)
end)
