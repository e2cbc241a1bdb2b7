-- lunet.ops: the low-level entry points (like torch.nn.functional), with the
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
  "adam_step",
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
