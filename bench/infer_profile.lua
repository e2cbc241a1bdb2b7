#!/usr/bin/env lua5.4
--- The seed model's inference pass layer by layer, on the CPU, against a
-- roofline-ish floor for each layer: its arithmetic at the measured FMA peak
-- (--peak, GFLOP/s for all threads: see bench/fma_peak.c) and its least
-- memory traffic at a measured streaming rate (a ReLU over 64 MB in, 64 MB
-- out, timed here). Every op runs on the model's own weights and on inputs of
-- the seed's shapes (batch 64); the ops take turns round by round, so a
-- change in the machine's load hits all of them; medians. Also the whole
-- pass (model:forward in evaluate mode) in the same rounds.
--
--   lua5.4 bench/infer_profile.lua [--threads 2] [--batch 64] [--rounds 30] [--peak 211]
--                                  [--precision float32|bfloat16]  (lunet.autocast's)
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(("infer_profile.lua needs Lua 5.4 (this is %s): run it as `lua5.4 %s`\n"):format(
    _VERSION, arg and arg[0] or "bench/infer_profile.lua"))
  os.exit(1)
end
local find_lunet = loadfile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../scripts/find_lunet.lua")
if find_lunet then find_lunet(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/..") end
local lunet = require("lunet")
local core = require("lunet.core")
local bench = require("lunet.bench")
local session = require("lunet.session")

local args = { threads = 2, batch = 64, rounds = 30, peak = 211, precision = "float32" }
local i = 1
while i <= #arg do
  local key = arg[i]:match("^%-%-(.+)$")
  if not key or args[key] == nil or arg[i + 1] == nil then
    io.stderr:write("usage: infer_profile.lua [--threads N] [--batch N] [--rounds N] [--peak GFLOPS]"
      .. " [--precision float32|bfloat16]\n")
    os.exit(2)
  end
  args[key] = key == "precision" and arg[i + 1] or tonumber(arg[i + 1])
  i = i + 2
end
lunet.set_num_threads(math.tointeger(args.threads))
lunet.autocast(args.precision)
local n = math.tointeger(args.batch)

local model = session.fresh_model(1)
model:eval()
local conv1, conv2, fc1, fc2 = model[1], model[4], model[8], model[10]
lunet.manual_seed(7)
local x = lunet.rand({ n, 1, 28, 28 })
-- every intermediate, made once by a forward pass of the unfused ops
local c1 = core.conv2d_forward(x, conv1.weight, conv1.bias, 1, 1, 1, 1)
local r1 = core.relu_forward(c1)
local p1 = core.pool2d_forward("max", r1, 2, 2, 2, 2, 0, 0)
local c2 = core.conv2d_forward(p1, conv2.weight, conv2.bias, 1, 1, 1, 1)
local r2 = core.relu_forward(c2)
local p2 = core.pool2d_forward("max", r2, 2, 2, 2, 2, 0, 0)
local flat = p2:reshape({ n, 128 * 7 * 7 })
local f1 = core.linear_forward(flat, fc1.weight, fc1.bias)
local r3 = core.relu_forward(f1)
local f2 = core.linear_forward(r3, fc2.weight, fc2.bias)
local b1, w1 = core.conv_block_forward(x, conv1.weight, conv1.bias, 1, 1, 1, 1)
local b2, w2 = core.conv_block_forward(p1, conv2.weight, conv2.bias, 1, 1, 1, 1)
local big_in, big_out = lunet.rand({ 16 * 1024 * 1024 }), lunet.empty({ 16 * 1024 * 1024 })

local F = 4 -- bytes per float (a winner is one byte)
local ops = {
  -- name, FLOPs (the direct convolution's for Winograd's layers), least bytes moved, run
  { "conv1", 2 * n * 64 * 9 * 784, F * (n * 784 + n * 64 * 784),
    function() core.conv2d_forward(x, conv1.weight, conv1.bias, 1, 1, 1, 1, c1) end },
  { "relu1", n * 64 * 784, F * 2 * n * 64 * 784, function() core.relu_forward(c1, r1) end },
  { "pool1", 3 * n * 64 * 196, F * (n * 64 * 784 + n * 64 * 196),
    function() core.pool2d_forward("max", r1, 2, 2, 2, 2, 0, 0, p1) end },
  { "block1 (conv1+relu+pool fused)", 2 * n * 64 * 9 * 784, F * (n * 784 + n * 64 * 196) + n * 64 * 196,
    function() core.conv_block_forward(x, conv1.weight, conv1.bias, 1, 1, 1, 1, b1, w1) end },
  { "conv2", 2 * n * 128 * 576 * 196, F * (n * 64 * 196 + n * 128 * 196),
    function() core.conv2d_forward(p1, conv2.weight, conv2.bias, 1, 1, 1, 1, c2) end },
  { "relu2", n * 128 * 196, F * 2 * n * 128 * 196, function() core.relu_forward(c2, r2) end },
  { "pool2", 3 * n * 128 * 49, F * (n * 128 * 196 + n * 128 * 49),
    function() core.pool2d_forward("max", r2, 2, 2, 2, 2, 0, 0, p2) end },
  { "block2 (conv2+relu+pool fused)", 2 * n * 128 * 576 * 196, F * (n * 64 * 196 + n * 128 * 49) + n * 128 * 49,
    function() core.conv_block_forward(p1, conv2.weight, conv2.bias, 1, 1, 1, 1, b2, w2) end },
  { "fc1 (+bias)", 2 * n * 6272 * 512, F * (512 * 6272 + n * 6272 + n * 512),
    function() core.linear_forward(flat, fc1.weight, fc1.bias, f1) end },
  { "relu3", n * 512, F * 2 * n * 512, function() core.relu_forward(f1, r3) end },
  { "fc2 (+bias)", 2 * n * 512 * 10, F * (10 * 512 + n * 512 + n * 10),
    function() core.linear_forward(r3, fc2.weight, fc2.bias, f2) end },
  { "whole pass (model:forward, eval)", nil, nil, function() model:forward(x) end },
  { "stream (relu 64 MB -> 64 MB)", nil, nil, function() core.relu_forward(big_in, big_out) end },
}

local times, cpu = {}, {}
for k = 1, #ops do times[k], cpu[k] = {}, {} end
for _ = 1, 2 do for k = 1, #ops do ops[k][4]() end end -- warm-up
for round = 1, math.tointeger(args.rounds) do
  for j = 1, #ops do
    local k = round % 2 == 1 and j or #ops + 1 - j
    local t0, c0 = lunet.clock(), os.clock()
    ops[k][4]()
    times[k][#times[k] + 1] = lunet.clock() - t0
    cpu[k][#cpu[k] + 1] = os.clock() - c0
  end
end

local load = io.open("/proc/loadavg")
local stream = bench.stats(times[#ops]).median
local bandwidth = 2 * F * 16 * 1024 * 1024 / stream -- bytes/s
print(("infer_profile: %d threads, batch %d, %d rounds (medians; min in brackets), %s, kernels %s, load %s"):format(
  lunet.get_num_threads(), n, args.rounds, lunet.precision(), tostring(lunet.device("cpu"):info().kernels),
  load and load:read("l") or "?"))
if load then load:close() end
print(("  peak %.0f GFLOP/s (given), stream %.1f GB/s (measured)"):format(args.peak, bandwidth / 1e9))
-- cpu: the processor time of all threads (os.clock), which a loaded machine
-- inflates far less than the wall-clock time; floors are wall-clock times on
-- all threads, so "x floor" compares them with the wall-clock median
print(("  %-34s %8s %8s %8s %9s %8s %8s %7s"):format("op", "ms", "(min)", "cpu ms", "GFLOP/s", "flop-fl",
  "mem-fl", "x floor"))
for k, op in ipairs(ops) do
  local st = bench.stats(times[k])
  if op[2] then
    local flop_floor = op[2] / (args.peak * 1e9)
    local mem_floor = op[3] / bandwidth
    local floor = math.max(flop_floor, mem_floor)
    print(("  %-34s %8.3f %8.3f %8.3f %9.1f %8.3f %8.3f %7.1f"):format(op[1], 1e3 * st.median, 1e3 * st.min,
      1e3 * bench.stats(cpu[k]).median, op[2] / st.median / 1e9, 1e3 * flop_floor, 1e3 * mem_floor, st.median / floor))
  else
    print(("  %-34s %8.3f %8.3f %8.3f    (%5.0f img/s)"):format(op[1], 1e3 * st.median, 1e3 * st.min,
      1e3 * bench.stats(cpu[k]).median, n / st.median))
  end
end
