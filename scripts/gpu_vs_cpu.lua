#!/usr/bin/env lua5.4
--- GPU vs CPU in machine learning: the hands-on session, run from Lua.
--
-- On every device (CPU, and each GPU when there is one) it trains the same
-- small AlexNet on Fashion-MNIST from the same initial weights, times the
-- training (device synchronised before every clock read), measures test
-- accuracy, times inference over the test set (a warm-up pass, then
-- repeated timed passes), and writes results.json, report.md and two SVG
-- bar charts. Try --help. Installed by luarocks as the command lunet-gpu-vs-cpu.
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(("gpu_vs_cpu.lua needs Lua 5.4 (this is %s): run it as `lua5.4 %s`\n"):format(
    _VERSION, arg and arg[0] or "scripts/gpu_vs_cpu.lua"))
  os.exit(1)
end
-- from a checkout, the checkout's local build (scripts/find_lunet.lua); an
-- installed copy has no find_lunet.lua beside it and needs none
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
local find_lunet = loadfile(here .. "/find_lunet.lua")
if find_lunet then find_lunet(here .. "/..") end
local cli = require("lunet.cli")
-- the rest of this file is the body of cli.main: a Ctrl-C outside the device loop
-- (loading the data, writing) ends it with one line and exit status 130
cli.main("gpu_vs_cpu.lua", function(interrupt_guard)
local argparse = require("argparse")
local lunet = require("lunet")
local bench = require("lunet.bench")
local report = require("lunet.report")
local session = require("lunet.session")

local function integer_at_least(lo, what) return cli.integer(what, lo) end
local positive_number = cli.positive_number

local parser = argparse("gpu_vs_cpu.lua",
  "GPU vs CPU in machine learning: train the same AlexNet on Fashion-MNIST on every device, " ..
  "time training and inference honestly, and write results.json, report.md, " ..
  "training_time.svg and inference_time.svg.")
parser:epilog("Example: lua5.4 scripts/gpu_vs_cpu.lua --epochs 1 --max-batches 30 --out /tmp/quick\n" ..
  "Without --data, the data comes from the first of $LUNET_DATA/NAME, ./data/NAME and " ..
  "/usr/share/datasets/NAME, where NAME is fashion-mnist (apt-get install dataset-fashion-mnist) or, " ..
  "for --dataset cifar10, cifar-10 or cifar-10-batches-bin (CIFAR-10's binary version: see the README).\n" ..
  "Ctrl-C stops the whole session: what finished is written as results.interrupted.json and " ..
  "report.interrupted.md, never over a complete report (before training starts: nothing is written); " ..
  "the exit status is then 130.")
parser:option("--devices",
  "Devices to run on, comma-separated (cpu, cuda, cuda:N), or all: every available device.", "all")
parser:option("--epochs", "Training epochs over the training set (60,000 images for Fashion-MNIST; at least 1).", "2")
  :convert(integer_at_least(1, "--epochs"))
parser:option("--batch-size", "Training batch size, from 1 to the training set's size " ..
  "(the last batch of an epoch may be smaller).", "64")
  :convert(integer_at_least(1, "--batch-size"))
parser:option("--eval-batch-size", "Batch size for test accuracy and timed inference (default: --batch-size).")
  :convert(integer_at_least(1, "--eval-batch-size"))
parser:option("--lr", "Learning rate: Adam's for fashion-mnist (default 1e-3); the one-cycle peak for " ..
  "SGD on cifar10 (default 0.4 x batch size / 512) and image-folder (default 0.01).")
  :convert(positive_number("--lr"))
parser:option("--dataset", "fashion-mnist: the lesson's small AlexNet on Fashion-MNIST; cifar10: a ResNet-9 on " ..
  "CIFAR-10 with crop + flip augmentation; image-folder: the original AlexNet on a folder of JPEG/PNG " ..
  "images (--data DIR, laid out DIR/train/<class>/<image> and DIR/val/<class>/<image>, as Imagenette).",
  "fashion-mnist"):choices({ "fashion-mnist", "cifar10", "image-folder" })
parser:option("--model", "The model, instead of the dataset's own: fashion_alexnet, cifar_resnet or alexnet.")
  :choices({ "fashion_alexnet", "cifar_resnet", "alexnet" })
parser:option("--width", "Channels of cifar_resnet's first layer, 1 to 512 (64: the full ResNet-9; " ..
  "the parameters grow with its square).", "64")
  :convert(cli.integer("--width", 1, 512, "512: 420 million parameters"))
parser:option("--image-size", "image-folder: images are scaled and centre-cropped to this size, 8 to 1024 " ..
  "(AlexNet: 224).", "224")
  :convert(cli.integer("--image-size", 8, 1024, "a 1024x1024 batch of 64 is 800 MB of input"))
parser:option("--prefetch", "image-folder: batches decoded ahead of the training step by worker threads, " ..
  "0 to 64.", "2")
  :convert(cli.integer("--prefetch", 0, 64, "each batch ahead is held decoded in memory"))
parser:option("--max-batches",
  "Stop each epoch, and each pass over the test set, after N batches: a quick run, not the full lesson.")
  :convert(integer_at_least(1, "--max-batches"))
parser:option("--eval-max-batches",
  "Cap on test batches for the accuracy and the timed inference (default: --max-batches); " ..
  "0: the whole test set, as bench/cpu_vs_pytorch.sh uses with a capped training run.")
  :convert(integer_at_least(0, "--eval-max-batches"))
parser:option("--warmup-batches", "Training steps run before the timed epochs and not timed, plus " ..
  "one on the final partial batch's shape when the epochs reach it; the weights and the optimizer's " ..
  "state are put back afterwards, so the timed run starts from the same state (0: no warm-up).", "3")
  :convert(integer_at_least(0, "--warmup-batches"))
parser:option("--sgemm-size", "Size n of the n x n x n float32 product that measures each device's " ..
  "matrix-product rate, the yardstick for the achieved GFLOP/s (16 to 16384).", "2048")
  :convert(cli.integer("--sgemm-size", 16, 16384, "three n x n matrices of 4-byte floats"))
parser:option("--repeat", "Timed inference passes over the test set (after one warm-up pass); " ..
  "the report gives their median, min and max.", "3"):convert(integer_at_least(1, "--repeat"))
parser:option("--data-mode", "seed: each batch is prepared on the host and copied to the device, as the " ..
  "original notebook does; resident: the dataset is uploaded once and batches are gathered on the device.", "seed")
  :convert(cli.one_of("--data-mode", { "seed", "resident" }))
local cpu_threads = cli.cpu_threads()
parser:option("--threads", "CPU threads for BLAS and lunet's loops, 1 to " .. cpu_threads ..
  " here (default: lunet's default, " .. lunet.get_num_threads() .. " here).")
  :convert(cli.integer("--threads", 1, cpu_threads, "the CPU threads this process may use"))
parser:option("--precision", "Compute precision of convolutions and matrix products " ..
  "(lunet.autocast): fp32, or bf16 (bf16 products with float32 accumulation; weights, gradients " ..
  "and the optimizer stay float32).", "fp32"):convert(cli.one_of("--precision", { "fp32", "bf16" }))
parser:option("--seed", "Seed for the initial weights and the shuffling: the same on every device.", "42")
  :convert(integer_at_least(0, "--seed"))
parser:option("--data", "Folder holding the dataset's files (default: the search order below; " ..
  "required for image-folder).")
parser:option("--out", "Folder for results.json, report.md and the charts (created if missing).", "results")
parser:option("--compare", "Earlier results.json files (another machine's, a GPU run's) whose devices " ..
  "are drawn beside this run's, labelled \"recorded on <device>, <date>\".")
  :args("+")
parser:flag("--list-devices", "List the devices lunet sees, with their details, and exit.")
parser:flag("--distributed", "Train data-parallel over MPI: run as mpirun -np N lua5.4 scripts/gpu_vs_cpu.lua " ..
  "--distributed; --batch-size is the global batch, split over the processes (see lua/lunet/dist_session.lua).")
parser:option("--scaling-batches", "With --distributed: steps of one process alone timed for the scaling " ..
  "efficiency (0: skip).", "20"):convert(integer_at_least(0, "--scaling-batches"))
local args = parser:parse(cli.join_negative_values(arg))

local function list_devices()
  local ok, reason = lunet.cuda_available()
  for _, name in ipairs(lunet.devices()) do
    local info = lunet.device(name):info()
    print(name .. ": " .. info.name)
    local keys = {}
    for k in pairs(info) do
      if k ~= "name" and k ~= "device" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do print(("  %-20s %s"):format(k, tostring(info[k]))) end
    if name:match("^cuda") then -- results match the CPU only with TF32 off
      print(("  %-20s %s"):format("tf32", tostring(lunet.cuda.get_tf32())))
    end
  end
  if not ok then print("no GPU: " .. reason) end
end

if args.list_devices then
  list_devices()
  os.exit(0)
end

-- paths are the caller's: relative to the folder the command was run from
args.out, args.data = cli.absolute(args.out), cli.absolute(args.data)
-- the compute precision holds for every run below, distributed ones included
lunet.autocast(args.precision == "bf16" and "bfloat16" or false)
if args.precision == "bf16" then
  -- the CPU's bf16 kernels need AVX512-BF16; without it autocast changes nothing there
  local kernels = lunet.device("cpu"):info().kernels or "?"
  if not kernels:match("^avx512bf16") then
    io.stderr:write(("gpu_vs_cpu: --precision bf16: the cpu device's kernels (%s) have no bf16 "
      .. "products (they need AVX512-BF16): it computes in float32; CUDA devices compute in bf16\n"):format(kernels))
  end
end
if args.distributed then
  if args.dataset ~= "fashion-mnist" then
    parser:error("--distributed trains the Fashion-MNIST lesson only (--dataset fashion-mnist)")
  end
  args.lr = args.lr or 1e-3 -- Adam's, as the lesson's
  os.exit(require("lunet.dist_session").main(args))
end

local function die(msg)
  io.stderr:write("gpu_vs_cpu.lua: ", msg, "\n")
  os.exit(1)
end

-- Everything that can be checked is checked before any training starts.
if args.devices:match("^%s*$") then
  parser:error("--devices: no device named in '" .. args.devices .. "': name them (cpu, cuda, cuda:N), or all")
end
local devices, why = session.resolve_devices(args.devices)
if not devices then parser:error("--devices: " .. why) end
local writable, werr = report.prepare_dir(args.out)
if not writable then die("--out: " .. werr) end
local compared = {}
for _, file in ipairs(args.compare or {}) do
  local entries, cerr = report.load_compared(cli.absolute(file))
  if not entries then die("--compare: " .. cerr) end
  for _, e in ipairs(entries) do compared[#compared + 1] = e end
end
if args.threads then lunet.set_num_threads(args.threads) end
args.threads = lunet.get_num_threads()
args.eval_batch_size = args.eval_batch_size or args.batch_size
if args.eval_max_batches == nil then args.eval_max_batches = args.max_batches end
if args.eval_max_batches == 0 then args.eval_max_batches = nil end

local gpu_ok, gpu_reason = lunet.cuda_available()
if not gpu_ok then
  print(("No GPU available (%s): running the CPU part only; results.json has the full reason.")
    :format(report.short_reason(gpu_reason)))
end

--- The dataset's error, in the script's terms: the option is --data.
local function data_error(err)
  err = tostring(err):gsub("%(or pass root=DIR%)", "(or pass --data DIR)"):gsub("pass root=DIR", "pass --data DIR")
  return (args.data and ("--data " .. args.data .. ": ") or "") .. err
end
-- The dataset, the model and the training recipe of each lesson.
local CIFAR_MEAN, CIFAR_STD = { 0.4914, 0.4822, 0.4465 }, { 0.2470, 0.2435, 0.2616 }
local IMAGENET_MEAN, IMAGENET_STD = { 0.485, 0.456, 0.406 }, { 0.229, 0.224, 0.225 }
local T = lunet.transforms
local recipe, train, test, image_shape
print(("Loading %s%s ..."):format(args.dataset, args.data and (" from " .. args.data) or ""))
interrupt_guard.doing, interrupt_guard.tty = "loading the data", session.stdout_is_tty()
local function load(fn, opts)
  local ok, ds = pcall(fn, opts)
  if not ok and cli.is_interrupt(ds) then error(ds, 0) end -- on to cli.main: one line, exit 130
  if not ok then die(data_error(ds)) end
  return ds
end
if args.dataset == "fashion-mnist" then
  train = load(lunet.datasets.fashion_mnist, { split = "train", root = args.data })
  test = load(lunet.datasets.fashion_mnist, { split = "test", root = args.data })
  image_shape = { 1, 28, 28 }
  recipe = { model = "fashion_alexnet", optimizer = "adam", lr = args.lr or 1e-3 }
elseif args.dataset == "cifar10" then
  train = load(lunet.datasets.cifar10, { split = "train", root = args.data })
  test = load(lunet.datasets.cifar10, { split = "test", root = args.data })
  image_shape = { 3, 32, 32 }
  -- ResNet-9's recipe peaks at 0.4 for batches of 512 (mean loss); other batch sizes scale linearly
  recipe = { model = "cifar_resnet", optimizer = "sgd", lr = args.lr or math.min(0.8, 0.4 * args.batch_size / 512),
    train_transform = function() return { T.RandomCrop(32, { padding = 4 }), T.RandomHorizontalFlip(0.5),
      T.Normalize(CIFAR_MEAN, CIFAR_STD) } end,
    test_transform = function() return { T.Normalize(CIFAR_MEAN, CIFAR_STD) } end,
    augmentation = "random 32x32 crop of the image padded by 4, horizontal flip (p 0.5), normalised per channel" }
else
  if not args.data then parser:error("--dataset image-folder needs --data DIR (DIR/train/<class>/<image>)") end
  local size = { args.image_size, args.image_size }
  local has = {}
  local ok_list, entries = pcall(lunet.list_dir, args.data)
  if not ok_list then die(tostring(entries)) end
  for _, e in ipairs(entries) do has[e.name] = e.kind == "dir" end
  local test_split = has.val and "val" or (has.test and "test" or nil)
  local train_split = has.train and "train" or nil
  train = load(lunet.datasets.image_folder, { root = args.data, split = train_split, size = size })
  test = load(lunet.datasets.image_folder, { root = args.data, split = train_split and test_split or nil,
    size = size })
  image_shape = { 3, args.image_size, args.image_size }
  recipe = { model = "alexnet", optimizer = "sgd", lr = args.lr or 0.01, prefetch = args.prefetch,
    train_transform = function() return { T.RandomHorizontalFlip(0.5), T.Normalize(IMAGENET_MEAN, IMAGENET_STD) } end,
    test_transform = function() return { T.Normalize(IMAGENET_MEAN, IMAGENET_STD) } end,
    augmentation = ("scaled and centre-cropped to %dx%d when decoded, horizontal flip (p 0.5), normalised per channel")
      :format(args.image_size, args.image_size) }
  if not (train_split and test_split) then
    recipe.note = "no train/ and val/ sub-folders: the test set is the training folder itself"
  end
end
-- a batch larger than its set would quietly be the whole set
if args.batch_size > #train then
  parser:error(("--batch-size must be an integer from 1 to %d (the training set's size), got %d")
    :format(#train, args.batch_size))
end
if args.eval_batch_size > #test then
  parser:error(("--eval-batch-size must be an integer from 1 to %d (the test set's size), got %d%s")
    :format(#test, args.eval_batch_size, args.eval_batch_size == args.batch_size
      and " (it defaults to --batch-size)" or ""))
end
recipe.model = args.model or recipe.model
local num_classes = #train.classes
local builders = {
  fashion_alexnet = function() return lunet.models.fashion_alexnet(num_classes) end,
  cifar_resnet = function()
    return lunet.models.cifar_resnet({ width = args.width, num_classes = num_classes, in_channels = image_shape[1] })
  end,
  alexnet = function() return lunet.models.alexnet({ num_classes = num_classes }) end,
}
local build_model = builders[recipe.model]
local steps_per_epoch = math.ceil(#train / args.batch_size)
if args.max_batches then steps_per_epoch = math.min(steps_per_epoch, args.max_batches) end
if recipe.optimizer == "adam" then
  recipe.description = ("Adam (lr %g)"):format(recipe.lr)
else
  recipe.description = ("SGD with nesterov momentum 0.9 and weight decay 5e-4, OneCycleLR (peak lr %g, " ..
    "30%% warm-up, cosine, %d steps)"):format(recipe.lr, args.epochs * steps_per_epoch)
end

--- The optimizer and scheduler of the recipe, for `model`.
local function make_optimizer(model)
  if recipe.optimizer == "adam" then return lunet.optim.Adam(model, { lr = recipe.lr }) end
  local opt = lunet.optim.SGD(model, { lr = recipe.lr, momentum = 0.9, nesterov = true, weight_decay = 5e-4 })
  return opt, lunet.optim.OneCycleLR(opt, { max_lr = recipe.lr, total_steps = args.epochs * steps_per_epoch })
end

-- The model: built on the CPU from the seed, the same weights for every device.
interrupt_guard.doing = "building the model"
print(("Building the model %s for %s images ..."):format(recipe.model, table.concat(image_shape, "x")))
local probe = session.fresh_model(args.seed, build_model)
local probe_ok, probe_err = pcall(function()
  probe:eval():forward(lunet.zeros({ 1, table.unpack(image_shape) }))
end)
if not probe_ok then
  die(("the model %s does not take %s images: %s"):format(recipe.model, table.concat(image_shape, "x"),
    tostring(probe_err)))
end
local forward_flops = bench.model_flops(probe, image_shape)
local model_info = {
  name = recipe.model,
  parameters = bench.parameter_count(probe),
  forward_flops_per_image = forward_flops,
  train_flops_factor = bench.TRAIN_FLOPS_FACTOR,
  train_flops_per_image = forward_flops * bench.TRAIN_FLOPS_FACTOR,
  flop_convention = "convolution and linear layers only, a multiply-add = 2 FLOPs; " ..
    "training = 3 x forward (forward, input gradients, weight gradients)",
}
probe = nil

local tty = session.stdout_is_tty()

-- Where the session is, for the report of a Ctrl-C: the device, the phase,
-- the epoch, the training steps done in it, and the device's result so far.
local position = {}

local function run_device(name)
  local dev = lunet.device(name)
  local result = { device = name, info = dev:info(), status = "ok" }
  position = { device = name, phase = "setup", result = result }
  local model = session.fresh_model(args.seed, build_model):to(dev)
  local criterion = lunet.nn.CrossEntropyLoss()
  local optimizer, scheduler = make_optimizer(model)
  local optimizer_step = optimizer.step -- counts the steps, for "interrupted at epoch E, batch B"
  optimizer.step = function(...)
    position.batch = (position.batch or 0) + 1
    return optimizer_step(...)
  end
  local train_loader = lunet.data.DataLoader(train, { batch_size = args.batch_size, shuffle = true,
    seed = args.seed, device = dev, mode = args.data_mode, prefetch = recipe.prefetch,
    transform = recipe.train_transform and recipe.train_transform() })
  local test_loader = lunet.data.DataLoader(test, { batch_size = args.eval_batch_size, device = dev,
    mode = args.data_mode, prefetch = recipe.prefetch, transform = recipe.test_transform and recipe.test_transform() })
  local progress = session.progress({ tty = tty, label = name })

  if args.warmup_batches > 0 then -- in a shuffle order of its own (the epoch after the last)
    position.phase, position.batch = "warm-up", 0
    -- a line before every phase that can take long (decoding an image folder's first batches)
    print(("[%s] warm-up: %s ..."):format(name, cli.plural(args.warmup_batches, "untimed training step")))
    -- the final partial batch, when the timed epochs reach it
    local partial = #train % args.batch_size
    if args.max_batches and args.max_batches < #train_loader then partial = 0 end
    result.warmup = session.warm_up({ model = model, criterion = criterion, optimizer = optimizer,
      loader = train_loader, epoch = args.epochs + 1, steps = args.warmup_batches,
      partial = partial, device = dev })
    print(("[%s] warm-up done: %s (batch sizes %s) in %s; weights and optimizer state restored"):format(
      name, cli.plural(result.warmup.steps, "step"), table.concat(result.warmup.batch_sizes, ", "),
      report.format_seconds(result.warmup.seconds)))
  end
  local epochs, total_seconds, total_images, data_wait = {}, 0, 0, 0
  result.training = { epochs = epochs } -- what an interrupted run keeps
  print(("[%s] training: %s of %s batches of %d%s"):format(name, cli.plural(args.epochs, "epoch"),
    math.min(#train_loader, args.max_batches or math.huge), args.batch_size,
    tty and "" or " (a line per epoch)"))
  for epoch = 1, args.epochs do
    position.phase, position.epoch, position.batch = "training", epoch, 0
    local e = session.train_epoch({ model = model, criterion = criterion, optimizer = optimizer,
      loader = train_loader, epoch = epoch, epochs = args.epochs, max_batches = args.max_batches,
      device = dev, progress = progress, scheduler = scheduler })
    progress:epoch_done(e, args.epochs)
    epochs[epoch] = e
    total_seconds = total_seconds + e.seconds
    total_images = total_images + e.images
    data_wait = data_wait + e.data_wait_seconds
  end
  result.training = {
    epochs = epochs, seconds = total_seconds, images = total_images,
    images_per_second = total_images / total_seconds,
    gflops = total_images * model_info.train_flops_per_image / total_seconds / 1e9,
    final_loss = epochs[#epochs].mean_loss,
    upload_seconds = train_loader.upload_seconds + test_loader.upload_seconds,
    data_wait_seconds = data_wait,
    -- the step waited for decoding more than a tenth of the time: the data path is the bottleneck
    data_bound = data_wait > 0.1 * total_seconds,
  }
  if result.training.data_bound then
    print(("[%s] data-bound: the training loop waited %s of %s for images to be decoded (--prefetch, " ..
      "more CPU threads, or smaller images help)"):format(name, report.format_seconds(data_wait),
      report.format_seconds(total_seconds)))
  end
  -- the data path alone, beside the step: the same batches, no training
  print(("[%s] timing the training loader alone (no step) ..."):format(name))
  local rate = session.loader_rate(train_loader, dev, args.epochs + 2, args.max_batches)
  result.loader = { images_per_second = rate.images_per_second, seconds = rate.seconds, images = rate.images,
    transform_where = train_loader.transform_where, prefetch = train_loader.files and train_loader.prefetch or nil,
    training_ratio = rate.images_per_second / result.training.images_per_second }
  print(("[%s] loader alone: %.0f img/s (%.1fx the training rate of %.0f img/s)%s"):format(name,
    rate.images_per_second, result.loader.training_ratio, result.training.images_per_second,
    train_loader.transform_where and (", augmentation on " .. train_loader.transform_where) or ""))

  position.phase = "test accuracy"
  print(("[%s] measuring test accuracy ..."):format(name))
  local correct, total = session.accuracy(model, test_loader, args.eval_max_batches)
  result.accuracy = { correct = correct, total = total, accuracy = correct / total }
  print(("[%s] test accuracy %.2f%% (%d/%d)"):format(name, 100 * correct / total, correct, total))

  position.phase = "timed inference"
  print(("[%s] timing inference: a warm-up pass, then %s ..."):format(name,
    cli.plural(args["repeat"], "timed pass", "timed passes")))
  local images = 0
  local timing = bench.time(function()
    images = session.inference_pass(model, test_loader, args.eval_max_batches)
  end, { device = dev, warmup = 1, ["repeat"] = args["repeat"] })
  result.inference = {
    images = images, batch_size = args.eval_batch_size,
    warmup_seconds = timing.warmup_times[1],
    median_seconds = timing.median, min_seconds = timing.min, max_seconds = timing.max,
    times = timing.times,
    images_per_second = images / timing.median,
    gflops = images * model_info.forward_flops_per_image / timing.median / 1e9,
  }
  print(("[%s] inference: %s per pass of %d images (min %s, max %s; warm-up %s), %.0f img/s, %.1f GFLOP/s"):format(
    name, report.format_seconds(timing.median), images, report.format_seconds(timing.min),
    report.format_seconds(timing.max), report.format_seconds(timing.warmup_times[1]),
    result.inference.images_per_second, result.inference.gflops))
  -- the yardstick for the achieved rates: the device's own matrix-product rate
  position.phase = "sgemm rate"
  print(("[%s] measuring the sgemm rate (%dx%dx%d product) ..."):format(name, args.sgemm_size, args.sgemm_size,
    args.sgemm_size))
  result.sgemm = bench.sgemm_rate(dev, args.sgemm_size)
  result.training.sgemm_share = result.training.gflops / result.sgemm.gflops_best
  result.inference.sgemm_share = result.inference.gflops / result.sgemm.gflops_best
  print(("[%s] sgemm rate %.1f GFLOP/s (%s, best of %d; median %.1f): training at %.0f%% of it, "
    .. "inference at %.0f%%"):format(name, result.sgemm.gflops_best, result.sgemm.what,
    result.sgemm["repeat"], result.sgemm.gflops, 100 * result.training.sgemm_share,
    100 * result.inference.sgemm_share))
  if dev.type == "cuda" then
    local ok, stats = pcall(lunet.cuda.memory_stats, dev)
    if ok then result.gpu_memory = stats end
  end
  train_loader:free()
  test_loader:free()
  return result
end

local results = {
  schema = "lunet.gpu_vs_cpu/1",
  arguments = {
    devices = devices, epochs = args.epochs, batch_size = args.batch_size,
    eval_batch_size = args.eval_batch_size, lr = recipe.lr, max_batches = args.max_batches,
    eval_max_batches = args.eval_max_batches, warmup_batches = args.warmup_batches,
    sgemm_size = args.sgemm_size, dataset = args.dataset, model = recipe.model,
    ["repeat"] = args["repeat"], data_mode = args.data_mode, threads = args.threads, seed = args.seed,
    data = args.data, out = args.out, precision = args.precision,
  },
  environment = bench.environment(devices),
  dataset = { name = train.name or args.dataset, root = train.root, train_images = #train, test_images = #test,
    image_shape = image_shape, classes = num_classes, skipped_images = train.skipped },
  recipe = { optimizer = recipe.description, augmentation = recipe.augmentation, note = recipe.note },
  model = model_info,
  gpu_available = gpu_ok and true or false,
  gpu_unavailable_reason = not gpu_ok and gpu_reason or nil,
  devices = {},
  compared = compared,
}
results.inference_images = args.eval_max_batches
  and math.min(#test, args.eval_max_batches * args.eval_batch_size) or #test

--- "on cpu, training epoch 2, batch 5 (4 steps of it done)"
local function where(p)
  if p.phase == "training" then
    return ("on %s, training epoch %d, batch %d (%d steps of it done)"):format(p.device, p.epoch,
      (p.batch or 0) + 1, p.batch or 0)
  end
  return ("on %s, %s"):format(p.device, p.phase)
end

local interrupted
interrupt_guard.doing = "between two devices" -- the loop below handles a Ctrl-C inside a device's run
for i, name in ipairs(devices) do
  position = { device = name, phase = "setup" } -- a Ctrl-C before run_device's first line: not the last device's result
  local ok, result = pcall(function()
    print(("== %s: %s"):format(name, lunet.device(name):info().name))
    return run_device(name)
  end)
  if not ok and cli.is_interrupt(result) then
    -- Ctrl-C: stop the whole session; keep what finished (earlier devices,
    -- this device's finished epochs), marked as such
    if tty then io.stdout:write("\n") end
    interrupted = { at = where(position), device = name, phase = position.phase, epoch = position.epoch,
      batch = position.phase == "training" and (position.batch or 0) + 1 or nil,
      devices_not_run = { table.unpack(devices, i + 1) } }
    print("Interrupted (Ctrl-C) " .. interrupted.at .. ": stopping the session.")
    result = position.result or { device = name }
    result.status = "interrupted"
    result.error = "interrupted (Ctrl-C) " .. interrupted.at
    results.devices[#results.devices + 1] = result
    break
  end
  if not ok then
    if tty then io.stdout:write("\n") end
    print(("[%s] FAILED: %s (the other devices' results are kept)"):format(name, tostring(result)))
    result = { device = name, status = "failed", error = tostring(result) }
    pcall(function() result.info = lunet.device(name):info() end)
  end
  results.devices[#results.devices + 1] = result
  -- freeing the device's memory takes a moment: a Ctrl-C then stops the session, keeping this device
  local freed, gc_err = pcall(function() collectgarbage() collectgarbage() end)
  if not freed and cli.is_interrupt(gc_err) then
    if tty then io.stdout:write("\n") end
    interrupted = { at = ("on %s, after its run finished"):format(name), device = name, phase = "done",
      devices_not_run = { table.unpack(devices, i + 1) } }
    print("Interrupted (Ctrl-C) " .. interrupted.at .. ": stopping the session.")
    break
  end
end

results.interrupted = interrupted
-- an interrupted run goes to files of its own (results.interrupted.json, ...):
-- never over a complete report
interrupt_guard.doing = "writing the results"
interrupt_guard.kept = ("the %sfiles in %s may be part this run's, part an earlier one's")
  :format(interrupted and "*.interrupted.* " or "", args.out)
local written_ok, paths = pcall(report.write_session, results, args.out,
  { suffix = interrupted and ".interrupted" or nil })
if not written_ok and cli.is_interrupt(paths) then error(paths, 0) end
if not written_ok then die(tostring(paths)) end

print()
if #results.speedups == 0 then
  print(report.speedup_lines(results, "training")[1])
else
  for _, line in ipairs(report.speedup_lines(results, "training")) do print("training:  " .. line) end
  for _, line in ipairs(report.speedup_lines(results, "inference")) do print("inference: " .. line) end
end
print("wrote " .. table.concat(paths, ", "))
if interrupted then
  print("The session was interrupted: these files hold the partial results; " ..
    "a complete report in that folder is left as it was.")
  os.exit(130)
end
local failed = 0
for _, r in ipairs(results.devices) do if r.status ~= "ok" then failed = failed + 1 end end
os.exit(failed == #results.devices and 1 or 0)
end) -- cli.main
