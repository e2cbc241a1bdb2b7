#!/usr/bin/env lua5.4
--- The data path against the training step (issue 17): images/s of the
-- DataLoader alone (gather, scale, augment; no step) beside images/s of the
-- training step, on the CPU.
--   cifar:  CIFAR-10-sized images in memory, RandomCrop(32, padding 4) +
--           RandomHorizontalFlip + Normalize, against lunet.models.cifar_resnet
--           (ResNet-9, --width 64) training steps (SGD nesterov).
--   folder: JPEG files of --jpeg-size (Imagenette-like photos), decoded,
--           scaled and centre-cropped to 224 on --decode-threads threads,
--           against lunet.models.alexnet training steps.
-- Every rate is the median of --repeat runs; warm-up runs are not timed.
--
--   lua5.4 bench/data_bench.lua [--threads 2] [--batch 64] [--loader-batch 512]
--        [--repeat 5] [--width 64] [--what cifar|folder|both] [--decode-threads 2]
local lunet = require("lunet")

local args = { threads = nil, batch = 64, ["loader-batch"] = 512, ["repeat"] = 5, width = 64,
  what = "both", ["decode-threads"] = nil, ["jpeg-size"] = 400, images = 10000, steps = 3 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-(.+)$")
  if not key then error("usage: see the top of bench/data_bench.lua") end
  args[key] = key == "what" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  i = i + 2
end
if args.threads then lunet.set_num_threads(args.threads) end
local T = lunet.transforms

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

--- Median images/s of fn() (which returns the images it handled), after one warm-up.
local function rate(fn, repeats)
  fn()
  local r = {}
  for k = 1, repeats do
    local t0 = lunet.clock()
    local n = fn()
    r[k] = n / (lunet.clock() - t0)
  end
  return median(r)
end

local function train_rate(model, shape, batch, steps, repeats)
  local opt = lunet.optim.SGD(model, { lr = 0.01, momentum = 0.9, nesterov = true })
  local crit = lunet.nn.CrossEntropyLoss()
  local x = lunet.rand({ batch, table.unpack(shape) })
  local labels = {}
  for j = 1, batch do labels[j] = (j * 7) % 10 + 1 end
  local y = lunet.tensor(labels, { dtype = "int32" })
  return rate(function()
    for _ = 1, steps do
      opt:zero_grad()
      local out = model:forward(x)
      crit:forward(out, y)
      model:backward(x, crit:backward(out, y))
      opt:step()
    end
    return steps * batch
  end, repeats)
end

local info = lunet.device("cpu"):info()
print(("cpu: %s, %d threads, load %s"):format(info.name, lunet.get_num_threads(),
  (io.open("/proc/loadavg") and io.open("/proc/loadavg"):read("l") or "?")))

if args.what == "cifar" or args.what == "both" then
  lunet.manual_seed(1)
  local labels = {}
  for j = 1, args.images do labels[j] = (j - 1) % 10 + 1 end
  local ds = { images = (lunet.rand({ args.images, 3, 32, 32 }) * 255):to("uint8"),
    labels = lunet.tensor(labels, { dtype = "int32" }) }
  local function loader_rate(transform)
    local loader = lunet.data.DataLoader(ds, { batch_size = args["loader-batch"], shuffle = true, seed = 1,
      transform = transform })
    local e = 0
    return rate(function()
      e = e + 1
      local n = 0
      for x in loader:iter(e) do n = n + x:size(1) end
      return n
    end, args["repeat"])
  end
  local plain = loader_rate(nil)
  local augmented = loader_rate({ T.RandomCrop(32, { padding = 4 }), T.RandomHorizontalFlip(0.5),
    T.Normalize({ 0.4914, 0.4822, 0.4465 }, { 0.2470, 0.2435, 0.2616 }) })
  lunet.manual_seed(2)
  local model = lunet.models.cifar_resnet({ width = args.width })
  local train = train_rate(model, { 3, 32, 32 }, args.batch, args.steps, args["repeat"])
  print(("cifar: loader %.0f img/s plain, %.0f img/s with crop+flip+normalize (batch %d); " ..
    "ResNet-9 (width %d) training %.1f img/s (batch %d): loader/training = %.0fx")
    :format(plain, augmented, args["loader-batch"], args.width, train, args.batch, augmented / train))
end

if args.what == "folder" or args.what == "both" then
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir .. "/a " .. dir .. "/b")
  lunet.manual_seed(3)
  local n = 64
  -- smooth photos-like content compresses like a photo (noise would not)
  local base = lunet.rand({ 3, 8, 8 })
  for j = 1, n do
    local h, w = args["jpeg-size"] * 3 // 4, args["jpeg-size"]
    local img = lunet.empty({ 3, h, w })
    img:uniform(0, 1)
    img = (img * 30 + 100 + j):to("uint8")
    lunet.image_write(("%s/%s/%03d.jpg"):format(dir, j % 2 == 0 and "a" or "b", j), img, { quality = 90 })
  end
  local ds = lunet.datasets.image_folder({ root = dir, size = { 224, 224 }, threads = args["decode-threads"] })
  local loader = lunet.data.DataLoader(ds, { batch_size = 32, prefetch = 2 })
  local decode = rate(function()
    local m = 0
    for x in loader:iter() do m = m + x:size(1) end
    return m
  end, args["repeat"])
  lunet.manual_seed(4)
  local model = lunet.models.alexnet({ num_classes = 10 })
  local train = train_rate(model, { 3, 224, 224 }, 16, 1, math.min(3, args["repeat"]))
  print(("folder: %dx%d JPEGs decoded+resized to 224x224 at %.0f img/s (%d decode threads); AlexNet-224 " ..
    "training %.1f img/s (batch 16): loader/training = %.0fx"):format(args["jpeg-size"], args["jpeg-size"] * 3 // 4,
    decode, ds.threads, train, decode / train))
  os.execute("rm -rf " .. dir)
end
