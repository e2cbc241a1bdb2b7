-- lunet.nn (API.md, Neural-network modules): every layer on every device
-- against the reference device on random inputs and odd shapes, the module
-- contract (outputs kept and reused, gradients accumulated, parameters,
-- modes, moves, state dicts), PyTorch's default initialisation, and clear
-- errors for bad input.
local lunet = require("lunet")
local core = require("lunet.core")
local helpers = require("helpers")
local nn = lunet.nn

local function shape_of(t) return table.concat(t:shape(), "x") end

-- Odd shapes: batch 1, non-square images, kernel {3, 2}, strides and
-- paddings of 2, kernels as large as the padded input, and sizes large
-- enough to take the CPU's threaded paths.
local cases = {
  { "Linear 7 -> 5, batch 3", function() return nn.Linear(7, 5) end, { 3, 7 } },
  { "Linear batch 1, no bias", function() return nn.Linear(6, 4, { bias = false }) end, { 1, 6 } },
  { "Linear 300 -> 200, batch 64", function() return nn.Linear(300, 200) end, { 64, 300 } },
  { "Conv2d kernel {3, 2}, stride 2, padding 2, non-square",
    function() return nn.Conv2d(3, 4, { 3, 2 }, { stride = 2, padding = 2 }) end, { 2, 3, 7, 6 } },
  { "Conv2d batch 1, 3x3, padding 1", function() return nn.Conv2d(2, 3, 3, { padding = 1 }) end, { 1, 2, 5, 8 } },
  { "Conv2d stride {2, 1}, padding {0, 1}, no bias",
    function() return nn.Conv2d(2, 2, { 2, 3 }, { stride = { 2, 1 }, padding = { 0, 1 }, bias = false }) end,
    { 2, 2, 9, 5 } },
  { "Conv2d 1x1", function() return nn.Conv2d(4, 5, 1) end, { 3, 4, 3, 3 } },
  { "Conv2d kernel as large as the padded input",
    function() return nn.Conv2d(1, 2, { 5, 6 }, { padding = 1 }) end, { 2, 1, 3, 4 } },
  { "Conv2d 8 -> 12, 5x5, stride 3, padding 2, threaded",
    function() return nn.Conv2d(8, 12, 5, { stride = 3, padding = 2 }) end, { 6, 8, 35, 29 } },
  { "MaxPool2d 2x2, odd sizes", function() return nn.MaxPool2d(2) end, { 2, 3, 7, 5 } },
  { "MaxPool2d 2x2, rows of 8 windows and a tail, odd width", function() return nn.MaxPool2d(2) end,
    { 3, 2, 9, 37 } },
  { "MaxPool2d 2x2, the seed's first pooling", function() return nn.MaxPool2d(2) end, { 2, 64, 28, 28 } },
  { "MaxPool2d {3, 2}, stride {2, 1}, padding 1", function() return nn.MaxPool2d({ 3, 2 }, { 2, 1 }, 1) end,
    { 1, 2, 6, 7 } },
  { "MaxPool2d 3x3 stride 1, threaded", function() return nn.MaxPool2d(3, 1) end, { 4, 8, 91, 93 } },
  { "AvgPool2d 2x2, odd sizes", function() return nn.AvgPool2d(2) end, { 2, 3, 7, 5 } },
  { "AvgPool2d {3, 2}, stride {2, 1}, padding 1", function() return nn.AvgPool2d({ 3, 2 }, { 2, 1 }, 1) end,
    { 1, 2, 6, 7 } },
  { "AvgPool2d 3x3 stride 2, threaded", function() return nn.AvgPool2d(3, 2) end, { 4, 8, 91, 93 } },
  { "ReLU", function() return nn.ReLU() end, { 3, 4, 5, 6 } },
  { "ReLU, threaded", function() return nn.ReLU() end, { 300001 } },
  { "Flatten", function() return nn.Flatten() end, { 2, 3, 4, 5 } },
  { "Dropout p = 0.3", function() return nn.Dropout(0.3) end, { 3, 7, 11 } },
  { "Dropout p = 0.5, threaded", function() return nn.Dropout(0.5) end, { 300001 } },
  { "BatchNorm2d training", function() return nn.BatchNorm2d(3) end, { 4, 3, 5, 3 } },
  { "BatchNorm2d training, batch 1", function() return nn.BatchNorm2d(5) end, { 1, 5, 3, 2 } },
  { "BatchNorm2d eval", function()
    local m = nn.BatchNorm2d(3)
    m.running_mean:copy(lunet.tensor({ 0.5, -1, 2 }))
    m.running_var:copy(lunet.tensor({ 0.3, 2, 1.5 }))
    m.weight:copy(lunet.tensor({ 1.5, -0.5, 2 }))
    return m:eval()
  end, { 2, 3, 4, 5 } },
  { "BatchNorm2d training, threaded", function() return nn.BatchNorm2d(16) end, { 8, 16, 45, 47 } },
  { "Sequential of conv, batch norm, pool, flatten, linear", function()
    return nn.Sequential(nn.Conv2d(2, 4, 3, { padding = 1, bias = false }), nn.BatchNorm2d(4), nn.ReLU(),
      nn.MaxPool2d(2), nn.Dropout(0.2), nn.Flatten(), nn.Linear(4 * 3 * 4, 5))
  end, { 3, 2, 7, 9 } },
}

--- Forward and backward of a fresh module (same seed, so the same weights
-- and dropout masks on every device); results as CPU tensors.
local function run(dev, make, input_shape)
  lunet.manual_seed(7)
  local m = make():to(dev)
  local x = helpers.random(input_shape, 11, nil, -1, 1):to(dev)
  lunet.manual_seed(99)
  local y = m:forward(x)
  local gy = helpers.random(y:shape(), 13, nil, -1, 1):to(dev)
  m:zero_grad()
  local gx = m:backward(x, gy)
  local out = { output = y:to("cpu"):clone(), grad_input = gx:to("cpu"):clone() }
  local params, grads = m:parameters()
  for i = 1, #params do out["grad " .. i] = grads[i]:to("cpu"):clone() end
  for name, t in pairs(m:state_dict()) do out["state " .. name] = t end
  return out
end

describe("nn layers against the reference", function()
  for _, dev in ipairs(helpers.devices()) do
    if dev ~= "ref" then
      describe("on " .. dev, function()
        for _, case in ipairs(cases) do
          it(case[1], function()
            local expected, actual = run("ref", case[2], case[3]), run(dev, case[2], case[3])
            local count = 0
            for name, e in pairs(expected) do
              local a = assert(actual[name], name)
              local scale = math.max(math.abs(e:max()), math.abs(e:min()), 1e-6)
              -- cuDNN may choose Winograd or FFT convolutions: ~1e-5 of the scale
              local atol = (dev == "cuda" and 2e-5 or 2e-6) * scale
              helpers.assert_close(a, e, 1e-5, atol, name)
              count = count + 1
            end
            assert.is_true(count >= 2)
          end)
        end
      end)
    end
  end

  it("max pooling propagates NaN and ReLU keeps it, as in PyTorch; gradients go to the first NaN", function()
    local nan = 0 / 0
    local x = lunet.tensor({ { { { 1, nan, 3, 4 }, { 5, 6, 7, nan }, { -1, -2, 0, 2 }, { nan, nan, 9, 1 } } } })
    for _, dev in ipairs(helpers.devices()) do
      for _, pool in ipairs({ nn.MaxPool2d(2), nn.MaxPool2d(3, 1) }) do
        local y = pool:forward(x:to(dev)):to("cpu")
        local g = pool:backward(x:to(dev), lunet.ones(y:shape(), { device = dev })):to("cpu")
        if pool.kernel_size[1] == 2 then
          local v = y:reshape({ -1 }):totable()
          assert.is_true(v[1] ~= v[1] and v[2] ~= v[2] and v[3] ~= v[3] and v[4] == 9, dev)
          -- each window's gradient goes to its first NaN (or its maximum)
          assert.same({ 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0 }, g:reshape({ -1 }):totable())
        end
        helpers.assert_close(y, pool:to("ref"):forward(x:to("ref")), 0, 0, dev .. " max pooling")
      end
      local r = nn.ReLU():forward(x:to(dev)):reshape({ -1 }):totable()
      assert.is_true(r[2] ~= r[2], "relu(NaN) is NaN")
      assert.equal(0, r[9])
    end
  end)

  it("convolutions give the same result with a tight workspace (fewer weight-gradient groups)", function()
    -- a 1 MiB workspace holds five of the cpu's per-group weight gradients (200 KB each), not eight
    local code = [[
      local lunet = require("lunet")
      local core = require("lunet.core")
      lunet.manual_seed(3)
      local x, w, b = lunet.randn({9, 32, 20, 17}), lunet.randn({64, 32, 5, 5}), lunet.randn({64})
      local y = core.conv2d_forward(x, w, b, 1, 2, 1, 1)
      local dy = lunet.randn(y:shape())
      local dx = core.conv2d_backward_data(x, w, dy, 1, 2, 1, 1)
      local dw, db = lunet.zeros({64, 32, 5, 5}), lunet.zeros({64})
      core.conv2d_backward_filter(x, dy, dw, db, 1, 2, 1, 1, false)
      local function rel(a, b)
        local d = (a - b:to("cpu")):reshape({-1})
        return math.max(math.abs(d:max()), math.abs(d:min())) / math.max(math.abs(b:max()), math.abs(b:min()))
      end
      local rx, rw = x:to("ref"), w:to("ref")
      local ry = core.conv2d_forward(rx, rw, b:to("ref"), 1, 2, 1, 1)
      local rdx = core.conv2d_backward_data(rx, rw, dy:to("ref"), 1, 2, 1, 1)
      local rdw, rdb = lunet.zeros({64, 32, 5, 5}, {device = "ref"}), lunet.zeros({64}, {device = "ref"})
      core.conv2d_backward_filter(rx, dy:to("ref"), rdw, rdb, 1, 2, 1, 1, false)
      print(("%g %g %g %g"):format(rel(y, ry), rel(dx, rdx), rel(dw, rdw), rel(db, rdb)))
    ]]
    local ok, out = helpers.run_child(code, { prefix = "LUNET_CPU_WORKSPACE_MB=1" })
    assert.is_true(ok, out)
    local errors = {}
    for v in out:gmatch("%S+") do errors[#errors + 1] = tonumber(v) end
    assert.equal(4, #errors, out)
    for i = 1, 4 do assert.is_true(errors[i] < 1e-5, out) end
  end)
end)

describe("the module contract", function()
  it("forward keeps its output and reuses it while the input shape stays", function()
    for _, make in ipairs({ function() return nn.Linear(4, 3) end, function() return nn.ReLU() end,
                            function() return nn.Conv2d(2, 3, 3) end, function() return nn.MaxPool2d(2) end,
                            function() return nn.BatchNorm2d(2) end }) do
      local m = make()
      local shape = m.__typename == "Linear" and { 5, 4 } or (m.__typename == "ReLU" and { 6 } or { 2, 2, 6, 6 })
      local x = lunet.randn(shape)
      local y1 = m:forward(x)
      assert.equal(y1, m.output)
      local y2 = m:forward(lunet.randn(shape))
      assert.is_true(rawequal(y1, y2), m.__typename .. ": the output was reallocated")
      local g1 = m:backward(x, lunet.randn(y1:shape()))
      local g2 = m:backward(x, lunet.randn(y1:shape()))
      assert.is_true(rawequal(g1, g2), m.__typename)
      if m.__typename ~= "ReLU" then
        shape[1] = shape[1] + 1
        local y3 = m:forward(lunet.randn(shape))
        assert.is_false(rawequal(y1, y3), m.__typename .. ": a new shape needs a new output")
        assert.equal(shape[1], y3:size(1))
      end
    end
    -- Flatten's output is a view of its input: the same view while the input is the same tensor
    local flat, x = nn.Flatten(), lunet.randn({ 2, 3, 4 })
    local v = flat:forward(x)
    assert.is_true(rawequal(v, flat:forward(x)))
    assert.same({ 2, 12 }, v:shape())
    x:set(5, 2, 3, 4)
    assert.equal(5, v:get(2, 12), "a view shares the input's memory")
  end)

  it("a steady training step allocates no tensors, with and without fused blocks", function()
    lunet.manual_seed(1)
    local plain = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(),
      nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(4 * 5 * 5, 6), nn.ReLU(), nn.Linear(6, 3))
    -- Conv2d -> ReLU -> MaxPool2d(2) twice: Sequential runs both as fused blocks
    local fused = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
      nn.Conv2d(4, 5, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(5 * 2 * 2, 3))
    for _, model in ipairs({ plain, fused }) do
      local crit = nn.CrossEntropyLoss()
      local opt = lunet.optim.Adam(model, { lr = 1e-3 })
      local x = lunet.randn({ 4, 1, 10, 10 })
      local y = lunet.tensor({ 1, 2, 3, 1 }, { dtype = "int32" })
      local function step()
        opt:zero_grad()
        local out = model:forward(x)
        crit:forward(out, y)
        model:backward(x, crit:backward(out, y))
        opt:step()
      end
      step()
      step()
      local before = core.tensor_allocations()
      for _ = 1, 3 do step() end
      assert.equal(before, core.tensor_allocations())
      -- and the counter does count: a new batch size allocates new outputs
      model:forward(lunet.randn({ 5, 1, 10, 10 }))
      assert.is_true(core.tensor_allocations() > before)
    end
    assert.is_nil(fused[4].output, "the fused model's blocks ran fused")
  end)

  it("switching between training and evaluation allocates nothing once both were seen", function()
    lunet.manual_seed(5)
    local model = nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.BatchNorm2d(4), nn.ReLU(),
      nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
    local x = lunet.randn({ 4, 1, 10, 10 })
    local function round()
      model:train()
      local out = model:forward(x)
      model:backward(x, out)
      model:eval()
      model:forward(x)
    end
    round()
    round()
    local before = core.tensor_allocations()
    for _ = 1, 3 do round() end
    assert.equal(before, core.tensor_allocations())
  end)

  it("an empty batch gives empty outputs and adds nothing to the gradients", function()
    for _, dev in ipairs(helpers.devices()) do
      lunet.manual_seed(3)
      local m = nn.Sequential(nn.Conv2d(2, 3, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(3 * 2 * 2, 4)):to(dev)
      m:zero_grad()
      local x = lunet.randn({ 2, 2, 4, 4 }):to(dev)
      m:forward(x)
      m:backward(x, lunet.ones({ 2, 4 }, { device = dev }))
      local before = {}
      for i, g in ipairs(select(2, m:parameters())) do before[i] = g:to("cpu"):clone() end
      local empty = lunet.zeros({ 0, 2, 4, 4 }, { device = dev })
      local y = m:forward(empty)
      assert.same({ 0, 4 }, y:shape())
      assert.same({ 0, 2, 4, 4 }, m:backward(empty, lunet.zeros({ 0, 4 }, { device = dev })):shape())
      for i, g in ipairs(select(2, m:parameters())) do helpers.assert_close(g, before[i], 0, 0, dev) end
    end
  end)

  it("backward accumulates parameter gradients until zero_grad", function()
    lunet.manual_seed(2)
    local m = nn.Conv2d(2, 3, 3)
    local x = lunet.randn({ 2, 2, 5, 5 })
    local gy = lunet.randn({ 2, 3, 3, 3 })
    m:zero_grad()
    m:forward(x)
    m:backward(x, gy)
    local once_w, once_b = m.grad_weight:clone(), m.grad_bias:clone()
    m:backward(x, gy)
    helpers.assert_close(m.grad_weight, once_w * 2, 1e-6, 1e-6)
    helpers.assert_close(m.grad_bias, once_b * 2, 1e-6, 1e-6)
    m:zero_grad()
    assert.equal(0, m.grad_weight:sum())
    assert.equal(0, m.grad_bias:sum())
  end)

  it("parameters lists parameters and gradients in module order, weight before bias", function()
    local a, b, c = nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Linear(3, 4, { bias = false })
    local seq = nn.Sequential { a, nn.ReLU(), b, nn.Flatten(), c }
    local params, grads = seq:parameters()
    local expected = { a.weight, a.bias, b.weight, b.bias, c.weight }
    local expected_grads = { a.grad_weight, a.grad_bias, b.grad_weight, b.grad_bias, c.grad_weight }
    assert.equal(#expected, #params)
    for i = 1, #expected do
      assert.is_true(rawequal(params[i], expected[i]), "parameter " .. i)
      assert.is_true(rawequal(grads[i], expected_grads[i]), "gradient " .. i)
    end
    assert.equal(5, #seq)
    assert.equal(c, seq[5])
    seq:add(nn.ReLU())
    assert.equal(6, #seq)
    assert.equal(0, #nn.ReLU():parameters())
  end)

  it("train and eval set the mode of every module", function()
    local d, bn = nn.Dropout(0.5), nn.BatchNorm2d(2)
    local seq = nn.Sequential(nn.Sequential(d), bn)
    assert.is_true(seq.training and d.training and bn.training)
    assert.equal(seq, seq:eval())
    assert.is_false(seq.training or d.training or bn.training)
    seq:train()
    assert.is_true(seq.training and d.training and bn.training)
  end)

  it("Dropout zeroes about p of the elements and scales the rest; eval passes the input", function()
    lunet.manual_seed(5)
    local d = nn.Dropout(0.25)
    local x = lunet.ones({ 100000 })
    local y = d:forward(x):clone()
    local kept = y:eq(lunet.full({ 100000 }, 1 / 0.75)):sum()
    local dropped = y:eq(lunet.zeros({ 100000 })):sum()
    assert.equal(100000, kept + dropped)
    assert.is_true(math.abs(dropped / 100000 - 0.25) < 0.01, "dropped " .. dropped)
    local g = d:backward(x, lunet.ones({ 100000 }))
    helpers.assert_close(g, y, 0, 0, "the gradient uses the same mask")
    local z = d:forward(x)
    assert.is_true(helpers.max_abs_diff(z, y) > 0, "a new mask each forward")
    d:eval()
    assert.equal(x, d:forward(x))
    local gy = lunet.randn({ 100000 })
    assert.equal(gy, d:backward(x, gy))
    assert.equal(x, nn.Dropout(0):forward(x))
  end)

  it("BatchNorm2d normalises batches in training and uses running statistics in eval", function()
    lunet.manual_seed(6)
    local bn = nn.BatchNorm2d(3)
    local x = lunet.randn({ 8, 3, 4, 4 }) * 3 + 2
    local y = bn:forward(x)
    assert.is_true(math.abs(y:mean()) < 1e-5)
    assert.is_true(math.abs((y * y):mean() - 1) < 1e-3)
    -- running stats moved 10% of the way from 0 and 1 towards the batch's
    assert.is_true(bn.running_mean:mean() > 0.1 and bn.running_mean:mean() < 0.3)
    bn:eval()
    local ye = bn:forward(x)
    assert.is_true(math.abs(ye:mean()) > 0.5, "eval does not use the batch statistics")
  end)

  it("to() moves parameters, gradients and buffers, and returns the module", function()
    lunet.manual_seed(8)
    local seq = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    local x = lunet.randn({ 2, 1, 6, 6 })
    local expected = seq:forward(x):clone()
    assert.equal(seq, seq:to("ref"))
    local params, grads = seq:parameters()
    for i = 1, #params do
      assert.equal("ref", tostring(params[i]:device()))
      assert.equal("ref", tostring(grads[i]:device()))
    end
    assert.equal("ref", tostring(seq[2].running_mean:device()))
    seq:eval():train()
    local fresh = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    fresh:load_state_dict(seq:state_dict())
    -- the state dict holds the running statistics after one batch: reset them to compare forwards
    seq[2].running_mean:zero()
    seq[2].running_var:fill(1)
    local y = seq:forward(x:to("ref"))
    assert.equal("ref", tostring(y:device()))
    helpers.assert_close(y, expected, 1e-5, 1e-6)
    seq:to("cpu")
    helpers.assert_close(seq:forward(x), expected, 1e-5, 1e-6)
    assert.equal("float16", nn.Linear(2, 2):to("float16").weight:dtype())
  end)

  it("state_dict holds CPU copies by position; load_state_dict restores them", function()
    lunet.manual_seed(9)
    local function make()
      return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Sequential(nn.BatchNorm2d(2)), nn.Flatten(),
        nn.Linear(8, 3, { bias = false }))
    end
    local a = make()
    local sd = a:state_dict()
    local names = {}
    for k in pairs(sd) do names[#names + 1] = k end
    table.sort(names)
    assert.same({ "1.bias", "1.weight", "3.1.bias", "3.1.running_mean", "3.1.running_var", "3.1.weight",
      "5.weight" }, names)
    assert.is_false(rawequal(sd["1.weight"], a[1].weight))
    sd["1.weight"]:fill(0)
    assert.is_true(a[1].weight:max() ~= 0, "the state dict is a copy")
    local b = make():to("ref")
    b:load_state_dict(a:state_dict())
    assert.equal("ref", tostring(b[1].weight:device()))
    local x = lunet.randn({ 2, 1, 4, 4 })
    helpers.assert_close(b:forward(x:to("ref")), a:forward(x), 1e-5, 1e-6)
    assert.same({ "bias", "weight" }, (function()
      local l = {}
      for k in pairs(nn.Linear(2, 3):state_dict()) do l[#l + 1] = k end
      table.sort(l)
      return l
    end)())
  end)

  it("load_state_dict refuses wrong names, shapes, dtypes and values, changing nothing", function()
    local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    local before = m[1].weight:clone()
    local function with(change)
      local sd = m:state_dict()
      change(sd)
      return function() m:load_state_dict(sd) end
    end
    helpers.assert_error(with(function(sd) sd["1.weight"] = nil end), "lunet.nn.Sequential:load_state_dict",
      "missing 1.weight")
    helpers.assert_error(with(function(sd) sd["4.weight"] = lunet.zeros({ 1 }) end), "unexpected 4.weight")
    helpers.assert_error(with(function(sd)
      sd["3.weight"] = lunet.zeros({ 3, 2 })
      sd["1.weight"]:fill(5)
    end), "'3.weight' has shape [3, 2], this model needs [2, 3]")
    helpers.assert_error(with(function(sd) sd["1.bias"] = sd["1.bias"]:to("int32") end), "'1.bias' is int32")
    helpers.assert_error(with(function(sd) sd["1.bias"] = { 1, 2, 3 } end), "'1.bias' must be a tensor")
    helpers.assert_error(function() m:load_state_dict(42) end, "expected a table")
    helpers.assert_close(m[1].weight, before, 0, 0, "nothing was copied")
  end)

  it("describes itself and exposes its geometry", function()
    local conv = nn.Conv2d(3, 8, { 3, 2 }, { stride = { 2, 1 }, padding = 2 })
    assert.equal("Conv2d", conv.__typename)
    assert.same({ 3, 2 }, conv.kernel_size)
    assert.same({ 2, 1 }, conv.stride)
    assert.same({ 2, 2 }, conv.padding)
    assert.equal(3, conv.in_channels)
    assert.equal(8, conv.out_channels)
    local lin = nn.Linear(10, 4)
    assert.equal(10, lin.in_features)
    assert.equal(4, lin.out_features)
    local pool = nn.MaxPool2d(3)
    assert.same({ 3, 3 }, pool.kernel_size)
    assert.same({ 3, 3 }, pool.stride)
    assert.same({ 2, 2 }, nn.AvgPool2d(2).stride)
    assert.equal("nn.Conv2d(3 -> 8, 3x2, stride 2x1, padding 2x2)", tostring(conv))
    assert.equal("nn.Linear(10 -> 4)", tostring(lin))
    assert.matches("nn.Sequential {\n  %(1%): nn.Linear", tostring(nn.Sequential(lin)))
    assert.is_true(nn.is_module(lin))
    assert.is_false(nn.is_module({}))
    assert.is_false(nn.is_module(lunet.zeros({ 1 })))
  end)

  it("models.fashion_alexnet is the seed model", function()
    lunet.manual_seed(10)
    local m = lunet.models.fashion_alexnet()
    local types = {}
    for i = 1, #m do types[i] = m[i].__typename end
    assert.same({ "Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear" },
      types)
    local count = 0
    for _, p in ipairs(m:parameters()) do count = count + p:numel() end
    assert.equal(64 * 9 + 64 + 128 * 64 * 9 + 128 + 6272 * 512 + 512 + 512 * 10 + 10, count)
    assert.same({ 2, 10 }, m:forward(lunet.rand({ 2, 1, 28, 28 })):shape())
    assert.same({ 2, 7 }, lunet.models.fashion_alexnet(7):forward(lunet.rand({ 2, 1, 28, 28 })):shape())
  end)
end)

describe("weight initialisation follows PyTorch's defaults", function()
  local function check_uniform(t, bound)
    local n = t:numel()
    assert.is_true(t:max() <= bound and t:min() >= -bound, "within +-" .. bound)
    assert.is_true(t:max() > 0.95 * bound and t:min() < -0.95 * bound, "fills the range")
    assert.is_true(math.abs(t:mean()) < 4 * bound / math.sqrt(3 * n))
    local var = (t * t):mean()
    assert.is_true(math.abs(var - bound * bound / 3) < 0.05 * bound * bound, "variance of U(-b, b)")
  end

  it("Linear: weight and bias uniform in +-1/sqrt(in_features)", function()
    lunet.manual_seed(11)
    local m = nn.Linear(400, 300)
    check_uniform(m.weight, 1 / math.sqrt(400))
    check_uniform(m.bias, 1 / math.sqrt(400))
  end)

  it("Conv2d: weight and bias uniform in +-1/sqrt(in_channels * kh * kw)", function()
    lunet.manual_seed(12)
    local m = nn.Conv2d(16, 200, { 3, 2 })
    check_uniform(m.weight, 1 / math.sqrt(16 * 6))
    check_uniform(m.bias, 1 / math.sqrt(16 * 6))
  end)

  it("BatchNorm2d: weight 1, bias 0, running mean 0, running variance 1", function()
    local m = nn.BatchNorm2d(4)
    assert.same({ 1, 1, 1, 1 }, m.weight:totable())
    assert.same({ 0, 0, 0, 0 }, m.bias:totable())
    assert.same({ 0, 0, 0, 0 }, m.running_mean:totable())
    assert.same({ 1, 1, 1, 1 }, m.running_var:totable())
  end)

  it("the same seed gives the same weights, another seed others", function()
    lunet.manual_seed(13)
    local a = nn.Linear(5, 5).weight:totable()
    lunet.manual_seed(13)
    assert.same(a, nn.Linear(5, 5).weight:totable())
    lunet.manual_seed(14)
    assert.are_not.same(a, nn.Linear(5, 5).weight:totable())
  end)
end)

describe("bad input raises clear errors", function()
  it("wrong input shapes name the module, the expected and the actual shape", function()
    local lin = nn.Linear(6272, 512)
    helpers.assert_error(function() lin:forward(lunet.zeros({ 64, 128, 7, 7 })) end,
      "lunet.nn.Linear:forward: expected input [N, 6272], got [64, 128, 7, 7]")
    helpers.assert_error(function() nn.Linear(3, 2):backward(lunet.zeros({ 4, 3 }), lunet.zeros({ 4, 3 })) end,
      "lunet.nn.Linear:backward: expected the output gradient [N, 2], got [4, 3]")
    local conv = nn.Conv2d(3, 4, 3)
    helpers.assert_error(function() conv:forward(lunet.zeros({ 2, 4, 5, 5 })) end,
      "lunet.nn.Conv2d:forward: expected input [N, 3, H, W], got [2, 4, 5, 5]")
    helpers.assert_error(function() conv:forward(lunet.zeros({ 3, 5, 5 })) end,
      "expected input [N, 3, H, W], got [3, 5, 5]")
    helpers.assert_error(function() nn.MaxPool2d(2):forward(lunet.zeros({ 4, 4 })) end,
      "lunet.nn.MaxPool2d:forward: expected input [N, C, H, W], got [4, 4]")
    helpers.assert_error(function() nn.BatchNorm2d(3):forward(lunet.zeros({ 2, 4, 5, 5 })) end,
      "lunet.nn.BatchNorm2d:forward: expected input [N, 3, ...], got [2, 4, 5, 5]")
    helpers.assert_error(function() nn.BatchNorm2d(3):forward(lunet.zeros({ 2, 3 })) end,
      "expected input [N, 3, H, W], got [2, 3]")
    helpers.assert_error(function() nn.Flatten():forward(lunet.zeros({ 4 })) end,
      "lunet.nn.Flatten:forward: expected input [N, ...] with at least 2 dimensions, got [4]")
  end)

  it("gradients of the wrong shape are refused", function()
    local conv = nn.Conv2d(1, 2, 3)
    local x = lunet.zeros({ 2, 1, 5, 5 })
    conv:forward(x)
    helpers.assert_error(function() conv:backward(x, lunet.zeros({ 2, 2, 4, 3 })) end,
      "lunet.nn.Conv2d:backward: the output gradient must be [2, 2, 3, 3], got [2, 2, 4, 3]")
    local pool = nn.MaxPool2d(2)
    pool:forward(x)
    helpers.assert_error(function() pool:backward(x, lunet.zeros({ 2, 1, 3, 2 })) end,
      "the output gradient must be [2, 1, 2, 2], got [2, 1, 3, 2]")
    local relu = nn.ReLU()
    helpers.assert_error(function() relu:backward(x, x) end, "call forward before backward")
    relu:forward(x)
    helpers.assert_error(function() relu:backward(x, lunet.zeros({ 3 })) end,
      "the output gradient must be [2, 1, 5, 5], got [3]")
  end)

  it("a kernel larger than the padded input is refused", function()
    helpers.assert_error(function() nn.Conv2d(1, 1, 5):forward(lunet.zeros({ 1, 1, 4, 8 })) end,
      "lunet.nn.Conv2d:forward: the kernel 5x5 is larger than the input [1, 1, 4, 8] padded by {0, 0} (4x8)")
    helpers.assert_error(function() nn.Conv2d(1, 1, { 3, 7 }, { padding = 1 }):forward(lunet.zeros({ 1, 1, 4, 4 })) end,
      "the kernel 3x7 is larger than the input [1, 1, 4, 4] padded by {1, 1} (6x6)")
    helpers.assert_error(function() nn.MaxPool2d(3):forward(lunet.zeros({ 1, 1, 2, 5 })) end,
      "lunet.nn.MaxPool2d:forward: the kernel 3x3 is larger than the input [1, 1, 2, 5]")
  end)

  it("negative padding, zero strides and kernels, and bad options are refused", function()
    helpers.assert_error(function() nn.Conv2d(1, 1, 3, { padding = -1 }) end,
      "lunet.nn.Conv2d: padding must not be negative, got -1")
    helpers.assert_error(function() nn.Conv2d(1, 1, 3, { padding = { 1, -2 } }) end,
      "padding must not be negative, got {1, -2}")
    helpers.assert_error(function() nn.Conv2d(1, 1, 3, { stride = 0 }) end, "stride must be at least 1, got 0")
    helpers.assert_error(function() nn.Conv2d(1, 1, 0) end, "kernel size must be at least 1, got 0")
    helpers.assert_error(function() nn.Conv2d(1, 1, { 3 }) end, "kernel size must be a number or a pair {h, w}")
    helpers.assert_error(function() nn.Conv2d(1, 1, 2.5) end, "kernel size must be an integer or a pair {h, w}, got 2.5")
    helpers.assert_error(function() nn.Conv2d(1, 1) end, "lunet.nn.Conv2d: kernel size is required")
    helpers.assert_error(function() nn.Conv2d(1, 1, 3, { strid = 2 }) end, "unknown option 'strid'")
    helpers.assert_error(function() nn.Conv2d(0, 1, 3) end, "in_channels must be at least 1, got 0")
    helpers.assert_error(function() nn.Linear(3, "4") end, "lunet.nn.Linear: out_features must be an integer, got string")
    helpers.assert_error(function() nn.Linear(3, 4, { bias = 1 }) end, "option 'bias' must be a boolean")
    helpers.assert_error(function() nn.MaxPool2d(2, 2, 2) end,
      "lunet.nn.MaxPool2d: padding {2, 2} must be at most half the kernel size {2, 2}")
    helpers.assert_error(function() nn.AvgPool2d(2, 0) end, "stride must be at least 1")
    helpers.assert_error(function() nn.Dropout(1.5) end, "lunet.nn.Dropout: p must be a probability in [0, 1], got 1.5")
    helpers.assert_error(function() nn.BatchNorm2d(3, { eps = 0 }) end, "eps must be positive")
    helpers.assert_error(function() nn.Sequential(nn.ReLU(), 42) end, "lunet.nn.Sequential: module 2 is number, not a module")
    helpers.assert_error(function() nn.Sequential():add({}) end, "lunet.nn.Sequential:add: expected a module, got table")
  end)

  it("the functional ops check their geometry too", function()
    local x, w = lunet.zeros({ 1, 1, 5, 5 }), lunet.zeros({ 1, 1, 3, 3 })
    helpers.assert_error(function() core.conv2d_forward(x, w, nil, 1, 1, -1, 0) end,
      "lunet.conv2d_forward: padding must not be negative, got {-1, 0}")
    helpers.assert_error(function() core.conv2d_forward(x, w, nil, 0, 1, 0, 0) end,
      "stride must be at least 1, got {0, 1}")
    helpers.assert_error(function() core.pool2d_forward("max", x, 2, 2, 2, 2, -1, 0) end,
      "lunet.pool2d_forward: padding must not be negative")
    helpers.assert_error(function() core.pool2d_forward("min", x, 2, 2, 2, 2, 0, 0) end,
      "pooling mode must be \"max\" or \"avg\"")
    helpers.assert_error(function() core.conv2d_forward(x, w, lunet.zeros({ 2 }), 1, 1, 0, 0) end,
      "the bias must be [1], got [2]")
  end)

  it("labels out of 1..C, float labels and mismatched labels are refused", function()
    local crit = nn.CrossEntropyLoss()
    local logits = lunet.randn({ 4, 10 })
    helpers.assert_error(function() crit:forward(logits, lunet.tensor({ 1, 2, 11, 3 }, { dtype = "int32" })) end,
      "lunet.nn.CrossEntropyLoss:forward: label 11 at position 3 is outside 1..10")
    helpers.assert_error(function() crit:forward(logits, lunet.tensor({ 0, 2, 1, 3 }, { dtype = "int32" })) end,
      "label 0 at position 1 is outside 1..10")
    helpers.assert_error(function() crit:backward(logits, lunet.tensor({ 1, 2, 3, -4 }, { dtype = "int32" })) end,
      "lunet.nn.CrossEntropyLoss:backward: label -4 at position 4 is outside 1..10")
    helpers.assert_error(function() crit:forward(logits, lunet.tensor({ 1, 2, 3, 4 })) end,
      "labels must be int32 class numbers in 1..10, got float32 labels")
    helpers.assert_error(function() crit:forward(logits, lunet.tensor({ 1, 2, 3 }, { dtype = "int32" })) end,
      "expected labels [4] for logits [4, 10], got [3]")
    helpers.assert_error(function() crit:forward(lunet.randn({ 4 }), lunet.tensor({ 1 }, { dtype = "int32" })) end,
      "expected logits [N, C] with N, C >= 1, got [4]")
    helpers.assert_error(function() crit:forward(logits, { 1, 2, 3, 4 }) end, "expected a lunet tensor, got table")
  end)

  it("inputs of the wrong dtype, device or kind are refused", function()
    helpers.assert_error(function() nn.Linear(3, 2):forward(lunet.zeros({ 2, 3 }, { dtype = "float16" })) end,
      "lunet.nn.Linear:forward: the input must be float32, got float16")
    helpers.assert_error(function() nn.Linear(3, 2):forward(lunet.zeros({ 2, 3 }, { device = "ref" })) end,
      "the input and the weight are on different devices (ref and cpu)")
    helpers.assert_error(function() nn.Conv2d(1, 1, 1):forward({ 1, 2, 3 }) end,
      "lunet.nn.Conv2d:forward: argument #1: expected a lunet tensor, got table")
    helpers.assert_error(function() nn.ReLU():forward(nil) end, "lunet.nn.ReLU:forward")
    local t = lunet.zeros({ 2, 3 })
    t:free()
    helpers.assert_error(function() nn.Linear(3, 2):forward(t) end, "the tensor was freed")
    helpers.assert_error(function() nn.BatchNorm2d(2):forward(lunet.zeros({ 1, 2, 1, 1 })) end,
      "expected more than 1 value per channel when training, got input [1, 2, 1, 1]")
  end)
end)
