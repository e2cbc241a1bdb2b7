--- The building blocks of the GPU-vs-CPU session (scripts/gpu_vs_cpu.lua)
-- and the batch-size sweep (scripts/batch_sweep.lua): choosing devices,
-- a training epoch, test accuracy, timed inference passes, progress lines.
--
-- Everything here uses only lunet's public API (devices, tensors, the
-- DataLoader, nn modules and optimizers) and lunet.core's two step counters
-- (count_correct_into, async_reader), so the same code runs on every
-- device. Timing follows lunet.bench: the device is synchronised before
-- every clock read.
local lunet = require("lunet")
local bench = require("lunet.bench")
local core = require("lunet.core") -- count_correct_into, async_reader: the step's device-side counters

local session = {}

-- A training step's data needs no gradient: backward skips the first
-- layer's input gradient (nn.lua, Module:backward's options).
local NO_INPUT_GRADIENT = { input_gradient = false }

-- Fault injection -------------------------------------------------------------------
--
-- A GPU can fail in the middle of a session (out of memory, a failing
-- kernel); the session must then keep and report what the other devices
-- measured. To test that on machines without a GPU, the environment variable
--   LUNET_FAIL_DEVICE=<device>,<phase>[,<batch>]
-- makes <device> (a canonical name: cpu, ref, cuda:0) raise an error at batch
-- <batch> (default 1) of <phase>: train (the first epoch), accuracy or
-- inference, exactly where a real device error would surface. It is a test
-- hook: nothing else reads it, and without it nothing changes.

local PHASES = { train = true, accuracy = true, inference = true }

--- The parsed LUNET_FAIL_DEVICE value, nil when unset; an error for a value
-- that does not parse (a test that sets it wrongly must not pass quietly).
function session.parse_fault(value)
  if value == nil or value == "" then return nil end
  local device, phase, batch = value:match("^%s*([^,%s]+)%s*,%s*(%a+)%s*,?%s*(%d*)%s*$")
  if not device or not PHASES[phase] then
    error(("LUNET_FAIL_DEVICE=%q: expected <device>,<phase>[,<batch>] with phase train, "
      .. "accuracy or inference (e.g. \"cuda:0,train,3\")"):format(value), 0)
  end
  return { device = device, phase = phase, batch = tonumber(batch) or 1, spec = value }
end

session.fault = session.parse_fault(os.getenv("LUNET_FAIL_DEVICE"))

--- Raises the injected failure when it is due: on `device`, in `phase`, at
-- batch `batch`.
local function inject_fault(device, phase, batch)
  local f = session.fault
  if f and f.phase == phase and f.batch == batch and tostring(device) == f.device then
    error(("%s: injected device failure in %s at batch %d (LUNET_FAIL_DEVICE=%s)")
      :format(f.device, phase, batch, f.spec), 0)
  end
end

--- Argument converters for the scripts' argparse options: each returns a
-- function of the option's text giving the value, or nil and a message that
-- names the option (`what`) and what was wrong.
function session.integer_at_least(lo, what)
  return function(s)
    local v = math.tointeger(tonumber(s))
    if not v then return nil, ("%s must be an integer, got %q"):format(what, s) end
    if v < lo then return nil, ("%s must be at least %d, got %d"):format(what, lo, v) end
    return v
  end
end

function session.positive_number(what)
  return function(s)
    local v = tonumber(s)
    if not v or v ~= v or v <= 0 or v == math.huge then
      return nil, ("%s must be a positive number, got %q"):format(what, s)
    end
    return v
  end
end

--- The devices named by `spec`: nil or "all" for every available device,
-- else a comma-separated list ("cpu,cuda:0"; "cuda" means "cuda:0").
-- Returns the list of canonical names, or nil and a message saying which
-- name is wrong and why.
function session.resolve_devices(spec)
  if spec == nil or spec == "all" or spec == "" then return lunet.devices() end
  local names, seen = {}, {}
  for raw in tostring(spec):gmatch("[^,]+") do
    local name = raw:match("^%s*(.-)%s*$")
    if name == "all" then
      for _, d in ipairs(lunet.devices()) do
        if not seen[d] then names[#names + 1], seen[d] = d, true end
      end
    else
      local ok, dev = pcall(lunet.device, name)
      if not ok then
        -- the reason alone: no source position, no second "device ... is not available"
        local why = tostring(dev):gsub("^.-lunet%.device: ", ""):gsub("^device '[^']*' is not available: ", "")
        return nil, ("device %q is not available: %s (available: %s)"):format(name, why,
          table.concat(lunet.devices(), ", "))
      end
      local canonical = tostring(dev)
      if not seen[canonical] then names[#names + 1], seen[canonical] = canonical, true end
    end
  end
  if #names == 0 then return nil, "no device named (use e.g. --devices cpu,cuda)" end
  return names
end

--- Whether stdout is a terminal that can redraw a line.
function session.stdout_is_tty()
  local term = os.getenv("TERM")
  if term == nil or term == "" or term == "dumb" then return false end
  local ok = os.execute("test -t 1")
  return ok == true
end

-- Progress -------------------------------------------------------------------------

local Progress = {}
Progress.__index = Progress

--- A progress reporter. On a terminal, `update` redraws one line (epoch,
-- batch, loss, images/s, ETA) at most every `interval` seconds; elsewhere it
-- stays silent and `epoch_done` prints one line per epoch.
function session.progress(opts)
  return setmetatable({
    tty = opts.tty, label = opts.label or "", out = opts.out or io.stdout,
    interval = opts.interval or 0.2, last = -math.huge, width = 0,
  }, Progress)
end

--- Whether update would draw now (the training loop reads the loss from
-- the device only then).
function Progress:due(batch, batches)
  return self.tty and (batch == batches or lunet.clock() - self.last >= self.interval)
end

function Progress:update(s)
  if not self.tty then return end
  local now = lunet.clock()
  if now - self.last < self.interval and s.batch ~= s.batches then return end
  self.last = now
  local line = ("[%s] epoch %d/%d  batch %d/%d  loss %.4f  %.0f img/s  ETA %s"):format(
    self.label, s.epoch, s.epochs, s.batch, s.batches, s.loss, s.images_per_second,
    bench.format_duration(s.eta))
  local pad = math.max(0, self.width - #line)
  self.width = #line
  self.out:write("\r", line, (" "):rep(pad))
  self.out:flush()
end

function Progress:epoch_done(e, epochs)
  local line = ("[%s] epoch %d/%d: %d batches, %d images in %s (%.0f img/s), mean loss %.4f"):format(
    self.label, e.epoch, epochs, e.batches, e.images, bench.format_duration(e.seconds),
    e.images_per_second, e.mean_loss)
  if self.tty then
    self.out:write("\r", line, (" "):rep(math.max(0, self.width - #line)), "\n")
    self.width = 0
  else
    self.out:write(line, "\n")
  end
  self.out:flush()
end

-- Training and evaluation ------------------------------------------------------------------

--- The session's model (lunet.models.fashion_alexnet, or what `build`
-- returns), built on the CPU after seeding the generator with `seed`: the
-- same weights for every device. Flattened (model:flat_parameters(), kept
-- by :to), so the optimizer updates it in one call.
function session.fresh_model(seed, build)
  lunet.manual_seed(seed)
  local model = build and build() or lunet.models.fashion_alexnet()
  model:flat_parameters()
  return model
end

--- One training step on the batch x, y: zero_grad, forward, loss, backward,
-- optimizer step. Returns the loss (a number: reading it waits for the device).
function session.train_step(model, criterion, optimizer, x, y)
  optimizer:zero_grad()
  local output = model:forward(x)
  local loss = criterion:forward(output, y)
  model:backward(x, criterion:backward(output, y), NO_INPUT_GRADIENT)
  optimizer:step()
  return loss
end

--- Whether count_correct can count `output` against `y`: class scores
-- {N, C} and int32 labels {N} (a criterion such as MSELoss takes other
-- targets, and then the epoch reports no training accuracy).
function session.counts_correct(output, y)
  return output:dim() == 2 and y:dtype() == "int32" and y:dim() == 1
    and y:size(1) == output:size(1)
end

-- A ones row {1, N} per device and N, so the count's sum is a matrix product
-- (elsewhere than ref and cpu a dimension reduction may be host-staged:
-- cuda's unverified kernels are off by default, its matmul is not).
local ones_rows = setmetatable({}, { __mode = "v" })
local function ones_row(n, device)
  local key = tostring(device) .. "/" .. n
  local row = ones_rows[key]
  if not row or not pcall(row.dim, row) then -- not yet made, or freed
    row = lunet.ones({ 1, n }, { device = device })
    ones_rows[key] = row
  end
  return row
end

--- Adds the number of rows of `output` {N, C} whose argmax is the label in
-- `y` to `correct` (a float32 tensor of 1 element on their device), without
-- waiting for the device: in place on ref and cpu (nothing allocated),
-- elsewhere by argmax, eq and a product with a ones row, which stay on the
-- device.
function session.count_correct(output, y, correct)
  if core.count_correct_into(output, y, correct, "session.count_correct") then return end
  local n = output:size(1)
  local predicted = output:argmax(2)
  local hits = predicted:eq(y)
  local as_float = hits:to("float32")
  local column = as_float:reshape({ n, 1 })
  local count = lunet.matmul(ones_row(n, output:device()), column)
  local flat = count:reshape({ 1 })
  correct:add_(flat)
  for _, t in ipairs({ predicted, hits, as_float, column, count, flat }) do
    if t ~= correct then t:free() end
  end
end

--- The same step with the loss left on the device: added to `loss_sum`
-- (CrossEntropyLoss.running_sum) without waiting for it, and with `correct`
-- (optional) the step's correct predictions added to it (count_correct).
-- Criteria without forward_tensor take the plain step; their loss is added
-- on the host.
function session.train_step_on_device(model, criterion, optimizer, x, y, loss_sum, correct)
  optimizer:zero_grad()
  local output = model:forward(x)
  local loss
  -- the loss first, so that bad labels are the criterion's error
  if criterion.forward_tensor then
    criterion:forward_tensor(output, y, loss_sum)
  else
    loss = criterion:forward(output, y)
  end
  local counted = correct ~= nil and session.counts_correct(output, y)
  if counted then session.count_correct(output, y, correct) end
  model:backward(x, criterion:backward(output, y), NO_INPUT_GRADIENT)
  optimizer:step()
  return loss, counted
end

--- The epoch's counters on `device`: one float32 tensor {loss sum,
-- compensation, correct predictions}, so one read gives all three; returns
-- it and its two views (the running loss pair, the correct count).
function session.epoch_counters(device)
  local counters = lunet.zeros({ 3 }, { device = device })
  return counters, counters:narrow(1, 1, 2), counters:narrow(1, 3, 1)
end

--- One training epoch over `loader` (at most `max_batches` batches):
-- forward, loss, backward, optimizer step, as the notebook's loop does. The
-- losses and the correct predictions are summed on the device and read once
-- at the end, so no step waits for the device; the progress line (at most
-- every progress.interval seconds) reads them through core.async_reader,
-- which never waits either (it shows the last completed read). Timed from
-- the first batch's preparation to the last step's completion, the device
-- synchronised at both ends. Returns {epoch, seconds, batches, images,
-- mean_loss, correct, accuracy (of the training batches, as the model was
-- when it saw each), images_per_second}.
function session.train_epoch(t)
  local model, criterion, optimizer, loader = t.model, t.criterion, t.optimizer, t.loader
  local batches = #loader
  if t.max_batches and t.max_batches < batches then batches = t.max_batches end
  model:train()
  local on_device = criterion.forward_tensor ~= nil
  local counters, loss_sum, correct = session.epoch_counters(loader.device)
  local reader = t.progress and t.progress.tty and core.async_reader() or nil
  bench.synchronize(t.device)
  local t0 = lunet.clock()
  local waited0 = loader.wait_seconds or 0 -- time spent waiting for image decoding
  local images, host_loss_sum, done = 0, 0, 0
  local counted_images = 0 -- nil once a batch's targets are not class labels
  for x, y, b in loader:iter(t.epoch) do
    if b > batches then break end
    if t.epoch == 1 then inject_fault(loader.device, "train", b) end
    local loss, counted = session.train_step_on_device(model, criterion, optimizer, x, y, loss_sum,
      correct)
    if loss then host_loss_sum = host_loss_sum + loss end
    if not counted then counted_images = nil end
    if t.scheduler then t.scheduler:step() end
    images = images + x:size(1)
    done = b
    if reader and t.progress:due(b, batches) then
      local values, at = reader:poll(counters, b)
      if values then
        local total = on_device and values[1] + values[2] or host_loss_sum
        if total ~= total then
          error(("the loss became NaN in epoch %d, by batch %d"):format(t.epoch, at), 0)
        end
        local elapsed = lunet.clock() - t0
        local per_batch = elapsed / b
        t.progress:update({ epoch = t.epoch, epochs = t.epochs, batch = b, batches = batches,
          loss = loss or total / at, images_per_second = images / math.max(elapsed, 1e-9),
          eta = per_batch * ((batches - b) + batches * (t.epochs - t.epoch)) })
      end
    end
  end
  if reader then reader:close() end
  bench.synchronize(t.device)
  if done == 0 then error(("epoch %d trained on no batch (the loader has %d)"):format(t.epoch, #loader), 0) end
  local seconds = lunet.clock() - t0
  local read = counters:totable() -- the epoch's one read
  counters:free()
  local total = on_device and read[1] + read[2] or host_loss_sum
  if total ~= total then
    error(("the loss became NaN in epoch %d (read once per epoch: the batch is not known)")
      :format(t.epoch), 0)
  end
  -- no training accuracy when some batch's targets were not class labels
  local hits = counted_images and (math.tointeger(read[3]) or read[3]) or nil
  return { epoch = t.epoch, seconds = seconds, batches = done, images = images,
    mean_loss = done > 0 and total / done or 0 / 0, correct = hits,
    accuracy = hits and hits / images or nil,
    images_per_second = images / seconds, data_wait_seconds = (loader.wait_seconds or 0) - waited0 }
end

--- The loader alone: `batches` batches (or all) of epoch `epoch` gathered,
-- augmented and copied to the device, with no training step. Returns
-- {seconds, images, images_per_second}, the rate the data path can feed.
function session.loader_rate(loader, device, epoch, batches)
  bench.synchronize(device)
  local t0 = lunet.clock()
  local images = 0
  for x, _, b in loader:iter(epoch) do
    if batches and b > batches then break end
    images = images + x:size(1)
  end
  bench.synchronize(device)
  local seconds = lunet.clock() - t0
  return { seconds = seconds, images = images, images_per_second = images / seconds }
end

--- Warm-up outside the timing: `steps` training steps on the first batches
-- of `loader` (in the order of epoch `epoch`), plus one step on a batch of
-- `partial` images when the timed epochs will meet a final partial batch,
-- so one-time work (workspace sizing, algorithm searches, lazy kernel
-- loading, the thread pool's start) happens here for every batch shape.
-- The model's parameters and buffers and the optimizer's state are then put
-- back as they were, so the timed run starts from the same state (and gives
-- the same numbers) as without warm-up. Returns {steps (all of them),
-- batches (those of the loader's batches), batch_sizes, seconds, restored}.
function session.warm_up(t)
  local model, optimizer, loader = t.model, t.optimizer, t.loader
  local saved = model:state_dict()
  local sizes, seen, steps, batches = {}, {}, 0, 0
  local loss_sum = t.criterion.forward_tensor and t.criterion.running_sum(loader.device) or nil
  model:train()
  bench.synchronize(t.device)
  local t0 = lunet.clock()
  local function step(x, y)
    session.train_step_on_device(model, t.criterion, optimizer, x, y, loss_sum)
    steps = steps + 1
    if not seen[x:size(1)] then
      seen[x:size(1)] = true
      sizes[#sizes + 1] = x:size(1)
    end
  end
  for x, y, b in loader:iter(t.epoch) do
    if b > t.steps then break end
    step(x, y)
    batches = b
    if b == 1 and t.partial and t.partial > 0 and t.partial < x:size(1) then
      step(x:narrow(1, 1, t.partial), y:narrow(1, 1, t.partial))
    end
  end
  bench.synchronize(t.device)
  local seconds = lunet.clock() - t0
  if loss_sum then loss_sum:free() end
  model:load_state_dict(saved)
  require("lunet.optim")._reset_state(optimizer)
  optimizer:zero_grad()
  return { steps = steps, batches = batches, batch_sizes = sizes, seconds = seconds, restored = true }
end

--- Correct predictions of `model` (eval mode) over `loader`, at most
-- `max_batches` batches. Returns correct, total.
function session.accuracy(model, loader, max_batches)
  model:eval()
  local correct, total = 0, 0
  for x, y, b in loader:iter(1) do
    if max_batches and b > max_batches then break end
    inject_fault(loader.device, "accuracy", b)
    local output = model:forward(x)
    local predicted = output:argmax(2)
    local hits = predicted:eq(y)
    correct = correct + math.tointeger(hits:sum())
    total = total + x:size(1)
    predicted:free()
    hits:free()
  end
  -- an accuracy over no image is no accuracy (0/0), never a result
  if total == 0 then error("the accuracy pass saw no image (an empty loader?)", 0) end
  return correct, total
end

--- One inference pass (eval mode, forward only) over `loader`: the work
-- that is timed. Returns the number of images.
function session.inference_pass(model, loader, max_batches)
  model:eval()
  local images = 0
  for x, _, b in loader:iter(1) do
    if max_batches and b > max_batches then break end
    inject_fault(loader.device, "inference", b)
    model:forward(x)
    images = images + x:size(1)
  end
  if images == 0 then error("the inference pass saw no image (an empty loader?)", 0) end
  return images
end

return session
