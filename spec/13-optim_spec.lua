-- lunet.optim (API.md, Optimizers): the update rules on hand-computable
-- cases, every device against the reference, options checked, state that
-- follows a moved model, and the seed model learning on a tiny batch.
-- Trajectories against PyTorch are in 12-torch_reference_spec.lua.
local lunet = require("lunet")
local helpers = require("helpers")
local nn = lunet.nn
local optim = lunet.optim

--- A Linear(3, 2) with known weights and gradients.
local function known_linear(dev)
  local m = nn.Linear(3, 2)
  m.weight:copy(lunet.tensor({ { 1, -2, 3 }, { 0.5, 0, -1 } }))
  m.bias:copy(lunet.tensor({ 0.25, -0.5 }))
  m:to(dev or "cpu")
  return m
end

local function set_grads(m, gw, gb)
  m.grad_weight:copy(lunet.tensor(gw))
  m.grad_bias:copy(lunet.tensor(gb))
end

describe("optimizers", function()
  it("SGD: param - lr * grad", function()
    local m = known_linear()
    local opt = optim.SGD(m, { lr = 0.5 })
    set_grads(m, { { 1, 1, 1 }, { -2, 0, 4 } }, { 1, -1 })
    opt:step()
    helpers.assert_close(m.weight, { { 0.5, -2.5, 2.5 }, { 1.5, 0, -3 } }, 0, 1e-7)
    helpers.assert_close(m.bias, { -0.25, 0 }, 0, 1e-7)
  end)

  it("SGD with momentum: the buffer starts as the gradient, then decays", function()
    local m = known_linear()
    local opt = optim.SGD(m, { lr = 1, momentum = 0.5 })
    set_grads(m, { { 1, 0, 0 }, { 0, 0, 0 } }, { 0, 0 })
    opt:step() -- buf = 1
    opt:step() -- buf = 0.5 + 1 = 1.5
    assert.is_true(math.abs(m.weight:get(1, 1) - (1 - 1 - 1.5)) < 1e-6)
    assert.same({ 0.25, -0.5 }, m.bias:totable())
  end)

  it("SGD with nesterov: d = g + momentum * buf", function()
    local m = known_linear()
    local opt = optim.SGD(m, { lr = 1, momentum = 0.5, nesterov = true })
    set_grads(m, { { 1, 0, 0 }, { 0, 0, 0 } }, { 0, 0 })
    opt:step() -- buf = 1, d = 1.5
    opt:step() -- buf = 1.5, d = 1.75
    assert.is_true(math.abs(m.weight:get(1, 1) - (1 - 1.5 - 1.75)) < 1e-6)
  end)

  it("SGD weight decay adds weight_decay * param to the gradient", function()
    local m = known_linear()
    local opt = optim.SGD(m, { lr = 0.1, weight_decay = 0.5 })
    set_grads(m, { { 0, 0, 0 }, { 0, 0, 0 } }, { 0, 0 })
    opt:step()
    helpers.assert_close(m.weight, { { 0.95, -1.9, 2.85 }, { 0.475, 0, -0.95 } }, 1e-6, 1e-7)
  end)

  it("Adam: the first step moves each parameter by lr against its gradient's sign", function()
    local m = known_linear()
    local opt = optim.Adam(m, { lr = 0.01 })
    set_grads(m, { { 3, -0.2, 0.001 }, { -5, 2, 1 } }, { 1e-3, -7 })
    opt:step()
    helpers.assert_close(m.weight, { { 0.99, -1.99, 2.99 }, { 0.51, -0.01, -1.01 } }, 0, 2e-5)
    helpers.assert_close(m.bias, { 0.24, -0.49 }, 0, 2e-5)
    assert.equal(1, opt.state[1].step)
  end)

  for _, dev in ipairs(helpers.devices()) do
    if dev ~= "ref" then
      it("every configuration on " .. dev .. " matches the reference", function()
        for _, config in ipairs({
          { "SGD", { lr = 0.1 } }, { "SGD", { lr = 0.1, momentum = 0.9, dampening = 0.2, weight_decay = 1e-2 } },
          { "SGD", { lr = 0.05, momentum = 0.9, nesterov = true } },
          { "Adam", { lr = 1e-2 } }, { "Adam", { lr = 3e-3, betas = { 0.8, 0.9 }, eps = 1e-6, weight_decay = 0.1 } },
        }) do
          local results = {}
          for _, d in ipairs({ "ref", dev }) do
            lunet.manual_seed(31)
            local m = nn.Linear(600, 450):to(d) -- large enough for the threaded path
            local opt = optim[config[1]](m, config[2])
            for step = 1, 4 do
              m.grad_weight:copy(helpers.random({ 450, 600 }, 100 + step, nil, -1, 1))
              m.grad_bias:copy(helpers.random({ 450 }, 200 + step, nil, -1, 1))
              opt:step()
            end
            results[d] = m
          end
          helpers.assert_close(results[dev].weight, results.ref.weight, 1e-6, 1e-7, config[1] .. " weight")
          helpers.assert_close(results[dev].bias, results.ref.bias, 1e-6, 1e-7, config[1] .. " bias")
        end
      end)
    end
  end

  it("zero_grad zeroes the model's gradients", function()
    local m = known_linear()
    local opt = optim.Adam(m)
    set_grads(m, { { 1, 1, 1 }, { 1, 1, 1 } }, { 1, 1 })
    assert.equal(opt, opt:zero_grad())
    assert.equal(0, m.grad_weight:sum() + m.grad_bias:sum())
  end)

  it("keeps working when the model moves, with its state moved along", function()
    local function train(move)
      lunet.manual_seed(32)
      local m = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
      local opt = optim.Adam(m, { lr = 0.05 })
      local crit = nn.CrossEntropyLoss()
      local x, y = lunet.randn({ 6, 4 }), lunet.tensor({ 1, 2, 2, 1, 1, 2 }, { dtype = "int32" })
      for step = 1, 4 do
        if move and step == 3 then m:to("ref") end
        local dev = m[1].weight:device()
        opt:zero_grad()
        local out = m:forward(x:to(dev))
        crit:forward(out, y:to(dev))
        m:backward(x:to(dev), crit:backward(out, y:to(dev)))
        opt:step()
      end
      return m, opt
    end
    local still = train(false)
    local moved, opt = train(true)
    assert.equal("ref", tostring(opt.state[1].exp_avg:device()))
    helpers.assert_close(moved[3].weight, still[3].weight, 1e-5, 1e-6)
  end)

  it("refuses a parameter that changed shape under its state", function()
    local m = nn.Sequential(nn.Linear(2, 2))
    local opt = optim.SGD(m, { lr = 0.1, momentum = 0.9 })
    opt:step()
    m[1] = nn.Linear(3, 2)
    helpers.assert_error(function() opt:step() end,
      "lunet.optim.SGD:step: parameter 1 changed shape from [2, 2] to [2, 3]")
  end)

  it("validates its arguments", function()
    local m = known_linear()
    helpers.assert_error(function() optim.SGD({}, { lr = 0.1 }) end,
      "lunet.optim.SGD: argument #1: expected a model (an nn module such as nn.Sequential), got table")
    helpers.assert_error(function() optim.Adam(m.weight) end, "lunet.optim.Adam: argument #1: expected a model",
      "got a tensor")
    helpers.assert_error(function() optim.Adam(nil) end, "got nil")
    helpers.assert_error(function() optim.SGD(m) end, "the learning rate lr is required")
    helpers.assert_error(function() optim.SGD(m, { lr = 0 }) end, "lr must be positive, got 0")
    helpers.assert_error(function() optim.SGD(m, { lr = -1 }) end, "lr must be positive, got -1")
    helpers.assert_error(function() optim.SGD(m, { lr = "0.1" }) end, "lr must be a finite number, got string")
    helpers.assert_error(function() optim.SGD(m, { lr = 0 / 0 }) end, "lr must be a finite number")
    helpers.assert_error(function() optim.SGD(m, { lr = 0.1, momentum = -0.5 }) end, "momentum must be >= 0")
    helpers.assert_error(function() optim.SGD(m, { lr = 0.1, nesterov = true }) end,
      "nesterov momentum needs momentum > 0 and dampening 0")
    helpers.assert_error(function() optim.SGD(m, { lr = 0.1, momentum = 0.9, dampening = 0.1, nesterov = true }) end,
      "dampening 0.1")
    helpers.assert_error(function() optim.SGD(m, { lr = 0.1, nesterov = "yes" }) end, "nesterov must be a boolean")
    helpers.assert_error(function() optim.SGD(m, { lr = 0.1, weight_decay = -1 }) end, "weight_decay must be >= 0")
    helpers.assert_error(function() optim.SGD(m, { learning_rate = 0.1 }) end, "unknown option 'learning_rate'")
    helpers.assert_error(function() optim.Adam(m, { betas = { 0.9, 1 } }) end, "betas[2] must be in [0, 1), got 1")
    helpers.assert_error(function() optim.Adam(m, { betas = { -0.1, 0.9 } }) end, "betas[1] must be in [0, 1)")
    helpers.assert_error(function() optim.Adam(m, { betas = 0.9 }) end, "betas must be a pair {beta1, beta2}")
    helpers.assert_error(function() optim.Adam(m, { eps = 0 }) end, "eps must be positive")
    helpers.assert_error(function() optim.Adam(m, { lr = 1e-3, amsgrad = true }) end, "unknown option 'amsgrad'")
  end)
end)

describe("end to end", function()
  --- Losses of 20 steps of the seed model on a tiny batch, per device.
  local function trajectories(make_optimizer)
    local losses = {}
    for _, dev in ipairs({ "ref", "cpu" }) do
      lunet.manual_seed(33)
      local model = lunet.models.fashion_alexnet():to(dev)
      local crit = nn.CrossEntropyLoss()
      local opt = make_optimizer(model)
      local x = helpers.random({ 2, 1, 28, 28 }, 34):to(dev)
      local y = lunet.tensor({ 3, 8 }, { dtype = "int32", device = dev })
      losses[dev] = {}
      for step = 1, 20 do
        opt:zero_grad()
        local out = model:forward(x)
        losses[dev][step] = crit:forward(out, y)
        model:backward(x, crit:backward(out, y))
        opt:step()
      end
    end
    return losses.ref, losses.cpu
  end

  local function assert_agree(ref, cpu, steps, rtol)
    for step = 1, steps do
      assert.is_true(math.abs(cpu[step] - ref[step]) <= rtol * math.abs(ref[step]) + 1e-6,
        ("step %d: cpu %.7f, ref %.7f"):format(step, cpu[step], ref[step]))
    end
  end

  it("the seed model learns a tiny batch with Adam on the cpu and the reference", function()
    local ref, cpu = trajectories(function(model) return optim.Adam(model, { lr = 1e-3 }) end)
    for _, losses in ipairs({ ref, cpu }) do
      assert.is_true(losses[#losses] < 0.25 * losses[1], ("loss %.4f -> %.4f"):format(losses[1], losses[#losses]))
      local first, last = 0, 0
      for i = 1, 5 do first, last = first + losses[i], last + losses[#losses - 5 + i] end
      assert.is_true(last < 0.25 * first, "the last five losses are well below the first five")
    end
    -- Adam moves every weight by about lr times the sign of its gradient, so
    -- gradients near zero, whose sign float rounding decides, make two exact
    -- implementations part ways after a few steps: the first ones agree
    assert_agree(ref, cpu, 3, 1e-5)
  end)

  it("the cpu follows the reference's trajectory over 20 SGD steps of the seed model", function()
    local ref, cpu = trajectories(function(model) return optim.SGD(model, { lr = 0.02, momentum = 0.9 }) end)
    assert.is_true(ref[#ref] < 0.5 * ref[1], ("loss %.4f -> %.4f"):format(ref[1], ref[#ref]))
    assert_agree(ref, cpu, 20, 1e-4)
  end)
end)
