--- lunet.save / lunet.load (API.md, Serialization): tensors, modules and
-- plain tables of them, in lunet's versioned binary format
-- (csrc/io/checkpoint.h). Data only: loading never runs code. Tensors are
-- stored as CPU data whatever their device, and load as CPU tensors.
--
-- A module is saved whole: its architecture, as data, beside its state dict.
-- The architecture is every module's class name and the arguments its
-- constructor was called with (nn.lua's class() records them), nested
-- modules included, so any class built through nn.<Name>(...) can be saved
-- without code of its own here. In the file:
--   { [MARKER] = 1, root = <index>, state = model:state_dict(),
--     modules = { [index] = { type = "Linear", args = { n = 2, 784, 10 },
--                             settings = { training = true, ... } }, ... } }
-- where an argument is a number, string, boolean or tensor as is, a plain
-- table as { table = {...} } and a module as { module = <index> } (a module
-- used twice is stored once, and shared again when loaded). Sequential's
-- arguments are its modules at the time of saving (added ones included).
-- `settings` are the module's own scalar fields (training, p, fuse, ...),
-- restored after construction, so a changed setting survives the trip.
local core = require("lunet.core")

local serialize = {}

local MARKER = "lunet.module"
local FORMAT = 1

local function is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and type(v.state_dict) == "function"
    and type(v.parameters) == "function"
end

local function is_class_instance(v)
  local mt = type(v) == "table" and getmetatable(v)
  return mt and rawget(mt, "__typename") ~= nil or false
end

--- "file:line: " of the first caller outside lunet's Lua files: errors
-- point at the user's script, as the C functions' do.
local function where()
  for level = 3, math.huge do
    local info = debug.getinfo(level, "Sl")
    if not info then break end
    if info.currentline > 0 and not info.source:match("[/@]lunet/[^/]*%.lua$") then
      return info.short_src .. ":" .. info.currentline .. ": "
    end
  end
  return ""
end

local function fail(fname, fmt, ...)
  error(where() .. fname .. ": " .. fmt:format(...), 0)
end

--- Whether `m`'s class is `cls` or derives from it.
local function derives(m, cls)
  local c = getmetatable(m)
  while c do
    if c == cls then return true end
    local parent = getmetatable(c)
    c = parent and parent.__index
  end
  return false
end

-- --- saving ----------------------------------------------------------------

--- The architecture of `root` as data: modules numbered in the order first
-- met, each arguments encoded; a module met again while its own arguments
-- are being encoded is a cycle, an error naming both paths.
local function describe(root, fname)
  local nn = require("lunet.nn")
  local modules, index, active = {}, {}, {}
  local encode_module

  local function encode(v, path, depth)
    if depth > 64 then fail(fname, "%s: arguments nest deeper than 64 levels", path) end
    local kind = type(v)
    if kind == "number" or kind == "string" or kind == "boolean" or core.is_tensor(v) then
      return v
    end
    if is_class_instance(v) then return { module = encode_module(v, path) } end
    if kind == "table" and getmetatable(v) == nil then
      if active[v] then fail(fname, "%s: an argument contains itself (a cycle): it is %s", path, active[v]) end
      active[v] = path
      local out = {}
      for k, x in pairs(v) do
        if math.type(k) ~= "integer" and type(k) ~= "string" then
          fail(fname, "%s: cannot save an argument table with a %s key", path, type(k))
        end
        out[k] = encode(x, ("%s[%s]"):format(path, math.type(k) and k or ("%q"):format(k)), depth + 1)
      end
      active[v] = nil
      return { table = out }
    end
    fail(fname, "%s: cannot save a %s as a constructor argument; save model:state_dict() instead",
      path, kind)
  end

  function encode_module(m, path)
    if index[m] then return index[m] end
    if active[m] then
      fail(fname, "the module contains itself: %s is %s (a cycle)", path, active[m])
    end
    local name = m.__typename
    if nn[name] ~= getmetatable(m) then
      fail(fname, "%s: nn.%s is not a class of lunet.nn, so it cannot be rebuilt; save "
        .. "model:state_dict() instead", path, tostring(name))
    end
    local args
    if derives(m, nn.Sequential) then
      -- a container's modules are what it holds now, not what it was built with
      args = { n = #m }
      for i = 1, #m do args[i] = m[i] end
    else
      args = nn._constructor_args(m)
      if not args then
        fail(fname, "%s: this nn.%s was not built by calling nn.%s(...), so its arguments "
          .. "are unknown; save model:state_dict() instead", path, name, name)
      end
    end
    active[m] = path
    local node = { type = name, args = { n = args.n }, settings = {} }
    for i = 1, args.n do
      local sub = derives(m, nn.Sequential) and ("%s[%d]"):format(path, i)
        or ("%s (nn.%s argument %d)"):format(path, name, i)
      if args[i] ~= nil then node.args[i] = encode(args[i], sub, 1) end
    end
    -- a module held in a field but not given to the constructor (set later)
    -- would be lost on loading: refuse rather than save something else
    for k, v in pairs(m) do
      if is_class_instance(v) and not (derives(m, nn.Sequential) and math.type(k) == "integer")
        and not (type(k) == "string" and k:sub(1, 1) == "_") then
        local given = false
        for i = 1, args.n do given = given or args[i] == v end
        if active[v] then
          fail(fname, "the module contains itself: %s.%s is %s (a cycle)", path, tostring(k), active[v])
        end
        if not given then
          fail(fname, "%s.%s: a module set after construction cannot be saved with the "
            .. "architecture; save model:state_dict() instead", path, tostring(k))
        end
      end
    end
    for k, v in pairs(m) do
      local t = type(v)
      if type(k) == "string" and k:sub(1, 1) ~= "_" and (t == "boolean" or t == "number" or t == "string") then
        node.settings[k] = v
      end
    end
    active[m] = nil
    modules[#modules + 1] = node
    index[m] = #modules
    return #modules
  end

  local root_index = encode_module(root, "model")
  return modules, root_index
end

--- Saves `value` to `path`. A module is saved whole (architecture and
-- state; lunet.load gives a working module back); anything else as the
-- data it is. The file is written beside `path` and renamed over it at the
-- end, so a failed save leaves an existing file as it was.
function serialize.save(value, path)
  if is_module(value) then
    local nn = require("lunet.nn")
    local at, is = nn._find_cycle(value)
    if at then fail("lunet.save", "the module contains itself: %s is %s (a cycle)", at, is) end
    local modules, root = describe(value, "lunet.save")
    value = { [MARKER] = FORMAT, modules = modules, root = root, state = value:state_dict() }
  end
  core.checkpoint_save(value, path, "lunet.save")
end

-- --- loading ---------------------------------------------------------------

--- Rebuilds the module saved by serialize.save from its file's table `t`.
local function rebuild(t, path)
  local fname = "lunet.load"
  local function bad(fmt, ...)
    error(("%s%s: '%s': %s"):format(where(), fname, path, fmt:format(...)), 0)
  end
  if t[MARKER] ~= FORMAT then
    bad("a saved module in format %s; this lunet reads format %d", tostring(t[MARKER]), FORMAT)
  end
  local modules = t.modules
  if type(modules) ~= "table" or type(t.state) ~= "table" or math.type(t.root) ~= "integer" then
    bad("a damaged saved module (no modules, root or state)")
  end
  local nn = require("lunet.nn")
  local built, building = {}, {}
  local build

  local function decode(v, depth)
    if type(v) ~= "table" or core.is_tensor(v) then return v end
    if depth > 64 then bad("constructor arguments nest deeper than 64 levels") end
    if math.type(v.module) == "integer" and next(v, next(v)) == nil then return build(v.module) end
    if type(v.table) == "table" and next(v, next(v)) == nil then
      local out = {}
      for k, x in pairs(v.table) do out[k] = decode(x, depth + 1) end
      return out
    end
    bad("a damaged constructor argument")
  end

  function build(i)
    if built[i] then return built[i] end
    local node = modules[i]
    if type(node) ~= "table" or type(node.type) ~= "string" or type(node.args) ~= "table"
      or math.type(node.args.n) ~= "integer" or node.args.n < 0 or node.args.n > 1024 then
      bad("module %s is damaged or missing", tostring(i))
    end
    if building[i] then bad("module %d contains itself (a cycle)", i) end
    local cls = rawget(nn, node.type)
    if type(cls) ~= "table" or rawget(cls, "__typename") ~= node.type then
      bad("unknown module type nn.%s (this lunet has no such module)", node.type)
    end
    building[i] = true
    local args = {}
    for k = 1, node.args.n do args[k] = decode(node.args[k], 1) end
    local ok, m = pcall(cls, table.unpack(args, 1, node.args.n))
    if not ok then bad("cannot rebuild nn.%s: %s", node.type, tostring(m)) end
    for k, v in pairs(type(node.settings) == "table" and node.settings or {}) do
      -- scalars only, over scalars or nothing: never a method or a tensor
      local now = type(m[k])
      if type(k) == "string" and k:sub(1, 1) ~= "_" and (now == "nil" or now == type(v)) then
        m[k] = v
      end
    end
    building[i] = nil
    built[i] = m
    return m
  end

  local model = build(t.root)
  local ok, err = pcall(model.load_state_dict, model, t.state)
  if not ok then bad("the saved state does not fit the saved architecture: %s", tostring(err)) end
  return model
end

--- The value saved in `path`, with tensors on the CPU; a saved module is
-- rebuilt (on the CPU, in the training mode it was saved in). Damaged,
-- truncated or foreign files raise errors that say what is wrong and where.
function serialize.load(path)
  local value = core.checkpoint_load(path, "lunet.load")
  if type(value) == "table" and value[MARKER] ~= nil then return rebuild(value, path) end
  return value
end

return serialize
