-- lua/lunet/bench.lua (timing, environment, FLOPs) and lua/lunet/report.lua
-- (JSON, Markdown, charts, atomic writes).
local lunet = require("lunet")
local bench = require("lunet.bench")
local report = require("lunet.report")
local cjson = require("cjson")
local helpers = require("helpers")
local xml_check = require("xml_check")

local function read(path) return (assert(helpers.read_file(path), "cannot read " .. path)) end

local list_dir = helpers.list_dir

describe("lunet.bench", function()
  it("summarises times by median, min, max and mean", function()
    local s = bench.stats({ 3, 1, 2 })
    assert.equal(2, s.median)
    assert.equal(1, s.min)
    assert.equal(3, s.max)
    assert.equal(2, s.mean)
    assert.same({ 3, 1, 2 }, s.times)
    assert.equal(2.5, bench.stats({ 4, 1, 2, 3 }).median)
    assert.equal(0, bench.stats({}).n)
  end)

  it("times warm-up and repeats, synchronising the device around every clock read", function()
    local events = {}
    local fake_device = { synchronize = function() events[#events + 1] = "sync" end }
    local calls = 0
    local result = bench.time(function()
      calls = calls + 1
      events[#events + 1] = "run"
      local t0 = lunet.clock()
      while lunet.clock() - t0 < 0.002 do end
    end, { device = fake_device, warmup = 2, ["repeat"] = 3 })
    assert.equal(5, calls)
    assert.equal(2, #result.warmup_times)
    assert.equal(3, #result.times)
    for i = 1, 5 do
      assert.same({ "sync", "run", "sync" }, { events[3 * i - 2], events[3 * i - 1], events[3 * i] })
    end
    assert.is_true(result.min >= 0.002)
    assert.is_true(result.min <= result.median and result.median <= result.max)
  end)

  it("works on a real device and rejects bad arguments", function()
    local a = lunet.rand({ 64, 64 })
    local r = bench.time(function() lunet.matmul(a, a) end, { device = "cpu", warmup = 0, ["repeat"] = 2 })
    assert.equal(2, r.n)
    assert.equal(0, #r.warmup_times)
    helpers.assert_error(function() bench.time(function() end, { ["repeat"] = 0 }) end, "repeat must be an integer >= 1")
    helpers.assert_error(function() bench.time(function() end, { warmup = -1 }) end, "warmup")
    helpers.assert_error(function() bench.time(nil) end, "must be a function")
  end)

  it("captures the environment", function()
    local env = bench.environment({ "cpu" })
    assert.equal(lunet.version, env.lunet_version)
    assert.truthy(env.date:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), env.date)
    local cpu = lunet.device("cpu"):info()
    assert.equal(cpu.name, env.cpu.model)
    assert.equal(cpu.cores, env.cpu.cores)
    assert.equal(lunet.get_num_threads(), env.cpu.threads)
    assert.truthy(env.cpu.blas:find("BLAS"))
    assert.equal("Lua 5.4", env.lua)
    assert.truthy(env.hostname and #env.hostname > 0)
    local ok, reason = lunet.cuda_available()
    assert.equal(ok and true or false, env.cuda_available)
    if not ok then
      assert.equal(reason, env.cuda_unavailable_reason)
      assert.same({}, env.gpus)
    end
    -- run from a git checkout, the commit is lunet's own
    local p = io.popen("git -C lua rev-parse --short HEAD 2>/dev/null")
    local head = p:read("l")
    p:close()
    if head then assert.equal(head, env.git_commit) end
  end)

  it("takes the commit from LUNET_GIT_COMMIT where the tree is not a git checkout", function()
    local dir = helpers.tmpdir()
    local code = helpers.checkout_paths() .. ([[
      local bench = require("lunet.bench")
      print("commit=" .. tostring((bench.git_commit(%q))))
    ]]):format(dir)
    local ok, out = helpers.run_child(code, { prefix = "LUNET_GIT_COMMIT=0123456789abcdef" })
    assert.is_true(ok, out)
    assert.truthy(out:find("commit=0123456", 1, true), out)
    ok, out = helpers.run_child(code, { prefix = "LUNET_GIT_COMMIT='not a hash'" })
    assert.is_true(ok, out)
    assert.truthy(out:find("commit=nil", 1, true), out)
    helpers.rmdir(dir)
  end)

  it("counts the FLOPs of convolution and linear layers through pooling, as the modules state them", function()
    local nn = lunet.nn
    local model = nn.Sequential(
      nn.Conv2d(1, 64, 3, { padding = 1 }),
      nn.ReLU(), -- an activation: no product counted, shape unchanged
      nn.MaxPool2d(2, 2),
      nn.Conv2d(64, 128, { 3, 3 }, { stride = { 1, 1 }, padding = { 1, 1 } }),
      nn.MaxPool2d(2),
      nn.Flatten(),
      nn.Linear(128 * 7 * 7, 10))
    local total, layers = bench.model_flops(model, { 1, 28, 28 })
    local conv1 = 2 * 1 * 9 * 64 * 28 * 28
    local conv2 = 2 * 64 * 9 * 128 * 14 * 14
    local fc = 2 * 6272 * 10
    assert.equal(conv1 + conv2 + fc, total)
    assert.equal(3, #layers)
    assert.same({ 128, 14, 14 }, layers[2].shape)
    assert.equal(select(2, model:flops({ 1, 1, 28, 28 })), total)
    -- strided, unpadded convolution: (28 - 5) // 2 + 1 = 12
    local strided = bench.model_flops(nn.Sequential(nn.Conv2d(3, 8, 5, { stride = 2 })), { 3, 28, 28 })
    assert.equal(2 * 3 * 25 * 8 * 12 * 12, strided)
    assert.has_error(function() bench.model_flops({ modules = {} }, { 1, 28, 28 }) end,
      "lunet.bench.model_flops: expected an nn module, got table")
  end)

  it("counts 36.2 MFLOP per image for the session's AlexNet", function()
    local model = lunet.models.fashion_alexnet()
    local total, layers = bench.model_flops(model, { 1, 28, 28 })
    -- by hand: conv 1->64 3x3 at 28x28, conv 64->128 3x3 at 14x14, 6272->512, 512->10
    local expected = 2 * (1 * 9 * 64 * 784 + 64 * 9 * 128 * 196 + 6272 * 512 + 512 * 10)
    assert.equal(36237312, expected)
    assert.equal(expected, total)
    assert.same({ "Conv2d", "Conv2d", "Linear", "Linear" },
      { layers[1].kind, layers[2].kind, layers[3].kind, layers[4].kind })
    assert.equal(3291402, bench.parameter_count(model))
  end)

  it("formats durations for progress lines", function()
    assert.equal("5.0s", bench.format_duration(5))
    assert.equal("1m05s", bench.format_duration(65))
    assert.equal("2h01m", bench.format_duration(7260))
    assert.equal("?", bench.format_duration(0 / 0))
  end)
end)

describe("lunet.report", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("writes pretty, sorted JSON that lua-cjson reads back", function()
    local value = { b = 1, a = { 1, 2.5, "x/y" }, c = { d = true, e = {} }, n = 0 / 0, s = "q\"\\/" }
    local text = report.json(value)
    local back = cjson.decode(text)
    assert.equal(1, back.b)
    assert.same({ 1, 2.5, "x/y" }, back.a)
    assert.is_true(back.c.d)
    assert.same({}, back.c.e)
    assert.equal(cjson.null, back.n)
    assert.equal("q\"\\/", back.s)
    assert.is_true(text:find('"a"') < text:find('"b"'))
    assert.equal(text, report.json(value))
    assert.truthy(text:find('\n  "b": 1', 1, true))
  end)

  it("writes files atomically, leaving no temporary files", function()
    report.write_file(dir .. "/a.txt", "hello")
    report.write_file(dir .. "/a.txt", "again")
    assert.equal("again", read(dir .. "/a.txt"))
    assert.same({ "a.txt" }, list_dir(dir))
    helpers.assert_error(function() report.write_file(dir .. "/missing/a.txt", "x") end,
      "cannot write", dir .. "/missing/a.txt")
  end)

  it("prepares an output folder, or says why it cannot", function()
    assert.is_true(report.prepare_dir(dir .. "/x/y"))
    assert.same({}, list_dir(dir .. "/x/y"))
    report.write_file(dir .. "/file", "x")
    local ok, err = report.prepare_dir(dir .. "/file/sub")
    assert.is_nil(ok)
    assert.truthy(err:find("cannot write to the output folder " .. dir .. "/file/sub", 1, true), err)
    assert.is_nil(report.prepare_dir(""))
  end)

  local function fake_results(with_gpu)
    local results = {
      arguments = { epochs = 2, batch_size = 64, lr = 1e-3, ["repeat"] = 3, data_mode = "seed", seed = 42 },
      environment = { lunet_version = "0.1.0", date = "2025-01-01T00:00:00Z", cpu = { model = "Test CPU", cores = 2,
        threads = 2, blas = "OpenBLAS" }, gpus = {} },
      dataset = { name = "Fashion-MNIST" },
      model = { name = "fashion_alexnet", parameters = 1000, forward_flops_per_image = 36.2e6,
        train_flops_per_image = 108.6e6, train_flops_factor = 3 },
      inference_images = 10000,
      gpu_available = with_gpu,
      gpu_unavailable_reason = not with_gpu and "no CUDA device: test" or nil,
      devices = {
        { device = "cpu", status = "ok", info = { name = "Test CPU", threads = 2 },
          training = { seconds = 250, images = 120000, images_per_second = 480, gflops = 52,
            epochs = { { epoch = 1, batches = 938, images = 60000, seconds = 125, images_per_second = 480, mean_loss = 0.5,
              accuracy = 0.8512 },
              { epoch = 2, batches = 938, images = 60000, seconds = 125, images_per_second = 480, mean_loss = 0.25 } } },
          accuracy = { correct = 9100, total = 10000, accuracy = 0.91 },
          inference = { median_seconds = 8, min_seconds = 7.5, max_seconds = 9, images_per_second = 1250, gflops = 45 } },
      },
    }
    if with_gpu then
      results.devices[2] = { device = "cuda:0", status = "ok", info = { name = "Test GPU" },
        gpu_memory = { peak_bytes = 96 * 2 ^ 20 },
        training = { seconds = 10, images = 120000, images_per_second = 12000, gflops = 1300, epochs = {} },
        accuracy = { correct = 9105, total = 10000, accuracy = 0.9105 },
        inference = { median_seconds = 0.2, min_seconds = 0.19, max_seconds = 0.25, images_per_second = 50000, gflops = 1810 } }
      results.devices[3] = { device = "cuda:1", status = "failed", error = "out of memory | really" }
    end
    return results
  end

  it("computes speed-ups over the CPU", function()
    local ups = report.speedups(fake_results(true))
    assert.equal(1, #ups)
    assert.equal("cuda:0", ups[1].device)
    assert.equal("cpu", ups[1].baseline)
    assert.equal(25, ups[1].training)
    assert.equal(40, ups[1].inference)
    assert.same({}, report.speedups(fake_results(false)))
  end)

  it("writes the session's JSON, Markdown and charts", function()
    local results = fake_results(true)
    local paths = report.write_session(results, dir)
    assert.equal(4, #paths)
    assert.same({ "inference_time.svg", "report.md", "results.json", "training_time.svg" }, list_dir(dir))
    local back = cjson.decode(read(dir .. "/results.json"))
    assert.equal(25, back.speedups[1].training)
    assert.equal("failed", back.devices[3].status)
    local md = read(dir .. "/report.md")
    -- one table per aspect, every table row within 100 columns, the charts embedded
    assert.truthy(md:find("## Training\n", 1, true) and md:find("## Inference\n", 1, true)
      and md:find("## Environment\n", 1, true), md)
    assert.truthy(md:find("| cpu | 250 s | 480 | 52.0 | n/a | n/a | 91.00% |", 1, true), md)
    assert.truthy(md:find("| cpu | 8.00 s | 7.50 s – 9.00 s | 1,250 | 45.0 | n/a |", 1, true), md)
    assert.truthy(md:find("| cuda:0 | 10.0 s |", 1, true))
    -- per epoch: the training accuracy where the session counted it, a dash where not
    assert.truthy(md:find("| cpu | 1 | 938 | 60000 | 125 s | 480 | 0.5000 | 85.12% |", 1, true), md)
    assert.truthy(md:find("| cpu | 2 | 938 | 60000 | 125 s | 480 | 0.2500 | – |", 1, true), md)
    assert.truthy(md:find("| cuda:1 | **failed**: out of memory \\| really |", 1, true), md)
    assert.truthy(md:find("![Training time](training_time.svg)", 1, true))
    assert.truthy(md:find("![Inference time](inference_time.svg)", 1, true))
    for line in md:gmatch("[^\n]+") do
      if line:sub(1, 1) == "|" then assert.is_true(utf8.len(line) <= 100, line) end
    end
    assert.truthy(md:find("cuda:0 over cpu: training 25.0x, inference 40.0x", 1, true))
    assert.truthy(md:find("36.2 MFLOP per image forward", 1, true))
    assert.truthy(md:find("| cuda:0 memory | peak GPU memory allocated 96 MiB", 1, true), md)
    local train_svg = read(dir .. "/training_time.svg")
    local elements = xml_check.check_svg(train_svg)
    -- the speed-up written on the chart, above the fast bar
    assert.truthy(train_svg:find(">25.0x faster than cpu<", 1, true))
    assert.truthy(train_svg:find("250 s (480 img/s)", 1, true))
    assert.truthy(train_svg:find("failed: out of memory |", 1, true), train_svg)
    assert.truthy(train_svg:find("training time (seconds)", 1, true))
    assert.equal("svg", elements[1].name)
    local inf_svg = read(dir .. "/inference_time.svg")
    xml_check.check_svg(inf_svg)
    assert.truthy(inf_svg:find(">40.0x faster than cpu<", 1, true))
    assert.truthy(inf_svg:find("median of 3 timed passes", 1, true))
    assert.truthy(inf_svg:find("10,000 test images", 1, true))
    assert.truthy(md:find("1,000 parameters", 1, true))
    assert.truthy(inf_svg:find("8.00 s (1,250 img/s)", 1, true))
    -- one timed pass is named as one: no "median of 1"
    results.arguments["repeat"] = 1
    local one = report.inference_chart(results)
    assert.truthy(one:find("10,000 test images, 1 timed pass after a warm-up", 1, true), one)
    assert.is_nil(one:find("median of 1", 1, true), one)
    local one_md = report.session_markdown(results, { training = "t.svg", inference = "i.svg" })
    assert.truthy(one_md:find("then 1 timed pass.", 1, true), one_md)
  end)

  it("names the data mode and, in resident mode, the upload time", function()
    local results = fake_results(true)
    assert.truthy(report.session_markdown(results):find("Data mode `seed`", 1, true))
    results.arguments.data_mode = "resident"
    results.devices[2].training.upload_seconds = 0.0421
    local md = report.session_markdown(results)
    assert.truthy(md:find("Data mode `resident`", 1, true))
    assert.truthy(md:find("upload of the datasets to cuda:0: 0.0421 s", 1, true), md)
  end)

  it("says plainly when there is no GPU", function()
    local results = fake_results(false)
    report.write_session(results, dir)
    local md = read(dir .. "/report.md")
    assert.truthy(md:find("**No GPU available** (no CUDA device: test): only the CPU was measured", 1, true), md)
    local _, count = md:gsub("no CUDA device", "")
    assert.equal(1, count, "the reason once")
    local svg_text = read(dir .. "/training_time.svg")
    xml_check.check_svg(svg_text)
    assert.truthy(svg_text:find("no GPU here (no CUDA device: test)", 1, true))
    -- a driver's long error is cut to its first clause, never mid-word
    local long = "lunet.cuda: CUDA driver error: cudaGetDeviceCount returned 35 (CUDA driver version is " ..
      "insufficient for CUDA runtime version): install a newer driver"
    assert.equal("CUDA driver error: cudaGetDeviceCount returned 35", report.short_reason(long))
    assert.equal("lunet was built without CUDA support", report.short_reason(
      "lunet was built without CUDA support (lunet/cuda.so is not installed: build it)"))
  end)

  it("draws the batch sweep as one line per device and phase", function()
    local sweep = { model = { name = "m" }, gpu_available = false, gpu_unavailable_reason = "none here",
      devices = { { device = "cpu", points = {
        { batch_size = 16, training = { images_per_second = 100 }, inference = { images_per_second = 400 } },
        { batch_size = 32, training = { images_per_second = 120 }, inference = { images_per_second = 450 } },
        { batch_size = 64, error = "failed" } } } } }
    local paths = report.write_sweep(sweep, dir)
    assert.same({ dir .. "/batch_sweep.json", dir .. "/batch_sweep.svg" }, paths)
    local svg_text = read(paths[2])
    local elements = xml_check.check_svg(svg_text)
    local lines = 0
    for _, el in ipairs(elements) do if el.name == "polyline" then lines = lines + 1 end end
    assert.equal(2, lines)
    assert.truthy(svg_text:find("cpu training", 1, true) and svg_text:find("cpu inference", 1, true))
    assert.truthy(svg_text:find("no GPU here (none here)", 1, true))
    assert.equal(64, cjson.decode(read(paths[1])).devices[1].points[3].batch_size)
  end)
end)
