--- lunet.optim: SGD and Adam with PyTorch's update rules (API.md).
--
-- An optimizer holds a model, not a list of tensors: each step asks the model
-- for its parameters and gradients, so a model moved with m:to(device) keeps
-- training (the optimizer's state follows it to the new device). State is
-- kept per parameter position. The updates are PyTorch 1.13's single-tensor
-- ones (torch.optim.SGD and torch.optim.Adam), done in float32 by the
-- device's kernels (csrc/ops_ref.c has the plain version).
local core = require("lunet.core")
local lunet = require("lunet")
local nn = require("lunet.nn")

local optim = {}

local function fail(fname, fmt, ...)
  error(fname .. ": " .. fmt:format(...), 4)
end

local function describe(v)
  if lunet.is_tensor(v) then return "a tensor" end
  return type(v)
end

local function check_number(fname, name, v, ok, rule)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    fail(fname, "%s must be a finite number, got %s", name, type(v) == "number" and tostring(v) or type(v))
  end
  if not ok(v) then fail(fname, "%s must be %s, got %s", name, rule, tostring(v)) end
  return v
end

--- The options with defaults; unknown names are errors.
local function options(fname, opts, defaults)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then fail(fname, "options must be a table, got %s", type(opts)) end
  local out = {}
  for k, v in pairs(opts) do
    if defaults[k] == nil then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = name end
      table.sort(known)
      fail(fname, "unknown option '%s' (known: %s)", tostring(k), table.concat(known, ", "))
    end
    out[k] = v
  end
  for k, v in pairs(defaults) do
    if out[k] == nil then out[k] = v end
  end
  return out
end

-- The optimizer classes, to tell an optimizer from anything else.
local classes = {}

--- A method called with a dot (opt.step()) or on something else.
local function check_self(self, method)
  if classes[getmetatable(self)] == nil then
    error(("lunet.optim.Optimizer:%s: expected an optimizer as self, got %s (call it as opt:%s(), "
      .. "with a colon)"):format(method, describe(self), method), 3)
  end
end

local function check_model(fname, model)
  if not nn.is_module(model) then
    fail(fname, "argument #1: expected a model (an nn module such as nn.Sequential), got %s",
      describe(model))
  end
end

local function same_shape(a, b)
  if a:dim() ~= b:dim() then return false end
  for d = 1, a:dim() do
    if a:size(d) ~= b:size(d) then return false end
  end
  return true
end

--- State tensor `name` of parameter i in `st`, created as zeros on first use,
-- moved along when the parameter moved; true when it was just created.
local function state_tensor(fname, st, name, p, i)
  if not pcall(p.dim, p) then
    error(("%s: parameter %d of the model was freed"):format(fname, i), 3)
  end
  local t = st[name]
  if t ~= nil and not pcall(t.dim, t) then
    error(("%s: the optimizer's state '%s' of parameter %d was freed (make a new optimizer, "
      .. "or leave its state alone)"):format(fname, name, i), 3)
  end
  if t == nil then
    st[name] = lunet.zeros(p:shape(), { device = p:device(), dtype = p:dtype() })
    return st[name], true
  end
  if not same_shape(t, p) then
    error(("%s: parameter %d changed shape from [%s] to [%s] since the last step; make a new "
      .. "optimizer for a new model"):format(fname, i, table.concat(t:shape(), ", "),
      table.concat(p:shape(), ", ")), 3)
  end
  if t:device() ~= p:device() or t:dtype() ~= p:dtype() then
    t = t:to(p:device()):to(p:dtype())
    st[name] = t
  end
  return t, false
end

local Optimizer = {}
Optimizer.__index = Optimizer

function Optimizer:zero_grad()
  check_self(self, "zero_grad")
  self.model:zero_grad()
  return self
end

-- --- SGD ---------------------------------------------------------------------

local SGD = setmetatable({}, { __index = Optimizer })
SGD.__index = SGD
SGD.__name = "lunet.optim.SGD"
classes[SGD] = "SGD"

--- SGD(model, {lr=, momentum=0, dampening=0, weight_decay=0, nesterov=false}):
--   d = grad + weight_decay * param
--   buf = d on the first step, else momentum * buf + (1 - dampening) * d
--   d = nesterov and d + momentum * buf or buf          (with momentum)
--   param = param - lr * d
function optim.SGD(model, opts)
  local fname = "lunet.optim.SGD"
  check_model(fname, model)
  opts = options(fname, opts, { lr = false, momentum = 0, dampening = 0, weight_decay = 0, nesterov = false })
  if opts.lr == false then fail(fname, "the learning rate lr is required (e.g. {lr = 0.01})") end
  local self = setmetatable({ model = model, state = {} }, SGD)
  self.lr = check_number(fname, "lr", opts.lr, function(v) return v > 0 end, "positive")
  self.momentum = check_number(fname, "momentum", opts.momentum, function(v) return v >= 0 end, ">= 0")
  self.dampening = check_number(fname, "dampening", opts.dampening, function() return true end, "")
  self.weight_decay = check_number(fname, "weight_decay", opts.weight_decay,
    function(v) return v >= 0 end, ">= 0")
  if type(opts.nesterov) ~= "boolean" then
    fail(fname, "nesterov must be a boolean, got %s", type(opts.nesterov))
  end
  if opts.nesterov and (self.momentum <= 0 or self.dampening ~= 0) then
    fail(fname, "nesterov momentum needs momentum > 0 and dampening 0, got momentum %g, dampening %g",
      self.momentum, self.dampening)
  end
  self.nesterov = opts.nesterov
  return self
end

function SGD:step()
  local fname = "lunet.optim.SGD:step"
  check_self(self, "step")
  local params, grads = self.model:parameters()
  for i, p in ipairs(params) do
    local st = self.state[i]
    if not st then
      st = {}
      self.state[i] = st
    end
    local buf, first = nil, false
    if self.momentum ~= 0 then buf, first = state_tensor(fname, st, "momentum_buffer", p, i) end
    core.sgd_step(p, grads[i], buf, self.lr, self.momentum, self.dampening, self.weight_decay,
      self.nesterov, first, fname)
  end
  return self
end

-- --- Adam ----------------------------------------------------------------------

local Adam = setmetatable({}, { __index = Optimizer })
Adam.__index = Adam
Adam.__name = "lunet.optim.Adam"
classes[Adam] = "Adam"

--- Adam(model, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0}):
--   g = grad + weight_decay * param                     (L2, as torch.optim.Adam)
--   m = b1 * m + (1 - b1) * g;  v = b2 * v + (1 - b2) * g * g
--   param = param - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
function optim.Adam(model, opts)
  local fname = "lunet.optim.Adam"
  check_model(fname, model)
  opts = options(fname, opts, { lr = 1e-3, betas = false, eps = 1e-8, weight_decay = 0 })
  local self = setmetatable({ model = model, state = {} }, Adam)
  self.lr = check_number(fname, "lr", opts.lr, function(v) return v > 0 end, "positive")
  local betas = opts.betas == false and { 0.9, 0.999 } or opts.betas
  if type(betas) ~= "table" or #betas ~= 2 then
    fail(fname, "betas must be a pair {beta1, beta2}, got %s", describe(betas))
  end
  local in_range = function(v) return v >= 0 and v < 1 end
  self.betas = {
    check_number(fname, "betas[1]", betas[1], in_range, "in [0, 1)"),
    check_number(fname, "betas[2]", betas[2], in_range, "in [0, 1)"),
  }
  self.eps = check_number(fname, "eps", opts.eps, function(v) return v > 0 end, "positive")
  self.weight_decay = check_number(fname, "weight_decay", opts.weight_decay,
    function(v) return v >= 0 end, ">= 0")
  return self
end

function Adam:step()
  local fname = "lunet.optim.Adam:step"
  check_self(self, "step")
  local params, grads = self.model:parameters()
  for i, p in ipairs(params) do
    local st = self.state[i]
    if not st then
      st = { step = 0 }
      self.state[i] = st
    end
    local m = state_tensor(fname, st, "exp_avg", p, i)
    local v = state_tensor(fname, st, "exp_avg_sq", p, i)
    st.step = st.step + 1
    core.adam_step(p, grads[i], m, v, self.lr, self.betas[1], self.betas[2], self.eps,
      self.weight_decay, st.step, fname)
  end
  return self
end

-- Learning-rate schedulers (lua/lunet/lr_scheduler.lua): StepLR, CosineAnnealingLR, OneCycleLR.
for name, make in pairs(require("lunet.lr_scheduler")) do optim[name] = make end

return optim
