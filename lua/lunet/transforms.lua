--- lunet.transforms: data augmentation for batches of images (API.md "Data").
--
--   local T = lunet.transforms
--   local loader = lunet.data.DataLoader(train, {batch_size = 512, shuffle = true, seed = 1,
--     transform = {T.RandomCrop(32, {padding = 4}), T.RandomHorizontalFlip(0.5),
--                  T.Normalize({0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616})}})
--
-- Each transform works on a whole float32 batch {N, C, H, W} at once, in C
-- (csrc/augment.c; on the cpu device the images are shared out over its
-- thread pool). Random choices are keyed, not drawn from a stream: image i
-- of a batch gets the Philox numbers of (seed, counter + i), where the loader
-- derives the seed from its own seed and the transform's position in the
-- list, and the counter from the epoch and the image's position in the epoch.
-- So one seed gives the same augmented batches on every device, with any
-- thread count and any batch size.
--
-- A transform can also be called on a tensor, `T.RandomHorizontalFlip(1)(x)`,
-- which returns a new tensor (drawing from a counter the transform keeps,
-- seeded from lunet.manual_seed's generator at the first call).
local core = require("lunet.core")

local transforms = {}

local Transform = {}
Transform.__index = Transform

local function fail(fname, fmt, ...)
  error(fname .. ": " .. fmt:format(...), 3)
end

local function check_int(fname, name, v, lo)
  local i = math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v))
  if not i then fail(fname, "%s must be an integer, got %s", name, tostring(v)) end
  if i < lo then fail(fname, "%s must be at least %d, got %d", name, lo, i) end
  return i
end

local function new(cls, name, fields)
  fields.name = name
  fields.fname = "lunet.transforms." .. name
  fields.own_counter = 0
  return setmetatable(fields, cls)
end

local function class(name)
  local cls = setmetatable({}, { __index = Transform })
  cls.__index = cls
  cls.__name = "lunet.transforms." .. name
  cls.__call = function(self, x) return self:call(x) end
  cls.__tostring = function(self) return self:repr() end
  transforms[name .. "_class"] = cls
  return cls
end

function transforms.is_transform(v)
  return type(v) == "table" and getmetatable(v) ~= nil and type(v.apply) == "function"
    and type(v.output_shape) == "function"
end

local function shape_string(shape) return "[" .. table.concat(shape, ", ") .. "]" end

--- The batch {N, C, H, W} shape this transform makes of `shape` (or an error).
function Transform:output_shape(shape)
  return shape
end

--- Whether apply needs a separate output buffer (else it works in place).
function Transform:out_of_place() return false end

--- Direct call: a new tensor, on the input's device.
function Transform:call(x)
  if not core.is_tensor(x) then fail(self.fname, "expected a tensor, got %s", type(x)) end
  local single = x:dim() == 3
  local batch = single and x:reshape({ 1, table.unpack(x:shape()) }) or x
  if batch:dim() ~= 4 then
    fail(self.fname, "expected an image [C, H, W] or a batch [N, C, H, W], got %s", shape_string(x:shape()))
  end
  local dev = x:device()
  local host = batch:to("cpu"):to("float32")
  if host == batch then host = batch:clone() end
  local out = self:output_shape(host:shape())
  local buffer = self:out_of_place() and core.empty(out) or nil
  -- the key of direct calls: drawn from the global generator on the first
  -- call, so lunet.manual_seed repeats them (a loader's key comes from the loader)
  self.own_seed = self.own_seed or math.floor(core.rand({ 1 }):get(1) * 2 ^ 31)
  local y = self:apply(host, self.own_seed, self.own_counter, buffer)
  self.own_counter = self.own_counter + host:size(1)
  if single then y = y:reshape({ out[2], out[3], out[4] }) end
  return y:to(dev)
end

-- --- RandomCrop -------------------------------------------------------------------

local RandomCrop = class("RandomCrop")

--- RandomCrop(size, {padding=0}): a random size x size (or {h, w}) window of
-- each image padded with `padding` zeros on every side (torchvision's
-- RandomCrop with fill 0).
function transforms.RandomCrop(size, opts)
  local fname = "lunet.transforms.RandomCrop"
  local h, w
  if type(size) == "table" then
    if #size ~= 2 then fail(fname, "size must be a number or a pair {h, w}, got a table of %d", #size) end
    h, w = check_int(fname, "size[1]", size[1], 1), check_int(fname, "size[2]", size[2], 1)
  else
    h = check_int(fname, "size", size, 1)
    w = h
  end
  opts = opts or {}
  if type(opts) ~= "table" then fail(fname, "options must be a table {padding=}, got %s", type(opts)) end
  for k in pairs(opts) do
    if k ~= "padding" then fail(fname, "unknown option '%s' (known: padding)", tostring(k)) end
  end
  local padding = check_int(fname, "padding", opts.padding or 0, 0)
  return new(RandomCrop, "RandomCrop", { size = { h, w }, padding = padding })
end

function RandomCrop:output_shape(shape)
  if #shape ~= 4 then fail(self.fname, "expected a batch [N, C, H, W], got %s", shape_string(shape)) end
  local h, w = self.size[1], self.size[2]
  if shape[3] + 2 * self.padding < h or shape[4] + 2 * self.padding < w then
    fail(self.fname, "a %dx%d crop does not fit in images %s padded by %d", h, w,
      shape_string(shape), self.padding)
  end
  return { shape[1], shape[2], h, w }
end

function RandomCrop:out_of_place() return true end

function RandomCrop:apply(x, seed, counter, out)
  return core.augment_random_crop(out, x, self.padding, seed, counter)
end

function RandomCrop:repr()
  return ("RandomCrop(%dx%d, padding %d)"):format(self.size[1], self.size[2], self.padding)
end

-- --- RandomHorizontalFlip -------------------------------------------------------------

local RandomHorizontalFlip = class("RandomHorizontalFlip")

--- RandomHorizontalFlip(p=0.5): mirrors each image left-right with probability p.
function transforms.RandomHorizontalFlip(p)
  local fname = "lunet.transforms.RandomHorizontalFlip"
  if p == nil then p = 0.5 end
  if type(p) ~= "number" or not (p >= 0 and p <= 1) then
    fail(fname, "p must be a probability in [0, 1], got %s", tostring(p))
  end
  return new(RandomHorizontalFlip, "RandomHorizontalFlip", { p = p })
end

function RandomHorizontalFlip:apply(x, seed, counter)
  return core.augment_random_hflip(x, self.p, seed, counter)
end

function RandomHorizontalFlip:repr()
  return ("RandomHorizontalFlip(p = %g)"):format(self.p)
end

-- --- Normalize -------------------------------------------------------------------------

local Normalize = class("Normalize")

--- Normalize(mean, std): x[:, c] = (x[:, c] - mean[c]) / std[c]; mean and std
-- are arrays of one number per channel (or numbers, for every channel).
function transforms.Normalize(mean, std)
  local fname = "lunet.transforms.Normalize"
  local function list(name, v)
    if type(v) == "number" then return { v } end
    if type(v) ~= "table" or #v == 0 then
      fail(fname, "%s must be a number or an array of numbers, got %s", name, type(v))
    end
    for i = 1, #v do
      if type(v[i]) ~= "number" or v[i] ~= v[i] then fail(fname, "%s[%d] must be a number", name, i) end
    end
    return { table.unpack(v) }
  end
  mean, std = list("mean", mean), list("std", std)
  if #mean ~= #std then fail(fname, "mean has %d numbers but std has %d", #mean, #std) end
  for i = 1, #std do
    if not (std[i] > 0) then fail(fname, "std[%d] must be positive, got %s", i, tostring(std[i])) end
  end
  return new(Normalize, "Normalize", { mean = mean, std = std })
end

--- One mean/std per channel: a single number applies to every channel.
function Normalize:per_channel(c)
  if #self.mean == c then return self.mean, self.std end
  if #self.mean == 1 then
    local m, s = {}, {}
    for i = 1, c do m[i], s[i] = self.mean[1], self.std[1] end
    return m, s
  end
  fail(self.fname, "%d means and stds for images with %d channels", #self.mean, c)
end

function Normalize:output_shape(shape)
  if #shape ~= 4 then fail(self.fname, "expected a batch [N, C, H, W], got %s", shape_string(shape)) end
  self:per_channel(shape[2])
  return shape
end

function Normalize:apply(x)
  local m, s = self:per_channel(x:size(2))
  return core.augment_normalize(x, m, s)
end

function Normalize:repr()
  local function fmt(v)
    local parts = {}
    for i, x in ipairs(v) do parts[i] = ("%g"):format(x) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return ("Normalize(mean %s, std %s)"):format(fmt(self.mean), fmt(self.std))
end

-- --- a list of transforms ---------------------------------------------------------------

--- The key (seed) of the k-th transform of a loader with seed `seed`: the
-- transforms of one list draw independent numbers.
function transforms.key(seed, k)
  return (seed * 0x9E3779B1 + k * 0x85EBCA77) & 0x7fffffffffffffff
end

--- A pipeline: `transform` (a transform, a list of them, or a function
-- fn(x, y, batch) -> x[, y]) checked and prepared for batches of
-- `batch_shape`. Returns a table with `output_shape` and `run(x, y, seed,
-- counter, batch, buffers)`; nil for no transform.
function transforms.pipeline(transform, batch_shape, fname)
  if transform == nil then return nil end
  if type(transform) == "function" then
    return { fn = transform, output_shape = nil, describe = "a function" }
  end
  local list = transforms.is_transform(transform) and { transform } or transform
  if type(list) ~= "table" or getmetatable(list) ~= nil then
    error(("%s: transform must be a function, a transform or a list of lunet.transforms, got %s")
      :format(fname, type(transform)), 0)
  end
  local shape, names = { table.unpack(batch_shape) }, {}
  if #shape ~= 4 then
    error(("%s: transforms need images {C, H, W}: the dataset's batches are %s")
      :format(fname, shape_string(shape)), 0)
  end
  local shapes = {}
  for k, t in ipairs(list) do
    if not transforms.is_transform(t) then
      error(("%s: transform %d is %s, not a lunet.transforms object"):format(fname, k, type(t)), 0)
    end
    local ok, out = pcall(t.output_shape, t, shape)
    if not ok then
      error(("%s: transform %d: %s"):format(fname, k, (tostring(out):gsub("^.-(lunet%.transforms%.)", "%1"))), 0)
    end
    shapes[k] = out
    shape = out
    names[k] = tostring(t)
  end
  return { list = list, shapes = shapes, output_shape = shape, describe = table.concat(names, ", ") }
end

return transforms
