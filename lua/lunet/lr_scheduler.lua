--- Learning-rate schedulers with PyTorch's formulas (torch.optim.lr_scheduler,
-- 1.13), exposed as lunet.optim.StepLR, CosineAnnealingLR and OneCycleLR.
--
--   local sched = lunet.optim.OneCycleLR(opt, {max_lr = 0.1, total_steps = n})
--   for each batch: ...; opt:step(); sched:step()
--
-- A scheduler writes `opt.lr` (and, for OneCycleLR, the momentum: SGD's
-- `opt.momentum` or Adam's `opt.betas[1]`); `sched:get_last_lr()` is the lr
-- now in force and `sched.last_epoch` counts the step() calls. As in PyTorch,
-- making the scheduler is its step 0: StepLR and CosineAnnealingLR start from
-- the optimizer's lr (`base_lr`), OneCycleLR sets it to max_lr / div_factor.
-- StepLR and CosineAnnealingLR use PyTorch's recursive ("chainable") forms,
-- so the numbers match PyTorch's step for step, within float64 rounding.
local lr_scheduler = {}

local function fail(fname, fmt, ...)
  error(fname .. ": " .. fmt:format(...), 3)
end

local options = require("lunet.options").read

local check_number = require("lunet.options").check_number

local function check_integer(fname, name, v, lo)
  local i = math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v))
  if not i then fail(fname, "%s must be an integer, got %s", name, tostring(v)) end
  if i < lo then fail(fname, "%s must be at least %d, got %d", name, lo, i) end
  return i
end

local function check_optimizer(fname, opt)
  if type(opt) ~= "table" or type(opt.step) ~= "function" or type(opt.lr) ~= "number" then
    fail(fname, "argument #1: expected an optimizer (lunet.optim.SGD, Adam, ...), got %s", type(opt))
  end
end

local Scheduler = {}
Scheduler.__index = Scheduler

local function check_self(self, method)
  if type(self) ~= "table" or getmetatable(self) == nil or getmetatable(self).__index ~= getmetatable(self)
    or type(self.compute) ~= "function" then
    error(("lunet.optim.LRScheduler:%s: expected a scheduler as self (call it as sched:%s(), with a colon)")
      :format(method, method), 3)
  end
end

--- Advances one step and sets the optimizer's lr for the next one.
function Scheduler:step()
  check_self(self, "step")
  self.last_epoch = self.last_epoch + 1
  self:compute()
  return self
end

function Scheduler:get_last_lr()
  check_self(self, "get_last_lr")
  return self.optimizer.lr
end

local function new_class(name)
  local cls = setmetatable({}, { __index = Scheduler })
  cls.__index = cls
  cls.__name = "lunet.optim." .. name
  return cls
end

-- --- StepLR ----------------------------------------------------------------------

local StepLR = new_class("StepLR")

--- StepLR(opt, {step_size=, gamma=0.1}): lr = base_lr * gamma^floor(epoch / step_size).
function lr_scheduler.StepLR(opt, opts)
  local fname = "lunet.optim.StepLR"
  check_optimizer(fname, opt)
  opts = options(fname, opts, { step_size = false, gamma = 0.1 }, { "step_size" })
  local self = setmetatable({ optimizer = opt, base_lr = opt.lr, last_epoch = 0 }, StepLR)
  self.step_size = check_integer(fname, "step_size", opts.step_size, 1)
  self.gamma = check_number(fname, "gamma", opts.gamma, function(v) return v > 0 end, "positive")
  return self
end

function StepLR:compute()
  if self.last_epoch ~= 0 and self.last_epoch % self.step_size == 0 then
    self.optimizer.lr = self.optimizer.lr * self.gamma
  end
end

-- --- CosineAnnealingLR -------------------------------------------------------------

local CosineAnnealingLR = new_class("CosineAnnealingLR")

--- CosineAnnealingLR(opt, {t_max=, eta_min=0}):
-- lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / t_max)) / 2,
-- in PyTorch's recursive form (which keeps going past t_max, back up).
function lr_scheduler.CosineAnnealingLR(opt, opts)
  local fname = "lunet.optim.CosineAnnealingLR"
  check_optimizer(fname, opt)
  opts = options(fname, opts, { t_max = false, eta_min = 0 }, { "t_max" })
  local self = setmetatable({ optimizer = opt, base_lr = opt.lr, last_epoch = 0 }, CosineAnnealingLR)
  self.t_max = check_integer(fname, "t_max", opts.t_max, 1)
  self.eta_min = check_number(fname, "eta_min", opts.eta_min, function(v) return v >= 0 end, ">= 0")
  return self
end

function CosineAnnealingLR:compute()
  local e, t, lr, eta = self.last_epoch, self.t_max, self.optimizer.lr, self.eta_min
  if e == 0 then
    lr = self.base_lr
  elseif (e - 1 - t) % (2 * t) == 0 then
    lr = lr + (self.base_lr - eta) * (1 - math.cos(math.pi / t)) / 2
  else
    lr = (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t)) * (lr - eta) + eta
  end
  self.optimizer.lr = lr
end

-- --- OneCycleLR -----------------------------------------------------------------------

local OneCycleLR = new_class("OneCycleLR")

local anneal = {
  cos = function(from, to, pct) return to + (from - to) / 2 * (math.cos(math.pi * pct) + 1) end,
  linear = function(from, to, pct) return (to - from) * pct + from end,
}

--- OneCycleLR(opt, {max_lr=, total_steps=, pct_start=0.3, anneal_strategy="cos",
-- div_factor=25, final_div_factor=1e4, cycle_momentum=true, base_momentum=0.85,
-- max_momentum=0.95}): lr rises from max_lr / div_factor to max_lr over the
-- first pct_start of the steps, then falls to initial_lr / final_div_factor;
-- the momentum (SGD's momentum, Adam's beta1) moves the opposite way.
-- Stepping past total_steps is an error, as in PyTorch.
function lr_scheduler.OneCycleLR(opt, opts)
  local fname = "lunet.optim.OneCycleLR"
  check_optimizer(fname, opt)
  opts = options(fname, opts, { max_lr = false, total_steps = false, pct_start = 0.3,
    anneal_strategy = "cos", div_factor = 25, final_div_factor = 1e4, cycle_momentum = true,
    base_momentum = 0.85, max_momentum = 0.95 }, { "max_lr", "total_steps" })
  local self = setmetatable({ optimizer = opt, last_epoch = 0 }, OneCycleLR)
  local positive = function(v) return v > 0 end
  self.max_lr = check_number(fname, "max_lr", opts.max_lr, positive, "positive")
  self.total_steps = check_integer(fname, "total_steps", opts.total_steps, 1)
  local pct = check_number(fname, "pct_start", opts.pct_start, function(v) return v >= 0 and v <= 1 end,
    "in [0, 1]")
  self.anneal = anneal[opts.anneal_strategy]
  if not self.anneal then
    fail(fname, "anneal_strategy must be \"cos\" or \"linear\", got %s", tostring(opts.anneal_strategy))
  end
  local div = check_number(fname, "div_factor", opts.div_factor, positive, "positive")
  local final_div = check_number(fname, "final_div_factor", opts.final_div_factor, positive, "positive")
  if type(opts.cycle_momentum) ~= "boolean" then
    fail(fname, "cycle_momentum must be a boolean, got %s", type(opts.cycle_momentum))
  end
  self.cycle_momentum = opts.cycle_momentum
  local base_m = check_number(fname, "base_momentum", opts.base_momentum, function() return true end, "")
  local max_m = check_number(fname, "max_momentum", opts.max_momentum, function() return true end, "")
  if self.cycle_momentum then
    if opt.momentum == nil and not (type(opt.betas) == "table") then
      fail(fname, "cycle_momentum needs an optimizer with momentum (SGD) or betas (Adam); " ..
        "pass cycle_momentum = false")
    end
    self.momentum_key = opt.momentum ~= nil and "momentum" or "beta1"
  end
  self.initial_lr = self.max_lr / div
  self.min_lr = self.initial_lr / final_div
  self.phases = {
    { end_step = pct * self.total_steps - 1, start_lr = self.initial_lr, end_lr = self.max_lr,
      start_momentum = max_m, end_momentum = base_m },
    { end_step = self.total_steps - 1, start_lr = self.max_lr, end_lr = self.min_lr,
      start_momentum = base_m, end_momentum = max_m },
  }
  self:compute()
  return self
end

function OneCycleLR:compute()
  local step = self.last_epoch
  if step > self.total_steps then
    self.last_epoch = self.last_epoch - 1
    error(("lunet.optim.OneCycleLR:step: stepped %d times, past total_steps %d"):format(step,
      self.total_steps), 3)
  end
  local start_step, lr, momentum = 0, nil, nil
  for i, phase in ipairs(self.phases) do
    if step <= phase.end_step or i == #self.phases then
      local pct = (step - start_step) / (phase.end_step - start_step)
      lr = self.anneal(phase.start_lr, phase.end_lr, pct)
      momentum = self.anneal(phase.start_momentum, phase.end_momentum, pct)
      break
    end
    start_step = phase.end_step
  end
  local opt = self.optimizer
  opt.lr = lr
  if self.cycle_momentum then
    if self.momentum_key == "momentum" then
      opt.momentum = momentum
    else
      opt.betas[1] = momentum
    end
  end
end

return lr_scheduler
