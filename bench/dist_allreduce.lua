#!/usr/bin/env lua5.4
--- The allreduce of lunet.dist alone: `mpirun -np 2 lua5.4 bench/dist_allreduce.lua [floats] [repeats]`.
-- Times dist.allreduce(t, "avg") of the session model's gradient size (3.29M
-- floats) and prints the median, min and max per call on rank 0, with the
-- barrier (agreement only) beside it.
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
assert(loadfile(here .. "/../scripts/find_lunet.lua"))(here .. "/..")
local lunet = require("lunet")
local dist = lunet.dist
local n = math.tointeger(tonumber(arg[1] or "")) or 3290000
local reps = math.tointeger(tonumber(arg[2] or "")) or 50
local rank, size = dist.init()
local t = lunet.full({ n }, rank + 1)
local function time(fn)
  local times = {}
  for i = 1, reps + 3 do
    local t0 = lunet.clock()
    fn()
    if i > 3 then times[#times + 1] = lunet.clock() - t0 end
  end
  table.sort(times)
  return times[(#times + 1) // 2], times[1], times[#times]
end
local med, lo, hi = time(function() dist.allreduce(t, "avg") end)
local bmed, blo = time(function() dist.barrier() end)
if rank == 0 then
  print(("allreduce avg of %d floats (%.1f MB) on %d ranks: median %.2f ms (min %.2f, max %.2f), " ..
    "%.2f GB/s; barrier median %.3f ms (min %.3f)"):format(n, n * 4 / 1e6, size, 1e3 * med, 1e3 * lo,
    1e3 * hi, n * 4 / med / 1e9, 1e3 * bmed, 1e3 * blo))
end
