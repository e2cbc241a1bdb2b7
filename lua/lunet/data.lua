--- Batches for training and inference: lunet.data.DataLoader.
--
--   local loader = lunet.data.DataLoader(dataset, {batch_size=64, shuffle=true,
--     seed=1, drop_last=false, device="cuda", mode="resident"})
--   for x, y in loader:iter() do ... end     -- one epoch
--
-- x is float32 {B, C, H, W} in [0, 1] (pixel / 255, computed in float32 as
-- PyTorch's ToTensor does), y is int32 {B} with the dataset's 1-based labels,
-- both on the loader's device.
--
-- The batch tensors are the loader's own and are reused: each batch
-- overwrites the previous one. That keeps a training step free of
-- allocations; `x:clone()` what must outlive the step.
--
-- Two data modes (DESIGN.md, "Honest timing"):
--   "seed"      each batch is gathered and scaled on the host, then copied to
--               the device, as the original notebook's DataLoader does.
--   "resident"  the dataset is uploaded once (uint8 images, int32 labels) and
--               each batch is gathered and scaled on the device itself. The
--               upload happens when the loader is made; its duration is
--               `loader.upload_seconds` (device synchronised).
-- On the CPU both modes do the same work.
--
-- Data-parallel training (lunet.dist): with {rank=r, world=W} (r 0-based, as
-- lunet.dist.init() gives it) batch b of the epoch is this process's share
-- of global batch b, the batch_size*W images that one process with batch
-- size batch_size*W would take: rank r takes the r-th slice of batch_size.
-- Every rank runs #loader steps, the same number. A last global batch that is
-- short is split evenly (ceil(len/W) images each), padded with the first
-- images of the epoch's order where it does not divide, as PyTorch's
-- DistributedSampler pads, so no rank runs out of data first. Shuffling
-- draws the same order on every rank from seed and epoch (the seed defaults
-- to 0 when world > 1).
local core = require("lunet.core")

local data = {}

local DataLoader = { __name = "lunet.DataLoader" }
DataLoader.__index = DataLoader

local function fail(msg, ...)
  error("lunet.data.DataLoader: " .. msg:format(...), 0)
end

local function check_dataset(dataset)
  if type(dataset) ~= "table" then
    fail("argument #1: expected a dataset (a table with images and labels), got %s", type(dataset))
  end
  local images, labels = dataset.images, dataset.labels
  if not core.is_tensor(images) or not core.is_tensor(labels) then
    fail("the dataset must have tensors `images` {N, ...} and `labels` {N}")
  end
  if not pcall(images.dim, images) or not pcall(labels.dim, labels) then
    fail("the dataset's %s tensor was freed", pcall(images.dim, images) and "labels" or "images")
  end
  if images:dim() < 2 then
    fail("dataset images must be {N, ...} with at least 2 dimensions, got [%s]",
      table.concat(images:shape(), ", "))
  end
  if labels:dim() ~= 1 or labels:dtype() ~= "int32" then
    fail("dataset labels must be an int32 tensor {N}, got %s [%s]", labels:dtype(),
      table.concat(labels:shape(), ", "))
  end
  if labels:size(1) ~= images:size(1) then
    fail("the dataset has %d images but %d labels", images:size(1), labels:size(1))
  end
  if tostring(images:device()) ~= "cpu" or tostring(labels:device()) ~= "cpu" then
    fail("the dataset must be on the CPU (the loader moves batches to its device)")
  end
  if images:size(1) == 0 then fail("the dataset is empty") end
end

local function check_integer(name, v, lo)
  if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
    fail("%s must be an integer, got %s", name, tostring(v))
  end
  v = math.tointeger(v)
  if not v or v < lo then fail("%s must be at least %d, got %s", name, lo, tostring(v)) end
  return v
end

--- 0-based int32 positions 0..n-1, the order of an unshuffled epoch.
local function identity_order(n)
  local values = {}
  for i = 1, n do values[i] = i - 1 end
  return core.tensor(values, { dtype = "int32" })
end

--- lunet.data.DataLoader(dataset, opts): see the top of this file.
function data.DataLoader(dataset, opts)
  check_dataset(dataset)
  opts = opts or {}
  if type(opts) ~= "table" then fail("argument #2: expected an options table, got %s", type(opts)) end
  local known = { batch_size = true, shuffle = true, seed = true, drop_last = true, device = true,
    mode = true, rank = true, world = true }
  for k in pairs(opts) do
    if not known[k] then fail("unknown option %s (expected batch_size, shuffle, seed, drop_last, device, mode, rank, world)", tostring(k)) end
  end
  local world = check_integer("world", opts.world or 1, 1)
  local rank = check_integer("rank", opts.rank or 0, 0)
  if rank >= world then fail("rank must be in 0..%d (world %d), got %d", world - 1, world, rank) end
  local batch_size = check_integer("batch_size", opts.batch_size or 64, 1)
  local seed = opts.seed ~= nil and check_integer("seed", opts.seed, 0) or nil
  if world > 1 and seed == nil then seed = 0 end -- every rank must draw the same order
  local mode = opts.mode or "seed"
  if mode ~= "seed" and mode ~= "resident" then
    fail("mode must be \"seed\" or \"resident\", got %s", tostring(mode))
  end
  local ok, device = pcall(core.device, opts.device or "cpu")
  if not ok then fail("device: %s", (tostring(device):gsub("^.-lunet%.device: ", ""))) end

  local n = dataset.images:size(1)
  local row_shape = dataset.images:shape()
  table.remove(row_shape, 1)
  local drop_last = opts.drop_last and true or false
  local global_batch = batch_size * world
  local num_batches = drop_last and n // global_batch or (n + global_batch - 1) // global_batch
  if num_batches == 0 then
    fail("drop_last with batch_size %d%s leaves no batch of a dataset of %d", batch_size,
      world > 1 and (" x world %d"):format(world) or "", n)
  end
  -- this rank's slice of each global batch: start (1-based in the order) and length
  local slices, full = {}, 0
  for b = 1, num_batches do
    local first = (b - 1) * global_batch
    local len = math.min(global_batch, n - first)
    local share = (len + world - 1) // world
    slices[b] = { start = first + rank * share + 1, len = share }
    full = math.max(full, share)
  end
  local last = slices[num_batches]
  local padded = math.max(n, last.start + last.len - 1) -- order entries incl. the padding

  local self = setmetatable({
    dataset = dataset, n = n, batch_size = batch_size, shuffle = opts.shuffle and true or false,
    seed = seed, drop_last = drop_last, device = device, mode = mode,
    num_batches = num_batches, epoch = 0, upload_seconds = 0, rank = rank, world = world,
    global_batch_size = global_batch, padded = padded,
  }, DataLoader)

  local on_host = tostring(device) == "cpu"
  local batch_shape = { full, table.unpack(row_shape) }
  -- where batches are gathered: the host in seed mode, the device in resident mode
  local gather_on = (mode == "resident") and device or core.device("cpu")
  self.order_host = identity_order(n)
  if padded > n then self.order_host = self:pad_order(self.order_host) end
  if mode == "resident" and not on_host then
    device:synchronize()
    local t0 = core.clock()
    self.images = dataset.images:to(device)
    self.labels = dataset.labels:to(device)
    self.order = self.order_host:to(device)
    device:synchronize()
    self.upload_seconds = core.clock() - t0
  else
    self.images, self.labels, self.order = dataset.images, dataset.labels, self.order_host
  end
  self.gather_x = core.empty(batch_shape, { dtype = "float32", device = gather_on })
  self.gather_y = core.empty({ full }, { dtype = "int32", device = gather_on })
  if gather_on == device then
    self.x, self.y = self.gather_x, self.gather_y
  else
    self.x = core.empty(batch_shape, { dtype = "float32", device = device })
    self.y = core.empty({ full }, { dtype = "int32", device = device })
  end

  -- every view a batch needs, made once: a step allocates nothing
  self.views = {}
  for b = 1, num_batches do
    local start, len = slices[b].start, slices[b].len
    local v = { len = len, index = self.order:narrow(1, start, len) }
    if len == full then
      v.gather_x, v.gather_y, v.x, v.y = self.gather_x, self.gather_y, self.x, self.y
    else
      v.gather_x, v.gather_y = self.gather_x:narrow(1, 1, len), self.gather_y:narrow(1, 1, len)
      v.x, v.y = self.x:narrow(1, 1, len), self.y:narrow(1, 1, len)
    end
    self.views[b] = v
  end
  return self
end

DataLoader.__len = function(self) return self.num_batches end

--- `order` (n positions) followed by its first entries again up to
-- self.padded entries (wrapping as often as needed): the padding of a
-- short last global batch. Frees `order`.
function DataLoader:pad_order(order)
  local out = core.empty({ self.padded }, { dtype = "int32" })
  local filled = 0
  while filled < self.padded do
    local len = math.min(self.n, self.padded - filled)
    out:narrow(1, filled + 1, len):copy(order:narrow(1, 1, len))
    filled = filled + len
  end
  order:free()
  return out
end

--- The order of epoch `epoch` (0-based int32 positions, on the host): a
-- permutation from lunet.randperm when shuffling. With a seed, epoch e
-- draws from the stream (seed, offset e): every epoch differs, and the same
-- seed repeats the same sequence of epochs. Without a seed it draws from
-- the global generator (lunet.manual_seed).
function DataLoader:epoch_order(epoch)
  if not self.shuffle then return self.order_host end
  local perm
  if self.seed then
    perm = core.randperm(self.n, { seed = self.seed, offset = epoch })
  else
    perm = core.randperm(self.n)
  end
  local order = perm - 1
  perm:free()
  if self.padded > self.n then order = self:pad_order(order) end
  return order
end

--- An iterator over one epoch: `for x, y in loader:iter() do`. Each call
-- starts the next epoch (loader.epoch counts them from 1); `loader:iter(e)`
-- replays epoch e's order.
function DataLoader:iter(epoch)
  if getmetatable(self) ~= DataLoader then
    fail("iter: expected a loader as self, got %s (call it as loader:iter(), with a colon)", type(self))
  end
  if self.freed then fail("iter: the loader was freed") end
  for _, name in ipairs({ "images", "labels" }) do
    local t = self.dataset[name]
    if not pcall(t.dim, t) then fail("iter: the dataset's %s tensor was freed", name) end
  end
  if epoch ~= nil then
    epoch = check_integer("epoch", epoch, 1)
  else
    epoch = self.epoch + 1
  end
  self.epoch = epoch
  if self.shuffle then
    local order = self:epoch_order(epoch)
    self.order:copy(order) -- host to device in resident mode: 4 bytes an image, once an epoch
    order:free()
  end
  local b = 0
  return function()
    b = b + 1
    local v = self.views[b]
    if not v then return nil end
    core.gather_rows(v.gather_x, self.images, v.index, 255)
    core.gather_rows(v.gather_y, self.labels, v.index, 1)
    if v.x ~= v.gather_x then
      v.x:copy(v.gather_x)
      v.y:copy(v.gather_y)
    end
    return v.x, v.y, b
  end
end

--- Releases the loader's device memory now (the dataset itself is kept).
function DataLoader:free()
  for _, name in ipairs({ "gather_x", "gather_y", "x", "y" }) do
    if self[name] then self[name]:free() end
  end
  if self.images ~= self.dataset.images then
    self.images:free()
    self.labels:free()
  end
  if self.order ~= self.order_host then self.order:free() end
  self.views = {}
  self.freed = true
end

data.DataLoader_class = DataLoader

return data
