--- The bad-input cases of spec/40-bad_input_spec.lua: every function of
-- API.md called the wrong way. Each case is
--   { api = "<API name>", what = "<the mistake>", run = function(c) ... end,
--     expect = { "<fragment>", ... } }
-- and must raise a Lua error whose message contains every fragment (plain
-- text; the first names the function). A case with `ok = true` instead must
-- NOT raise: the call is harmless (junk arguments to a function that takes
-- none, a second free) and `check`, when given, inspects its results.
-- `c` is the case's context (see the runner in 40-bad_input_spec.lua):
--   c.dir          a fresh empty directory for this case
--   c.write(name, bytes)  writes c.dir/name, returns the path
--   c.idx(dims, payload)  the bytes of an unsigned-byte IDX file
--   c.freed()      a freed tensor
-- The cases run in a child process, so one that crashed would fail the spec
-- (and name itself) instead of killing busted.
local lunet = require("lunet")
local nn = lunet.nn
local optim = lunet.optim

local cases = {}
local function case(api, what, run, ...)
  cases[#cases + 1] = { api = api, what = what, run = run, expect = { ... } }
end
local function harmless(api, what, run, check)
  cases[#cases + 1] = { api = api, what = what, run = run, ok = true, check = check }
end

local function f32(shape) return lunet.rand(shape) end
local function i32(values) return lunet.tensor(values, { dtype = "int32" }) end
local function on_ref(t) return t:to("ref") end
local function model() return nn.Sequential(nn.Linear(4, 3)) end
-- a tiny dataset for the DataLoader
local function dataset(n)
  return { images = lunet.zeros({ n or 10, 1, 4, 4 }, { dtype = "uint8" }),
    labels = lunet.ones({ n or 10 }, { dtype = "int32" }) }
end

-- --- Module -----------------------------------------------------------------------

case("lunet.manual_seed", "no seed", function() lunet.manual_seed() end,
  "lunet.manual_seed", "seed must be an integer, got no value")
case("lunet.manual_seed", "a string", function() lunet.manual_seed("42") end,
  "lunet.manual_seed", "seed must be an integer, got string")
case("lunet.manual_seed", "a fraction", function() lunet.manual_seed(1.5) end,
  "lunet.manual_seed", "got 1.5")
case("lunet.manual_seed", "a negative seed", function() lunet.manual_seed(-1) end,
  "lunet.manual_seed", "seed = -1 is out of range")
harmless("lunet.clock", "junk arguments are ignored", function() return lunet.clock("x", {}) end,
  function(t) assert(type(t) == "number" and t > 0) end)
case("lunet.set_num_threads", "no count", function() lunet.set_num_threads() end,
  "lunet.set_num_threads", "n must be an integer, got no value")
case("lunet.set_num_threads", "zero threads", function() lunet.set_num_threads(0) end,
  "lunet.set_num_threads", "n = 0 is out of range")
case("lunet.set_num_threads", "an absurd count", function() lunet.set_num_threads(1e9) end,
  "lunet.set_num_threads", "n = 1000000000 is out of range")
case("lunet.set_num_threads", "a string", function() lunet.set_num_threads("4") end,
  "lunet.set_num_threads", "got string")
harmless("lunet.get_num_threads", "junk arguments are ignored",
  function() return lunet.get_num_threads(5) end,
  function(n) assert(math.type(n) == "integer" and n >= 1) end)

-- --- Devices -----------------------------------------------------------------------

case("lunet.device", "an unknown name", function() lunet.device("tpu") end,
  "lunet.device", "unknown device 'tpu'")
case("lunet.device", "a malformed CUDA index", function() lunet.device("cuda:x") end,
  "lunet.device", "'cuda:x'")
case("lunet.device", "a negative CUDA index", function() lunet.device("cuda:-1") end,
  "lunet.device", "'cuda:-1'")
case("lunet.device", "an absurd CUDA index", function() lunet.device("cuda:99999999999") end,
  "lunet.device", "cuda:99999999999")
case("lunet.device", "a number", function() lunet.device(0) end,
  "lunet.device", "expected a device or a device name", "got number")
case("lunet.device", "a table", function() lunet.device({}) end,
  "lunet.device", "got table")
harmless("lunet.devices", "junk arguments are ignored", function() return lunet.devices(1, 2) end,
  function(list) assert(list[1] == "cpu") end)
harmless("lunet.cuda_available", "answers false and a reason rather than raising",
  function() return lunet.cuda_available("x") end,
  function(ok, reason) assert(ok == true or type(reason) == "string") end)
case("lunet.Device:synchronize", "called with a dot", function()
  local dev = lunet.device("cpu")
  dev.synchronize()
end, "lunet.Device:synchronize", "expected a device as self")
case("lunet.Device:info", "called on a string", function()
  lunet.device("cpu").info("cpu")
end, "lunet.Device:info", "expected a device as self")
harmless("lunet.Device", "fields: an unknown field is nil, type and index are right", function()
  local dev = lunet.device("cpu")
  return dev.no_such_field, dev.type, dev.index, tostring(dev)
end, function(none, kind, index, name)
  assert(none == nil and kind == "cpu" and index == 0 and name == "cpu")
end)

-- --- Tensor constructors ---------------------------------------------------------------

case("lunet.tensor", "no data", function() lunet.tensor() end,
  "lunet.tensor", "argument #1: expected a (nested) table of numbers or a number, got no value")
case("lunet.tensor", "a string", function() lunet.tensor("1, 2") end, "lunet.tensor", "got string")
case("lunet.tensor", "a string element", function() lunet.tensor({ 1, "2" }) end,
  "lunet.tensor", "element [2] is string, expected a number")
case("lunet.tensor", "a hole", function() lunet.tensor({ 1, nil, 3 }) end,
  "lunet.tensor", "element [2] is nil")
case("lunet.tensor", "ragged rows", function() lunet.tensor({ { 1, 2 }, { 3 } }) end,
  "lunet.tensor", "not rectangular", "element [2]")
case("lunet.tensor", "a number among rows", function() lunet.tensor({ { 1, 2 }, 5 }) end,
  "lunet.tensor", "not rectangular", "got number")
case("lunet.tensor", "an empty row beside a number", function() lunet.tensor({ {}, 5 }) end,
  "lunet.tensor", "not rectangular")
case("lunet.tensor", "nested deeper than 8 levels",
  function() lunet.tensor({ { { { { { { { { 1 } } } } } } } } }) end,
  "lunet.tensor", "nested deeper than 8 levels")
case("lunet.tensor", "a fraction for int32", function() lunet.tensor({ 1.5 }, { dtype = "int32" }) end,
  "lunet.tensor", "element [1] = 1.5 is not an int32")
case("lunet.tensor", "infinity for int32", function() lunet.tensor({ math.huge }, { dtype = "int32" }) end,
  "lunet.tensor", "is not an int32")
case("lunet.tensor", "300 for uint8", function() lunet.tensor({ { 300 } }, { dtype = "uint8" }) end,
  "lunet.tensor", "element [1, 1] = 300 is not a uint8")
case("lunet.tensor", "an unknown dtype", function() lunet.tensor({ 1 }, { dtype = "float64" }) end,
  "lunet.tensor", "unknown dtype \"float64\"")
case("lunet.tensor", "a dtype that is not a name", function() lunet.tensor({ 1 }, { dtype = 4 }) end,
  "lunet.tensor", "dtype must be a name", "got number")
case("lunet.tensor", "an unknown device", function() lunet.tensor({ 1 }, { device = "tpu" }) end,
  "lunet.tensor", "unknown device 'tpu'")
case("lunet.tensor", "a device that is not a device", function() lunet.tensor({ 1 }, { device = 0 }) end,
  "lunet.tensor", "option 'device' must be a device", "got number")
case("lunet.tensor", "a misspelt option", function() lunet.tensor({ 1 }, { dtpye = "int32" }) end,
  "lunet.tensor", "unknown option 'dtpye'")
case("lunet.tensor", "options that are not a table", function() lunet.tensor({ 1 }, "int32") end,
  "lunet.tensor", "argument #2: expected an options table")
case("lunet.tensor", "a tensor as an element", function() lunet.tensor({ lunet.ones({ 1 }) }) end,
  "lunet.tensor", "element [1] is userdata")
case("lunet.empty", "an absurd shape", function() lunet.empty({ 1e12, 1e12 }) end,
  "lunet.empty", "shape [1000000000000, 1000000000000] is too large")
case("lunet.empty", "no shape", function() lunet.empty() end,
  "lunet.empty", "argument #1: expected a shape", "got no value")
case("lunet.empty", "a misspelt option", function() lunet.empty({ 2 }, { devcie = "cpu" }) end,
  "lunet.empty", "unknown option 'devcie'")
case("lunet.zeros", "1e12 x 1e12", function() lunet.zeros({ 1e12, 1e12 }) end,
  "lunet.zeros", "is too large")
case("lunet.zeros", "sizes that overflow 64 bits", function() lunet.zeros({ 2 ^ 62, 2 ^ 62, 2 ^ 62 }) end,
  "lunet.zeros", "is too large")
case("lunet.zeros", "an empty tensor with absurd other sizes", function() lunet.zeros({ 0, 2 ^ 62, 2 ^ 62 }) end,
  "lunet.zeros", "is too large")
case("lunet.zeros", "a negative size", function() lunet.zeros({ 2, -3 }) end,
  "lunet.zeros", "size 2 is negative (-3)")
case("lunet.zeros", "a fractional size", function() lunet.zeros({ 2.5 }) end,
  "lunet.zeros", "size 1 must be an integer, got 2.5")
case("lunet.zeros", "a NaN size", function() lunet.zeros({ 0 / 0 }) end,
  "lunet.zeros", "size 1 must be an integer")
case("lunet.zeros", "an infinite size", function() lunet.zeros({ math.huge }) end,
  "lunet.zeros", "size 1 must be an integer, got inf")
case("lunet.zeros", "a string size", function() lunet.zeros({ "2" }) end,
  "lunet.zeros", "size 1 must be an integer, got string")
case("lunet.zeros", "nine dimensions", function() lunet.zeros({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end,
  "lunet.zeros", "shape has 9 sizes; at most 8")
case("lunet.zeros", "a string shape", function() lunet.zeros("2x3") end,
  "lunet.zeros", "expected a shape", "got string")
case("lunet.zeros", "an unknown dtype", function() lunet.zeros({ 2 }, { dtype = "double" }) end,
  "lunet.zeros", "unknown dtype \"double\"")
case("lunet.ones", "a negative size", function() lunet.ones({ -1 }) end,
  "lunet.ones", "size 1 is negative")
case("lunet.ones", "an unknown device", function() lunet.ones({ 1 }, { device = "gpu" }) end,
  "lunet.ones", "unknown device 'gpu'")
case("lunet.full", "no value", function() lunet.full({ 2 }) end,
  "lunet.full", "argument #2: expected the fill value (a number), got no value")
case("lunet.full", "a string value", function() lunet.full({ 2 }, "1") end,
  "lunet.full", "got string")
case("lunet.full", "no shape table", function() lunet.full(2, 1) end,
  "lunet.full", "argument #1: expected a shape table")
case("lunet.full", "300 in uint8", function() lunet.full({ 2 }, 300, { dtype = "uint8" }) end,
  "lunet.full", "the value 300 is not a uint8")
case("lunet.full", "NaN in int32", function() lunet.full({ 2 }, 0 / 0, { dtype = "int32" }) end,
  "lunet.full", "is not an int32")
case("lunet.full", "an absurd shape", function() lunet.full({ 1e12, 1e12 }, 1) end,
  "lunet.full", "is too large")
case("lunet.rand", "an integer dtype", function() lunet.rand({ 2 }, { dtype = "int32" }) end,
  "lunet.rand", "need a floating-point tensor, got int32")
case("lunet.rand", "a negative size", function() lunet.rand({ -2 }) end,
  "lunet.rand", "size 1 is negative")
case("lunet.randn", "uint8", function() lunet.randn({ 2 }, { dtype = "uint8" }) end,
  "lunet.randn", "need a floating-point tensor, got uint8")
case("lunet.randn", "an absurd shape", function() lunet.randn({ 1e12, 1e12 }) end,
  "lunet.randn", "is too large")

-- --- Tensor methods -----------------------------------------------------------------------

case("Tensor:shape", "a freed tensor", function(c) c.freed():shape() end,
  "lunet.Tensor:shape", "the tensor was freed")
case("Tensor:shape", "called with a dot", function() local t = lunet.ones({ 2 }); t.shape() end,
  "lunet.Tensor:shape", "expected a lunet tensor as self", "with a colon")
case("Tensor:size", "dimension 0", function() f32({ 2, 3 }):size(0) end,
  "lunet.Tensor:size", "dim must be in 1..2 for shape [2, 3]")
case("Tensor:size", "a dimension past the end", function() f32({ 2, 3 }):size(3) end,
  "lunet.Tensor:size", "dim = 3 is out of range")
case("Tensor:size", "a string dimension", function() f32({ 2 }):size("1") end,
  "lunet.Tensor:size", "dim must be an integer, got string")
case("Tensor:size", "a scalar has no dimensions", function() lunet.tensor(1):size(1) end,
  "lunet.Tensor:size", "a scalar tensor has no dimensions")
case("Tensor:dim", "a freed tensor", function(c) c.freed():dim() end,
  "lunet.Tensor:dim", "the tensor was freed")
case("Tensor:numel", "a freed tensor", function(c) c.freed():numel() end,
  "lunet.Tensor:numel", "the tensor was freed")
case("Tensor:numel", "a number as self", function() lunet.ones({ 1 }).numel(3) end,
  "lunet.Tensor:numel", "expected a lunet tensor as self, got number")
case("Tensor:dtype", "a freed tensor", function(c) c.freed():dtype() end,
  "lunet.Tensor:dtype", "the tensor was freed")
case("Tensor:device", "a freed tensor", function(c) c.freed():device() end,
  "lunet.Tensor:device", "the tensor was freed")
case("Tensor:to", "an unknown device", function() f32({ 2 }):to("tpu") end,
  "lunet.Tensor:to", "'tpu' is neither a device")
case("Tensor:to", "a malformed CUDA device", function() f32({ 2 }):to("cuda:one") end,
  "lunet.Tensor:to", "'cuda:one'")
case("Tensor:to", "an unknown dtype name", function() f32({ 2 }):to("float64") end,
  "lunet.Tensor:to", "'float64' is neither a device", "nor a dtype")
case("Tensor:to", "no target", function() f32({ 2 }):to() end,
  "lunet.Tensor:to", "expected a device, a device name or a dtype name, got no value")
case("Tensor:to", "a number", function() f32({ 2 }):to(1) end,
  "lunet.Tensor:to", "got number")
case("Tensor:to", "a freed tensor", function(c) c.freed():to("int32") end,
  "lunet.Tensor:to", "the tensor was freed")
case("Tensor:reshape", "another element count", function() f32({ 2, 3 }):reshape({ 4 }) end,
  "lunet.Tensor:reshape", "cannot reshape [2, 3] (6 elements) to [4]")
case("Tensor:reshape", "two -1", function() f32({ 2, 3 }):reshape({ -1, -1 }) end,
  "lunet.Tensor:reshape", "only one size may be -1")
case("Tensor:reshape", "-2", function() f32({ 2, 3 }):reshape({ -2, -3 }) end,
  "lunet.Tensor:reshape", "shape size = -2 is out of range")
case("Tensor:reshape", "an absurd shape", function() f32({ 2, 3 }):reshape({ 1e12, 1e12 }) end,
  "lunet.Tensor:reshape", "cannot reshape")
case("Tensor:reshape", "-1 beside a zero", function() f32({ 2, 3 }):reshape({ 0, -1 }) end,
  "lunet.Tensor:reshape", "cannot reshape")
case("Tensor:reshape", "no shape", function() f32({ 2 }):reshape() end,
  "lunet.Tensor:reshape", "expected a shape such as {64, -1}, got no value")
case("Tensor:reshape", "nine dimensions", function() f32({ 1 }):reshape({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }) end,
  "lunet.Tensor:reshape", "at most 8")
case("Tensor:narrow", "dimension out of range", function() f32({ 2, 3 }):narrow(3, 1, 1) end,
  "lunet.Tensor:narrow", "dim = 3 is out of range")
case("Tensor:narrow", "start 0", function() f32({ 2, 3 }):narrow(1, 0, 1) end,
  "lunet.Tensor:narrow", "start = 0 is out of range")
case("Tensor:narrow", "past the end", function() f32({ 2, 3 }):narrow(1, 2, 2) end,
  "lunet.Tensor:narrow", "range start 2, length 2 is outside dimension 1 of shape [2, 3]")
case("Tensor:narrow", "a huge length", function() f32({ 2, 3 }):narrow(2, 2, 2 ^ 62) end,
  "lunet.Tensor:narrow", "is outside dimension 2")
case("Tensor:narrow", "a negative length", function() f32({ 2, 3 }):narrow(1, 1, -1) end,
  "lunet.Tensor:narrow", "length = -1 is out of range")
case("Tensor:narrow", "no arguments", function() f32({ 2, 3 }):narrow() end,
  "lunet.Tensor:narrow", "dim must be an integer, got no value")
case("Tensor:clone", "a freed tensor", function(c) c.freed():clone() end,
  "lunet.Tensor:clone", "the tensor was freed")
case("Tensor:copy", "another element count", function() f32({ 2, 3 }):copy(f32({ 3 })) end,
  "lunet.Tensor:copy", "cannot copy [3] into [2, 3]")
case("Tensor:copy", "no source", function() f32({ 2 }):copy() end,
  "lunet.Tensor:copy", "expected a lunet tensor, got no value")
case("Tensor:copy", "a table source", function() f32({ 2 }):copy({ 1, 2 }) end,
  "lunet.Tensor:copy", "got table")
case("Tensor:copy", "a freed source", function(c) f32({ 2 }):copy(c.freed()) end,
  "lunet.Tensor:copy", "the tensor was freed")
case("Tensor:copy", "into a freed tensor", function(c) c.freed():copy(f32({ 2 })) end,
  "lunet.Tensor:copy", "the tensor was freed")
case("Tensor:fill", "a string", function() f32({ 2 }):fill("0") end,
  "lunet.Tensor:fill", "expected a number, got string")
case("Tensor:fill", "no value", function() f32({ 2 }):fill() end,
  "lunet.Tensor:fill", "got no value")
case("Tensor:fill", "-1 into uint8", function() lunet.zeros({ 2 }, { dtype = "uint8" }):fill(-1) end,
  "lunet.Tensor:fill", "the value -1 is not a uint8")
case("Tensor:zero", "a freed tensor", function(c) c.freed():zero() end,
  "lunet.Tensor:zero", "the tensor was freed")
case("Tensor:get", "too few indices", function() f32({ 2, 3 }):get(1) end,
  "lunet.Tensor:get", "expected 2 indices for shape [2, 3], got 1")
case("Tensor:get", "too many indices", function() f32({ 2, 3 }):get(1, 1, 1) end,
  "lunet.Tensor:get", "expected 2 indices for shape [2, 3], got 3")
case("Tensor:get", "index 0", function() f32({ 2, 3 }):get(0, 1) end,
  "lunet.Tensor:get", "index 0 is out of range for dimension 1 of shape [2, 3] (1..2)")
case("Tensor:get", "an index past the end", function() f32({ 2, 3 }):get(1, 4) end,
  "lunet.Tensor:get", "index 4 is out of range for dimension 2")
case("Tensor:get", "a huge index", function() f32({ 2 }):get(2 ^ 62) end,
  "lunet.Tensor:get", "is out of range")
case("Tensor:get", "a negative index", function() f32({ 2 }):get(-1) end,
  "lunet.Tensor:get", "index -1 is out of range")
case("Tensor:get", "a fractional index", function() f32({ 2 }):get(1.5) end,
  "lunet.Tensor:get", "index must be an integer, got 1.5")
case("Tensor:get", "a string index", function() f32({ 2 }):get("1") end,
  "lunet.Tensor:get", "index must be an integer, got string")
case("Tensor:get", "an element of an empty tensor", function() lunet.zeros({ 0 }):get(1) end,
  "lunet.Tensor:get", "out of range")
case("Tensor:set", "no value", function() f32({ 2 }):set() end,
  "lunet.Tensor:set", "argument #1: expected the value (a number), got no value")
case("Tensor:set", "an index past the end", function() f32({ 2 }):set(1, 3) end,
  "lunet.Tensor:set", "index 3 is out of range")
case("Tensor:set", "missing indices", function() f32({ 2, 2 }):set(1) end,
  "lunet.Tensor:set", "expected 2 indices")
case("Tensor:set", "2^31 into int32", function() i32({ 0 }):set(2 ^ 31, 1) end,
  "lunet.Tensor:set", "the value 2147483648 is not an int32")
case("Tensor:totable", "a freed tensor", function(c) c.freed():totable() end,
  "lunet.Tensor:totable", "the tensor was freed")
case("Tensor:sum", "a freed tensor", function(c) c.freed():sum() end,
  "lunet.Tensor:sum", "the tensor was freed")
case("Tensor:mean", "an empty tensor", function() lunet.zeros({ 0 }):mean() end,
  "lunet.Tensor:mean", "mean of an empty tensor is undefined")
case("Tensor:max", "an empty tensor", function() lunet.zeros({ 3, 0 }):max() end,
  "lunet.Tensor:max", "max of an empty tensor is undefined")
case("Tensor:min", "an empty tensor", function() lunet.zeros({ 0 }):min() end,
  "lunet.Tensor:min", "min of an empty tensor is undefined")
case("Tensor:argmax", "no dimension for a matrix", function() f32({ 2, 3 }):argmax() end,
  "lunet.Tensor:argmax", "dim is required for a 2-dimensional tensor")
case("Tensor:argmax", "a dimension past the end", function() f32({ 2, 3 }):argmax(3) end,
  "lunet.Tensor:argmax", "dim = 3 is out of range")
case("Tensor:argmax", "along an empty dimension", function() lunet.zeros({ 3, 0 }):argmax(2) end,
  "lunet.Tensor:argmax", "argmax along an empty dimension 2 of shape [3, 0]")
case("Tensor:eq", "a shape that does not broadcast", function() f32({ 2, 3 }):eq(f32({ 2 })) end,
  "lunet.Tensor:eq", "shapes [2, 3] and [2] cannot be broadcast")
case("Tensor:eq", "another dtype", function() f32({ 2 }):eq(i32({ 1, 2 })) end,
  "lunet.Tensor:eq", "dtypes float32 and int32 differ")
case("Tensor:eq", "another device", function() f32({ 2 }):eq(on_ref(f32({ 2 }))) end,
  "lunet.Tensor:eq", "on different devices (cpu and ref)")
case("Tensor:eq", "a string", function() f32({ 2 }):eq("x") end,
  "lunet.Tensor:eq", "expected tensors or numbers, got userdata and string")
case("Tensor:add (+)", "another shape", function() return f32({ 2, 3 }) + f32({ 3, 2 }) end,
  "lunet.Tensor:add (+)", "shapes [2, 3] and [3, 2] cannot be broadcast")
case("Tensor:add (+)", "another device", function() return f32({ 2 }) + on_ref(f32({ 2 })) end,
  "lunet.Tensor:add (+)", "on different devices (cpu and ref)", "t:to(device)")
case("Tensor:add (+)", "a table", function() return f32({ 2 }) + { 1, 2 } end,
  "lunet.Tensor:add (+)", "got userdata and table")
case("Tensor:add (+)", "a freed tensor", function(c) return f32({ 2 }) + c.freed() end,
  "lunet.Tensor:add (+)", "argument #2: the tensor was freed")
case("Tensor:sub (-)", "another dtype", function() return f32({ 2 }) - i32({ 1, 2 }) end,
  "lunet.Tensor:sub (-)", "dtypes float32 and int32 differ")
case("Tensor:sub (-)", "a string on the left", function() return "1" - f32({ 2 }) end,
  "lunet.Tensor:sub (-)", "got string and userdata")
case("Tensor:mul (*)", "another shape", function() return f32({ 4 }) * f32({ 2, 2 }) end,
  "lunet.Tensor:mul (*)", "shapes [4] and [2, 2] cannot be broadcast")
case("Tensor:mul (*)", "a freed tensor on the left", function(c) return c.freed() * 2 end,
  "lunet.Tensor:mul (*)", "the tensor was freed")
case("Tensor:div (/)", "int32 tensors", function() return i32({ 1 }) / 0 end,
  "lunet.Tensor:div (/)", "division of int32 tensors is not defined")
case("Tensor:div (/)", "another device", function() return on_ref(f32({ 2 })) / f32({ 2 }) end,
  "lunet.Tensor:div (/)", "different devices (ref and cpu)")
case("Tensor:neg (unary -)", "a freed tensor", function(c) return -c.freed() end,
  "lunet.Tensor:neg (unary -)", "the tensor was freed")
case("lunet.matmul", "vectors", function() lunet.matmul(f32({ 3 }), f32({ 3 })) end,
  "lunet.matmul", "expected matrices [M, K] and [K, N], got [3] and [3]")
case("lunet.matmul", "inner sizes that differ", function() lunet.matmul(f32({ 2, 3 }), f32({ 2, 3 })) end,
  "lunet.matmul", "got [2, 3] and [2, 3]")
case("lunet.matmul", "one matrix", function() lunet.matmul(f32({ 2, 2 })) end,
  "lunet.matmul", "argument #2: expected a lunet tensor, got no value")
case("lunet.matmul", "int32 matrices", function() lunet.matmul(i32({ { 1 } }), i32({ { 1 } })) end,
  "lunet.matmul", "int32 tensors is not supported")
case("lunet.matmul", "different devices", function() lunet.matmul(f32({ 3, 2 }), on_ref(f32({ 2, 3 }))) end,
  "lunet.matmul", "different devices (cpu and ref)")
case("lunet.matmul", "different dtypes", function()
  lunet.matmul(f32({ 3, 2 }), lunet.ones({ 2, 3 }, { dtype = "uint8" }))
end, "lunet.matmul", "dtypes float32 and uint8 differ")
harmless("tostring(tensor)", "a freed tensor prints as freed", function(c) return tostring(c.freed()) end,
  function(s) assert(s == "Tensor(freed)", s) end)
case("Tensor:free", "called on a number", function() lunet.ones({ 1 }).free(1) end,
  "lunet.Tensor:free", "expected a tensor as self, got number")
harmless("Tensor:free", "a second free does nothing", function()
  local t = lunet.ones({ 3 })
  t:free()
  t:free()
  return t
end, function(t) assert(not pcall(t.sum, t)) end)

-- --- nn modules: construction ----------------------------------------------------------------

case("nn.Linear", "no sizes", function() nn.Linear() end,
  "lunet.nn.Linear", "in_features must be an integer, got nil")
case("nn.Linear", "zero outputs", function() nn.Linear(3, 0) end,
  "lunet.nn.Linear", "out_features must be at least 1, got 0")
case("nn.Linear", "a fractional size", function() nn.Linear(2.5, 3) end,
  "lunet.nn.Linear", "in_features must be an integer, got 2.5")
case("nn.Linear", "absurd sizes", function() nn.Linear(1e12, 1e12) end,
  "lunet.nn.Linear", "is too large")
case("nn.Linear", "a misspelt option", function() nn.Linear(2, 3, { biass = false }) end,
  "lunet.nn.Linear", "unknown option 'biass' (known: bias)")
case("nn.Linear", "a non-boolean bias", function() nn.Linear(2, 3, { bias = 0 }) end,
  "lunet.nn.Linear", "option 'bias' must be a boolean, got number")
case("nn.Conv2d", "no kernel", function() nn.Conv2d(1, 2) end,
  "lunet.nn.Conv2d", "kernel size is required")
case("nn.Conv2d", "kernel 0", function() nn.Conv2d(1, 2, 0) end,
  "lunet.nn.Conv2d", "kernel size must be at least 1, got 0")
case("nn.Conv2d", "a kernel of three sizes", function() nn.Conv2d(1, 2, { 3, 3, 3 }) end,
  "lunet.nn.Conv2d", "must be a number or a pair {h, w}, got a table of 3 entries")
case("nn.Conv2d", "stride 0", function() nn.Conv2d(1, 2, 3, { stride = 0 }) end,
  "lunet.nn.Conv2d", "stride must be at least 1, got 0")
case("nn.Conv2d", "negative padding", function() nn.Conv2d(1, 2, 3, { padding = { 1, -1 } }) end,
  "lunet.nn.Conv2d", "padding must not be negative, got {1, -1}")
case("nn.Conv2d", "an absurd kernel", function() nn.Conv2d(1, 2, 1e6) end,
  "lunet.nn.Conv2d", "is too large")
case("nn.Conv2d", "absurd padding", function() nn.Conv2d(1, 1, 1, { padding = 2 ^ 40 }) end,
  "lunet.nn.Conv2d", "padding = 1099511627776 is out of range")
case("nn.Conv2d", "zero input channels", function() nn.Conv2d(0, 2, 3) end,
  "lunet.nn.Conv2d", "in_channels must be at least 1")
case("nn.MaxPool2d", "no kernel", function() nn.MaxPool2d() end,
  "lunet.nn.MaxPool2d", "kernel size is required")
case("nn.MaxPool2d", "stride 0", function() nn.MaxPool2d(2, 0) end,
  "lunet.nn.MaxPool2d", "stride must be at least 1, got 0")
case("nn.MaxPool2d", "padding over half the kernel", function() nn.MaxPool2d(2, 2, 2) end,
  "lunet.nn.MaxPool2d", "padding {2, 2} must be at most half the kernel size {2, 2}")
case("nn.AvgPool2d", "a string stride", function() nn.AvgPool2d(2, "2") end,
  "lunet.nn.AvgPool2d", "stride must be an integer or a pair {h, w}, got string")
case("nn.AvgPool2d", "kernel -1", function() nn.AvgPool2d(-1) end,
  "lunet.nn.AvgPool2d", "kernel size must be at least 1, got -1")
case("nn.Dropout", "p above 1", function() nn.Dropout(1.5) end,
  "lunet.nn.Dropout", "p must be a probability in [0, 1], got 1.5")
case("nn.Dropout", "p NaN", function() nn.Dropout(0 / 0) end,
  "lunet.nn.Dropout", "p must be a probability in [0, 1]")
case("nn.Dropout", "p a string", function() nn.Dropout("0.5") end,
  "lunet.nn.Dropout", "p must be a probability in [0, 1], got 0.5")
case("nn.BatchNorm2d", "zero channels", function() nn.BatchNorm2d(0) end,
  "lunet.nn.BatchNorm2d", "num_features must be at least 1, got 0")
case("nn.BatchNorm2d", "eps 0", function() nn.BatchNorm2d(2, { eps = 0 }) end,
  "lunet.nn.BatchNorm2d", "eps must be positive, got 0")
case("nn.BatchNorm2d", "momentum 2", function() nn.BatchNorm2d(2, { momentum = 2 }) end,
  "lunet.nn.BatchNorm2d", "momentum must be in [0, 1], got 2")
case("nn.BatchNorm2d", "absurd channels", function() nn.BatchNorm2d(2 ^ 50) end,
  "lunet.nn.BatchNorm2d", "is too large")
case("nn.Sequential", "a number among modules", function() nn.Sequential(nn.ReLU(), 5) end,
  "lunet.nn.Sequential", "module 2 is number, not a module")
case("nn.Sequential", "a tensor in the list", function() nn.Sequential({ lunet.ones({ 1 }) }) end,
  "lunet.nn.Sequential", "module 1 is a tensor, not a module")
case("Sequential:add", "a function", function() nn.Sequential():add(print) end,
  "lunet.nn.Sequential:add", "expected a module, got function")
case("Sequential:add", "called with a dot", function() local s = nn.Sequential(); s.add(nn.ReLU()) end,
  "lunet.nn.Sequential:add", "expected a module as self")
harmless("#seq and seq[i]", "out-of-range positions are nil", function()
  local s = nn.Sequential(nn.ReLU())
  return #s, s[0], s[2], s[1]
end, function(n, zero, past, first)
  assert(n == 1 and zero == nil and past == nil and nn.is_module(first))
end)

-- --- nn modules: forward ----------------------------------------------------------------------

case("m:forward", "Linear: the wrong feature count", function() nn.Linear(6, 3):forward(f32({ 2, 5 })) end,
  "lunet.nn.Linear:forward", "expected input [N, 6], got [2, 5]")
case("m:forward", "Linear: an image batch", function() nn.Linear(5, 3):forward(f32({ 2, 1, 8, 8 })) end,
  "lunet.nn.Linear:forward", "expected input [N, 5], got [2, 1, 8, 8]")
case("m:forward", "Linear: no input", function() nn.Linear(5, 3):forward() end,
  "lunet.nn.Linear:forward", "expected a lunet tensor, got nil")
case("m:forward", "Linear: a freed input", function(c) nn.Linear(5, 3):forward(c.freed()) end,
  "lunet.nn.Linear:forward", "the tensor was freed")
case("m:forward", "Linear: int32 input", function() nn.Linear(2, 3):forward(i32({ { 1, 2 } })) end,
  "lunet.nn.Linear:forward", "the input must be float32, got int32")
case("m:forward", "Linear: input on another device", function()
  nn.Linear(5, 3):forward(on_ref(f32({ 2, 5 })))
end, "lunet.nn.Linear:forward", "on different devices (ref and cpu)")
case("m:forward", "Linear: called with a dot", function()
  local m = nn.Linear(5, 3)
  m.forward(f32({ 2, 5 }))
end, "lunet.nn.Linear:forward", "expected a module as self, got a tensor", "with a colon")
case("m:forward", "Linear: called on the class", function() nn.Linear:forward(f32({ 2, 5 })) end,
  "lunet.nn.Linear:forward", "expected a module as self")
case("m:forward", "Conv2d: the wrong channel count", function() nn.Conv2d(3, 2, 3):forward(f32({ 2, 1, 8, 8 })) end,
  "lunet.nn.Conv2d:forward", "expected input [N, 3, H, W], got [2, 1, 8, 8]")
case("m:forward", "Conv2d: a kernel larger than the image", function() nn.Conv2d(1, 2, 9):forward(f32({ 1, 1, 8, 8 })) end,
  "lunet.nn.Conv2d:forward", "the kernel 9x9 is larger than the input [1, 1, 8, 8]")
case("m:forward", "Conv2d: a matrix", function() nn.Conv2d(1, 2, 3):forward(f32({ 2, 5 })) end,
  "lunet.nn.Conv2d:forward", "got [2, 5]")
case("m:forward", "Conv2d: absurd padding", function()
  -- the constructor refuses it (see nn.Conv2d's cases): set after it
  local conv = nn.Conv2d(1, 1, 1)
  conv.padding = { 2 ^ 40, 2 ^ 40 }
  conv:forward(f32({ 1, 1, 2, 2 }))
end, "lunet.nn.Conv2d:forward", "out of range")
case("m:forward", "MaxPool2d: a matrix", function() nn.MaxPool2d(2):forward(f32({ 2, 5 })) end,
  "lunet.nn.MaxPool2d:forward", "expected input [N, C, H, W], got [2, 5]")
case("m:forward", "MaxPool2d: a window larger than the image", function() nn.MaxPool2d(9):forward(f32({ 1, 1, 8, 8 })) end,
  "lunet.nn.MaxPool2d:forward", "larger than the input")
case("m:forward", "AvgPool2d: a string", function() nn.AvgPool2d(2):forward("x") end,
  "lunet.nn.AvgPool2d:forward", "expected a lunet tensor, got string")
case("m:forward", "ReLU: uint8", function() nn.ReLU():forward(lunet.zeros({ 2 }, { dtype = "uint8" })) end,
  "lunet.nn.ReLU:forward", "the input must be float32, got uint8")
case("m:forward", "Flatten: a vector", function() nn.Flatten():forward(f32({ 3 })) end,
  "lunet.nn.Flatten:forward", "expected input [N, ...] with at least 2 dimensions, got [3]")
case("m:forward", "Flatten: a freed input", function(c) nn.Flatten():forward(c.freed()) end,
  "lunet.nn.Flatten:forward", "the tensor was freed")
case("m:forward", "Dropout: no input", function() nn.Dropout(0.5):forward() end,
  "lunet.nn.Dropout:forward", "got nil")
case("m:forward", "Dropout in eval mode: no input", function() nn.Dropout(0.5):eval():forward() end,
  "lunet.nn.Dropout:forward", "expected a tensor, got nil")
case("m:forward", "BatchNorm2d: the wrong channel count", function() nn.BatchNorm2d(2):forward(f32({ 2, 1, 4, 4 })) end,
  "lunet.nn.BatchNorm2d:forward", "expected input [N, 2, ...], got [2, 1, 4, 4]")
case("m:forward", "BatchNorm2d: one value per channel in training", function()
  nn.BatchNorm2d(1):forward(f32({ 1, 1, 1, 1 }))
end, "lunet.nn.BatchNorm2d:forward", "expected more than 1 value per channel when training")
case("m:forward", "CrossEntropyLoss: float labels", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), f32({ 2 }))
end, "lunet.nn.CrossEntropyLoss:forward", "labels must be int32 class numbers in 1..5, got float32")
case("m:forward", "CrossEntropyLoss: label 0 (labels are 1-based)", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), i32({ 0, 1 }))
end, "lunet.nn.CrossEntropyLoss:forward", "label 0 at position 1 is outside 1..5")
case("m:forward", "CrossEntropyLoss: a label past the classes", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), i32({ 1, 6 }))
end, "lunet.nn.CrossEntropyLoss:forward", "label 6 at position 2 is outside 1..5")
case("m:forward", "CrossEntropyLoss: too few labels", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), i32({ 1 }))
end, "lunet.nn.CrossEntropyLoss:forward", "expected labels [2] for logits [2, 5], got [1]")
case("m:forward", "CrossEntropyLoss: labels as a table", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), { 1, 2 })
end, "lunet.nn.CrossEntropyLoss:forward", "expected a lunet tensor, got table")
case("m:forward", "CrossEntropyLoss: labels on another device", function()
  nn.CrossEntropyLoss():forward(f32({ 2, 5 }), on_ref(i32({ 1, 2 })))
end, "lunet.nn.CrossEntropyLoss:forward", "different devices")
case("m:forward", "Sequential: called with a dot", function()
  local s = nn.Sequential(nn.ReLU())
  s.forward(f32({ 2 }))
end, "lunet.nn.Sequential:forward", "expected a module as self, got a tensor")
case("m:forward", "Sequential: layers that do not fit", function()
  nn.Sequential(nn.Linear(5, 3), nn.Linear(4, 2)):forward(f32({ 2, 5 }))
end, "lunet.nn.Linear:forward", "expected input [N, 4], got [2, 3]")

-- --- nn modules: backward and the rest --------------------------------------------------------

local function before_forward(name, m, input, grad)
  case("m:backward", name .. " used before forward", function() m():backward(input(), grad()) end,
    "lunet.nn." .. name .. ":backward", "call forward before backward")
end
before_forward("MaxPool2d", function() return nn.MaxPool2d(2) end,
  function() return f32({ 1, 1, 4, 4 }) end, function() return f32({ 1, 1, 2, 2 }) end)
before_forward("AvgPool2d", function() return nn.AvgPool2d(2) end,
  function() return f32({ 1, 1, 4, 4 }) end, function() return f32({ 1, 1, 2, 2 }) end)
before_forward("ReLU", nn.ReLU, function() return f32({ 3 }) end, function() return f32({ 3 }) end)
before_forward("Dropout", function() return nn.Dropout(0.5) end,
  function() return f32({ 3 }) end, function() return f32({ 3 }) end)
before_forward("BatchNorm2d", function() return nn.BatchNorm2d(1) end,
  function() return f32({ 2, 1, 2, 2 }) end, function() return f32({ 2, 1, 2, 2 }) end)
before_forward("Sequential", function() return nn.Sequential(nn.Linear(5, 3), nn.ReLU()) end,
  function() return f32({ 2, 5 }) end, function() return f32({ 2, 3 }) end)
case("m:backward", "Linear: a gradient of another shape", function()
  local m = nn.Linear(5, 3)
  m:forward(f32({ 2, 5 }))
  m:backward(f32({ 2, 5 }), f32({ 2, 4 }))
end, "lunet.nn.Linear:backward", "expected the output gradient [N, 3], got [2, 4]")
case("m:backward", "Conv2d: a gradient of another shape", function()
  local m = nn.Conv2d(1, 2, 3)
  m:forward(f32({ 2, 1, 8, 8 }))
  m:backward(f32({ 2, 1, 8, 8 }), f32({ 2, 2, 5, 5 }))
end, "lunet.nn.Conv2d:backward", "the output gradient must be [2, 2, 6, 6], got [2, 2, 5, 5]")
case("m:backward", "MaxPool2d: another input than forward's", function()
  local m = nn.MaxPool2d(2)
  m:forward(f32({ 2, 1, 8, 8 }))
  m:backward(f32({ 2, 1, 6, 6 }), f32({ 2, 1, 4, 4 }))
end, "lunet.nn.MaxPool2d:backward", "the output must be [2, 1, 3, 3], got [2, 1, 4, 4]")
case("m:backward", "ReLU: no gradient", function()
  local m = nn.ReLU()
  m:forward(f32({ 3 }))
  m:backward(f32({ 3 }))
end, "lunet.nn.ReLU:backward", "got nil")
case("m:backward", "Flatten: a gradient of another size", function()
  local m = nn.Flatten()
  m:forward(f32({ 2, 1, 8, 8 }))
  m:backward(f32({ 2, 1, 8, 8 }), f32({ 2, 63 }))
end, "lunet.nn.Flatten:backward", "the output gradient [2, 63] does not match the input [2, 1, 8, 8]")
case("m:backward", "Dropout: a gradient of another shape", function()
  local m = nn.Dropout(0.5)
  m:forward(f32({ 2, 5 }))
  m:backward(f32({ 2, 5 }), f32({ 3 }))
end, "lunet.nn.Dropout:backward", "must be [3], got [2, 5]")
case("m:backward", "BatchNorm2d: a gradient of another shape", function()
  local m = nn.BatchNorm2d(1)
  m:forward(f32({ 2, 1, 4, 4 }))
  m:backward(f32({ 2, 1, 4, 4 }), f32({ 2, 1, 4, 3 }))
end, "lunet.nn.BatchNorm2d:backward", "the output gradient must be [2, 1, 4, 4], got [2, 1, 4, 3]")
case("m:backward", "CrossEntropyLoss: a label past the classes", function()
  local m = nn.CrossEntropyLoss()
  m:forward(f32({ 2, 5 }), i32({ 1, 2 }))
  m:backward(f32({ 2, 5 }), i32({ 7, 1 }))
end, "lunet.nn.CrossEntropyLoss:backward", "label 7 at position 1 is outside 1..5")
case("m:backward", "after m:to(), before a new forward", function()
  local m = nn.Dropout(0.5)
  m:forward(f32({ 1, 2 }))
  m:to("cpu")
  m:backward(f32({ 1, 2 }), f32({ 1, 2 }))
end, "lunet.nn.Dropout:backward", "call forward before backward")
harmless("m:backward", "Linear and CrossEntropyLoss need no forward: backward uses its arguments", function()
  local g = nn.Linear(5, 3):backward(f32({ 2, 5 }), f32({ 2, 3 }))
  local gl = nn.CrossEntropyLoss():backward(f32({ 2, 4 }), i32({ 1, 4 }))
  return g:shape(), gl:shape()
end, function(a, b)
  assert(a[1] == 2 and a[2] == 5 and b[1] == 2 and b[2] == 4)
end)
case("m:backward", "Linear: called with a dot", function()
  local m = nn.Linear(5, 3)
  m:forward(f32({ 2, 5 }))
  m.backward(f32({ 2, 5 }), f32({ 2, 3 }))
end, "lunet.nn.Linear:backward", "expected a module as self, got a tensor")
case("m:backward", "Conv2d: an input of another shape than the gradient's", function()
  local m = nn.Conv2d(1, 2, 3)
  m:backward(f32({ 1, 1, 5, 5 }), f32({ 1, 2, 2, 2 }))
end, "lunet.nn.Conv2d:backward", "the output gradient must be [1, 2, 3, 3], got [1, 2, 2, 2]")
case("m:backward", "CrossEntropyLoss: no labels", function()
  nn.CrossEntropyLoss():backward(f32({ 2, 4 }))
end, "lunet.nn.CrossEntropyLoss:backward", "got nil")
case("m:parameters", "called with a dot", function() local m = nn.Linear(2, 2); m.parameters() end,
  "lunet.nn.Module:parameters", "expected a module as self, got nil")
case("m:parameters", "Sequential: called on a number", function() nn.Sequential.parameters(1) end,
  "lunet.nn.Sequential:parameters", "got number")
case("m:zero_grad", "called with a dot", function() local m = nn.Linear(2, 2); m.zero_grad() end,
  "lunet.nn.Module:zero_grad", "expected a module as self")
case("m:zero_grad", "a freed gradient", function()
  local m = nn.Linear(2, 2)
  m.grad_weight:free()
  m:zero_grad()
end, "lunet.nn.Linear:zero_grad", "gradient 1 was freed")
case("m:train", "called on a string", function() nn.Module.train("yes") end,
  "lunet.nn.Module:train", "got string")
case("m:eval", "called with a dot", function() local m = nn.Dropout(0.5); m.eval() end,
  "lunet.nn.Module:eval", "expected a module as self")
case("m:to", "an unknown device", function() nn.Linear(2, 2):to("tpu") end,
  "lunet.nn.Linear:to", "'tpu' is neither a device")
case("m:to", "a number", function() nn.Linear(2, 2):to(0) end,
  "lunet.nn.Linear:to", "expected a device, a device name or a dtype name, got number")
case("m:to", "Sequential: an unknown dtype, and nothing moved", function()
  local s = nn.Sequential(nn.Linear(2, 2))
  local ok, err = pcall(s.to, s, "float64")
  assert(s[1].weight:dtype() == "float32")
  error(err, 0)
end, "lunet.nn.Sequential:to", "float64")
case("m:to", "Sequential: called with a dot", function() local s = nn.Sequential(); s.to("cpu") end,
  "lunet.nn.Sequential:to", "expected a module as self, got string")
case("m:state_dict", "called with a dot", function() local m = nn.Linear(2, 2); m.state_dict() end,
  "lunet.nn.Module:state_dict", "expected a module as self")
case("m:state_dict", "a freed parameter", function()
  local m = nn.Linear(2, 2)
  m.bias:free()
  m:state_dict()
end, "lunet.nn.Linear:state_dict", "'bias' was freed")
case("m:load_state_dict", "a number", function() nn.Linear(2, 3):load_state_dict(5) end,
  "lunet.nn.Linear:load_state_dict", "expected a table of name -> tensor", "got number")
case("m:load_state_dict", "a missing name", function()
  nn.Linear(2, 3):load_state_dict({ weight = lunet.ones({ 3, 2 }) })
end, "lunet.nn.Linear:load_state_dict", "the names do not match this model: missing bias")
case("m:load_state_dict", "an unexpected name", function()
  nn.Linear(2, 3):load_state_dict({ weight = lunet.ones({ 3, 2 }), bias = lunet.ones({ 3 }), extra = 1 })
end, "lunet.nn.Linear:load_state_dict", "unexpected extra")
case("m:load_state_dict", "another shape", function()
  nn.Linear(2, 3):load_state_dict({ weight = lunet.ones({ 3, 3 }), bias = lunet.ones({ 3 }) })
end, "lunet.nn.Linear:load_state_dict", "'weight' has shape [3, 3], this model needs [3, 2]")
case("m:load_state_dict", "another dtype", function()
  nn.Linear(2, 3):load_state_dict({ weight = lunet.ones({ 3, 2 }, { dtype = "int32" }), bias = lunet.ones({ 3 }) })
end, "lunet.nn.Linear:load_state_dict", "'weight' is int32, this model needs float32")
case("m:load_state_dict", "a freed tensor", function(c)
  nn.Linear(2, 3):load_state_dict({ weight = c.freed(), bias = lunet.ones({ 3 }) })
end, "lunet.nn.Linear:load_state_dict", "'weight' is a freed tensor")
case("m:load_state_dict", "a number for a tensor", function()
  nn.Linear(2, 3):load_state_dict({ weight = 1, bias = lunet.ones({ 3 }) })
end, "lunet.nn.Linear:load_state_dict", "'weight' must be a tensor, got number")
case("m:load_state_dict", "a module instead of its state", function()
  nn.Linear(2, 3):load_state_dict(nn.Linear(2, 3))
end, "lunet.nn.Linear:load_state_dict", "got nn.Linear")

-- --- optimizers ----------------------------------------------------------------------------------

case("optim.SGD", "no model", function() optim.SGD() end,
  "lunet.optim.SGD", "argument #1: expected a model", "got nil")
case("optim.SGD", "a tensor for a model", function() optim.SGD(lunet.ones({ 2 }), { lr = 0.1 }) end,
  "lunet.optim.SGD", "expected a model", "got a tensor")
case("optim.SGD", "no learning rate", function() optim.SGD(model()) end,
  "lunet.optim.SGD", "the learning rate lr is required")
case("optim.SGD", "a negative learning rate", function() optim.SGD(model(), { lr = -0.1 }) end,
  "lunet.optim.SGD", "lr must be positive, got -0.1")
case("optim.SGD", "a NaN learning rate", function() optim.SGD(model(), { lr = 0 / 0 }) end,
  "lunet.optim.SGD", "lr must be a finite number")
case("optim.SGD", "a string learning rate", function() optim.SGD(model(), { lr = "0.1" }) end,
  "lunet.optim.SGD", "lr must be a finite number, got string")
case("optim.SGD", "negative momentum", function() optim.SGD(model(), { lr = 0.1, momentum = -0.9 }) end,
  "lunet.optim.SGD", "momentum must be >= 0, got -0.9")
case("optim.SGD", "nesterov without momentum", function() optim.SGD(model(), { lr = 0.1, nesterov = true }) end,
  "lunet.optim.SGD", "nesterov momentum needs momentum > 0")
case("optim.SGD", "negative weight decay", function() optim.SGD(model(), { lr = 0.1, weight_decay = -1 }) end,
  "lunet.optim.SGD", "weight_decay must be >= 0")
case("optim.SGD", "a misspelt option", function() optim.SGD(model(), { lr = 0.1, momentun = 0.9 }) end,
  "lunet.optim.SGD", "unknown option 'momentun'")
case("optim.SGD", "options that are not a table", function() optim.SGD(model(), 0.1) end,
  "lunet.optim.SGD", "options must be a table, got number")
case("optim.Adam", "a number for a model", function() optim.Adam(5) end,
  "lunet.optim.Adam", "expected a model", "got number")
case("optim.Adam", "beta1 = 1", function() optim.Adam(model(), { betas = { 1, 0.999 } }) end,
  "lunet.optim.Adam", "betas[1] must be in [0, 1), got 1")
case("optim.Adam", "one beta", function() optim.Adam(model(), { betas = { 0.9 } }) end,
  "lunet.optim.Adam", "betas must be a pair {beta1, beta2}")
case("optim.Adam", "betas as a string", function() optim.Adam(model(), { betas = "0.9,0.999" }) end,
  "lunet.optim.Adam", "betas must be a pair", "got string")
case("optim.Adam", "eps 0", function() optim.Adam(model(), { eps = 0 }) end,
  "lunet.optim.Adam", "eps must be positive, got 0")
case("optim.Adam", "an infinite learning rate", function() optim.Adam(model(), { lr = math.huge }) end,
  "lunet.optim.Adam", "lr must be a finite number, got inf")
case("opt:step", "called with a dot", function() local o = optim.Adam(model()); o.step() end,
  "lunet.optim.Optimizer:step", "expected an optimizer as self, got nil", "with a colon")
case("opt:step", "a freed parameter", function()
  local m = nn.Linear(2, 3)
  local o = optim.Adam(m)
  m.weight:free()
  o:step()
end, "lunet.optim.Adam:step", "parameter 1 of the model was freed")
case("opt:step", "a freed gradient", function()
  local m = nn.Linear(2, 3)
  local o = optim.SGD(m, { lr = 0.1 })
  m.grad_weight:free()
  o:step()
end, "lunet.optim.SGD:step", "the tensor was freed")
case("opt:step", "a gradient of another shape", function()
  local m = nn.Linear(2, 3)
  local o = optim.SGD(m, { lr = 0.1 })
  m.grad_weight = lunet.zeros({ 4, 2 })
  o:step()
end, "lunet.optim.SGD:step", "the gradient must be [3, 2], got [4, 2]")
case("opt:step", "a gradient on another device", function()
  local m = nn.Linear(2, 3)
  local o = optim.Adam(m)
  m.grad_weight = on_ref(lunet.zeros({ 3, 2 }))
  o:step()
end, "lunet.optim.Adam:step", "different devices")
case("opt:step", "a parameter that changed shape", function()
  local m = nn.Linear(2, 3)
  local o = optim.Adam(m)
  o:step()
  m.weight, m.grad_weight = lunet.zeros({ 4, 2 }), lunet.zeros({ 4, 2 })
  o:step()
end, "lunet.optim.Adam:step", "parameter 1 changed shape from [3, 2] to [4, 2]")
case("opt:zero_grad", "called with a dot", function() local o = optim.SGD(model(), { lr = 1 }); o.zero_grad() end,
  "lunet.optim.Optimizer:zero_grad", "expected an optimizer as self")
case("optim.AdamW", "a misspelt option", function() optim.AdamW(model(), { weight_deacy = 0.1 }) end,
  "lunet.optim.AdamW", "unknown option 'weight_deacy'")
case("optim.AdamW", "a negative weight decay", function() optim.AdamW(model(), { weight_decay = -0.1 }) end,
  "lunet.optim.AdamW", "weight_decay must be >= 0")
case("optim.clip_grad_norm", "no model", function() optim.clip_grad_norm(lunet.zeros({ 2 }), 1) end,
  "lunet.optim.clip_grad_norm", "expected a model", "got a tensor")
case("optim.clip_grad_norm", "a negative max_norm", function() optim.clip_grad_norm(model(), -1) end,
  "lunet.optim.clip_grad_norm", "max_norm must be >= 0, got -1")
case("optim.clip_grad_norm", "a max_norm that is not a number", function() optim.clip_grad_norm(model(), "1") end,
  "lunet.optim.clip_grad_norm", "max_norm must be a finite number, got string")
case("m:flat_parameters", "called with a dot", function() local m = model(); m.flat_parameters() end,
  "lunet.nn.Module:flat_parameters", "expected a module as self")
case("m:flat_parameters", "parameters on two devices", function()
  local m = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
  m[2]:to("ref")
  m:flat_parameters()
end, "lunet.nn.Sequential:flat_parameters", "the parameters must share one device and dtype")
case("m:flat_parameters", "a freed parameter", function()
  local m = model()
  m[1].bias:free()
  m:flat_parameters()
end, "lunet.nn.Sequential:flat_parameters", "parameter 2 or its gradient was freed")
case("crit:forward_tensor", "a label out of range", function()
  nn.CrossEntropyLoss():forward_tensor(lunet.zeros({ 2, 3 }), lunet.tensor({ 1, 0 }, { dtype = "int32" }))
end, "lunet.nn.CrossEntropyLoss:forward_tensor", "label 0 at position 2 is outside 1..3")
case("crit:forward_tensor", "a running sum of the wrong size", function()
  nn.CrossEntropyLoss():forward_tensor(lunet.zeros({ 2, 3 }), lunet.tensor({ 1, 2 }, { dtype = "int32" }),
    lunet.zeros({ 1 }))
end, "lunet.nn.CrossEntropyLoss:forward_tensor", "must be a contiguous float32 tensor of 2 elements")
case("crit:forward_tensor", "logits on another device than the running sum", function()
  nn.CrossEntropyLoss():forward_tensor(lunet.zeros({ 2, 3 }), lunet.tensor({ 1, 2 }, { dtype = "int32" }),
    on_ref(lunet.zeros({ 2 })))
end, "lunet.nn.CrossEntropyLoss:forward_tensor", "on cpu")

-- --- data -----------------------------------------------------------------------------------------

local DataLoader = function(...) return lunet.data.DataLoader(...) end
case("data.DataLoader", "no dataset", function() DataLoader() end,
  "lunet.data.DataLoader", "argument #1: expected a dataset", "got nil")
case("data.DataLoader", "a dataset without tensors", function() DataLoader({ images = {}, labels = {} }) end,
  "lunet.data.DataLoader", "must have tensors `images`")
case("data.DataLoader", "batch size 0", function() DataLoader(dataset(), { batch_size = 0 }) end,
  "lunet.data.DataLoader", "batch_size must be at least 1, got 0")
case("data.DataLoader", "a fractional batch size", function() DataLoader(dataset(), { batch_size = 2.5 }) end,
  "lunet.data.DataLoader", "batch_size must be an integer, got 2.5")
case("data.DataLoader", "an unknown device", function() DataLoader(dataset(), { device = "tpu" }) end,
  "lunet.data.DataLoader", "device: unknown device 'tpu'")
case("data.DataLoader", "a misspelt option", function() DataLoader(dataset(), { batchsize = 8 }) end,
  "lunet.data.DataLoader", "unknown option batchsize")
case("data.DataLoader", "an unknown mode", function() DataLoader(dataset(), { mode = "fast" }) end,
  "lunet.data.DataLoader", "mode must be \"seed\" or \"resident\", got fast")
case("data.DataLoader", "a negative seed", function() DataLoader(dataset(), { seed = -1, shuffle = true }) end,
  "lunet.data.DataLoader", "seed must be at least 0, got -1")
case("data.DataLoader", "drop_last leaving no batch", function()
  DataLoader(dataset(10), { batch_size = 11, drop_last = true })
end, "lunet.data.DataLoader", "leaves no batch of a dataset of 10")
case("data.DataLoader", "fewer labels than images", function()
  DataLoader({ images = lunet.zeros({ 10, 1, 4, 4 }), labels = lunet.ones({ 9 }, { dtype = "int32" }) })
end, "lunet.data.DataLoader", "the dataset has 10 images but 9 labels")
case("data.DataLoader", "float labels", function()
  DataLoader({ images = lunet.zeros({ 10, 1, 4, 4 }), labels = lunet.ones({ 10 }) })
end, "lunet.data.DataLoader", "labels must be an int32 tensor {N}, got float32 [10]")
case("data.DataLoader", "an empty dataset", function()
  DataLoader({ images = lunet.zeros({ 0, 1, 4, 4 }), labels = lunet.zeros({ 0 }, { dtype = "int32" }) })
end, "lunet.data.DataLoader", "the dataset is empty")
case("data.DataLoader", "freed images", function(c)
  DataLoader({ images = c.freed(), labels = lunet.ones({ 2 }, { dtype = "int32" }) })
end, "lunet.data.DataLoader", "the dataset's images tensor was freed")
case("data.DataLoader", "a dataset on another device", function()
  DataLoader({ images = on_ref(lunet.zeros({ 2, 1, 4, 4 })), labels = lunet.ones({ 2 }, { dtype = "int32" }) })
end, "lunet.data.DataLoader", "the dataset must be on the CPU")
case("loader:iter", "epoch 0", function() DataLoader(dataset()):iter(0) end,
  "lunet.data.DataLoader", "epoch must be at least 1, got 0")
case("loader:iter", "called with a dot", function() local l = DataLoader(dataset()); l.iter() end,
  "lunet.data.DataLoader", "iter: expected a loader as self")
case("loader:iter", "a freed loader", function()
  local l = DataLoader(dataset())
  l:free()
  for _ in l:iter() do end
end, "lunet.data.DataLoader", "iter: the loader was freed")
case("loader:iter", "the dataset's images freed after the loader was made", function()
  local d = dataset()
  local l = DataLoader(d)
  d.images:free()
  for _ in l:iter() do end
end, "lunet.data.DataLoader", "iter: the dataset's images tensor was freed")
harmless("#loader", "the batch count, the last batch partial", function()
  return #DataLoader(dataset(10), { batch_size = 4 })
end, function(n) assert(n == 3) end)

-- --- datasets: missing and damaged files ----------------------------------------------------------

--- Fashion-MNIST's test split from the two files given (their bytes).
local function fashion_test(c, images, labels)
  c.write("t10k-images-idx3-ubyte", images)
  c.write("t10k-labels-idx1-ubyte", labels)
  lunet.datasets.fashion_mnist({ split = "test", root = c.dir })
end

case("datasets.fashion_mnist", "options that are not a table", function() lunet.datasets.fashion_mnist("train") end,
  "lunet.datasets.fashion_mnist", "expected an options table {split=, root=}, got string")
case("datasets.fashion_mnist", "an unknown split", function() lunet.datasets.fashion_mnist({ split = "val" }) end,
  "lunet.datasets.fashion_mnist", "split must be \"train\" or \"test\", got val")
case("datasets.fashion_mnist", "a root that is not a string", function() lunet.datasets.fashion_mnist({ root = 1 }) end,
  "lunet.datasets.fashion_mnist", "root must be a directory name")
case("datasets.fashion_mnist", "missing files", function(c) lunet.datasets.fashion_mnist({ root = c.dir }) end,
  "lunet.datasets.fashion_mnist", "train-images-idx3-ubyte", "were not found in", "apt-get install dataset-fashion-mnist")
case("datasets.fashion_mnist", "the labels file missing", function(c)
  c.write("t10k-images-idx3-ubyte", c.idx({ 2, 28, 28 }))
  lunet.datasets.fashion_mnist({ split = "test", root = c.dir })
end, "lunet.datasets.fashion_mnist", "t10k-labels-idx1-ubyte(.gz) is missing")
case("datasets.fashion_mnist", "a truncated image file", function(c)
  fashion_test(c, c.idx({ 2, 28, 28 }):sub(1, -10), c.idx({ 2 }))
end, "lunet.datasets.fashion_mnist", "t10k-images-idx3-ubyte: the header says [2, 28, 28]", "truncated",
  "is damaged or is not Fashion-MNIST")
case("datasets.fashion_mnist", "not an IDX file", function(c)
  fashion_test(c, "P5\n28 28\n255\n" .. ("\0"):rep(784), c.idx({ 1 }))
end, "lunet.datasets.fashion_mnist", "not an IDX file")
case("datasets.fashion_mnist", "images of another size", function(c)
  fashion_test(c, c.idx({ 2, 32, 32 }), c.idx({ 2 }))
end, "lunet.datasets.fashion_mnist", "expected 28x28 images, got [2, 32, 32]")
case("datasets.fashion_mnist", "a label outside 0..9", function(c)
  fashion_test(c, c.idx({ 2, 28, 28 }), c.idx({ 2 }, "\1\12"))
end, "lunet.datasets.fashion_mnist", "label 12 is outside 0..9")
case("datasets.fashion_mnist", "fewer labels than images", function(c)
  fashion_test(c, c.idx({ 3, 28, 28 }), c.idx({ 2 }))
end, "lunet.datasets.fashion_mnist", "holds 2 labels but", "holds 3 images")
case("datasets.fashion_mnist", "a damaged gzip file", function(c)
  local path = c.write("t10k-images-idx3-ubyte", c.idx({ 4, 28, 28 }))
  assert(os.execute("gzip -n '" .. path .. "'"))
  local f = assert(io.open(path .. ".gz", "rb"))
  local gz = f:read("a")
  f:close()
  c.write("t10k-images-idx3-ubyte.gz", gz:sub(1, #gz // 2))
  c.write("t10k-labels-idx1-ubyte", c.idx({ 4 }))
  lunet.datasets.fashion_mnist({ split = "test", root = c.dir })
end, "lunet.datasets.fashion_mnist", "t10k-images-idx3-ubyte.gz", "truncated or damaged")
case("datasets.cifar10", "an unknown split", function() lunet.datasets.cifar10({ split = 1 }) end,
  "lunet.datasets.cifar10", "split must be \"train\" or \"test\", got 1")
case("datasets.cifar10", "missing files", function(c) lunet.datasets.cifar10({ root = c.dir }) end,
  "lunet.datasets.cifar10", "data_batch_1.bin was not found in", "cifar-10-binary.tar.gz")
case("datasets.cifar10", "a partial record", function(c)
  c.write("test_batch.bin", "\3" .. ("\0"):rep(3072) .. "\1" .. ("\0"):rep(100))
  lunet.datasets.cifar10({ split = "test", root = c.dir })
end, "lunet.datasets.cifar10", "test_batch.bin", "is not a whole number of 3073-byte CIFAR-10 records")
case("datasets.cifar10", "a label outside 0..9", function(c)
  c.write("test_batch.bin", "\3" .. ("\0"):rep(3072) .. "\10" .. ("\0"):rep(3072))
  lunet.datasets.cifar10({ split = "test", root = c.dir })
end, "lunet.datasets.cifar10", "record 2 has label 10, outside 0..9")
case("datasets.cifar10", "a missing training batch", function(c)
  c.write("data_batch_1.bin", "\3" .. ("\0"):rep(3072))
  lunet.datasets.cifar10({ root = c.dir })
end, "lunet.datasets.cifar10", "data_batch_2.bin is missing")

-- --- serialization ------------------------------------------------------------------------------

case("lunet.save", "nothing to save", function() lunet.save() end,
  "lunet.save", "argument #1: expected the value to save, got nil")
case("lunet.save", "no path", function() lunet.save({}) end,
  "lunet.save", "argument #2: expected a file path, got nil")
case("lunet.save", "a number for a path", function() lunet.save({}, 1) end,
  "lunet.save", "expected a file path, got number")
case("lunet.save", "a folder that does not exist", function(c) lunet.save({}, c.dir .. "/no/such/dir/x.lunet") end,
  "lunet.save", "cannot create a file beside", "No such file or directory")
case("lunet.save", "a path inside a regular file", function(c)
  local file = c.write("plain", "x")
  lunet.save({}, file .. "/x.lunet")
end, "lunet.save", "cannot create a file beside", "Not a directory")
case("lunet.save", "a path that is a directory", function(c) lunet.save({}, c.dir) end,
  "lunet.save", "cannot write", "it is a directory")
case("lunet.save", "a function deep inside", function(c)
  lunet.save({ a = { b = { lunet.ones({ 2 }), print } } }, c.dir .. "/x.lunet")
end, "lunet.save", "value[\"a\"][\"b\"][2]: cannot save a function")
case("lunet.save", "a freed tensor", function(c) lunet.save({ w = c.freed() }, c.dir .. "/x.lunet") end,
  "lunet.save", "value[\"w\"]: cannot save a freed tensor")
case("lunet.save", "a cycle", function(c)
  local t = {}
  t.self = t
  lunet.save(t, c.dir .. "/x.lunet")
end, "lunet.save", "the table contains itself (a cycle)")
case("lunet.save", "a fractional key", function(c) lunet.save({ [0.5] = 1 }, c.dir .. "/x.lunet") end,
  "lunet.save", "table keys must be strings or integers")
case("lunet.save", "an object with a metatable", function(c)
  lunet.save({ opt = optim.SGD(model(), { lr = 1 }) }, c.dir .. "/x.lunet")
end, "lunet.save", "cannot save a table with a metatable")
case("lunet.save", "tables nested 100 deep", function(c)
  local t = {}
  for _ = 1, 100 do t = { t } end
  lunet.save(t, c.dir .. "/x.lunet")
end, "lunet.save", "tables nest deeper than 64 levels")
case("lunet.load", "no path", function() lunet.load() end,
  "lunet.load", "argument #1: expected a file path, got nil")
case("lunet.load", "a missing file", function(c) lunet.load(c.dir .. "/none.lunet") end,
  "lunet.load", "cannot open", "No such file or directory")
case("lunet.load", "a directory", function(c) lunet.load(c.dir) end,
  "lunet.load", "is not a regular file")
case("lunet.load", "an empty file", function(c) lunet.load(c.write("empty.lunet", "")) end,
  "lunet.load", "not a lunet checkpoint")
case("lunet.load", "a text file", function(c) lunet.load(c.write("notes.txt", "weight,bias\n1,2\n")) end,
  "lunet.load", "not a lunet checkpoint")
case("lunet.load", "a truncated checkpoint", function(c)
  local path = c.dir .. "/x.lunet"
  lunet.save({ w = lunet.ones({ 100 }) }, path)
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  lunet.load(c.write("x.lunet", bytes:sub(1, -11)))
end, "lunet.load", "truncated checkpoint")
case("lunet.load", "a flipped byte", function(c)
  local path = c.dir .. "/x.lunet"
  lunet.save({ w = lunet.ones({ 100 }) }, path)
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  lunet.load(c.write("x.lunet", bytes:sub(1, 60) .. "X" .. bytes:sub(62)))
end, "lunet.load", "does not match its checksum")
case("lunet.load", "a newer format version", function(c)
  local path = c.dir .. "/x.lunet"
  lunet.save({ 1 }, path)
  local f = assert(io.open(path, "rb"))
  local bytes = f:read("a")
  f:close()
  lunet.load(c.write("x.lunet", bytes:sub(1, 8) .. string.pack("<I4", 9) .. bytes:sub(13)))
end, "lunet.load", "checkpoint format version 9 is not supported")

-- --- exported helpers beyond API.md -------------------------------------------------------------

case("lunet.read_idx", "no path", function() lunet.read_idx() end,
  "lunet.read_idx", "argument #1: expected a file path, got no value")
case("lunet.read_idx", "a missing file", function(c) lunet.read_idx(c.dir .. "/x") end,
  "lunet.read_idx", "cannot open")
case("lunet.read_cifar", "a table for a path", function() lunet.read_cifar({}) end,
  "lunet.read_cifar", "argument #1: expected a file path, got table")
case("lunet.randperm", "a negative count", function() lunet.randperm(-1) end,
  "lunet.randperm", "n = -1 is out of range")
case("lunet.randperm", "options that are not a table", function() lunet.randperm(3, 7) end,
  "lunet.randperm", "argument #2: expected an options table")
case("lunet.gather_rows", "a row index past the source", function()
  lunet.gather_rows(lunet.zeros({ 2, 3 }), lunet.zeros({ 5, 3 }), i32({ 7, 1 }))
end, "lunet.gather_rows", "row index 8 is outside 1..5")
case("models.fashion_alexnet", "zero classes", function() lunet.models.fashion_alexnet(0) end,
  "lunet.models.fashion_alexnet", "num_classes must be a positive integer, got 0")

-- the data and training additions of issue 17 (spec/bad_input_cases_data.lua)
for _, c in ipairs(require("bad_input_cases_data")) do cases[#cases + 1] = c end

return cases
