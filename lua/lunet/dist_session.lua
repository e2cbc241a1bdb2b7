--- The GPU-vs-CPU session trained data-parallel:
--   mpirun -np N lua5.4 scripts/gpu_vs_cpu.lua --distributed [options]
-- Every rank trains the same model on its own device (cuda:<local rank>, or
-- the CPU with --threads threads each) on its share of every global batch of
-- --batch-size images; gradients are averaged with one allreduce per step
-- (lunet.dist.DataParallel), so the run computes what one process with batch
-- --batch-size computes. Rank 0 measures test accuracy and inference and
-- writes the report, with the world size, each rank's throughput, the
-- allreduce share of step time and the scaling efficiency against one
-- process (measured in the same run: --scaling-batches steps of one process
-- with the global batch, the others idle).
--
-- Several machines: a hostfile lists them (`node1 slots=2`), and the Lua
-- paths must reach every rank:
--   mpirun -np 4 --hostfile hosts -x LUA_PATH -x LUA_CPATH \
--     lua5.4 scripts/gpu_vs_cpu.lua --distributed --out results-dp
-- with lunet built (and Fashion-MNIST installed) at the same paths on each.
local lunet = require("lunet")
local bench = require("lunet.bench")
local report = require("lunet.report")
local session = require("lunet.session")

local dist_session = {}

-- The data needs no gradient (session.lua).
local NO_INPUT_GRADIENT = { input_gradient = false }

local function die(msg)
  io.stderr:write("gpu_vs_cpu.lua --distributed: ", msg, "\n")
  os.exit(1)
end

--- The device of this rank: "all" takes this rank's GPU when there are GPUs,
-- else the CPU; "cuda" means cuda:<local rank> (one GPU per rank).
function dist_session.rank_device(spec, local_rank)
  spec = spec or "all"
  if spec:find(",", 1, true) then
    return nil, ("--devices %q: a distributed run uses one device per rank (cpu, cuda, or cuda:N)"):format(spec)
  end
  if spec == "all" or spec == "" then
    spec = lunet.cuda_available() and "cuda" or "cpu"
  end
  if spec == "cuda" then spec = "cuda:" .. local_rank end
  local ok, dev = pcall(lunet.device, spec)
  if not ok then
    return nil, ("device %q is not available on this rank: %s"):format(spec,
      (tostring(dev):gsub("^lunet%.device: ", "")))
  end
  return dev
end

-- One training step of one rank: the gradients are averaged across the
-- ranks between backward and the optimizer's step.
local function train_step(ddp, model, criterion, optimizer, x, y)
  optimizer:zero_grad()
  local output = model:forward(x)
  local loss = criterion:forward(output, y)
  model:backward(x, criterion:backward(output, y), NO_INPUT_GRADIENT)
  ddp:sync()
  optimizer:step()
  return loss
end

--- Images per second of one process training with the whole global batch,
-- on this rank's device and threads: the yardstick of the scaling
-- efficiency. `batches` timed steps after 2 untimed ones.
local function reference_rate(args, train, dev, batches)
  local model = session.fresh_model(args.seed):to(dev)
  local criterion = lunet.nn.CrossEntropyLoss()
  local optimizer = lunet.optim.Adam(model, { lr = args.lr })
  local loader = lunet.data.DataLoader(train, { batch_size = args.batch_size, shuffle = true,
    seed = args.seed, device = dev, mode = args.data_mode })
  local warmup, images, t0 = 2, 0, nil
  model:train()
  for x, y, b in loader:iter(1) do
    if b == warmup + 1 then
      bench.synchronize(dev)
      t0 = lunet.clock()
    end
    session.train_step(model, criterion, optimizer, x, y)
    if b > warmup then images = images + x:size(1) end
    if b == warmup + batches then break end
  end
  bench.synchronize(dev)
  local seconds = lunet.clock() - t0
  loader:free()
  return { images_per_second = images / seconds, seconds = seconds, images = images,
    batches = batches, batch_size = args.batch_size }
end

local function run(args)
  local dist = lunet.dist
  local rank, world = dist.init()
  local info = dist.info()
  if world == 1 then
    print("--distributed: one process (" .. tostring(info.reason) .. "); start it with " ..
      "mpirun -np N to train data-parallel")
  end
  local dev, why = dist_session.rank_device(args.devices, dist.local_rank())
  if not dev then error(why, 0) end
  if args.batch_size % world ~= 0 then
    error(("--batch-size %d (the global batch) must be a multiple of the %d processes"):format(
      args.batch_size, world), 0)
  end
  local per_rank = args.batch_size // world
  if args.threads then
    lunet.set_num_threads(args.threads)
  elseif dev.type == "cpu" then -- the ranks on one machine share its cores
    lunet.set_num_threads(math.max(1, lunet.get_num_threads() // dist.local_size()))
  end
  local threads = lunet.get_num_threads()
  args.eval_batch_size = args.eval_batch_size or args.batch_size
  if args.eval_max_batches == nil then args.eval_max_batches = args.max_batches end
  if args.eval_max_batches == 0 then args.eval_max_batches = nil end
  if rank == 0 then
    local writable, werr = report.prepare_dir(args.out)
    if not writable then error(werr, 0) end
  end

  local train = lunet.datasets.fashion_mnist({ split = "train", root = args.data })
  local test = lunet.datasets.fashion_mnist({ split = "test", root = args.data })
  local probe = session.fresh_model(args.seed)
  local forward_flops = bench.model_flops(probe, { 1, 28, 28 })
  local model_info = {
    name = "fashion_alexnet", parameters = bench.parameter_count(probe),
    forward_flops_per_image = forward_flops, train_flops_factor = bench.TRAIN_FLOPS_FACTOR,
    train_flops_per_image = forward_flops * bench.TRAIN_FLOPS_FACTOR,
    flop_convention = "convolution and linear layers only, a multiply-add = 2 FLOPs; " ..
      "training = 3 x forward (forward, input gradients, weight gradients)",
  }
  probe = nil
  if rank == 0 then
    print(("== data-parallel: %d process(es) (%s%s), %s each with %d thread(s); global batch %d = %d x %d")
      :format(world, info.backend == "mpi" and info.library or "no MPI", info.nccl and ", NCCL" or "",
        tostring(dev), threads, args.batch_size, world, per_rank))
  end

  -- the yardstick: one process, the global batch, this rank's device and threads
  local reference
  if args.scaling_batches > 0 then
    if rank == 0 then
      reference = reference_rate(args, train, dev, args.scaling_batches)
      print(("[rank 0] one process alone, batch %d: %.0f images/s (%d steps)"):format(
        args.batch_size, reference.images_per_second, args.scaling_batches))
    end
    dist.barrier() -- the other ranks wait asleep
  end

  local model = session.fresh_model(args.seed):to(dev)
  local ddp = dist.DataParallel(model)
  local criterion = lunet.nn.CrossEntropyLoss()
  local optimizer = lunet.optim.Adam(model, { lr = args.lr })
  local loader = lunet.data.DataLoader(train, { batch_size = per_rank, shuffle = true, seed = args.seed,
    rank = rank, world = world, device = dev, mode = args.data_mode })
  local batches = #loader
  if args.max_batches and args.max_batches < batches then batches = args.max_batches end
  -- one line per epoch: mpirun gives the ranks a terminal even when its own output goes to a file
  local progress = session.progress({ tty = false, label = tostring(dev) .. " x" .. world })
  local reduce = lunet.zeros({ 2 }) -- loss sum, steps: averaged over the ranks each epoch

  local function epoch_run(epoch, max_batches)
    model:train()
    bench.synchronize(dev)
    local sync0, wait0, t0 = ddp.sync_seconds, ddp.wait_seconds, lunet.clock()
    local images, loss_sum, done = 0, 0, 0
    for x, y, b in loader:iter(epoch) do
      if b > max_batches then break end
      local loss = train_step(ddp, model, criterion, optimizer, x, y)
      if loss ~= loss then error(("the loss became NaN at epoch %d, batch %d"):format(epoch, b), 0) end
      images, loss_sum, done = images + x:size(1), loss_sum + loss, b
      if progress.tty then
        local elapsed = lunet.clock() - t0
        progress:update({ epoch = epoch, epochs = args.epochs, batch = b, batches = max_batches, loss = loss,
          images_per_second = world * images / math.max(elapsed, 1e-9),
          eta = elapsed / b * ((max_batches - b) + max_batches * (args.epochs - epoch)) })
      end
    end
    bench.synchronize(dev)
    local seconds = lunet.clock() - t0
    reduce:set(loss_sum, 1)
    reduce:set(done, 2)
    dist.allreduce(reduce, "sum")
    return { epoch = epoch, seconds = seconds, batches = done, images = images,
      mean_loss = reduce:get(1) / reduce:get(2), images_per_second = images / seconds,
      allreduce_seconds = ddp.sync_seconds - sync0, wait_seconds = ddp.wait_seconds - wait0 }
  end

  if args.warmup_batches > 0 then epoch_run(args.epochs + 1, args.warmup_batches) end
  local epochs, seconds, images, sync_seconds, wait_seconds, syncs0 = {}, 0, 0, 0, 0, ddp.syncs
  for epoch = 1, args.epochs do
    local e = epoch_run(epoch, batches)
    epochs[epoch] = e
    seconds, images, sync_seconds = seconds + e.seconds, images + e.images, sync_seconds + e.allreduce_seconds
    wait_seconds = wait_seconds + e.wait_seconds
    if rank == 0 then
      progress:epoch_done({ epoch = epoch, batches = e.batches, images = e.images * world, seconds = e.seconds,
        images_per_second = e.images * world / e.seconds, mean_loss = e.mean_loss }, args.epochs)
    end
  end
  local syncs = ddp.syncs - syncs0

  -- every rank's figures, gathered with one allreduce of a {world, 6} table
  local table_t = lunet.zeros({ world, 6 }, { dtype = "float32" })
  local row = { seconds, images, sync_seconds, syncs, threads, wait_seconds }
  for j, v in ipairs(row) do table_t:set(v, rank + 1, j) end
  -- float32 is enough for seconds and counts below 2^24; sums of one non-zero entry each
  dist.allreduce(table_t, "sum")
  local ranks = {}
  for r = 1, world do
    local s, im, ar, n, th = table_t:get(r, 1), table_t:get(r, 2), table_t:get(r, 3), table_t:get(r, 4), table_t:get(r, 5)
    ranks[r] = { rank = r - 1, seconds = s, images = math.tointeger(im) or im, images_per_second = im / s,
      allreduce_seconds = ar, allreduce_share = ar / s, allreduces = math.tointeger(n) or n,
      threads = math.tointeger(th) or th, wait_seconds = table_t:get(r, 6) }
  end

  if rank ~= 0 then
    dist.barrier() -- rank 0 evaluates and writes the report meanwhile
    loader:free()
    return 0
  end

  local slowest, total_images, share_sum = 0, 0, 0
  for _, r in ipairs(ranks) do
    slowest = math.max(slowest, r.seconds)
    total_images = total_images + r.images
    share_sum = share_sum + r.allreduce_share
  end
  local total_rate = total_images / slowest
  local params = model_info.parameters
  local distributed = {
    world_size = world, backend = info.backend, library = info.library, nccl = info.nccl,
    transport = dev.type == "cuda" and (info.nccl and "NCCL" or "MPI, staged through host memory") or "MPI",
    device_per_rank = tostring(dev), threads_per_rank = threads,
    global_batch_size = args.batch_size, batch_size_per_rank = per_rank,
    gradient_mode = ddp.mode, allreduce_floats = params, allreduce_bytes = params * 4,
    ranks = ranks, images = total_images, images_per_second = total_rate, seconds = slowest,
    allreduce_share = share_sum / world,
    allreduce_ms_per_step = 1000 * (ranks[1].allreduce_seconds / math.max(1, ranks[1].allreduces)),
    reference = reference,
    speedup = reference and total_rate / reference.images_per_second or nil,
    scaling_efficiency = reference and total_rate / (world * reference.images_per_second) or nil,
  }

  local result = { device = tostring(dev), info = dev:info(), status = "ok" }
  local global_epochs = {}
  for i, e in ipairs(epochs) do
    global_epochs[i] = { epoch = e.epoch, seconds = e.seconds, batches = e.batches, images = e.images * world,
      mean_loss = e.mean_loss, images_per_second = e.images * world / e.seconds }
  end
  result.training = { epochs = global_epochs, seconds = slowest, images = total_images,
    images_per_second = total_rate, gflops = total_rate * model_info.train_flops_per_image / 1e9,
    final_loss = global_epochs[#global_epochs].mean_loss, upload_seconds = loader.upload_seconds }

  local test_loader = lunet.data.DataLoader(test, { batch_size = args.eval_batch_size, device = dev,
    mode = args.data_mode })
  local correct, total = session.accuracy(model, test_loader, args.eval_max_batches)
  result.accuracy = { correct = correct, total = total, accuracy = correct / total }
  print(("[rank 0] test accuracy %.2f%% (%d/%d)"):format(100 * correct / total, correct, total))
  local inferred = 0
  local timing = bench.time(function()
    inferred = session.inference_pass(model, test_loader, args.eval_max_batches)
  end, { device = dev, warmup = 1, ["repeat"] = args["repeat"] })
  result.inference = { images = inferred, batch_size = args.eval_batch_size, process = "rank 0 alone",
    warmup_seconds = timing.warmup_times[1], median_seconds = timing.median, min_seconds = timing.min,
    max_seconds = timing.max, times = timing.times, images_per_second = inferred / timing.median,
    gflops = inferred * model_info.forward_flops_per_image / timing.median / 1e9 }
  test_loader:free()

  for _, line in ipairs(dist_session.summary_lines(distributed)) do print(line) end
  local results = {
    schema = "lunet.gpu_vs_cpu/1",
    arguments = { devices = { tostring(dev) }, epochs = args.epochs, batch_size = args.batch_size,
      eval_batch_size = args.eval_batch_size, lr = args.lr, max_batches = args.max_batches,
      eval_max_batches = args.eval_max_batches, warmup_batches = args.warmup_batches,
      ["repeat"] = args["repeat"], data_mode = args.data_mode, threads = threads, seed = args.seed,
      data = args.data, out = args.out, distributed = true, scaling_batches = args.scaling_batches },
    environment = bench.environment({ tostring(dev) }),
    dataset = { name = "Fashion-MNIST", root = train.root, train_images = #train, test_images = #test },
    model = model_info,
    gpu_available = lunet.cuda_available() and true or false,
    devices = { result },
    distributed = distributed,
  }
  results.inference_images = args.eval_max_batches
    and math.min(#test, args.eval_max_batches * args.eval_batch_size) or #test
  local paths = report.write_session(results, args.out)
  print("wrote " .. table.concat(paths, ", "))
  dist.barrier()
  loader:free()
  return 0
end

--- Lines for the terminal: world size, rates, allreduce share, efficiency.
function dist_session.summary_lines(d)
  local lines = {}
  lines[1] = ("data-parallel: %d process(es), %.0f images/s together; allreduce %.1f%% of step time " ..
    "(%.1f ms a step for %.1f MB)"):format(d.world_size, d.images_per_second, 100 * d.allreduce_share,
    d.allreduce_ms_per_step, d.allreduce_bytes / 1e6)
  for _, r in ipairs(d.ranks) do
    lines[#lines + 1] = ("  rank %d: %.0f images/s, %s training, allreduce %.1f%% (%.1f%% waiting for the others)")
      :format(r.rank, r.images_per_second, bench.format_duration(r.seconds), 100 * r.allreduce_share,
        100 * r.wait_seconds / r.seconds)
  end
  if d.scaling_efficiency then
    lines[#lines + 1] = ("  against one process (%.0f images/s): speed-up %.2fx, scaling efficiency %.0f%%"):format(
      d.reference.images_per_second, d.speedup, 100 * d.scaling_efficiency)
  end
  return lines
end

--- The report's section on a data-parallel run (report.session_markdown
-- adds it when results.distributed is present).
function dist_session.markdown(results)
  local d = results.distributed
  local out = {}
  local function add(s) out[#out + 1] = s or "" end
  add("## Data-parallel training")
  add()
  add(("%d processes (%s), one %s each with %d thread(s); gradients averaged after every step with one " ..
    "allreduce of %s floats (%.1f MB) over %s (%s gradients). Global batch %d = %d processes x %d."):format(
    d.world_size, d.library or d.backend, d.device_per_rank, d.threads_per_rank,
    tostring(d.allreduce_floats), d.allreduce_bytes / 1e6, d.transport, d.gradient_mode,
    d.global_batch_size, d.world_size, d.batch_size_per_rank))
  add()
  add("| rank | training time | images | images/s | allreduce time | of which waiting for the slowest rank | " ..
    "allreduce share of step time | allreduces |")
  add("|---:|---:|---:|---:|---:|---:|---:|---:|")
  for _, r in ipairs(d.ranks) do
    add(("| %d | %.1f s | %d | %.0f | %.2f s | %.2f s | %.1f%% | %d |"):format(r.rank, r.seconds, r.images,
      r.images_per_second, r.allreduce_seconds, r.wait_seconds, 100 * r.allreduce_share, r.allreduces))
  end
  add(("| all | %.1f s | %d | %.0f | | | %.1f%% (mean) | |"):format(d.seconds, d.images,
    d.images_per_second, 100 * d.allreduce_share))
  add()
  if d.scaling_efficiency then
    add(("- One process alone (the same device and %d thread(s), the global batch %d, %d timed steps, " ..
      "measured in this run while the other ranks waited): %.0f images/s."):format(d.threads_per_rank,
      d.reference.batch_size, d.reference.batches, d.reference.images_per_second))
    add(("- Speed-up of %d processes over it: %.2fx; **scaling efficiency %.0f%%** (throughput / (%d x one " ..
      "process))."):format(d.world_size, d.speedup, 100 * d.scaling_efficiency, d.world_size))
  end
  add("- Allreduce time is measured around each gradient average; the part spent in the agreement that " ..
    "precedes it is mostly waiting for the slowest rank (uneven steps, other programs on the cores), the rest " ..
    "moves data. Test accuracy and inference are measured by rank 0 alone.")
  add()
  return out
end

--- Entry point from scripts/gpu_vs_cpu.lua: runs the data-parallel session
-- and returns the exit status. A failing rank stops every rank (its error
-- is printed with its rank).
function dist_session.main(args)
  local ok, why = lunet.dist.available()
  if not ok then die(why) end
  local dist = lunet.dist
  local done, status = xpcall(run, function(err)
    err = tostring(err)
    -- a message raised with a source position is a bug: keep where it happened
    if err:match("^[^\n:]+%.lua:%d+:") then return debug.traceback(err, 2) end
    return err
  end, args)
  if not done then dist.abort("gpu_vs_cpu.lua --distributed: " .. status) end
  return status
end

return dist_session
