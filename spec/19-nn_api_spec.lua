-- The modules and losses of issue 13 (Sigmoid, Tanh, LeakyReLU, GELU, Softmax,
-- LogSoftmax, Identity; MSELoss, NLLLoss, BCEWithLogitsLoss, CrossEntropyLoss
-- label smoothing): finite-difference gradient checks on every device,
-- PyTorch's numbers (spec/fixtures/torch_math_reference.json, written by
-- make_torch_reference.py), tostring and summary, and the misuse messages.
local lunet = require("lunet")
local cjson = require("cjson")
local helpers = require("helpers")
local nn = lunet.nn

local devices = helpers.devices()
local EPS, TOL = 1e-2, 1e-2

local function flat(t) return t:to("cpu"):reshape({ -1 }):totable() end

--- Finite differences against the analytic gradient (helpers.worst_gradient_error).
local function worst_error(t, analytic, loss, samples)
  return helpers.worst_gradient_error(t, analytic, loss, EPS, samples or 16, 5)
end

local modules = {
  { "Sigmoid", function() return nn.Sigmoid() end },
  { "Tanh", function() return nn.Tanh() end },
  { "LeakyReLU()", function() return nn.LeakyReLU() end },
  { "LeakyReLU(0.3)", function() return nn.LeakyReLU(0.3) end },
  { "GELU()", function() return nn.GELU() end },
  { "GELU tanh", function() return nn.GELU({ approximate = "tanh" }) end },
  { "Softmax(2)", function() return nn.Softmax(2) end },
  { "Softmax(-1)", function() return nn.Softmax(-1) end },
  { "LogSoftmax(1)", function() return nn.LogSoftmax(1) end },
  { "LogSoftmax(3)", function() return nn.LogSoftmax(3) end },
  { "Identity", function() return nn.Identity() end },
}

--- Inputs kept away from LeakyReLU's kink at 0 (|x| >= 0.05).
local function smooth_input(shape, seed, dev)
  local x = helpers.random(shape, seed, nil, -2, 2)
  local v = x:reshape({ -1 })
  for i = 1, v:numel() do
    local a = v:get(i)
    if math.abs(a) < 0.05 then v:set(a < 0 and a - 0.05 or a + 0.05, i) end
  end
  return x:to(dev)
end

describe("new modules: gradients by finite differences", function()
  for _, dev in ipairs(devices) do
    for _, c in ipairs(modules) do
      it(dev .. ": " .. c[1], function()
        local m = c[2]()
        local x = smooth_input({ 3, 4, 5 }, 41, dev)
        local y = m:forward(x)
        assert.are.same(x:shape(), y:shape())
        local R = helpers.random(y:shape(), 42, dev, -1, 1)
        local gx = flat(m:backward(x, R))
        local function loss() return (m:forward(x) * R):sum() end
        local w = worst_error(x, gx, loss)
        assert(w <= TOL, ("worst relative error %.3g"):format(w))
      end)
    end
  end
end)

describe("losses", function()
  local function labels_for(n, c, dev, seed)
    lunet.manual_seed(seed)
    local l = {}
    local r = lunet.rand({ n }):totable()
    for i = 1, n do l[i] = 1 + math.floor(r[i] * c) end
    return lunet.tensor(l, { dtype = "int32", device = dev })
  end
  local losses = {
    { "MSELoss", function() return nn.MSELoss() end, function(dev)
      return helpers.random({ 4, 3, 2 }, 51, dev, -2, 2), helpers.random({ 4, 3, 2 }, 52, dev, -2, 2) end },
    { "BCEWithLogitsLoss", function() return nn.BCEWithLogitsLoss() end, function(dev)
      return helpers.random({ 5, 4 }, 53, dev, -4, 4), helpers.random({ 5, 4 }, 54, dev) end },
    { "NLLLoss", function() return nn.NLLLoss() end, function(dev)
      return helpers.random({ 6, 5 }, 55, dev, -3, 0), labels_for(6, 5, dev, 56) end },
    { "CrossEntropyLoss label_smoothing 0.2", function()
      return nn.CrossEntropyLoss({ label_smoothing = 0.2 }) end, function(dev)
      return helpers.random({ 6, 5 }, 57, dev, -3, 3), labels_for(6, 5, dev, 58) end },
    { "CrossEntropyLoss label_smoothing 0", function() return nn.CrossEntropyLoss({ label_smoothing = 0 }) end,
      function(dev) return helpers.random({ 6, 5 }, 59, dev, -3, 3), labels_for(6, 5, dev, 60) end },
  }
  for _, dev in ipairs(devices) do
    for _, c in ipairs(losses) do
      it(dev .. ": " .. c[1] .. " returns a number; backward is its gradient", function()
        local crit = c[2]()
        local x, t = c[3](dev)
        local l = crit:forward(x, t)
        assert.are.equal("number", type(l))
        local g = crit:backward(x, t)
        assert.are.same(x:shape(), g:shape())
        local w = worst_error(x, flat(g), function() return crit:forward(x, t) end, 30)
        assert(w <= TOL, ("worst relative error %.3g"):format(w))
      end)
    end
    it(dev .. ": label smoothing 0 is the plain cross-entropy; BCE is stable for large logits", function()
      local x = helpers.random({ 4, 6 }, 61, dev, -3, 3)
      local y = labels_for(4, 6, dev, 62)
      local a = nn.CrossEntropyLoss():forward(x, y)
      local b = nn.CrossEntropyLoss({ label_smoothing = 1e-30 }):forward(x, y)
      assert(math.abs(a - b) < 1e-6 * math.abs(a))
      local big = lunet.tensor({ 200, -200 }, { device = dev })
      local l = nn.BCEWithLogitsLoss():forward(big, lunet.tensor({ 0, 1 }, { device = dev }))
      assert(math.abs(l - 200) < 1e-3, tostring(l))
    end)
  end
  it("misuse names the loss, the argument and the shapes", function()
    local x = lunet.rand({ 3, 4 })
    helpers.assert_error(function() return nn.MSELoss():forward(x, lunet.rand({ 4, 3 })) end,
      "lunet.nn.MSELoss:forward", "[3, 4]", "[4, 3]")
    helpers.assert_error(function() return nn.BCEWithLogitsLoss():backward(x, 1) end,
      "lunet.nn.BCEWithLogitsLoss:backward", "target must be a tensor")
    helpers.assert_error(function() return nn.NLLLoss():forward(x, lunet.tensor({ 1, 2, 5 }, { dtype = "int32" })) end,
      "lunet.nn.NLLLoss:forward", "1..4", "[3, 4]")
    helpers.assert_error(function() return nn.NLLLoss():forward(x, lunet.tensor({ 1, 2 }, { dtype = "int32" })) end,
      "lunet.nn.NLLLoss:forward", "labels [3]", "[2]")
    helpers.assert_error(function() return nn.NLLLoss():forward(x, lunet.tensor({ 1, 2, 3 })) end,
      "lunet.nn.NLLLoss:forward", "int32")
    helpers.assert_error(function()
      return nn.CrossEntropyLoss({ label_smoothing = 0.1 }):forward(lunet.rand({ 3 }), lunet.tensor({ 1 }, { dtype = "int32" }))
    end, "lunet.nn.CrossEntropyLoss:forward", "[N, C]", "[3]")
    helpers.assert_error(function() return nn.CrossEntropyLoss({ label_smoothing = 2 }) end,
      "lunet.nn.CrossEntropyLoss", "label_smoothing", "[0, 1]")
    helpers.assert_error(function() return nn.CrossEntropyLoss({ smoothing = 0.1 }) end,
      "lunet.nn.CrossEntropyLoss", "unknown option")
  end)
end)

describe("module construction and misuse", function()
  it("checks arguments and names the module", function()
    helpers.assert_error(function() return nn.Softmax() end, "lunet.nn.Softmax", "dim")
    helpers.assert_error(function() return nn.LogSoftmax(0) end, "lunet.nn.LogSoftmax", "dim")
    helpers.assert_error(function() return nn.LeakyReLU("a") end, "lunet.nn.LeakyReLU", "negative_slope")
    helpers.assert_error(function() return nn.GELU({ approximate = "fast" }) end, "lunet.nn.GELU", "approximate")
    helpers.assert_error(function() return nn.Softmax(3):forward(lunet.rand({ 2, 2 })) end,
      "lunet.nn.Softmax:forward", "[2, 2]")
    helpers.assert_error(function() return nn.Sigmoid():backward(lunet.rand({ 2 }), lunet.rand({ 2 })) end,
      "lunet.nn.Sigmoid:backward", "forward before backward")
    local t = nn.Tanh()
    t:forward(lunet.rand({ 2, 3 }))
    helpers.assert_error(function() return t:backward(lunet.rand({ 2, 3 }), lunet.rand({ 3, 2 })) end,
      "lunet.nn.Tanh:backward", "[3, 2]", "[2, 3]")
    helpers.assert_error(function() return nn.Tanh().forward(3) end, "lunet.nn.Tanh:forward", "self")
  end)
  it("GELU takes the approximate string too; reprs say the settings", function()
    assert.are.equal("tanh", nn.GELU("tanh").approximate)
    assert.are.equal("none", nn.GELU().approximate)
    assert.are.equal("nn.LeakyReLU(0.2)", tostring(nn.LeakyReLU(0.2)))
    assert.are.equal("nn.Softmax(dim = -1)", tostring(nn.Softmax(-1)))
    assert.are.equal('nn.GELU(approximate = "tanh")', tostring(nn.GELU("tanh")))
  end)
end)

describe("against PyTorch (torch_math_reference.json)", function()
  local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
  local f = assert(io.open(here .. "fixtures/torch_math_reference.json", "r"))
  local ref = cjson.decode(f:read("a"))
  f:close()
  local function T(obj, dev, dtype)
    return lunet.tensor(obj.data, { dtype = dtype }):reshape(obj.shape):to(dev)
  end
  local function args_of(list)
    local out = {}
    for i, v in ipairs(list) do out[i] = v ~= cjson.null and v or nil end
    return out, #list
  end
  for _, dev in ipairs(devices) do
    it(dev .. ": unary ops to 1e-6 relative", function()
      for _, c in ipairs(ref.unary) do
        local x = T(c.input, dev)
        local a = args_of(c.args)
        helpers.assert_close(x[c.op](x, a[1], a[2]), T(c.output, "cpu"), 1e-6, 1e-7, c.op)
      end
    end)
    it(dev .. ": activations, softmax and log_softmax, forward and input gradient, to 1e-5", function()
      for _, c in ipairs(ref.activations) do
        local a, n = args_of(c.args)
        local m = nn[c.type](table.unpack(a, 1, n))
        local x = T(c.input, dev)
        local what = c.type .. " " .. cjson.encode(c.args)
        helpers.assert_close(m:forward(x), T(c.output, "cpu"), 1e-5, 1e-6, what)
        helpers.assert_close(m:backward(x, T(c.grad_output, dev)), T(c.grad_input, "cpu"), 1e-5, 1e-6, what)
      end
    end)
    it(dev .. ": losses and their gradients to 1e-5", function()
      for _, c in ipairs(ref.losses) do
        local a, n = args_of(c.args)
        local crit = nn[c.type](table.unpack(a, 1, n))
        local x = T(c.input, dev)
        local t = c.labels and T(c.labels, dev, "int32") or T(c.target, dev)
        local what = c.type .. " " .. cjson.encode(c.args)
        local l = crit:forward(x, t)
        assert(math.abs(l - c.loss) <= 1e-5 * math.abs(c.loss) + 1e-7, ("%s: %.9g vs %.9g"):format(what, l, c.loss))
        helpers.assert_close(crit:backward(x, t), T(c.grad_input, "cpu"), 1e-5, 1e-7, what)
      end
    end)
    it(dev .. ": broadcasting arithmetic and comparisons", function()
      local ops = { add = "__add", sub = "__sub", mul = "__mul", div = "__div" }
      local mt = getmetatable(lunet.empty({ 0 }))
      for _, c in ipairs(ref.broadcast) do
        local a, b = T(c.a, dev), T(c.b, dev)
        local out = ops[c.op] and mt[ops[c.op]](a, b) or a[c.op](a, b)
        helpers.assert_close(out, T(c.output, "cpu"), 1e-6, 0, c.op)
      end
    end)
  end
end)

describe("tostring and summary", function()
  local function model()
    return nn.Sequential(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.GELU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(4 * 14 * 14, 10), nn.Softmax(2))
  end
  it("tostring shows the tree", function()
    local s = tostring(model())
    assert.truthy(s:find("nn.Sequential {", 1, true))
    assert.truthy(s:find("(2): nn.GELU()", 1, true))
    assert.truthy(s:find("(6): nn.Softmax(dim = 2)", 1, true))
  end)
  it("summary lists output shapes, parameters and FLOPs with totals", function()
    local m = model()
    local text, info = m:summary({ 8, 1, 28, 28 }), m:summary_table({ 8, 1, 28, 28 })
    assert.are.equal("string", type(text))
    local conv, linear = info.rows[2], info.rows[6]
    assert.are.same({ 8, 4, 28, 28 }, conv.output_shape)
    assert.are.equal(4 * 9 + 4, conv.params)
    assert.are.equal(8 * 4 * 28 * 28 * (2 * 9 + 1), conv.flops)
    assert.are.same({ 8, 10 }, linear.output_shape)
    assert.are.equal(784 * 10 + 10, linear.params)
    assert.are.equal(7850, info.total_params - 40)
    local sum = 0
    for i = 2, #info.rows do sum = sum + info.rows[i].flops end
    assert.are.equal(sum, info.total_flops)
    assert.truthy(text:find("Total params: 7890", 1, true))
    assert.truthy(text:find("[8, 4, 14, 14]", 1, true))
    -- the shapes agree with a real forward pass
    local y = m:forward(lunet.rand({ 8, 1, 28, 28 }))
    assert.are.same(y:shape(), m:output_shape({ 8, 1, 28, 28 }))
    assert.are.equal(info.total_flops, m:flops({ 8, 1, 28, 28 }))
  end)
  it("containers: Residual's block and a fused ConvReLUPool chain their parts", function()
    local res = nn.Sequential(nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, { padding = 1 }), nn.ReLU())),
      nn.AdaptiveAvgPool2d(1), nn.Flatten())
    local info = res:summary_table({ 3, 2, 5, 5 })
    assert.are.same(res:forward(lunet.rand({ 3, 2, 5, 5 })):shape(), info.rows[1].output_shape)
    assert.are.equal(2 * 2 * 9 + 2, info.total_params)
    local fused = nn.ConvReLUPool(nn.Conv2d(1, 4, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2))
    local f = fused:summary_table({ 2, 1, 28, 28 })
    assert.are.same({ 2, 4, 14, 14 }, f.rows[1].output_shape)
    assert.are.same({ 2, 4, 28, 28 }, f.rows[3].output_shape) -- the ReLU, before pooling
    assert.are.equal(40, f.total_params)
  end)
  it("a shape without the batch dimension is read as a batch of one", function()
    local info = model():summary_table({ 1, 28, 28 })
    assert.are.same({ 1, 1, 28, 28 }, info.input_shape)
    assert.are.same({ 1, 10 }, info.rows[1].output_shape)
    assert.truthy(model():summary({ 1, 28, 28 }):find("Input shape: [1, 1, 28, 28]", 1, true))
  end)
  it("a wrong input shape is an error naming the module and the shape", function()
    helpers.assert_error(function() return model():summary({ 8, 3, 28, 28 }) end,
      "lunet.nn.Conv2d:output_shape", "[8, 3, 28, 28]")
    helpers.assert_error(function() return model():summary("x") end, "summary", "input_shape")
    helpers.assert_error(function() return nn.Linear(3, 2):output_shape({ 4, 5 }) end,
      "lunet.nn.Linear:output_shape", "[N, 3]", "[4, 5]")
  end)
end)
