-- The CPU backend's fast paths (csrc/cpu/) against the reference device, on
-- the inputs that break them: ties and NaN in pooling windows, products cut
-- into one block per thread, batches smaller than the thread count, and the
-- exact shapes of the session's model. spec/10 covers the layers on odd
-- shapes; this file covers what the fast kernels add.
local lunet = require("lunet")
local core = require("lunet.core")
local helpers = require("helpers")

local integers = helpers.integers

local function with_threads(n, fn)
  local before = lunet.get_num_threads()
  lunet.set_num_threads(n)
  local ok, err = pcall(fn)
  lunet.set_num_threads(before)
  if not ok then error(err, 0) end
end

describe("cpu kernel levels (runtime dispatch)", function()
  it("lists the levels this CPU runs, portable first, and switches between them", function()
    local levels = lunet.cpu_levels()
    assert.equal("portable", levels[1])
    local before = lunet.set_cpu_level("portable")
    assert.equal("portable", lunet.device("cpu"):info().kernels:match("^[^,]+"))
    for _, level in ipairs(levels) do
      lunet.set_cpu_level(level)
      assert.equal(level, lunet.device("cpu"):info().kernels:match("^[^,]+"))
    end
    lunet.set_cpu_level(before)
    local ok, err = pcall(lunet.set_cpu_level, "sse9")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("lunet.set_cpu_level: cpu kernel level 'sse9': unknown", 1, true), err)
  end)

  it("$LUNET_CPU_LEVEL picks the level at load time; a bad one fails to load, saying why", function()
    local levels = lunet.cpu_levels()
    local best = levels[#levels]
    local ok, out = helpers.run_child([[print(require("lunet").device("cpu"):info().kernels)]])
    assert.is_true(ok, out)
    assert.truthy(out:find(best, 1, true), out)
    ok, out = helpers.run_child([[print(require("lunet").device("cpu"):info().kernels)]],
      { prefix = "LUNET_CPU_LEVEL=portable" })
    assert.is_true(ok, out)
    assert.truthy(out:find("portable", 1, true), out)
    ok, out = helpers.run_child([[require("lunet")]], { prefix = "LUNET_CPU_LEVEL=sse9" })
    assert.is_false(ok)
    assert.truthy(out:find("cpu kernel level 'sse9': unknown", 1, true), out)
  end)
end)

local product_expected = {}

-- Every test below runs at every level this CPU has (portable, avx2, avx512,
-- avx512bf16): each is a separate set of kernels (csrc/cpu/dispatch.c).
for _, level in ipairs(lunet.cpu_levels()) do
describe(("cpu fast paths against the reference, %s kernels"):format(level), function()
  local level_before
  setup(function() level_before = lunet.set_cpu_level(level) end)
  teardown(function() lunet.set_cpu_level(level_before) end)

  it("2x2 max pooling with ties and ReLU zeros: the first maximum wins", function()
    for _, shape in ipairs({ { 2, 3, 6, 40 }, { 1, 2, 9, 37 }, { 3, 4, 14, 14 }, { 1, 1, 3, 3 } }) do
      local x = integers(shape, 5, -2, 2)
      local relu = x:clone()
      core.relu_forward(x, relu)
      for _, input in ipairs({ x, relu }) do
        local y = core.pool2d_forward("max", input, 2, 2, 2, 2, 0, 0)
        local dy = helpers.random(y:shape(), 9, nil, -1, 1)
        local dx = core.pool2d_backward("max", input, y, dy, 2, 2, 2, 2, 0, 0)
        local ri = input:to("ref")
        local ry = core.pool2d_forward("max", ri, 2, 2, 2, 2, 0, 0)
        local rdx = core.pool2d_backward("max", ri, ry, dy:to("ref"), 2, 2, 2, 2, 0, 0)
        helpers.assert_close(y, ry, 0, 0, "forward " .. table.concat(shape, "x"))
        helpers.assert_close(dx, rdx, 0, 0, "backward " .. table.concat(shape, "x"))
      end
    end
  end)

  it("2x2 max pooling: NaN anywhere in a window of a long row wins it", function()
    local x = helpers.random({ 1, 1, 4, 34 }, 3, nil, -1, 1)
    local nan = 0 / 0
    for _, at in ipairs({ { 1, 1 }, { 1, 4 }, { 2, 17 }, { 2, 18 }, { 3, 33 }, { 4, 34 }, { 4, 19 } }) do
      x:set(nan, 1, 1, at[1], at[2])
    end
    local y = core.pool2d_forward("max", x, 2, 2, 2, 2, 0, 0)
    local dy = lunet.ones(y:shape())
    local dx = core.pool2d_backward("max", x, y, dy, 2, 2, 2, 2, 0, 0)
    local ry = core.pool2d_forward("max", x:to("ref"), 2, 2, 2, 2, 0, 0)
    local rdx = core.pool2d_backward("max", x:to("ref"), ry, dy:to("ref"), 2, 2, 2, 2, 0, 0)
    local a, e = y:reshape({ -1 }):totable(), ry:to("cpu"):reshape({ -1 }):totable()
    local nans = 0
    for i = 1, #e do
      if e[i] ~= e[i] then
        nans = nans + 1
        assert.is_true(a[i] ~= a[i], "window " .. i .. " should be NaN")
      else
        assert.equal(e[i], a[i])
      end
    end
    assert.equal(5, nans)
    helpers.assert_close(dx, rdx, 0, 0, "backward")
  end)

  --- Forward, input gradient and parameter gradients of one convolution on
  -- the cpu and the reference, with the worst normwise relative error.
  local function conv_against_ref(xshape, wshape, stride, pad, threads, forward_rtol)
    local x = helpers.random(xshape, 21, nil, -1, 1)
    local w = helpers.random(wshape, 22, nil, -0.5, 0.5)
    local b = helpers.random({ wshape[1] }, 23, nil, -0.5, 0.5)
    local results = {}
    for _, dev in ipairs({ "ref", "cpu" }) do
      local run = function()
        local dx_, dw_, db_ = x:to(dev), w:to(dev), b:to(dev)
        local y = core.conv2d_forward(dx_, dw_, db_, stride[1], stride[2], pad[1], pad[2])
        local dy = helpers.random(y:shape(), 24, nil, -1, 1):to(dev)
        local gx = core.conv2d_backward_data(dx_, dw_, dy, stride[1], stride[2], pad[1], pad[2])
        local gw, gb = lunet.full(wshape, 0.25, { device = dev }), lunet.full({ wshape[1] }, 0.5, { device = dev })
        core.conv2d_backward_filter(dx_, dy, gw, gb, stride[1], stride[2], pad[1], pad[2], true)
        results[dev] = { y = y, gx = gx, gw = gw, gb = gb }
      end
      if dev == "cpu" then with_threads(threads, run) else run() end
    end
    for _, name in ipairs({ "y", "gx", "gw", "gb" }) do
      local e = results.ref[name]
      local scale = math.max(math.abs(e:max()), math.abs(e:min()), 1e-6)
      local rel = name == "y" and forward_rtol or 2e-6
      helpers.assert_close(results.cpu[name], e, 1e-5, rel * scale,
        ("%s of x %s, w %s, %d threads"):format(name, table.concat(xshape, "x"), table.concat(wshape, "x"), threads))
    end
  end

  it("convolutions with few taps (the register-blocked kernels)", function()
    conv_against_ref({ 3, 1, 28, 28 }, { 64, 1, 3, 3 }, { 1, 1 }, { 1, 1 }, 2) -- the seed's first layer
    conv_against_ref({ 1, 1, 28, 28 }, { 64, 1, 3, 3 }, { 1, 1 }, { 1, 1 }, 2) -- batch 1, two threads
    conv_against_ref({ 2, 3, 9, 31 }, { 7, 3, 3, 2 }, { 2, 1 }, { 2, 0 }, 2)   -- tails of rows and columns
    conv_against_ref({ 5, 2, 6, 7 }, { 5, 2, 1, 1 }, { 1, 1 }, { 0, 0 }, 2)    -- 1x1: the image as columns
  end)

  it("convolutions through BLAS, one image per thread at a time", function()
    conv_against_ref({ 2, 64, 14, 14 }, { 128, 64, 3, 3 }, { 1, 1 }, { 1, 1 }, 2) -- the seed's second layer
    conv_against_ref({ 3, 13, 11, 10 }, { 10, 13, 3, 2 }, { 2, 2 }, { 2, 1 }, 2)
    conv_against_ref({ 3, 13, 11, 10 }, { 10, 13, 3, 2 }, { 2, 2 }, { 2, 1 }, 1)
    conv_against_ref({ 9, 40, 5, 5 }, { 6, 40, 1, 1 }, { 1, 1 }, { 0, 0 }, 2)  -- 1x1 with many channels
  end)

  it("Winograd F(2x2, 3x3): 3x3, stride 1, channels in multiples of 8", function()
    conv_against_ref({ 3, 16, 9, 7 }, { 24, 16, 3, 3 }, { 1, 1 }, { 1, 1 }, 2)   -- odd output: partial tiles
    conv_against_ref({ 2, 32, 8, 10 }, { 16, 32, 3, 3 }, { 1, 1 }, { 0, 0 }, 2)  -- no padding
    conv_against_ref({ 1, 16, 5, 6 }, { 16, 16, 3, 3 }, { 1, 1 }, { 2, 2 }, 2)   -- padding 2, batch 1
    conv_against_ref({ 2, 16, 6, 6 }, { 24, 16, 3, 3 }, { 1, 1 }, { 2, 0 }, 1)   -- padding {2, 0}
    conv_against_ref({ 29, 16, 4, 4 }, { 16, 16, 3, 3 }, { 1, 1 }, { 1, 1 }, 2)  -- a last, shorter chunk
    conv_against_ref({ 5, 16, 4, 4 }, { 16, 16, 3, 3 }, { 1, 1 }, { 1, 1 }, 2)   -- fewer images than a chunk
  end)

  it("Winograd F(4x4, 3x3) forward (AVX-512 levels): channels in multiples of 16, odd shapes", function()
    -- F(4x4)'s rounding error is a few times F(2x2)'s (bench/winograd_accuracy.lua:
    -- 1-2.5e-6 of the output's largest magnitude), so its forward gets 1e-5 of it;
    -- the backward passes are F(2x2)'s and keep 2e-6
    conv_against_ref({ 3, 16, 11, 13 }, { 32, 16, 3, 3 }, { 1, 1 }, { 1, 1 }, 2, 1e-5) -- partial tiles both ways
    conv_against_ref({ 1, 32, 6, 6 }, { 16, 32, 3, 3 }, { 1, 1 }, { 0, 0 }, 1, 1e-5)   -- one 4x4 tile
    conv_against_ref({ 7, 16, 9, 9 }, { 16, 16, 3, 3 }, { 1, 1 }, { 2, 2 }, 2, 1e-5)   -- 11x11, a short last chunk
    conv_against_ref({ 2, 16, 5, 6 }, { 48, 16, 3, 3 }, { 1, 1 }, { 2, 0 }, 2, 1e-5)   -- padding {2, 0}
    conv_against_ref({ 4, 64, 14, 14 }, { 128, 64, 3, 3 }, { 1, 1 }, { 1, 1 }, 2, 1e-5) -- the seed's second layer
  end)

  it("Winograd F(4x4)'s cached filter transform follows weights changed in place", function()
    local x = helpers.random({ 2, 16, 8, 8 }, 41, nil, -1, 1)
    local w = helpers.random({ 16, 16, 3, 3 }, 42, nil, -1, 1)
    local function check(what)
      local y = core.conv2d_forward(x, w, nil, 1, 1, 1, 1)
      local e = core.conv2d_forward(x:to("ref"), w:to("ref"), nil, 1, 1, 1, 1)
      local scale = math.max(math.abs(e:max()), math.abs(e:min()))
      helpers.assert_close(y, e, 1e-5, 1e-5 * scale, what)
    end
    check("first call")
    check("same weights again")
    w:reshape({ -1 }):set(5, 100) -- one element of one filter, in place
    check("after one weight changed")
    w:mul_(0.5)
    check("after all weights changed")
    local w2 = helpers.random({ 32, 16, 3, 3 }, 43, nil, -1, 1) -- another shape between
    core.conv2d_forward(x, w2, nil, 1, 1, 1, 1)
    check("after another layer's weights")
  end)

  it("Winograd F(4x4)'s filter cache keeps several layers, and drops them right", function()
    -- more layers than the cache has slots (8), taking turns, one changed in
    -- place between rounds, two with the same shape and the same weights
    local x = helpers.random({ 2, 16, 8, 8 }, 51, nil, -1, 1)
    local layers = {}
    for i = 1, 10 do layers[i] = helpers.random({ 16 * (1 + i % 2), 16, 3, 3 }, 60 + i, nil, -1, 1) end
    layers[11] = layers[3]:clone()
    local expected = {}
    local function expect(i)
      expected[i] = core.conv2d_forward(x:to("ref"), layers[i]:to("ref"), nil, 1, 1, 1, 1)
    end
    for i = 1, #layers do expect(i) end
    for round = 1, 3 do
      for _, count in ipairs({ 3, #layers }) do -- a few layers (all cached), then all (evictions)
        for i = 1, count do
          local y = core.conv2d_forward(x, layers[i], nil, 1, 1, 1, 1)
          local e = expected[i]
          local scale = math.max(math.abs(e:max()), math.abs(e:min()))
          helpers.assert_close(y, e, 1e-5, 1e-5 * scale, ("round %d, layer %d of %d"):format(round, i, count))
        end
      end
      layers[2]:reshape({ -1 }):set(7 + round, round) -- one weight of a cached layer, in place
      expect(2)
    end
  end)

  it("Winograd agrees with im2col (LUNET_CPU_WINOGRAD=0) on the seed's second layer", function()
    if not lunet.device("cpu"):info().kernels:find("winograd", 1, true) then
      pending("this build has no Winograd kernels (they need AVX2 and FMA)")
      return
    end
    local dir = helpers.tmpdir()
    local results = {}
    for _, setting in ipairs({ "1", "2", "0" }) do
      local path = ("%s/winograd-%s.lunet"):format(dir, setting)
      local ok, out = helpers.run_child(([[
        local lunet = require("lunet")
        local core = require("lunet.core")
        lunet.manual_seed(8)
        local x, w, b = lunet.rand({ 3, 64, 14, 14 }), lunet.randn({ 128, 64, 3, 3 }) * 0.05, lunet.randn({ 128 })
        local y = core.conv2d_forward(x, w, b, 1, 1, 1, 1)
        local dy = lunet.randn(y:shape())
        local dx = core.conv2d_backward_data(x, w, dy, 1, 1, 1, 1)
        local dw, db = lunet.zeros(w:shape()), lunet.zeros({ 128 })
        core.conv2d_backward_filter(x, dy, dw, db, 1, 1, 1, 1, false)
        lunet.save({ y = y, dx = dx, dw = dw, db = db }, %q)
      ]]):format(path), { prefix = "LUNET_CPU_LEVEL=" .. level .. " LUNET_CPU_WINOGRAD=" .. setting })
      assert.is_true(ok, out)
      results[setting] = lunet.load(path)
    end
    helpers.rmdir(dir)
    for _, name in ipairs({ "y", "dx", "dw" }) do
      local e = results["0"][name]
      local scale = math.max(math.abs(e:max()), math.abs(e:min()))
      for _, setting in ipairs({ "1", "2" }) do -- 1: F(4x4) forward at the AVX-512 levels; 2: F(2x2) only
        helpers.assert_close(results[setting][name], e, 1e-5, (name == "y" and 1e-5 or 2e-6) * scale,
          name .. ", LUNET_CPU_WINOGRAD=" .. setting)
        local d = (results[setting][name] - e):reshape({ -1 })
        assert.is_true(math.max(d:max(), -d:min()) > 0, name .. ": the two paths differ in rounding, so both ran")
      end
    end
    -- F(4x4) runs the forward pass at the AVX-512 levels, F(2x2) elsewhere
    local d = (results["1"].y - results["2"].y):reshape({ -1 })
    assert.equal(level:match("^avx512") ~= nil, math.max(d:max(), -d:min()) > 0,
      "the forward passes of LUNET_CPU_WINOGRAD=1 and 2 differ exactly where F(4x4) runs")
    helpers.assert_close(results["1"].dx, results["2"].dx, 0, 0, "the input gradient is F(2x2)'s in both")
  end)

  it("matrix products (Linear's three, matmul) on odd shapes, 1 and 2 threads", function()
    -- {batch, inputs, outputs}: widths that are and are not multiples of 8
    -- (the AVX-512 levels' own kernels take the first, BLAS the rest), depths
    -- over several of their depth blocks, one row, and the seed's fc1; the
    -- last, x large enough that its transposed copy is cut between threads
    for i, shape in ipairs({ { 16, 1100, 128 }, { 37, 2001, 333 }, { 13, 4097, 31 }, { 70, 129, 513 },
                             { 1, 3000, 1000 }, { 40, 1000, 64 }, { 24, 300, 200 }, { 37, 7500, 40 } }) do
      local n, fin, fout = shape[1], shape[2], shape[3]
      local x = helpers.random({ n, fin }, 100 + i, nil, -1, 1)
      local w = helpers.random({ fout, fin }, 110 + i, nil, -1, 1)
      local dy = helpers.random({ n, fout }, 120 + i, nil, -1, 1)
      local other_x = helpers.random({ n, fin }, 130 + i, nil, -1, 1)
      -- the reference's results, once for all levels
      product_expected[i] = product_expected[i] or (function()
        local xr, wr, dyr = x:to("ref"), w:to("ref"), dy:to("ref")
        local rdw = lunet.full({ fout, fin }, 0.5, { device = "ref" })
        core.linear_backward_filter(xr, dyr, rdw, nil, true)
        return { core.linear_forward(xr, wr), core.linear_backward_data(dyr, wr), rdw,
          lunet.matmul(xr, wr:reshape({ fin, fout })) }
      end)()
      local expected = product_expected[i]
      for _, threads in ipairs({ 1, 2 }) do
        with_threads(threads, function()
          -- another x first, on one thread (all of its transposed copy
          -- written): the workspace then holds other data, so a part of x's
          -- copy left unwritten shows (it would not if an earlier call had
          -- left this x's copy there)
          with_threads(1, function() core.linear_forward(other_x, w) end)
          local dw = lunet.full({ fout, fin }, 0.5)
          core.linear_backward_filter(x, dy, dw, nil, true)
          local got = { core.linear_forward(x, w), core.linear_backward_data(dy, w), dw,
            lunet.matmul(x, w:reshape({ fin, fout })) }
          for k, name in ipairs({ "forward", "input gradient", "weight gradient", "matmul" }) do
            local e = expected[k]
            local scale = math.max(math.abs(e:max()), math.abs(e:min()), 1e-6)
            helpers.assert_close(got[k], e, 1e-5, 2e-6 * scale,
              ("%s of %s, %d threads"):format(name, table.concat(shape, "x"), threads))
          end
        end)
      end
    end
  end)

  it("weight gradients are the same, bit for bit, with 1 or 2 threads", function()
    for _, shapes in ipairs({ { { 11, 1, 12, 12 }, { 8, 1, 3, 3 } }, { { 11, 6, 8, 8 }, { 9, 6, 3, 3 } },
                              { { 11, 16, 8, 8 }, { 16, 16, 3, 3 } } }) do -- small kernels, BLAS, Winograd
      local x = helpers.random(shapes[1], 31, nil, -1, 1)
      local w = helpers.random(shapes[2], 32, nil, -1, 1)
      local y = core.conv2d_forward(x, w, nil, 1, 1, 1, 1)
      local dy = helpers.random(y:shape(), 33, nil, -1, 1)
      local grads = {}
      for _, threads in ipairs({ 1, 2 }) do
        with_threads(threads, function()
          local gw, gb = lunet.zeros(shapes[2]), lunet.zeros({ shapes[2][1] })
          core.conv2d_backward_filter(x, dy, gw, gb, 1, 1, 1, 1, false)
          grads[threads] = { gw, gb }
        end)
      end
      helpers.assert_close(grads[2][1], grads[1][1], 0, 0, "weight gradient")
      helpers.assert_close(grads[2][2], grads[1][2], 0, 0, "bias gradient")
    end
  end)

  it("the thread pool: 1, 2 and 3 threads agree, and thousands of short jobs in a row finish", function()
    -- in a child under a time limit: a lost wake-up would hang, not fail
    local ok, out = helpers.run_child([[
      local lunet = require("lunet")
      local core = require("lunet.core")
      lunet.manual_seed(4)
      local x, w = lunet.randn({ 9, 16, 10, 10 }), lunet.randn({ 24, 16, 3, 3 })
      local big = lunet.randn({ 600000 })
      local results = {}
      for _, threads in ipairs({ 1, 3, 2 }) do
        lunet.set_num_threads(threads)
        local y = core.conv2d_forward(x, w, nil, 1, 1, 1, 1)
        local dw = lunet.zeros(w:shape())
        core.conv2d_backward_filter(x, y, dw, nil, 1, 1, 1, 1, false)
        results[threads] = { y = y, dw = dw, sum = big:sum(), relu = core.relu_forward(big) }
      end
      for _, threads in ipairs({ 2, 3 }) do
        for _, name in ipairs({ "y", "dw", "relu" }) do
          local d = (results[threads][name] - results[1][name]):reshape({ -1 })
          assert(d:max() == 0 and d:min() == 0, name .. " differs with " .. threads .. " threads")
        end
        assert(results[threads].sum == results[1].sum, "the sum differs")
      end
      lunet.set_num_threads(2)
      local small = lunet.randn({ 300000 })
      for _ = 1, 3000 do core.relu_forward(small, small) end
      print("done")
    ]], { prefix = "LUNET_CPU_LEVEL=" .. level .. " timeout 120" })
    assert.is_true(ok, out)
    assert.truthy(out:find("done", 1, true), out)
  end)
end)
end
