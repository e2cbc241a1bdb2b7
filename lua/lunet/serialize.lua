--- lunet.save / lunet.load (API.md, Serialization): tensors, modules' state
-- dicts and plain tables of them, in lunet's versioned binary format
-- (csrc/io/checkpoint.h). Data only: loading never runs code. Tensors are
-- stored as CPU data whatever their device, and load as CPU tensors.
local core = require("lunet.core")

local serialize = {}

local function is_module(v)
  return type(v) == "table" and getmetatable(v) ~= nil and type(v.state_dict) == "function"
    and type(v.parameters) == "function"
end

--- Saves `value` to `path`. A module is saved as its state_dict, to be
-- restored with model:load_state_dict(lunet.load(path)). The file is written
-- beside `path` and renamed over it at the end, so a failed save leaves an
-- existing file as it was.
function serialize.save(value, path)
  if is_module(value) then value = value:state_dict() end
  core.checkpoint_save(value, path, "lunet.save")
end

--- The value saved in `path`, with tensors on the CPU. Damaged, truncated
-- or foreign files raise errors that say what is wrong and where.
function serialize.load(path)
  return core.checkpoint_load(path, "lunet.load")
end

return serialize
