-- nn.AdaptiveAvgPool2d(1) and nn.Residual(block), the ResNet building blocks
-- (issue 13): values against a plain Lua computation, finite-difference
-- gradient checks of input and parameter gradients, on every device.
local lunet = require("lunet")
local helpers = require("helpers")
local nn = lunet.nn

local EPS, TOL = 1e-2, 1e-2

--- Finite differences against the analytic gradient (helpers.worst_gradient_error).
local function worst_error(t, analytic, loss, samples)
  return helpers.worst_gradient_error(t, analytic, loss, EPS, samples or 12, 7)
end

local function flat_table(t) return t:to("cpu"):reshape({ -1 }):totable() end

local function gradcheck(dev, m, x)
  m:to(dev)
  x = x:to(dev)
  local y = m:forward(x)
  local R = helpers.random(y:shape(), 77, nil, -1, 1):to(dev)
  m:zero_grad()
  local gx = flat_table(m:backward(x, R))
  local params, grads = m:parameters()
  local analytic = {}
  for i = 1, #grads do analytic[i] = flat_table(grads[i]) end
  local function loss() return (m:forward(x) * R):sum() end
  local worst = { input = worst_error(x, gx, loss) }
  for i = 1, #params do worst["parameter " .. i] = worst_error(params[i], analytic[i], loss) end
  for what, w in pairs(worst) do
    assert.is_true(w <= TOL, ("%s: finite differences disagree, worst relative error %.3g"):format(what, w))
  end
  return #params
end

describe("nn.AdaptiveAvgPool2d and nn.Residual", function()
  for _, dev in ipairs(helpers.devices()) do
    describe("on " .. dev, function()
      it("AdaptiveAvgPool2d(1) averages each channel to {N, C, 1, 1}", function()
        local x = helpers.random({ 2, 3, 5, 7 }, 3, nil, -1, 1)
        local y = nn.AdaptiveAvgPool2d(1):to(dev):forward(x:to(dev))
        assert.same({ 2, 3, 1, 1 }, y:shape())
        local xs, ys = x:totable(), y:to("cpu"):totable()
        for n = 1, 2 do
          for c = 1, 3 do
            local s = 0
            for h = 1, 5 do for w = 1, 7 do s = s + xs[n][c][h][w] end end
            assert.is_true(math.abs(ys[n][c][1][1] - s / 35) < 1e-5)
          end
        end
      end)

      it("AdaptiveAvgPool2d(1) gradient, odd sizes", function()
        lunet.manual_seed(5)
        assert.equal(0, gradcheck(dev, nn.AdaptiveAvgPool2d(1), lunet.randn({ 3, 2, 3, 5 })))
        assert.equal(0, gradcheck(dev, nn.AdaptiveAvgPool2d({ 1, 1 }), lunet.randn({ 1, 1, 1, 1 })))
      end)

      it("Residual(block) is block(x) + x", function()
        lunet.manual_seed(6)
        local block = nn.Conv2d(2, 2, 3, { padding = 1 })
        local r = nn.Residual(block):to(dev)
        local x = lunet.randn({ 2, 2, 4, 3 }):to(dev)
        local expected = (block:forward(x) + x):to("cpu")
        helpers.assert_close(r:forward(x):to("cpu"), expected, 1e-6, 1e-6)
        local p = r:parameters()
        assert.equal(2, #p)
        assert.equal(block.weight, p[1])
      end)

      it("Residual gradients (input and the block's parameters)", function()
        lunet.manual_seed(7)
        local block = nn.Sequential(nn.Conv2d(3, 3, 3, { padding = 1, bias = false }), nn.BatchNorm2d(3),
          nn.ReLU(), nn.Conv2d(3, 3, 3, { padding = 1 }))
        assert.equal(5, gradcheck(dev, nn.Residual(block), lunet.randn({ 2, 3, 4, 5 })))
      end)

      it("a small ResNet: Residual, BatchNorm, global pooling, Linear", function()
        lunet.manual_seed(8)
        local net = nn.Sequential(nn.Conv2d(2, 4, 3, { padding = 1 }), nn.ReLU(),
          nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, { padding = 1 }), nn.BatchNorm2d(4))),
          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
        assert.equal(8, gradcheck(dev, net, lunet.randn({ 2, 2, 5, 4 })))
      end)
    end)
  end

  it("state dicts name the block's tensors, and train/eval reach the block", function()
    local r = nn.Sequential(nn.Residual(nn.Sequential(nn.Conv2d(1, 1, 1), nn.BatchNorm2d(1))))
    local sd = r:state_dict()
    assert.is_not_nil(sd["1.block.1.weight"])
    assert.is_not_nil(sd["1.block.2.running_var"])
    r:eval()
    assert.is_false(r[1].block[2].training)
    r:load_state_dict(sd)
  end)

  it("misuse is a clear error", function()
    helpers.assert_error(function() nn.AdaptiveAvgPool2d(2) end, "only output_size 1")
    helpers.assert_error(function() nn.AdaptiveAvgPool2d(1):forward(lunet.zeros({ 2, 3 })) end,
      "expected input [N, C, H, W], got [2, 3]")
    helpers.assert_error(function() nn.Residual(3) end, "expected a module as the block")
    helpers.assert_error(function() nn.Residual(nn.Linear(3, 2)):forward(lunet.zeros({ 4, 3 })) end,
      "the block's output [4, 2] must have the input's shape [4, 3]")
    helpers.assert_error(function() nn.Residual(nn.ReLU()):backward(lunet.zeros({ 1 }), lunet.zeros({ 1 })) end,
      "call forward before backward")
  end)
end)
