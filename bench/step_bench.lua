#!/usr/bin/env lua5.4
--- Times one training step of the session's model (lunet.models.fashion_alexnet)
-- layer by layer: forward and backward of every module, the loss (left on
-- the device, as the session's loop keeps it), zero_grad and the Adam step,
-- plus whole steps and a forward-only (inference) pass, on random data of the
-- seed's shape. Warm-up steps are not timed; every number is the median of
-- the timed repeats. On the CPU it also times the Adam update alone against
-- a plain fused C loop with the same reads and writes (28 bytes a
-- parameter), alternating the two. The tool behind each step of
-- bench/NOTES.md.
--
--   lua5.4 bench/step_bench.lua [--threads 2] [--batch 64] [--repeat 20] [--warmup 3] [--device cpu]
--                               [--fuse 0]   (0: no fused conv blocks, for comparisons)
--                               [--flat 0]   (0: the model not flattened: one Adam call per tensor)
--                               [--compare 0] (1: also the step as it was before issue 14, step for
--                                             step in turn with today's, to time both under one load)
--                               [--precision fp32|bf16] (bf16: under lunet.autocast("bfloat16"))
--                               [--alternate N] (N > 0: also at least N training steps in each precision,
--                                               fp32 and bf16 taking turns every 8 steps on one model,
--                                               for their ratio under one load; AVX512-BF16 CPUs)
-- LUNET_CPU_WINOGRAD=0 in the environment turns Winograd off, for the same.
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(("step_bench.lua needs Lua 5.4 (this is %s): run it as `lua5.4 %s`\n"):format(
    _VERSION, arg and arg[0] or "bench/step_bench.lua"))
  os.exit(1)
end
-- from a checkout, the checkout's local build when lunet is not installed (scripts/find_lunet.lua)
local find_lunet = loadfile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../scripts/find_lunet.lua")
if find_lunet then find_lunet(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/..") end
local lunet = require("lunet")
local bench = require("lunet.bench")
local session = require("lunet.session")

local args = { threads = nil, batch = 64, ["repeat"] = 20, warmup = 3, device = "cpu", fuse = 1, flat = 1, compare = 0,
  precision = "fp32", alternate = 0 }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-(.+)$")
  if not key or args[key] == nil and key ~= "threads" then
    io.stderr:write("usage: step_bench.lua [--threads N] [--batch N] [--repeat N] [--warmup N] [--device NAME] [--fuse 0|1] [--flat 0|1] [--compare 0|1] [--precision fp32|bf16] [--alternate N]\n")
    os.exit(2)
  end
  args[key] = (key == "device" or key == "precision") and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
  if args[key] == nil then
    io.stderr:write(("step_bench.lua: --%s needs %s, not %s\n"):format(key,
      (key == "device" or key == "precision") and "a value" or "an integer", tostring(arg[i + 1])))
    os.exit(2)
  end
  i = i + 2
end
if args.threads then lunet.set_num_threads(args.threads) end
if args.precision ~= "fp32" and args.precision ~= "bf16" then
  io.stderr:write(("step_bench.lua: --precision must be fp32 or bf16, not %s\n"):format(tostring(args.precision)))
  os.exit(2)
end
if args.precision == "bf16" then lunet.autocast("bfloat16") end

local dev = lunet.device(args.device)
local model = session.fresh_model(1)
if args.flat == 0 then -- a copy that was never flattened
  local plain = lunet.models.fashion_alexnet()
  plain:load_state_dict(model:state_dict())
  model = plain
end
model = model:to(dev)
model.fuse = args.fuse ~= 0
local criterion = lunet.nn.CrossEntropyLoss()
local optimizer = lunet.optim.Adam(model, { lr = 1e-3 })
local x = lunet.rand({ args.batch, 1, 28, 28 }):to(dev)
local labels = {}
for j = 1, args.batch do labels[j] = (j * 7) % 10 + 1 end
local y = lunet.tensor(labels, { dtype = "int32" }):to(dev)

local names, times = {}, {}

--- Whether the model is flat (its optimizer then makes one call).
local function nn_flat(m)
  local params, grads = m:parameters()
  return lunet.nn._intact_flat(rawget(m, "_flat"), params, grads) ~= nil
end
local function record(name, seconds)
  if not times[name] then
    names[#names + 1] = name
    times[name] = {}
  end
  local list = times[name]
  list[#list + 1] = seconds
end

-- Every phase timed by wrappers around the modules' forward and backward, the
-- fused blocks' core ops (Sequential calls core.conv_block_* for
-- Conv2d -> ReLU -> MaxPool2d, see nn.lua), the loss and the optimizer; the
-- device is synchronised around each.
local keep = false
local function timed(name, fn)
  return function(...)
    dev:synchronize()
    local t0 = lunet.clock()
    local a, b = fn(...)
    dev:synchronize()
    if keep then record(name, lunet.clock() - t0) end
    return a, b
  end
end
for l = 1, #model do
  local m = model[l]
  m.forward = timed(("fwd  %d %s"):format(l, m.__typename), getmetatable(m).forward)
  m.backward = timed(("bwd  %d %s"):format(l, m.__typename), getmetatable(m).backward)
end
local core = require("lunet.core")
local block_forward, block_backward = core.conv_block_forward, core.conv_block_backward
core.conv_block_forward = function(x, ...)
  return timed(("fwd  block %d ch"):format(x:size(2)), block_forward)(x, ...)
end
core.conv_block_backward = function(x, ...)
  return timed(("bwd  block %d ch"):format(x:size(2)), block_backward)(x, ...)
end

local function timed_step(keep_times)
  keep = keep_times
  dev:synchronize()
  local t_step = lunet.clock()
  timed("zero_grad", function() optimizer:zero_grad() end)()
  local out = model:forward(x)
  local g = timed("loss fwd+bwd", function()
    criterion:forward_tensor(out, y)
    return criterion:backward(out, y)
  end)()
  model:backward(x, g, { input_gradient = false }) -- as the session's step: the data needs none
  timed("adam", function() optimizer:step() end)()
  dev:synchronize()
  if keep then record("STEP (with the clocks)", lunet.clock() - t_step) end
  keep = false
end

for _ = 1, args.warmup do timed_step(false) end
for _ = 1, args["repeat"] do timed_step(true) end

-- whole steps and inference passes, untimed inside
for l = 1, #model do model[l].forward, model[l].backward = nil, nil end
core.conv_block_forward, core.conv_block_backward = block_forward, block_backward
local _, loss_sum, correct = session.epoch_counters(dev)
local step_times = bench.time(function() -- the session's step: loss and correct counts on the device
  session.train_step_on_device(model, criterion, optimizer, x, y, loss_sum, correct)
end, { device = dev, warmup = 1, ["repeat"] = args["repeat"] })
model:eval()
local infer_times = bench.time(function() model:forward(x) end,
  { device = dev, warmup = 2, ["repeat"] = args["repeat"] })
model:train()

local flops = bench.model_flops(model, { 1, 28, 28 })
print(("step_bench: %s, %d threads, batch %d, median of %d (after %d warm-up); fused blocks %s, kernels %s, %s"):format(
  tostring(dev), lunet.get_num_threads(), args.batch, args["repeat"], args.warmup, model.fuse and "on" or "off",
  tostring(dev:info().kernels), args.precision))
for _, name in ipairs(names) do
  local st = bench.stats(times[name])
  print(("  %-26s %8.2f ms  (min %7.2f)"):format(name, 1e3 * st.median, 1e3 * st.min))
end
local function line(name, t, factor)
  print(("  %-26s %8.2f ms  (min %7.2f)  %6.0f img/s  %6.1f GFLOP/s (min: %6.0f img/s)"):format(name,
    1e3 * t.median, 1e3 * t.min, args.batch / t.median, args.batch * flops * factor / t.median / 1e9,
    args.batch / t.min))
end
line("train step", step_times, bench.TRAIN_FLOPS_FACTOR)
line("inference batch", infer_times, 1)

-- The Adam update alone against the memory floor: the optimizer's step on
-- the model as it is, and the plain loop over tensors of the same size,
-- taking turns (CPU only: the loop runs on the CPU's threads).
if dev.type == "cpu" then
  local params = model:parameters()
  local n = 0
  for _, p in ipairs(params) do n = n + p:numel() end
  local a, b, c, d = lunet.rand({ n }), lunet.rand({ n }), lunet.rand({ n }), lunet.rand({ n })
  local adam_t, loop_t = {}, {}
  for r = 1, 2 * args["repeat"] + 2 do
    local t0 = lunet.clock()
    if r % 2 == 1 then optimizer:step() else core.bench_stream_update(a, b, c, d) end
    local t = lunet.clock() - t0
    if r > 2 then
      local list = r % 2 == 1 and adam_t or loop_t
      list[#list + 1] = t
    end
  end
  local sa, sl = bench.stats(adam_t), bench.stats(loop_t)
  print(("  %-26s %8.2f ms  (min %7.2f)  %5.1f GB/s  (%d parameters, %s)"):format("adam step alone",
    1e3 * sa.median, 1e3 * sa.min, 28 * n / sa.median / 1e9, n,
    nn_flat(model) and "one call over the flat buffers" or "one call per tensor"))
  print(("  %-26s %8.2f ms  (min %7.2f)  %5.1f GB/s  (same 28 bytes a parameter)"):format(
    "plain fused loop", 1e3 * sl.median, 1e3 * sl.min, 28 * n / sl.median / 1e9))
  print(("  adam / plain loop: %.2fx (medians), %.2fx (minima)"):format(sa.median / sl.median, sa.min / sl.min))
end

-- The step before issue 14 against today's, taking turns step by step: a
-- model that is not flat (Adam: one call per tensor), zero_grad writing
-- zeros that backward then adds to, and the loss read on the host each
-- step; against the flat model, lazy zero_grad and the loss summed on the
-- device. Same weights, same batch.
if args.compare ~= 0 then
  local function copy_of(source, flat)
    local m = lunet.models.fashion_alexnet()
    m:load_state_dict(source:state_dict())
    if flat then m:flat_parameters() end
    m = m:to(dev)
    m.fuse = args.fuse ~= 0
    return m
  end
  local old_model, new_model = copy_of(model, false), copy_of(model, true)
  local old_opt, new_opt = lunet.optim.Adam(old_model), lunet.optim.Adam(new_model)
  local _, sum, hits = session.epoch_counters(dev)
  local function old_step()
    old_opt:zero_grad()
    old_model:parameters() -- reading the gradients writes their zeros: the old memory pass
    local out = old_model:forward(x)
    local loss = criterion:forward(out, y)
    old_model:backward(x, criterion:backward(out, y)) -- adds into the zeros
    old_opt:step()
    return loss
  end
  local function new_step()
    session.train_step_on_device(new_model, criterion, new_opt, x, y, sum, hits)
  end
  local old_t, new_t = {}, {}
  local rounds = 2 * args["repeat"]
  for r = 1, rounds + 2 do
    local first, second = old_step, new_step
    if r % 2 == 0 then first, second = new_step, old_step end
    for _, fn in ipairs({ first, second }) do
      dev:synchronize()
      local t0 = lunet.clock()
      fn()
      dev:synchronize()
      local t = lunet.clock() - t0
      if r > 2 then
        local list = fn == old_step and old_t or new_t
        list[#list + 1] = t
      end
    end
  end
  local so, sn = bench.stats(old_t), bench.stats(new_t)
  print(("  %-26s %8.2f ms  (min %7.2f)  %6.0f img/s"):format("step before issue 14", 1e3 * so.median,
    1e3 * so.min, args.batch / so.median))
  print(("  %-26s %8.2f ms  (min %7.2f)  %6.0f img/s"):format("step now", 1e3 * sn.median,
    1e3 * sn.min, args.batch / sn.median))
  print(("  now / before: %.3fx the time (medians of %d steps each, taking turns), %.3fx (minima)"):format(
    sn.median / so.median, #new_t, sn.min / so.min))
end

-- fp32 against bf16 under one load: whole training steps of the session's
-- kind on this model and batch, the precision taking turns every 8 steps
-- (the first 2 after a switch not kept: they meet the other precision's
-- caches), so a machine whose speed drifts (a shared VM) slows both alike;
-- the ratio of the medians is bf16's speed-up in training.
if args.alternate > 0 then
  -- the level in use (LUNET_CPU_LEVEL may force one below avx512bf16, where bf16 changes nothing)
  local has_bf16 = dev.type == "cpu" and tostring(dev:info().kernels):match("avx512bf16") ~= nil
  if not has_bf16 then
    print("  alternate: skipped (needs the cpu device running its avx512bf16 kernels)")
  else
    local _, sum, hits = session.epoch_counters(dev)
    local per = { fp32 = {}, bf16 = {} }
    local BLOCK, SETTLE = 8, 2 -- steps per turn; the first ones after a switch are not kept
    local turn = 0
    while #per.bf16 < args.alternate do
      turn = turn + 1
      local precision = turn % 2 == 1 and "fp32" or "bf16"
      lunet.autocast(precision == "bf16" and "bfloat16" or false)
      for s = 1, BLOCK do
        local t0 = lunet.clock()
        session.train_step_on_device(model, criterion, optimizer, x, y, sum, hits)
        local t = lunet.clock() - t0
        if s > SETTLE and turn > 2 then table.insert(per[precision], t) end
      end
    end
    lunet.autocast(args.precision == "bf16" and "bfloat16" or false)
    local sf, sb = bench.stats(per.fp32), bench.stats(per.bf16)
    for _, row in ipairs({ { "step fp32 (alternating)", sf }, { "step bf16 (alternating)", sb } }) do
      print(("  %-26s %8.2f ms  (min %7.2f)  %6.0f img/s"):format(row[1], 1e3 * row[2].median, 1e3 * row[2].min,
        args.batch / row[2].median))
    end
    print(("  bf16 / fp32 training speed: %.3fx (medians of %d steps each, in turns of 8), %.3fx (minima)"):format(
      sf.median / sb.median, #per.bf16, sf.min / sb.min))
  end
end
