-- Issue 12, "rules checked once, one error path": lunet.nn's errors go
-- through the C binding's error path (core._raise), so every one of them
-- points at the user's line, whatever the depth of the call inside lunet;
-- the layers' geometry rules live in C, where the ops check them, and the
-- constructors ask C (lunet.ops.conv2d_check_params, pool2d_check_params).
local lunet = require("lunet")
local nn = lunet.nn

--- The error of fn(), which must fail.
local function error_of(fn)
  local ok, err = pcall(fn)
  assert.is_false(ok, "expected an error")
  return tostring(err)
end

--- Asserts that err is "<this file>:<line>: <message>", message exact.
local function assert_at(line, message, err)
  assert.are.equal("spec/09-error_path_spec.lua:" .. line .. ": " .. message,
    (err:gsub("^.-(spec/09%-error_path_spec%.lua:)", "%1")))
end

describe("lunet.nn's errors", function()
  -- each case: the message, and a one-line closure that makes the mistake
  -- (not in a tail call, which would leave no frame of the closure's)
  local cases = {
    { "lunet.nn.Linear: in_features must be at least 1, got 0", function() local _ = nn.Linear(0, 3) end },
    { "lunet.nn.Linear: unknown option 'bais' (known: bias)",
      function() local _ = nn.Linear(2, 3, { bais = false }) end },
    { "lunet.nn.Conv2d: padding must not be negative, got -1",
      function() local _ = nn.Conv2d(1, 1, 3, { padding = -1 }) end },
    { "lunet.nn.Conv2d: stride must be at least 1, got {0, 1}",
      function() local _ = nn.Conv2d(1, 1, 3, { stride = { 0, 1 } }) end },
    { "lunet.nn.Conv2d: kernel size must be at least 1, got 0", function() local _ = nn.Conv2d(1, 1, 0) end },
    { "lunet.nn.Conv2d: kernel size is required", function() local _ = nn.Conv2d(1, 1) end },
    { "lunet.nn.MaxPool2d: padding {2, 2} must be at most half the kernel size {2, 2}",
      function() local _ = nn.MaxPool2d(2, 2, 2) end },
    { "lunet.nn.AvgPool2d: stride must be at least 1, got 0", function() local _ = nn.AvgPool2d(2, 0) end },
    { "lunet.nn.Dropout: p must be a probability in [0, 1], got 2", function() local _ = nn.Dropout(2) end },
    { "lunet.nn.BatchNorm2d: eps must be positive, got -1",
      function() local _ = nn.BatchNorm2d(3, { eps = -1 }) end },
    { "lunet.nn.Sequential: module 2 is number, not a module",
      function() local _ = nn.Sequential(nn.ReLU(), 7) end },
    { "lunet.nn.Flatten:forward: expected input [N, ...] with at least 2 dimensions, got [4]",
      function() local _ = nn.Flatten():forward(lunet.zeros({ 4 })) end },
    { "lunet.nn.ReLU:backward: call forward before backward",
      function() local _ = nn.ReLU():backward(lunet.zeros({ 2 }), lunet.zeros({ 2 })) end },
    { "lunet.nn.MaxPool2d:backward: call forward before backward",
      function() local x = lunet.zeros({ 1, 1, 2, 2 }) local _ = nn.MaxPool2d(2):backward(x, x) end },
    { "lunet.nn.Linear:forward: expected a module as self, got a tensor "
      .. "(call it as m:forward(...), with a colon)",
      function() local m = nn.Linear(2, 2) local _ = m.forward(lunet.zeros({ 1, 2 })) end },
    { "lunet.nn.Linear:forward: expected input [N, 2], got [1, 3]",
      function() local _ = nn.Linear(2, 2):forward(lunet.zeros({ 1, 3 })) end },
  }
  for _, case in ipairs(cases) do
    it("point at the caller's line: " .. case[1], function()
      -- the case's closure is the user's code: the first line outside lunet
      local err = error_of(case[2])
      assert_at(debug.getinfo(case[2], "S").linedefined, case[1], err)
    end)
  end

  it("from a module method called in a loop of the user's, the loop's line", function()
    local m = nn.Sequential(nn.Linear(4, 4))
    local line
    local err = error_of(function()
      for _ = 1, 2 do
        line = debug.getinfo(1, "l").currentline + 1
        m:forward(lunet.zeros({ 1, 3 }))
      end
    end)
    assert_at(line, "In 1st module (nn.Linear) of nn.Sequential: "
      .. "lunet.nn.Linear:forward: expected input [N, 4], got [1, 3]", err)
  end)

  it("come from one error path: nn.lua raises through the C binding, no error levels of its own", function()
    local f = assert(io.open(package.searchpath("lunet.nn", package.path), "r"))
    local src = f:read("a")
    f:close()
    assert.is_nil(src:find("short_src", 1, true), "nn.lua finds the user's line itself")
    for call in src:gmatch("[^%w_.]error(%b())") do
      -- only a non-string error object is passed on untouched
      assert.are.equal("(result, 0)", call)
    end
    assert.is_nil(lunet._raise, "core._raise stays out of the user's lunet table")
    assert.are.equal("function", type(require("lunet.core")._raise))
  end)
end)

describe("the layers' geometry rules, in C", function()
  it("the constructors and the ops give the same message from the same rule", function()
    local x = lunet.zeros({ 1, 1, 8, 8 })
    local w = lunet.zeros({ 1, 1, 3, 3 })
    local function message(fn) return (error_of(fn):gsub("^.-: lunet[%w_.:]*: ", "")) end
    -- conv: stride, padding and kernel
    assert.are.equal(message(function() return lunet.ops.conv2d_forward(x, w, nil, 0, 1, 0, 0) end),
      message(function() return nn.Conv2d(1, 1, 3, { stride = { 0, 1 } }) end))
    assert.are.equal(message(function() return lunet.ops.conv2d_forward(x, w, nil, 1, 1, 1, -2) end),
      message(function() return nn.Conv2d(1, 1, 3, { padding = { 1, -2 } }) end))
    assert.are.equal("padding must not be negative, got {1, -2}",
      message(function() return lunet.ops.conv2d_check_params(3, 3, 1, 1, 1, -2) end))
    -- pooling: the half-kernel rule and the kernel size
    assert.are.equal(message(function() return lunet.ops.pool2d_forward("max", x, 2, 2, 2, 2, 2, 2) end),
      message(function() return nn.MaxPool2d(2, 2, 2) end))
    assert.are.equal(message(function() return lunet.ops.pool2d_forward("avg", x, 0, 3, 1, 1, 0, 0) end),
      message(function() return nn.AvgPool2d({ 0, 3 }, 1) end))
    assert.are.equal("kernel size must be at least 1, got {0, 3}",
      message(function() return lunet.ops.pool2d_check_params(0, 3, 1, 1, 0, 0) end))
    -- the op's own name when no caller is given
    assert.truthy(error_of(function() return lunet.ops.pool2d_check_params(2, 2, 1, 1, 2, 2) end)
      :find("lunet.pool2d_check_params: padding {2, 2} must be at most half the kernel size {2, 2}", 1, true))
    -- what passes the rule passes both
    assert.has_no.errors(function() lunet.ops.conv2d_check_params(3, 2, 2, 1, 0, 1) end)
    assert.has_no.errors(function() lunet.ops.pool2d_check_params(3, 2, 2, 1, 1, 1) end)
  end)
end)
