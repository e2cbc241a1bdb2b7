--- lunet.models: ready-made networks.
local nn = require("lunet.nn")

local models = {}

--- The small AlexNet of the GPU-vs-CPU session, for 1x28x28 images
-- (Fashion-MNIST): two 3x3 convolutions with ReLU and 2x2 max pooling, then
-- two fully connected layers. About 3.3 million parameters.
function models.fashion_alexnet(num_classes)
  num_classes = num_classes or 10
  if math.type(num_classes) ~= "integer" or num_classes < 1 then
    error(("lunet.models.fashion_alexnet: num_classes must be a positive integer, got %s")
      :format(tostring(num_classes)), 2)
  end
  return nn.Sequential(
    nn.Conv2d(1, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 128, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(128 * 7 * 7, 512), nn.ReLU(),
    nn.Linear(512, num_classes))
end

local function check_positive(fname, name, v)
  if math.type(v) ~= "integer" or v < 1 then
    error(("%s: %s must be a positive integer, got %s"):format(fname, name, tostring(v)), 3)
  end
  return v
end

--- Options table with defaults; unknown names are errors.
local function model_options(fname, opts, defaults)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(("%s: expected an options table, got %s"):format(fname, type(opts)), 3)
  end
  for k in pairs(opts) do
    if defaults[k] == nil then
      local known = {}
      for name in pairs(defaults) do known[#known + 1] = name end
      table.sort(known)
      error(("%s: unknown option '%s' (known: %s)"):format(fname, tostring(k), table.concat(known, ", ")), 3)
    end
  end
  local out = {}
  for k, v in pairs(defaults) do
    if opts[k] == nil then out[k] = v else out[k] = check_positive(fname, k, opts[k]) end
  end
  return out
end

--- 3x3 convolution (no bias: the BatchNorm after it has one), BatchNorm, ReLU.
local function conv_bn(c_in, c_out)
  return nn.Conv2d(c_in, c_out, 3, { padding = 1, bias = false }), nn.BatchNorm2d(c_out), nn.ReLU()
end

--- The residual ResNet-9 of the fast CIFAR-10 trainers (David Page's
-- DAWNBench entry, "How to train your ResNet"; airbench's family), for
-- 3x32x32 images:
--   prep   conv-bn-relu 3 -> w
--   layer1 conv-bn-relu w -> 2w, max pool 2, + Residual(2 x conv-bn-relu 2w)
--   layer2 conv-bn-relu 2w -> 4w, max pool 2
--   layer3 conv-bn-relu 4w -> 8w, max pool 2, + Residual(2 x conv-bn-relu 8w)
--   head   global average pool, Linear 8w -> num_classes
-- With w = 64 (6.6 million parameters, 0.76 GFLOP a forward pass) it reaches
-- about 94% on CIFAR-10 in 24 epochs with SGD + nesterov momentum, a one-cycle
-- schedule and crop + flip augmentation; `width` makes smaller ones (tests).
function models.cifar_resnet(opts)
  local fname = "lunet.models.cifar_resnet"
  opts = model_options(fname, opts, { width = 64, num_classes = 10, in_channels = 3 })
  local w = opts.width
  local function block(c)
    local a, b, r = conv_bn(c, c)
    local d, e, f = conv_bn(c, c)
    return nn.Residual(nn.Sequential(a, b, r, d, e, f))
  end
  local layers = {}
  local function add(...)
    for _, m in ipairs({ ... }) do layers[#layers + 1] = m end
  end
  add(conv_bn(opts.in_channels, w))
  add(conv_bn(w, 2 * w))
  add(nn.MaxPool2d(2), block(2 * w))
  add(conv_bn(2 * w, 4 * w))
  add(nn.MaxPool2d(2))
  add(conv_bn(4 * w, 8 * w))
  add(nn.MaxPool2d(2), block(8 * w))
  add(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8 * w, opts.num_classes))
  return nn.Sequential(layers)
end

--- The original AlexNet (Krizhevsky, Sutskever and Hinton, 2012) as one
-- tower, for 3x224x224 input: five convolutions (96 11x11 stride 4, 256
-- 5x5, 384, 384, 256 3x3) with overlapping 3x3 stride-2 max pooling, then
-- 4096-4096-num_classes fully connected layers with dropout 0.5. The local
-- response normalisation of the paper is left out (later work found it adds
-- nothing), and conv1 pads by 2 so that 224 gives 55x55 as in the paper.
-- About 62 million parameters, 2.3 GFLOP a forward pass.
function models.alexnet(opts)
  local fname = "lunet.models.alexnet"
  opts = model_options(fname, opts, { num_classes = 1000 })
  return nn.Sequential(
    nn.Conv2d(3, 96, 11, { stride = 4, padding = 2 }), nn.ReLU(), nn.MaxPool2d(3, 2),
    nn.Conv2d(96, 256, 5, { padding = 2 }), nn.ReLU(), nn.MaxPool2d(3, 2),
    nn.Conv2d(256, 384, 3, { padding = 1 }), nn.ReLU(),
    nn.Conv2d(384, 384, 3, { padding = 1 }), nn.ReLU(),
    nn.Conv2d(384, 256, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(3, 2),
    nn.Flatten(),
    nn.Dropout(0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
    nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
    nn.Linear(4096, opts.num_classes))
end

return models
