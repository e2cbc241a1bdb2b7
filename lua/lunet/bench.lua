--- Honest timing (DESIGN.md): clocks read only after the device has finished
-- its queued work, warm-up excluded and reported apart, repeats summarised by
-- median, min and max; the environment every result needs to be read; and
-- the arithmetic a model does, for achieved GFLOP/s.
local core = require("lunet.core")
local nn = require("lunet.nn")

local bench = {}

local function as_device(d)
  if d == nil then return nil end
  if type(d) == "string" then return core.device(d) end
  return d
end

--- Waits for every queued operation on `device` (an object or a name; nil
-- does nothing).
function bench.synchronize(device)
  device = as_device(device)
  if device then device:synchronize() end
end

--- Median, min, max and mean of a list of seconds (the list is kept, sorted
-- copies are not returned).
function bench.stats(times)
  local n = #times
  if n == 0 then return { n = 0, times = {} } end
  local sorted = { table.unpack(times) }
  table.sort(sorted)
  local median = n % 2 == 1 and sorted[(n + 1) // 2] or (sorted[n // 2] + sorted[n // 2 + 1]) / 2
  local sum = 0
  for _, t in ipairs(times) do sum = sum + t end
  return { n = n, median = median, min = sorted[1], max = sorted[n], mean = sum / n,
    times = { table.unpack(times) } }
end

--- Times `fn`: `warmup` untimed calls, then `repeat` timed calls, the
-- device synchronised before every clock read, so queued GPU work is never
-- mistaken for finished work. Returns bench.stats of the timed calls plus
-- `warmup_times` (each warm-up call timed the same way, for the report).
--   bench.time(fn, {device=dev, warmup=1, ["repeat"]=5})
function bench.time(fn, opts)
  opts = opts or {}
  if type(fn) ~= "function" then error("lunet.bench.time: argument #1 must be a function", 2) end
  local device = as_device(opts.device)
  local warmup, rep = opts.warmup or 1, opts["repeat"] or 3
  if math.type(warmup) ~= "integer" or warmup < 0 then
    error("lunet.bench.time: warmup must be an integer >= 0, got " .. tostring(warmup), 2)
  end
  if math.type(rep) ~= "integer" or rep < 1 then
    error("lunet.bench.time: repeat must be an integer >= 1, got " .. tostring(rep), 2)
  end
  local function timed()
    bench.synchronize(device)
    local t0 = core.clock()
    fn()
    bench.synchronize(device)
    return core.clock() - t0
  end
  local warm = {}
  for i = 1, warmup do warm[i] = timed() end
  local times = {}
  for i = 1, rep do times[i] = timed() end
  local result = bench.stats(times)
  result.warmup_times = warm
  return result
end

-- Environment ---------------------------------------------------------------

local function read_first_line(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local line = f:read("l")
  f:close()
  return line
end

local function shell_line(cmd)
  local p = io.popen(cmd .. " 2>/dev/null")
  if not p then return nil end
  local line = p:read("l")
  p:close()
  if line == nil or line == "" then return nil end
  return line
end

--- The directory this file lives in, to find the checkout it came from.
local function source_dir()
  local src = debug.getinfo(1, "S").source
  if src:sub(1, 1) ~= "@" then return nil end
  return src:sub(2):match("^(.*)/[^/]*$")
end

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- lunet's git commit, when lunet runs from a checkout (or `dir` is one):
-- the short hash, and whether the tree has uncommitted changes. Where there
-- is no repository (a copy of the tree on another machine) LUNET_GIT_COMMIT,
-- when set, names the commit instead (bench/gpu_run.sh sets it).
function bench.git_commit(dir)
  dir = dir or source_dir()
  local commit = dir and shell_line("git -C " .. quote(dir) .. " rev-parse --short HEAD")
  if not commit then
    local given = os.getenv("LUNET_GIT_COMMIT")
    if given and given:match("^%x+$") then return given:sub(1, 7), nil end
    return nil
  end
  local dirty = shell_line("git -C " .. quote(dir) .. " status --porcelain --untracked-files=no") ~= nil
  return commit, dirty
end

--- TF32 state of the CUDA backend (lunet.cuda.get_tf32), nil when unknown.
local function tf32_state()
  local ok, value = pcall(function() return require("lunet").cuda.get_tf32() end)
  if ok and type(value) == "boolean" then return value end
  return nil
end

--- Everything a reader needs to interpret a timing: lunet version and commit,
-- date (ISO 8601, UTC), host, OS, CPU (model, cores, BLAS, threads) and each
-- GPU in `device_names` (name, compute capability, memory, driver, CUDA,
-- cuDNN and cuBLAS versions, TF32).
--- The CPU's vector-instruction flags that matter to lunet's kernel levels
-- (from /proc/cpuinfo, in the kernel's spelling), as one string.
local SIMD_FLAGS = { "avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni",
  "avx512_bf16", "amx_bf16", "amx_tile", "asimd", "sve" }
local function cpu_simd_flags()
  local f = io.open("/proc/cpuinfo", "r")
  if not f then return nil end
  local have = {}
  for line in f:lines() do
    local list = line:match("^flags%s*:%s*(.*)$") or line:match("^Features%s*:%s*(.*)$")
    if list then
      for flag in list:gmatch("%S+") do have[flag] = true end
      break
    end
  end
  f:close()
  local out = {}
  for _, flag in ipairs(SIMD_FLAGS) do
    if have[flag] then out[#out + 1] = flag end
  end
  return table.concat(out, " ")
end

function bench.environment(device_names)
  local cpu = core.device("cpu"):info()
  local commit, dirty = bench.git_commit()
  local env = {
    lunet_version = core.version,
    git_commit = commit,
    git_dirty = dirty,
    date = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    hostname = read_first_line("/proc/sys/kernel/hostname") or shell_line("hostname"),
    os = shell_line("uname -srm"),
    lua = _VERSION,
    cpu = { model = cpu.name, cores = cpu.cores, threads = cpu.threads, blas = cpu.blas,
      kernels = cpu.kernels, simd_flags = cpu_simd_flags() },
    precision = core.precision and core.precision() or "float32",
    gpus = {},
  }
  local ok, reason = core.cuda_available()
  env.cuda_available = ok and true or false
  if not ok then env.cuda_unavailable_reason = reason end
  for _, name in ipairs(device_names or {}) do
    local dev = core.device(name)
    if dev.type == "cuda" then
      local info = dev:info()
      info.device = tostring(dev)
      env.gpus[#env.gpus + 1] = info
    end
  end
  if ok then env.tf32 = tf32_state() end
  return env
end

-- FLOPs ------------------------------------------------------------------------

--- The model arithmetic of one forward pass of `model` (an nn module) on one
-- input of shape `input_shape` ({C, H, W}, no batch dimension): the FLOPs
-- of its matrix products, a multiply-add counting 2 (convolutions and linear
-- layers; bias, activations and pooling are left out: under 1% here), as
-- each module states them (m:flops's second value). Returns the total and a
-- per-layer list {kind, flops, shape (without the batch), detail}.
function bench.model_flops(model, input_shape)
  if not nn.is_module(model) then
    error("lunet.bench.model_flops: expected an nn module, got " .. type(model), 2)
  end
  local info = model:summary_table({ 1, table.unpack(input_shape) })
  local layers = {}
  for _, row in ipairs(info.rows) do
    if not row.container and row.products > 0 then
      layers[#layers + 1] = { kind = row.type, flops = row.products,
        shape = { table.unpack(row.output_shape, 2) }, detail = row.name }
    end
  end
  return info.total_products, layers
end

--- Training arithmetic per image: forward, gradient with respect to the
-- inputs and gradient with respect to the weights each cost about one
-- forward pass, so 3x forward (the usual convention; the report says so).
bench.TRAIN_FLOPS_FACTOR = 3

--- The device's float32 matrix-product rate: a square n x n x n product
-- (default 2048) through lunet.matmul, one warm-up, then `repeat` timed
-- products (default 5). On the CPU that is OpenBLAS's sgemm on lunet's
-- threads. Returns {gflops = median, gflops_best, n, ["repeat"], threads,
-- what}. The best of the repeats is the yardstick the session compares
-- achieved rates with: a busy moment on a shared machine lowers the median,
-- not what the device can do.
function bench.sgemm_rate(device, n, rep)
  device = as_device(device) or core.device("cpu")
  n = n or 2048
  local a = core.rand({ n, n }, { device = device })
  local b = core.rand({ n, n }, { device = device })
  local t = bench.time(function() core.matmul(a, b):free() end,
    { device = device, warmup = 1, ["repeat"] = rep or 5 })
  a:free()
  b:free()
  local flops = 2 * n * n * n
  return { gflops = flops / t.median / 1e9, gflops_best = flops / t.min / 1e9, n = n, ["repeat"] = rep or 5,
    threads = device.type == "cpu" and core.get_num_threads() or nil,
    what = ("%dx%dx%d float32 product (lunet.matmul)"):format(n, n, n) }
end

--- Number of trainable scalars in a model (m:parameters()).
function bench.parameter_count(model)
  local params = model:parameters()
  local n = 0
  for _, p in ipairs(params) do n = n + p:numel() end
  return n
end

--- "1m05s", "12.3s", for progress lines.
function bench.format_duration(seconds)
  if seconds ~= seconds or seconds == math.huge then return "?" end
  if seconds < 60 then return ("%.1fs"):format(seconds) end
  local m = math.floor(seconds / 60)
  if m < 60 then return ("%dm%02ds"):format(m, math.floor(seconds - 60 * m)) end
  return ("%dh%02dm"):format(m // 60, m % 60)
end

return bench
