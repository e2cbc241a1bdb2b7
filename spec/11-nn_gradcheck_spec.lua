-- Finite-difference checks of every backward pass: input gradients and
-- parameter gradients of each layer, the loss, and a small network, on every
-- device. The scalar checked is L = sum(forward(x) * R) for a fixed random
-- projection R, whose gradient is exactly what backward(x, R) returns; a
-- sample of coordinates is perturbed by +-EPS (central differences, float32).
-- Inputs keep clear of kinks (ReLU at 0, ties in a max-pooling window) so
-- that the differences are taken where the function is smooth.
local lunet = require("lunet")
local helpers = require("helpers")
local nn = lunet.nn

local EPS = 1e-2
local TOL = 1e-2    -- relative to the largest analytic gradient entry
local SAMPLES = 12

--- Central differences of `loss()` w.r.t. `samples` coordinates of tensor
-- `t` (contiguous, any device) against the analytic gradient (a flat Lua
-- array; helpers.worst_gradient_error). Returns whether all agree and the
-- worst relative error.
local function check_coordinates(t, analytic, loss, samples)
  local worst = helpers.worst_gradient_error(t, analytic, loss, EPS, samples or SAMPLES, 7)
  return worst <= TOL, worst
end

local function flat_table(t)
  return t:to("cpu"):reshape({ -1 }):totable()
end

--- Distinct values spaced 0.05 apart around zero, in random order: no ties
-- for max pooling and no value within EPS of ReLU's kink.
local function distinct(shape, seed)
  local n = 1
  for _, s in ipairs(shape) do n = n * s end
  local perm = lunet.randperm(n, { seed = seed }):to("float32")
  return ((perm - (n + 1) / 2) * 0.05):reshape(shape)
end

--- Checks the input gradient and every parameter gradient of module `m`.
-- `reseed`: a seed set before each forward (Dropout draws the same mask).
local function gradcheck_module(dev, m, x, opts)
  opts = opts or {}
  m:to(dev)
  x = x:to(dev)
  if opts.reseed then lunet.manual_seed(opts.reseed) end
  local y = m:forward(x)
  local R = helpers.random(y:shape(), 77, nil, -1, 1):to(dev)
  m:zero_grad()
  local gx = flat_table(m:backward(x, R))
  local params, grads = m:parameters()
  local analytic = {}
  for i = 1, #grads do analytic[i] = flat_table(grads[i]) end
  local function loss()
    if opts.reseed then lunet.manual_seed(opts.reseed) end
    return (m:forward(x) * R):sum()
  end
  local results = {}
  local ok, worst = check_coordinates(x, gx, loss)
  results[#results + 1] = { "input", ok, worst }
  for i = 1, #params do
    ok, worst = check_coordinates(params[i], analytic[i], loss)
    results[#results + 1] = { "parameter " .. i, ok, worst }
  end
  return results
end

local function assert_all(results)
  for _, r in ipairs(results) do
    assert.is_true(r[2], ("%s: finite differences disagree, worst relative error %.3g"):format(r[1], r[3]))
  end
  return results
end

local cases = {
  { "Linear", function() return nn.Linear(5, 4) end, function() return lunet.randn({ 3, 5 }) end },
  { "Linear without bias, batch 1", function() return nn.Linear(4, 3, { bias = false }) end,
    function() return lunet.randn({ 1, 4 }) end },
  { "Conv2d kernel {3, 2}, stride 2, padding 2, non-square",
    function() return nn.Conv2d(2, 3, { 3, 2 }, { stride = 2, padding = 2 }) end,
    function() return lunet.randn({ 2, 2, 7, 6 }) end },
  { "Conv2d batch 1, 3x3, padding 1", function() return nn.Conv2d(3, 2, 3, { padding = 1 }) end,
    function() return lunet.randn({ 1, 3, 5, 4 }) end },
  { "MaxPool2d {3, 2}, stride {2, 1}, padding 1", function() return nn.MaxPool2d({ 3, 2 }, { 2, 1 }, 1) end,
    function() return distinct({ 2, 2, 6, 5 }, 1) end },
  { "MaxPool2d 2x2", function() return nn.MaxPool2d(2) end, function() return distinct({ 1, 3, 5, 4 }, 2) end },
  { "AvgPool2d 3x3, stride 2, padding 1", function() return nn.AvgPool2d(3, 2, 1) end,
    function() return lunet.randn({ 2, 2, 7, 5 }) end },
  { "ReLU", function() return nn.ReLU() end, function() return distinct({ 3, 4, 5 }, 3) end },
  { "Flatten", function() return nn.Flatten() end, function() return lunet.randn({ 2, 3, 2, 2 }) end },
  { "Dropout p = 0.4", function() return nn.Dropout(0.4) end, function() return lunet.randn({ 4, 10 }) end,
    { reseed = 5 } },
  { "BatchNorm2d training", function()
    local m = nn.BatchNorm2d(3)
    m.weight:copy(lunet.tensor({ 1.5, -0.7, 0.4 }))
    m.bias:copy(lunet.tensor({ 0.2, -0.1, 0.3 }))
    return m
  end, function() return lunet.randn({ 4, 3, 3, 2 }) end },
  { "BatchNorm2d eval", function()
    local m = nn.BatchNorm2d(2)
    m.weight:copy(lunet.tensor({ 1.5, -0.7 }))
    m.running_mean:copy(lunet.tensor({ 0.3, -0.2 }))
    m.running_var:copy(lunet.tensor({ 0.5, 2.0 }))
    return m:eval()
  end, function() return lunet.randn({ 3, 2, 2, 3 }) end },
  { "a small network", function()
    return nn.Sequential(nn.Conv2d(1, 3, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
      nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3))
  end, function() return lunet.randn({ 2, 1, 4, 4 }) end },
}

describe("finite-difference gradient checks", function()
  for _, dev in ipairs(helpers.devices()) do
    describe("on " .. dev, function()
      for _, case in ipairs(cases) do
        it(case[1], function()
          lunet.manual_seed(21)
          local m = case[2]()
          local results = assert_all(gradcheck_module(dev, m, case[3](), case[4]))
          local _, grads = m:parameters()
          assert.equal(1 + #grads, #results)
        end)
      end

      it("CrossEntropyLoss, gradient w.r.t. the logits", function()
        lunet.manual_seed(22)
        local crit = nn.CrossEntropyLoss()
        local logits = (lunet.randn({ 5, 4 }) * 2):to(dev)
        local labels = lunet.tensor({ 1, 4, 2, 2, 3 }, { dtype = "int32" }):to(dev)
        crit:forward(logits, labels)
        local analytic = flat_table(crit:backward(logits, labels))
        local ok, worst = check_coordinates(logits, analytic, function() return crit:forward(logits, labels) end, 20)
        assert.is_true(ok, "worst relative error " .. worst)
      end)
    end)
  end

  it("the check fails for a wrong gradient", function()
    -- the same check, fed a wrong-sign gradient and one missing the 1/N of
    -- the mean, must report a disagreement
    lunet.manual_seed(23)
    local m = nn.Linear(4, 3)
    local x = lunet.randn({ 3, 4 })
    local R = lunet.randn({ 3, 3 })
    m:forward(x)
    local gx = flat_table(m:backward(x, R))
    local loss = function() return (m:forward(x) * R):sum() end
    assert.is_true((check_coordinates(x, gx, loss)))
    local negated = {}
    for i, v in ipairs(gx) do negated[i] = -v end
    local ok, worst = check_coordinates(x, negated, loss)
    assert.is_false(ok)
    assert.is_true(worst > 1)

    local crit = nn.CrossEntropyLoss()
    local logits = lunet.randn({ 4, 3 })
    local labels = lunet.tensor({ 1, 2, 3, 1 }, { dtype = "int32" })
    local doubled = flat_table(crit:backward(logits, labels) * 2)
    ok = check_coordinates(logits, doubled, function() return crit:forward(logits, labels) end)
    assert.is_false(ok)
  end)
end)
