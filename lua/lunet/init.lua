--- lunet: tensors, neural-network layers and devices for Lua 5.4.
-- `local lunet = require("lunet")` returns this table; nothing is global.
-- The C module lunet.core provides tensors and devices; the submodules nn,
-- optim, models, data and datasets are loaded on first use.
local core = require("lunet.core")

local lunet = {}
for name, value in pairs(core) do
  lunet[name] = value
end

-- Submodules load lazily, so `require("lunet")` stays cheap and a script that
-- only uses tensors never loads the layers.
local submodules = {
  nn = "lunet.nn", optim = "lunet.optim", data = "lunet.data",
  datasets = "lunet.datasets", bench = "lunet.bench", svg = "lunet.svg",
  report = "lunet.report", serialize = "lunet.serialize", models = "lunet.models",
  session = "lunet.session",
}

--- lunet.save(value, path) / lunet.load(path): see lunet/serialize.lua.
function lunet.save(value, path)
  return require("lunet.serialize").save(value, path)
end

function lunet.load(path)
  return require("lunet.serialize").load(path)
end

setmetatable(lunet, {
  __index = function(t, key)
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
