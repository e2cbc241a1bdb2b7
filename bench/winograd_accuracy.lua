#!/usr/bin/env lua5.4
--- The CPU's convolution forward pass against the reference device (double
-- accumulation) on random inputs of the seed model's second layer (64 -> 128
-- channels, 14 x 14, padding 1) and a few odd shapes: the largest error
-- relative to the output's largest magnitude, and the normwise relative
-- error. Which algorithm runs is chosen by the environment, the precision by
-- --precision (lunet.autocast's):
--   LUNET_CPU_WINOGRAD=0 lua5.4 bench/winograd_accuracy.lua   (im2col + sgemm)
--   LUNET_CPU_WINOGRAD=2 lua5.4 bench/winograd_accuracy.lua   (Winograd F(2x2, 3x3))
--   lua5.4 bench/winograd_accuracy.lua                        (F(4x4, 3x3) at the AVX-512 levels)
--   lua5.4 bench/winograd_accuracy.lua --precision bfloat16   (bf16 products at avx512bf16)
-- With --table, every combination side by side (one process each): im2col,
-- F(2x2) and F(4x4) in float32, F(2x2) and F(4x4) with bf16 products.
local here = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".")
local find_lunet = loadfile(here .. "/../scripts/find_lunet.lua")
if find_lunet then find_lunet(here .. "/..") end
local lunet = require("lunet")
local core = require("lunet.core")

local cases = {
  -- name, x shape, w shape, padding, x range, w scale
  { "seed conv2, x in [0, 1), w ~ init", { 16, 64, 14, 14 }, { 128, 64, 3, 3 }, 1, { 0, 1 }, 1 / 24 },
  { "seed conv2, x in [-1, 1), w in [-0.5, 0.5)", { 16, 64, 14, 14 }, { 128, 64, 3, 3 }, 1, { -1, 1 }, 1 },
  { "16 -> 32, 11 x 13, padding 1", { 5, 16, 11, 13 }, { 32, 16, 3, 3 }, 1, { -1, 1 }, 1 },
  { "32 -> 16, 9 x 9, padding 2", { 7, 32, 9, 9 }, { 16, 32, 3, 3 }, 2, { -1, 1 }, 1 },
}

local precision, side_by_side = "float32", false
local i = 1
while i <= #arg do
  if arg[i] == "--precision" and arg[i + 1] then
    precision = arg[i + 1]
    i = i + 2
  elseif arg[i] == "--table" then
    side_by_side = true
    i = i + 1
  else
    io.stderr:write("usage: winograd_accuracy.lua [--precision float32|bfloat16] [--table]\n")
    os.exit(2)
  end
end

if side_by_side then
  local columns = {
    { "im2col", "0", "float32" }, { "F(2x2)", "2", "float32" }, { "F(4x4)", "1", "float32" },
    { "F(2x2) bf16", "2", "bfloat16" }, { "F(4x4) bf16", "1", "bfloat16" },
  }
  local results = {}
  for c, col in ipairs(columns) do
    local script = "'" .. arg[0]:gsub("'", "'\\''") .. "'" -- shell quoting, not Lua's %q
    local cmd = ("LUNET_CPU_WINOGRAD=%s lua5.4 %s --precision %s"):format(col[2], script, col[3])
    local pipe = assert(io.popen(cmd))
    results[c] = {}
    for line in pipe:lines() do
      local worst, norm = line:match("max |err| / max |y| (%S+)%s+normwise (%S+)")
      if worst then results[c][#results[c] + 1] = ("%s / %s"):format(worst, norm) end
      if line:match("^winograd_accuracy") then io.write(line, "\n") end
    end
    if not pipe:close() then
      io.stderr:write(("winograd_accuracy.lua: the %s run failed: %s\n"):format(col[1], cmd))
      os.exit(1)
    end
  end
  io.write("\n| case |")
  for _, col in ipairs(columns) do io.write(" ", col[1], " |") end
  io.write("\n|---|", ("---|"):rep(#columns), "\n")
  for k, case in ipairs(cases) do
    io.write("| ", case[1], " |")
    for c = 1, #columns do io.write(" ", results[c][k] or "-", " |") end
    io.write("\n")
  end
  os.exit(0)
end

lunet.autocast(precision)
print(("winograd_accuracy: kernels %s, LUNET_CPU_WINOGRAD=%s, precision %s"):format(
  lunet.device("cpu"):info().kernels, os.getenv("LUNET_CPU_WINOGRAD") or "(default)", precision))
for k, c in ipairs(cases) do
  lunet.manual_seed(100 + k)
  local x = lunet.rand(c[2]) * (c[5][2] - c[5][1]) + c[5][1]
  local w = (lunet.rand(c[3]) - 0.5) * (2 * c[6])
  local b = (lunet.rand({ c[3][1] }) - 0.5) * 0.1
  local y = core.conv2d_forward(x, w, b, 1, 1, c[4], c[4])
  local e = core.conv2d_forward(x:to("ref"), w:to("ref"), b:to("ref"), 1, 1, c[4], c[4]):to("cpu")
  local d = y - e
  local scale = math.max(e:max(), -e:min())
  local worst = math.max(d:max(), -d:min())
  local norm = math.sqrt((d * d):sum()) / math.sqrt((e * e):sum())
  print(("  %-44s max |err| / max |y| %.2e   normwise %.2e"):format(c[1], worst / scale, norm))
end
