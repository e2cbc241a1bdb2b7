--- The hostile-input cases of spec/45-hostile_input_spec.lua (issue 19, the
-- second bad-input battery): what a hostile user or a damaged disk does --
-- files that are not regular files, files much larger than their header
-- says, cyclic and shared structures, integers that overflow, empty
-- tensors, freed internals, userdata in disguise. Each case is
--   { class = "<the class>", what = "<the mistake>", run = function(c) ... end,
--     expect = { "<fragment>", ... } }       -- must raise, message holds each
-- or `ok = true` with an optional `check` of the results: must not raise.
-- `c` (the runner's context): c.dir a fresh directory, c.write(name, bytes)
-- writes c.dir/name and returns its path, c.fifo(name) makes a named pipe,
-- c.sparse(name, bytes) a file of that many zero bytes that takes no disk,
-- c.rss_mib() the process's peak resident memory so far.
-- They run in one child process under a timeout: a case that blocks (a
-- named pipe opened for reading) or crashes fails with its name.
local lunet = require("lunet")
local core = require("lunet.core")
local nn = lunet.nn
local optim = lunet.optim

local cases = {}
local function case(class, what, run, ...)
  cases[#cases + 1] = { class = class, what = what, run = run, expect = { ... } }
end
local function harmless(class, what, run, check)
  cases[#cases + 1] = { class = class, what = what, run = run, ok = true, check = check }
end

local GiB = 1024 * 1024 * 1024

-- --- 2. reading: the header first, then only what it promises --------------------
-- First in the list: each compares the process's peak memory before and after,
-- which only means something while the peak is still low.

local function fast_and_small(c, fn)
  local rss, t0 = c.rss_mib(), os.clock()
  local ok, err = pcall(fn)
  local grew, took = c.rss_mib() - rss, os.clock() - t0
  assert(grew < 64, ("the peak memory grew by %d MiB"):format(grew))
  assert(took < 2, ("it took %.1f s of CPU"):format(took))
  if not ok then error(err, 0) end
end

case("header first", "lunet.load of 1 GiB of zeros", function(c)
  local path = c.sparse("zeros.lunet", GiB)
  fast_and_small(c, function() lunet.load(path) end)
end, "lunet.load", "not a lunet checkpoint")
case("header first", "lunet.load of a header promising 1 GiB that is not there", function(c)
  local head = "\x89LUNET\r\n" .. string.pack("<I4I4I8", 1, 0, GiB)
  local path = c.write("promise.lunet", head .. "\6\0\0\0\0")
  fast_and_small(c, function() lunet.load(path) end)
end, "lunet.load", "truncated checkpoint: the header announces 1073741824 bytes")
case("header first", "lunet.read_idx of 1 GiB of zeros", function(c)
  local path = c.sparse("zeros-idx", GiB)
  fast_and_small(c, function() lunet.read_idx(path) end)
end, "lunet.read_idx", "zeros-idx", "IDX data type 0x00")
case("header first", "lunet.read_idx of a header promising 4 GiB, the file holding 20 bytes", function(c)
  local path = c.write("big-idx", string.char(0, 0, 8, 2) .. string.pack(">I4I4", 65536, 65536) .. ("x"):rep(20))
  fast_and_small(c, function() lunet.read_idx(path) end)
end, "lunet.read_idx", "the header says [65536, 65536] = 4294967296 data bytes", "truncated")
case("header first", "lunet.read_idx of a small gzip file promising more than it can hold", function(c)
  local raw = c.write("small-idx", string.char(0, 0, 8, 1) .. string.pack(">I4", 4000000000) .. "abc")
  assert(os.execute("gzip -n " .. raw))
  fast_and_small(c, function() lunet.read_idx(raw .. ".gz") end)
end, "lunet.read_idx", "small-idx.gz", "more than this", "gzip file can hold")
case("header first", "lunet.read_cifar of 1 GiB of zeros (not whole records)", function(c)
  local path = c.sparse("zeros.bin", GiB)
  fast_and_small(c, function() lunet.read_cifar(path) end)
end, "lunet.read_cifar", "is not a whole number of 3073-byte CIFAR-10 records")
case("header first", "lunet.read_cifar of 300 MB whose first label is bad", function(c)
  local path = c.sparse("bad-first.bin", 3073 * 100000)
  local f = assert(io.open(path, "r+b"))
  f:write(string.char(200))
  f:close()
  fast_and_small(c, function() lunet.read_cifar(path) end)
end, "lunet.read_cifar", "record 1 has label 200")
case("header first", "lunet.read_cifar of more than its 1 GiB limit", function(c)
  local path = c.sparse("huge.bin", 3073 * 400000)
  fast_and_small(c, function() lunet.read_cifar(path) end)
end, "lunet.read_cifar", "more than the largest CIFAR-10 file lunet reads (1073741824 bytes)")

-- --- 1. files that are not regular files ------------------------------------------

case("not a regular file", "lunet.load of a named pipe", function(c) lunet.load(c.fifo("p")) end,
  "lunet.load", "is not a regular file: it is a named pipe (FIFO)")
case("not a regular file", "lunet.read_idx of a named pipe", function(c) lunet.read_idx(c.fifo("p")) end,
  "lunet.read_idx", "is not a regular file: it is a named pipe (FIFO)")
case("not a regular file", "lunet.read_cifar of a named pipe", function(c) lunet.read_cifar(c.fifo("p")) end,
  "lunet.read_cifar", "is not a regular file: it is a named pipe (FIFO)")
case("not a regular file", "lunet.load of /dev/zero", function() lunet.load("/dev/zero") end,
  "lunet.load", "'/dev/zero' is not a regular file: it is a character device")
case("not a regular file", "lunet.read_idx of /dev/zero", function() lunet.read_idx("/dev/zero") end,
  "lunet.read_idx", "'/dev/zero' is not a regular file: it is a character device")
case("not a regular file", "lunet.read_cifar of /dev/urandom", function() lunet.read_cifar("/dev/urandom") end,
  "lunet.read_cifar", "is not a regular file: it is a character device")
case("not a regular file", "lunet.read_idx of a directory", function(c) lunet.read_idx(c.dir) end,
  "lunet.read_idx", "is not a regular file: it is a directory")
case("not a regular file", "fashion_mnist with its image file a named pipe", function(c)
  c.fifo("t10k-images-idx3-ubyte")
  c.write("t10k-labels-idx1-ubyte", string.char(0, 0, 8, 1) .. string.pack(">I4", 1) .. "\1")
  lunet.datasets.fashion_mnist({ root = c.dir, split = "test" })
end, "lunet.datasets.fashion_mnist", "t10k-images-idx3-ubyte' is not a regular file: it is a named pipe")
case("not a regular file", "fashion_mnist with its label file a named pipe", function(c)
  c.write("t10k-images-idx3-ubyte", string.char(0, 0, 8, 3) .. string.pack(">I4I4I4", 1, 28, 28) .. ("\0"):rep(784))
  c.fifo("t10k-labels-idx1-ubyte")
  lunet.datasets.fashion_mnist({ root = c.dir, split = "test" })
end, "lunet.datasets.fashion_mnist", "t10k-labels-idx1-ubyte' is not a regular file: it is a named pipe")
case("not a regular file", "cifar10 with its test batch a named pipe", function(c)
  c.fifo("test_batch.bin")
  lunet.datasets.cifar10({ root = c.dir, split = "test" })
end, "lunet.datasets.cifar10", "test_batch.bin' is not a regular file: it is a named pipe")
case("not a regular file", "a dataset root that is a file", function(c)
  lunet.datasets.fashion_mnist({ root = c.write("plain", "x") })
end, "lunet.datasets.fashion_mnist", "is not a directory (it is a file)")
case("not a regular file", "a dataset root that is a named pipe", function(c)
  lunet.datasets.cifar10({ root = c.fifo("p") })
end, "lunet.datasets.cifar10", "is not a directory (it is a fifo)")
case("not a regular file", "image_folder with a named pipe for an image", function(c)
  assert(os.execute("mkdir " .. c.dir .. "/cat"))
  c.fifo("cat/a.png")
  lunet.datasets.image_folder({ root = c.dir, size = { 8, 8 } })
end, "lunet.datasets.image_folder", "cat/a.png: not a regular file")
case("not a regular file", "image_folder with a named pipe for the root", function(c)
  lunet.datasets.image_folder({ root = c.fifo("p"), size = { 8, 8 } })
end, "lunet.datasets.image_folder", "Not a directory")
case("not a regular file", "lunet.save over /dev/null", function() lunet.save({ 1 }, "/dev/null") end,
  "lunet.save", "cannot write '/dev/null': it is a character device", "replaces only regular files")
harmless("not a regular file", "/dev/null is still a device after that", function()
  pcall(lunet.save, { 1 }, "/dev/null")
  return core.file_kind("/dev/null")
end, function(kind) assert(kind == "device", kind) end)
case("not a regular file", "lunet.save over a named pipe", function(c) lunet.save({ 1 }, c.fifo("p")) end,
  "lunet.save", "it is a named pipe (FIFO)")
case("not a regular file", "lunet.save through a link to /dev/null", function(c)
  assert(os.execute("ln -s /dev/null " .. c.dir .. "/link"))
  lunet.save({ 1 }, c.dir .. "/link")
end, "lunet.save", "it is a character device")
case("not a regular file", "lunet.save of a module over a named pipe", function(c)
  lunet.save(nn.Linear(2, 2), c.fifo("p"))
end, "lunet.save", "it is a named pipe (FIFO)")
case("not a regular file", "the report writer over a named pipe", function(c)
  require("lunet.report").write_file(c.fifo("results.json"), "{}")
end, "lunet.report", "it is a fifo, not a regular file")

-- --- 3. cyclic and shared structures ----------------------------------------------

local function self_containing()
  local m = nn.Sequential(nn.ReLU(), nn.Dropout(0.1))
  m:add(m)
  return m
end
local x4 = function() return lunet.rand({ 2, 4 }) end
for _, method in ipairs({ "forward", "backward", "parameters", "zero_grad", "to", "train",
  "state_dict", "load_state_dict" }) do
  case("cycles", "a Sequential containing itself: " .. method, function()
    local m = self_containing()
    if method == "forward" then m:forward(x4())
    elseif method == "backward" then m.output = x4(); m:backward(x4(), x4())
    elseif method == "to" then m:to("ref")
    elseif method == "load_state_dict" then m:load_state_dict({})
    elseif method == "parameters" then m:parameters()
    elseif method == "zero_grad" then m:zero_grad()
    elseif method == "train" then m:train()
    else m:state_dict() end
  end, "lunet.nn.Sequential:" .. method, "the module contains itself: model[3] is model (a cycle)")
end
case("cycles", "a Sequential containing itself: tostring", function() return tostring(self_containing()) end,
  "tostring(lunet.nn.Sequential)", "model[3] is model (a cycle)")
case("cycles", "a Sequential containing itself: lunet.save", function(c)
  lunet.save(self_containing(), c.dir .. "/m.lunet")
end, "lunet.save", "the module contains itself: model[3] is model (a cycle)")
case("cycles", "a cycle two levels down", function()
  local inner = nn.Sequential(nn.ReLU())
  local outer = nn.Sequential(nn.Dropout(0.5), inner)
  inner:add(outer)
  outer:forward(x4())
end, "lunet.nn.Sequential:forward", "model[2][2] is model (a cycle)")
case("cycles", "a plain table containing itself", function(c)
  local t = { a = { b = {} } }
  t.a.b.c = t.a
  lunet.save(t, c.dir .. "/t.lunet")
end, "lunet.save", "value[\"a\"][\"b\"][\"c\"]: the table contains itself (a cycle): it is value[\"a\"]")
harmless("cycles", "a table shared 2^30 ways is saved once, quickly", function(c)
  local t = { leaf = lunet.ones({ 4 }) }
  for _ = 1, 30 do t = { a = t, b = t } end
  local t0 = os.clock()
  lunet.save(t, c.dir .. "/shared.lunet")
  local took = os.clock() - t0
  local size = #assert(io.open(c.dir .. "/shared.lunet", "rb")):read("a")
  return took, size, lunet.load(c.dir .. "/shared.lunet")
end, function(took, size, back)
  assert(took < 1, took)
  assert(size < 4096, size)
  assert(back.a == back.b and back.a.a == back.b.b, "the loaded tables are not shared")
  local leaf = back
  for _ = 1, 30 do leaf = leaf.a end
  assert(leaf.leaf:sum() == 4)
end)
harmless("cycles", "a table without sharing is written in format version 1", function(c)
  lunet.save({ a = {}, b = {} }, c.dir .. "/v1.lunet")
  return assert(io.open(c.dir .. "/v1.lunet", "rb")):read("a")
end, function(bytes) assert(string.unpack("<I4", bytes, 9) == 1) end)
case("cycles", "a reference to a table that is not complete (a forged cycle)", function(c)
  -- version 2: a table of one entry whose value refers to table 0, itself
  local body = "\6" .. string.pack("<I4", 1) .. "\3" .. string.pack("<i8", 1) .. "\8" .. string.pack("<I4", 0)
  local crc = 0 -- computed below with the zlib CRC-32
  local function crc32(s)
    local c32 = 0xffffffff
    for i = 1, #s do
      c32 = c32 ~ s:byte(i)
      for _ = 1, 8 do c32 = (c32 >> 1) ~ (0xedb88320 & -(c32 & 1)) end
    end
    return c32 ~ 0xffffffff
  end
  crc = crc32(body)
  lunet.load(c.write("forged.lunet", "\x89LUNET\r\n" .. string.pack("<I4I4I8", 2, crc, #body) .. body))
end, "lunet.load", "names table 0, which contains it (a cycle)")

-- --- 4. sizes that overflow --------------------------------------------------------

local function dataset(n)
  return { images = lunet.zeros({ n or 10, 1, 4, 4 }, { dtype = "uint8" }),
    labels = lunet.ones({ n or 10 }, { dtype = "int32" }) }
end
harmless("overflow", "DataLoader batch_size = math.maxinteger is one batch of everything", function()
  local loader = lunet.data.DataLoader(dataset(10), { batch_size = math.maxinteger })
  local images = 0
  for x in loader:iter() do images = images + x:size(1) end
  return #loader, images
end, function(batches, images) assert(batches == 1 and images == 10, batches .. " " .. images) end)
case("overflow", "DataLoader batch_size = math.huge", function()
  lunet.data.DataLoader(dataset(), { batch_size = math.huge })
end, "lunet.data.DataLoader", "batch_size must be an integer from 1 to 2^63 - 1, got inf")
case("overflow", "DataLoader batch_size = 1e300", function()
  lunet.data.DataLoader(dataset(), { batch_size = 1e300 })
end, "lunet.data.DataLoader", "batch_size must be an integer from 1 to 2^63 - 1, got 1e+300")
case("overflow", "DataLoader seed = 2^63", function()
  lunet.data.DataLoader(dataset(), { shuffle = true, seed = 2 ^ 63 })
end, "lunet.data.DataLoader", "seed must be an integer from 0 to 2^63 - 1, got 9.2233720368548e+18")
case("overflow", "DataLoader seed = NaN", function()
  lunet.data.DataLoader(dataset(), { shuffle = true, seed = 0 / 0 })
end, "lunet.data.DataLoader", "seed must be an integer, got")
case("overflow", "DataLoader seed = -math.huge", function()
  lunet.data.DataLoader(dataset(), { seed = -math.huge })
end, "lunet.data.DataLoader", "seed must be an integer from 0 to 2^63 - 1, got -inf")
case("overflow", "loader:iter(epoch = 2^70)", function()
  lunet.data.DataLoader(dataset()):iter(2 ^ 70)
end, "lunet.data.DataLoader", "epoch must be an integer from 1 to 2^63 - 1")
case("overflow", "device cuda:4294967296 (wraps to cuda:0 in %d)", function() lunet.device("cuda:4294967296") end,
  "lunet.device", "device 'cuda:4294967296': the index is out of range (at most cuda:999999)")
case("overflow", "device cuda:-1", function() lunet.device("cuda:-1") end,
  "lunet.device", "unknown device 'cuda:-1'")
case("overflow", "device cuda:1x", function() lunet.device("cuda:1x") end,
  "lunet.device", "unknown device 'cuda:1x'")
case("overflow", "set_num_threads(5000)", function() lunet.set_num_threads(5000) end,
  "lunet.set_num_threads", "n = 5000 is out of range (1..1024)")
case("overflow", "set_num_threads(2^63)", function() lunet.set_num_threads(2 ^ 63) end,
  "lunet.set_num_threads")
case("overflow", "the session's accuracy over no image", function()
  local loader = lunet.data.DataLoader(dataset(4), { batch_size = 2 })
  require("lunet.session").accuracy(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), loader, 0)
end, "the accuracy pass saw no image")
case("overflow", "the session's inference over no image", function()
  local loader = lunet.data.DataLoader(dataset(4), { batch_size = 2 })
  require("lunet.session").inference_pass(nn.Sequential(nn.Flatten(), nn.Linear(16, 10)), loader, 0)
end, "the inference pass saw no image")

-- --- 5. zero-size dimensions -------------------------------------------------------

local function same_shape(t, shape)
  assert(table.concat(t:shape(), ",") == table.concat(shape, ","),
    "[" .. table.concat(t:shape(), ",") .. "] instead of [" .. table.concat(shape, ",") .. "]")
end
harmless("empty tensors", "zeros({2, 0, 3}) is contiguous", function()
  return lunet.zeros({ 2, 0, 3 }):is_contiguous(), lunet.zeros({ 0 }):is_contiguous(),
    lunet.zeros({ 3, 4 }):narrow(2, 1, 0):is_contiguous()
end, function(a, b, c) assert(a and b and c) end)
local empty_layers = {
  { "ReLU", function() return nn.ReLU() end, { 2, 0, 3 } },
  { "Dropout (training)", function() return nn.Dropout(0.5) end, { 2, 0, 3 } },
  { "Dropout (eval)", function() return nn.Dropout(0.5):eval() end, { 0, 5 } },
  { "MaxPool2d", function() return nn.MaxPool2d(2) end, { 0, 3, 4, 4 } },
  { "AvgPool2d", function() return nn.AvgPool2d(2) end, { 0, 3, 4, 4 } },
  { "BatchNorm2d (eval)", function() return nn.BatchNorm2d(3):eval() end, { 0, 3, 4, 4 } },
  { "Linear", function() return nn.Linear(3, 2) end, { 0, 3 } },
  { "Conv2d", function() return nn.Conv2d(3, 2, 3) end, { 0, 3, 5, 5 } },
  { "Flatten", function() return nn.Flatten() end, { 0, 3, 2, 2 } },
  { "Sequential", function() return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()) end,
    { 0, 1, 6, 6 } },
}
for _, l in ipairs(empty_layers) do
  harmless("empty tensors", l[1] .. " forward and backward of an empty batch", function()
    local m, x = l[2](), lunet.zeros(l[3])
    local y = m:forward(x)
    local g = m:backward(x, lunet.zeros(y:shape()))
    return y, g, x
  end, function(y, g, x)
    assert(y:numel() == 0, "a non-empty output")
    same_shape(g, x:shape())
  end)
end
harmless("empty tensors", "tensor ops on empty tensors", function()
  local a = lunet.zeros({ 2, 0, 3 })
  local out = { a + a, a * 2, a:clone(), a:to("ref"), a:reshape({ 0, 6 }), a:narrow(3, 2, 1),
    lunet.empty({ 2, 0, 3 }):copy(a), a:to("float16") }
  return out, a:sum()
end, function(out, s)
  for _, t in ipairs(out) do assert(t:numel() == 0) end
  assert(s == 0, tostring(s))
end)
harmless("empty tensors", "a DataLoader over a strided view of the images", function()
  local images = lunet.rand({ 6, 1, 6, 6 }):mul(255):to("uint8")
  local view = images:narrow(3, 2, 4):narrow(4, 2, 4)
  local loader = lunet.data.DataLoader({ images = view, labels = lunet.ones({ 6 }, { dtype = "int32" }) },
    { batch_size = 4 })
  local first, sizes = nil, {}
  for x in loader:iter() do
    sizes[#sizes + 1] = x:size(1)
    first = first or x:clone()
  end
  return sizes, first, view
end, function(sizes, first, view)
  assert(#sizes == 2 and sizes[1] == 4 and sizes[2] == 2)
  -- the batch holds the view's pixels, / 255
  local want = view:narrow(1, 1, 4):to("float32") / 255
  local d = (first - want):totable()
  local function maxabs(t) local m = 0 for _, v in ipairs(t) do m = math.max(m, type(v) == "table" and maxabs(v) or math.abs(v)) end return m end
  assert(maxabs(d) < 1e-6)
end)

-- --- 6. errors name what the user called -----------------------------------------------

local function trained_step(opt_fn)
  local m = nn.Sequential(nn.Linear(2, 2))
  local opt = opt_fn(m)
  local x = lunet.rand({ 3, 2 })
  m:forward(x)
  m:backward(x, lunet.ones({ 3, 2 }))
  opt:step()
  return m, opt
end
case("error names", "Adam's freed state, then opt:step()", function()
  local _, opt = trained_step(function(m) return optim.Adam(m) end)
  opt.state[1].exp_avg:free()
  opt:step()
end, "lunet.optim.Adam:step", "the optimizer's state 'exp_avg' of parameter 1 was freed")
case("error names", "SGD's freed momentum buffer, then opt:step()", function()
  local _, opt = trained_step(function(m) return optim.SGD(m, { lr = 0.1, momentum = 0.9 }) end)
  opt.state[2].momentum_buffer:free()
  opt:step()
end, "lunet.optim.SGD:step", "'momentum_buffer' of parameter 2 was freed")
case("error names", "a batch freed inside loader:iter()", function()
  local loader = lunet.data.DataLoader(dataset(10), { batch_size = 4 })
  for x in loader:iter() do x:free() end
end, "lunet.data.DataLoader: iter: a batch tensor of this loader was freed")
case("error names", "a label batch freed inside loader:iter()", function()
  local loader = lunet.data.DataLoader(dataset(10), { batch_size = 4 })
  for _, y in loader:iter() do y:free() end
end, "lunet.data.DataLoader: iter: a batch tensor of this loader was freed")

case("error names", "a freed weight, then m:to()", function()
  local m = nn.Linear(2, 2)
  m.weight:free()
  m:to("ref")
end, "lunet.nn.Linear:to", "'weight' of nn.Linear was freed")
case("error names", "a freed buffer deep in a Sequential, then model:to()", function()
  local m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm2d(2))
  m[2].running_var:free()
  m:to("ref")
end, "lunet.nn.Sequential:to", "'running_var' of nn.BatchNorm2d was freed")

-- --- 7. userdata in disguise -------------------------------------------------------------

local function disguised(meta_of)
  local u = io.tmpfile()
  debug.setmetatable(u, debug.getmetatable(meta_of))
  return u
end
case("userdata", "a file handle with the tensor metatable: a method", function()
  local u = disguised(lunet.ones({ 1 }))
  return u:sum()
end, "lunet.Tensor:sum", "expected a lunet tensor as self, got userdata")
case("userdata", "a file handle with the tensor metatable: an argument", function()
  return lunet.ones({ 1 }) + disguised(lunet.ones({ 1 }))
end, "lunet.Tensor:add (+)", "expected tensors or numbers")
case("userdata", "a file handle with the tensor metatable: tostring", function()
  return tostring(disguised(lunet.ones({ 1 })))
end, "tostring(tensor)", "expected a tensor, got userdata")
case("userdata", "a file handle with the tensor metatable: free", function()
  disguised(lunet.ones({ 1 })):free()
end, "lunet.Tensor:free", "expected a tensor as self")
case("userdata", "a file handle with the tensor metatable: lunet.save", function(c)
  lunet.save({ w = disguised(lunet.ones({ 1 })) }, c.dir .. "/u.lunet")
end, "lunet.save", "value[\"w\"]: cannot save a userdata that is not a lunet tensor")
harmless("userdata", "a file handle with the tensor metatable: is_tensor and collection", function()
  local u = disguised(lunet.ones({ 1 }))
  local is = lunet.is_tensor(u)
  u = nil -- luacheck: ignore
  collectgarbage()
  collectgarbage()
  return is
end, function(is) assert(is == false) end)
case("userdata", "a file handle with the tensor metatable: lunet.dist.allreduce", function()
  lunet.dist.allreduce(disguised(lunet.ones({ 1 })))
end, "lunet.dist.allreduce", "expected a lunet tensor")
harmless("empty tensors", "lunet.dist.allreduce of an empty tensor", function()
  return lunet.dist.allreduce(lunet.zeros({ 2, 0, 3 }))
end, function(t) assert(t:numel() == 0) end)
case("userdata", "a file handle with the device metatable as a device", function()
  lunet.zeros({ 2 }, { device = disguised(lunet.device("cpu")) })
end, "lunet.zeros", "expected a device or a device name")
case("userdata", "a file handle with the device metatable: a field", function()
  return disguised(lunet.device("cpu")).name
end, "lunet.Device", "expected a device as self")

return cases
