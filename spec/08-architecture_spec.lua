-- The architecture of issue 12. lunet.ops: the low-level entry points (like
-- torch.nn.functional), with the
-- old top-level names kept as aliases; and the checks of the op runner
-- (csrc/ops/op_check.c, ln_op_run) as seen through them.
local lunet = require("lunet")
local helpers = require("helpers")

local entry_points = {
  "conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "conv_block_supported",
  "conv_block_forward", "conv_block_backward", "linear_forward", "linear_backward_data",
  "linear_backward_filter", "pool2d_forward", "pool2d_backward", "relu_forward", "relu_backward",
  "dropout_forward", "dropout_backward", "batchnorm_forward", "batchnorm_backward",
  "batchnorm_backward_eval", "cross_entropy_forward", "cross_entropy_backward", "sgd_step",
  "adam_step", "activation_backward", "softmax_backward", "reduce_dim",
}

describe("lunet.ops", function()
  it("holds the kernel entry points, the same functions as the old top-level names", function()
    assert.are.equal("table", type(lunet.ops))
    for _, name in ipairs(entry_points) do
      assert.are.equal("function", type(lunet.ops[name]), name)
      assert.are.equal(lunet.ops[name], lunet[name], name)
    end
    assert.is_nil(lunet.ops.tensor_allocations) -- a test helper, not an op
    assert.are.equal("function", type(lunet.tensor_allocations))
  end)

  it("runs an op: relu forward and backward", function()
    local x = lunet.tensor({ { -1, 2 }, { 3, -4 } })
    local y = lunet.ops.relu_forward(x)
    helpers.assert_close(y, { { 0, 2 }, { 3, 0 } }, 0, 0)
    local dx = lunet.ops.relu_backward(y, lunet.ones({ 2, 2 }))
    helpers.assert_close(dx, { { 0, 1 }, { 1, 0 } }, 0, 0)
  end)

  it("checks once, in the runner: dtype, shape, device, freed tensors", function()
    local x = lunet.zeros({ 2, 3 })
    helpers.assert_error(function() lunet.ops.relu_forward(x:to("int32")) end,
      "lunet.relu_forward", "the input must be float32, got int32")
    helpers.assert_error(function() lunet.ops.relu_backward(x, lunet.zeros({ 3, 2 })) end,
      "the output gradient must be [2, 3], got [3, 2]")
    helpers.assert_error(function() lunet.ops.dropout_backward(x, lunet.zeros({ 2, 3 }):to("ref")) end,
      "lunet.dropout_backward")
    local dead = lunet.zeros({ 2, 3 })
    dead:free()
    helpers.assert_error(function() lunet.ops.relu_forward(dead) end, "freed")
  end)

  it("reads strided inputs through contiguous copies", function()
    local t = lunet.tensor({ { -1, 2, -3, 4 }, { 5, -6, 7, -8 } }):narrow(2, 2, 2)
    helpers.assert_close(lunet.ops.relu_forward(t), { { 2, 0 }, { 0, 7 } }, 0, 0)
  end)
end)

describe("nn.Sequential, a plain loop over nn.fuse's steps", function()
  local nn = lunet.nn

  it("names the failing module's position and type, at the caller's line", function()
    local m = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10, 3))
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() return m:forward(lunet.zeros({ 2, 1, 10, 10 })) end)
    assert.is_false(ok)
    assert.matches("08%-architecture_spec%.lua:" .. line .. ": In 5th module %(nn%.Linear%) of nn%.Sequential: "
      .. "lunet%.nn%.Linear:forward: expected input %[N, 10%], got %[2, 64%]", err)
    local outer = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.ReLU(), nn.Linear(5, 2)))
    helpers.assert_error(function() outer:forward(lunet.zeros({ 2, 4 })) end,
      "In 2nd module (nn.Sequential) of nn.Sequential: In 2nd module (nn.Linear) of nn.Sequential: "
      .. "lunet.nn.Linear:forward: expected input [N, 5], got [2, 4]")
    helpers.assert_error(function() nn.Sequential(nn.ReLU()):forward(42) end,
      "In 1st module (nn.ReLU) of nn.Sequential")
  end)

  it("nn.fuse turns Conv2d -> ReLU -> MaxPool2d(2) into one ConvReLUPool step", function()
    local conv, relu, pool = nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2)
    local steps, first = nn.fuse({ conv, relu, pool, nn.Flatten(), nn.ReLU(), nn.MaxPool2d(3) })
    assert.are.equal(4, #steps)
    assert.are.equal(nn.ConvReLUPool, getmetatable(steps[1]))
    assert.are.equal(conv, steps[1].conv)
    assert.same({ 1, 4, 5, 6 }, first)
    -- a pool of another size is not the fused block
    assert.are.equal(3, #nn.fuse({ nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3) }))
  end)

  it("ConvReLUPool gives the three modules' values and gradients", function()
    lunet.manual_seed(3)
    local conv = nn.Conv2d(2, 3, 3, { padding = 1 })
    local block = nn.ConvReLUPool(conv, nn.ReLU(), nn.MaxPool2d(2))
    local plain = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2))
    plain.fuse = false
    local x = helpers.random({ 2, 2, 6, 7 }, 9, nil, -1, 1)
    local y = block:forward(x):clone()
    local g = helpers.random(y:shape(), 10, nil, -1, 1)
    conv:zero_grad()
    local gx = block:backward(x, g):clone()
    local gw = conv.grad_weight:clone()
    helpers.assert_close(plain:forward(x), y, 1e-6, 1e-6)
    conv:zero_grad()
    helpers.assert_close(plain:backward(x, g), gx, 1e-6, 1e-6)
    helpers.assert_close(conv.grad_weight, gw, 1e-5, 1e-5)
  end)

  it("rebuilds its steps after add and after fuse changes", function()
    local m = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    local x = lunet.zeros({ 1, 1, 8, 8 })
    assert.same({ 1, 2, 6, 6 }, m:forward(x):shape())
    m:add(nn.MaxPool2d(2))
    assert.same({ 1, 2, 3, 3 }, m:forward(x):shape())
    assert.is_nil(m[1].output) -- fused: the convolution's output is not kept
    m.fuse = false
    m:forward(x)
    assert.same({ 1, 2, 6, 6 }, m[1].output:shape())
  end)
end)

describe("each op defined once", function()
  local function read(rel)
    return assert(helpers.read_file(helpers.ROOT .. "/" .. rel), "cannot read " .. rel)
  end

  it("the backend headers declare the op slots through backend.h's LN_DECLARE_* groups", function()
    local backend = read("csrc/backend.h")
    local slots = {}
    for name in backend:gmatch("int prefix##_([%w_]+)%(") do slots[#slots + 1] = name end
    assert.is_true(#slots >= 34, "backend.h's groups declare " .. #slots .. " slots")
    for _, header in ipairs({ "csrc/ops_ref.h", "csrc/cpu/cpu.h", "cuda/lunet_cuda.h" }) do
      local text = read(header)
      assert.truthy(text:find("LN_DECLARE_LAYER_OPS(", 1, true), header)
      for _, slot in ipairs(slots) do
        assert.is_nil(text:match("int ln_%w+_" .. slot .. "%("),
          header .. " writes out the prototype of " .. slot .. " again")
      end
    end
  end)

  it("Adam and log-sum-exp come from formulas.h in the reference, the CPU and CUDA", function()
    for _, file in ipairs({ "csrc/ops_ref.c", "csrc/cpu/optim.c", "cuda/optim.cu" }) do
      local text = read(file)
      assert.truthy(text:find("ln_f_adam(", 1, true), file)
      assert.is_nil(text:find("sqrtf(", 1, true), file .. " writes Adam's update out again")
    end
    for _, file in ipairs({ "csrc/ops_ref.c", "cuda/loss.cu" }) do
      local text = read(file)
      assert.truthy(text:find("ln_f_log_sum_exp(", 1, true), file)
      assert.is_nil(text:find("double log_sum_exp(", 1, true), file)
    end
  end)

  it("the model FLOPs of the benchmarks are the modules' own", function()
    local m = lunet.models.fashion_alexnet()
    local _, products = m:flops({ 1, 1, 28, 28 })
    assert.equal(products, (require("lunet.bench").model_flops(m, { 1, 28, 28 })))
  end)
end)
