--- lunet.nn: neural-network modules with the Torch7 contract (API.md).
--
-- A module is a table whose metatable is its class. Conventions:
--  * `m.__typename` is the class name ("Linear", "Conv2d", ...), found through
--    the class; `nn.is_module(v)` tells modules from other values.
--  * `m:forward(input)` computes, keeps and returns `m.output`;
--    `m:backward(input, grad_output)` keeps and returns `m.grad_input` (the
--    gradient w.r.t. input) and ACCUMULATES parameter gradients into
--    `m.grad_weight`, `m.grad_bias` (zero them with `m:zero_grad()`).
--    `m:backward(input, grad_output, {input_gradient = false})` says the
--    caller has no use for the input gradient (the data of a training step,
--    as PyTorch's inputs without requires_grad): Sequential, Conv2d, Linear
--    and the fused blocks then skip computing it and return nil (a
--    Sequential passes it to its first step with parameters and does not run
--    the steps before it); other modules compute it as usual. The parameter
--    gradients are the same either way.
--  * Outputs, input gradients and workspaces are allocated once per input
--    shape (and device) and reused while it stays the same, so a steady
--    training step allocates no tensors. A returned output is overwritten by
--    the next forward: clone it to keep it.
--  * Geometry is exposed as fields, for FLOP counting and printing:
--    Linear.in_features/out_features; Conv2d.in_channels/out_channels and
--    kernel_size/stride/padding as {h, w}; pools kernel_size/stride/padding.
--  * `m:parameters()` returns two arrays (parameters, gradients) in module
--    order, weight before bias. `m:state_dict()` maps names ("weight",
--    "running_mean", and "<position>.<name>" inside Sequential, positions
--    1-based) to CPU copies; `m:load_state_dict(t)` checks names, shapes and
--    dtypes before copying anything.
-- The math lives in C (core.conv2d_forward and friends, csrc/nn_ops.c), on
-- whatever device the tensors are on.
local core = require("lunet.core")
local lunet = require("lunet")
local options = require("lunet.options")

local nn = {}

-- --- helpers --------------------------------------------------------------

local function shape_string(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

local function describe(v)
  if lunet.is_tensor(v) then return "a tensor" end
  if type(v) == "table" and v.__typename then return "nn." .. tostring(v.__typename) end
  return type(v)
end

--- The one error path of lunet's Lua modules: the C binding's own
-- (csrc/lua/binding.c), which reports the error at the first line outside
-- lunet's Lua files, the user's, whatever the depth of the call here.
local function raise(fmt, ...)
  core._raise(fmt:format(...))
end

--- An integer >= min (integral floats are accepted), else an error naming
-- the function and the argument.
local function check_integer(fname, what, v, min)
  local i = math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v))
  if not i then
    raise("%s: %s must be an integer, got %s", fname, what, type(v) == "number" and tostring(v) or type(v))
  end
  if i < min then
    raise("%s: %s must be at least %d, got %d", fname, what, min, i)
  end
  return i
end

--- A number or a pair {h, w} of integers, as {h, w}. Their ranges are the
-- C ops' rules (core.conv2d_check_params, core.pool2d_check_params).
local function check_pair(fname, what, v)
  if type(v) == "table" then
    if #v ~= 2 then
      raise("%s: %s must be a number or a pair {h, w}, got a table of %d entries", fname, what, #v)
    end
    local h, w = v[1], v[2]
    local hi = math.type(h) == "integer" and h or (type(h) == "number" and math.tointeger(h))
    local wi = math.type(w) == "integer" and w or (type(w) == "number" and math.tointeger(w))
    if not hi or not wi then
      raise("%s: %s must hold integers, got {%s, %s}", fname, what, tostring(h), tostring(w))
    end
    return { hi, wi }
  end
  local i = math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v))
  if not i then
    raise("%s: %s must be an integer or a pair {h, w}, got %s", fname, what,
      type(v) == "number" and tostring(v) or type(v))
  end
  return { i, i }
end

--- The options table with defaults filled in (lunet/options.lua): unknown
-- keys are errors, each value must have its default's type; keys in
-- `pair_keys` may also be pairs.
local function check_options(fname, opts, defaults, pair_keys)
  return options.read(fname, opts, defaults, nil, pair_keys or {})
end

--- Whether backward's options (its third argument, nil or a table) ask for
-- the input gradient; nn's own calls pass NO_INPUT_GRADIENT.
local NO_INPUT_GRADIENT = { input_gradient = false }
local function wants_input_gradient(fname, opts)
  if opts == nil then return true end
  if opts == NO_INPUT_GRADIENT then return false end
  return check_options(fname, opts, { input_gradient = true }).input_gradient ~= false
end

--- The first cycle among `root`'s modules (a module that contains itself,
-- directly or further down), as two paths: `at` refers back to `is`
-- ("model[2][1]", "model[2]"); nil when there is none. Children are the
-- modules a module holds in any field (Sequential's positions, a block).
local function find_cycle(root)
  local state = {} -- module -> its path while being visited, true when done
  local function visit(m, path)
    state[m] = path
    for k, v in pairs(m) do
      local mt = type(v) == "table" and getmetatable(v)
      if mt and rawget(mt, "__typename") ~= nil then
        local sub = math.type(k) == "integer" and ("%s[%d]"):format(path, k)
          or ("%s.%s"):format(path, tostring(k))
        local seen = state[v]
        if type(seen) == "string" then return sub, seen end
        if seen == nil then
          local at, is = visit(v, sub)
          if at then return at, is end
        end
      end
    end
    state[m] = true
  end
  return visit(root, "model")
end
nn._find_cycle = find_cycle

-- A module that contains itself would recurse until "stack overflow" (or,
-- building names, until memory runs out). Walking the modules on every call
-- would cost the hot paths, so methods look only when the Lua stack is
-- already this deep, which a real model never is and a cycle soon makes it.
local DEEP_STACK = 200

--- "lunet.nn.<Class>:<method>" of the outermost module method on the stack:
-- the call the user made, which a cycle found deep inside should name.
local function outermost_method(fname)
  for level = 3, math.huge do
    local info = debug.getinfo(level, "Sn")
    if not info then break end
    if info.source:match("[/@]lunet/nn%.lua$") and info.name and info.name:match("^[%a_][%w_]*$") then
      local _, m = debug.getlocal(level, 1)
      local mt = type(m) == "table" and getmetatable(m)
      if mt and rawget(mt, "__typename") ~= nil then
        fname = ("lunet.nn.%s:%s"):format(m.__typename, info.name)
      end
    end
  end
  return fname
end

local function check_acyclic(self, fname, always)
  if always or debug.getinfo(DEEP_STACK, "l") then
    local at, is = find_cycle(self)
    if at then
      if not always then fname = outermost_method(fname) end
      raise("%s: the module contains itself: %s is %s (a cycle)", fname, at, is)
    end
  end
end

--- A method called with a dot (m.forward(x)) or on something that is not a
-- module instance (nn.Linear:forward(x)) would fail far inside; say so here.
-- Also refuses a module that contains itself (see check_acyclic).
local function check_self(self, class_name, method)
  local mt = type(self) == "table" and getmetatable(self)
  local ok = mt and rawget(mt, "__typename") ~= nil
  if ok and class_name ~= "Module" then
    -- an instance of nn[class_name] or of a class derived from it
    local cls, wanted = mt, nn[class_name]
    while cls and cls ~= wanted do
      local parent = getmetatable(cls)
      cls = parent and parent.__index
    end
    ok = cls == wanted
  end
  if not ok then
    raise("lunet.nn.%s:%s: expected a module as self, got %s (call it as m:%s(...), with a colon)",
      class_name, method, describe(self), method)
  end
  check_acyclic(self, ("lunet.nn.%s:%s"):format(self.__typename, method),
    method == "state_dict" or method == "load_state_dict")
end

--- Backward needs the state its forward pass kept (Sequential, Dropout; the
-- pools, ReLU and BatchNorm check their own). Linear, Conv2d, Flatten and
-- CrossEntropyLoss compute backward from the arguments alone, as in Torch7.
local function check_forward_done(self)
  if self.output == nil then
    raise("%s: call forward before backward", self._fname.backward)
  end
end

--- A live tensor (not freed).
local function is_live(t)
  return lunet.is_tensor(t) and (pcall(t.dim, t))
end

--- A new parameter tensor; a shape too large for memory is reported by the
-- layer being built, not by lunet.empty.
local function new_parameter(fname, shape, fill)
  local ok, t = pcall(function()
    local p = lunet.empty(shape)
    if fill then fill(p) else p:zero() end
    return p
  end)
  if not ok then raise("%s: %s", fname, (tostring(t):gsub("^.-lunet%.empty: ", ""))) end
  return t
end

local function uniform(fname, shape, bound)
  return new_parameter(fname, shape, function(p) p:uniform(-bound, bound) end)
end

-- --- geometry helpers -----------------------------------------------------
-- Each class states its own geometry beside its forward, as
-- Class:_geometry(shape) -> output shape, forward FLOPs, products: shapes
-- are full shapes, batch included; FLOPs count a multiply-add as 2 and an
-- elementwise op as 1 per element; `products` is the part of the FLOPs spent
-- in matrix products (convolutions and linear layers, bias excluded), the
-- "model FLOPs" the benchmarks divide by the time (lunet.bench.model_flops).
-- Containers add up their children's. m:output_shape, m:flops and m:summary
-- (Module, below) check the argument and ask the module.

local function numel_of(shape)
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  return n
end

local function shape_text(shape)
  return "[" .. table.concat(shape, ", ") .. "]"
end

--- The geometry of an op that keeps the shape and costs `per_element` FLOPs
-- an element.
local function elementwise_geometry(per_element)
  return function(_, shape)
    return { table.unpack(shape) }, per_element * numel_of(shape), 0
  end
end

--- The output height and width of m's sliding window (kernel_size, stride,
-- padding, as Conv2d and the pools hold them) over an input [N, C, H, W].
local function window_output(m, shape, what)
  if #shape ~= 4 then
    raise("lunet.nn.%s:output_shape: expected input [N, C, H, W], got %s", m.__typename, shape_text(shape))
  end
  local k, s, p = m.kernel_size, m.stride or m.kernel_size, m.padding or { 0, 0 }
  local h = (shape[3] + 2 * p[1] - k[1]) // s[1] + 1
  local w = (shape[4] + 2 * p[2] - k[2]) // s[2] + 1
  if h < 1 or w < 1 then
    raise("lunet.nn.%s:output_shape: input %s is smaller than the %s %dx%d", m.__typename,
      shape_text(shape), what, k[1], k[2])
  end
  return h, w
end

--- The geometry of `modules` run one after the other.
local function chain_geometry(modules, shape)
  local flops, products = 0, 0
  for _, m in ipairs(modules) do
    local f, p
    shape, f, p = m:_geometry(shape)
    flops, products = flops + f, products + p
  end
  return shape, flops, products
end

local function check_shape_arg(fname, shape)
  if type(shape) ~= "table" or #shape == 0 then
    raise("%s: input_shape must be an array of sizes, e.g. {64, 1, 28, 28}, got %s", fname,
      type(shape) == "table" and "an empty table" or type(shape))
  end
  for i, v in ipairs(shape) do
    if math.type(v) ~= "integer" or v < 0 then
      raise("%s: input_shape[%d] must be a non-negative integer, got %s", fname, i, tostring(v))
    end
  end
end

-- --- classes ---------------------------------------------------------------

local Module

-- module -> its constructor's arguments (table.pack'ed), for lunet.save's
-- architecture (lunet/serialize.lua); weak keys, so nothing outlives a module.
local constructor_args = setmetatable({}, { __mode = "k" })

--- The arguments `m` was built with (table.pack'ed, as given), or nil for a
-- module not built by calling its class.
function nn._constructor_args(m)
  return constructor_args[m]
end

-- Lazily zeroed gradients (see Module:zero_grad): after zero_grad a module
-- keeps its gradient tensors in `_lazy_grads`, not in its `grad_<name>`
-- fields, until its next backward writes them (no zeros written, none read
-- back). Reading such a field before that zeroes them there and then, so
-- `m.grad_weight` always reads as the contract says.
local function materialize_grads(m)
  local lazy = rawget(m, "_lazy_grads")
  if not lazy then return end
  for name, g in pairs(lazy) do
    if is_live(g) then g:zero() end
    rawset(m, name, g)
  end
  m._lazy_grads = nil
end

--- Whether m's backward adds into its parameter gradients (true) or writes
-- them (false: the first backward after zero_grad). Puts lazily zeroed
-- gradients back in their fields, to be written by the caller.
local function grads_accumulate(m)
  local lazy = rawget(m, "_lazy_grads")
  if not lazy then return true end
  for name, g in pairs(lazy) do rawset(m, name, g) end
  m._lazy_grads = nil
  return false
end
nn._grads_accumulate = grads_accumulate

--- Defines nn.<name>, a class inheriting from `parent`; calling the class
-- builds an instance through its __init (and records its arguments, so
-- that any class, nested modules as arguments included, can be saved whole).
local function class(name, parent)
  local cls = {}
  cls.__index = function(m, key)
    local v = cls[key]
    if v == nil and rawget(m, "_lazy_grads") and m._lazy_grads[key] then
      materialize_grads(m)
      return rawget(m, key)
    end
    return v
  end
  cls.__lazy_grads = true -- its instances read lazily zeroed gradients as zeros
  cls.__typename = name
  cls.__name = "lunet.nn." .. name
  -- names the C ops give in their error messages
  cls._fname = {
    new = "lunet.nn." .. name,
    forward = "lunet.nn." .. name .. ":forward",
    backward = "lunet.nn." .. name .. ":backward",
  }
  cls.__tostring = function(m)
    check_acyclic(m, "tostring(lunet.nn." .. name .. ")")
    return m:__repr()
  end
  setmetatable(cls, {
    __index = parent,
    __call = function(c, ...)
      local self = setmetatable({}, c)
      self:__init(...)
      constructor_args[self] = table.pack(...)
      return self
    end,
  })
  nn[name] = cls
  return cls
end

function nn.is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and type(v.forward) == "function"
    and type(v.backward) == "function" and type(v.parameters) == "function"
end

-- --- Module: the base class ---------------------------------------------------

Module = class("Module")
-- Tensors a class owns, by role: parameters (each with grad_<name>), buffers
-- (saved, not trained) and caches (dropped by :to()).
Module._params = {}
Module._buffers = {}
Module._caches = { "output", "grad_input" }

function Module:__init()
  self.training = true
end

function Module:forward()
  raise("%s: not implemented for this module", self._fname.forward)
end

function Module:backward()
  raise("%s: not implemented for this module", self._fname.backward)
end

--- Output shape, forward FLOPs and matrix-product FLOPs for an input of
-- `shape` (see "geometry helpers"). Every class of nn states its own; this
-- default (same shape, one FLOP per element) is for modules made elsewhere.
Module._geometry = elementwise_geometry(1)

--- The modules inside this one, in order, with the names a summary gives
-- them ({{module, name}, ...}); containers state theirs.
function Module:_children()
  return {}
end

--- The output's shape for an input of shape `input_shape` (batch included),
-- without running anything.
function Module:output_shape(input_shape)
  check_self(self, "Module", "output_shape")
  check_shape_arg(("lunet.nn.%s:output_shape"):format(self.__typename), input_shape)
  return (self:_geometry(input_shape))
end

--- The forward pass's FLOPs for an input of `input_shape`, and as a second
-- value the part spent in matrix products (2 per multiply-add of the
-- convolutions and linear layers: the benchmarks' model FLOPs).
function Module:flops(input_shape)
  check_self(self, "Module", "flops")
  check_shape_arg(("lunet.nn.%s:flops"):format(self.__typename), input_shape)
  local _, flops, products = self:_geometry(input_shape)
  return flops, products
end

function Module:parameters()
  check_self(self, "Module", "parameters")
  local params, grads = {}, {}
  for _, name in ipairs(self._params) do
    if self[name] then
      params[#params + 1] = self[name]
      grads[#grads + 1] = self["grad_" .. name]
    end
  end
  return params, grads
end

--- Zeroes every parameter gradient, lazily: no memory is written; the next
-- backward of each module writes its gradients instead of adding to them
-- (a second backward before zero_grad adds, as the contract says), and a
-- gradient read before that reads as zeros (see materialize_grads). Modules
-- inside this one (Sequential's, a block's) are found among its fields.
function Module:zero_grad()
  check_self(self, "Module", "zero_grad")
  check_acyclic(self, ("lunet.nn.%s:zero_grad"):format(self.__typename), true)
  -- a class made elsewhere (not by class()) would read a lazy gradient as nil
  local lazy_ok = rawget(getmetatable(self), "__lazy_grads")
  local count = 0
  for _, name in ipairs(self._params) do
    local gname = "grad_" .. name
    if rawget(self, name) ~= nil then
      count = count + 1
      local g = rawget(self, gname)
      if g ~= nil then
        if not is_live(g) then
          raise("lunet.nn.%s:zero_grad: gradient %d was freed", self.__typename, count)
        end
        if lazy_ok then
          local lazy = rawget(self, "_lazy_grads") or {}
          lazy[gname] = g
          rawset(self, gname, nil)
          self._lazy_grads = lazy
        else
          g:zero()
        end
      end
    end
  end
  for _, child in pairs(self) do
    if child ~= self and nn.is_module(child) then child:zero_grad() end
  end
  return self
end

--- The flat buffers of flat_parameters if every parameter and gradient of
-- `params`, `grads` (from m:parameters()) is still the view it made, else nil.
local function intact_flat(flat, params, grads)
  if not flat or #params ~= #flat.param_views then return nil end
  for i, p in ipairs(params) do
    if p ~= flat.param_views[i] or grads[i] ~= flat.grad_views[i] then return nil end
  end
  if not is_live(flat.params) or not is_live(flat.grads) then return nil end
  return flat
end
nn._intact_flat = intact_flat

--- Every parameter in one flat tensor and every gradient in another, on the
-- model's device, in m:parameters() order; each module's weight,
-- grad_weight, bias, grad_bias (BatchNorm's too) becomes a view into them,
-- holding the values it had. An optimizer then updates the whole model in
-- one call, and an allreduce sums every gradient at once. Called again it
-- returns the same two tensors while every field is still their view (after
-- m:to(device) it flattens anew there: :to keeps a model flat). Tensors taken
-- from the fields before the call are no longer the model's parameters.
function Module:flat_parameters()
  check_self(self, "Module", "flat_parameters")
  local fname = ("lunet.nn.%s:flat_parameters"):format(self.__typename)
  local params, grads = self:parameters()
  local flat = intact_flat(rawget(self, "_flat"), params, grads)
  if flat then return flat.params, flat.grads end
  local owner = {}
  for _, slot in pairs(self:_named_tensors("", {})) do owner[slot[1][slot[2]]] = slot end
  local total, dev, dtype = 0, nil, nil
  for i, p in ipairs(params) do
    if not is_live(p) or not is_live(grads[i]) then
      raise("%s: parameter %d or its gradient was freed", fname, i)
    end
    if owner[p] == nil then
      raise("%s: parameter %d is not a field of a module inside this one", fname, i)
    end
    dev, dtype = dev or p:device(), dtype or p:dtype()
    if p:device() ~= dev or p:dtype() ~= dtype then
      raise("%s: the parameters must share one device and dtype (parameter 1 is %s %s, "
        .. "parameter %d is %s %s)", fname, tostring(dev), dtype, i, tostring(p:device()), p:dtype())
    end
    total = total + p:numel()
  end
  dev, dtype = dev or lunet.device("cpu"), dtype or "float32"
  flat = {
    params = lunet.empty({ total }, { device = dev, dtype = dtype }),
    grads = lunet.empty({ total }, { device = dev, dtype = dtype }),
    param_views = {}, grad_views = {},
  }
  local offset = 0
  for i, p in ipairs(params) do
    local n, shape = p:numel(), p:shape()
    local pv = flat.params:narrow(1, offset + 1, n):view(shape)
    local gv = flat.grads:narrow(1, offset + 1, n):view(shape)
    pv:copy(p)
    gv:copy(grads[i])
    local m, name = owner[p][1], owner[p][2]
    rawset(m, name, pv)
    rawset(m, "grad_" .. name, gv)
    flat.param_views[i], flat.grad_views[i] = pv, gv
    offset = offset + n
  end
  self._flat = flat
  return flat.params, flat.grads
end

--- After :to(), a model that was flat is flattened again on its new device.
local function keep_flat(self)
  if rawget(self, "_flat") then
    self._flat = nil
    self:flat_parameters()
  end
end

--- Checks a target of m:to() before anything moves, so that a bad one
-- leaves the module as it was (and the error names the module's method).
local function check_target(self, target)
  local ok, err = pcall(function() return lunet.empty({ 0 }):to(target) end)
  if not ok then
    raise("lunet.nn.%s:to: %s", self.__typename, (tostring(err):gsub("^.-lunet%.Tensor:to: ", "")))
  end
end

function Module:train(mode)
  check_self(self, "Module", "train")
  self.training = mode ~= false
  return self
end

function Module:eval()
  check_self(self, "Module", "eval")
  return self:train(false)
end

--- Moves (or casts) parameters, gradients and buffers in place; cached
-- outputs are dropped and reallocated on the next forward.
function Module:to(target)
  check_self(self, "Module", "to")
  check_target(self, target)
  -- a freed tensor is reported as this method's, before anything moves
  for _, list in ipairs({ self._params, self._buffers }) do
    for _, name in ipairs(list) do
      for _, key in ipairs({ name, "grad_" .. name }) do
        local t = self[key]
        if t ~= nil and lunet.is_tensor(t) and not is_live(t) then
          raise("%s: '%s' of nn.%s was freed",
            outermost_method(("lunet.nn.%s:to"):format(self.__typename)), key, self.__typename)
        end
      end
    end
  end
  for _, name in ipairs(self._params) do
    if self[name] then
      self[name] = self[name]:to(target)
      self["grad_" .. name] = self["grad_" .. name]:to(target)
    end
  end
  for _, name in ipairs(self._buffers) do
    if self[name] then self[name] = self[name]:to(target) end
  end
  for _, name in ipairs(self._caches) do self[name] = nil end
  keep_flat(self)
  return self
end

--- name -> {module, field} for every saved tensor, with `prefix`.
function Module:_named_tensors(prefix, out)
  for _, list in ipairs({ self._params, self._buffers }) do
    for _, name in ipairs(list) do
      if self[name] then out[prefix .. name] = { self, name } end
    end
  end
  return out
end

function Module:state_dict()
  check_self(self, "Module", "state_dict")
  local out = {}
  for name, slot in pairs(self:_named_tensors("", {})) do
    local t = slot[1][slot[2]]
    if not is_live(t) then raise("lunet.nn.%s:state_dict: '%s' was freed", self.__typename, name) end
    local copy = t:to("cpu")
    if copy == t then copy = t:clone() end
    out[name] = copy
  end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  return keys
end

function Module:load_state_dict(state)
  check_self(self, "Module", "load_state_dict")
  local fname = ("lunet.nn.%s:load_state_dict"):format(self.__typename)
  if type(state) ~= "table" or getmetatable(state) ~= nil then
    -- lunet.load of a saved module gives the module back, not its state
    local hint = nn.is_module(state) and " (a module: pass its :state_dict(), or use the module "
      .. "lunet.load returned as it is)" or ""
    raise("%s: expected a table of name -> tensor (from state_dict or lunet.load), got %s%s", fname,
      describe(state), hint)
  end
  local own = self:_named_tensors("", {})
  local missing, unexpected = {}, {}
  for name in pairs(own) do
    if state[name] == nil then missing[#missing + 1] = name end
  end
  for name in pairs(state) do
    if own[name] == nil then unexpected[#unexpected + 1] = tostring(name) end
  end
  table.sort(missing)
  table.sort(unexpected)
  if #missing > 0 or #unexpected > 0 then
    local parts = {}
    if #missing > 0 then parts[#parts + 1] = "missing " .. table.concat(missing, ", ") end
    if #unexpected > 0 then parts[#parts + 1] = "unexpected " .. table.concat(unexpected, ", ") end
    raise("%s: the names do not match this model: %s", fname, table.concat(parts, "; "))
  end
  -- everything is checked before anything is copied
  for _, name in ipairs(sorted_keys(own)) do
    local t, target = state[name], own[name][1][own[name][2]]
    if not lunet.is_tensor(t) then
      raise("%s: '%s' must be a tensor, got %s", fname, name, describe(t))
    end
    if not is_live(t) then
      raise("%s: '%s' is a freed tensor", fname, name)
    end
    if not is_live(target) then
      raise("%s: this model's '%s' was freed", fname, name)
    end
    if shape_string(t) ~= shape_string(target) then
      raise("%s: '%s' has shape %s, this model needs %s", fname, name,
        shape_string(t), shape_string(target))
    end
    if t:dtype() ~= target:dtype() then
      raise("%s: '%s' is %s, this model needs %s", fname, name, t:dtype(), target:dtype())
    end
  end
  for name, slot in pairs(own) do
    slot[1][slot[2]]:copy(state[name])
  end
  return self
end

function Module:__repr()
  return "nn." .. self.__typename .. "()"
end

-- --- Sequential ---------------------------------------------------------------

local Sequential = class("Sequential", Module)

function Sequential:__init(...)
  Module.__init(self)
  local n, list = select("#", ...), { ... }
  if n == 1 and type(list[1]) == "table" and getmetatable(list[1]) == nil then
    list = list[1]
    n = #list
  end
  for i = 1, n do
    if not nn.is_module(list[i]) then
      raise("lunet.nn.Sequential: module %d is %s, not a module", i, describe(list[i]))
    end
    self[i] = list[i]
  end
end

function Sequential:add(m)
  check_self(self, "Sequential", "add")
  if not nn.is_module(m) then
    raise("lunet.nn.Sequential:add: expected a module, got %s", describe(m))
  end
  self[#self + 1] = m
  return self
end

function Sequential:_geometry(shape)
  local modules = {}
  for i = 1, #self do modules[i] = self[i] end
  return chain_geometry(modules, shape)
end

function Sequential:_children()
  local list = {}
  for i = 1, #self do list[i] = { self[i], tostring(i) } end
  return list
end

-- --- fusion: Conv2d -> ReLU -> MaxPool2d(2) as one module -------------------------------

--- nn.ConvReLUPool(conv, relu, pool): the three modules run as one op
-- (core.conv_block_forward/backward) on devices whose backend has it, so the
-- convolution's output, the largest tensor of such a network, is never
-- written out and read back. It holds the three modules themselves (their
-- parameters stay theirs). Values and gradients are those of the three run
-- one after the other; what is not kept is the intermediate tensors: after a
-- fused pass the Conv2d's and the ReLU's `output`, and the ReLU's and the
-- pool's `grad_input`, are nil. Where the op does not apply (another device,
-- an unusual input) it runs the three modules one by one, whose errors then
-- name the module at fault.
local ConvReLUPool = class("ConvReLUPool", Module)

function ConvReLUPool:__init(conv, relu, pool)
  Module.__init(self)
  self.conv, self.relu, self.pool = conv, relu, pool
end

--- Whether the three modules form a block the fused op covers: Conv2d, ReLU,
-- then 2x2 max pooling with stride 2 and no padding.
function ConvReLUPool.matches(conv, relu, pool)
  if getmetatable(conv) ~= nn.Conv2d or getmetatable(relu) ~= nn.ReLU
    or getmetatable(pool) ~= nn.MaxPool2d then
    return false
  end
  local k, s, p = pool.kernel_size, pool.stride, pool.padding
  return k[1] == 2 and k[2] == 2 and s[1] == 2 and s[2] == 2 and p[1] == 0 and p[2] == 0
end

--- Whether the fused op runs for input x: a float32 [N, C, H, W] input on the
-- weight's device, which has the op, and a convolution output of at least 2x2.
local function fusable_input(conv, x)
  if not lunet.is_tensor(x) or x:dim() ~= 4 or x:dtype() ~= "float32"
    or x:size(2) ~= conv.in_channels or x:device() ~= conv.weight:device()
    or not core.conv_block_supported(x:device()) then
    return false
  end
  local kh, kw = conv.kernel_size[1], conv.kernel_size[2]
  local sh, sw = conv.stride[1], conv.stride[2]
  local ph, pw = conv.padding[1], conv.padding[2]
  local h, w = x:size(3) + 2 * ph - kh, x:size(4) + 2 * pw - kw
  return h >= 0 and w >= 0 and h // sh + 1 >= 2 and w // sw + 1 >= 2
end

function ConvReLUPool:parameters()
  check_self(self, "ConvReLUPool", "parameters")
  return self.conv:parameters()
end

function ConvReLUPool:_geometry(shape)
  return chain_geometry({ self.conv, self.relu, self.pool }, shape)
end

function ConvReLUPool:_children()
  return { { self.conv, "conv" }, { self.relu, "relu" }, { self.pool, "pool" } }
end

function ConvReLUPool:__repr()
  return "nn.ConvReLUPool(" .. tostring(self.conv) .. ", " .. tostring(self.relu) .. ", "
    .. tostring(self.pool) .. ")"
end

function ConvReLUPool:forward(input)
  check_self(self, "ConvReLUPool", "forward")
  local conv, relu, pool = self.conv, self.relu, self.pool
  self._fused = fusable_input(conv, input)
  if self._fused then
    local st, pd = conv.stride, conv.padding
    -- the Conv2d's mode: a Sequential's train/eval reaches its children, not
    -- these steps
    if conv.training then
      pool.output, pool._winner = core.conv_block_forward(input, conv.weight, conv.bias, st[1],
        st[2], pd[1], pd[2], pool.output, pool._winner, conv._fname.forward)
    else
      -- evaluate mode: the pooling winners are only backward's; a backward
      -- after this forward computes them then
      pool.output = core.conv_block_forward(input, conv.weight, conv.bias, st[1], st[2], pd[1],
        pd[2], pool.output, false, conv._fname.forward)
    end
    self._without_winners = not conv.training
    conv.output, relu.output = nil, nil
  else
    pool:forward(relu:forward(conv:forward(input)))
  end
  self.output = pool.output
  return self.output
end

function ConvReLUPool:backward(input, grad_output, opts)
  check_self(self, "ConvReLUPool", "backward")
  local conv, relu, pool = self.conv, self.relu, self.pool
  local input_gradient = wants_input_gradient(conv._fname.backward, opts)
  if self._fused then
    local st, pd = conv.stride, conv.padding
    if self._without_winners then
      -- into a new output: pool.output, the forward's result, is left as it is
      local _
      _, pool._winner = core.conv_block_forward(input, conv.weight, conv.bias, st[1], st[2],
        pd[1], pd[2], nil, pool._winner, conv._fname.forward)
      self._without_winners = false
    end
    local accumulate = grads_accumulate(conv)
    -- dx: the last call's tensor, nil (a new one) or false (no input gradient:
    -- conv_block_backward returns nothing)
    local dx = conv.grad_input
    if not input_gradient then dx = false end
    conv.grad_input = core.conv_block_backward(input, conv.weight, grad_output, pool._winner, st[1],
      st[2], pd[1], pd[2], dx, conv.grad_weight, conv.grad_bias, accumulate, conv._fname.backward)
    relu.grad_input, pool.grad_input = nil, nil
  else
    conv:backward(input, relu:backward(conv.output, pool:backward(relu.output, grad_output)),
      not input_gradient and NO_INPUT_GRADIENT or nil)
  end
  self.grad_input = conv.grad_input
  return self.grad_input
end

--- nn.fuse(modules): the steps that run a list of modules (a Sequential's
-- children) in order: each Conv2d -> ReLU -> MaxPool2d(2) run becomes one
-- nn.ConvReLUPool over those three modules, every other module is its own
-- step. Sequential calls it once per list of children (again after `add` or
-- a change of `seq.fuse`); `seq.fuse = false` runs every module on its own.
-- Returns {step, ...} and, for step k, first[k] = the position of its first
-- module.
function nn.fuse(modules)
  local steps, first, i = {}, {}, 1
  while i <= #modules do
    local m = modules[i]
    if i + 2 <= #modules and ConvReLUPool.matches(m, modules[i + 1], modules[i + 2]) then
      steps[#steps + 1] = ConvReLUPool(m, modules[i + 1], modules[i + 2])
      first[#first + 1] = i
      i = i + 3
    else
      steps[#steps + 1] = m
      first[#first + 1] = i
      i = i + 1
    end
  end
  return steps, first
end

-- A Sequential's steps, kept beside it (not in its fields, so that saving or
-- printing a model never sees them) and rebuilt when its children or its
-- `fuse` flag change.
local plans = setmetatable({}, { __mode = "k" })

local function plan_of(self)
  local plan = plans[self]
  local fuse = self.fuse ~= false
  local stale = not plan or plan.fuse ~= fuse or plan.count ~= #self
  for i = 1, plan and not stale and #self or 0 do
    stale = stale or plan.modules[i] ~= self[i]
  end
  if stale then
    local modules = {}
    for i = 1, #self do modules[i] = self[i] end
    local steps, first
    if fuse then
      steps, first = nn.fuse(modules)
    else
      steps, first = modules, {}
      for i = 1, #modules do first[i] = i end
    end
    plan = { fuse = fuse, count = #self, modules = modules, steps = steps, first = first }
    plans[self] = plan
  end
  return plan
end

local function ordinal(n)
  local tens, ones = n % 100, n % 10
  local suffix = (tens >= 11 and tens <= 13) and "th" or ones == 1 and "st" or ones == 2 and "nd"
    or ones == 3 and "rd" or "th"
  return n .. suffix
end

--- Runs step:method(...) and, when it fails, raises its message again with
-- the module's position and type (as Torch7's containers did: "In 3rd module
-- (nn.Linear) of nn.Sequential: ..."), pointing at the user's line.
local function run_step(self, k, plan, method, ...)
  local step = plan.steps[k]
  local ok, result = pcall(step[method], step, ...)
  if ok then return result end
  if type(result) ~= "string" then error(result, 0) end
  local position = plan.first[k]
  local m = self[position]
  local message = result:gsub("^[^\n]-:%d+: ", "", 1)
  raise("In %s module (nn.%s) of nn.Sequential: %s", ordinal(position),
    tostring(m and m.__typename), message)
end

function Sequential:forward(input)
  check_self(self, "Sequential", "forward")
  local plan = plan_of(self)
  local x = input
  for k = 1, #plan.steps do
    x = run_step(self, k, plan, "forward", x)
  end
  self.output = x
  return x
end

--- The first step with parameters (the steps before it only pass gradients
-- on toward the input); #steps + 1 when no step has any.
local function first_learning_step(plan)
  for k = 1, #plan.steps do
    for i = plan.first[k], (plan.first[k + 1] or #plan.modules + 1) - 1 do
      if #plan.modules[i]:parameters() > 0 then return k end
    end
  end
  return #plan.steps + 1
end

function Sequential:backward(input, grad_output, opts)
  check_self(self, "Sequential", "backward")
  local skip_input = not wants_input_gradient(self._fname.backward, opts)
  check_forward_done(self)
  local plan = plan_of(self)
  local steps, g = plan.steps, grad_output
  -- without the input gradient: down to the first step with parameters, which
  -- is asked for none; the steps before it are not run (nor their gradients kept)
  local stop = skip_input and first_learning_step(plan) or 1
  for k = #steps, stop, -1 do
    g = run_step(self, k, plan, "backward", k > 1 and steps[k - 1].output or input, g,
      skip_input and k == stop and NO_INPUT_GRADIENT or nil)
  end
  if skip_input and stop > 1 then
    for k = 1, math.min(stop - 1, #steps) do steps[k].grad_input = nil end
    g = nil -- what the loop ended with is not the gradient w.r.t. input
  end
  self.grad_input = g
  return g
end

function Sequential:parameters()
  check_self(self, "Sequential", "parameters")
  local params, grads = {}, {}
  for i = 1, #self do
    local p, g = self[i]:parameters()
    for j = 1, #p do
      params[#params + 1] = p[j]
      grads[#grads + 1] = g[j]
    end
  end
  return params, grads
end

function Sequential:train(mode)
  check_self(self, "Sequential", "train")
  self.training = mode ~= false
  for i = 1, #self do self[i]:train(mode) end
  return self
end

function Sequential:to(target)
  check_self(self, "Sequential", "to")
  check_target(self, target)
  for i = 1, #self do self[i]:to(target) end
  self.output, self.grad_input = nil, nil
  keep_flat(self)
  return self
end

function Sequential:_named_tensors(prefix, out)
  for i = 1, #self do self[i]:_named_tensors(prefix .. i .. ".", out) end
  return out
end

function Sequential:__repr()
  local lines = { "nn.Sequential {" }
  for i = 1, #self do
    local inner = tostring(self[i]):gsub("\n", "\n  ")
    lines[#lines + 1] = ("  (%d): %s"):format(i, inner)
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n")
end

-- --- Linear -----------------------------------------------------------------------

local Linear = class("Linear", Module)
Linear._params = { "weight", "bias" }

--- weight {out, in} and bias {out}, both uniform in +-1/sqrt(in) as PyTorch's
-- default initialisation (kaiming_uniform with a = sqrt(5)) gives.
function Linear:__init(in_features, out_features, opts)
  local fname = self._fname.new
  Module.__init(self)
  self.in_features = check_integer(fname, "in_features", in_features, 1)
  self.out_features = check_integer(fname, "out_features", out_features, 1)
  opts = check_options(fname, opts, { bias = true })
  local bound = 1 / math.sqrt(self.in_features)
  self.weight = uniform(fname, { self.out_features, self.in_features }, bound)
  self.grad_weight = new_parameter(fname, { self.out_features, self.in_features })
  if opts.bias then
    self.bias = uniform(fname, { self.out_features }, bound)
    self.grad_bias = new_parameter(fname, { self.out_features })
  end
end

function Linear:forward(input)
  check_self(self, "Linear", "forward")
  self.output = core.linear_forward(input, self.weight, self.bias, self.output, self._fname.forward)
  return self.output
end

function Linear:backward(input, grad_output, opts)
  check_self(self, "Linear", "backward")
  local fname = self._fname.backward
  if wants_input_gradient(fname, opts) then
    self.grad_input = core.linear_backward_data(grad_output, self.weight, self.grad_input, fname)
  else
    self.grad_input = nil
  end
  local accumulate = grads_accumulate(self)
  core.linear_backward_filter(input, grad_output, self.grad_weight, self.grad_bias, accumulate, fname)
  return self.grad_input
end

--- [N, in] -> [N, out]: N * out * (2 * in) in the product, + 1 each for the bias.
function Linear:_geometry(shape)
  if #shape ~= 2 or shape[2] ~= self.in_features then
    raise("lunet.nn.Linear:output_shape: expected input [N, %d], got %s", self.in_features, shape_text(shape))
  end
  local out = { table.unpack(shape) }
  out[#out] = self.out_features
  local products = numel_of(out) * 2 * self.in_features
  return out, products + (self.bias and numel_of(out) or 0), products
end

function Linear:__repr()
  return ("nn.Linear(%d -> %d%s)"):format(self.in_features, self.out_features,
    self.bias and "" or ", no bias")
end

-- --- Conv2d -------------------------------------------------------------------------

local Conv2d = class("Conv2d", Module)
Conv2d._params = { "weight", "bias" }

--- weight {out, in, kh, kw}, bias {out}: uniform in +-1/sqrt(in * kh * kw),
-- PyTorch's default initialisation.
function Conv2d:__init(in_channels, out_channels, kernel, opts)
  local fname = self._fname.new
  Module.__init(self)
  self.in_channels = check_integer(fname, "in_channels", in_channels, 1)
  self.out_channels = check_integer(fname, "out_channels", out_channels, 1)
  if kernel == nil then raise("%s: kernel size is required", fname) end
  self.kernel_size = check_pair(fname, "kernel size", kernel)
  opts = check_options(fname, opts, { stride = 1, padding = 0, bias = true }, { stride = true, padding = true })
  self.stride = check_pair(fname, "stride", opts.stride)
  self.padding = check_pair(fname, "padding", opts.padding)
  local kh, kw = self.kernel_size[1], self.kernel_size[2]
  core.conv2d_check_params(kh, kw, self.stride[1], self.stride[2], self.padding[1], self.padding[2], fname)
  local bound = 1 / math.sqrt(self.in_channels * kh * kw)
  local wshape = { self.out_channels, self.in_channels, kh, kw }
  self.weight = uniform(fname, wshape, bound)
  self.grad_weight = new_parameter(fname, wshape)
  if opts.bias then
    self.bias = uniform(fname, { self.out_channels }, bound)
    self.grad_bias = new_parameter(fname, { self.out_channels })
  end
end

function Conv2d:forward(input)
  check_self(self, "Conv2d", "forward")
  local s, p = self.stride, self.padding
  self.output = core.conv2d_forward(input, self.weight, self.bias, s[1], s[2], p[1], p[2],
    self.output, self._fname.forward)
  return self.output
end

function Conv2d:backward(input, grad_output, opts)
  check_self(self, "Conv2d", "backward")
  local s, p, fname = self.stride, self.padding, self._fname.backward
  if wants_input_gradient(fname, opts) then
    self.grad_input = core.conv2d_backward_data(input, self.weight, grad_output, s[1], s[2],
      p[1], p[2], self.grad_input, fname)
  else
    self.grad_input = nil
  end
  local accumulate = grads_accumulate(self)
  core.conv2d_backward_filter(input, grad_output, self.grad_weight, self.grad_bias, s[1], s[2],
    p[1], p[2], accumulate, fname)
  return self.grad_input
end

--- Each output element: 2 * in_channels * kh * kw in the product, + 1 for the bias.
function Conv2d:_geometry(shape)
  if #shape ~= 4 or shape[2] ~= self.in_channels then
    raise("lunet.nn.Conv2d:output_shape: expected input [N, %d, H, W], got %s", self.in_channels,
      shape_text(shape))
  end
  local h, w = window_output(self, shape, "kernel")
  local out = { shape[1], self.out_channels, h, w }
  local k = self.kernel_size
  local products = numel_of(out) * 2 * self.in_channels * k[1] * k[2]
  return out, products + (self.bias and numel_of(out) or 0), products
end

function Conv2d:__repr()
  local k, s, p = self.kernel_size, self.stride, self.padding
  return ("nn.Conv2d(%d -> %d, %dx%d, stride %dx%d, padding %dx%d%s)"):format(self.in_channels,
    self.out_channels, k[1], k[2], s[1], s[2], p[1], p[2], self.bias and "" or ", no bias")
end

-- --- pooling -------------------------------------------------------------------------

--- kernel and stride: a number or {h, w}; stride defaults to the kernel;
-- padding (at most half the kernel) pads max pooling with -inf and average
-- pooling with zeros that count in the average (PyTorch's defaults).
local function pool_init(self, kernel, stride, padding)
  local fname = self._fname.new
  Module.__init(self)
  if kernel == nil then raise("%s: kernel size is required", fname) end
  self.kernel_size = check_pair(fname, "kernel size", kernel)
  self.stride = stride == nil and { self.kernel_size[1], self.kernel_size[2] }
    or check_pair(fname, "stride", stride)
  self.padding = check_pair(fname, "padding", padding or 0)
  local k, s, p = self.kernel_size, self.stride, self.padding
  core.pool2d_check_params(k[1], k[2], s[1], s[2], p[1], p[2], fname)
end

local function pool_forward(self, mode, input)
  local k, s, p = self.kernel_size, self.stride, self.padding
  self.output = core.pool2d_forward(mode, input, k[1], k[2], s[1], s[2], p[1], p[2],
    self.output, self._fname.forward)
  return self.output
end

local function pool_backward(self, mode, input, grad_output)
  local k, s, p = self.kernel_size, self.stride, self.padding
  if not self.output then
    raise("%s: call forward before backward", self._fname.backward)
  end
  self.grad_input = core.pool2d_backward(mode, input, self.output, grad_output, k[1], k[2],
    s[1], s[2], p[1], p[2], self.grad_input, self._fname.backward)
  return self.grad_input
end

local function pool_repr(self)
  local k, s, p = self.kernel_size, self.stride, self.padding
  local pad = (p[1] > 0 or p[2] > 0) and (", padding %dx%d"):format(p[1], p[2]) or ""
  return ("nn.%s(%dx%d, stride %dx%d%s)"):format(self.__typename, k[1], k[2], s[1], s[2], pad)
end

-- MaxPool2d and AvgPool2d: the same module around a different mode.
for name, mode in pairs({ MaxPool2d = "max", AvgPool2d = "avg" }) do
  local Pool = class(name, Module)
  Pool.__init = pool_init
  Pool.__repr = pool_repr
  function Pool:forward(input)
    check_self(self, name, "forward")
    return pool_forward(self, mode, input)
  end
  function Pool:backward(input, grad_output)
    check_self(self, name, "backward")
    return pool_backward(self, mode, input, grad_output)
  end
  --- One FLOP per window element per output element.
  function Pool:_geometry(shape)
    local h, w = window_output(self, shape, "window")
    local out = { shape[1], shape[2], h, w }
    return out, numel_of(out) * self.kernel_size[1] * self.kernel_size[2], 0
  end
end
-- MaxPool2d keeps the winners of a fused block (see Sequential).
nn.MaxPool2d._caches = { "output", "grad_input", "_winner" }

-- --- ReLU ------------------------------------------------------------------------------

local ReLU = class("ReLU", Module)
ReLU._geometry = elementwise_geometry(1)

function ReLU:forward(input)
  check_self(self, "ReLU", "forward")
  self.output = core.relu_forward(input, self.output, self._fname.forward)
  return self.output
end

--- The gradient passes where the output is positive, which is where the
-- input is: the output kept by forward stands in for the input.
function ReLU:backward(input, grad_output)
  check_self(self, "ReLU", "backward")
  if not self.output then
    raise("%s: call forward before backward", self._fname.backward)
  end
  self.grad_input = core.relu_backward(self.output, grad_output, self.grad_input, self._fname.backward)
  return self.grad_input
end

-- --- Flatten -------------------------------------------------------------------------------

--- {N, d2, d3, ...} -> {N, d2 * d3 * ...}, as a view sharing the input's memory.
local Flatten = class("Flatten", Module)

--- A view of `t` with the shape `shape_fn(t)` returns, reused while `t` is
-- the same tensor and `like` (the tensor that decides the shape) too.
local function cached_view(self, key, t, like, shape_fn, fname)
  if not lunet.is_tensor(t) then
    raise("%s: expected a tensor, got %s", fname, describe(t))
  end
  local cache = self[key]
  if not is_live(t) then -- a stale view of a freed tensor is never returned
    raise("%s: the tensor was freed", fname)
  end
  if cache and cache.source == t and cache.like == like then return cache.view end
  local view = t:reshape(shape_fn(t))
  self[key] = { source = t, like = like, view = view }
  return view
end

function Flatten:forward(input)
  check_self(self, "Flatten", "forward")
  local fname = self._fname.forward
  self.output = cached_view(self, "_forward_view", input, input, function(t)
    if t:dim() < 2 then
      raise("%s: expected input [N, ...] with at least 2 dimensions, got %s", fname, shape_string(t))
    end
    local shape, rest = t:shape(), 1
    for d = 2, #shape do rest = rest * shape[d] end
    return { shape[1], rest } -- not -1: an empty batch has no size to infer
  end, fname)
  return self.output
end

function Flatten:backward(input, grad_output)
  check_self(self, "Flatten", "backward")
  local fname = self._fname.backward
  if not lunet.is_tensor(input) then
    raise("%s: expected the input tensor, got %s", fname, describe(input))
  end
  self.grad_input = cached_view(self, "_backward_view", grad_output, input, function(g)
    if g:numel() ~= input:numel() then
      raise("%s: the output gradient %s does not match the input %s", fname, shape_string(g),
        shape_string(input))
    end
    return input:shape()
  end, fname)
  return self.grad_input
end

Flatten._caches = { "output", "grad_input", "_forward_view", "_backward_view" }

--- A view: no arithmetic.
function Flatten:_geometry(shape)
  if #shape < 2 then raise("lunet.nn.Flatten:output_shape: expected input [N, ...], got %s", shape_text(shape)) end
  return { shape[1], numel_of(shape) // math.max(shape[1], 1) }, 0, 0
end

-- --- Dropout ---------------------------------------------------------------------------------

--- Inverted dropout: in training each element is zeroed with probability p
-- and the rest scaled by 1/(1-p); in eval mode the input passes unchanged.
local Dropout = class("Dropout", Module)
-- _train_output is the training output, kept apart from `output` (which is
-- the input itself in eval mode) so that switching between train and eval
-- does not allocate a new output each time.
Dropout._caches = { "output", "grad_input", "_mask", "_train_output" }

function Dropout:__init(p)
  Module.__init(self)
  p = p == nil and 0.5 or p
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    raise("%s: p must be a probability in [0, 1], got %s", self._fname.new, tostring(p))
  end
  self.p = p
end

function Dropout:forward(input)
  check_self(self, "Dropout", "forward")
  self._dropped = self.training and self.p > 0
  if self._dropped then
    self._train_output, self._mask = core.dropout_forward(input, self.p, self._train_output,
      self._mask, self._fname.forward)
    self.output = self._train_output
  else
    if not lunet.is_tensor(input) then
      raise("%s: expected a tensor, got %s", self._fname.forward, describe(input))
    end
    self.output = input
  end
  return self.output
end

function Dropout:backward(input, grad_output)
  check_self(self, "Dropout", "backward")
  check_forward_done(self)
  if self._dropped then
    self.grad_input = core.dropout_backward(grad_output, self._mask, self.grad_input,
      self._fname.backward)
  else
    self.grad_input = grad_output
  end
  return self.grad_input
end

--- The mask's multiply: one FLOP per element.
Dropout._geometry = elementwise_geometry(1)

function Dropout:__repr()
  return ("nn.Dropout(p = %g)"):format(self.p)
end

-- --- BatchNorm2d --------------------------------------------------------------------------------

--- Per-channel normalisation of {N, C, H, W}: batch statistics in training
-- (updating running_mean and running_var with `momentum`, the running
-- variance unbiased), the running statistics in eval mode. weight = 1,
-- bias = 0, running_mean = 0, running_var = 1 at first, as in PyTorch.
local BatchNorm2d = class("BatchNorm2d", Module)
BatchNorm2d._params = { "weight", "bias" }
BatchNorm2d._buffers = { "running_mean", "running_var" }
BatchNorm2d._caches = { "output", "grad_input", "_save_mean", "_save_invstd" }

function BatchNorm2d:__init(num_features, opts)
  local fname = self._fname.new
  Module.__init(self)
  self.num_features = check_integer(fname, "num_features", num_features, 1)
  opts = check_options(fname, opts, { eps = 1e-5, momentum = 0.1 })
  if not (opts.eps > 0) then raise("%s: eps must be positive, got %g", fname, opts.eps) end
  if not (opts.momentum >= 0 and opts.momentum <= 1) then
    raise("%s: momentum must be in [0, 1], got %g", fname, opts.momentum)
  end
  self.eps, self.momentum = opts.eps, opts.momentum
  local c = self.num_features
  local function ones(p) p:fill(1) end
  self.weight, self.grad_weight = new_parameter(fname, { c }, ones), new_parameter(fname, { c })
  self.bias, self.grad_bias = new_parameter(fname, { c }), new_parameter(fname, { c })
  self.running_mean, self.running_var = new_parameter(fname, { c }), new_parameter(fname, { c }, ones)
end

function BatchNorm2d:forward(input)
  check_self(self, "BatchNorm2d", "forward")
  local fname = self._fname.forward
  if lunet.is_tensor(input) and input:dim() ~= 4 then
    raise("%s: expected input [N, %d, H, W], got %s", fname, self.num_features,
      shape_string(input))
  end
  self._forward_training = self.training
  if self.training then
    self.output, self._save_mean, self._save_invstd = core.batchnorm_forward(input, self.weight,
      self.bias, self.running_mean, self.running_var, true, self.momentum, self.eps,
      self.output, self._save_mean, self._save_invstd, fname)
  else
    self.output = core.batchnorm_forward(input, self.weight, self.bias, self.running_mean,
      self.running_var, false, self.momentum, self.eps, self.output, nil, nil, fname)
  end
  return self.output
end

function BatchNorm2d:backward(input, grad_output)
  check_self(self, "BatchNorm2d", "backward")
  local fname = self._fname.backward
  if self._forward_training == nil then
    raise("%s: call forward before backward", fname)
  end
  local accumulate = grads_accumulate(self)
  if self._forward_training then
    self.grad_input = core.batchnorm_backward(input, grad_output, self.weight, self._save_mean,
      self._save_invstd, self.grad_input, self.grad_weight, self.grad_bias, accumulate, fname)
  else
    self.grad_input = core.batchnorm_backward_eval(input, grad_output, self.weight,
      self.running_mean, self.running_var, self.eps, self.grad_input, self.grad_weight,
      self.grad_bias, accumulate, fname)
  end
  return self.grad_input
end

--- Normalise, then scale and shift: 2 FLOPs per element (the statistics aside).
function BatchNorm2d:_geometry(shape)
  if #shape ~= 4 or shape[2] ~= self.num_features then
    raise("lunet.nn.BatchNorm2d:output_shape: expected input [N, %d, H, W], got %s", self.num_features,
      shape_text(shape))
  end
  return { table.unpack(shape) }, 2 * numel_of(shape), 0
end

function BatchNorm2d:__repr()
  return ("nn.BatchNorm2d(%d, eps = %g, momentum = %g)"):format(self.num_features, self.eps, self.momentum)
end

-- --- activations, softmax, Identity and losses of the op families (issue 13) ---------
-- Forward runs the tensor methods of the unary and softmax families; backward
-- their gradients (core.activation_backward, core.softmax_backward), on the
-- input's device. Errors name the module's method, with the shapes.

--- Calls f(...) and re-raises an error of a tensor method under `fname`, so a
-- message names the module (lunet.nn.Sigmoid:forward) and the user's line.
local function call_named(fname, f, ...)
  local ok, result = pcall(f, ...)
  if not ok then
    local msg, n = tostring(result):gsub("^.-lunet%.[%w_]+[.:][%w_]+[^:]*: ", "")
    if n == 0 then msg = msg:gsub("^.-lunet%.[%w_]+: ", "") end -- lunet.activation_forward: ...
    raise("%s: %s", fname, msg)
  end
  return result
end

local function check_tensor_arg(fname, what, v)
  if not lunet.is_tensor(v) then raise("%s: %s must be a tensor, got %s", fname, what, describe(v)) end
  if not is_live(v) then raise("%s: %s was freed", fname, what) end
end

--- An elementwise activation: forward(input) = input:<method>(alpha), and
-- backward from the input and the output kept by forward. Both write into
-- the tensors of the last call when the shape is unchanged (as Linear does).
local function activation(name, method, grad_name, alpha_field)
  local A = class(name, Module)
  A._geometry = elementwise_geometry(1)
  function A:forward(input)
    check_self(self, name, "forward")
    local fname = self._fname.forward
    check_tensor_arg(fname, "input", input)
    local alpha = alpha_field and self[alpha_field]
    self.output = call_named(fname, core.activation_forward, grad_name(self), input,
      type(alpha) == "number" and alpha or nil, self.output)
    return self.output
  end
  function A:backward(input, grad_output)
    check_self(self, name, "backward")
    local fname = self._fname.backward
    if not self.output then raise("%s: call forward before backward", fname) end
    check_tensor_arg(fname, "input", input)
    check_tensor_arg(fname, "grad_output", grad_output)
    local alpha = alpha_field and self[alpha_field]
    self.grad_input = call_named(fname, core.activation_backward, grad_name(self), input,
      self.output, grad_output, type(alpha) == "number" and alpha or nil, self.grad_input)
    return self.grad_input
  end
  return A
end

activation("Sigmoid", "sigmoid", function() return "sigmoid" end)
activation("Tanh", "tanh", function() return "tanh" end)

--- LeakyReLU([negative_slope = 0.01]): x where x > 0, else slope * x.
local LeakyReLU = activation("LeakyReLU", "leaky_relu", function() return "leaky_relu" end,
  "negative_slope")
function LeakyReLU:__init(negative_slope)
  Module.__init(self)
  if negative_slope == nil then negative_slope = 0.01 end
  if type(negative_slope) ~= "number" or negative_slope ~= negative_slope then
    raise("%s: negative_slope must be a number, got %s", self._fname.new, tostring(negative_slope))
  end
  self.negative_slope = negative_slope
end
function LeakyReLU:__repr()
  return ("nn.LeakyReLU(%g)"):format(self.negative_slope)
end

--- GELU([{approximate = "none" | "tanh"}]) (or the string itself): x * Phi(x),
-- exactly (erf) or with PyTorch's tanh approximation.
local GELU = activation("GELU", "gelu", function(self)
  return self.approximate == "tanh" and "gelu_tanh" or "gelu"
end, "approximate")
function GELU:__init(opts)
  Module.__init(self)
  if type(opts) == "string" then opts = { approximate = opts } end
  opts = check_options(self._fname.new, opts, { approximate = "none" })
  if opts.approximate ~= "none" and opts.approximate ~= "tanh" then
    raise("%s: approximate must be \"none\" or \"tanh\", got \"%s\"", self._fname.new,
      tostring(opts.approximate))
  end
  self.approximate = opts.approximate
end
function GELU:__repr()
  return self.approximate == "tanh" and 'nn.GELU(approximate = "tanh")' or "nn.GELU()"
end

--- Softmax(dim) and LogSoftmax(dim): along `dim` (negative counts from the end).
for name, log in pairs({ Softmax = false, LogSoftmax = true }) do
  local S = class(name, Module)
  function S:__init(dim)
    Module.__init(self)
    local d = math.type(dim) == "integer" and dim or (type(dim) == "number" and math.tointeger(dim))
    if not d or d == 0 then
      raise("%s: dim must be a non-zero integer (1-based, or negative from the end), got %s",
        self._fname.new, tostring(dim))
    end
    self.dim = d
  end
  function S:forward(input)
    check_self(self, name, "forward")
    local fname = self._fname.forward
    check_tensor_arg(fname, "input", input)
    self.output = call_named(fname, core.softmax_forward, input, self.dim, log, self.output)
    return self.output
  end
  function S:backward(input, grad_output)
    check_self(self, name, "backward")
    local fname = self._fname.backward
    if not self.output then raise("%s: call forward before backward", fname) end
    check_tensor_arg(fname, "grad_output", grad_output)
    self.grad_input = call_named(fname, core.softmax_backward, self.output, grad_output, self.dim, log,
      self.grad_input)
    return self.grad_input
  end
  function S:__repr()
    return ("nn.%s(dim = %d)"):format(name, self.dim)
  end
  --- exp, sum and divide (or log and subtract): 3 FLOPs per element.
  S._geometry = elementwise_geometry(3)
end

--- Identity: the input itself, and the gradient itself.
local Identity = class("Identity", Module)
function Identity:forward(input)
  check_self(self, "Identity", "forward")
  self.output = input
  return input
end
function Identity:backward(_, grad_output)
  check_self(self, "Identity", "backward")
  self.grad_input = grad_output
  return grad_output
end
Identity._geometry = elementwise_geometry(0)

-- --- losses: forward returns the mean loss as a Lua number, backward its gradient ---

local function check_same_shape(fname, a, b, what_a, what_b)
  check_tensor_arg(fname, what_a, a)
  check_tensor_arg(fname, what_b, b)
  local sa, sb = shape_string(a), shape_string(b)
  if sa ~= sb then raise("%s: %s %s and %s %s must have the same shape", fname, what_a, sa, what_b, sb) end
end

--- Logits or log-probabilities {N, C} (float32) and labels {N} (int32, 1..C),
-- on one device; returns N, C.
local function check_classification(fname, scores, labels, what)
  check_tensor_arg(fname, what, scores)
  check_tensor_arg(fname, "labels", labels)
  if scores:dim() ~= 2 then raise("%s: expected %s [N, C], got %s", fname, what, shape_string(scores)) end
  if scores:dtype() ~= "float32" then raise("%s: %s must be float32, got %s", fname, what, scores:dtype()) end
  if labels:dtype() ~= "int32" then raise("%s: labels must be int32 (1..C), got %s", fname, labels:dtype()) end
  local n, c = scores:size(1), scores:size(2)
  if labels:dim() ~= 1 or labels:size(1) ~= n then
    raise("%s: expected labels [%d] for %s %s, got %s", fname, n, what, shape_string(scores),
      shape_string(labels))
  end
  if labels:device() ~= scores:device() then
    raise("%s: labels are on %s, %s on %s", fname, tostring(labels:device()), what,
      tostring(scores:device()))
  end
  if n > 0 then
    local lo, hi = labels:min(), labels:max()
    if lo < 1 or hi > c then
      raise("%s: labels must be in 1..%d for %s %s, got a label %d", fname, c, what,
        shape_string(scores), lo < 1 and lo or hi)
    end
  end
  return n, c
end

--- One-hot float32 {N, C} of labels {N} (1..C): a broadcast comparison with 1..C.
local function one_hot(labels, c)
  local classes = {}
  for i = 1, c do classes[i] = i end
  local row = lunet.tensor({ classes }, { dtype = "int32", device = labels:device() })
  return labels:reshape({ labels:size(1), 1 }):eq(row):to("float32")
end

--- `buf` (a loss's grad_input from its last call) when it can hold a result
-- like float32 `like` (same shape and device, sharing no memory with the
-- operands), so a steady backward allocates nothing; else nil.
local function reusable(buf, like, ...)
  if not (is_live(buf) and buf:dtype() == "float32" and like:dtype() == "float32"
    and buf:device() == like:device() and shape_string(buf) == shape_string(like)) then
    return nil
  end
  for _, operand in ipairs({ like, ... }) do
    if lunet.shares_memory(buf, operand) then return nil end
  end
  return buf
end

--- A loss's geometry: the loss is one number (output shape {}); `per_element`
-- FLOPs per input element and `per_row` per row of an input [N, C].
local function loss_geometry(per_element, per_row, rows_and_columns)
  return function(self, shape)
    if rows_and_columns and #shape ~= 2 then
      raise("lunet.nn.%s:output_shape: expected input [N, C], got %s", self.__typename, shape_text(shape))
    end
    return {}, per_element * numel_of(shape) + per_row * shape[1], 0
  end
end

--- MSELoss: mean((input - target)^2) over every element.
local MSELoss = class("MSELoss", Module)
MSELoss._caches = { "output", "grad_input", "_diff" }
-- subtract, square, add: 3 FLOPs per element
MSELoss._geometry = loss_geometry(3, 0)
function MSELoss:forward(input, target)
  check_self(self, "MSELoss", "forward")
  local fname = self._fname.forward
  check_same_shape(fname, input, target, "input", "target")
  -- the difference in the scratch tensor of the last call when it fits
  local scratch = target:dtype() == "float32" and reusable(self._diff, input, target)
  local diff = call_named(fname, function()
    if scratch then return scratch:copy(input):sub_(target) end
    return input - target
  end)
  self._diff = diff
  self.output = diff:mul_(diff):sum() / input:numel()
  return self.output
end
function MSELoss:backward(input, target)
  check_self(self, "MSELoss", "backward")
  local fname = self._fname.backward
  check_same_shape(fname, input, target, "input", "target")
  local scale = 2 / input:numel()
  local g = target:dtype() == "float32" and reusable(self.grad_input, input, target)
  self.grad_input = call_named(fname, function()
    if g then return g:copy(input):sub_(target):mul_(scale) end
    return (input - target) * scale
  end)
  return self.grad_input
end

--- NLLLoss: -mean(log_probs[i, labels[i]]) of log-probabilities {N, C} (after
-- LogSoftmax) and labels {N} (int32, 1..C).
local NLLLoss = class("NLLLoss", Module)
-- one add per row (the label's log-probability)
NLLLoss._geometry = loss_geometry(0, 1, true)
function NLLLoss:forward(log_probs, labels)
  check_self(self, "NLLLoss", "forward")
  local n, c = check_classification(self._fname.forward, log_probs, labels, "log_probs")
  self.output = -(log_probs * one_hot(labels, c)):sum() / n
  return self.output
end
function NLLLoss:backward(log_probs, labels)
  check_self(self, "NLLLoss", "backward")
  local n, c = check_classification(self._fname.backward, log_probs, labels, "log_probs")
  local g = reusable(self.grad_input, log_probs, labels)
  if g then
    self.grad_input = g:copy(one_hot(labels, c)):mul_(-1 / math.max(n, 1))
  else
    self.grad_input = one_hot(labels, c) * (-1 / math.max(n, 1))
  end
  return self.grad_input
end

--- BCEWithLogitsLoss: mean binary cross-entropy of sigmoid(input) against
-- targets in [0, 1], computed stably as max(x, 0) - x * t + log(1 + exp(-|x|)).
local BCEWithLogitsLoss = class("BCEWithLogitsLoss", Module)
-- max, multiply, subtract, exp, log(1 + .), add: 6 FLOPs per element
BCEWithLogitsLoss._geometry = loss_geometry(6, 0)
function BCEWithLogitsLoss:forward(input, target)
  check_self(self, "BCEWithLogitsLoss", "forward")
  local fname = self._fname.forward
  check_same_shape(fname, input, target, "input", "target")
  local loss = call_named(fname, function()
    return input:clamp(0, nil) - input * target + ((-input:abs()):exp() + 1):log()
  end)
  self.output = loss:sum() / input:numel()
  return self.output
end
function BCEWithLogitsLoss:backward(input, target)
  check_self(self, "BCEWithLogitsLoss", "backward")
  local fname = self._fname.backward
  check_same_shape(fname, input, target, "input", "target")
  local g = target:dtype() == "float32" and reusable(self.grad_input, input, target)
  self.grad_input = call_named(fname, function()
    if g then
      return core.activation_forward("sigmoid", input, nil, g):sub_(target):mul_(1 / input:numel())
    end
    return (input:sigmoid() - target) * (1 / input:numel())
  end)
  return self.grad_input
end

--- The label-smoothed cross-entropy (PyTorch's rule): the target is
-- (1 - eps) * onehot + eps / C, so loss_i = -(1 - eps) * logp[i, y_i] -
-- eps / C * sum_c logp[i, c], and the gradient (softmax - target) / N.
local function smoothed_target(labels, c, eps)
  return one_hot(labels, c) * (1 - eps) + eps / c
end

local function smoothed_cross_entropy(self, logits, labels)
  local n, c = check_classification(self._fname.forward, logits, labels, "logits")
  local target = smoothed_target(labels, c, self.label_smoothing)
  return -(logits:log_softmax(2) * target):sum() / n
end

local function smoothed_cross_entropy_backward(self, logits, labels)
  local n, c = check_classification(self._fname.backward, logits, labels, "logits")
  local target = smoothed_target(labels, c, self.label_smoothing)
  local g = reusable(self.grad_input, logits, labels)
  if g then
    return core.softmax_forward(logits, 2, false, g):sub_(target):mul_(1 / math.max(n, 1))
  end
  return (logits:softmax(2) - target) * (1 / math.max(n, 1))
end

-- --- summary: every module's output shape, parameters and FLOPs ----------------------

--- The numbers of m:summary: {rows = {{name, type, output_shape, params,
-- flops, products, depth, container}, ...}, total_params, total_flops,
-- total_products, input_shape}; rows[1] is the model itself, each row's
-- numbers its module's own geometry (Class:_geometry). A shape without the batch dimension (as
-- torchsummary takes it, {1, 28, 28}) is read as a batch of one when the
-- shape as given does not fit the model.
local summary_rows_of
local function summary_rows(self, input_shape)
  local ok, result = pcall(summary_rows_of, self, input_shape)
  if ok then return result end
  local batched = { 1, table.unpack(input_shape) }
  if #batched <= 8 then
    local ok1, info1 = pcall(summary_rows_of, self, batched)
    if ok1 then return info1 end
  end
  error(result, 0) -- the first attempt's error, already located, passed on untouched
end

function summary_rows_of(self, input_shape)
  local rows = {}
  local function visit(m, name, depth, shape)
    -- a module whose class was made outside nn may lack the two methods
    local kids = m._children and m:_children() or {}
    local out, f, products = (m._geometry or Module._geometry)(m, shape)
    local params = 0
    if #kids == 0 then
      for _, p in ipairs((m:parameters())) do params = params + p:numel() end
    end
    rows[#rows + 1] = { name = name, type = m.__typename, output_shape = out, params = params,
      flops = f, products = products, depth = depth, container = #kids > 0 }
    local s = shape -- the children run one after the other
    for _, kid in ipairs(kids) do
      s = visit(kid[1], name .. "." .. kid[2], depth + 1, s)
    end
    return out
  end
  visit(self, "model", 0, input_shape)
  local total_params = 0
  for _, r in ipairs(rows) do total_params = total_params + r.params end
  return { rows = rows, total_params = total_params, total_flops = rows[1].flops,
    total_products = rows[1].products, input_shape = input_shape }
end

function Module:summary_table(input_shape)
  check_self(self, "Module", "summary_table")
  check_shape_arg(("lunet.nn.%s:summary_table"):format(self.__typename), input_shape)
  return summary_rows(self, input_shape)
end

--- A table like torchsummary's, as text: each module's output shape,
-- parameter count and forward FLOPs for an input of `input_shape` (batch
-- included), then the totals. m:summary_table gives the numbers.
function Module:summary(input_shape)
  check_self(self, "Module", "summary")
  check_shape_arg(("lunet.nn.%s:summary"):format(self.__typename), input_shape)
  local info = summary_rows(self, input_shape)
  local rows, total_params, total_flops = info.rows, info.total_params, info.total_flops
  local lines = {
    ("%-32s %-22s %14s %16s"):format("Layer (type)", "Output Shape", "Param #", "FLOPs"),
    ("="):rep(87),
  }
  for _, r in ipairs(rows) do
    if r.depth > 0 or not r.container then
      local label = ("  "):rep(math.max(r.depth - 1, 0)) .. r.type .. " (" .. r.name .. ")"
      lines[#lines + 1] = ("%-32s %-22s %14s %16s"):format(label, shape_text(r.output_shape),
        r.container and "" or tostring(r.params), tostring(r.flops))
    end
  end
  lines[#lines + 1] = ("="):rep(87)
  lines[#lines + 1] = ("Input shape: %s"):format(shape_text(info.input_shape))
  lines[#lines + 1] = ("Output shape: %s"):format(shape_text(rows[1].output_shape))
  lines[#lines + 1] = ("Total params: %d"):format(total_params)
  lines[#lines + 1] = ("Forward FLOPs: %d"):format(total_flops)
  return table.concat(lines, "\n")
end

-- --- CrossEntropyLoss -------------------------------------------------------------------------------

--- Mean softmax cross-entropy of logits {N, C} (float32) against labels {N}
-- (int32, 1..C). forward returns the loss as a Lua number (the one place a
-- step waits for the device); backward returns the gradient w.r.t. logits,
-- (softmax - onehot) / N.
local CrossEntropyLoss = class("CrossEntropyLoss", Module)
-- log-softmax (3 per element, as LogSoftmax) and one add per row
CrossEntropyLoss._geometry = loss_geometry(3, 1, true)

--- CrossEntropyLoss([{label_smoothing = 0}]): with smoothing in (0, 1], the
-- target is (1 - eps) * onehot + eps / C, as PyTorch's label_smoothing.
function CrossEntropyLoss:__init(opts)
  local fname = self._fname.new
  Module.__init(self)
  opts = check_options(fname, opts, { label_smoothing = 0 })
  if not (opts.label_smoothing >= 0 and opts.label_smoothing <= 1) then
    raise("%s: label_smoothing must be in [0, 1], got %s", fname, tostring(opts.label_smoothing))
  end
  self.label_smoothing = opts.label_smoothing
end

function CrossEntropyLoss:forward(logits, labels)
  check_self(self, "CrossEntropyLoss", "forward")
  if (self.label_smoothing or 0) > 0 then
    self.output = smoothed_cross_entropy(self, logits, labels)
    return self.output
  end
  self.output = core.cross_entropy_forward(logits, labels, self._fname.forward)
  return self.output
end

--- The mean loss as a one-element float32 tensor on the logits' device
-- (reused from call to call, like an output), so a training step need not
-- wait for the device. With `running_sum` (a float32 tensor {sum,
-- compensation} on that device, from nn.CrossEntropyLoss.running_sum) the
-- mean is added to it instead, and it is returned; its total is
-- running_sum[1] + running_sum[2] (a compensated sum, as exact as a double).
function CrossEntropyLoss:forward_tensor(logits, labels, running_sum)
  check_self(self, "CrossEntropyLoss", "forward_tensor")
  local fname = "lunet.nn.CrossEntropyLoss:forward_tensor"
  if (self.label_smoothing or 0) > 0 then
    -- the smoothed loss by the tensor ops, as a {1} tensor on the logits' device
    local n, c = check_classification(fname, logits, labels, "logits")
    local target = smoothed_target(labels, c, self.label_smoothing)
    local loss = (logits:log_softmax(2) * target):sum(2):sum(1, true) * (-1 / math.max(n, 1))
    if running_sum ~= nil then
      check_tensor_arg(fname, "running_sum", running_sum)
      running_sum:narrow(1, 1, 1):add_(loss)
      return running_sum
    end
    self._loss_tensor = loss
    return loss
  end
  if running_sum ~= nil then
    return core.cross_entropy_forward_into(logits, labels, running_sum, true, fname)
  end
  local out = self._loss_tensor
  if not (is_live(out) and lunet.is_tensor(logits) and out:device() == logits:device()) then
    out = nil
  end
  self._loss_tensor = core.cross_entropy_forward_into(logits, labels, out, false, fname)
  return self._loss_tensor
end

--- A zero running sum for forward_tensor on `device`.
function CrossEntropyLoss.running_sum(device)
  return lunet.zeros({ 2 }, { device = device })
end

function CrossEntropyLoss:backward(logits, labels)
  check_self(self, "CrossEntropyLoss", "backward")
  if (self.label_smoothing or 0) > 0 then
    self.grad_input = smoothed_cross_entropy_backward(self, logits, labels)
    return self.grad_input
  end
  local n = 1
  if lunet.is_tensor(logits) and logits:dim() >= 1 and logits:size(1) > 0 then n = logits:size(1) end
  self.grad_input = core.cross_entropy_backward(logits, labels, 1 / n, self.grad_input,
    self._fname.backward)
  return self.grad_input
end

-- --- AdaptiveAvgPool2d ------------------------------------------------------------------------------

--- Global average pooling, {N, C, H, W} -> {N, C, 1, 1}: an average pool
-- whose window is the whole input (the kernel follows the input's size).
-- Only the output size 1 (ResNet's head) is supported.
local AdaptiveAvgPool2d = class("AdaptiveAvgPool2d", Module)

function AdaptiveAvgPool2d:__init(output_size)
  local fname = self._fname.new
  Module.__init(self)
  local size = output_size == nil and { 1, 1 } or check_pair(fname, "output_size", output_size, 1)
  if size[1] ~= 1 or size[2] ~= 1 then
    raise("%s: only output_size 1 (global average pooling) is supported, got {%d, %d}", fname,
      size[1], size[2])
  end
  self.output_size = size
end

function AdaptiveAvgPool2d:forward(input)
  check_self(self, "AdaptiveAvgPool2d", "forward")
  local fname = self._fname.forward
  if not lunet.is_tensor(input) then
    raise("%s: expected a tensor, got %s", fname, describe(input))
  end
  if input:dim() ~= 4 then
    raise("%s: expected input [N, C, H, W], got %s", fname, shape_string(input))
  end
  local h, w = input:size(3), input:size(4)
  self._window = { h, w }
  self.output = core.pool2d_forward("avg", input, h, w, h, w, 0, 0, self.output, fname)
  return self.output
end

function AdaptiveAvgPool2d:backward(input, grad_output)
  check_self(self, "AdaptiveAvgPool2d", "backward")
  local fname = self._fname.backward
  if not self.output or not self._window then
    raise("%s: call forward before backward", fname)
  end
  local h, w = self._window[1], self._window[2]
  self.grad_input = core.pool2d_backward("avg", input, self.output, grad_output, h, w, h, w, 0, 0,
    self.grad_input, fname)
  return self.grad_input
end

--- One add per input element: [N, C, H, W] -> [N, C, 1, 1].
function AdaptiveAvgPool2d:_geometry(shape)
  if #shape ~= 4 then
    raise("lunet.nn.AdaptiveAvgPool2d:output_shape: expected input [N, C, H, W], got %s", shape_text(shape))
  end
  return { shape[1], shape[2], 1, 1 }, numel_of(shape), 0
end

function AdaptiveAvgPool2d:__repr()
  return "nn.AdaptiveAvgPool2d(1)"
end

-- --- Residual ------------------------------------------------------------------------------------------

--- y = block(x) + x, the skip connection of a ResNet block (the block must
-- keep its input's shape). Backward adds the identity path to the block's
-- input gradient. The parameters are the block's ("block.<name>" in a state dict).
local Residual = class("Residual", Module)

function Residual:__init(block)
  Module.__init(self)
  if not nn.is_module(block) then
    raise("%s: expected a module as the block, got %s", self._fname.new, describe(block))
  end
  self.block = block
  self.modules = { block } -- for tools that walk the tree of modules
end

--- out = a + b into `out` (reused when it still fits), else a new tensor.
local function add_into(out, a, b)
  if is_live(out) and shape_string(out) == shape_string(a) and out:device() == a:device()
    and out:dtype() == a:dtype() and out ~= a and out ~= b and out.add_ then
    return out:copy(a):add_(b)
  end
  return a + b
end

function Residual:forward(input)
  check_self(self, "Residual", "forward")
  local fname = self._fname.forward
  if not lunet.is_tensor(input) then
    raise("%s: expected a tensor, got %s", fname, describe(input))
  end
  local y = self.block:forward(input)
  if shape_string(y) ~= shape_string(input) then
    raise("%s: the block's output %s must have the input's shape %s", fname,
      shape_string(y), shape_string(input))
  end
  self.output = add_into(self.output, y, input)
  return self.output
end

function Residual:backward(input, grad_output)
  check_self(self, "Residual", "backward")
  check_forward_done(self)
  local g = self.block:backward(input, grad_output)
  self.grad_input = add_into(self.grad_input, g, grad_output)
  return self.grad_input
end

function Residual:parameters()
  check_self(self, "Residual", "parameters")
  return self.block:parameters()
end

function Residual:train(mode)
  check_self(self, "Residual", "train")
  self.training = mode ~= false
  self.block:train(mode)
  return self
end

function Residual:to(target)
  check_self(self, "Residual", "to")
  check_target(self, target)
  self.block:to(target)
  self.output, self.grad_input = nil, nil
  keep_flat(self)
  return self
end

function Residual:_named_tensors(prefix, out)
  return self.block:_named_tensors(prefix .. "block.", out)
end

--- The block's, plus one add per element for the skip connection.
function Residual:_geometry(shape)
  local out, flops, products = self.block:_geometry(shape)
  if shape_text(out) ~= shape_text(shape) then
    raise("lunet.nn.Residual:output_shape: the block maps %s to %s; it must keep the shape",
      shape_text(shape), shape_text(out))
  end
  return out, flops + numel_of(shape), products
end

function Residual:_children()
  return { { self.block, "block" } }
end

function Residual:__repr()
  return "nn.Residual {\n  " .. tostring(self.block):gsub("\n", "\n  ") .. "\n}"
end

nn.Module = Module
return nn
