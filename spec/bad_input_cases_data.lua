--- Bad-input cases for the data and training additions of issue 17 (and the
-- ResNet modules and schedulers of issue 13 that it owns): transforms, image
-- folders and image files, LR schedulers, AdaptiveAvgPool2d, Residual,
-- models. Same form as spec/bad_input_cases.lua, which appends these.
local lunet = require("lunet")
local nn = lunet.nn
local T = lunet.transforms

local cases = {}
local function case(api, what, run, ...)
  cases[#cases + 1] = { api = api, what = what, run = run, expect = { ... } }
end

local function dataset(n)
  return { images = lunet.zeros({ n or 6, 3, 8, 8 }, { dtype = "uint8" }),
    labels = lunet.ones({ n or 6 }, { dtype = "int32" }) }
end
local function sgd() return lunet.optim.SGD(nn.Linear(2, 2), { lr = 0.1 }) end

-- transforms
case("transforms.RandomCrop", "a size of zero", function() T.RandomCrop(0) end,
  "lunet.transforms.RandomCrop", "size must be at least 1")
case("transforms.RandomCrop", "a negative padding", function() T.RandomCrop(4, { padding = -1 }) end,
  "lunet.transforms.RandomCrop", "padding must be at least 0")
case("transforms.RandomCrop", "a crop larger than the padded image", function()
  lunet.data.DataLoader(dataset(), { transform = { T.RandomCrop(20, { padding = 2 }) } })
end, "lunet.data.DataLoader: transform 1: lunet.transforms.RandomCrop", "a 20x20 crop does not fit in images [6, 3, 8, 8] padded by 2")
case("transforms.RandomCrop", "called on a matrix", function() T.RandomCrop(2)(lunet.zeros({ 4, 4 })) end,
  "lunet.transforms.RandomCrop", "expected an image [C, H, W] or a batch [N, C, H, W], got [4, 4]")
case("transforms.RandomHorizontalFlip", "p outside [0, 1]", function() T.RandomHorizontalFlip(1.5) end,
  "lunet.transforms.RandomHorizontalFlip", "p must be a probability in [0, 1], got 1.5")
case("transforms.RandomHorizontalFlip", "a string for a tensor", function() T.RandomHorizontalFlip()("x") end,
  "lunet.transforms.RandomHorizontalFlip", "expected a tensor, got string")
case("transforms.Normalize", "a zero std", function() T.Normalize({ 0.5 }, { 0 }) end,
  "lunet.transforms.Normalize", "std[1] must be positive, got 0")
case("transforms.Normalize", "means for the wrong number of channels", function()
  lunet.data.DataLoader(dataset(), { transform = { T.Normalize({ 1, 2 }, { 1, 1 }) } })
end, "lunet.data.DataLoader: transform 1: lunet.transforms.Normalize: 2 means and stds for images with 3 channels")
case("DataLoader transform=", "transforms on flat rows", function()
  lunet.data.DataLoader({ images = lunet.zeros({ 4, 6 }, { dtype = "uint8" }),
    labels = lunet.ones({ 4 }, { dtype = "int32" }) }, { transform = { T.RandomHorizontalFlip() } })
end, "lunet.data.DataLoader: transforms need images {C, H, W}")
case("DataLoader transform=", "a function that returns nothing", function()
  for _ in lunet.data.DataLoader(dataset(), { transform = function() end }):iter() do end
end, "lunet.data.DataLoader", "the function returned nothing")
case("DataLoader transform=", "a negative prefetch", function() lunet.data.DataLoader(dataset(), { prefetch = -1 }) end,
  "lunet.data.DataLoader", "prefetch must be at least 0")

-- image folders and files
case("datasets.image_folder", "no root", function() lunet.datasets.image_folder({ size = 8 }) end,
  "lunet.datasets.image_folder", "root must be a directory name")
case("datasets.image_folder", "a missing folder", function(c)
  lunet.datasets.image_folder({ root = c.dir .. "/nope", size = 8 })
end, "lunet.datasets.image_folder", "/nope: cannot list")
case("datasets.image_folder", "a size of {0, 4}", function(c) lunet.datasets.image_folder({ root = c.dir, size = { 0, 4 } }) end,
  "lunet.datasets.image_folder", "size must be {H, W}")
case("datasets.image_folder", "a class with a text file named .jpg", function(c)
  assert(os.execute("mkdir " .. c.dir .. "/cls"))
  c.write("cls/a.jpg", "not a jpeg")
  lunet.datasets.image_folder({ root = c.dir, size = 8 })
end, "lunet.datasets.image_folder", "/cls/a.jpg: not a JPEG or PNG image")
case("datasets.image_folder", "no class folders", function(c) lunet.datasets.image_folder({ root = c.dir, size = 8 }) end,
  "lunet.datasets.image_folder", "has no class folders")
case("lunet.image_load", "a PNG cut off inside its header", function(c)
  lunet.image_load(c.write("t.png", "\137PNG\r\n\26\n\0\0\0\13IHDR\0\0"), 4, 4)
end, "lunet.image_load", "t.png: corrupt PNG: no IHDR chunk after the signature")
case("lunet.image_load", "a directory", function(c) lunet.image_load(c.dir, 4, 4) end,
  "lunet.image_load", "not a regular file")
case("lunet.image_load", "a size of zero", function(c) lunet.image_load(c.dir .. "/x.png", 0, 4) end,
  "lunet.image_load", "height")
case("lunet.image_probe", "an empty file", function(c) lunet.image_probe(c.write("e.jpg", "")) end,
  "lunet.image_probe", "empty file")
case("lunet.image_write", "a float tensor", function(c) lunet.image_write(c.dir .. "/f.png", lunet.zeros({ 3, 2, 2 })) end,
  "lunet.image_write", "expected a contiguous uint8 CPU tensor")
case("lunet.list_dir", "a missing folder", function(c) lunet.list_dir(c.dir .. "/none") end,
  "lunet.list_dir", "cannot list")

-- schedulers
case("optim.StepLR", "no step_size", function() lunet.optim.StepLR(sgd(), {}) end,
  "lunet.optim.StepLR", "option 'step_size' is required")
case("optim.StepLR", "a model for an optimizer", function() lunet.optim.StepLR(nn.Linear(2, 2), { step_size = 2 }) end,
  "lunet.optim.StepLR", "expected an optimizer")
case("optim.CosineAnnealingLR", "a negative eta_min", function()
  lunet.optim.CosineAnnealingLR(sgd(), { t_max = 3, eta_min = -1 })
end, "lunet.optim.CosineAnnealingLR", "eta_min must be >= 0")
case("optim.OneCycleLR", "pct_start above 1", function()
  lunet.optim.OneCycleLR(sgd(), { max_lr = 1, total_steps = 4, pct_start = 2 })
end, "lunet.optim.OneCycleLR", "pct_start must be in [0, 1]")
case("sched:step", "past total_steps", function()
  local s = lunet.optim.OneCycleLR(sgd(), { max_lr = 1, total_steps = 1 })
  s:step()
  s:step()
end, "lunet.optim.OneCycleLR:step", "past total_steps 1")

-- modules and models
case("nn.AdaptiveAvgPool2d", "output size 2", function() nn.AdaptiveAvgPool2d(2) end,
  "lunet.nn.AdaptiveAvgPool2d", "only output_size 1")
case("nn.AdaptiveAvgPool2d", "a 2-D input", function() nn.AdaptiveAvgPool2d(1):forward(lunet.zeros({ 3, 4 })) end,
  "lunet.nn.AdaptiveAvgPool2d:forward", "expected input [N, C, H, W], got [3, 4]")
case("nn.AdaptiveAvgPool2d", "backward before forward", function()
  nn.AdaptiveAvgPool2d(1):backward(lunet.zeros({ 1, 1, 2, 2 }), lunet.zeros({ 1, 1, 1, 1 }))
end, "lunet.nn.AdaptiveAvgPool2d:backward", "call forward before backward")
case("nn.Residual", "a block that changes the shape", function()
  nn.Residual(nn.Linear(4, 2)):forward(lunet.zeros({ 3, 4 }))
end, "lunet.nn.Residual:forward", "the block's output [3, 2] must have the input's shape [3, 4]")
case("nn.Residual", "a number for a block", function() nn.Residual(5) end,
  "lunet.nn.Residual", "expected a module as the block, got number")
case("nn.Residual", "backward before forward", function()
  nn.Residual(nn.ReLU()):backward(lunet.zeros({ 2 }), lunet.zeros({ 2 }))
end, "lunet.nn.Residual:backward", "call forward before backward")
case("models.cifar_resnet", "a width of zero", function() lunet.models.cifar_resnet({ width = 0 }) end,
  "lunet.models.cifar_resnet", "width must be a positive integer, got 0")
case("models.alexnet", "32x32 images for AlexNet's 224x224 input", function()
  lunet.models.alexnet({ num_classes = 3 }):forward(lunet.zeros({ 1, 3, 32, 32 }))
end, "lunet.nn.MaxPool2d:forward", "is larger than the input")
case("models.alexnet", "an unknown option", function() lunet.models.alexnet({ classes = 10 }) end,
  "lunet.models.alexnet", "unknown option 'classes'")

return cases
