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
--
-- `transform=` (lunet.transforms, a list of them, or a function fn(x, y,
-- batch) -> x[, y]) augments each batch after it is gathered. The transforms
-- run in C on host memory: on the cpu device in place of the batch, on a GPU
-- on the host before the copy (the seed path; also in resident mode while
-- CUDA's augmentation kernels are off, as they are by default until they have
-- run on a GPU: cuda/unverified.c), and `loader.transform_where` says which.
-- With them on, resident mode augments on the device: the same batches. A
-- function runs last, on the batch on the loader's device.
--
-- A dataset of image files (lunet.datasets.image_folder, not preloaded) has
-- `paths` instead of `images`: each batch is decoded from its files by C
-- worker threads, `prefetch=` batches (default 2) ahead of the one being
-- used, so decoding overlaps the training step. `loader.wait_seconds` adds
-- up the time the loop waited for decoding (a data-bound run shows there).
local core = require("lunet.core")
local transforms = require("lunet.transforms")
local interrupt = require("lunet.interrupt")

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
  if rawget(dataset, "images") == nil and type(dataset.paths) == "table" and type(dataset.decoder) == "function" then
    local labels = dataset.labels
    if not core.is_tensor(labels) or labels:dim() ~= 1 or labels:size(1) ~= #dataset.paths then
      fail("the image files dataset must have int32 `labels` {N}, one per path")
    end
    if #dataset.paths == 0 then fail("the dataset is empty") end
    return
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

--- An integer >= lo (an integral float in the integer range is accepted):
-- checked before any arithmetic, so no size can overflow a count later.
local function check_integer(name, v, lo)
  if type(v) ~= "number" then fail("%s must be an integer, got %s", name, type(v)) end
  local i = math.tointeger(v)
  if not i then
    if v == math.floor(v) then -- inf, or an integral float beyond 2^63
      fail("%s must be an integer from %d to 2^63 - 1, got %s", name, lo, tostring(v))
    end
    fail("%s must be an integer, got %s", name, tostring(v))
  end
  if i < lo then fail("%s must be at least %d, got %d", name, lo, i) end
  return i
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
    mode = true, rank = true, world = true, transform = true, prefetch = true }
  for k in pairs(opts) do
    if not known[k] then fail("unknown option %s (expected batch_size, shuffle, seed, drop_last, device, mode, rank, world, transform, prefetch)", tostring(k)) end
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

  local files = rawget(dataset, "images") == nil -- decoded from image files, batch by batch
  local prefetch = check_integer("prefetch", opts.prefetch == nil and 2 or opts.prefetch, 0)
  -- batches are gathered from rows in memory order: a strided view (a crop,
  -- a slice of the channels) is copied once into contiguous memory
  if not files and not dataset.images:is_contiguous() then
    dataset = setmetatable({ images = dataset.images:clone(), labels = dataset.labels },
      { __index = dataset })
  end
  local n = files and #dataset.paths or dataset.images:size(1)
  local row_shape = files and dataset:image_shape() or dataset.images:shape()
  if not files then table.remove(row_shape, 1) end
  local drop_last = opts.drop_last and true or false
  -- sizes are checked before this arithmetic: a batch larger than the
  -- dataset counts as n + 1 (the same batches, no overflow of batch_size *
  -- world), and the count of batches is n // g plus a remainder, not
  -- (n + g - 1) // g
  local arith_batch = math.min(batch_size, n + 1)
  if world > math.maxinteger // arith_batch then
    fail("batch_size %d x world %d is too large", batch_size, world)
  end
  local global_batch = arith_batch * world
  local num_batches = n // global_batch + ((not drop_last and n % global_batch > 0) and 1 or 0)
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
    global_batch_size = batch_size <= math.maxinteger // world and batch_size * world or global_batch,
    padded = padded, files = files, prefetch = prefetch,
    wait_seconds = 0, bad_images = 0,
  }, DataLoader)

  local on_host = tostring(device) == "cpu"
  local batch_shape = { full, table.unpack(row_shape) }
  local pipeline = transforms.pipeline(opts.transform, batch_shape, "lunet.data.DataLoader")
  self.pipeline = pipeline
  local augment = pipeline and pipeline.list
  -- the key of the random transforms: the loader's seed, else one drawn from
  -- the global generator now (lunet.manual_seed repeats it)
  if augment then self.transform_seed = seed or math.floor(core.rand({ 1 }):get(1) * 2 ^ 31) end
  local host_memory = device.type ~= "cuda"
  -- where batches are gathered: the host in seed mode, the device in resident
  -- mode; the host also for files, and for transforms on a GPU without its
  -- augmentation kernels (off until run on a GPU: cuda/unverified.c)
  local augment_here = host_memory or core.augment_on_device(device)
  local gather_on = (mode == "resident" and not files and not (augment and not augment_here))
    and device or core.device("cpu")
  if augment then
    self.transform_where = (host_memory or gather_on == device) and tostring(gather_on) or
      ("cpu (fallback: %s; batches are augmented on the host, then copied)"):format(
        (mode ~= "resident" or files) and "seed mode and image files gather batches on the host"
        or "CUDA's augmentation kernels are off until run on a GPU (LUNET_CUDA_UNVERIFIED_KERNELS=1)")
  end
  self.order_host = identity_order(n)
  if padded > n then self.order_host = self:pad_order(self.order_host) end
  if files then
    -- decoded batches arrive here (the decoder's threads fill memory of their own)
    self.decoded = core.empty(batch_shape, { dtype = "uint8" })
    self.images, self.labels, self.order = nil, dataset.labels, self.order_host
    self.identity = identity_order(full)
  elseif mode == "resident" and not on_host and gather_on == device then
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
  -- a buffer for each transform that cannot work in place (a crop)
  local final_shape, final_gather = batch_shape, self.gather_x
  self.transform_buffers = {}
  if augment then
    for k, t in ipairs(augment) do
      if t:out_of_place() then
        self.transform_buffers[k] = core.empty(pipeline.shapes[k], { dtype = "float32", device = gather_on })
        final_gather = self.transform_buffers[k]
      end
    end
    final_shape = pipeline.output_shape
  end
  if gather_on == device then
    self.x, self.y = final_gather, self.gather_y
  else
    self.x = core.empty(final_shape, { dtype = "float32", device = device })
    self.y = core.empty({ full }, { dtype = "int32", device = device })
  end

  -- every view a batch needs, made once: a step allocates nothing
  self.views = {}
  for b = 1, num_batches do
    local start, len = slices[b].start, slices[b].len
    local v = { len = len, start = start, index = self.order:narrow(1, start, len) }
    if len == full then
      v.gather_x, v.gather_y, v.x, v.y = self.gather_x, self.gather_y, self.x, self.y
      v.buffers = self.transform_buffers
    else
      v.gather_x, v.gather_y = self.gather_x:narrow(1, 1, len), self.gather_y:narrow(1, 1, len)
      v.x, v.y = self.x:narrow(1, 1, len), self.y:narrow(1, 1, len)
      v.buffers = {}
      for k, buf in pairs(self.transform_buffers) do v.buffers[k] = buf:narrow(1, 1, len) end
    end
    if files then
      v.decoded = len == full and self.decoded or self.decoded:narrow(1, 1, len)
      v.identity = len == full and self.identity or self.identity:narrow(1, 1, len)
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
    local t = self.files and rawget(self.dataset, name) or self.dataset[name]
    if not (t == nil and self.files) and not pcall(t.dim, t) then
      fail("iter: the dataset's %s tensor was freed", name)
    end
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
  if self.files then self:start_decoding() end
  interrupt.pause_point("loader") -- the test hook: the decoding workers are busy now
  return function()
    b = b + 1
    local v = self.views[b]
    if not v then
      if self.files then self:stop_decoding() end
      return nil
    end
    -- a failure names the call the user made, and the likely cause
    local ok, err
    if self.files then
      local decoded = self:decoded_batch(b)
      ok, err = pcall(core.gather_rows, v.gather_x, decoded, v.identity, 255)
    else
      ok, err = pcall(core.gather_rows, v.gather_x, self.images, v.index, 255)
    end
    if ok then ok, err = pcall(core.gather_rows, v.gather_y, self.labels, v.index, 1) end
    if not ok then
      for _, t in ipairs({ v.x, v.y, v.gather_x, v.gather_y }) do
        if not pcall(t.dim, t) then
          fail("iter: a batch tensor of this loader was freed (the loader reuses its batch "
            .. "tensors: x:clone() what you keep, never free them)")
        end
      end
      fail("iter: %s", (tostring(err):gsub("^.-lunet%.gather_rows: ", "")))
    end
    local x = self:augment(v, epoch)
    if v.x ~= x then
      v.x:copy(x)
      v.y:copy(v.gather_y)
    end
    local fn = self.pipeline and self.pipeline.fn
    if fn then
      local fx, fy = fn(v.x, v.y, b)
      if fx == nil then fail("transform: the function returned nothing (it must return the batch x[, y])") end
      return fx, fy or v.y, b
    end
    return v.x, v.y, b
  end
end

--- Runs the list of transforms on batch view v (where it was gathered); returns the
-- tensor holding the result. Image i of the epoch gets the counter
-- epoch * 2^32 + its position in the epoch.
function DataLoader:augment(v, epoch)
  local list = self.pipeline and self.pipeline.list
  local x = v.gather_x
  if not list then return x end
  local counter = (epoch << 32) + (v.start - 1)
  for k, t in ipairs(list) do
    x = t:apply(x, transforms.key(self.transform_seed, k), counter, v.buffers[k])
  end
  return x
end

-- --- batches decoded from image files ---------------------------------------------

--- Paths and slot of batch b of the current epoch.
function DataLoader:batch_paths(b)
  local v = self.views[b]
  local order = self.order_host_epoch
  local paths = {}
  for i = 1, v.len do paths[i] = self.dataset.paths[order[v.start + i - 1] + 1] end
  return paths
end

function DataLoader:submit(b)
  if not self.views[b] or self.pending[b] then return end
  self.pending[b] = self.decoder:submit(self:batch_paths(b))
end

--- Starts decoding the first prefetch + 1 batches of the epoch.
function DataLoader:start_decoding()
  self:stop_decoding()
  self.decoder = self.decoder or self.dataset:decoder()
  self.order_host_epoch = self.order_host:totable() -- iter has put the epoch's order there
  self.pending = {}
  for b = 1, math.min(self.prefetch + 1, self.num_batches) do self:submit(b) end
end

--- Queues batch b + prefetch (so that prefetch batches are decoded ahead
-- while b is used), waits for batch b and returns it as uint8.
function DataLoader:decoded_batch(b)
  self:submit(b + self.prefetch)
  self:submit(b) -- not yet queued when the loop skipped ahead
  local ticket = self.pending[b]
  self.pending[b] = nil
  local v = self.views[b]
  local t0 = core.clock()
  local ok, bad = self.decoder:wait(ticket, v.decoded)
  self.wait_seconds = self.wait_seconds + (core.clock() - t0)
  if not ok then
    self:stop_decoding()
    fail("%s", bad)
  end
  self.bad_images = self.bad_images + bad
  return v.decoded
end

--- Waits for every batch still being decoded, and drops them.
function DataLoader:stop_decoding()
  if self.pending and self.decoder then
    local ctrl_c
    for b, ticket in pairs(self.pending) do
      local ok, err = pcall(self.decoder.wait, self.decoder, ticket)
      if not ok and interrupt.is_interrupt(err) then ctrl_c = err end
      self.pending[b] = nil
    end
    if ctrl_c then error(ctrl_c, 0) end -- dropped batches' errors are moot; a Ctrl-C is not
  end
end

--- Releases the loader's device memory now (the dataset itself is kept).
function DataLoader:free()
  if self.files then
    self:stop_decoding()
    if self.decoder then self.decoder:close() end
    self.decoded:free()
  end
  for _, buf in pairs(self.transform_buffers or {}) do
    if buf ~= self.x then buf:free() end
  end
  for _, name in ipairs({ "gather_x", "gather_y", "x", "y" }) do
    if self[name] and pcall(self[name].dim, self[name]) then self[name]:free() end
  end
  if self.images and self.images ~= rawget(self.dataset, "images") then
    self.images:free()
    self.labels:free()
  end
  if self.order ~= self.order_host then self.order:free() end
  self.views = {}
  self.freed = true
end

data.DataLoader_class = DataLoader

return data
