-- API.md, Module and Devices sections.
local lunet = require("lunet")
local helpers = require("helpers")

describe("lunet module", function()
  it("is a table with a version and sets no globals", function()
    local before = {}
    for k in pairs(_G) do before[k] = true end
    package.loaded["lunet"] = nil
    local m = require("lunet")
    for k in pairs(_G) do assert.is_true(before[k] ~= nil, "new global " .. tostring(k)) end
    assert.is_table(m)
    assert.matches("^%d+%.%d+%.%d+$", m.version)
  end)

  it("manual_seed makes rand, randn and randperm repeat", function()
    lunet.manual_seed(42)
    local a, b, p = lunet.rand({ 5 }):totable(), lunet.randn({ 5 }):totable(), lunet.randperm(7):totable()
    lunet.manual_seed(42)
    assert.same(a, lunet.rand({ 5 }):totable())
    assert.same(b, lunet.randn({ 5 }):totable())
    assert.same(p, lunet.randperm(7):totable())
    lunet.manual_seed(43)
    assert.are_not.same(a, lunet.rand({ 5 }):totable())
  end)

  it("draws rand in [0, 1) and randn near N(0, 1)", function()
    lunet.manual_seed(7)
    local u = lunet.rand({ 100000 })
    assert.is_true(u:min() >= 0 and u:max() < 1)
    assert.is_true(math.abs(u:mean() - 0.5) < 0.01)
    local n = lunet.randn({ 100000 })
    local mean = n:mean()
    local var = ((n - mean) * (n - mean)):mean()
    assert.is_true(math.abs(mean) < 0.02, "mean " .. mean)
    assert.is_true(math.abs(var - 1) < 0.03, "variance " .. var)
  end)

  it("randperm is a permutation of 1..n, seeded streams repeat", function()
    local p = lunet.randperm(1000, { seed = 3 }):totable()
    local seen = {}
    for _, v in ipairs(p) do seen[v] = true end
    for i = 1, 1000 do assert.is_true(seen[i]) end
    assert.same(p, lunet.randperm(1000, { seed = 3 }):totable())
    assert.are_not.same(p, lunet.randperm(1000, { seed = 3, offset = 1 }):totable())
    assert.equal(0, lunet.randperm(0):numel())
  end)

  it("clock is monotonic seconds", function()
    local t0 = lunet.clock()
    local x = 0
    for i = 1, 1e6 do x = x + i end
    local t1 = lunet.clock()
    assert.is_number(t0)
    assert.is_true(t1 >= t0 and t1 - t0 < 10)
  end)

  it("sets and gets the CPU thread count", function()
    local n = lunet.get_num_threads()
    assert.is_true(n >= 1)
    lunet.set_num_threads(1)
    assert.equal(1, lunet.get_num_threads())
    assert.equal(1, lunet.device("cpu"):info().threads)
    lunet.set_num_threads(n)
    assert.equal(n, lunet.get_num_threads())
    helpers.assert_error(function() lunet.set_num_threads(0) end, "lunet.set_num_threads", "out of range")
    helpers.assert_error(function() lunet.set_num_threads("two") end, "lunet.set_num_threads", "integer")
  end)

  it("rejects bad seeds", function()
    helpers.assert_error(function() lunet.manual_seed(-1) end, "lunet.manual_seed")
    helpers.assert_error(function() lunet.manual_seed(1.5) end, "lunet.manual_seed", "integer")
    helpers.assert_error(function() lunet.manual_seed() end, "lunet.manual_seed")
  end)
end)

describe("devices", function()
  it("lists cpu first", function()
    local list = lunet.devices()
    assert.equal("cpu", list[1])
    for i = 2, #list do assert.matches("^cuda:%d+$", list[i]) end
  end)

  it("describes the cpu", function()
    local cpu = lunet.device("cpu")
    assert.equal("cpu", cpu.type)
    assert.equal(0, cpu.index)
    assert.equal("cpu", tostring(cpu))
    local info = cpu:info()
    assert.is_string(info.name)
    assert.is_true(info.cores >= 1)
    assert.is_true(info.threads >= 1)
    assert.matches("OpenBLAS", info.blas)
    -- the kernel level in use first (csrc/cpu/dispatch.c), one this CPU runs
    local level = info.kernels:match("^[%w_]+")
    local known = false
    for _, l in ipairs(lunet.cpu_levels()) do known = known or l == level end
    assert.is_true(known, info.kernels)
    cpu:synchronize()
  end)

  it("gives one object per device", function()
    assert.equal(lunet.device("cpu"), lunet.device("cpu"))
    assert.equal(lunet.device("cpu"), lunet.zeros({ 1 }):device())
  end)

  it("answers cuda_available with a reason when there is no GPU", function()
    local ok, reason = lunet.cuda_available()
    if ok then
      assert.is_nil(reason)
      assert.equal("cuda", lunet.device("cuda").type)
    else
      assert.is_false(ok)
      assert.is_string(reason)
      assert.is_true(#reason > 10)
      helpers.assert_error(function() lunet.device("cuda") end, "lunet.device", "cuda", "not available")
      helpers.assert_error(function() lunet.zeros({ 2 }, { device = "cuda:0" }) end, "lunet.zeros", "not available")
    end
  end)

  it("rejects unknown device names", function()
    helpers.assert_error(function() lunet.device("tpu") end, "lunet.device", "unknown device 'tpu'")
    helpers.assert_error(function() lunet.device("cuda:x") end, "lunet.device")
    helpers.assert_error(function() lunet.device("cuda:-1") end, "lunet.device")
    helpers.assert_error(function() lunet.device(3) end, "lunet.device", "expected a device")
  end)

  it("rejects a device method called on something else", function()
    local cpu = lunet.device("cpu")
    helpers.assert_error(function() cpu.info({}) end, "lunet.Device:info")
    helpers.assert_error(function() cpu.synchronize(1) end, "lunet.Device:synchronize")
  end)
end)
