-- The CIFAR-10 lesson (issue 17): the ResNet-9 of lunet.models trains on
-- generated CIFAR-format data on every device, scripts/gpu_vs_cpu.lua
-- --dataset cifar10 and --dataset image-folder write their report and charts
-- from generated files, and damaged CIFAR files are clear errors.
local cjson = require("cjson")
local helpers = require("helpers")
local xml_check = require("xml_check")
local lunet = require("lunet")

--- CIFAR-10 binary records: label byte, then 3 x 32 x 32 pixels; images of
-- one class share a colour, so a model can learn them.
local function cifar_bytes(n, seed)
  math.randomseed(seed)
  local parts = {}
  for i = 1, n do
    local label = (i - 1) % 10
    parts[#parts + 1] = string.char(label)
    for c = 1, 3 do
      local base = (label * 23 + c * 40) % 200
      local plane = {}
      for p = 1, 1024 do plane[p] = string.char(base + math.random(0, 50)) end
      parts[#parts + 1] = table.concat(plane)
    end
  end
  return table.concat(parts)
end

local function write_cifar(dir, per_batch)
  assert(os.execute("mkdir -p " .. helpers.sh_quote(dir)))
  for b = 1, 5 do helpers.write_file(("%s/data_batch_%d.bin"):format(dir, b), cifar_bytes(per_batch, b)) end
  helpers.write_file(dir .. "/test_batch.bin", cifar_bytes(30, 9))
end

describe("lunet.models", function()
  it("cifar_resnet: ResNet-9 shapes, parameters and FLOPs", function()
    local m = lunet.models.cifar_resnet()
    assert.equal(6573130, require("lunet.bench").parameter_count(m))
    assert.is_true(math.abs(require("lunet.bench").model_flops(m, { 3, 32, 32 }) / 1e9 - 0.7585) < 1e-3)
    local small = lunet.models.cifar_resnet({ width = 4, num_classes = 7 })
    assert.same({ 2, 7 }, small:forward(lunet.randn({ 2, 3, 32, 32 })):shape())
    helpers.assert_error(function() lunet.models.cifar_resnet({ widht = 3 }) end, "unknown option 'widht'")
    helpers.assert_error(function() lunet.models.cifar_resnet({ width = 0 }) end, "width must be a positive integer")
  end)

  it("alexnet: the original five convolutions for 224x224 input", function()
    local m = lunet.models.alexnet({ num_classes = 10 })
    assert.equal(58322314, require("lunet.bench").parameter_count(m))
    assert.same({ 96, 3, 11, 11 }, m[1].weight:shape())
    m:eval()
    assert.same({ 1, 10 }, m:forward(lunet.zeros({ 1, 3, 224, 224 })):shape())
    assert.equal(62378344, require("lunet.bench").parameter_count(lunet.models.alexnet()))
  end)

  it("the CIFAR model's FLOPs and parameters appear in model:summary", function()
    local m = lunet.models.cifar_resnet({ width = 8 })
    assert.equal("function", type(m.summary))
    local text = m:summary({ 3, 32, 32 })
    assert.equal("string", type(text))
    local params = require("lunet.bench").parameter_count(m)
    local digits = tostring(params)
    local grouped = digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
    assert.truthy(text:find(digits, 1, true) or text:find(grouped, 1, true), text)
    -- the forward FLOPs of a batch of one, as m:flops counts them
    local flops = m:flops({ 1, 3, 32, 32 })
    assert.is_true(flops > 0)
    assert.truthy(text:find("Forward FLOPs: " .. flops, 1, true), text)
  end)
end)

describe("the CIFAR-10 model trains on generated data", function()
  local dir
  setup(function()
    dir = helpers.tmpdir()
    write_cifar(dir, 16)
  end)
  teardown(function() helpers.rmdir(dir) end)

  for _, dev in ipairs(helpers.devices()) do
    it("on " .. dev .. ": SGD + nesterov + OneCycleLR with crop and flip, the loss falls", function()
      local train = lunet.datasets.cifar10({ split = "train", root = dir })
      assert.equal(80, #train)
      lunet.manual_seed(1)
      local model = lunet.models.cifar_resnet({ width = 4 }):to(dev)
      local T = lunet.transforms
      local loader = lunet.data.DataLoader(train, { batch_size = 40, shuffle = true, seed = 3, device = dev,
        transform = { T.RandomCrop(32, { padding = 4 }), T.RandomHorizontalFlip(0.5),
          T.Normalize({ 0.49, 0.48, 0.45 }, { 0.25, 0.24, 0.26 }) } })
      local opt = lunet.optim.SGD(model, { lr = 0.05, momentum = 0.9, nesterov = true, weight_decay = 5e-4 })
      local sched = lunet.optim.OneCycleLR(opt, { max_lr = 0.05, total_steps = 12 * #loader })
      local crit = lunet.nn.CrossEntropyLoss()
      local first, last = {}, {}
      for e = 1, 12 do
        for x, y in loader:iter(e) do
          opt:zero_grad()
          local out = model:forward(x)
          local loss = crit:forward(out, y)
          if e == 1 then first[#first + 1] = loss end
          if e == 12 then last[#last + 1] = loss end
          model:backward(x, crit:backward(out, y))
          opt:step()
          sched:step()
        end
      end
      local function mean(t) local s = 0 for _, v in ipairs(t) do s = s + v end return s / #t end
      assert.is_true(mean(last) < 0.6 * mean(first), ("loss %.3f -> %.3f"):format(mean(first), mean(last)))
    end)
  end
end)

describe("damaged CIFAR-10 files", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("truncated, wrong-format (CIFAR-100 labels) and empty batches are clear errors", function()
    local good = cifar_bytes(3, 1)
    local cases = {
      { good:sub(1, #good - 100), "not a whole number of 3073-byte CIFAR-10 records" },
      { "\050" .. good:sub(2), "record 1 has label 50, outside 0..9" },
      { "", "empty file" },
    }
    for _, case in ipairs(cases) do
      helpers.write_file(dir .. "/test_batch.bin", case[1])
      local ok, err = pcall(lunet.datasets.cifar10, { split = "test", root = dir })
      assert.is_false(ok)
      assert.truthy(err:find("lunet.datasets.cifar10", 1, true), err)
      assert.truthy(err:find(dir .. "/test_batch.bin", 1, true), err)
      assert.truthy(err:find(case[2], 1, true), err)
      assert.is_nil(err:find("%.lua:%d+:"), "a source position in the user's message: " .. err)
      assert.is_nil(err:find("lunet.read_cifar", 1, true), err)
    end
  end)
end)

describe("scripts/gpu_vs_cpu.lua on other datasets", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  local function check_outputs(out_dir)
    for _, name in ipairs({ "training_time.svg", "inference_time.svg" }) do
      local svg = assert(helpers.read_file(out_dir .. "/" .. name))
      xml_check.check_svg(svg)
    end
    local json = assert(helpers.read_file(out_dir .. "/results.json"))
    return cjson.decode(json), assert(helpers.read_file(out_dir .. "/report.md"))
  end

  it("--dataset cifar10 with generated files writes the report and charts, naming dataset, model and recipe", function()
    write_cifar(dir .. "/cifar", 20)
    local code, out = helpers.run_script("gpu_vs_cpu.lua", "--dataset cifar10 --data " .. helpers.sh_quote(dir .. "/cifar")
      .. " --devices cpu --width 4 --epochs 2 --batch-size 25 --repeat 1 --sgemm-size 32 --out "
      .. helpers.sh_quote(dir .. "/out"))
    assert.equal(0, code, out)
    assert.truthy(out:find("[cpu] loader alone: ", 1, true), out)
    local results, md = check_outputs(dir .. "/out")
    assert.equal("CIFAR-10", results.dataset.name)
    assert.equal(100, results.dataset.train_images)
    assert.same({ 3, 32, 32 }, results.dataset.image_shape)
    assert.equal("cifar_resnet", results.model.name)
    assert.truthy(results.recipe.optimizer:find("nesterov", 1, true))
    assert.truthy(results.recipe.optimizer:find("OneCycleLR", 1, true))
    assert.truthy(results.recipe.augmentation:find("crop", 1, true))
    local cpu = results.devices[1]
    assert.equal("ok", cpu.status)
    assert.is_true(cpu.loader.images_per_second > 0)
    assert.equal("cpu", cpu.loader.transform_where)
    assert.is_true(cpu.training.epochs[2].mean_loss < cpu.training.epochs[1].mean_loss)
    assert.truthy(md:find("# GPU vs CPU in machine learning: cifar_resnet on CIFAR-10", 1, true), md)
    assert.truthy(md:find("SGD with nesterov momentum", 1, true), md)
    assert.truthy(md:find("Dataset: CIFAR-10", 1, true), md)
    assert.truthy(md:find("the training loader alone", 1, true), md)
  end)

  it("--dataset image-folder trains on a generated folder and reports it", function()
    if not (lunet.image_formats().jpeg and lunet.image_formats().png) then
      pending("lunet built without libjpeg or libpng")
      return
    end
    for _, split in ipairs({ "train", "val" }) do
      for c, class in ipairs({ "ant", "bee" }) do
        local d = ("%s/img/%s/%s"):format(dir, split, class)
        assert(os.execute("mkdir -p " .. helpers.sh_quote(d)))
        for i = 1, 4 do
          lunet.manual_seed(c * 10 + i)
          lunet.image_write(("%s/%d.%s"):format(d, i, i % 2 == 0 and "png" or "jpg"),
            (lunet.rand({ 3, 24, 30 }) * 30 + c * 90):to("uint8"))
        end
      end
    end
    local code, out = helpers.run_script("gpu_vs_cpu.lua", "--dataset image-folder --data "
      .. helpers.sh_quote(dir .. "/img") .. " --model cifar_resnet --width 4 --image-size 32 --devices cpu "
      .. "--epochs 1 --batch-size 4 --repeat 1 --sgemm-size 32 --prefetch 1 --out " .. helpers.sh_quote(dir .. "/out"))
    assert.equal(0, code, out)
    local results, md = check_outputs(dir .. "/out")
    assert.equal("image folder img/train", results.dataset.name)
    assert.equal(8, results.dataset.train_images)
    assert.equal(2, results.dataset.classes)
    assert.equal(1, results.devices[1].loader.prefetch)
    assert.truthy(md:find("image folder img/train", 1, true))
    -- a model that does not fit the image size is refused before training
    code, out = helpers.run_script("gpu_vs_cpu.lua", "--dataset image-folder --data "
      .. helpers.sh_quote(dir .. "/img") .. " --image-size 32 --devices cpu --batch-size 4 --out " .. helpers.sh_quote(dir .. "/out2"))
    assert.equal(1, code, out)
    assert.truthy(out:find("the model alexnet does not take 3x32x32 images", 1, true), out)
  end)
end)
