-- lunet.optim.StepLR, CosineAnnealingLR and OneCycleLR against the lr (and
-- momentum) sequences PyTorch 1.13 produces (spec/fixtures/torch_lr_schedulers.json,
-- written by spec/fixtures/make_torch_reference.py).
local lunet = require("lunet")
local helpers = require("helpers")
local cjson = require("cjson")

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "spec"
local fixtures = cjson.decode(helpers.read_file(here .. "/fixtures/torch_lr_schedulers.json"))

local function close(a, b)
  return math.abs(a - b) <= 1e-6 * math.max(math.abs(b), 1e-12) + 1e-15
end

local function optimizer_for(args)
  local model = lunet.nn.Linear(1, 1)
  if args.optimizer == "SGD" then
    return lunet.optim.SGD(model, { lr = args.lr, momentum = args.momentum or 0, nesterov = args.nesterov or false })
  end
  return lunet.optim.Adam(model, { lr = args.lr })
end

local function scheduler_options(args)
  local o = {}
  for k, v in pairs(args) do
    if k ~= "optimizer" and k ~= "lr" and k ~= "momentum" and k ~= "nesterov" then o[k] = v end
  end
  return o
end

describe("learning-rate schedulers against PyTorch", function()
  for i, case in ipairs(fixtures.schedulers) do
    it(("%s #%d %s"):format(case.name, i, cjson.encode(case.args)), function()
      local opt = optimizer_for(case.args)
      local sched = lunet.optim[case.name](opt, scheduler_options(case.args))
      for k, expected in ipairs(case.lr) do
        assert(close(opt.lr, expected), ("step %d: lr %.17g, PyTorch %.17g"):format(k, opt.lr, expected))
        assert.equal(opt.lr, sched:get_last_lr())
        if case.momentum then
          local m = case.momentum_kind == "momentum" and opt.momentum or opt.betas[1]
          assert(close(m, case.momentum[k]), ("step %d: momentum %.17g, PyTorch %.17g"):format(k, m,
            case.momentum[k]))
        end
        opt:step()
        sched:step()
      end
    end)
  end

  it("a scheduler drives a real training step on every device", function()
    for _, dev in ipairs(helpers.devices()) do
      lunet.manual_seed(3)
      local model = lunet.nn.Linear(3, 2):to(dev)
      local opt = lunet.optim.SGD(model, { lr = 0.1, momentum = 0.9, nesterov = true })
      local sched = lunet.optim.OneCycleLR(opt, { max_lr = 0.5, total_steps = 4 })
      local x = lunet.randn({ 4, 3 }):to(dev)
      local y = lunet.tensor({ 1, 2, 1, 2 }, { dtype = "int32" }):to(dev)
      local crit = lunet.nn.CrossEntropyLoss()
      for k = 1, 4 do
        opt:zero_grad()
        local out = model:forward(x)
        crit:forward(out, y)
        model:backward(x, crit:backward(out, y))
        opt:step()
        if k < 4 then sched:step() end
      end
      assert.is_true(close(opt.lr, 0.5 / 25 / 1e4), tostring(opt.lr))
      assert.is_true(close(opt.momentum, 0.95))
    end
  end)

  it("misuse is a clear error", function()
    local opt = lunet.optim.SGD(lunet.nn.Linear(1, 1), { lr = 0.1 })
    helpers.assert_error(function() lunet.optim.StepLR(opt, {}) end, "lunet.optim.StepLR", "step_size", "required")
    helpers.assert_error(function() lunet.optim.StepLR(opt, { step_size = 0 }) end, "step_size must be at least 1")
    helpers.assert_error(function() lunet.optim.StepLR(opt, { step_size = 2, gama = 0.1 }) end, "unknown option 'gama'")
    helpers.assert_error(function() lunet.optim.CosineAnnealingLR({}, { t_max = 3 }) end, "expected an optimizer")
    helpers.assert_error(function() lunet.optim.OneCycleLR(opt, { max_lr = 1 }) end, "total_steps", "required")
    helpers.assert_error(function() lunet.optim.OneCycleLR(opt, { max_lr = 1, total_steps = 2, anneal_strategy = "x" }) end,
      "anneal_strategy")
    local sched = lunet.optim.OneCycleLR(opt, { max_lr = 1, total_steps = 2 })
    sched:step()
    sched:step()
    helpers.assert_error(function() sched:step() end, "past total_steps 2")
    helpers.assert_error(function() sched.step() end, "with a colon")
  end)
end)
