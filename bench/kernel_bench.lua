#!/usr/bin/env lua5.4
--- Times the heavy kernels of one training step at the session's shapes
-- (batch 64), each call repeated: conv1 and conv2 forward, backward data and
-- backward filter, and fc1's three products. Prints median and best time
-- and GFLOP/s of each (minimums are what a kernel can do on a busy machine).
--
--   lua5.4 bench/kernel_bench.lua [--threads 2] [--repeat 30] [--batch 64] [--only NAME]
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(("kernel_bench.lua needs Lua 5.4 (this is %s): run it as `lua5.4 %s`\n"):format(
    _VERSION, arg and arg[0] or "bench/kernel_bench.lua"))
  os.exit(1)
end
-- from a checkout, the checkout's local build when lunet is not installed (scripts/find_lunet.lua)
local find_lunet = loadfile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../scripts/find_lunet.lua")
if find_lunet then find_lunet(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/..") end
local lunet = require("lunet")
local core = require("lunet.core")
local bench = require("lunet.bench")

local args = { threads = nil, ["repeat"] = 30, batch = 64, only = nil }
for i = 1, #arg, 2 do
  local key = arg[i]:match("^%-%-(.+)$")
  if not key or (args[key] == nil and key ~= "threads" and key ~= "only") then
    io.stderr:write("usage: kernel_bench.lua [--threads N] [--repeat N] [--batch N] [--only NAME]\n")
    os.exit(2)
  end
  args[key] = key == "only" and arg[i + 1] or math.tointeger(tonumber(arg[i + 1]))
end
if args.threads then lunet.set_num_threads(args.threads) end
local n = args.batch

lunet.manual_seed(5)
local x1, w1, b1 = lunet.rand({ n, 1, 28, 28 }), lunet.randn({ 64, 1, 3, 3 }), lunet.randn({ 64 })
local x2, w2, b2 = lunet.rand({ n, 64, 14, 14 }), lunet.randn({ 128, 64, 3, 3 }), lunet.randn({ 128 })
local y1, dy1 = lunet.empty({ n, 64, 28, 28 }), lunet.randn({ n, 64, 28, 28 })
local y2, dy2 = lunet.empty({ n, 128, 14, 14 }), lunet.randn({ n, 128, 14, 14 })
local dx1, dx2 = lunet.empty(x1:shape()), lunet.empty(x2:shape())
local dw1, db1 = lunet.zeros(w1:shape()), lunet.zeros({ 64 })
local dw2, db2 = lunet.zeros(w2:shape()), lunet.zeros({ 128 })
local xf, wf, bf = lunet.rand({ n, 6272 }), lunet.randn({ 512, 6272 }), lunet.randn({ 512 })
local yf, dyf, dxf = lunet.empty({ n, 512 }), lunet.randn({ n, 512 }), lunet.empty({ n, 6272 })
local dwf, dbf = lunet.zeros(wf:shape()), lunet.zeros({ 512 })

local conv1 = 2 * n * 64 * 9 * 784
local conv2 = 2 * n * 128 * 576 * 196
local fc1 = 2 * n * 512 * 6272
local kernels = {
  { "conv1 forward", conv1, function() core.conv2d_forward(x1, w1, b1, 1, 1, 1, 1, y1) end },
  { "conv1 backward data", conv1, function() core.conv2d_backward_data(x1, w1, dy1, 1, 1, 1, 1, dx1) end },
  { "conv1 backward filter", conv1, function() core.conv2d_backward_filter(x1, dy1, dw1, db1, 1, 1, 1, 1, true) end },
  { "conv2 forward", conv2, function() core.conv2d_forward(x2, w2, b2, 1, 1, 1, 1, y2) end },
  { "conv2 backward data", conv2, function() core.conv2d_backward_data(x2, w2, dy2, 1, 1, 1, 1, dx2) end },
  { "conv2 backward filter", conv2, function() core.conv2d_backward_filter(x2, dy2, dw2, db2, 1, 1, 1, 1, true) end },
  { "fc1 forward", fc1, function() core.linear_forward(xf, wf, bf, yf) end },
  { "fc1 backward data", fc1, function() core.linear_backward_data(dyf, wf, dxf) end },
  { "fc1 backward filter", fc1, function() core.linear_backward_filter(xf, dyf, dwf, dbf, true) end },
}

print(("kernel_bench: %d threads, batch %d, %d repeats"):format(lunet.get_num_threads(), n, args["repeat"]))
for _, k in ipairs(kernels) do
  if not args.only or k[1]:find(args.only, 1, true) then
    local t = bench.time(k[3], { warmup = 2, ["repeat"] = args["repeat"] })
    print(("  %-24s %8.2f ms (min %7.2f)  %6.1f GFLOP/s (best %6.1f)"):format(k[1], 1e3 * t.median,
      1e3 * t.min, k[2] / t.median / 1e9, k[2] / t.min / 1e9))
  end
end
