--- lunet.optim: SGD, Adam and AdamW with PyTorch's update rules, and
-- clip_grad_norm (API.md).
--
-- An optimizer holds a model, not a list of tensors: each step asks the model
-- for its parameters and gradients, so a model moved with m:to(device) keeps
-- training (the optimizer's state follows it to the new device). State is
-- kept flat (one tensor per kind, self.state[i] holding views of parameter
-- i's part), so a model flattened with model:flat_parameters() is updated in
-- one backend call; other models get one call per parameter, with the same
-- numbers. The updates are PyTorch 1.13's single-tensor ones (torch.optim.SGD,
-- Adam and AdamW), done in float32 by the device's kernels (csrc/ops_ref.c
-- has the plain version). `opt.lr` is read at every step.
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

local check_number = require("lunet.options").check_number

local options = require("lunet.options").read

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

--- A float32 rounding of a double, as a float32 tensor op would give.
local function f32(x)
  return (string.unpack("f", string.pack("f", x)))
end

local function shape_string(shape)
  return "[" .. table.concat(shape, ", ") .. "]"
end

--- The optimizer's state, kept flat: one tensor per state name (momentum
-- buffer, exp_avg, exp_avg_sq) holding every parameter's state in the
-- model's parameters() order, with self.state[i][name] a view of parameter
-- i's part (PyTorch's opt.state layout, per parameter). Created as zeros on
-- the first step; moved along when the model moved. Returns the model's
-- params and grads, and the model's flat buffers when it was flattened
-- (model:flat_parameters()) and still is, so one backend call updates all.
local function prepare(self, fname, names)
  local model = self.model
  local params, grads = model:parameters()
  local layout = self._layout
  if layout then
    if #params ~= #layout.shapes then
      error(("%s: the model has %d parameters, this optimizer's state %d; make a new "
        .. "optimizer for a new model"):format(fname, #params, #layout.shapes), 3)
    end
    for i, p in ipairs(params) do
      if not pcall(p.dim, p) then
        error(("%s: parameter %d of the model was freed"):format(fname, i), 3)
      end
      local shape = layout.shapes[i]
      local same = p:dim() == #shape
      for d = 1, #shape do same = same and p:size(d) == shape[d] end
      if not same then
        error(("%s: parameter %d changed shape from %s to %s since the last step; make a new "
          .. "optimizer for a new model"):format(fname, i, shape_string(shape),
          shape_string(p:shape())), 3)
      end
    end
  else
    layout = { shapes = {}, total = 0 }
    for i, p in ipairs(params) do
      if not pcall(p.dim, p) then
        error(("%s: parameter %d of the model was freed"):format(fname, i), 3)
      end
      layout.shapes[i] = p:shape()
      layout.total = layout.total + p:numel()
    end
    self._layout = layout
  end
  local dev, dtype = params[1] and params[1]:device(), params[1] and params[1]:dtype()
  for i = 2, #params do
    if params[i]:device() ~= dev or params[i]:dtype() ~= dtype then
      error(("%s: the parameters must share one device and dtype (parameter 1 is %s %s, "
        .. "parameter %d is %s %s)"):format(fname, tostring(dev), dtype, i,
        tostring(params[i]:device()), params[i]:dtype()), 3)
    end
  end
  local flat_state = self._flat_state
  if dev and (flat_state == nil or flat_state.device ~= dev or flat_state.dtype ~= dtype) then
    local new = { device = dev, dtype = dtype, tensors = {} }
    for _, name in ipairs(names) do
      local old = flat_state and flat_state.tensors[name]
      new.tensors[name] = old and old:to(dev):to(dtype)
        or lunet.zeros({ layout.total }, { device = dev, dtype = dtype })
    end
    local offset = 0
    for i, p in ipairs(params) do
      local st = self.state[i] or {}
      self.state[i] = st
      local n = p:numel()
      for _, name in ipairs(names) do
        st[name] = new.tensors[name]:narrow(1, offset + 1, n):view(layout.shapes[i])
      end
      offset = offset + n
    end
    self._flat_state = new
    flat_state = new
  end
  for i = 1, #params do
    for _, name in ipairs(names) do
      local t = self.state[i][name]
      if not pcall(t.dim, t) then
        error(("%s: the optimizer's state '%s' of parameter %d was freed (make a new optimizer, "
          .. "or leave its state alone)"):format(fname, name, i), 3)
      end
    end
  end
  local flat = nn._intact_flat(rawget(model, "_flat"), params, grads)
  return params, grads, flat, flat_state
end

--- Zeroes the state in place and restarts the step count, as a new optimizer
-- would start (the session's warm-up uses it to leave no trace).
function optim._reset_state(opt)
  if opt._flat_state then
    for _, t in pairs(opt._flat_state.tensors) do t:zero() end
  end
  for _, st in pairs(opt.state) do
    if st.step then st.step = 0 end
  end
  opt._started = false
  return opt
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
  local names = self.momentum ~= 0 and { "momentum_buffer" } or {}
  local params, grads, flat, state = prepare(self, fname, names)
  if #params == 0 then return self end
  local first = not self._started
  local lr = self.lr -- read every step: a scheduler may have changed it
  if flat then
    core.sgd_step(flat.params, flat.grads, state.tensors.momentum_buffer, lr, self.momentum,
      self.dampening, self.weight_decay, self.nesterov, first, fname)
  else
    for i, p in ipairs(params) do
      core.sgd_step(p, grads[i], self.state[i].momentum_buffer, lr, self.momentum,
        self.dampening, self.weight_decay, self.nesterov, first, fname)
    end
  end
  self._started = true
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
--- The options of Adam and AdamW, checked; weight_decay defaults to `decay`.
local function adam_options(fname, model, opts, decay)
  check_model(fname, model)
  opts = options(fname, opts, { lr = 1e-3, betas = false, eps = 1e-8, weight_decay = decay })
  local self = { model = model, state = {} }
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

function optim.Adam(model, opts)
  return setmetatable(adam_options("lunet.optim.Adam", model, opts, 0), Adam)
end

--- One Adam (or AdamW, with `update` core.adamw_step) update of the whole
-- model: one backend call over the flat buffers when the model is flat.
local function adam_update(self, fname, update)
  local params, grads, flat, state = prepare(self, fname, { "exp_avg", "exp_avg_sq" })
  if #params == 0 then return self end
  local step = (self.state[1].step or 0) + 1
  for i = 1, #params do self.state[i].step = step end
  local lr, b1, b2 = self.lr, self.betas[1], self.betas[2]
  if flat then
    update(flat.params, flat.grads, state.tensors.exp_avg, state.tensors.exp_avg_sq, lr, b1, b2,
      self.eps, self.weight_decay, step, fname)
  else
    for i, p in ipairs(params) do
      local st = self.state[i]
      update(p, grads[i], st.exp_avg, st.exp_avg_sq, lr, b1, b2, self.eps, self.weight_decay,
        step, fname)
    end
  end
  return self
end

function Adam:step()
  check_self(self, "step")
  return adam_update(self, "lunet.optim.Adam:step", core.adam_step)
end

-- --- AdamW ---------------------------------------------------------------------

local AdamW = setmetatable({}, { __index = Optimizer })
AdamW.__index = AdamW
AdamW.__name = "lunet.optim.AdamW"
classes[AdamW] = "AdamW"

--- AdamW(model, {lr=1e-3, betas={0.9, 0.999}, eps=1e-8, weight_decay=0.01}):
-- Adam with decoupled weight decay (PyTorch's torch.optim.AdamW):
--   param = param * (1 - lr * weight_decay), then Adam's update without
--   weight decay in the gradient.
function optim.AdamW(model, opts)
  local self = adam_options("lunet.optim.AdamW", model, opts, 0.01)
  return setmetatable(self, AdamW)
end

function AdamW:step()
  check_self(self, "step")
  return adam_update(self, "lunet.optim.AdamW:step", core.adamw_step)
end

-- --- clip_grad_norm -------------------------------------------------------------

--- Scales the model's gradients so that their total L2 norm is at most
-- max_norm, as torch.nn.utils.clip_grad_norm_ does: the total norm over all
-- gradients; when max_norm / (total + 1e-6) (in float32) is below 1, every
-- gradient is multiplied by it. Returns the total norm before clipping.
-- Reads the norm on the host: a step that clips waits for the device once.
function optim.clip_grad_norm(model, max_norm)
  local fname = "lunet.optim.clip_grad_norm"
  check_model(fname, model)
  check_number(fname, "max_norm", max_norm, function(v) return v >= 0 end, ">= 0")
  local params, grads = model:parameters()
  local flat = nn._intact_flat(rawget(model, "_flat"), params, grads)
  local list = flat and { flat.grads } or grads
  local sum_sq = 0
  for i, g in ipairs(list) do
    if not pcall(g.dim, g) then fail(fname, "gradient %d of the model was freed", i) end
    local sq = g * g
    sum_sq = sum_sq + sq:sum()
    sq:free()
  end
  local total = math.sqrt(sum_sq)
  local coef = f32(max_norm / f32(f32(total) + f32(1e-6)))
  if coef < 1 then
    for _, g in ipairs(list) do
      local scaled = g * coef
      g:copy(scaled)
      scaled:free()
    end
  end
  return total
end

-- Learning-rate schedulers (lua/lunet/lr_scheduler.lua): StepLR, CosineAnnealingLR, OneCycleLR.
for name, make in pairs(require("lunet.lr_scheduler")) do optim[name] = make end

return optim
