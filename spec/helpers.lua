--- Shared helpers for the busted specs.
local lunet = require("lunet")

local helpers = {}

--- Largest absolute difference between two tensors (any devices/dtypes) or
-- between a tensor and a nested table, and the position where it occurs.
function helpers.max_abs_diff(a, b)
  local ta = lunet.is_tensor(a) and a:to("cpu"):to("float32") or lunet.tensor(a)
  local tb = lunet.is_tensor(b) and b:to("cpu"):to("float32") or lunet.tensor(b)
  assert(ta:numel() == tb:numel(), ("element counts differ: %d vs %d"):format(ta:numel(), tb:numel()))
  local fa, fb = ta:reshape({ -1 }), tb:reshape({ -1 })
  local worst, where = 0, nil
  for i = 1, fa:numel() do
    local x, y = fa:get(i), fb:get(i)
    local d = math.abs(x - y)
    if x ~= x or y ~= y then d = (x ~= x and y ~= y) and 0 or math.huge end
    if d > worst then worst, where = d, i end
  end
  return worst, where
end

--- Asserts |a - b| <= atol + rtol * |b| elementwise; the failure message
-- names the worst element, as llm.c's checks do.
function helpers.assert_close(actual, expected, rtol, atol, what)
  rtol, atol = rtol or 1e-5, atol or 1e-6
  -- a NaN tolerance would pass everything (every comparison with it is false)
  assert(rtol == rtol and atol == atol, ("%sassert_close: a tolerance is NaN"):format(what and (what .. ": ") or ""))
  local ta = lunet.is_tensor(actual) and actual:to("cpu"):to("float32") or lunet.tensor(actual)
  local tb = lunet.is_tensor(expected) and expected:to("cpu"):to("float32") or lunet.tensor(expected)
  local sa, sb = table.concat(ta:shape(), "x"), table.concat(tb:shape(), "x")
  assert(sa == sb, ("%sshapes differ: %s vs %s"):format(what and (what .. ": ") or "", sa, sb))
  local fa, fb = ta:reshape({ -1 }):totable(), tb:reshape({ -1 }):totable()
  local worst, where, excess = 0, nil, -math.huge
  for i = 1, #fa do
    local x, y = fa[i], fb[i]
    local d, over
    if x == y or (x ~= x and y ~= y) then -- equal (infinities too), or both NaN
      d, over = 0, -math.huge
    elseif x ~= x or y ~= y or math.abs(x) == math.huge or math.abs(y) == math.huge then
      d, over = math.huge, math.huge -- NaN or an infinity against anything else
    else
      d = math.abs(x - y)
      over = d - (atol + rtol * math.abs(y))
    end
    if over > excess then excess, worst, where = over, d, i end
  end
  if excess > 0 then
    error(("%snot close: worst |diff| %.3g at element %d (got %.9g, expected %.9g; rtol %g, atol %g)")
      :format(what and (what .. ": ") or "", worst, where, fa[where], fb[where], rtol, atol), 2)
  end
  return worst
end

--- Central differences (step `eps`) of loss() at `samples` coordinates of
-- tensor t against `analytic` (a flat array of the gradient); returns the
-- worst error relative to the largest analytic entry (at least 1e-3). The
-- coordinates are spread over t, each shifted by (k * jitter) within its
-- stretch, so repeated runs sample the same places.
function helpers.worst_gradient_error(t, analytic, loss, eps, samples, jitter)
  local v = t:reshape({ -1 })
  local n = v:numel()
  local scale = 1e-3
  for i = 1, n do scale = math.max(scale, math.abs(analytic[i])) end
  local worst = 0
  samples = math.min(samples, n)
  for k = 1, samples do
    local i = math.min(n, 1 + ((k - 1) * n) // samples + (k * jitter) % math.max(1, n // samples))
    local old = v:get(i)
    v:set(old + eps, i)
    local plus = loss()
    v:set(old - eps, i)
    local minus = loss()
    v:set(old, i)
    worst = math.max(worst, math.abs((plus - minus) / (2 * eps) - analytic[i]) / scale)
  end
  return worst
end

--- A random float32 tensor from its own seed, on `device`.
function helpers.random(shape, seed, device, lo, hi)
  lunet.manual_seed(seed or 1)
  local t = lunet.rand(shape)
  if lo or hi then t = t * ((hi or 1) - (lo or 0)) + (lo or 0) end
  return device and t:to(device) or t
end

--- Random integers in [lo, hi] as floats: ties everywhere (small tensors:
-- rounded through the host).
function helpers.integers(shape, seed, lo, hi)
  local t = helpers.random(shape, seed, nil, lo, hi + 1)
  local flat = t:reshape({ -1 })
  for i = 1, flat:numel() do flat:set(math.floor(flat:get(i)), i) end
  return t
end

--- CUDA availability, computed once.
local cuda_ok, cuda_reason
function helpers.cuda()
  if cuda_ok == nil then cuda_ok, cuda_reason = lunet.cuda_available() end
  return cuda_ok, cuda_reason
end

--- Defines a spec that needs a GPU: it runs where one is present and shows as
-- pending, with the reason, where none is. With LUNET_REQUIRE_CUDA=1 in the
-- environment (a run on a GPU machine) a missing GPU fails it instead.
function helpers.cuda_it(name, fn)
  -- busted defines `it` and `pending` in the spec files' environment, not in
  -- _G where this module looks: take them from busted itself
  local busted = require("busted")
  local ok, reason = helpers.cuda()
  if ok then
    busted.it(name, fn)
  elseif os.getenv("LUNET_REQUIRE_CUDA") == "1" then
    busted.it(name, function() error("LUNET_REQUIRE_CUDA=1 but " .. tostring(reason), 0) end)
  else
    -- the reason in full: the output handler (spec/lunet_output.lua) prints it once for all
    busted.pending(name .. " (skipped: no GPU: " .. tostring(reason) .. ")")
  end
end

--- The devices every op is checked on: the reference, the CPU, and the GPU
-- when there is one.
function helpers.devices()
  local list = { "ref", "cpu" }
  if helpers.cuda() then list[#list + 1] = "cuda" end
  return list
end

--- Runs `cmd` in a shell, stderr joined to stdout. Returns its exit code
-- and its output.
local function shell(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"__exit=$?\""))
  local out = p:read("a")
  p:close()
  local exit = tonumber(out:match("__exit=(%d+)%s*$"))
  return exit, (out:gsub("__exit=%d+%s*$", ""))
end

--- Runs Lua code in a child lua5.4 with the same module paths, so a crash
-- (a signal) fails the spec instead of killing busted. Returns ok, output,
-- exit code.
function helpers.run_child(code, opts)
  opts = opts or {}
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(code)
  f:close()
  local exit, out = shell(("%s lua5.4 %s"):format(opts.prefix or "", tmp))
  os.remove(tmp)
  return exit == 0, out, exit
end

--- The checkout this spec file belongs to.
-- Absolute, so children started from another directory find it too.
helpers.ROOT = (debug.getinfo(1, "S").source:match("^@(.*)/spec/[^/]*$")) or "."
if helpers.ROOT:sub(1, 1) ~= "/" then
  local pwd = assert(os.getenv("PWD"), "spec/helpers.lua: PWD is not set")
  helpers.ROOT = helpers.ROOT == "." and pwd or (pwd .. "/" .. helpers.ROOT:gsub("^%./", ""))
end

function helpers.sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Lua code that puts the checkout's Lua files first on package.path: the
-- opening of code for helpers.run_child that must test the working tree.
function helpers.checkout_paths()
  return ("package.path = %q\n"):format(helpers.ROOT .. "/lua/?.lua;" .. helpers.ROOT
    .. "/lua/?/init.lua;" .. helpers.ROOT .. "/spec/?.lua;" .. package.path)
end

--- Runs scripts/<script> from the checkout as a user runs it (a child
-- lua5.4, the working tree's Lua files first on the path). opts.env is
-- prepended to the command (assignments, or commands such as "ulimit -f 2;");
-- opts.prelude is Lua run first in the same process (lua5.4 -e). Returns the
-- exit code and the combined output.
function helpers.run_script(script, argv, opts)
  opts = opts or {}
  local q = helpers.sh_quote
  return shell(("cd %s && %s LUA_PATH=%s lua5.4 %s scripts/%s %s"):format(
    q(helpers.ROOT), opts.env or "",
    q(helpers.ROOT .. "/lua/?.lua;" .. helpers.ROOT .. "/lua/?/init.lua;" .. (os.getenv("LUA_PATH") or ";")),
    opts.prelude and ("-e " .. q(opts.prelude)) or "", script, argv or ""))
end

--- The bytes of a file, or nil when it cannot be read.
function helpers.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Writes `s` to `path` (replacing it); an error when it cannot be opened.
function helpers.write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

--- The names in a directory (hidden ones too), sorted.
function helpers.list_dir(dir)
  local p = io.popen("ls -A " .. helpers.sh_quote(dir))
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  p:close()
  table.sort(names)
  return names
end

--- Whether Fashion-MNIST is installed (specs that need it are pending
-- without it).
function helpers.have_fashion_mnist()
  return (pcall(lunet.datasets.fashion_mnist, { split = "test" }))
end

--- A fresh temporary directory, removed by the caller with helpers.rmdir.
function helpers.tmpdir()
  local p = io.popen("mktemp -d")
  local dir = p:read("l")
  p:close()
  return dir
end

function helpers.rmdir(dir)
  assert(dir:match("^/tmp/"), "refusing to remove " .. dir)
  os.execute("rm -rf '" .. dir .. "'")
end

--- Asserts that fn raises an error whose message contains every fragment
-- (plain text, not patterns), and returns the message.
function helpers.assert_error(fn, ...)
  local ok, err = pcall(fn)
  assert(not ok, "expected an error, got success")
  err = tostring(err)
  for _, fragment in ipairs({ ... }) do
    if not err:find(fragment, 1, true) then
      error(("error message %q does not contain %q"):format(err, fragment), 2)
    end
  end
  return err
end

return helpers
