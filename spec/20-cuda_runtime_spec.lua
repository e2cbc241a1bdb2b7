-- The CUDA runtime as seen without a GPU (and with one): loading lunet/cuda.so,
-- what lunet.cuda_available() says and why, clear errors for CUDA devices that
-- are not there, the lunet.cuda controls, the backend's slots and its
-- host-side self-test. Nothing here needs a GPU; what needs one is in
-- 21-cuda_conformance_spec.lua.
local lunet = require("lunet")
local helpers = require("helpers")

local module_ok, module = pcall(require, "lunet.cuda")
local has_module = module_ok and type(module) == "table"
local available, reason = lunet.cuda_available()

--- Defines a spec that runs only under `condition`, else shows as pending
-- with the reason (so the report says what was not checked here).
local function it_if(condition, why, name, fn)
  if condition then
    it(name, fn)
  else
    pending(name .. " (skipped: " .. why .. ")")
  end
end

describe("CUDA runtime", function()
  it("cuda_available answers true, or false and a reason", function()
    assert.is_boolean(available)
    if available then
      assert.is_nil(reason)
    else
      assert.is_string(reason)
      assert.is_true(#reason > 10, reason)
    end
    -- asking again gives the same answer
    local again, again_reason = lunet.cuda_available()
    assert.equal(available, again)
    assert.equal(reason, again_reason)
  end)

  it("lists CUDA devices only when they work", function()
    local devices = lunet.devices()
    assert.equal("cpu", devices[1])
    if available then
      assert.is_true(#devices >= 2)
      for i = 2, #devices do assert.equal("cuda:" .. (i - 2), devices[i]) end
    else
      assert.same({ "cpu" }, devices)
    end
  end)

  it_if(not available, "a GPU is present", "refuses CUDA devices with the reason", function()
    for _, name in ipairs({ "cuda", "cuda:0", "cuda:3" }) do
      helpers.assert_error(function() lunet.device(name) end,
        "lunet.device", "device '" .. name .. "' is not available")
    end
    helpers.assert_error(function() lunet.zeros({ 2, 3 }, { device = "cuda" }) end,
      "lunet.zeros", "not available")
    helpers.assert_error(function() lunet.tensor({ 1, 2 }, { device = "cuda:0" }) end,
      "lunet.tensor", "not available")
    helpers.assert_error(function() lunet.ones({ 4 }):to("cuda") end, "not available")
    helpers.assert_error(function() lunet.empty({ 2 ^ 38 }, { device = "cuda" }) end, "not available")
    -- the CPU is unaffected
    assert.equal(6, lunet.ones({ 2, 3 }):sum())
  end)

  it_if(has_module and not available, "needs lunet/cuda.so and no GPU",
    "names the driver problem when the libraries are there but no GPU is", function()
      assert.truthy(reason:find("no CUDA device: ", 1, true), reason)
      assert.truthy(reason:find("driver", 1, true), reason)
      local driver_reason = reason:gsub("^no CUDA device: ", "")
      helpers.assert_error(function() lunet.device("cuda") end, driver_reason)
    end)

  it_if(not has_module, "lunet/cuda.so is installed",
    "says lunet was built without CUDA when the module is missing", function()
      assert.truthy(reason:find("without CUDA support", 1, true), reason)
      helpers.assert_error(function() lunet.cuda.set_tf32(true) end,
        "lunet.cuda.set_tf32: CUDA not available: ", "without CUDA support")
      local ok, why = lunet.cuda.available()
      assert.is_false(ok)
      assert.equal(reason, why)
    end)
end)

describe("lunet.cuda module", function()
  it_if(has_module, "lunet/cuda.so is not installed", "gives the core a backend", function()
    assert.equal("userdata", type(module.backend)) -- a light userdata
    assert.equal("cuda", module.name)
    assert.equal(module, lunet.cuda)
  end)

  it_if(has_module, "lunet/cuda.so is not installed", "fills every slot of the backend", function()
    local missing, checked = module.missing_slots()
    assert.same({}, missing)
    -- every slot of csrc/backend.h, from attach to adam_step (with the
    -- unary, unary_backward, softmax, softmax_backward and reduce_dim families)
    assert.equal(43, checked)
  end)

  it_if(has_module, "lunet/cuda.so is not installed",
    "passes its host-side self-test (conversions, size classes, messages)", function()
      local failures, checks, samples = module.self_test()
      assert.same({}, failures)
      assert.is_true(checks > 1000000, "only " .. checks .. " checks ran")
      -- messages name the op, the call, the status and our source line
      assert.truthy(samples:find("alloc: cudaMalloc: cudaErrorMemoryAllocation: out of memory (cuda/allocator.c:137)", 1, true), samples)
      assert.truthy(samples:find("gemm: cublasGemmEx: CUBLAS_STATUS_INVALID_VALUE (cuda/gemm.c:40)", 1, true), samples)
      assert.truthy(samples:find("conv2d_forward: cudnnConvolutionForward: CUDNN_STATUS_BAD_PARAM (cuda/conv.c:88)", 1, true), samples)
      assert.truthy(samples:match("failing_cudnn_call: refusing_call: CUDNN_STATUS_BAD_PARAM %(cuda/self_test%.cu:%d+%)"), samples)
    end)

  -- cuda/unverified.c: the kernels never run on a GPU stay off unless asked for
  it_if(has_module, "lunet/cuda.so is not installed",
    "keeps the kernels never run on a GPU off by default, host-staged, every slot filled", function()
      local before = module.get_unverified_kernels()
      finally(function() module.set_unverified_kernels(before) end)
      for _, on in ipairs({ true, false }) do
        module.set_unverified_kernels(on)
        local state, note = module.get_unverified_kernels()
        assert.equal(on, state)
        if on then
          assert.truthy(note:find("unverified kernels on", 1, true), note)
        else
          assert.truthy(note:find("^host%-staged"), note)
          for _, op in ipairs({ "unary", "softmax", "reduce_dim", "ne/lt/le/gt/ge", "AdamW", "loss" }) do
            assert.truthy(note:find(op, 1, true), note)
          end
        end
        -- the switch changes what fills the slots, never leaves one empty
        assert.same({}, (module.missing_slots()))
      end
      helpers.assert_error(function() module.set_unverified_kernels("yes") end,
        "lunet.cuda.set_unverified_kernels", "expected true or false")
      -- a fresh process: off (this build's default), or what the environment says
      local code = [[print("unverified=" .. tostring(require("lunet").cuda.get_unverified_kernels()))]]
      for prefix, want in pairs({ ["env -u LUNET_CUDA_UNVERIFIED_KERNELS"] = "unverified=false", ["LUNET_CUDA_UNVERIFIED_KERNELS=1"] = "unverified=true",
        ["LUNET_CUDA_UNVERIFIED_KERNELS=0"] = "unverified=false" }) do
        local ok, out = helpers.run_child(code, { prefix = prefix })
        assert.is_true(ok, out)
        assert.truthy(out:find(want, 1, true), prefix .. ": " .. out)
      end
      local ok, out = helpers.run_child([[require("lunet.cuda")]],
        { prefix = "LUNET_CUDA_UNVERIFIED_KERNELS=yes" })
      assert.is_false(ok)
      assert.truthy(out:find("LUNET_CUDA_UNVERIFIED_KERNELS must be 0 or 1, got 'yes'", 1, true), out)
    end)

  it_if(has_module, "lunet/cuda.so is not installed", "switches TF32, off by default", function()
    local before = module.get_tf32()
    finally(function() module.set_tf32(before) end)
    module.set_tf32(true)
    assert.is_true(module.get_tf32())
    module.set_tf32(false)
    assert.is_false(module.get_tf32())
    helpers.assert_error(function() module.set_tf32(1) end, "lunet.cuda.set_tf32", "expected true or false")
    helpers.assert_error(function() module.set_tf32() end, "lunet.cuda.set_tf32")
    -- a fresh process starts with TF32 off
    local ok, out = helpers.run_child([[
      local lunet = require("lunet")
      print("tf32=" .. tostring(lunet.cuda.get_tf32()))
    ]])
    assert.is_true(ok, out)
    assert.truthy(out:find("tf32=false", 1, true), out)
  end)

  it_if(has_module, "lunet/cuda.so is not installed", "agrees with lunet.cuda_available", function()
    local ok, why = module.available()
    assert.equal(available, ok)
    assert.equal(reason, why)
    local n, count_reason = module.device_count()
    if available then
      assert.is_true(n >= 1)
    else
      assert.equal(0, n)
      assert.equal(reason, "no CUDA device: " .. count_reason)
    end
  end)

  it_if(has_module and not available, "needs lunet/cuda.so and no GPU",
    "refuses device functions with the reason", function()
      for _, name in ipairs({ "memory_stats", "empty_cache", "error_probe" }) do
        helpers.assert_error(function() module[name]() end,
          "lunet.cuda." .. name .. ": CUDA not available: no CUDA device: ", "driver")
        helpers.assert_error(function() module[name]("cuda:1") end, "CUDA not available")
      end
    end)

  it_if(has_module and available, "needs a GPU", "checks the device argument of memory_stats", function()
    local stats = module.memory_stats()
    assert.is_number(stats.allocated_bytes)
    assert.is_boolean(stats.tf32)
    assert.is_number(stats.device_allocations)
    helpers.assert_error(function() module.memory_stats("cuda:99") end, "does not exist")
    helpers.assert_error(function() module.memory_stats("gpu") end, "expected a CUDA device")
    helpers.assert_error(function() module.memory_stats(lunet.device("cpu")) end, "expected a CUDA device")
  end)
end)

describe("CUDA without a GPU, in a child process", function()
  it("explains a build without lunet/cuda.so", function()
    -- a module path holding only the core, as a build without CUDA installs it
    local core_path = assert(package.searchpath("lunet.core", package.cpath))
    local dir = helpers.tmpdir()
    finally(function() helpers.rmdir(dir) end)
    assert.is_true(os.execute(("mkdir -p '%s/lunet' && cp '%s' '%s/lunet/core.so'")
      :format(dir, core_path, dir)))
    local ok, out = helpers.run_child([[
      local lunet = require("lunet")
      local available, reason = lunet.cuda_available()
      print("available=" .. tostring(available))
      print("reason=" .. reason)
      print("devices=" .. table.concat(lunet.devices(), ","))
      print("device=" .. select(2, pcall(lunet.device, "cuda")))
      print("tf32=" .. select(2, pcall(lunet.cuda.set_tf32, true)))
      print("query=" .. tostring(select(2, lunet.cuda.available())))
      print("sum=" .. lunet.ones({ 3 }):sum())
    ]], { prefix = ("LUA_CPATH='%s/?.so'"):format(dir) })
    assert.is_true(ok, out)
    assert.truthy(out:find("available=false", 1, true), out)
    assert.truthy(out:find("reason=lunet was built without CUDA support", 1, true), out)
    assert.truthy(out:find("devices=cpu\n", 1, true), out)
    -- errors carry the caller's position first ("file:line: lunet.device: ...")
    assert.truthy(out:find("lunet.device: device 'cuda' is not available: lunet was built without CUDA support", 1, true), out)
    assert.truthy(out:find("tf32=lunet.cuda.set_tf32: CUDA not available: lunet was built without CUDA support", 1, true), out)
    assert.truthy(out:find("query=lunet was built without CUDA support", 1, true), out)
    assert.truthy(out:find("sum=3", 1, true), out)
  end)

  it("never crashes, whatever is asked of it", function()
    local ok, out, code = helpers.run_child([[
      local lunet = require("lunet")
      local available, reason = lunet.cuda_available()
      print("available=" .. tostring(available))
      if not available then
        print("reason=" .. reason)
        for _, f in ipairs({
          function() return lunet.device("cuda") end,
          function() return lunet.device("cuda:1") end,
          function() return lunet.zeros({ 3 }, { device = "cuda" }) end,
          function() return lunet.empty({ 2 ^ 38 }, { device = "cuda" }) end,
          function() return lunet.rand({ 3 }):to("cuda:0") end,
          function() return lunet.cuda.memory_stats() end,
          function() return lunet.cuda.empty_cache(0) end,
        }) do
          local ok, err = pcall(f)
          assert(not ok, "expected an error")
          print("error=" .. tostring(err))
        end
        -- harmless with lunet/cuda.so, a clear error without it
        local ok, err = pcall(function() lunet.cuda.set_tf32(false) end)
        print("tf32=" .. (ok and "ok" or err))
      end
      print("devices=" .. table.concat(lunet.devices(), ","))
      print("sum=" .. lunet.ones({ 4, 4 }):sum())
      collectgarbage()
      print("alive")
    ]])
    assert.is_true(ok, ("exit %s: %s"):format(tostring(code), out))
    assert.truthy(out:find("alive", 1, true), out)
    assert.truthy(out:find("sum=16", 1, true), out)
    if not available then
      assert.truthy(out:find("devices=cpu\n", 1, true), out)
      local errors = select(2, out:gsub("error=", ""))
      assert.equal(7, errors, out)
      assert.is_nil(out:find("error=nil", 1, true), out)
      assert.truthy(out:find("tf32=ok", 1, true)
        or out:match("tf32=[^\n]*lunet%.cuda%.set_tf32: CUDA not available"), out)
    end
  end)
end)
