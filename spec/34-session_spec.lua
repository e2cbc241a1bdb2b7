-- scripts/gpu_vs_cpu.lua and scripts/batch_sweep.lua, run as a user runs
-- them (a child lua5.4 process), on a few batches: their outputs, and the
-- errors for bad arguments, an unwritable --out and missing or damaged data.
local cjson = require("cjson")
local helpers = require("helpers")
local xml_check = require("xml_check")
local lunet = require("lunet")

local sh_quote, read, have_data = helpers.sh_quote, helpers.read_file, helpers.have_fashion_mnist

--- Runs a script from the checkout with the working tree's Lua files first on
-- the path. Returns exit code, combined output.
local function run_script(script, argv, env)
  return helpers.run_script(script, argv, { env = env })
end

describe("scripts/gpu_vs_cpu.lua", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("runs a quick session on the CPU and writes valid results.json, report.md and charts", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local code, out = run_script("gpu_vs_cpu.lua",
      "--devices cpu --epochs 1 --max-batches 3 --repeat 2 --batch-size 32 --sgemm-size 128 --out "
      .. sh_quote(dir .. "/out"))
    assert.equal(0, code, out)
    -- without a terminal: one line per epoch, no carriage returns
    assert.truthy(out:find("[cpu] epoch 1/1: 3 batches, 96 images", 1, true), out)
    assert.is_nil(out:find("\r", 1, true))
    assert.truthy(out:find("[cpu] test accuracy", 1, true), out)
    local gpu = lunet.cuda_available()
    if not gpu then assert.truthy(out:find("No GPU available (", 1, true), out) end

    local results = cjson.decode((assert(read(dir .. "/out/results.json"))))
    local a = results.arguments
    assert.same({ "cpu" }, a.devices)
    assert.equal(1, a.epochs)
    assert.equal(3, a.max_batches)
    assert.equal(32, a.batch_size)
    assert.equal("seed", a.data_mode)
    local env = results.environment
    assert.equal(lunet.version, env.lunet_version)
    assert.truthy(env.cpu.model and env.cpu.cores and env.cpu.blas and env.cpu.threads)
    assert.truthy(env.date:match("^%d%d%d%d%-%d%d%-%d%dT"))
    assert.equal(60000, results.dataset.train_images)
    assert.is_true(results.model.forward_flops_per_image > 0)
    assert.equal(3 * results.model.forward_flops_per_image, results.model.train_flops_per_image)

    local cpu = results.devices[1]
    assert.equal("cpu", cpu.device)
    assert.equal("ok", cpu.status)
    local tr = cpu.training
    assert.equal(1, #tr.epochs)
    assert.equal(3, tr.epochs[1].batches)
    assert.equal(96, tr.images)
    assert.is_true(tr.seconds > 0)
    assert.is_true(math.abs(tr.images_per_second - 96 / tr.seconds) < 1e-6 * tr.images_per_second)
    assert.is_true(tr.epochs[1].mean_loss > 0 and tr.epochs[1].mean_loss < 10)
    assert.equal(96, cpu.accuracy.total)
    assert.is_true(cpu.accuracy.accuracy >= 0 and cpu.accuracy.accuracy <= 1)
    local inf = cpu.inference
    assert.equal(96, inf.images)
    assert.equal(2, #inf.times)
    assert.is_true(inf.min_seconds <= inf.median_seconds and inf.median_seconds <= inf.max_seconds)
    assert.is_true(inf.warmup_seconds > 0)
    assert.is_true(math.abs(inf.gflops - 96 * results.model.forward_flops_per_image / inf.median_seconds / 1e9)
      < 1e-6 * inf.gflops)

    -- the yardstick: the device's sgemm rate, and the shares of it
    assert.equal(128, cpu.sgemm.n)
    assert.is_true(cpu.sgemm.gflops > 0 and cpu.sgemm.gflops_best >= cpu.sgemm.gflops)
    assert.is_true(math.abs(tr.sgemm_share - tr.gflops / cpu.sgemm.gflops_best) < 1e-6 * tr.sgemm_share)
    assert.is_true(math.abs(inf.sgemm_share - inf.gflops / cpu.sgemm.gflops_best) < 1e-6 * inf.sgemm_share)
    assert.equal(5, cpu.sgemm["repeat"])

    local md = assert(read(dir .. "/out/report.md"))
    assert.truthy(md:find("## Achieved rate against the device's sgemm rate", 1, true))
    assert.truthy(md:find("128x128x128 float32 product", 1, true))
    assert.truthy(md:find("| device | time | images/s | GFLOP/s | of sgemm | final loss | test accuracy |", 1, true), md)
    assert.truthy(md:find("\n| cpu | ", 1, true))
    assert.truthy(md:find("![Training time](training_time.svg)", 1, true), md)
    assert.truthy(md:find("capped at 3 batches", 1, true))
    for _, name in ipairs({ "training_time.svg", "inference_time.svg" }) do
      local doc = assert(read(dir .. "/out/" .. name), name)
      xml_check.check_svg(doc)
      assert.truthy(doc:find(">cpu</text>", 1, true), name)
    end
  end)

  it("can time inference on more test batches than it trains on, after untimed warm-up steps", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local code, out = run_script("gpu_vs_cpu.lua", "--devices cpu --epochs 1 --max-batches 2 "
      .. "--eval-max-batches 5 --warmup-batches 1 --repeat 1 --batch-size 16 --sgemm-size 64 --out "
      .. sh_quote(dir .. "/out"))
    assert.equal(0, code, out)
    local results = cjson.decode((assert(read(dir .. "/out/results.json"))))
    local cpu = results.devices[1]
    assert.equal(1, cpu.warmup.batches, "one warm-up step")
    assert.equal(2, cpu.training.epochs[1].batches, "the timed steps come after it")
    assert.equal(80, cpu.accuracy.total)
    assert.equal(80, cpu.inference.images)
    assert.equal(80, results.inference_images)
    assert.equal(5, results.arguments.eval_max_batches)
    local md = assert(read(dir .. "/out/report.md"))
    assert.truthy(md:find("1 training step before the timed epochs", 1, true), md)
  end)

  it("rejects bad arguments with a clear message before doing any work", function()
    local out_dir = sh_quote(dir .. "/never")
    for _, case in ipairs({
      { "--epochs 0", "--epochs must be at least 1" },
      { "--epochs two", "--epochs must be an integer" },
      { "--batch-size=-4", "--batch-size must be at least 1" },
      { "--lr=-1", "--lr must be a positive number" },
      { "--epochs -1", "--epochs must be at least 1, got -1" },
      { "--threads 999", "--threads must be an integer from 1 to " },
      { "--sgemm-size 100000", "--sgemm-size must be an integer from 16 to 16384" },
      { "--devices ''", "--devices: no device named in ''" },
      { "--data-mode fast", "--data-mode must be one of seed, resident, got \"fast\"" },
      { "--repeat 0", "--repeat must be at least 1" },
      { "--eval-max-batches=-1", "--eval-max-batches must be at least 0" },
      { "--warmup-batches x", "--warmup-batches must be an integer" },
      { "--devices tpu", "device \"tpu\" is not available" },
      { "--no-such-option", "unknown option" },
    }) do
      local code, out = run_script("gpu_vs_cpu.lua", case[1] .. " --out " .. out_dir)
      assert.equal(1, code, case[1] .. ": " .. out)
      assert.truthy(out:find(case[2], 1, true), case[1] .. ": " .. out)
      assert.truthy(out:find("Usage:", 1, true), case[1] .. ": " .. out)
      assert.is_nil(out:find("epoch 1/", 1, true))
    end
    assert.is_nil(read(dir .. "/never/results.json"))
  end)

  it("says when --out cannot be written, before any training", function()
    local f = assert(io.open(dir .. "/a-file", "w"))
    f:close()
    local code, out = run_script("gpu_vs_cpu.lua", "--epochs 1 --max-batches 1 --out " .. sh_quote(dir .. "/a-file/out"))
    assert.equal(1, code, out)
    assert.truthy(out:find("--out: cannot write to the output folder " .. dir .. "/a-file/out: " .. dir
      .. "/a-file is a file, not a folder", 1, true), out)
    assert.is_nil(out:find("epoch", 1, true))
  end)

  it("names a missing or damaged dataset file and says how to get the data", function()
    local code, out = run_script("gpu_vs_cpu.lua", ("--max-batches 1 --data %s --out %s"):format(
      sh_quote(dir), sh_quote(dir .. "/out")))
    assert.equal(1, code, out)
    assert.truthy(out:find("train-images-idx3-ubyte", 1, true), out)
    assert.truthy(out:find("apt-get install dataset-fashion-mnist", 1, true), out)
    local img = assert(io.open(dir .. "/train-images-idx3-ubyte", "wb"))
    img:write("\0\0\8\3" .. string.pack(">I4>I4>I4", 10, 28, 28) .. "short")
    img:close()
    local lab = assert(io.open(dir .. "/train-labels-idx1-ubyte", "wb"))
    lab:write("\0\0\8\1" .. string.pack(">I4", 10) .. ("\1"):rep(10))
    lab:close()
    code, out = run_script("gpu_vs_cpu.lua", ("--max-batches 1 --data %s --out %s"):format(
      sh_quote(dir), sh_quote(dir .. "/out")))
    assert.equal(1, code, out)
    assert.truthy(out:find(dir .. "/train-images-idx3-ubyte: the header says [10, 28, 28]", 1, true), out)
    assert.truthy(out:find("truncated", 1, true), out)
  end)

  it("explains every option in --help and lists devices", function()
    local code, out = run_script("gpu_vs_cpu.lua", "--help")
    assert.equal(0, code, out)
    for _, opt in ipairs({ "--devices", "--epochs", "--batch-size", "--lr", "--max-batches", "--repeat",
      "--data-mode", "--threads", "--seed", "--out", "--list-devices" }) do
      assert.truthy(out:find(opt, 1, true), "--help does not mention " .. opt)
    end
    -- the search order is in the epilog, below the options
    assert.truthy(out:find("the search order below", 1, true), out)
    assert.is_nil(out:find("above", 1, true), out)
    assert.truthy(out:find("--compare", 1, true), out)
    code, out = run_script("gpu_vs_cpu.lua", "--list-devices")
    assert.equal(0, code, out)
    assert.truthy(out:find("^cpu: ") or out:find("\ncpu: "), out)
    assert.truthy(out:find("blas", 1, true), out)
  end)

  it("runs from any directory with no Lua paths set, using the checkout's local build", function()
    local core = helpers.ROOT .. "/.luarocks/lib/lua/5.4/lunet/core.so"
    if not read(core) then
      pending("no project-local build (" .. core .. "): ./scripts/test makes one")
      return
    end
    local p = assert(io.popen(("cd / && env -u LUA_PATH -u LUA_PATH_5_4 -u LUA_CPATH -u LUA_CPATH_5_4 "
      .. "lua5.4 %s --list-devices 2>&1; echo \"__exit=$?\""):format(sh_quote(helpers.ROOT .. "/scripts/gpu_vs_cpu.lua"))))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("__exit=0", 1, true), out)
    assert.truthy(out:find("cpu: ", 1, true), out)
  end)

  it("says how to build lunet when neither an installed lunet nor a local build is found", function()
    local p = assert(io.popen(("LUA_PATH='/nonexistent/?.lua' LUA_CPATH='/nonexistent/?.so' lua5.4 -e %s 2>&1; "
      .. "echo \"__exit=$?\""):format(sh_quote(("assert(loadfile(%q))(%q)"):format(
        helpers.ROOT .. "/scripts/find_lunet.lua", dir)))))
    local out = p:read("a")
    p:close()
    assert.truthy(out:find("__exit=1", 1, true), out)
    assert.truthy(out:find(dir .. " has no build of it", 1, true), out)
    assert.truthy(out:find("./scripts/run", 1, true), out)
  end)
end)

describe("scripts/batch_sweep.lua", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("measures throughput at each batch size and draws the line chart", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local code, out = run_script("batch_sweep.lua",
      "--devices cpu --batch-sizes 16,32 --images 16 --min-steps 1 --out " .. sh_quote(dir))
    assert.equal(0, code, out)
    local sweep = cjson.decode((assert(read(dir .. "/batch_sweep.json"))))
    local points = sweep.devices[1].points
    assert.equal(2, #points)
    assert.equal(16, points[1].batch_size)
    assert.equal(32, points[2].batch_size)
    assert.equal(1, points[1].steps)
    assert.equal(16, points[1].training.images)
    assert.is_true(points[2].inference.images_per_second > 0)
    local elements = xml_check.check_svg(assert(read(dir .. "/batch_sweep.svg")))
    local lines = 0
    for _, el in ipairs(elements) do if el.name == "polyline" then lines = lines + 1 end end
    assert.equal(2, lines)
  end)

  it("rejects bad arguments with a clear message before doing any work", function()
    for _, case in ipairs({
      { "--batch-sizes 16,x", "--batch-sizes: \"x\" is not a positive integer" },
      { "--batch-sizes 0", "--batch-sizes: \"0\" is not a positive integer" },
      { "--lr abc", "--lr must be a positive number" },
      { "--lr 0", "--lr must be a positive number" },
      { "--images 0", "--images must be at least 1" },
      { "--repeat x", "--repeat must be an integer" },
      { "--devices tpu", "device \"tpu\" is not available" },
    }) do
      local code, out = run_script("batch_sweep.lua", case[1] .. " --out " .. sh_quote(dir .. "/never"))
      assert.equal(1, code, case[1] .. ": " .. out)
      assert.truthy(out:find(case[2], 1, true), case[1] .. ": " .. out)
      assert.truthy(out:find("Usage:", 1, true), case[1] .. ": " .. out)
    end
    assert.is_nil(read(dir .. "/never/batch_sweep.json"))
  end)
end)
