-- lunet.dist: collectives over MPI, DataParallel and the sharded DataLoader.
-- The specs that need several processes start `mpirun -np 2` as a child
-- (as root where CI runs as root, --oversubscribe, one thread per rank, under
-- `timeout` so that a hang fails instead of blocking the suite) and check
-- what the ranks print. Without mpirun or without lunet/dist.so they are
-- pending, with the reason.
local lunet = require("lunet")
local helpers = require("helpers")

local dist = lunet.dist

local function have_mpirun()
  local ok = os.execute("command -v mpirun >/dev/null 2>&1")
  return ok == true
end

local mpi_ok, mpi_reason = dist.available()
local can_launch = mpi_ok and have_mpirun()
local launch_reason = not mpi_ok and mpi_reason
  or "mpirun not found (Debian: apt-get install openmpi-bin libopenmpi-dev)"

local function mpi_it(name, fn)
  if can_launch then
    it(name, fn)
  else
    pending(name .. " (skipped: " .. tostring(launch_reason):sub(1, 160) .. ")")
  end
end

local TIMEOUT = 120

--- Runs `code` on `np` ranks under mpirun (or alone when np is nil).
-- Returns the exit code and the combined output of every rank.
local function run_ranks(code, np, env)
  local tmp = os.tmpname()
  helpers.write_file(tmp, helpers.checkout_paths() .. code)
  local launcher = np and ("mpirun -np %d --oversubscribe --bind-to none"):format(np) or ""
  local cmd = ("cd %s && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
    .. "OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 %s timeout %d %s lua5.4 %s 2>&1; echo \"__exit=$?\"")
    :format(helpers.sh_quote(helpers.ROOT), env or "", TIMEOUT, launcher, tmp)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  os.remove(tmp)
  local exit = tonumber(out:match("__exit=(%d+)%s*$"))
  return exit, (out:gsub("__exit=%d+%s*$", ""))
end

--- The lines "rank <r> <key> <value>" printed by the ranks, as
-- values[key][r].
local function rank_values(out)
  local values = {}
  for r, key, value in out:gmatch("\nR(%d+) (%S+) ([^\n]*)") do
    values[key] = values[key] or {}
    values[key][tonumber(r)] = value
  end
  return values
end

describe("lunet.dist in one process", function()
  it("is rank 0 of 1 outside mpirun, and its collectives leave tensors as they are", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r, n = dist.init()
      print("\nR0 init " .. r .. "," .. n .. "," .. dist.rank() .. "," .. dist.size())
      local t = lunet.tensor({1.5, -2, 3})
      assert(dist.allreduce(t, "sum") == t)
      dist.allreduce(t, "avg"); dist.allreduce(t, "max"); dist.broadcast(t, 0); dist.barrier()
      print("\nR0 values " .. table.concat(t:totable(), ","))
      print("\nR0 backend " .. dist.info().backend)
    ]]
    local exit, out = run_ranks(code)
    assert.equal(0, exit, out)
    local v = rank_values("\n" .. out)
    assert.equal("0,1,0,1", v.init[0])
    assert.equal("1.5,-2.0,3.0", v.values[0])
    assert.equal("local", v.backend[0])
  end)

  it("checks its arguments", function()
    local t = lunet.tensor({ 1, 2 })
    helpers.assert_error(function() dist.allreduce(t, "mean") end, "lunet.dist.allreduce",
      "\"sum\", \"avg\" or \"max\"", "mean")
    helpers.assert_error(function() dist.allreduce({ 1, 2 }) end, "lunet.dist.allreduce",
      "expected a lunet tensor, got table")
    helpers.assert_error(function() dist.allreduce(lunet.tensor({ 1 }, { dtype = "int32" }), "avg") end,
      "\"avg\" needs a float32 tensor, got int32")
    helpers.assert_error(function() dist.broadcast(t, 1) end, "lunet.dist.broadcast",
      "root must be a rank in 0..0, got 1")
    local freed = lunet.tensor({ 1 })
    freed:free()
    helpers.assert_error(function() dist.allreduce(freed) end, "the tensor was freed")
    helpers.assert_error(function() dist.DataParallel(42) end, "lunet.dist.DataParallel",
      "expected a module")
  end)

  it("says why MPI is missing, naming the Debian packages", function()
    if mpi_ok then
      -- hide lunet/dist.so (after lunet.core has loaded): what a build without MPI sees
      local code = [[
        local lunet = require("lunet")
        package.cpath = ""
        local dist = lunet.dist
        local ok, why = dist.available()
        print("\nR0 available " .. tostring(ok))
        print("\nR0 why " .. why)
        print("\nR0 init " .. table.concat({dist.init()}, ","))
      ]]
      local exit, out = run_ranks(code)
      assert.equal(0, exit, out)
      local v = rank_values("\n" .. out)
      assert.equal("false", v.available[0])
      assert.truthy(v.why[0]:find("libopenmpi-dev openmpi-bin", 1, true), v.why[0])
      assert.equal("0,1", v.init[0])
    else
      local ok, why = dist.available()
      assert.is_false(ok)
      assert.truthy(why:find("libopenmpi-dev openmpi-bin", 1, true), why)
    end
  end)

  it("DataParallel of one process keeps the gradients (packed and flat paths)", function()
    lunet.manual_seed(3)
    local model = lunet.nn.Sequential(lunet.nn.Linear(4, 3), lunet.nn.ReLU(), lunet.nn.Linear(3, 2))
    local ddp = dist.DataParallel(model, { flat_parameters = false })
    assert.equal("packed", ddp.mode)
    local x = lunet.rand({ 5, 4 })
    local out = ddp:forward(x)
    ddp:backward(x, lunet.ones(out:shape()))
    local _, grads = model:parameters()
    local before = grads[1]:clone()
    ddp:sync()
    assert.same(before:totable(), grads[1]:totable())
  end)
end)

describe("DataLoader rank= world=", function()
  local function dataset(n)
    local labels = {}
    for i = 1, n do labels[i] = i end
    local images = lunet.zeros({ n, 1, 1, 1 }, { dtype = "uint8" })
    for i = 1, n do images:set(i % 256, i, 1, 1, 1) end
    return { images = images, labels = lunet.tensor(labels, { dtype = "int32" }) }
  end

  local function batches(loader, epoch)
    local out = {}
    for _, y in loader:iter(epoch) do out[#out + 1] = y:totable() end
    return out
  end

  it("gives each rank its slice of every global batch, the same order on every rank", function()
    local ds = dataset(100)
    local whole = batches(lunet.data.DataLoader(ds, { batch_size = 20, shuffle = true, seed = 5 }), 2)
    local shards = {}
    for r = 0, 3 do
      local loader = lunet.data.DataLoader(ds, { batch_size = 5, shuffle = true, seed = 5, rank = r, world = 4 })
      assert.equal(#whole, #loader)
      shards[r] = batches(loader, 2)
    end
    for b = 1, #whole do
      local joined = {}
      for r = 0, 3 do
        for _, v in ipairs(shards[r][b]) do joined[#joined + 1] = v end
      end
      assert.same(whole[b], joined)
    end
  end)

  it("runs the same number of steps on every rank when the data does not divide", function()
    local ds = dataset(23)
    local seen, counts = {}, {}
    for r = 0, 2 do
      local loader = lunet.data.DataLoader(ds, { batch_size = 4, rank = r, world = 3 })
      local b = batches(loader)
      counts[r] = #b
      assert.equal(2, #loader) -- ceil(23 / 12)
      assert.equal(4, #b[1])
      assert.equal(4, #b[2]) -- 11 left: ceil(11 / 3) = 4 each, one padded
      for _, batch in ipairs(b) do
        for _, v in ipairs(batch) do seen[v] = (seen[v] or 0) + 1 end
      end
    end
    assert.equal(counts[0], counts[1])
    assert.equal(counts[0], counts[2])
    for i = 1, 23 do assert.truthy(seen[i], "image " .. i .. " never seen") end
    assert.equal(2, seen[1]) -- the padding repeats the epoch's first image
    -- drop_last drops the short global batch on every rank
    for r = 0, 2 do
      assert.equal(1, #lunet.data.DataLoader(ds, { batch_size = 4, rank = r, world = 3, drop_last = true }))
    end
    -- more ranks than images: every rank still gets a batch (wrapped)
    local tiny = dataset(2)
    for r = 0, 4 do
      local b = batches(lunet.data.DataLoader(tiny, { batch_size = 1, rank = r, world = 5 }))
      assert.equal(1, #b)
      assert.equal(1, #b[1])
    end
  end)

  it("shuffles differently each epoch, identically on every rank", function()
    local ds = dataset(40)
    local a0 = lunet.data.DataLoader(ds, { batch_size = 10, shuffle = true, rank = 0, world = 2 })
    local b0 = lunet.data.DataLoader(ds, { batch_size = 10, shuffle = true, rank = 0, world = 2 })
    local e1, e2 = batches(a0, 1), batches(a0, 2)
    assert.same(e1, batches(b0, 1)) -- the default seed (0) is the same on every rank
    assert.are_not.same(e1, e2)
  end)

  it("checks rank and world", function()
    local ds = dataset(10)
    helpers.assert_error(function() lunet.data.DataLoader(ds, { rank = 2, world = 2 }) end,
      "rank must be in 0..1 (world 2), got 2")
    helpers.assert_error(function() lunet.data.DataLoader(ds, { world = 0 }) end, "world must be at least 1")
    helpers.assert_error(function() lunet.data.DataLoader(ds, { rank = -1, world = 2 }) end,
      "rank must be at least 0")
    helpers.assert_error(function() lunet.data.DataLoader(ds, { rank = 0.5, world = 2 }) end,
      "rank must be an integer")
  end)
end)

describe("lunet.dist under mpirun -np 2", function()
  mpi_it("sums, averages, takes maxima and broadcasts, in place", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r, n = dist.init()
      local function say(k, t) print(("\nR%d %s %s"):format(r, k, type(t) == "string" and t or table.concat(t:reshape({-1}):totable(), ","))) end
      say("size", tostring(n))
      say("local", dist.local_rank() .. "/" .. dist.local_size())
      say("sum", dist.allreduce(lunet.tensor({1 + r, 10 * r, -3}), "sum"))
      say("default", dist.allreduce(lunet.tensor({{r, 1}, {2, 3}})))
      say("avg", dist.allreduce(lunet.tensor({2 * r, 1, -4 * r}), "avg"))
      say("max", dist.allreduce(lunet.tensor({r, -r, 7}), "max"))
      say("int", dist.allreduce(lunet.tensor({r + 1, 100}, {dtype = "int32"}), "sum"))
      say("bcast1", dist.broadcast(lunet.tensor({r, r + 0.5}), 1))
      say("bcast0", dist.broadcast(lunet.tensor({r + 7}, {dtype = "int32"})))
      local view = lunet.tensor({{r, r}, {r, r}}):narrow(1, 2, 1)
      say("view", dist.allreduce(view, "sum"))
      local big = lunet.full({300000}, r + 1)
      dist.allreduce(big, "sum")
      say("big", ("%g %g"):format(big:min(), big:max()))
      dist.barrier()
      say("seconds", tostring(dist.seconds() > 0))
    ]]
    local exit, out = run_ranks(code, 2)
    assert.equal(0, exit, out)
    local v = rank_values(out)
    for r = 0, 1 do
      assert.equal("2", v.size[r], out)
      assert.equal(r .. "/2", v["local"][r])
      assert.equal("3.0,10.0,-6.0", v.sum[r])
      assert.equal("1.0,2.0,4.0,6.0", v.default[r])
      assert.equal("1.0,1.0,-2.0", v.avg[r])
      assert.equal("1.0,0.0,7.0", v.max[r])
      assert.equal("3,200", v.int[r])
      assert.equal("1.0,1.5", v.bcast1[r])
      assert.equal("7", v.bcast0[r])
      assert.equal("1.0,1.0", v.view[r])
      assert.equal("3 3", v.big[r])
      assert.equal("true", v.seconds[r])
    end
  end)

  mpi_it("catches ranks that disagree (shapes, dtypes, calls) with an error on every rank", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      local function try(k, f)
        local ok, err = pcall(f)
        print(("\nR%d %s %s"):format(r, k, ok and "ok" or tostring(err)))
      end
      try("shape", function() dist.allreduce(lunet.zeros({2 + r, 3})) end)
      try("dtype", function() dist.allreduce(lunet.zeros({4}, {dtype = r == 0 and "float32" or "int32"})) end)
      try("kind", function() if r == 0 then dist.barrier() else dist.broadcast(lunet.zeros({1}), 0) end end)
      try("root", function() dist.broadcast(lunet.zeros({2}), r) end)
      try("after", function() dist.allreduce(lunet.ones({2})) end)
    ]]
    local exit, out = run_ranks(code, 2)
    assert.equal(0, exit, out)
    local v = rank_values(out)
    for r = 0, 1 do
      assert.truthy(v.shape[r]:find("lunet.dist.allreduce: the ranks disagree", 1, true), out)
      assert.truthy(v.shape[r]:find("rank 0: allreduce(sum) of float32 [2, 3]", 1, true), out)
      assert.truthy(v.shape[r]:find("rank 1: allreduce(sum) of float32 [3, 3]", 1, true), out)
      assert.truthy(v.dtype[r]:find("rank 1: allreduce(sum) of int32 [4]", 1, true), out)
      assert.truthy(v.kind[r]:find("rank 0: barrier", 1, true), out)
      assert.truthy(v.kind[r]:find("rank 1: broadcast(root 0)", 1, true), out)
      assert.truthy(v.root[r]:find("rank 1: broadcast(root 1)", 1, true), out)
      -- after the errors the ranks are still in step
      assert.equal("ok", v.after[r], out)
    end
  end)

  mpi_it("stops the job when a rank fails, naming the rank, without hanging", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      local t = lunet.ones({1000})
      dist.allreduce(t)
      if r == 1 then error("rank one ran out of luck") end
      for _ = 1, 3 do dist.allreduce(t) end -- rank 0 waits here for rank 1
      print("\nR0 finished")
    ]]
    local t0 = lunet.clock()
    local exit, out = run_ranks(code, 2)
    assert.are_not.equal(0, exit, out)
    assert.are_not.equal(124, exit, "timed out: " .. out)
    assert.truthy(lunet.clock() - t0 < TIMEOUT / 2, out)
    assert.truthy(out:find("rank one ran out of luck", 1, true), out)
    assert.truthy(out:find("lunet.dist: rank 1 of 2: exited with status 1", 1, true), out)
    assert.falsy(out:find("R0 finished", 1, true), out)
  end)

  mpi_it("dist.run reports the error with its rank and traceback and stops every rank", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      dist.run(function()
        if r == 0 then error("bad input on rank zero") end
        dist.barrier()
      end)
    ]]
    local exit, out = run_ranks(code, 2)
    assert.are_not.equal(0, exit, out)
    assert.are_not.equal(124, exit, "timed out: " .. out)
    assert.truthy(out:find("lunet.dist: rank 0 of 2: failed: ", 1, true), out)
    assert.truthy(out:find("bad input on rank zero", 1, true), out)
    assert.truthy(out:find("stack traceback", 1, true), out)
  end)

  mpi_it("LUNET_DIST_TIMEOUT stops the job when a rank does not arrive in time", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      dist.barrier()
      if r == 1 then os.execute("sleep 20") end -- stuck, not failing
      dist.barrier()
      print("\nR" .. r .. " passed")
    ]]
    local t0 = lunet.clock()
    local exit, out = run_ranks(code, 2, "LUNET_DIST_TIMEOUT=1")
    assert.are_not.equal(0, exit, out)
    assert.are_not.equal(124, exit, "timed out: " .. out)
    assert.truthy(lunet.clock() - t0 < 15, out)
    assert.truthy(out:find("lunet.dist: rank 0 of 2: waited more than 1 s (LUNET_DIST_TIMEOUT)", 1, true), out)
    assert.truthy(out:find("reach barrier (collective #2)", 1, true), out)
    assert.falsy(out:find("R0 passed", 1, true), out)
  end)

  mpi_it("a rank that ends early makes the others' collective fail, not hang", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      local steps = r == 0 and 3 or 2
      for _ = 1, steps do dist.allreduce(lunet.ones({8})) end
    ]]
    local exit, out = run_ranks(code, 2)
    assert.are_not.equal(0, exit, out)
    assert.are_not.equal(124, exit, "timed out: " .. out)
    assert.truthy(out:find("rank 1: the end of its program", 1, true), out)
    assert.truthy(out:find("rank 0: allreduce(sum) of float32 [8]", 1, true), out)
  end)

  -- The trajectory check: 2 ranks with batch 32 each and one process with
  -- batch 64 take the same 20 Adam steps (losses and final weights).
  local trajectory = [[
    local lunet = require("lunet")
    local dist = lunet.dist
    local rank, world = dist.init()
    local mode = os.getenv("DDP_MODE")
    -- synthetic data, the same on every rank: 1280 images of 1x8x8, 10 classes
    local n, seed = 1280, 12345
    local pixels, labels = {}, {}
    local function rnd() seed = (seed * 1103515245 + 12345) % 2147483648; return seed end
    for i = 1, n * 64 do pixels[i] = rnd() % 256 end
    for i = 1, n do labels[i] = rnd() % 10 + 1 end
    local ds = { images = lunet.tensor(pixels, {dtype = "uint8"}):reshape({n, 1, 8, 8}),
                 labels = lunet.tensor(labels, {dtype = "int32"}) }
    lunet.manual_seed(7 + rank) -- different starting weights: DataParallel must copy rank 0's
    local nn = lunet.nn
    local model = nn.Sequential(nn.Conv2d(1, 4, 3, {padding = 1}), nn.ReLU(), nn.MaxPool2d(2),
      nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    if rank ~= 0 then lunet.manual_seed(7) end
    local ddp = dist.DataParallel(model, {flat_parameters = mode ~= "packed"})
    local crit = nn.CrossEntropyLoss()
    local opt = lunet.optim.Adam(model, {lr = 1e-2})
    local loader = lunet.data.DataLoader(ds, {batch_size = 64 // world, shuffle = true, seed = 3,
      rank = rank, world = world})
    local loss_t = lunet.zeros({1})
    local steps = 0
    for x, y in loader:iter() do
      opt:zero_grad()
      local out = model:forward(x)
      local loss = crit:forward(out, y)
      model:backward(x, crit:backward(out, y))
      ddp:sync()
      opt:step()
      loss_t:fill(loss)
      dist.allreduce(loss_t, "avg")
      steps = steps + 1
      if rank == 0 then print(("\nR0 loss%d %.9g"):format(steps, loss_t:get(1))) end
      if steps == 20 then break end
    end
    local params = model:parameters()
    for i, p in ipairs(params) do
      local check = p:clone()
      dist.broadcast(check, 0)
      local d = check - p
      local diff = math.max(d:max(), -d:min())
      if diff ~= 0 then print(("\nR%d diverged %d %g"):format(rank, i, diff)) end
    end
    if rank == 0 then
      local flat = {}
      for _, p in ipairs(params) do
        for _, v in ipairs(p:reshape({-1}):totable()) do flat[#flat + 1] = ("%.9g"):format(v) end
      end
      print("\nR0 params " .. table.concat(flat, ","))
      print("\nR0 mode " .. ddp.mode)
    end
  ]]

  local function parse_run(out)
    local v = rank_values(out)
    local losses = {}
    for i = 1, 20 do losses[i] = tonumber(v["loss" .. i] and v["loss" .. i][0]) end
    local params = {}
    for num in (v.params and v.params[0] or ""):gmatch("[^,]+") do params[#params + 1] = tonumber(num) end
    return losses, params, v
  end

  local function max_rel(a, b)
    local worst, scale = 0, 0
    for i = 1, #b do
      worst = math.max(worst, math.abs(a[i] - b[i]))
      scale = math.max(scale, math.abs(b[i]))
    end
    return worst / scale
  end

  for _, mode in ipairs({ "packed", "flat" }) do
    mpi_it(("2 ranks x batch 32 equal 1 process x batch 64 over 20 steps (%s gradients)"):format(mode), function()
      local exit1, out1 = run_ranks(trajectory, nil, "DDP_MODE=" .. mode)
      assert.equal(0, exit1, out1)
      local exit2, out2 = run_ranks(trajectory, 2, "DDP_MODE=" .. mode)
      assert.equal(0, exit2, out2)
      local l1, p1 = parse_run(out1)
      local l2, p2, v2 = parse_run(out2)
      assert.equal(20, #l1, out1)
      assert.equal(20, #l2, out2)
      assert.falsy(v2.diverged, "ranks hold different weights: " .. out2)
      if mode == "flat" then
        -- the model's own flat_parameters when nn has it, else the packed path
        local expected = lunet.nn.Linear(1, 1).flat_parameters and "flat_parameters" or "packed"
        assert.equal(expected, v2.mode[0])
      end
      assert.truthy(#p1 > 1000 and #p1 == #p2, out2)
      local loss_err, param_err = max_rel(l2, l1), max_rel(p2, p1)
      print(("\n[dist trajectory, %s] worst relative difference: losses %.3g, weights %.3g")
        :format(mode, loss_err, param_err))
      assert.truthy(loss_err <= 1e-5, ("losses differ by %g relative"):format(loss_err))
      assert.truthy(param_err <= 1e-5, ("weights differ by %g relative"):format(param_err))
      assert.truthy(l1[20] < l1[1], "the model did not learn")
    end)
  end

  mpi_it("DataParallel starts every rank from rank 0's weights and BatchNorm statistics", function()
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      lunet.manual_seed(100 + r)
      local nn = lunet.nn
      local bn = nn.BatchNorm2d(3)
      local model = nn.Sequential(nn.Conv2d(1, 3, 3), bn)
      bn.running_mean:fill(r + 0.5)
      dist.DataParallel(model)
      local state = model:state_dict()
      local names = {}
      for name in pairs(state) do names[#names + 1] = name end
      table.sort(names)
      for _, name in ipairs(names) do
        print(("\nR%d %s %s"):format(r, name, table.concat(state[name]:reshape({-1}):totable(), ",")))
      end
    ]]
    local exit, out = run_ranks(code, 2)
    assert.equal(0, exit, out)
    local v = rank_values(out)
    local count = 0
    for name, by_rank in pairs(v) do
      count = count + 1
      assert.equal(by_rank[0], by_rank[1], name .. " differs: " .. out)
    end
    assert.truthy(count >= 4, out)
    for name, by_rank in pairs(v) do
      if name:find("running_mean", 1, true) then assert.equal("0.5,0.5,0.5", by_rank[1]) end
    end
  end)

  mpi_it("DataParallel reduces a model's own flat gradient in place (flat_parameters)", function()
    -- a module whose tensors are views into two flat tensors, as
    -- Module:flat_parameters() makes them
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r = dist.init()
      local flat_p, flat_g = lunet.full({5}, r + 1), lunet.zeros({5})
      local w, b = flat_p:narrow(1, 1, 4):reshape({2, 2}), flat_p:narrow(1, 5, 1)
      local gw, gb = flat_g:narrow(1, 1, 4):reshape({2, 2}), flat_g:narrow(1, 5, 1)
      local model = {
        parameters = function() return {w, b}, {gw, gb} end,
        flat_parameters = function() return flat_p, flat_g end,
      }
      local ddp = dist.DataParallel(model)
      print(("\nR%d mode %s"):format(r, ddp.mode))
      print(("\nR%d w %s"):format(r, table.concat(w:reshape({-1}):totable(), ",")))
      gw:fill(2 * r); gb:fill(10 * r)
      ddp:sync()
      print(("\nR%d g %s"):format(r, table.concat(flat_g:totable(), ",")))
      print(("\nR%d syncs %d"):format(r, ddp.syncs))
      -- flat_parameters() called again gives new flat tensors and views: sync follows them
      local flat_p2, flat_g2 = lunet.zeros({5}), lunet.zeros({5})
      model.flat_parameters = function() return flat_p2, flat_g2 end
      w, gw = flat_p2:narrow(1, 1, 4):reshape({2, 2}), flat_g2:narrow(1, 1, 4):reshape({2, 2})
      flat_g2:fill(4 * r)
      ddp:sync()
      print(("\nR%d g2 %s"):format(r, table.concat(flat_g2:totable(), ",")))
    ]]
    local exit, out = run_ranks(code, 2)
    assert.equal(0, exit, out)
    local v = rank_values(out)
    for r = 0, 1 do
      assert.equal("flat_parameters", v.mode[r])
      assert.equal("1.0,1.0,1.0,1.0", v.w[r]) -- rank 0's weights everywhere
      assert.equal("1.0,1.0,1.0,1.0,5.0", v.g[r])
      assert.equal("1", v.syncs[r])
      assert.equal("2.0,2.0,2.0,2.0,2.0", v.g2[r])
    end
  end)

  local function it_session(name, fn)
    if not can_launch then return mpi_it(name, fn) end
    if not helpers.have_fashion_mnist() then
      return pending(name .. " (skipped: Fashion-MNIST is not installed: apt-get install dataset-fashion-mnist)")
    end
    it(name, fn)
  end

  it_session("gpu_vs_cpu.lua --distributed trains on 2 ranks and reports the allreduce share", function()
    local dir = helpers.tmpdir()
    local exit, out = run_ranks(([[
      arg = {[0] = %q, "--distributed", "--devices", "cpu", "--epochs", "1", "--max-batches", "4",
        "--eval-max-batches", "2", "--repeat", "1", "--scaling-batches", "2", "--out", %q}
      dofile(arg[0])
    ]]):format(helpers.ROOT .. "/scripts/gpu_vs_cpu.lua", dir), 2)
    local md = helpers.read_file(dir .. "/report.md") or ""
    local json = helpers.read_file(dir .. "/results.json") or ""
    helpers.rmdir(dir)
    assert.equal(0, exit, out)
    assert.truthy(out:find("data-parallel: 2 process(es)", 1, true), out)
    assert.truthy(md:find("## Data-parallel training", 1, true), md)
    assert.truthy(md:find("allreduce share of step time", 1, true), md)
    assert.truthy(md:find("scaling efficiency", 1, true), md)
    assert.truthy(md:find("Global batch 64 = 2 processes x 32", 1, true), md)
    assert.truthy(json:find('"world_size": 2', 1, true), json)
    assert.truthy(json:find('"allreduce_share"', 1, true), json)
  end)

  it("gpu_vs_cpu.lua --distributed without MPI says which packages to install", function()
    -- a module path holding lunet/core.so but no lunet/dist.so: a build without MPI
    local core_so = assert(package.searchpath("lunet.core", package.cpath))
    local dir = helpers.tmpdir()
    os.execute(("mkdir -p %s/lunet && ln -s %s %s/lunet/core.so"):format(dir, helpers.sh_quote(core_so), dir))
    local exit, out = helpers.run_script("gpu_vs_cpu.lua", "--distributed --epochs 1 --out " .. dir .. "/out",
      { prelude = ([[
        local keep = { %q } -- the other C modules (cjson) stay reachable
        for tpl in package.cpath:gmatch("[^;]+") do
          if not package.searchpath("lunet.core", tpl) then keep[#keep + 1] = tpl end
        end
        package.cpath = table.concat(keep, ";")]]):format(dir .. "/?.so") })
    helpers.rmdir(dir)
    assert.equal(1, exit, out)
    assert.truthy(out:find("--distributed", 1, true), out)
    assert.truthy(out:find("libopenmpi-dev openmpi-bin", 1, true), out)
  end)

  helpers.cuda_it("reduces CUDA tensors with one rank per GPU (#cuda)", function()
    assert.truthy(can_launch, launch_reason)
    local code = [[
      local lunet = require("lunet")
      local dist = lunet.dist
      local r, n = dist.init()
      local dev = lunet.device("cuda:" .. dist.local_rank()) -- one GPU per rank
      local t = lunet.tensor({r + 1, 2}, {device = dev})
      dist.allreduce(t, "sum")
      local b = lunet.tensor({r + 5}, {device = dev})
      dist.broadcast(b, 0)
      print(("\nR%d sum %s"):format(r, table.concat(t:to("cpu"):totable(), ",")))
      print(("\nR%d bcast %s"):format(r, table.concat(b:to("cpu"):totable(), ",")))
    ]]
    local gpus = lunet.cuda.device_count()
    local exit, out = run_ranks(code, math.max(1, math.min(gpus, 2)))
    assert.equal(0, exit, out)
    local v = rank_values(out)
    local n = math.max(1, math.min(gpus, 2))
    assert.equal(n == 1 and "1.0,2.0" or "3.0,4.0", v.sum[0], out)
    assert.equal("5.0", v.bcast[0], out)
  end)
end)
