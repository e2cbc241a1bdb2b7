-- lunet.autocast / lunet.precision (API.md "Precision") and the CPU's bf16
-- products (csrc/cpu/bf16.c, winograd.c), which run at the avx512bf16 kernel
-- level; below it the CPU computes in float32 whatever the setting. In bf16
-- mode products under 2^20 multiply-adds, and convolutions that are neither
-- Winograd's nor the fused first block's direct kernel (few taps, strides:
-- memory-bound here), stay float32.
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
--    F(4x4, 3x3)'s forward (winograd4.c; channels in multiples of 16) has
--    larger transformed tiles, whose rounding grows ~4x: measured 7.9e-3 to
--    1.6e-2 normwise (bench/winograd_accuracy.lua --table, bench/NOTES.md),
--    so its outputs are held to 3e-2 against the reference; and to 1e-5
--    against an emulation of F(4x4) with bf16-rounded V and U (below; V
--    from float32 computed in the kernel's order, so it rounds to the same
--    bf16): they differ by the float32 rounding of the sums (measured 2e-7
--    to 3e-7), while the float32 convolution is ~1e-2 away.
--  - F(2x2)'s weight gradient in bf16 (winograd.c's backward) is held to 1e-5
--    against an emulation with V and dM computed in float32 in the kernel's
--    order and rounded to bf16, the products summed tile by tile in double
--    (below): measured 0.8e-7 to 1.4e-7 apart, while the float32 gradient
--    is ~4e-3 away and a tile lost, paired with the wrong partner or
--    rounded by truncation 9e-3 to 0.4 (mutations tried on winograd.c).
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

local function f32(v) return (string.unpack("<f", string.pack("<f", v))) end

--- A double rounded to float32, then to bf16 (nearest, ties to even).
local function round_bf16(v)
  local u = string.unpack("<I4", string.pack("<f", v))
  u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
  return (string.unpack("<f", string.pack("<I4", u)))
end

-- winograd4.c's F(4x4, 3x3) matrices (interpolation points 0, -1, 1, 1/2, -2)
local BT4 = { { 1, -1.5, -2, 1.5, 1, 0 }, { 0, 1, -2.5, 0.5, 1, 0 }, { 0, -1, 0.5, 2.5, 1, 0 },
  { 0, -2, -1, 2, 1, 0 }, { 0, 0.5, -1, -0.5, 1, 0 }, { 0, 1, -1.5, -2, 1.5, 1 } }
local G4 = { { 1, 0, 0 }, { -1 / 3, 1 / 3, -1 / 3 }, { 1 / 3, 1 / 3, 1 / 3 }, { -16 / 15, -8 / 15, -4 / 15 },
  { 1 / 15, -2 / 15, 4 / 15 }, { 0, 0, 1 } }
local AT4 = { { 1, 1, 1, 1, 1, 0 }, { 0, -1, 1, 0.5, -2, 0 }, { 0, 1, 1, 0.25, 4, 0 }, { 0, -1, 1, 0.125, -8, 1 } }

--- a b^T for tables of rows (a [i][q], b [j][q]).
local function times_transposed(a, b)
  local out = {}
  for i = 1, #a do
    out[i] = {}
    for j = 1, #b do
      local acc = 0
      for q = 1, #b[1] do acc = acc + a[i][q] * b[j][q] end
      out[i][j] = acc
    end
  end
  return out
end

--- L m R^T for tables of rows: L (R m^T)^T.
local function sandwich(l, m, r)
  return times_transposed(l, times_transposed(r, m))
end

--- winograd4.c's row_times in float32: sum of row[j] in[j], zeros skipped,
-- ones added, other entries by fused multiply-adds, in its order.
local function row_times(row, v)
  local acc
  for j = 1, 6 do
    local a = row[j]
    if a ~= 0 then
      if not acc then
        acc = a == 1 and v[j] or f32(a * v[j])
      elseif a == 1 or a == -1 then
        acc = f32(acc + a * v[j])
      else
        acc = f32(a * v[j] + acc)
      end
    end
  end
  return acc
end

--- out[s][i] = (B^T m)[i][s]: B^T down each column of m, in float32.
local function transform_columns(m)
  local out = {}
  for s = 1, 6 do
    local column = {}
    for r = 1, 6 do column[r] = m[r][s] end
    out[s] = {}
    for i = 1, 6 do out[s][i] = row_times(BT4[i], column) end
  end
  return out
end

--- B^T d B in float32 as winograd4.c's input transform computes it (down
-- the columns, then along the rows), so that V rounds to the same bf16.
local function input_transform(d)
  return transform_columns(transform_columns(d))
end

--- The stride-1 3x3 convolution (+ bias) by F(4x4, 3x3) with V and U rounded
-- to bf16 (V from float32 as winograd4.c computes it) and everything else in
-- double: what winograd4.c's bf16 forward computes, but for the float32
-- rounding of its sums.
local function winograd4_bf16(x, w, b, pad)
  local n, c, h, wd = table.unpack(x:shape())
  local k = w:size(1)
  local xs, ws, bs = x:reshape({ -1 }):totable(), w:reshape({ -1 }):totable(), b and b:totable()
  local p, q = h + 2 * pad - 2, wd + 2 * pad - 2
  local u = {} -- u[ci][co][xi]
  for ci = 1, c do
    u[ci] = {}
    for co = 1, k do
      local g = {}
      for r = 1, 3 do
        g[r] = {}
        for s = 1, 3 do g[r][s] = ws[((co - 1) * c + ci - 1) * 9 + (r - 1) * 3 + s] end
      end
      local t, flat = sandwich(G4, g, G4), {}
      for a = 1, 6 do for e = 1, 6 do flat[(a - 1) * 6 + e] = round_bf16(t[a][e]) end end
      u[ci][co] = flat
    end
  end
  local y = {}
  local tq = (q + 3) // 4
  for img = 1, n do
    for tile = 0, (p + 3) // 4 * tq - 1 do
      local ti, tj, m = tile // tq, tile % tq, {} -- m[co][xi]
      for co = 1, k do m[co] = {} for xi = 1, 36 do m[co][xi] = 0 end end
      for ci = 1, c do
        local d = {}
        for r = 1, 6 do
          d[r] = {}
          for s = 1, 6 do
            local row, col = 4 * ti + r - 1 - pad, 4 * tj + s - 1 - pad
            d[r][s] = (row >= 0 and row < h and col >= 0 and col < wd)
              and xs[(((img - 1) * c + ci - 1) * h + row) * wd + col + 1] or 0
          end
        end
        local v = input_transform(d)
        for a = 1, 6 do
          for e = 1, 6 do
            local vv, xi = round_bf16(v[a][e]), (a - 1) * 6 + e
            for co = 1, k do m[co][xi] = m[co][xi] + vv * u[ci][co][xi] end
          end
        end
      end
      for co = 1, k do
        local mm = {}
        for a = 1, 6 do mm[a] = {} for e = 1, 6 do mm[a][e] = m[co][(a - 1) * 6 + e] end end
        -- the tile's outputs within [p, q]: y[img][co][4 ti + r][4 tj + s]
        local out, base = sandwich(AT4, mm, AT4), (((img - 1) * k + co - 1) * p + 4 * ti) * q + 4 * tj + 1
        for r = 1, math.min(4, p - 4 * ti) do
          for s = 1, math.min(4, q - 4 * tj) do y[base + (r - 1) * q + s - 1] = out[r][s] + (bs and bs[co] or 0) end
        end
      end
    end
  end
  return lunet.tensor(y):reshape({ n, k, p, q })
end

-- winograd.c's F(2x2, 3x3): G^T, to take dU back to the 3x3 filter gradient
local GT2 = { { 1, 0.5, 0.5, 0 }, { 0, 0.5, -0.5, 0 }, { 0, 0.5, 0.5, 1 } }

--- winograd.c's B^T d B of a 4x4 tile in float32, in its order (down the
-- columns, then along the rows): v[r][s].
local function input_transform2(d)
  local b, v = {}, {}
  for s = 1, 4 do
    b[s] = { f32(d[1][s] - d[3][s]), f32(d[2][s] + d[3][s]), f32(d[3][s] - d[2][s]), f32(d[2][s] - d[4][s]) }
  end
  for r = 1, 4 do
    v[r] = { f32(b[1][r] - b[3][r]), f32(b[2][r] + b[3][r]), f32(b[3][r] - b[2][r]), f32(b[2][r] - b[4][r]) }
  end
  return v
end

--- winograd.c's A g A^T of a 2x2 gradient tile in float32, in its order: m[r][s].
local function gradient_transform2(g00, g01, g10, g11)
  local a = { { g00, g01 }, { f32(g00 + g10), f32(g01 + g11) }, { f32(g00 - g10), f32(g01 - g11) }, { -g10, -g11 } }
  local m = {}
  for r = 1, 4 do m[r] = { a[r][1], f32(a[r][1] + a[r][2]), f32(a[r][1] - a[r][2]), -a[r][2] } end
  return m
end

--- The weight gradient [k, c, 3, 3] of the stride-1 3x3 convolution of x
-- [n, c, h, w] (padding `pad`) for the output gradient g [n, k, p, q], by
-- F(2x2, 3x3) with V and dM rounded to bf16 (both from float32 as winograd.c
-- computes them) and everything else in double: dU[xi] = sum over tiles of
-- V[xi]^T dM[xi], dw = G^T dU G; what winograd.c's bf16 backward computes,
-- but for the float32 rounding of its sums.
local function winograd2_filter_gradient_bf16(x, g, pad)
  local n, c, h, wd = table.unpack(x:shape())
  local _, k, p, q = table.unpack(g:shape())
  local xs, gs = x:reshape({ -1 }):totable(), g:reshape({ -1 }):totable()
  local tp, tq = (p + 1) // 2, (q + 1) // 2
  local du = {} -- du[(ci - 1) * k + co][xi]
  for at = 1, c * k do du[at] = {} for xi = 1, 16 do du[at][xi] = 0 end end
  local function xat(img, ci, row, col)
    return (row >= 0 and row < h and col >= 0 and col < wd) and xs[(((img - 1) * c + ci - 1) * h + row) * wd + col + 1] or 0
  end
  local function gat(img, co, row, col)
    return (row < p and col < q) and gs[(((img - 1) * k + co - 1) * p + row) * q + col + 1] or 0
  end
  for img = 1, n do
    for ti = 0, tp - 1 do
      for tj = 0, tq - 1 do
        local v, m = {}, {} -- v[ci][xi], m[co][xi], rounded
        for ci = 1, c do
          local d = {}
          for r = 1, 4 do
            d[r] = {}
            for s = 1, 4 do d[r][s] = xat(img, ci, 2 * ti + r - 1 - pad, 2 * tj + s - 1 - pad) end
          end
          local t, flat = input_transform2(d), {}
          for r = 1, 4 do for s = 1, 4 do flat[(r - 1) * 4 + s] = round_bf16(t[r][s]) end end
          v[ci] = flat
        end
        for co = 1, k do
          local t, flat = gradient_transform2(gat(img, co, 2 * ti, 2 * tj), gat(img, co, 2 * ti, 2 * tj + 1),
            gat(img, co, 2 * ti + 1, 2 * tj), gat(img, co, 2 * ti + 1, 2 * tj + 1)), {}
          for r = 1, 4 do for s = 1, 4 do flat[(r - 1) * 4 + s] = round_bf16(t[r][s]) end end
          m[co] = flat
        end
        for ci = 1, c do
          local vc = v[ci]
          for co = 1, k do
            local mc, acc = m[co], du[(ci - 1) * k + co]
            for xi = 1, 16 do acc[xi] = acc[xi] + vc[xi] * mc[xi] end
          end
        end
      end
    end
  end
  local dw = {}
  for co = 1, k do
    for ci = 1, c do
      local acc, u = du[(ci - 1) * k + co], {}
      for r = 1, 4 do u[r] = { acc[(r - 1) * 4 + 1], acc[(r - 1) * 4 + 2], acc[(r - 1) * 4 + 3], acc[(r - 1) * 4 + 4] } end
      local out, base = sandwich(GT2, u, GT2), ((co - 1) * c + ci - 1) * 9
      for r = 1, 3 do for s = 1, 3 do dw[base + (r - 1) * 3 + s] = out[r][s] end end
    end
  end
  return lunet.tensor(dw):reshape({ k, c, 3, 3 })
end

--- The pooled gradient dp [n, k, ph, pw] spread back to the convolution's
-- output [n, k, p, q] at the winners' places (codes as relu_pool's, 4: none).
local function unpool(dp, codes, p, q)
  local n, k, ph, pw = table.unpack(dp:shape())
  local ds, g = dp:reshape({ -1 }):totable(), {}
  for at = 1, n * k * p * q do g[at] = 0 end
  for plane = 0, n * k - 1 do
    for i = 0, ph - 1 do
      for j = 0, pw - 1 do
        local at = plane * ph * pw + i * pw + j + 1
        local code = codes[at]
        if code < 4 then g[plane * p * q + (2 * i + code // 2) * q + 2 * j + code % 2 + 1] = ds[at] end
      end
    end
  end
  return lunet.tensor(g):reshape({ n, k, p, q })
end

--- ReLU and 2x2 max pooling of y [n, k, p, q] in Lua, with the winners'
-- codes (backend.h: the first maximum's position, 4 when it is not positive).
local function relu_pool(y)
  local n, k, p, q = table.unpack(y:shape())
  local ys, ph, pw = y:reshape({ -1 }):totable(), p // 2, q // 2
  local values, codes = {}, {}
  for plane = 0, n * k - 1 do
    for i = 0, ph - 1 do
      for j = 0, pw - 1 do
        local best, code = nil, 0
        for e = 0, 3 do
          local v = ys[plane * p * q + (2 * i + e // 2) * q + 2 * j + e % 2 + 1]
          if not best or v > best then best, code = v, e end
        end
        local at = plane * ph * pw + i * pw + j + 1
        values[at], codes[at] = best > 0 and best or 0, best > 0 and code or 4
      end
    end
  end
  return lunet.tensor(values):reshape({ n, k, ph, pw }), codes
end

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
  -- the thread count back after every test, also after one that failed midway
  local threads_at_start = lunet.get_num_threads()
  after_each(function() lunet.set_num_threads(threads_at_start) end)

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
        -- y: F(4x4)'s forward where both channel counts are multiples of 16
        -- (see the top: ~4x F(2x2)'s error); F(2x2) keeps the tighter bound
        local four = name == "y" and c[1][2] % 16 == 0 and c[2][1] % 16 == 0
        assert.is_true(e < (four and 3e-2 or 1.5e-2), ("%s: %g"):format(what, e))
        assert.is_true(e > 1e-4, ("%s: bf16 ran (%g)"):format(what, e))
      end
      -- the bias gradient is a sum of float32 values: no bf16 in it
      helpers.assert_close(got.db, ref.db:to("cpu"), 1e-5, 1e-5, "bias gradient")
    end
  end)

  it("Winograd F(4x4)'s forward in bf16 is F(4x4) of the bf16-rounded transforms (odd shapes, blocks, threads)", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    -- batch 1 (one tile row short), 11x13 (tiles cut on both sides; 5 images:
    -- a full chunk of 4 and a partial one), 9x9 with padding 2 (7 images: 5 and
    -- 2), 48 -> 16 channels: odd pairs of 16-channel blocks
    local before = lunet.get_num_threads()
    for i, c in ipairs({ { { 1, 16, 6, 7 }, { 16, 16, 3, 3 }, 1 }, { { 5, 16, 11, 13 }, { 32, 16, 3, 3 }, 1 },
                         { { 7, 32, 9, 9 }, { 16, 32, 3, 3 }, 2 }, { { 3, 48, 6, 6 }, { 16, 48, 3, 3 }, 0 } }) do
      local x = helpers.random(c[1], 120 + i, nil, -1, 1)
      local w = helpers.random(c[2], 130 + i, nil, -0.3, 0.3)
      local b = helpers.random({ c[2][1] }, 140 + i, nil, -1, 1)
      local pad, what = c[3], table.concat(c[1], "x")
      local want = winograd4_bf16(x, w, b, pad)
      local ref = core.conv2d_forward(x:to("ref"), w:to("ref"), b:to("ref"), 1, 1, pad, pad)
      -- the check tells bf16's rounding of the transforms from float32's
      assert.is_true(relative_error(ref, want) > 1e-3, what .. ": float32 is far from the emulation")
      local first
      for _, threads in ipairs({ 1, 2 }) do
        lunet.set_num_threads(threads)
        local y, pooled, winner, values = at("avx512bf16", "bfloat16", function()
          local yy = core.conv2d_forward(x, w, b, 1, 1, pad, pad)
          local pp, ww = core.conv_block_forward(x, w, b, 1, 1, pad, pad)
          return { yy, pp, ww, (core.conv_block_forward(x, w, b, 1, 1, pad, pad, nil, false)) }
        end), nil
        y, pooled, winner, values = y[1], y[2], y[3], y[4]
        local e = relative_error(y, want)
        assert.is_true(e < 1e-5, ("%s, %d threads: %g from the emulation"):format(what, threads, e))
        assert.is_true(relative_error(y, ref) < 3e-2, what .. ": within F(4x4)-bf16's error of float32")
        -- the fused block pools these very outputs: exactly, with and without winners
        local pooled_want, codes = relu_pool(y)
        helpers.assert_close(pooled, pooled_want, 0, 0, what .. ": pooled")
        helpers.assert_close(values, pooled_want, 0, 0, what .. ": pooled without winners")
        assert.same(codes, winner:to("float32"):reshape({ -1 }):totable(), what .. ": winners")
        first = first or y
        helpers.assert_close(y, first, 0, 0, what .. ": the same with 1 and 2 threads")
      end
    end
    lunet.set_num_threads(before)
  end)

  it("the first block's direct kernel in bf16 is the float32 block of the bf16-rounded inputs and weights (1-3 channels, odd widths, padding, threads)", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    -- conv_pool_direct.c: taps in pairs (5, 9 and 14 of them), pooled widths
    -- of 14 (the seed), 6 and 17 (two segments, the second of one lane), an
    -- odd output height, padding 0 to 2
    local before = lunet.get_num_threads()
    for i, c in ipairs({ { { 5, 1, 28, 28 }, 64, 1 }, { { 3, 2, 9, 13 }, 16, 1 }, { { 2, 3, 20, 35 }, 8, 2 },
                         { { 4, 1, 7, 6 }, 5, 0 } }) do
      local x = helpers.random(c[1], 150 + i, nil, -1, 1)
      local w = helpers.random({ c[2], c[1][2], 3, 3 }, 160 + i, nil, -0.5, 0.5)
      local b = helpers.random({ c[2] }, 170 + i, nil, -0.5, 0.5)
      local pad, what = c[3], table.concat(c[1], "x")
      -- the same sums of the same products, in another order
      local want, want_codes = core.conv_block_forward(bf16(x):to("ref"), bf16(w):to("ref"), b:to("ref"), 1, 1, pad, pad)
      local float32 = core.conv_block_forward(x, w, b, 1, 1, pad, pad)
      local first
      for _, threads in ipairs({ 1, 2 }) do
        lunet.set_num_threads(threads)
        local r = at("avx512bf16", "bfloat16", function()
          local pooled, winner = core.conv_block_forward(x, w, b, 1, 1, pad, pad)
          return { pooled, winner, (core.conv_block_forward(x, w, b, 1, 1, pad, pad, nil, false)) }
        end)
        local e = relative_error(r[1], want)
        assert.is_true(e < 1e-5, ("%s, %d threads: %g from the emulation"):format(what, threads, e))
        assert.is_true(relative_error(r[1], float32) > 1e-4, what .. ": bf16 ran")
        assert.same(want_codes:to("float32"):reshape({ -1 }):totable(), r[2]:to("float32"):reshape({ -1 }):totable(),
          what .. ": winners")
        helpers.assert_close(r[3], r[1], 0, 0, what .. ": pooled without winners")
        first = first or r[1]
        helpers.assert_close(r[1], first, 0, 0, what .. ": the same with 1 and 2 threads")
      end
    end
    lunet.set_num_threads(before)
  end)

  it("F(4x4)'s cached filters: float32 and bf16 calls never get each other's, and follow changed weights", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    local x, weights = helpers.random({ 2, 16, 8, 8 }, 151, nil, -1, 1), {}
    for i = 1, 2 do weights[i] = helpers.random({ 16, 16, 3, 3 }, 151 + i, nil, -0.3, 0.3) end
    local wa, wb = weights[1], weights[2]
    local function conv(precision, w)
      return at("avx512bf16", precision, function() return core.conv2d_forward(x, w, nil, 1, 1, 1, 1) end)
    end
    local function matches_emulation(y, w, what)
      local e = relative_error(y, winograd4_bf16(x, w, nil, 1))
      assert.is_true(e < 1e-5, ("%s: %g from the emulation"):format(what, e))
    end
    matches_emulation(conv("bfloat16", wa), wa, "first bf16 call")
    local b32 = conv("float32", wb) -- new weights: U made again, without pairs
    matches_emulation(conv("bfloat16", wb), wb, "bf16 after float32 on other weights")
    helpers.assert_close(conv("float32", wb), b32, 0, 0, "float32 after bf16 on the same weights")
    assert.is_true(relative_error(b32, core.conv2d_forward(x:to("ref"), wb:to("ref"), nil, 1, 1, 1, 1)) < 1e-5,
      "the float32 call computes in float32")
    wb:reshape({ -1 }):set(2, 100) -- one element, in place
    matches_emulation(conv("bfloat16", wb), wb, "bf16 after one weight changed")
    wb:mul_(0.5)
    matches_emulation(conv("bfloat16", wb), wb, "bf16 after all weights changed")
  end)

  it("Winograd F(2x2)'s bf16 weight gradient is the sum of the bf16-rounded transforms' products, tile by tile (odd tile counts, fused block, threads)", function()
    if not bf16_level then pending("this CPU has no AVX512-BF16") return end
    -- The products pair tiles 2t and 2t + 1 (winograd.c, AS_PAIRS); chunks of
    -- images (49 tiles or fewer) per group of images (at most 8 groups):
    -- 6x10, 32 images: 15 tiles an image, groups of 4 images in chunks of 3
    -- and 1 (45 and 15 tiles: odd, pairs across images, a group's second
    -- chunk adding to its first), accumulated onto dw; 14x14 as block 2,
    -- through the fused block's unpooling too: one image a chunk, 49 tiles;
    -- 7x8 with padding 2: 25 tiles, channels 24 and 40 (not multiples of 16);
    -- 8x10 without padding: 12 tiles, an even count.
    local before = lunet.get_num_threads()
    for i, c in ipairs({ { { 32, 16, 6, 10 }, 16, 1 }, { { 3, 16, 14, 14 }, 32, 1 }, { { 5, 24, 7, 8 }, 40, 2 },
                         { { 9, 32, 8, 10 }, 16, 0 } }) do
      local x = helpers.random(c[1], 160 + i, nil, -1, 1)
      local w = helpers.random({ c[2], c[1][2], 3, 3 }, 170 + i, nil, -0.3, 0.3)
      local pad, what = c[3], table.concat(c[1], "x")
      local y = core.conv2d_forward(x:to("ref"), w:to("ref"), nil, 1, 1, pad, pad)
      local dy = helpers.random(y:shape(), 180 + i, nil, -1, 1)
      local want = winograd2_filter_gradient_bf16(x, dy, pad)
      local ref = lunet.zeros(w:shape(), { device = "ref" })
      core.conv2d_backward_filter(x:to("ref"), dy:to("ref"), ref, nil, 1, 1, pad, pad, false)
      -- the check tells bf16's rounding of the transforms from float32's
      assert.is_true(relative_error(ref, want) > 1e-4, what .. ": float32 is far from the emulation")
      local accumulate, first = i == 1, nil
      for _, threads in ipairs({ 1, 2 }) do
        lunet.set_num_threads(threads)
        local dw = at("avx512bf16", "bfloat16", function()
          local gw = accumulate and lunet.full(w:shape(), 0.5) or lunet.zeros(w:shape())
          core.conv2d_backward_filter(x, dy, gw, nil, 1, 1, pad, pad, accumulate)
          return accumulate and gw - 0.5 or gw
        end)
        local e = relative_error(dw, want)
        assert.is_true(e < 1e-5, ("%s, %d threads: %g from the emulation"):format(what, threads, e))
        first = first or dw
        helpers.assert_close(dw, first, 0, 0, what .. ": the same with 1 and 2 threads")
      end
      if i == 2 then
        -- the fused block: its output gradient is the pooled one at the winners
        local fw, dx
        local pooled, winner = at("avx512bf16", "bfloat16", function() return core.conv_block_forward(x, w, nil, 1, 1, pad, pad) end)
        local dp = helpers.random(pooled:shape(), 190, nil, -1, 1)
        local g = unpool(dp, winner:to("float32"):reshape({ -1 }):totable(), y:size(3), y:size(4))
        fw, dx = at("avx512bf16", "bfloat16", function()
          local gw, gx = lunet.zeros(w:shape()), lunet.empty(x:shape())
          core.conv_block_backward(x, w, dp, winner, 1, 1, pad, pad, gx, gw, nil, false)
          return gw, gx
        end)
        local e = relative_error(fw, winograd2_filter_gradient_bf16(x, g, pad))
        assert.is_true(e < 1e-5, ("%s fused block: %g from the emulation"):format(what, e))
        -- its input gradient (bf16 V of the data pass) within bf16's error
        local rx = core.conv2d_backward_data(x:to("ref"), w:to("ref"), g:to("ref"), 1, 1, pad, pad)
        local ex = relative_error(dx, rx)
        assert.is_true(ex < 1.5e-2 and ex > 1e-4, ("%s fused block input gradient: %g"):format(what, ex))
      end
    end
    lunet.set_num_threads(before)
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
    -- w: F(2x2) (24 filters); w4: F(4x4) at the AVX-512 levels (32 filters)
    local x, w = helpers.random({ 4, 16, 9, 9 }, 91, nil, -1, 1), helpers.random({ 24, 16, 3, 3 }, 92, nil, -1, 1)
    local w4 = helpers.random({ 32, 16, 3, 3 }, 95, nil, -1, 1)
    local a, b = helpers.random({ 40, 1100 }, 93), helpers.random({ 1100, 90 }, 94)
    -- one input channel: the direct kernel at the AVX-512 levels
    local x1, w1 = helpers.random({ 4, 1, 12, 12 }, 96, nil, -1, 1), helpers.random({ 8, 1, 3, 3 }, 97, nil, -1, 1)
    local function run()
      return { core.conv2d_forward(x, w, nil, 1, 1, 1, 1), lunet.matmul(a, b), core.conv2d_forward(x, w4, nil, 1, 1, 1, 1),
        (core.conv_block_forward(x, w4, nil, 1, 1, 1, 1)), (core.conv_block_forward(x1, w1, nil, 1, 1, 1, 1)) }
    end
    for _, level in ipairs(lunet.cpu_levels()) do
      if level ~= "avx512bf16" then
        local r32, r16 = at(level, "float32", run), at(level, "bfloat16", run)
        helpers.assert_close(r16[1], r32[1], 0, 0, level .. " convolution")
        helpers.assert_close(r16[2], r32[2], 0, 0, level .. " product")
        helpers.assert_close(r16[3], r32[3], 0, 0, level .. " convolution (F(4x4) at AVX-512)")
        helpers.assert_close(r16[4], r32[4], 0, 0, level .. " fused block (F(4x4) at AVX-512)")
        helpers.assert_close(r16[5], r32[5], 0, 0, level .. " fused block of one input channel (direct at AVX-512)")
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
