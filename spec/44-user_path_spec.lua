-- The user's path around the lesson: the packed rock installs offline into a
-- fresh tree and its commands run from anywhere; busted runs from the
-- checkout; Ctrl-C stops a session and keeps a complete report; --compare;
-- paths relative to the caller; the entry points under the wrong Lua.
local cjson = require("cjson")
local lunet = require("lunet")
local helpers = require("helpers")
local xml_check = require("xml_check")

local q, read, have_data = helpers.sh_quote, helpers.read_file, helpers.have_fashion_mnist
local ROOT = helpers.ROOT

--- Runs a shell command; returns exit code and combined output.
local function sh(cmd)
  local p = assert(io.popen("(" .. cmd .. ") 2>&1; echo \"__exit=$?\""))
  local out = p:read("a")
  p:close()
  return tonumber(out:match("__exit=(%d+)%s*$")), (out:gsub("__exit=%d+%s*$", ""))
end

--- The environment for a script run from the checkout: the working tree's
-- Lua files first (LUA_CPATH as busted has it).
local function lua_env()
  return ("LUA_PATH=%s"):format(q(ROOT .. "/lua/?.lua;" .. ROOT .. "/lua/?/init.lua;" .. (os.getenv("LUA_PATH") or ";")))
end

local function have_local_build()
  return read(ROOT .. "/.luarocks/lib/lua/5.4/lunet/core.so") ~= nil
end

describe("installing with luarocks", function()
  it("packs a .src.rock that installs offline into a fresh tree, with commands that run anywhere", function()
    if os.execute("command -v luarocks >/dev/null && command -v git >/dev/null") ~= true then
      pending("needs luarocks and git")
      return
    end
    local dir = helpers.tmpdir()
    -- a luarocks that may not fetch anything: no servers, the Debian packages declared
    local code, out = sh(("%s/scripts/debian-rocks-config > %s/rocks.lua && echo 'rocks_servers = {}' >> %s/rocks.lua")
      :format(q(ROOT), q(dir), q(dir)))
    assert.equal(0, code, out)
    code, out = sh(("cd %s && %s/scripts/pack %s/dist"):format(q(dir), q(ROOT), q(dir)))
    assert.equal(0, code, out)
    assert.truthy(read(dir .. "/dist/lunet-scm-1.src.rock"), out)
    code, out = sh(("cd %s && LUNET_CUDA=OFF CMAKE_BUILD_PARALLEL_LEVEL=2 LUAROCKS_CONFIG_5_4=%s/rocks.lua "
      .. "luarocks --lua-version=5.4 --tree=%s/tree install %s/dist/lunet-scm-1.src.rock")
      :format(q(dir), q(dir), q(dir), q(dir)))
    assert.equal(0, code, out)
    assert.truthy(out:find("lunet scm-1 is now installed", 1, true), out)
    assert.truthy(read(dir .. "/tree/lib/luarocks/rocks-5.4/lunet/scm-1/doc/LICENSE")
      or read(dir .. "/tree/lib/luarocks/rocks-5.4/lunet/scm-1/LICENSE") or out:find("license: MIT", 1, true), out)
    -- the commands, from another folder, with no Lua paths set: the wrapper finds the tree
    local clean = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4"
    code, out = sh(("cd / && %s %s/tree/bin/lunet-gpu-vs-cpu --list-devices"):format(clean, q(dir)))
    assert.equal(0, code, out)
    assert.truthy(out:find("cpu: ", 1, true), out)
    code, out = sh(("cd / && %s %s/tree/bin/lunet-batch-sweep --help"):format(clean, q(dir)))
    assert.equal(0, code, out)
    assert.truthy(out:find("--batch-sizes", 1, true), out)
    if have_data() then
      code, out = sh(("cd %s && %s %s/tree/bin/lunet-gpu-vs-cpu --devices cpu --epochs 1 --max-batches 1 "
        .. "--batch-size 8 --repeat 1 --sgemm-size 32 --out rel-out"):format(q(dir), clean, q(dir)))
      assert.equal(0, code, out)
      assert.truthy(read(dir .. "/rel-out/results.json"), out)
    end
    helpers.rmdir(dir)
  end)
end)

describe("busted from the checkout", function()
  it("runs under lua5.4 with the project's paths, as `busted` and as `lua5.4 busted`", function()
    if not have_local_build() then
      pending("no project-local build (.luarocks/): ./scripts/test makes one")
      return
    end
    local clean = "env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4"
    for _, runner in ipairs({ "busted", "lua5.4 \"$(command -v busted)\"" }) do
      local code, out = sh(("cd %s && %s %s spec/01-module_spec.lua"):format(q(ROOT), clean, runner))
      assert.equal(0, code, runner .. ": " .. out)
      assert.truthy(out:find(" 0 failures / 0 errors", 1, true), runner .. ": " .. out)
    end
  end)

  it("summarises pending specs as one line per reason", function()
    local dir = helpers.tmpdir()
    helpers.write_file(dir .. "/p_spec.lua", [[
describe("p", function()
  for i = 1, 5 do pending("spec " .. i .. " (skipped: no GPU: a long reason)") end
  it("holds", function() pending("a reason of its own") end)
  it("passes", function() end)
end)
]])
    local code, out = sh(("cd %s && lua5.4 \"$(command -v busted)\" --ignore-lua -o %s/spec/lunet_output.lua %s/p_spec.lua")
      :format(q(ROOT), q(ROOT), q(dir)))
    helpers.rmdir(dir)
    assert.equal(0, code, out)
    assert.truthy(out:find("pending: 5 specs, no GPU: a long reason\n", 1, true), out)
    assert.truthy(out:find("pending: p holds (a reason of its own)", 1, true), out)
    local _, count = out:gsub("a long reason", "")
    assert.equal(1, count, out)
    assert.truthy(out:find("1 success / 0 failures / 0 errors / 6 pending", 1, true), out)
  end)
end)

describe("the scripts' entry points", function()
  it("are executable, and say they need Lua 5.4 under another Lua", function()
    for _, script in ipairs({ "scripts/gpu_vs_cpu.lua", "scripts/batch_sweep.lua", "bench/kernel_bench.lua",
      "bench/step_bench.lua", "scripts/run", "scripts/test", "scripts/check", "scripts/pack" }) do
      assert.is_true(os.execute("test -x " .. q(ROOT .. "/" .. script)) == true, script .. " is not executable")
    end
    if os.execute("command -v lua5.1 >/dev/null") ~= true then return end
    for _, script in ipairs({ "scripts/gpu_vs_cpu.lua", "scripts/batch_sweep.lua", "bench/kernel_bench.lua",
      "bench/step_bench.lua" }) do
      local code, out = sh(("lua5.1 %s/%s --help"):format(q(ROOT), script))
      assert.equal(1, code, out)
      assert.truthy(out:find("needs Lua 5.4 (this is Lua 5.1)", 1, true), script .. ": " .. out)
    end
  end)

  it("scripts/check --help prints its help without building anything", function()
    local code, out = sh(("%s/scripts/check --help"):format(q(ROOT)))
    assert.equal(0, code, out)
    assert.truthy(out:find("Usage: scripts/check [STAGE...]", 1, true), out)
    assert.truthy(out:find("charts", 1, true), out)
    assert.is_nil(out:find("lunet: building", 1, true), out)
    code, out = sh(("%s/scripts/check nonsense"):format(q(ROOT)))
    assert.equal(2, code, out)
    assert.truthy(out:find("unknown stage 'nonsense'", 1, true), out)
  end)
end)

describe("a session", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  local quick = "--epochs 1 --max-batches 2 --batch-size 16 --repeat 1 --sgemm-size 32"

  --- Runs scripts/<script> in the background with LUNET_DEBUG_PAUSE=`pause`
  -- (lunet/interrupt.lua: the script waits at that point and says so), sends
  -- it SIGINT once it waits there, and returns its exit code and output: the
  -- signal lands in the chosen phase whatever the machine's speed.
  local function interrupted_run(script, argv, pause)
    local log = dir .. "/log"
    local code, out = sh(("cd %s && (LUNET_DEBUG_PAUSE=%s %s lua5.4 scripts/%s %s > %s 2>&1 & pid=$!; "
      .. "for i in $(seq 1 600); do grep -q 'paused at' %s && break; sleep 0.1; done; "
      .. "kill -INT $pid; wait $pid; echo \"session_exit=$?\")")
      :format(q(ROOT), q(pause), lua_env(), script, argv, q(log), q(log)))
    local session_out = read(log) or ""
    assert.truthy(session_out:find("lunet: paused at " .. pause:gsub(":.*", ""), 1, true),
      "never reached the pause point: " .. session_out)
    return tonumber(out:match("session_exit=(%d+)")), session_out
  end

  local function generate_image_folder(root)
    for _, split in ipairs({ "train", "val" }) do
      for c, class in ipairs({ "ant", "bee" }) do
        local d = ("%s/%s/%s"):format(root, split, class)
        assert(os.execute("mkdir -p " .. q(d)))
        for i = 1, 4 do
          lunet.manual_seed(c * 10 + i)
          lunet.image_write(("%s/%d.%s"):format(d, i, i % 2 == 0 and "png" or "jpg"),
            (lunet.rand({ 3, 24, 30 }) * 30 + c * 90):to("uint8"))
        end
      end
    end
  end

  it("stops at Ctrl-C: no next device, what finished kept apart, the complete report untouched, exit 130", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    -- a complete report from an earlier run, which the interrupted one must leave alone
    local out_dir = dir .. "/out"
    os.execute("mkdir -p " .. q(out_dir))
    helpers.write_file(out_dir .. "/results.json", '{"complete": true}\n')
    helpers.write_file(out_dir .. "/report.md", "# complete\n")
    -- no warm-up: the training loader's second epoch is its second start ("loader:2"), so the
    -- SIGINT lands as epoch 2 begins, epoch 1 done
    local code, session_out = interrupted_run("gpu_vs_cpu.lua", "--devices cpu,ref --epochs 3 --max-batches 3 "
      .. "--warmup-batches 0 --batch-size 16 --repeat 1 --sgemm-size 32 --out " .. q(out_dir), "loader:2")
    assert.equal(130, code, session_out)
    assert.truthy(session_out:find("Interrupted (Ctrl-C) on cpu, training epoch 2, batch 1", 1, true), session_out)
    assert.is_nil(session_out:find("== ref", 1, true), "went on to the next device: " .. session_out)
    assert.is_nil(session_out:find("FAILED", 1, true), session_out)
    assert.is_nil(session_out:find("traceback", 1, true), session_out)
    assert.equal('{"complete": true}\n', read(out_dir .. "/results.json"))
    assert.equal("# complete\n", read(out_dir .. "/report.md"))
    local partial = cjson.decode((assert(read(out_dir .. "/results.interrupted.json"))))
    assert.equal("cpu", partial.interrupted.device)
    assert.equal(2, partial.interrupted.epoch)
    assert.same({ "ref" }, partial.interrupted.devices_not_run)
    assert.equal("interrupted", partial.devices[1].status)
    assert.equal(1, #partial.devices[1].training.epochs, "the finished epoch is kept")
    local md = assert(read(out_dir .. "/report.interrupted.md"))
    assert.truthy(md:find("^# INTERRUPTED, partial results"), md)
    assert.truthy(md:find("Interrupted (Ctrl-C) on cpu, training epoch 2", 1, true), md)
    xml_check.check_svg(assert(read(out_dir .. "/training_time.interrupted.svg")))
  end)

  it("stops at Ctrl-C while the data loads: one line, no traceback, nothing written, exit 130", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    for _, script in ipairs({ "gpu_vs_cpu.lua", "batch_sweep.lua" }) do
      local out_dir = dir .. "/out-" .. script
      local code, out = interrupted_run(script, "--devices cpu --out " .. q(out_dir), "dataset")
      assert.equal(130, code, out)
      assert.truthy(out:find(script .. ": interrupted (Ctrl-C) while loading the data: nothing was written.\n",
        1, true), out)
      assert.is_nil(out:find("traceback", 1, true), out)
      assert.is_nil(out:find("interrupted!", 1, true), out)
      assert.same({}, helpers.list_dir(out_dir), out) -- made, as the option was checked; left empty
    end
  end)

  it("stops at Ctrl-C while an image folder's first batches are decoded: partial results apart, exit 130", function()
    if not (lunet.image_formats().jpeg and lunet.image_formats().png) then
      pending("lunet built without libjpeg or libpng")
      return
    end
    generate_image_folder(dir .. "/img")
    local out_dir = dir .. "/out"
    os.execute("mkdir -p " .. q(out_dir))
    helpers.write_file(out_dir .. "/results.json", '{"complete": true}\n')
    -- the first start of a loader: the warm-up's, with --prefetch 2 workers decoding
    local code, out = interrupted_run("gpu_vs_cpu.lua", "--dataset image-folder --data " .. q(dir .. "/img")
      .. " --model cifar_resnet --width 4 --image-size 32 --devices cpu,ref --epochs 1 --batch-size 2 "
      .. "--prefetch 2 --repeat 1 --sgemm-size 32 --out " .. q(out_dir), "loader")
    assert.equal(130, code, out)
    assert.truthy(out:find("Interrupted (Ctrl-C) on cpu, warm-up: stopping the session.", 1, true), out)
    assert.is_nil(out:find("== ref", 1, true), out)
    assert.is_nil(out:find("traceback", 1, true), out)
    assert.equal('{"complete": true}\n', read(out_dir .. "/results.json"))
    local partial = cjson.decode((assert(read(out_dir .. "/results.interrupted.json"))))
    assert.equal("warm-up", partial.interrupted.phase)
    assert.equal("interrupted", partial.devices[1].status)
  end)

  it("the sweep stops at Ctrl-C: the points measured kept apart, a complete sweep untouched, exit 130", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local out_dir = dir .. "/out"
    os.execute("mkdir -p " .. q(out_dir))
    helpers.write_file(out_dir .. "/batch_sweep.json", '{"complete": true}\n')
    helpers.write_file(out_dir .. "/batch_sweep.svg", "<svg/>\n")
    -- a measurement starts its loader more than once: the 4th start is past the first point
    local code, out = interrupted_run("batch_sweep.lua", "--devices cpu,ref --batch-sizes 8,16,32 --images 32 "
      .. "--min-steps 2 --out " .. q(out_dir), "loader:4")
    assert.equal(130, code, out)
    assert.truthy(out:find("Interrupted (Ctrl-C) on cpu, batch size ", 1, true), out)
    assert.is_nil(out:find("[ref]", 1, true), "went on to the next device: " .. out)
    assert.is_nil(out:find("FAILED", 1, true), out)
    assert.is_nil(out:find("traceback", 1, true), out)
    assert.equal('{"complete": true}\n', read(out_dir .. "/batch_sweep.json"))
    assert.equal("<svg/>\n", read(out_dir .. "/batch_sweep.svg"))
    local partial = cjson.decode((assert(read(out_dir .. "/batch_sweep.interrupted.json"))))
    assert.truthy(partial.interrupted.at:find("^on cpu, batch size %d+$"), partial.interrupted.at)
    local points = partial.devices[1].points
    assert.is_true(#points >= 1, "the finished point is kept")
    assert.equal(8, points[1].batch_size)
    assert.is_true(points[1].training.images_per_second > 0)
    assert.is_nil(partial.interrupted.at:find("batch size 8$"), "interrupted in a finished point")
    local chart = assert(read(out_dir .. "/batch_sweep.interrupted.svg"))
    xml_check.check_svg(chart)
    assert.truthy(chart:find("INTERRUPTED (Ctrl-C): partial results", 1, true), chart)
  end)

  it("draws the devices of earlier results.json files beside its own (--compare), labelled and apart", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    -- a recorded run: relative --out, resolved against the caller's folder
    local code, out = sh(("cd %s && %s lua5.4 %s/scripts/gpu_vs_cpu.lua --devices cpu %s --out first")
      :format(q(dir), lua_env(), q(ROOT), quick))
    assert.equal(0, code, out)
    assert.truthy(out:find("wrote " .. dir .. "/first/results.json", 1, true), out)
    -- made to look like another machine's GPU run
    local recorded = cjson.decode((assert(read(dir .. "/first/results.json"))))
    recorded.devices[1].device = "cuda:0"
    recorded.devices[1].info.name = "NVIDIA H100 80GB HBM3"
    recorded.environment.date = "2026-11-30T12:00:00Z"
    helpers.write_file(dir .. "/gpu.json", cjson.encode(recorded))
    code, out = sh(("cd %s && %s lua5.4 %s/scripts/gpu_vs_cpu.lua --devices cpu %s --out second --compare gpu.json")
      :format(q(dir), lua_env(), q(ROOT), quick))
    assert.equal(0, code, out)
    local md = assert(read(dir .. "/second/report.md"))
    assert.truthy(md:find("## Recorded earlier (--compare)", 1, true), md)
    assert.truthy(md:find("| cuda:0 | NVIDIA H100 80GB HBM3, 2026-11-30 | ", 1, true), md)
    assert.truthy(md:find("/gpu.json: 1 epoch, batch 16, at most 2 batches, seed", 1, true), md)
    for line in md:gmatch("[^\n]+") do
      if line:sub(1, 1) == "|" then assert.is_true(utf8.len(line) <= 100, line) end
    end
    local chart = assert(read(dir .. "/second/training_time.svg"))
    xml_check.check_svg(chart)
    assert.truthy(chart:find("cuda:0 (recorded)", 1, true), chart)
    assert.truthy(chart:find("recorded on NVIDIA H100 80GB HBM3, 2026-11-30", 1, true)
      or chart:find("recorded on NVIDIA H100 80GB", 1, true), chart)
    local results = cjson.decode((assert(read(dir .. "/second/results.json"))))
    assert.equal(1, #results.devices, "the recorded device is kept apart from the measured ones")
    assert.equal("cuda:0", results.compared[1].device)
    -- a file that is not a session's results
    helpers.write_file(dir .. "/bad.json", "{}")
    code, out = sh(("cd %s && %s lua5.4 %s/scripts/gpu_vs_cpu.lua --devices cpu %s --out third --compare bad.json")
      :format(q(dir), lua_env(), q(ROOT), quick))
    assert.equal(1, code, out)
    assert.truthy(out:find("--compare: " .. dir .. "/bad.json is not the results.json of a session", 1, true), out)
    assert.is_nil(out:find("epoch 1/", 1, true), out)
  end)

  it("rejects sizes larger than the dataset and names --data in data errors", function()
    if not have_data() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local code, out = helpers.run_script("gpu_vs_cpu.lua", "--batch-size 100000 --out " .. q(dir .. "/o"))
    assert.equal(1, code, out)
    assert.truthy(out:find("--batch-size must be an integer from 1 to 60000 (the training set's size), got 100000",
      1, true), out)
    code, out = helpers.run_script("batch_sweep.lua", "--batch-sizes 16,70000 --out " .. q(dir .. "/o"))
    assert.equal(1, code, out)
    assert.truthy(out:find("--batch-sizes: each size must be from 1 to 60000 (the training set's size), got 70000",
      1, true), out)
    code, out = helpers.run_script("gpu_vs_cpu.lua", "--data " .. q(dir) .. " --out " .. q(dir .. "/o"))
    assert.equal(1, code, out)
    assert.truthy(out:find("--data " .. dir .. ": ", 1, true), out)
    assert.truthy(out:find("pass --data DIR", 1, true), out)
    assert.is_nil(out:find("root=DIR", 1, true), out)
  end)
end)
