--- Options tables, read one way for every constructor (nn's modules, the
-- optimizers, the schedulers): unknown names are errors (a typo must not be
-- silently ignored), required ones must be given, the rest take defaults.
-- Errors go through the binding's error path (core._raise: "<fname>: ...",
-- at the user's line).
local core = require("lunet.core")

local options = {}

--- opts (nil or a table) with the defaults filled in. `defaults` names every
-- known option (a default of false stands for "no default": the caller
-- checks it, or lists the name in `required`). `required`: names that must be
-- given. `pair_keys` (a set): with it, each given value must have its
-- default's type, except that the names in the set may also be tables.
function options.read(fname, opts, defaults, required, pair_keys)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    core._raise(("%s: options must be a table, got %s"):format(fname, type(opts)))
  end
  local out = {}
  for k, v in pairs(opts) do
    if defaults[k] == nil then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = name end
      table.sort(known)
      core._raise(("%s: unknown option '%s' (known: %s)"):format(fname, tostring(k), table.concat(known, ", ")))
    end
    if pair_keys and type(v) ~= type(defaults[k]) and not (pair_keys[k] and type(v) == "table") then
      core._raise(("%s: option '%s' must be a %s, got %s"):format(fname, k, type(defaults[k]), type(v)))
    end
    out[k] = v
  end
  for _, k in ipairs(required or {}) do
    if out[k] == nil then core._raise(("%s: option '%s' is required"):format(fname, k)) end
  end
  for k, v in pairs(defaults) do
    if out[k] == nil then out[k] = v end
  end
  return out
end

--- v, when it is a finite number for which ok(v) holds; else an error
-- "<fname>: <name> must be <rule>, got <v>".
function options.check_number(fname, name, v, ok, rule)
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    core._raise(("%s: %s must be a finite number, got %s"):format(fname, name,
      type(v) == "number" and tostring(v) or type(v)))
  end
  if not ok(v) then core._raise(("%s: %s must be %s, got %s"):format(fname, name, rule, tostring(v))) end
  return v
end

return options
