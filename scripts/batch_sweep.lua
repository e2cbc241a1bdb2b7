#!/usr/bin/env lua5.4
--- Throughput against batch size: training and inference images/s of the
-- session's AlexNet for batch sizes 16 to 1024 (powers of two) on every
-- device, written as batch_sweep.json and a line chart batch_sweep.svg
-- (log2 x axis, one line per device and phase). Try --help. Installed by
-- luarocks as the command lunet-batch-sweep.
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(("batch_sweep.lua needs Lua 5.4 (this is %s): run it as `lua5.4 %s`\n"):format(
    _VERSION, arg and arg[0] or "scripts/batch_sweep.lua"))
  os.exit(1)
end
-- from a checkout, the checkout's local build (scripts/find_lunet.lua); an
-- installed copy has no find_lunet.lua beside it and needs none
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local find_lunet = loadfile(here .. "/find_lunet.lua")
if find_lunet then find_lunet(here .. "/..") end
local cli = require("lunet.cli")
-- the rest of this file is the body of cli.main: a Ctrl-C outside the measuring loop
-- (loading the data, writing) ends it with one line and exit status 130
cli.main("batch_sweep.lua", function(interrupt_guard)
local argparse = require("argparse")
local lunet = require("lunet")
local bench = require("lunet.bench")
local report = require("lunet.report")
local session = require("lunet.session")

local function integer_at_least(lo, what) return cli.integer(what, lo) end
local positive_number = cli.positive_number

local function batch_sizes(s)
  local list = {}
  for part in s:gmatch("[^,]+") do
    local v = math.tointeger(tonumber(part))
    if not v or v < 1 then
      return nil, ("--batch-sizes: %q is not a positive integer (each size from 1 to the training set's size)")
        :format(part)
    end
    list[#list + 1] = v
  end
  if #list == 0 then return nil, "--batch-sizes: no batch size given" end
  table.sort(list)
  return list
end

local parser = argparse("batch_sweep.lua",
  "Training and inference throughput (images/s) of the session's AlexNet on Fashion-MNIST " ..
  "against batch size, on every device; writes batch_sweep.json and batch_sweep.svg.")
parser:option("--devices", "Devices, comma-separated (cpu, cuda, cuda:N), or all.", "all")
parser:option("--batch-sizes", "Batch sizes, comma-separated.", "16,32,64,128,256,512,1024")
  :convert(batch_sizes)
parser:option("--images", "Images timed per measurement (at least --min-steps batches).", "2048")
  :convert(integer_at_least(1, "--images"))
parser:option("--min-steps", "Fewest batches timed per measurement.", "3")
  :convert(integer_at_least(1, "--min-steps"))
parser:option("--repeat", "Timed measurements per point (after one warm-up); the median is reported.", "1")
  :convert(integer_at_least(1, "--repeat"))
parser:option("--data-mode", "seed (host batches copied to the device) or resident (dataset on the device).",
  "seed"):convert(cli.one_of("--data-mode", { "seed", "resident" }))
parser:option("--lr", "Adam learning rate.", "1e-3"):convert(positive_number("--lr"))
local cpu_threads = cli.cpu_threads()
parser:option("--threads", "CPU threads, 1 to " .. cpu_threads .. " here.")
  :convert(cli.integer("--threads", 1, cpu_threads, "the CPU threads this process may use"))
parser:option("--precision", "Compute precision of convolutions and matrix products (lunet.autocast): " ..
  "fp32, or bf16 (float32 accumulation, weights and optimizer).", "fp32")
  :convert(cli.one_of("--precision", { "fp32", "bf16" }))
parser:option("--seed", "Seed for the weights and the batch order.", "42"):convert(integer_at_least(0, "--seed"))
parser:option("--data", "Folder holding the Fashion-MNIST files (default: $LUNET_DATA/fashion-mnist, " ..
  "./data/fashion-mnist or /usr/share/datasets/fashion-mnist).")
parser:option("--out", "Folder for batch_sweep.json and batch_sweep.svg (created if missing).", "results")
parser:epilog("Ctrl-C stops the sweep: the points measured are written as batch_sweep.interrupted.json " ..
  "and .svg, never over a complete sweep; the exit status is then 130.")
local args = parser:parse(cli.join_negative_values(arg))

local function die(msg)
  io.stderr:write("batch_sweep.lua: ", msg, "\n")
  os.exit(1)
end

if args.devices:match("^%s*$") then
  parser:error("--devices: no device named in '" .. args.devices .. "': name them (cpu, cuda, cuda:N), or all")
end
local devices, why = session.resolve_devices(args.devices)
if not devices then parser:error("--devices: " .. why) end
-- paths are the caller's: relative to the folder the command was run from
args.out, args.data = cli.absolute(args.out), cli.absolute(args.data)
local writable, werr = report.prepare_dir(args.out)
if not writable then die("--out: " .. werr) end
if args.threads then lunet.set_num_threads(args.threads) end
lunet.autocast(args.precision == "bf16" and "bfloat16" or false)

interrupt_guard.doing = "loading the data"
local ok, train = pcall(lunet.datasets.fashion_mnist, { split = "train", root = args.data })
if not ok and cli.is_interrupt(train) then error(train, 0) end -- on to cli.main: one line, exit 130
if not ok then
  die((args.data and ("--data " .. args.data .. ": ") or "") .. tostring(train):gsub("pass root=DIR", "pass --data DIR"))
end
for _, b in ipairs(args.batch_sizes) do
  if b > #train then
    parser:error(("--batch-sizes: each size must be from 1 to %d (the training set's size), got %d"):format(#train, b))
  end
end
local gpu_ok, gpu_reason = lunet.cuda_available()
if not gpu_ok then
  print(("No GPU available (%s): sweeping the CPU only; batch_sweep.json has the full reason.")
    :format(report.short_reason(gpu_reason)))
end

interrupt_guard.doing = "building the model"
local forward_flops = bench.model_flops(session.fresh_model(args.seed), { 1, 28, 28 })

--- Images/s of `steps` batches of `work` (a function of x, y), after one
-- warm-up batch; the device is synchronised around every clock read. The
-- epoch's shuffle order is drawn before the clock starts, and the repeats go
-- on through it; a new epoch starts (timed) only when it runs out.
local function throughput(dev, loader, steps, work)
  local images = 0
  local it = loader:iter()
  local timing = bench.time(function()
    images = 0
    for _ = 1, steps do
      local x, y = it()
      if not x then it = loader:iter() x, y = it() end
      work(x, y)
      images = images + x:size(1)
    end
  end, { device = dev, warmup = 0, ["repeat"] = args["repeat"] })
  return { images = images, seconds = timing.median, images_per_second = images / timing.median,
    times = timing.times }
end

local function measure(name, batch_size)
  local dev = lunet.device(name)
  local model = session.fresh_model(args.seed):to(dev)
  local criterion = lunet.nn.CrossEntropyLoss()
  local optimizer = lunet.optim.Adam(model, { lr = args.lr })
  local loader = lunet.data.DataLoader(train, { batch_size = batch_size, shuffle = true, seed = args.seed,
    device = dev, mode = args.data_mode, drop_last = #train >= batch_size })
  local steps = math.max(args.min_steps, math.ceil(args.images / batch_size))
  local function train_step(x, y) session.train_step(model, criterion, optimizer, x, y) end
  local function infer(x) model:forward(x) end
  -- one warm-up step of each kind (allocations, algorithm choice), untimed
  model:train()
  local it = loader:iter()
  local x, y = it()
  train_step(x, y)
  local point = { batch_size = batch_size, steps = steps }
  point.training = throughput(dev, loader, steps, train_step)
  model:eval()
  infer(x)
  point.inference = throughput(dev, loader, steps, infer)
  point.training.gflops = point.training.images_per_second * forward_flops * bench.TRAIN_FLOPS_FACTOR / 1e9
  point.inference.gflops = point.inference.images_per_second * forward_flops / 1e9
  loader:free()
  return point
end

local sweep = {
  schema = "lunet.batch_sweep/1",
  arguments = { devices = devices, batch_sizes = args.batch_sizes, images = args.images,
    min_steps = args.min_steps, ["repeat"] = args["repeat"], data_mode = args.data_mode,
    threads = lunet.get_num_threads(), seed = args.seed, lr = args.lr,
    precision = args.precision },
  environment = bench.environment(devices),
  model = { name = "fashion_alexnet", forward_flops_per_image = forward_flops,
    train_flops_per_image = forward_flops * bench.TRAIN_FLOPS_FACTOR },
  gpu_available = gpu_ok and true or false,
  gpu_unavailable_reason = not gpu_ok and gpu_reason or nil,
  devices = {},
}

local interrupted
interrupt_guard.doing = "between two measurements" -- the loop below handles a Ctrl-C inside one
for _, name in ipairs(devices) do
  local entry = { device = name, info = lunet.device(name):info(), points = {} }
  for _, b in ipairs(args.batch_sizes) do
    print(("[%s] batch %5d: measuring ..."):format(name, b))
    local ok_point, point = pcall(measure, name, b)
    if not ok_point and cli.is_interrupt(point) then -- Ctrl-C: stop the whole sweep
      interrupted = { at = ("on %s, batch size %d"):format(name, b) }
      print("Interrupted (Ctrl-C) " .. interrupted.at .. ": stopping the sweep.")
      break
    end
    if ok_point then
      print(("[%s] batch %5d: training %8.0f img/s (%6.1f GFLOP/s), inference %8.0f img/s (%6.1f GFLOP/s)"):format(
        name, b, point.training.images_per_second, point.training.gflops,
        point.inference.images_per_second, point.inference.gflops))
    else
      print(("[%s] batch %5d: FAILED: %s"):format(name, b, tostring(point)))
      point = { batch_size = b, error = tostring(point) }
    end
    entry.points[#entry.points + 1] = point
    -- freeing the point's memory takes a moment: a Ctrl-C then stops the sweep, keeping this point
    local freed, gc_err = pcall(function() collectgarbage() collectgarbage() end)
    if not freed and cli.is_interrupt(gc_err) then
      interrupted = { at = ("on %s, after batch size %d"):format(name, b) }
      print("Interrupted (Ctrl-C) " .. interrupted.at .. ": stopping the sweep.")
      break
    end
  end
  sweep.devices[#sweep.devices + 1] = entry
  if interrupted then break end
end

sweep.interrupted = interrupted
interrupt_guard.doing = "writing the results"
interrupt_guard.kept = ("the batch_sweep%s files in %s may be part this sweep's, part an earlier one's")
  :format(interrupted and ".interrupted" or "", args.out)
local written, paths = pcall(report.write_sweep, sweep, args.out, { suffix = interrupted and ".interrupted" or nil })
if not written and cli.is_interrupt(paths) then error(paths, 0) end
if not written then die(tostring(paths)) end
print("wrote " .. table.concat(paths, ", "))
if interrupted then
  print("The sweep was interrupted: these files hold the points measured; a complete " ..
    "batch_sweep.json in that folder is left as it was.")
  os.exit(130)
end
end) -- cli.main
