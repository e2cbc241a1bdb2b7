-- Layers, loss and optimizers against PyTorch's own numbers
-- (spec/fixtures/torch_reference.json, written by make_torch_reference.py
-- with PyTorch 1.13 on the CPU): forward outputs, input and parameter
-- gradients, running statistics, and parameters after several optimizer
-- steps, in float32, to about 1e-5 relative, on every device.
-- LUNET_VERBOSE=1 prints the worst relative error of each check.
local lunet = require("lunet")
local cjson = require("cjson")
local helpers = require("helpers")
local nn = lunet.nn

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local reference
do
  local f = assert(io.open(here .. "fixtures/torch_reference.json", "r"))
  reference = cjson.decode(f:read("a"))
  f:close()
end

-- Elementwise: |a - b| <= RTOL * |b| + RTOL * max|b| (float32 sums in another
-- order differ from PyTorch's by a few units in the last place of the
-- largest terms).
local RTOL = 2e-5

local function from_json(obj, dtype)
  if obj == nil or obj == cjson.null then return nil end
  local t = lunet.tensor(obj.data, { dtype = dtype })
  return t:reshape(obj.shape)
end

local worst = {}

--- Normwise relative error max|a - b| / max|b|, recorded per check kind.
local function compare(kind, actual, expected_json, what)
  local expected = from_json(expected_json)
  local e = expected:reshape({ -1 })
  local scale = math.max(math.abs(e:max()), math.abs(e:min()), 1e-30)
  helpers.assert_close(actual, expected, RTOL, RTOL * scale, what)
  local diff = (actual:to("cpu"):reshape({ -1 }) - e)
  local rel = math.max(math.abs(diff:max()), math.abs(diff:min())) / scale
  if rel > (worst[kind] or -1) then worst[kind] = rel end
  return rel
end

local function pair(v)
  if v == nil or v == cjson.null then return nil end
  return { v[1], v[2] }
end

local function build_layer(case)
  local a = case.args
  if case.type == "Linear" then
    return nn.Linear(a.in_features, a.out_features, { bias = a.bias })
  elseif case.type == "Conv2d" then
    return nn.Conv2d(a.in_channels, a.out_channels, pair(a.kernel),
      { stride = pair(a.stride), padding = pair(a.padding), bias = a.bias })
  elseif case.type == "MaxPool2d" then
    return nn.MaxPool2d(pair(a.kernel), pair(a.stride), pair(a.padding))
  elseif case.type == "AvgPool2d" then
    return nn.AvgPool2d(pair(a.kernel), pair(a.stride), pair(a.padding))
  elseif case.type == "ReLU" then
    return nn.ReLU()
  elseif case.type == "Flatten" then
    return nn.Flatten()
  elseif case.type == "BatchNorm2d" then
    local m = nn.BatchNorm2d(a.num_features, { eps = a.eps, momentum = a.momentum })
    if case.running_mean_before then
      m.running_mean:copy(from_json(case.running_mean_before))
      m.running_var:copy(from_json(case.running_var_before))
    elseif a.eval then
      m.running_mean:copy(from_json(case.running_mean))
      m.running_var:copy(from_json(case.running_var))
      m:eval()
    end
    return m
  end
  error("unknown layer type " .. tostring(case.type))
end

local function set_params(m, case)
  if case.weight then m.weight:copy(from_json(case.weight)) end
  if case.bias then m.bias:copy(from_json(case.bias)) end
end

describe("agreement with PyTorch " .. reference.torch_version, function()
  for _, dev in ipairs(helpers.devices()) do
    describe("on " .. dev, function()
      for _, case in ipairs(reference.layers) do
        it(case.name .. ": forward, input gradient, parameter gradients", function()
          local m = build_layer(case)
          set_params(m, case)
          m:to(dev)
          local x = from_json(case.input):to(dev)
          local kind = case.type
          compare(kind .. " forward", m:forward(x), case.output, "output")
          if case.type == "BatchNorm2d" and not case.args.eval then
            compare(kind .. " running stats", m.running_mean, case.running_mean, "running_mean")
            compare(kind .. " running stats", m.running_var, case.running_var, "running_var")
          end
          m:zero_grad()
          local gx = m:backward(x, from_json(case.grad_output):to(dev))
          compare(kind .. " grad input", gx, case.grad_input, "grad_input")
          if case.grad_weight then compare(kind .. " grad weight", m.grad_weight, case.grad_weight, "grad_weight") end
          if case.grad_bias then compare(kind .. " grad bias", m.grad_bias, case.grad_bias, "grad_bias") end
          if case.args.bias == false then assert.is_nil(m.bias) end
        end)
      end

      for _, case in ipairs(reference.losses) do
        it(case.name .. ": loss and gradient", function()
          local crit = nn.CrossEntropyLoss()
          local logits = from_json(case.logits):to(dev)
          local labels = from_json(case.labels, "int32"):to(dev)
          local loss = crit:forward(logits, labels)
          assert.is_true(math.abs(loss - case.loss) <= RTOL * math.abs(case.loss),
            ("loss %.9g, PyTorch %.9g"):format(loss, case.loss))
          local rel = math.abs(loss - case.loss) / math.abs(case.loss)
          if rel > (worst["CrossEntropy loss"] or -1) then worst["CrossEntropy loss"] = rel end
          compare("CrossEntropy grad logits", crit:backward(logits, labels), case.grad_logits, "grad_logits")
        end)
      end

      for _, case in ipairs(reference.optimizers) do
        it(case.name .. ": parameters after each of " .. #case.trajectory .. " steps", function()
          local model = nn.Linear(4, 3)
          set_params(model, case)
          model:to(dev)
          local opt = lunet.optim[case.type](model, case.opts)
          for step, grads in ipairs(case.grads) do
            model.grad_weight:copy(from_json(grads.weight))
            model.grad_bias:copy(from_json(grads.bias))
            opt:step()
            local kind = case.type .. " parameters"
            compare(kind, model.weight, case.trajectory[step].weight, "weight after step " .. step)
            compare(kind, model.bias, case.trajectory[step].bias, "bias after step " .. step)
          end
        end)
      end

      for _, case in ipairs(reference.training) do
        it(case.name .. ": losses and final parameters of a small CNN", function()
          local model
          if case.model == "two blocks" then
            model = nn.Sequential(nn.Conv2d(1, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
              nn.Conv2d(16, 16, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
              nn.Linear(16 * 2 * 2, 4))
          else
            model = nn.Sequential(nn.Conv2d(1, 3, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
              nn.Flatten(), nn.Linear(27, 4))
          end
          local params = model:parameters()
          assert.equal(#case.initial, #params)
          for i, p in ipairs(params) do p:copy(from_json(case.initial[i])) end
          model:to(dev)
          local crit = nn.CrossEntropyLoss()
          local opt = lunet.optim[case.type](model, case.opts)
          local x = from_json(case.input):to(dev)
          local labels = from_json(case.labels, "int32"):to(dev)
          for step, expected in ipairs(case.losses) do
            opt:zero_grad()
            local out = model:forward(x)
            local loss = crit:forward(out, labels)
            assert.is_true(math.abs(loss - expected) <= 1e-5 * math.abs(expected),
              ("step %d: loss %.9g, PyTorch %.9g"):format(step, loss, expected))
            model:backward(x, crit:backward(out, labels))
            opt:step()
          end
          for i, p in ipairs(model:parameters()) do
            compare(case.type .. " training parameters", p, case.final[i], "parameter " .. i)
          end
        end)
      end
    end)
  end

  it("reports the worst relative errors (LUNET_VERBOSE=1 prints them)", function()
    local kinds = {}
    for k in pairs(worst) do kinds[#kinds + 1] = k end
    table.sort(kinds)
    assert.is_true(#kinds >= 10, "every kind of check ran")
    for _, k in ipairs(kinds) do
      assert.is_true(worst[k] <= 1e-4, k .. ": " .. worst[k])
      if os.getenv("LUNET_VERBOSE") then print(("  %-32s %.2e"):format(k, worst[k])) end
    end
  end)
end)
