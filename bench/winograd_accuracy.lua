#!/usr/bin/env lua5.4
--- The CPU's convolution forward pass against the reference device (double
-- accumulation) on random inputs of the seed model's second layer (64 -> 128
-- channels, 14 x 14, padding 1) and a few odd shapes: the largest error
-- relative to the output's largest magnitude, and the normwise relative
-- error. Which algorithm runs is chosen by the environment:
--   LUNET_CPU_WINOGRAD=0 lua5.4 bench/winograd_accuracy.lua   (im2col + sgemm)
--   LUNET_CPU_WINOGRAD=2 lua5.4 bench/winograd_accuracy.lua   (Winograd F(2x2, 3x3))
--   lua5.4 bench/winograd_accuracy.lua                        (F(4x4, 3x3) at the AVX-512 levels)
local find_lunet = loadfile(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/../scripts/find_lunet.lua")
if find_lunet then find_lunet(((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/..") end
local lunet = require("lunet")
local core = require("lunet.core")

local cases = {
  -- name, x shape, w shape, padding, x range, w scale
  { "seed conv2, x in [0, 1), w ~ init", { 16, 64, 14, 14 }, { 128, 64, 3, 3 }, 1, { 0, 1 }, 1 / 24 },
  { "seed conv2, x in [-1, 1), w in [-0.5, 0.5)", { 16, 64, 14, 14 }, { 128, 64, 3, 3 }, 1, { -1, 1 }, 1 },
  { "16 -> 32, 11 x 13, padding 1", { 5, 16, 11, 13 }, { 32, 16, 3, 3 }, 1, { -1, 1 }, 1 },
  { "32 -> 16, 9 x 9, padding 2", { 7, 32, 9, 9 }, { 16, 32, 3, 3 }, 2, { -1, 1 }, 1 },
}
print(("winograd_accuracy: kernels %s, LUNET_CPU_WINOGRAD=%s"):format(
  lunet.device("cpu"):info().kernels, os.getenv("LUNET_CPU_WINOGRAD") or "(default)"))
for i, c in ipairs(cases) do
  lunet.manual_seed(100 + i)
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
