--- Side by side, in one process: the seed model's training step, inference
-- batch and per-layer times for several CPU kernel variants, interleaved
-- (every round runs each variant in turn, so a change in the machine's load
-- hits all of them). A variant is a kernel level, optionally with a compute
-- precision: "avx2", "avx512", "avx512bf16:bfloat16". Prints per-variant
-- medians and each variant's ratio to the first. The tool behind the
-- per-level and bf16 steps of bench/NOTES.md.
--
--   lua5.4 bench/cpu_levels_bench.lua [--variants avx2,avx512] [--rounds 10]
--                                     [--steps 3] [--threads 2] [--batch 64]
local lunet = require("lunet")
local bench = require("lunet.bench")
local session = require("lunet.session")
local core = require("lunet.core")

local levels = lunet.cpu_levels()
local args = { variants = table.concat(levels, ","), rounds = 10, steps = 3, threads = nil, batch = 64 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-(.+)$")
  if not key or (args[key] == nil and key ~= "threads") or arg[i + 1] == nil then
    io.stderr:write("usage: cpu_levels_bench.lua [--variants a,b:bfloat16] [--rounds N] [--steps N] [--threads N] [--batch N]\n")
    os.exit(2)
  end
  args[key] = key == "variants" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  i = i + 2
end
if args.threads then lunet.set_num_threads(args.threads) end

local variants = {}
for spec in args.variants:gmatch("[^,]+") do
  local level, precision = spec:match("^([^:]+):?(.*)$")
  variants[#variants + 1] = { name = spec, level = level, precision = precision ~= "" and precision or "float32" }
end

local model = session.fresh_model(1)
local criterion = lunet.nn.CrossEntropyLoss()
local optimizer = lunet.optim.Adam(model, { lr = 1e-4 })
local x = lunet.rand({ args.batch, 1, 28, 28 })
local labels = {}
for j = 1, args.batch do labels[j] = (j * 7) % 10 + 1 end
local y = lunet.tensor(labels, { dtype = "int32" })

-- per-layer times through wrappers of the fused blocks' core ops and Linear
local current, layer_times = nil, {}
local function record(name, t)
  local per = layer_times[current.name]
  per[name] = per[name] or {}
  table.insert(per[name], t)
end
local block_forward, block_backward = core.conv_block_forward, core.conv_block_backward
core.conv_block_forward = function(xx, ...)
  local t0 = lunet.clock()
  local a, b = block_forward(xx, ...)
  record(("fwd  block %d ch"):format(xx:size(2)), lunet.clock() - t0)
  return a, b
end
core.conv_block_backward = function(xx, ...)
  local t0 = lunet.clock()
  local a, b, c = block_backward(xx, ...)
  record(("bwd  block %d ch"):format(xx:size(2)), lunet.clock() - t0)
  return a, b, c
end
for l = 1, #model do
  local m = model[l]
  if m.__typename == "Linear" then
    local mt, name = getmetatable(m), m.weight:size(2) > 1000 and "fc1" or "fc2"
    m.forward = function(self, ...)
      local t0 = lunet.clock()
      local out = mt.forward(self, ...)
      record("fwd  " .. name, lunet.clock() - t0)
      return out
    end
    m.backward = function(self, ...)
      local t0 = lunet.clock()
      local out = mt.backward(self, ...)
      record("bwd  " .. name, lunet.clock() - t0)
      return out
    end
  end
end

local results = {}
for _, v in ipairs(variants) do
  results[v.name] = { train = {}, infer = {} }
  layer_times[v.name] = {}
end
local function use(v)
  current = v
  lunet.set_cpu_level(v.level)
  lunet.autocast(v.precision)
end
-- warm-up: every variant once (workspaces, caches)
for _, v in ipairs(variants) do
  use(v)
  session.train_step(model, criterion, optimizer, x, y)
end
for round = 1, args.rounds do
  local order = {}
  for k = 1, #variants do order[k] = variants[round % 2 == 1 and k or #variants + 1 - k] end
  for _, v in ipairs(order) do
    use(v)
    local r = results[v.name]
    for _ = 1, args.steps do
      local t0 = lunet.clock()
      session.train_step(model, criterion, optimizer, x, y)
      table.insert(r.train, lunet.clock() - t0)
    end
    model:eval()
    for _ = 1, args.steps do
      local t0 = lunet.clock()
      model:forward(x)
      table.insert(r.infer, lunet.clock() - t0)
    end
    model:train()
  end
end
lunet.autocast(false)

local load = io.open("/proc/loadavg")
print(("cpu_levels_bench: %d threads, batch %d, %d rounds x %d steps, interleaved; load %s"):format(
  lunet.get_num_threads(), args.batch, args.rounds, args.steps, load and load:read("l") or "?"))
if load then load:close() end
local base = results[variants[1].name]
local base_train, base_infer = bench.stats(base.train).median, bench.stats(base.infer).median
for _, v in ipairs(variants) do
  local r = results[v.name]
  local tr, inf = bench.stats(r.train).median, bench.stats(r.infer).median
  local layers = {}
  local names = {}
  for name in pairs(layer_times[v.name]) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    layers[#layers + 1] = ("%s %.2f"):format(name:gsub("%s+", " "), 1e3 * bench.stats(layer_times[v.name][name]).median)
  end
  print(("  %-22s train %6.2f ms (%5.0f img/s, x%.2f)  infer %6.2f ms (%5.0f img/s, x%.2f)"):format(v.name,
    1e3 * tr, args.batch / tr, base_train / tr, 1e3 * inf, args.batch / inf, base_infer / inf))
  print("      ms: " .. table.concat(layers, ", "))
end
