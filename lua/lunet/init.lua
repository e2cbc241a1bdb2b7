--- lunet: tensors, neural-network layers and devices for Lua 5.4.
-- `local lunet = require("lunet")` returns this table; nothing is global.
-- The C module lunet.core provides tensors and devices; the submodules nn,
-- optim, models, data and datasets are loaded on first use.
local core = require("lunet.core")

local lunet = {}
for name, value in pairs(core) do
  -- "_" names (core._raise) are for lunet's own Lua modules
  if name:sub(1, 1) ~= "_" then lunet[name] = value end
end

-- Submodules load lazily, so `require("lunet")` stays cheap and a script that
-- only uses tensors never loads the layers.
local submodules = {
  nn = "lunet.nn", optim = "lunet.optim", data = "lunet.data",
  datasets = "lunet.datasets", bench = "lunet.bench", svg = "lunet.svg",
  report = "lunet.report", serialize = "lunet.serialize", models = "lunet.models",
  session = "lunet.session", transforms = "lunet.transforms",
  dist = "lunet.dist",
}

-- lunet.cuda: the CUDA module's own controls (set_tf32, get_tf32,
-- memory_stats, empty_cache, ...), from lunet/cuda.so. Where that module is
-- missing, lunet.cuda.available() answers false and the reason, and every
-- other function raises "lunet.cuda.<name>: CUDA not available: <reason>";
-- where it is present but no GPU is, the functions that need a device raise
-- the same error themselves.
local function load_cuda()
  local ok, mod = pcall(require, "lunet.cuda")
  if ok and type(mod) == "table" then
    return mod
  end
  local _, reason = core.cuda_available()
  return setmetatable({}, {
    __index = function(_, name)
      if name == "available" then
        return function() return false, reason end
      end
      return function()
        error(("lunet.cuda.%s: CUDA not available: %s"):format(tostring(name), reason), 2)
      end
    end,
  })
end

--- lunet.save(value, path) / lunet.load(path): see lunet/serialize.lua.
function lunet.save(value, path)
  return require("lunet.serialize").save(value, path)
end

function lunet.load(path)
  return require("lunet.serialize").load(path)
end

setmetatable(lunet, {
  __index = function(t, key)
    if key == "cuda" then
      local mod = load_cuda()
      rawset(t, key, mod)
      return mod
    end
    local modname = submodules[key]
    if modname then
      local mod = require(modname)
      rawset(t, key, mod)
      return mod
    end
    return nil
  end,
})

return lunet
