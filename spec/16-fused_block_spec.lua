-- The fused block: Sequential runs Conv2d -> ReLU -> MaxPool2d(2) as one op
-- (core.conv_block_forward/backward) where the backend has it. It must give
-- the values and gradients of the three modules run one after the other, on
-- every device, on odd shapes, with ties, zeros and NaN in the windows.
local lunet = require("lunet")
local core = require("lunet.core")
local helpers = require("helpers")
local nn = lunet.nn

local function shape_of(t) return table.concat(t:shape(), "x") end

local integers = helpers.integers

--- fn() with the cpu's kernels at `level`; the level and the thread count
-- restored after, also when fn fails.
local function at_level(level, fn)
  local threads, level_before = lunet.get_num_threads(), lunet.set_cpu_level(level)
  local ok, err = pcall(fn)
  lunet.set_num_threads(threads)
  lunet.set_cpu_level(level_before)
  if not ok then error(err, 0) end
end

-- {name, in_channels, out_channels, kernel, options, input shape}
local blocks = {
  { "the seed's first block", 1, 64, 3, { padding = 1 }, { 2, 1, 28, 28 } },
  { "the seed's second block", 64, 128, 3, { padding = 1 }, { 2, 64, 14, 14 } },
  { "batch 1, odd output (7x5 before pooling)", 3, 5, 3, { padding = 1 }, { 1, 3, 7, 5 } },
  { "kernel {3, 2}, stride 2, padding 2, 13 channels", 13, 10, { 3, 2 }, { stride = 2, padding = 2 },
    { 3, 13, 11, 10 } },
  { "1x1 convolution", 6, 9, 1, {}, { 3, 6, 9, 8 } },
  { "Winograd on the cpu, odd output (9x7 before pooling)", 16, 24, 3, { padding = 1 }, { 3, 16, 9, 7 } },
  { "no bias, non-square", 2, 3, { 2, 3 }, { bias = false, padding = { 0, 1 } }, { 2, 2, 9, 17 } },
  -- the cpu's direct kernel (conv_pool_direct.c, AVX-512 levels: 3x3, stride 1, 1-3 channels)
  { "3x3, 2 channels, no padding, 20 pooled columns (two strips of 16)", 2, 7, 3, {}, { 2, 2, 9, 42 } },
  { "3x3, 1 channel, padding 2, odd sizes", 1, 5, 3, { padding = 2 }, { 3, 1, 7, 33 } },
  { "3x3, 3 channels, padding {0, 2}, no bias", 3, 4, 3, { padding = { 0, 2 }, bias = false }, { 2, 3, 12, 5 } },
  -- Winograd F(4x4, 3x3) on the cpu's AVX-512 levels: partial tiles, windows cut by them
  { "Winograd F(4x4): 16 -> 32 channels, 11x13 input", 16, 32, 3, { padding = 1 }, { 5, 16, 11, 13 } },
}

local function make_model(case)
  lunet.manual_seed(4)
  return nn.Sequential(nn.Conv2d(case[2], case[3], case[4], case[5]), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten())
end

--- Output, input gradient and parameter gradients of a model, as CPU tensors.
local function run(model, x, fuse, dev)
  model.fuse = fuse
  model:to(dev)
  local input = x:to(dev)
  local y = model:forward(input)
  local gy = helpers.random(y:shape(), 77, nil, -1, 1):to(dev)
  model:zero_grad()
  local gx = model:backward(input, gy)
  local out = { output = y:to("cpu"):clone(), grad_input = gx:to("cpu"):clone() }
  local _, grads = model:parameters()
  for i, g in ipairs(grads) do out["grad " .. i] = g:to("cpu"):clone() end
  return out
end

local function assert_same_results(actual, expected, what)
  for name, e in pairs(expected) do
    local scale = math.max(math.abs(e:max()), math.abs(e:min()), 1e-6)
    -- the output through Winograd F(4x4) (cpu, AVX-512 levels) rounds a few
    -- times more than F(2x2): 1e-5 of the largest value (bench/NOTES.md)
    local rel = name == "output" and 1e-5 or 2e-6
    helpers.assert_close(actual[name], e, 1e-5, rel * scale, what .. ": " .. name)
  end
end

describe("the fused conv2d + ReLU + 2x2 max-pooling block", function()
  it("is available on the cpu and the reference", function()
    assert.is_true(core.conv_block_supported("cpu"))
    assert.is_true(core.conv_block_supported(lunet.device("ref")))
  end)

  for _, dev in ipairs(helpers.devices()) do
    for _, case in ipairs(blocks) do
      it(("on %s, %s: the same as the three modules one by one"):format(dev, case[1]), function()
        local x = helpers.random(case[6], 5, nil, -1, 1)
        local expected = run(make_model(case), x, false, "ref")
        local actual = run(make_model(case), x, true, dev)
        assert_same_results(actual, expected, dev)
      end)
    end
  end

  for _, level in ipairs(lunet.cpu_levels()) do
    it(("the cpu's %s kernels agree with the reference with 1 and 2 threads"):format(level), function()
      at_level(level, function()
        for _, threads in ipairs({ 1, 2 }) do
          lunet.set_num_threads(threads)
          for _, case in ipairs(blocks) do
            local x = helpers.random(case[6], 8, nil, -1, 1)
            assert_same_results(run(make_model(case), x, true, "cpu"), run(make_model(case), x, true, "ref"),
              level .. ", " .. threads .. " threads, " .. case[1])
          end
        end
      end)
    end)
  end

  -- evaluate mode asks for no winners (winner argument false): the values must
  -- be bit for bit those of the pass with winners, on every path and level
  local function geometry(case)
    local k, st, pd = case[4], case[5].stride or 1, case[5].padding or 0
    k = type(k) == "table" and k or { k, k }
    st = type(st) == "table" and st or { st, st }
    pd = type(pd) == "table" and pd or { pd, pd }
    return k, st, pd
  end

  local function check_without_winners(dev, what)
    for _, case in ipairs(blocks) do
     for _, with_nan in ipairs({ false, true }) do
      local k, st, pd = geometry(case)
      local x = helpers.random(case[6], 9, nil, -1, 1)
      if with_nan then
        -- a few NaN inputs: their windows take the kernels' NaN branch
        local flat = x:reshape({ -1 }):totable()
        flat[3], flat[#flat // 2], flat[#flat] = 0 / 0, 0 / 0, 0 / 0
        x = lunet.tensor(flat):reshape(case[6])
      end
      x = x:to(dev)
      local w = helpers.random({ case[3], case[2], k[1], k[2] }, 10, nil, -1, 1):to(dev)
      local b = case[5].bias ~= false and helpers.random({ case[3] }, 11, nil, -1, 1):to(dev) or nil
      local y, winner = core.conv_block_forward(x, w, b, st[1], st[2], pd[1], pd[2])
      local y2, none = core.conv_block_forward(x, w, b, st[1], st[2], pd[1], pd[2], nil, false)
      assert.is_not_nil(winner)
      assert.is_nil(none)
      helpers.assert_close(y2:to("cpu"), y:to("cpu"), 0, 0, what .. ", " .. case[1])
      -- into a given output, which keeps its storage
      local into = core.conv_block_forward(x, w, b, st[1], st[2], pd[1], pd[2], y2, false)
      assert.is_true(rawequal(into, y2))
      helpers.assert_close(into:to("cpu"), y:to("cpu"), 0, 0, what .. " (into), " .. case[1])
     end
    end
  end

  it("without winners (evaluate mode) on the reference: the same values", function()
    check_without_winners(lunet.device("ref"), "ref")
  end)

  for _, level in ipairs(lunet.cpu_levels()) do
    it(("without winners on the cpu's %s kernels, 1 and 2 threads: the same values"):format(level),
      function()
        at_level(level, function()
          for _, threads in ipairs({ 1, 2 }) do
            lunet.set_num_threads(threads)
            check_without_winners("cpu", level .. ", " .. threads .. " threads")
          end
        end)
      end)
  end

  it("in evaluate mode: the training mode's output, and backward still right", function()
    for _, dev in ipairs(helpers.devices()) do
      for _, case in ipairs(blocks) do
        local x = helpers.random(case[6], 12, nil, -1, 1)
        local trained = run(make_model(case), x, true, dev)
        local model = make_model(case)
        model:eval()
        local evaluated = run(model, x, true, dev)
        for name, e in pairs(trained) do
          helpers.assert_close(evaluated[name], e, 0, 0, dev .. ", " .. case[1] .. ": " .. name)
        end
        -- back in training mode, the winners are computed again by forward
        model:train()
        local again = run(model, x, true, dev)
        for name, e in pairs(trained) do
          helpers.assert_close(again[name], e, 0, 0, dev .. ", train again, " .. case[1] .. ": " .. name)
        end
      end
    end
  end)

  it("keeps only the block's output; fuse = false keeps every module's", function()
    local model = make_model(blocks[3])
    local x = helpers.random(blocks[3][6], 1, nil, -1, 1)
    model:forward(x)
    model:backward(x, lunet.ones(model.output:shape()))
    assert.is_nil(model[1].output)
    assert.is_nil(model[2].output)
    assert.is_nil(model[2].grad_input)
    assert.is_nil(model[3].grad_input)
    assert.same({ 1, 5, 3, 2 }, model[3].output:shape())
    assert.same(x:shape(), model[1].grad_input:shape())
    model.fuse = false
    model:forward(x)
    model:backward(x, lunet.ones(model.output:shape()))
    assert.same({ 1, 5, 7, 5 }, model[1].output:shape())
    assert.same({ 1, 5, 7, 5 }, model[2].grad_input:shape())
  end)

  it("ties, zeros and NaN: the first maximum wins, no gradient where ReLU passes none", function()
    for _, dev in ipairs(helpers.devices()) do
      -- one input channel, a 1x1 kernel of weight 1: the convolution is the input
      local x = lunet.tensor({ { {
        { 0, 0, -1, -2, 3, 3, 0 / 0, 1 },
        { 0, 0, -3, -1, 3, 3, 5, 0 / 0 },
        { 2, 1, -1, 4, 0 / 0, 0 / 0, -1, 7 },
        { 1, 2, 4, 4, 2, 2, -1, 7 },
      } } })
      local w, b = lunet.ones({ 1, 1, 1, 1 }), lunet.zeros({ 1 })
      local y, winner = core.conv_block_forward(x:to(dev), w:to(dev), b:to(dev), 1, 1, 0, 0)
      local values = y:to("cpu"):reshape({ -1 }):totable()
      local nan = values[4] ~= values[4] and values[7] ~= values[7]
      assert.is_true(nan, dev .. ": NaN wins its window")
      assert.same({ 0, 0, 3, 2, 4, 7 }, { values[1], values[2], values[3], values[5], values[6], values[8] })
      -- winners: all zero -> 4; all negative -> 4; a tie -> the first; NaN -> 4 (ReLU passes nothing)
      assert.same({ 4, 4, 0, 4, 0, 1, 4, 1 }, winner:to("cpu"):to("float32"):reshape({ -1 }):totable())
      local dy = lunet.tensor({ { { { 1, 2, 3, 4 }, { 5, 6, 7, 8 } } } })
      local dx = core.conv_block_backward(x:to(dev), w:to(dev), dy:to(dev), winner, 1, 1, 0, 0, nil,
        lunet.zeros({ 1, 1, 1, 1 }, { device = dev }), lunet.zeros({ 1 }, { device = dev }), false)
      assert.same({
        0, 0, 0, 0, 3, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0,
        5, 0, 0, 6, 0, 0, 0, 8,
        0, 0, 0, 0, 0, 0, 0, 0,
      }, dx:to("cpu"):reshape({ -1 }):totable())
    end
  end)

  it("3x3 convolutions: ties, zeros and NaN give the reference's values and winners at every level", function()
    -- integer inputs with NaN; the filters: only the centre tap (the output is the
    -- input, NaN spreading to its neighbours through 0 x NaN), and all taps 1 (ties)
    local x = integers({ 2, 1, 10, 37 }, 12, -2, 2)
    local flat = x:reshape({ -1 })
    for i = 7, flat:numel(), 53 do flat:set(0 / 0, i) end
    local centre = lunet.zeros({ 3, 1, 3, 3 })
    centre:reshape({ -1 }):set(1, 5)
    centre:reshape({ -1 }):set(1, 14)
    centre:reshape({ -1 }):set(-1, 23)
    local filters = { centre, lunet.ones({ 2, 1, 3, 3 }) }
    local before = lunet.set_cpu_level(lunet.cpu_levels()[1])
    for _, level in ipairs(lunet.cpu_levels()) do
      lunet.set_cpu_level(level)
      for _, w in ipairs(filters) do
        local b = lunet.zeros({ w:size(1) })
        for _, pad in ipairs({ 0, 1 }) do
          local y, winner = core.conv_block_forward(x, w, b, 1, 1, pad, pad)
          local ry, rwinner = core.conv_block_forward(x:to("ref"), w:to("ref"), b:to("ref"), 1, 1, pad, pad)
          local got, want = y:reshape({ -1 }):totable(), ry:to("cpu"):reshape({ -1 }):totable()
          for i = 1, #want do
            if want[i] ~= want[i] then
              assert.is_true(got[i] ~= got[i], ("%s, padding %d: window %d should be NaN"):format(level, pad, i))
            else
              assert.equal(want[i], got[i], ("%s, padding %d: window %d"):format(level, pad, i))
            end
          end
          assert.same(rwinner:to("cpu"):to("float32"):reshape({ -1 }):totable(),
            winner:to("float32"):reshape({ -1 }):totable(), level .. ": winners")
        end
      end
    end
    lunet.set_cpu_level(before)
  end)

  it("backward without an input gradient leaves dx out and still fills the parameter gradients", function()
    local x = helpers.random({ 2, 3, 6, 6 }, 3, nil, -1, 1)
    local w, b = helpers.random({ 4, 3, 3, 3 }, 4, nil, -1, 1), helpers.random({ 4 }, 5, nil, -1, 1)
    local y, winner = core.conv_block_forward(x, w, b, 1, 1, 1, 1)
    local dy = helpers.random(y:shape(), 6, nil, -1, 1)
    local dw1, db1 = lunet.zeros(w:shape()), lunet.zeros({ 4 })
    local dw2, db2 = lunet.zeros(w:shape()), lunet.zeros({ 4 })
    local dx = core.conv_block_backward(x, w, dy, winner, 1, 1, 1, 1, nil, dw1, db1, false)
    assert.same(x:shape(), dx:shape())
    assert.is_nil(core.conv_block_backward(x, w, dy, winner, 1, 1, 1, 1, false, dw2, db2, false))
    -- the cpu's AVX-512 levels take the direct kernel here (conv_pool_direct.c), which sums
    -- in another order than the pass that also writes dx
    helpers.assert_close(dw2, dw1, 1e-6, 1e-6, "weight gradient")
    helpers.assert_close(db2, db1, 1e-6, 1e-6, "bias gradient")
  end)

  -- the first layer of a training step (no input gradient): the cpu's direct
  -- kernel for 1-3 input channels at the AVX-512 levels, the other paths elsewhere
  for _, level in ipairs(lunet.cpu_levels()) do
    it(("without an input gradient, the cpu's %s kernels: the reference's gradients, the same bits with 1 and 2 threads, accumulating"):format(level), function()
      -- the blocks above are too small for a second thread (under
      -- LN_CPU_PARALLEL_MIN_MACS, 2^20 products): the seed's first block at batch 8 is not
      local cases = { table.unpack(blocks) }
      cases[#cases + 1] = { "the seed's first block, batch 8 (two threads)", 1, 64, 3, { padding = 1 }, { 8, 1, 28, 28 } }
      at_level(level, function()
        for _, case in ipairs(cases) do
          -- NaN inputs only where no Winograd tile spreads them (1-3 channels)
          for _, with_nan in ipairs(case[2] <= 3 and { false, true } or { false }) do
            local k, st, pd = geometry(case)
            -- small integers: ties in the windows, zeros where ReLU passes nothing
            local x = helpers.integers(case[6], 12, -2, 2)
            if with_nan then
              local flat = x:reshape({ -1 }):totable()
              flat[2], flat[#flat // 3] = 0 / 0, 0 / 0
              x = lunet.tensor(flat):reshape(case[6])
            end
            local w = helpers.random({ case[3], case[2], k[1], k[2] }, 13, nil, -1, 1)
            local b = case[5].bias ~= false and helpers.random({ case[3] }, 14, nil, -1, 1) or nil
            local what = ("%s, %s%s"):format(level, case[1], with_nan and ", NaN inputs" or "")
            local yr, wr = core.conv_block_forward(x:to("ref"), w:to("ref"), b and b:to("ref"), st[1], st[2], pd[1], pd[2])
            local dy = helpers.random(yr:shape(), 15, nil, -1, 1)
            local dwr, dbr = lunet.zeros(w:shape()):to("ref"), b and lunet.zeros(b:shape()):to("ref")
            core.conv_block_backward(x:to("ref"), w:to("ref"), dy:to("ref"), wr, st[1], st[2], pd[1], pd[2], false, dwr, dbr, false)
            dwr = dwr:to("cpu")
            local got = {}
            for _, threads in ipairs({ 1, 2 }) do
              lunet.set_num_threads(threads)
              local _, winner = core.conv_block_forward(x, w, b, st[1], st[2], pd[1], pd[2])
              helpers.assert_close(winner, wr:to("cpu"), 0, 0, what .. ": winners")
              local dw, db = lunet.full(w:shape(), 0.5), b and lunet.full(b:shape(), -0.25)
              assert.is_nil(core.conv_block_backward(x, w, dy, winner, st[1], st[2], pd[1], pd[2], false, dw, db, true))
              local scale = 1 -- the largest finite |dw| (NaN inputs make NaN sums)
              for _, v in ipairs(dwr:reshape({ -1 }):totable()) do
                if v == v and math.abs(v) ~= math.huge then scale = math.max(scale, math.abs(v)) end
              end
              helpers.assert_close(dw - 0.5, dwr, 1e-5, 1e-6 * scale, what .. ": weight gradient added")
              if b then helpers.assert_close(db + 0.25, dbr:to("cpu"), 1e-5, 1e-5, what .. ": bias gradient added") end
              got[threads] = dw
            end
            helpers.assert_close(got[2], got[1], 0, 0, what .. ": 2 threads against 1")
          end
        end
      end)
    end)
  end

  it("refuses bad winners, shapes and outputs with clear errors", function()
    local x, w = lunet.randn({ 2, 3, 6, 6 }), lunet.randn({ 4, 3, 3, 3 })
    local y, winner = core.conv_block_forward(x, w, nil, 1, 1, 0, 0)
    assert.same({ 2, 4, 2, 2 }, y:shape())
    local dw = lunet.zeros(w:shape())
    helpers.assert_error(function()
      core.conv_block_backward(x, w, y, winner:to("float32"), 1, 1, 0, 0, nil, dw, nil, false)
    end, "pooling winners must be uint8")
    helpers.assert_error(function()
      core.conv_block_backward(x, w, lunet.zeros({ 2, 4, 3, 2 }), winner, 1, 1, 0, 0, nil, dw, nil, false)
    end, "the output gradient must be [2, 4, 2, 2], got [2, 4, 3, 2]")
    helpers.assert_error(function()
      core.conv_block_forward(lunet.randn({ 1, 3, 3, 3 }), w, nil, 1, 1, 0, 0)
    end, "smaller than the 2x2 pooling window")
    helpers.assert_error(function()
      core.conv_block_backward(x, w, y, winner, 1, 1, 0, 0, nil, lunet.zeros({ 4, 3, 3 }), nil, false)
    end, "the weight gradient must be [4, 3, 3, 3]")
    helpers.assert_error(function()
      core.conv_block_backward(x, w, y, winner, 1, 1, 0, 0, nil, y, nil, false)
    end, "the weight gradient")
    -- a model whose pool does not fit runs module by module, so the pool names the problem
    local model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    helpers.assert_error(function() model:forward(lunet.randn({ 1, 3, 3, 3 })) end, "MaxPool2d")
  end)
end)
