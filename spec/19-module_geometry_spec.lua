-- Modules own their geometry (issue 12): m:output_shape(input_shape) is the
-- shape forward really returns, and m:flops(input_shape) the FLOPs counted by
-- hand (a multiply-add counts 2; elementwise ops as each class documents;
-- the second value is the matrix products' share), for every module type,
-- the containers composing their children's, and the seed AlexNet's
-- 36,237,312 model FLOPs per image (bench/NOTES.md, README).
local lunet = require("lunet")
local helpers = require("helpers")
local nn = lunet.nn

--- The shape forward(x) really returns, for a module and an input shape.
local function forward_shape(m, shape, target)
  local x = lunet.randn(shape)
  local y = m:forward(x, target)
  if type(y) == "number" then return {} end
  return y:shape()
end

local function numel(shape)
  local n = 1
  for _, v in ipairs(shape) do n = n * v end
  return n
end

--- {name, module, input shape, hand-counted FLOPs, hand-counted products}
local function cases()
  local N = 3
  return {
    { "Linear", nn.Linear(5, 4), { N, 5 }, N * 4 * (2 * 5 + 1), N * 4 * 2 * 5 },
    { "Linear without bias", nn.Linear(5, 4, { bias = false }), { N, 5 }, N * 4 * 2 * 5, N * 4 * 2 * 5 },
    -- (9 + 2 - 3) // 2 + 1 = 5 rows, (7 + 0 - 3) // 2 + 1 = 3 columns
    { "Conv2d strided", nn.Conv2d(2, 6, 3, { stride = 2, padding = { 1, 0 } }), { N, 2, 9, 7 },
      N * 6 * 5 * 3 * (2 * 2 * 9 + 1), N * 6 * 5 * 3 * 2 * 2 * 9 },
    { "Conv2d without bias", nn.Conv2d(2, 4, { 3, 1 }, { bias = false }), { N, 2, 6, 6 },
      N * 4 * 4 * 6 * 2 * 2 * 3, N * 4 * 4 * 6 * 2 * 2 * 3 },
    { "MaxPool2d", nn.MaxPool2d(2), { N, 3, 7, 8 }, N * 3 * 3 * 4 * 4, 0 },
    { "MaxPool2d overlapping", nn.MaxPool2d(3, 2), { N, 2, 9, 9 }, N * 2 * 4 * 4 * 9, 0 },
    { "AvgPool2d padded", nn.AvgPool2d(2, 2, 1), { N, 2, 5, 5 }, N * 2 * 3 * 3 * 4, 0 },
    { "ReLU", nn.ReLU(), { N, 4, 2 }, N * 8, 0 },
    { "Sigmoid", nn.Sigmoid(), { N, 5 }, N * 5, 0 },
    { "Tanh", nn.Tanh(), { N, 5 }, N * 5, 0 },
    { "LeakyReLU", nn.LeakyReLU(0.2), { N, 5 }, N * 5, 0 },
    { "GELU", nn.GELU(), { N, 5 }, N * 5, 0 },
    { "Softmax", nn.Softmax(2), { N, 5 }, 3 * N * 5, 0 },
    { "LogSoftmax", nn.LogSoftmax(-1), { N, 5 }, 3 * N * 5, 0 },
    { "Identity", nn.Identity(), { N, 5 }, 0, 0 },
    { "Flatten", nn.Flatten(), { N, 2, 3, 4 }, 0, 0 },
    { "Dropout", nn.Dropout(0.3), { N, 6 }, N * 6, 0 },
    { "BatchNorm2d", nn.BatchNorm2d(3), { N, 3, 4, 4 }, 2 * N * 3 * 16, 0 },
    { "AdaptiveAvgPool2d", nn.AdaptiveAvgPool2d(1), { N, 3, 5, 4 }, N * 3 * 20, 0 },
    { "Sequential", nn.Sequential(nn.Conv2d(1, 2, 3, { padding = 1 }), nn.ReLU(), nn.Flatten(),
      nn.Linear(2 * 16, 3)), { N, 1, 4, 4 },
      N * 2 * 16 * (2 * 9 + 1) + N * 2 * 16 + N * 3 * (2 * 32 + 1), N * 2 * 16 * 18 + N * 3 * 64 },
    { "ConvReLUPool", nn.ConvReLUPool(nn.Conv2d(1, 2, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2)),
      { N, 1, 6, 6 }, N * 2 * 36 * 19 + N * 2 * 36 + N * 2 * 9 * 4, N * 2 * 36 * 18 },
    { "Residual", nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, { padding = 1, bias = false }), nn.ReLU())),
      { N, 2, 4, 4 }, N * 2 * 16 * 2 * 2 * 9 + N * 32 + N * 32, N * 2 * 16 * 2 * 2 * 9 },
  }
end

describe("modules own their geometry", function()
  for _, case in ipairs(cases()) do
    local name, m, shape, flops, products = case[1], case[2], case[3], case[4], case[5]
    it(name .. ": output_shape is forward's shape, flops the hand count", function()
      assert.are.same(forward_shape(m, shape), m:output_shape(shape))
      local f, p = m:flops(shape)
      assert.are.equal(flops, f)
      assert.are.equal(products, p)
    end)
  end

  it("losses: one number out, their documented counts", function()
    local x, n, c = { 4, 3 }, 4, 3
    local labels = lunet.tensor({ 1, 3, 2, 2 }, { dtype = "int32" })
    local target = lunet.rand(x)
    for _, case in ipairs({
      { nn.MSELoss(), target, 3 * n * c },
      { nn.BCEWithLogitsLoss(), target, 6 * n * c },
      { nn.NLLLoss(), labels, n },
      { nn.CrossEntropyLoss(), labels, 3 * n * c + n },
    }) do
      local m, t, flops = case[1], case[2], case[3]
      assert.are.same(forward_shape(m, x, t), m:output_shape(x))
      assert.are.equal(flops, (m:flops(x)))
    end
    helpers.assert_error(function() return nn.CrossEntropyLoss():output_shape({ 4 }) end,
      "lunet.nn.CrossEntropyLoss:output_shape", "[N, C]", "[4]")
  end)

  it("the seed AlexNet: 36,237,312 model FLOPs per image, all FLOPs by hand, fused or not", function()
    local m = lunet.models.fashion_alexnet()
    -- products: conv 1->64 3x3 at 28x28, conv 64->128 3x3 at 14x14, 6272->512, 512->10
    local products = 2 * (1 * 9 * 64 * 784 + 64 * 9 * 128 * 196 + 6272 * 512 + 512 * 10)
    assert.are.equal(36237312, products)
    -- plus bias, ReLU and 2x2 pooling (4 per output) of each conv; bias and ReLU of fc1; fc2's bias
    local others = 3 * 64 * 784 + 3 * 128 * 196 + 2 * 512 + 10
    local f, p = m:flops({ 1, 1, 28, 28 })
    assert.are.equal(products, p)
    assert.are.equal(products + others, f)
    local f64, p64 = m:flops({ 64, 1, 28, 28 })
    assert.are.equal(64 * f, f64)
    assert.are.equal(64 * p, p64)
    assert.are.same({ 64, 10 }, m:output_shape({ 64, 1, 28, 28 }))
    assert.are.same(forward_shape(m, { 2, 1, 28, 28 }), m:output_shape({ 2, 1, 28, 28 }))
    -- the fused blocks nn.fuse makes of it count the same
    local steps = nn.fuse({ table.unpack(m) })
    assert.are.equal("ConvReLUPool", steps[1].__typename)
    assert.are.equal(f, (nn.Sequential(steps):flops({ 1, 1, 28, 28 })))
    assert.are.equal(products, (require("lunet.bench").model_flops(m, { 1, 28, 28 })))
    assert.are.equal(products, m:summary_table({ 1, 1, 28, 28 }).total_products)
  end)

  it("a module type defined outside nn still has the default geometry", function()
    local Scale = setmetatable({}, { __index = nn.Module })
    Scale.__index = Scale
    Scale.__typename = "Scale"
    local s = setmetatable({}, Scale)
    assert.are.same({ 2, 3 }, s:output_shape({ 2, 3 }))
    assert.are.equal(6, (s:flops({ 2, 3 })))
  end)

  it("a shape the module cannot take is an error naming the module and the shape", function()
    helpers.assert_error(function() return nn.Linear(3, 2):output_shape({ 4, 2, 3 }) end,
      "lunet.nn.Linear:output_shape", "[N, 3]", "[4, 2, 3]")
    helpers.assert_error(function() return nn.MaxPool2d(4):flops({ 1, 1, 3, 3 }) end,
      "lunet.nn.MaxPool2d:output_shape", "smaller than the window 4x4")
    helpers.assert_error(function() return nn.Residual(nn.Linear(3, 2)):output_shape({ 4, 3 }) end,
      "lunet.nn.Residual:output_shape", "[4, 3]", "[4, 2]")
    helpers.assert_error(function() return nn.ReLU():flops({ 2, -1 }) end,
      "lunet.nn.ReLU:flops", "input_shape[2]")
    assert.are.equal(0, numel({ 0, 3 }) + (nn.ReLU():flops({ 0, 3 })))
  end)
end)
