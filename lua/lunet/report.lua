--- Writing results: JSON (lua-cjson), Markdown and SVG charts for the
-- GPU-vs-CPU session and the batch-size sweep.
--
-- Every file is written to a temporary name in its folder and renamed into
-- place, so a reader never sees half a file; report.prepare_dir checks that
-- the folder is writable before any measurement starts.
local cjson = require("cjson")
local svg = require("lunet.svg")
local cli = require("lunet.cli")

local report = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Why the folder `dir` cannot be made or written: the first part of its
-- path that is a file, or that exists but is not writable.
local function why_not_writable(dir, err)
  local path = ""
  for part in dir:gmatch("[^/]+") do
    path = path .. "/" .. part
    if dir:sub(1, 1) ~= "/" and path:sub(1, 1) == "/" then path = path:sub(2) end
    local ok, _, code = os.rename(path, path) -- exists?
    if not ok and code == 2 then -- missing: its parent is where it cannot be made
      local parent = path:match("^(.*)/[^/]*$") or "."
      return ("%s cannot be created in %s (%s)"):format(path, parent == "" and "/" or parent, err)
    end
    local is_dir = os.execute("test -d " .. quote(path))
    if not is_dir then return ("%s is a file, not a folder"):format(path) end
  end
  if not os.execute("test -w " .. quote(dir)) then return ("%s is not writable (permission denied)"):format(dir) end
  return err
end

--- Makes `dir` (with its parents) and checks a file can be created in it.
-- Returns true, or nil and a message that says what is wrong.
function report.prepare_dir(dir)
  if type(dir) ~= "string" or dir == "" then return nil, "the output folder name is empty" end
  local probe_path = dir .. "/.lunet-write-test-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e9))
  local f = io.open(probe_path, "w")
  if not f then
    os.execute("mkdir -p " .. quote(dir) .. " 2>/dev/null")
    local err
    f, err = io.open(probe_path, "w")
    if not f then
      err = (err or "unknown error"):gsub("^" .. probe_path:gsub("%p", "%%%0") .. ": ", "")
      return nil, ("cannot write to the output folder %s: %s"):format(dir, why_not_writable(dir, err))
    end
  end
  local ok, err = f:write("x")
  f:close()
  os.remove(probe_path)
  if not ok then return nil, ("cannot write to the output folder %s: %s"):format(dir, tostring(err)) end
  return true
end

--- Writes `content` to `path` atomically (temporary file, then rename): a
-- failure (a full disk, a bad value) leaves an existing file as it was and no
-- temporary file behind.
function report.write_file(path, content)
  -- renaming over a device or a named pipe would replace it (as root, even
  -- /dev/null): only regular files are replaced
  local kind = require("lunet.core").file_kind(path)
  if kind and kind ~= "file" then
    error(("lunet.report: cannot write %s: it is a %s, not a regular file"):format(path, kind), 0)
  end
  local tmp = ("%s.tmp-%d-%d"):format(path, os.time(), math.random(1e9))
  local f, err = io.open(tmp, "wb")
  if not f then error(("lunet.report: cannot write %s: %s"):format(path, tostring(err)), 0) end
  local wrote, ok, werr = pcall(f.write, f, content)
  if not wrote then ok, werr = nil, ok end -- content that is not a string
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    error(("lunet.report: cannot write %s: %s (an existing %s is unchanged)"):format(path,
      tostring(werr or cerr), path), 0)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error(("lunet.report: cannot write %s: %s"):format(path, tostring(rerr)), 0)
  end
end

-- JSON ---------------------------------------------------------------------------

local function is_array(t)
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return true -- an empty table is written as [] (the results' empty lists)
end

--- Pretty, deterministic JSON (keys sorted, two-space indent); the scalars
-- are encoded by lua-cjson. NaN and infinities become null; an empty table
-- becomes [].
function report.json(value, indent)
  indent = indent or ""
  local t = type(value)
  if t == "number" then
    if value ~= value or value == math.huge or value == -math.huge then return "null" end
    if math.type(value) == "integer" then return tostring(value) end
    return (("%.10g"):format(value))
  elseif t == "string" then
    -- lua-cjson escapes "/" as "\/": valid, but paths read better without
    return (cjson.encode(value):gsub("\\/", "/"))
  elseif t == "boolean" then
    return cjson.encode(value)
  elseif value == nil or value == cjson.null then
    return "null"
  elseif t ~= "table" then
    return cjson.encode(tostring(value))
  end
  local inner = indent .. "  "
  local parts = {}
  if is_array(value) then
    if #value == 0 then return "[]" end
    for i, v in ipairs(value) do parts[i] = inner .. report.json(v, inner) end
    return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = {}
  for k in pairs(value) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then return "{}" end
  table.sort(keys)
  for i, k in ipairs(keys) do
    local v = value[k]
    if v == nil then v = value[tonumber(k)] end
    parts[i] = inner .. report.json(k) .. ": " .. report.json(v, inner)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end

-- Formatting helpers ------------------------------------------------------------------

local function fmt(v, pattern)
  if v == nil or v ~= v then return "n/a" end
  return (pattern or "%.3g"):format(v)
end

local function seconds(v)
  if v == nil or v ~= v then return "n/a" end
  if v >= 100 then return ("%.0f s"):format(v) end
  if v >= 10 then return ("%.1f s"):format(v) end
  if v >= 1 then return ("%.2f s"):format(v) end
  if v <= 0 then return "0 s" end
  -- three significant digits, trailing zeros kept: "0.600 s" beside "2.50 s"
  return ("%." .. math.min(9, 2 - math.floor(math.log(v, 10))) .. "f s"):format(v)
end
report.format_seconds = seconds

--- A reason in a few words, for a chart or a report line (the full text is
-- in results.json): the first clause, without "lunet.x: " prefixes, cut at a
-- word before `max` characters.
function report.short_reason(reason, max)
  max = max or 80
  local s = tostring(reason or "unknown reason"):gsub("%s+", " ")
  s = s:gsub("^[%w_%.]+: ", ""):gsub("^[%w_%.]-:%d+: ", "") -- "lunet.cuda: ", "cuda:1: "
  s = s:match("^(.-)%s*%(") or s
  if utf8.len(s) and utf8.len(s) > max then
    local cut = s:sub(1, (utf8.offset(s, max) or max + 1) - 1)
    s = (cut:match("^(.*)%s") or cut) .. "…"
  end
  return s
end

local function md_escape(s)
  return (tostring(s):gsub("|", "\\|"):gsub("\n", " "))
end

--- A device's hardware in a few words: "AMD EPYC, 2 threads" or the GPU name.
function report.hardware(result, env)
  if result.info and result.info.name then
    if result.device == "cpu" then
      return ("%s, %d threads"):format(result.info.name, result.info.threads or 0)
    end
    return result.info.name
  end
  if result.device == "cpu" and env and env.cpu then
    return ("%s, %d threads"):format(env.cpu.model or "CPU", env.cpu.threads or 0)
  end
  return result.device
end

--- Speed-ups of every measured device over the first measured CPU result.
function report.speedups(results)
  local base
  for _, r in ipairs(results.devices) do
    if r.device == "cpu" and r.status == "ok" then base = r break end
  end
  local list = {}
  if not base then return list end
  for _, r in ipairs(results.devices) do
    if r ~= base and r.status == "ok" then
      local s = { device = r.device, baseline = base.device }
      if r.training and base.training and r.training.seconds > 0 then
        s.training = base.training.seconds / r.training.seconds
      end
      if r.inference and base.inference and r.inference.median_seconds > 0 then
        s.inference = base.inference.median_seconds / r.inference.median_seconds
      end
      list[#list + 1] = s
    end
  end
  return list
end

local function speedup_lines(results, phase)
  local lines = {}
  for _, s in ipairs(results.speedups or report.speedups(results)) do
    if s[phase] then
      lines[#lines + 1] = ("%s is %.1fx %s than %s"):format(s.device,
        s[phase] >= 1 and s[phase] or 1 / s[phase], s[phase] >= 1 and "faster" or "slower", s.baseline)
    end
  end
  if #lines == 0 then
    if results.gpu_available == false then
      lines[1] = "no speed-up to state: no GPU here, only the CPU was measured"
    else
      lines[1] = "no speed-up to state: fewer than two devices were measured"
    end
  end
  return lines
end
report.speedup_lines = speedup_lines

-- The session: Markdown -----------------------------------------------------------------

local WIDTH = 100 -- a report's table rows fit this many columns (the full texts are in results.json)

--- A Markdown table row of `cells`, the widest cell cut (with "…") until the
-- row fits WIDTH columns.
local function row(cells)
  local c = {}
  for i, v in ipairs(cells) do c[i] = md_escape(v) end
  local function line() return "| " .. table.concat(c, " | ") .. " |" end
  while utf8.len(line()) > WIDTH do
    local wi, ww = 1, 0
    for i, v in ipairs(c) do
      local w = utf8.len(v) or #v
      if w > ww then wi, ww = i, w end
    end
    if ww <= 4 then break end
    -- the widest cell loses what is over, but never below the next widest
    local second = 0
    for i, v in ipairs(c) do
      if i ~= wi then second = math.max(second, utf8.len(v) or #v) end
    end
    local keep = math.max(ww - (utf8.len(line()) - WIDTH) - 1, second - 1)
    keep = math.max(3, math.min(keep, ww - 2))
    local cut = utf8.offset(c[wi], keep + 1) or (#c[wi] + 1)
    c[wi] = c[wi]:sub(1, cut - 1):gsub("%s+$", "") .. "…"
  end
  return line()
end
report.table_row = row

local function align(spec) -- "l r r" -> "|---|---:|---:|"
  local parts = {}
  for a in spec:gmatch("%S") do parts[#parts + 1] = a == "r" and "---:" or "---" end
  return "|" .. table.concat(parts, "|") .. "|"
end

local function status_text(r)
  if r.status == "interrupted" then return "**interrupted**" end
  return "**failed**: " .. tostring(r.error or "unknown error")
end

local function pct(v) return v and ("%.0f%%"):format(100 * v) or "n/a" end

--- The session's report: one table per aspect (training, inference,
-- environment), the charts embedded, earlier runs (--compare) apart.
-- `files` names the charts (report.write_session passes them).
function report.session_markdown(results, files)
  files = files or { training = "training_time.svg", inference = "inference_time.svg", json = "results.json" }
  local a, env = results.arguments or {}, results.environment or {}
  local out = {}
  local function add(s) out[#out + 1] = s or "" end
  local stopped = results.interrupted
  add((stopped and "# INTERRUPTED, partial results — " or "# ") .. "GPU vs CPU in machine learning: " ..
    (results.model and results.model.name or "model") ..
    " on " .. (results.dataset and results.dataset.name or "the dataset"))
  add()
  if stopped then
    add(("**Interrupted (Ctrl-C) %s.** What finished before is below; %s. This is not a complete run."):format(
      md_escape(stopped.at or "?"), (stopped.devices_not_run and #stopped.devices_not_run > 0)
        and ("not run: " .. table.concat(stopped.devices_not_run, ", ")) or "no device was left to run"))
    add()
  end
  add(("lunet %s%s, %s."):format(env.lunet_version or "?",
    env.git_commit and (" (git " .. env.git_commit .. (env.git_dirty and ", with local changes" or "") .. ")") or "",
    env.date or ""))
  add()
  if results.gpu_available == false then
    add(("**No GPU available** (%s): only the CPU was measured; %s has the full reason."):format(
      md_escape(report.short_reason(results.gpu_unavailable_reason)), files.json))
    add()
  end
  local devices = results.devices or {}

  add("## Training")
  add()
  add(("%s of batch size %s%s; time and rate cover the whole loop (data, forward, backward, step)."):format(
    cli.plural(a.epochs or "?", "epoch"), tostring(a.batch_size),
    a.max_batches and (", **capped at " .. a.max_batches .. " batches per epoch** (a quick run, not the full lesson)") or ""))
  add()
  add(row({ "device", "time", "images/s", "GFLOP/s", "of sgemm", "final loss", "test accuracy" }))
  add(align("l r r r r r r"))
  for _, r in ipairs(devices) do
    if r.status == "ok" then
      local tr = r.training
      add(row({ r.device, seconds(tr.seconds), svg.format_number(tr.images_per_second), fmt(tr.gflops, "%.1f"),
        pct(tr.sgemm_share), fmt(tr.final_loss, "%.4f"),
        r.accuracy and ("%.2f%%"):format(100 * r.accuracy.accuracy) or "n/a" }))
    else
      add(row({ r.device, status_text(r), "", "", "", "", "" }))
    end
  end
  add()
  add(("![Training time](%s)"):format(files.training))
  add()
  add("## Inference")
  add()
  add(("The test set (%s images, batch size %s) in eval mode: one warm-up pass, excluded, then %s%s."):format(
    results.inference_images and svg.format_number(results.inference_images) or "?",
    tostring(a.eval_batch_size or a.batch_size), cli.plural(a["repeat"] or "?", "timed pass", "timed passes"),
    a["repeat"] == 1 and "" or ": median, min and max"))
  add()
  add(row({ "device", "median", "min – max", "images/s", "GFLOP/s", "of sgemm" }))
  add(align("l r r r r r"))
  for _, r in ipairs(devices) do
    if r.status == "ok" then
      local inf = r.inference
      add(row({ r.device, seconds(inf.median_seconds), seconds(inf.min_seconds) .. " – " .. seconds(inf.max_seconds),
        svg.format_number(inf.images_per_second), fmt(inf.gflops, "%.1f"), pct(inf.sgemm_share) }))
    else
      add(row({ r.device, status_text(r), "", "", "", "" }))
    end
  end
  add()
  add(("![Inference time](%s)"):format(files.inference))
  add()
  if results.distributed then -- a data-parallel run (lunet/dist_session.lua)
    for _, line in ipairs(require("lunet.dist_session").markdown(results)) do add(line) end
  end
  add("## Speed-ups")
  add()
  local ups = results.speedups or report.speedups(results)
  if #ups == 0 then
    add("- " .. speedup_lines(results, "training")[1])
  else
    for _, s in ipairs(ups) do
      add(("- %s over %s: training %s, inference %s"):format(s.device, s.baseline,
        s.training and ("%.1fx"):format(s.training) or "n/a", s.inference and ("%.1fx"):format(s.inference) or "n/a"))
    end
  end
  add()
  local compared = results.compared or {}
  if #compared > 0 then
    add("## Recorded earlier (--compare)")
    add()
    add("Devices from earlier results.json files, drawn beside this run's in the charts. They were measured " ..
      "on other runs, maybe with other settings (the last column): compare rates (images/s), not times.")
    add()
    add(row({ "device", "recorded on", "training img/s", "inference img/s", "test accuracy" }))
    add(align("l l r r r"))
    for _, c in ipairs(compared) do
      add(row({ c.device, c.machine or c.recorded_on, svg.format_number(c.training.images_per_second),
        svg.format_number(c.inference.images_per_second),
        c.accuracy and ("%.2f%%"):format(100 * c.accuracy.accuracy) or "n/a" }))
    end
    add()
    for _, c in ipairs(compared) do
      add(("- %s, from %s: %s"):format(c.device, md_escape(c.file or "?"), md_escape(c.settings or "?")))
    end
    add()
  end
  add("## Per epoch")
  add()
  -- training accuracy: of the epoch's own batches, as the model was while it
  -- learned them (not the test accuracy); "–" where the targets were not labels
  add(row({ "device", "epoch", "batches", "images", "time", "images/s", "mean loss", "training accuracy" }))
  add(align("l r r r r r r r"))
  for _, r in ipairs(devices) do
    for _, e in ipairs(r.training and r.training.epochs or {}) do
      add(row({ r.device, tostring(e.epoch), tostring(e.batches), tostring(e.images), seconds(e.seconds),
        ("%.0f"):format(e.images_per_second), ("%.4f"):format(e.mean_loss),
        type(e.accuracy) == "number" and ("%.2f%%"):format(100 * e.accuracy) or "–" }))
    end
  end
  add()
  add("## Environment")
  add()
  add(row({ "what", "details" }))
  add(align("l l"))
  add(row({ "CPU", ("%s, %s cores, %s threads"):format(env.cpu and env.cpu.model or "?",
    tostring(env.cpu and env.cpu.cores or "?"), tostring(env.cpu and env.cpu.threads or "?")) }))
  add(row({ "BLAS", env.cpu and env.cpu.blas or "?" }))
  add(row({ "CPU kernels", env.cpu and env.cpu.kernels or "?" }))
  if env.cpu and env.cpu.simd_flags then
    add(row({ "CPU vector flags", env.cpu.simd_flags ~= "" and env.cpu.simd_flags or "none of note" }))
  end
  add(row({ "compute precision", env.precision or "float32" }))
  for _, g in ipairs(env.gpus or {}) do
    add(row({ g.device or "GPU", ("%s, compute capability %s, %.1f GiB"):format(g.name or "?",
      g.compute_capability or "?", (g.memory_bytes or 0) / 2 ^ 30) }))
    add(row({ (g.device or "GPU") .. " software", ("driver %s, CUDA %s, cuDNN %s, cuBLAS %s%s"):format(
      g.driver_version or "?", g.runtime_version or "?", g.cudnn_version or "?", g.cublas_version or "?",
      env.tf32 ~= nil and ("; TF32 " .. (env.tf32 and "on" or "off")) or "") }))
    -- which ops run host-staged (kernels never run on a GPU are off: cuda/unverified.c)
    if g.kernels and g.kernels ~= "" then add(row({ (g.device or "GPU") .. " kernels", g.kernels })) end
  end
  if #(env.gpus or {}) == 0 then add(row({ "GPU", "none (see above)" })) end
  for _, r in ipairs(devices) do
    if r.status == "ok" and r.sgemm then
      add(row({ r.device .. " sgemm rate", ("%s GFLOP/s, %s%s"):format(
        fmt(r.sgemm.gflops_best or r.sgemm.gflops, "%.1f"), r.sgemm.what or "?",
        r.sgemm.threads and (", " .. r.sgemm.threads .. " threads") or "") }))
    end
    if r.gpu_memory and r.gpu_memory.peak_bytes then
      add(row({ r.device .. " memory", ("peak GPU memory allocated %.0f MiB (lunet's caching allocator)"):format(
        r.gpu_memory.peak_bytes / 2 ^ 20) }))
    end
  end
  add(row({ "host", ("%s, %s"):format(env.hostname or "?", env.os or "?") }))
  add(row({ "Lua", env.lua or "?" }))
  add()
  add("## Achieved rate against the device's sgemm rate")
  add()
  add("The \"of sgemm\" columns divide the achieved GFLOP/s by the device's own rate for one large product " ..
    "(the environment table), measured in the same run after the timed phases, the best of its repeats: " ..
    "a busy moment lowers a median, not what the device can do, so the shares err low. The rates count " ..
    "the model's arithmetic as a direct convolution does it; where a device computes 3x3 convolutions " ..
    "with Winograd's F(2x2, 3x3), which needs 2.25 times fewer multiplications, a share above 100% is possible.")
  add()
  add("## How this was measured")
  add()
  local m = results.model or {}
  add(("- Model: %s, %s parameters, the same initial weights on every device (built on the CPU from seed %s, then copied)."):format(
    m.name or "?", m.parameters and svg.format_number(m.parameters) or "?", tostring(a.seed)))
  local recipe = results.recipe and results.recipe.optimizer or ("Adam (lr " .. tostring(a.lr) .. ")")
  add(("- Training: %s, batch size %s, %s, cross-entropy loss, shuffled with seed %s%s."):format(
    cli.plural(a.epochs or "?", "epoch"), tostring(a.batch_size), recipe, tostring(a.seed),
    a.max_batches and (", at most " .. cli.plural(a.max_batches, "batch", "batches") .. " per epoch") or ""))
  local d = results.dataset or {}
  if d.name then
    add(("- Dataset: %s (%s training, %s test images of %s)%s."):format(d.name,
      d.train_images and svg.format_number(d.train_images) or "?",
      d.test_images and svg.format_number(d.test_images) or "?",
      d.image_shape and table.concat(d.image_shape, "x") or "?",
      results.recipe and results.recipe.augmentation and ("; augmentation: " .. results.recipe.augmentation) or ""))
  end
  for _, r in ipairs(results.devices or {}) do
    local l = r.status == "ok" and r.loader
    if l then
      add(("  - %s: the training loader alone (no step) delivers %s images/s%s, %.1fx the training rate%s"):format(
        r.device, fmt(l.images_per_second, "%.0f"), l.transform_where and (", augmented on " .. l.transform_where) or "",
        l.images_per_second / math.max(r.training.images_per_second, 1e-9),
        r.training.data_bound and ("; **data-bound**: the step waited " .. seconds(r.training.data_wait_seconds)
          .. " for decoding") or ""))
    end
  end
  if a.warmup_batches and a.warmup_batches > 0 then
    local warm = {}
    for _, d in ipairs(results.devices or {}) do
      if d.warmup and d.warmup.batch_sizes then
        warm[#warm + 1] = ("%s: %s, batch sizes %s"):format(d.device, cli.plural(d.warmup.steps, "step"),
          table.concat(d.warmup.batch_sizes, ", "))
      end
    end
    add(("- Warm-up: %s before the timed epochs, not timed (plus one on the final partial batch's shape when the epochs reach it)%s; the weights and optimizer state are then restored, so the timed run starts from the seed's state."):format(
      cli.plural(a.warmup_batches, "training step"), #warm > 0 and (" — " .. table.concat(warm, "; ")) or ""))
  end
  add(("- Data mode `%s`: %s"):format(a.data_mode or "seed", a.data_mode == "resident"
    and "the dataset is uploaded to the device once (timed apart, as upload time) and each batch is gathered and scaled there."
    or "each batch is gathered and scaled on the host, then copied to the device, as the original notebook does; that time counts as training time."))
  if a.data_mode == "resident" then
    for _, r in ipairs(devices) do
      if r.status == "ok" and r.training and r.training.upload_seconds then
        add(("  - upload of the datasets to %s: %s (not part of the training time)"):format(r.device,
          seconds(r.training.upload_seconds)))
      end
    end
  end
  add("- Every clock read is preceded by a device synchronisation.")
  add(("- GFLOP/s: convolution and linear layers, a multiply-add counted as 2 FLOPs: %.1f MFLOP per image forward; training counted as %dx forward (forward, gradient of the inputs, gradient of the weights) = %.1f MFLOP per image."):format(
    (m.forward_flops_per_image or 0) / 1e6, m.train_flops_factor or 3, (m.train_flops_per_image or 0) / 1e6))
  for _, r in ipairs(devices) do
    if r.status ~= "ok" and r.status ~= "interrupted" then
      add(("- %s failed: %s"):format(r.device, md_escape(r.error or "unknown error")))
    end
  end
  add()
  add(("Files: %s (every figure, the full texts), %s, %s."):format(files.json, files.training, files.inference))
  return table.concat(out, "\n") .. "\n"
end

-- The session: charts ---------------------------------------------------------------------

local DEVICE_COLORS = { cpu = "#4e79a7" }
local GPU_COLORS = { "#59a14f", "#f28e2b", "#b07aa1", "#e15759" }
local RECORDED_COLOR = "#9c9c9c"

local function device_color(name, index)
  return DEVICE_COLORS[name] or GPU_COLORS[(index - 1) % #GPU_COLORS + 1]
end

--- "25.0x faster than cpu": the speed-up of `r` over this run's CPU result
-- `base` in `phase`, by images/s (a recorded run may have had other settings).
local function speedup_note(r, base, phase)
  if not base or r == base or not (r[phase] and base[phase]) then return nil end
  local x = (r[phase].images_per_second or 0) / (base[phase].images_per_second or 0)
  if x ~= x or x == math.huge or x <= 0 then return nil end
  if x >= 1 then return ("%.1fx faster than %s"):format(x, base.device) end
  return ("%.1fx slower than %s"):format(1 / x, base.device)
end

--- The bars of a session chart: this run's devices, then the recorded
-- ones (--compare), labelled as such, each with its speed-up over this
-- run's CPU. `pick(r)` gives value, text.
local function chart_bars(results, phase, pick)
  local bars, gpu_index, base = {}, 0, nil
  for _, r in ipairs(results.devices or {}) do
    if r.device == "cpu" and r.status == "ok" then base = r break end
  end
  for _, r in ipairs(results.devices or {}) do
    if r.device ~= "cpu" then gpu_index = gpu_index + 1 end
    local bar = { label = r.device, sublabel = report.hardware(r, results.environment),
      color = device_color(r.device, math.max(gpu_index, 1)) }
    if r.status == "ok" then
      bar.value, bar.text = pick(r)
      bar.note = speedup_note(r, base, phase)
    elseif r.status == "interrupted" then
      bar.missing = "interrupted (Ctrl-C)"
    else
      bar.missing = "failed: " .. report.short_reason(r.error, 40)
    end
    bars[#bars + 1] = bar
  end
  for _, c in ipairs(results.compared or {}) do
    local bar = { label = c.device .. " (recorded)", sublabel = c.recorded_on, color = RECORDED_COLOR,
      recorded = true }
    bar.value, bar.text = pick(c)
    bar.note = speedup_note(c, base, phase)
    bars[#bars + 1] = bar
  end
  return bars
end

local function no_gpu_line(results)
  if results.gpu_available == false then
    return "no GPU here (" .. report.short_reason(results.gpu_unavailable_reason, 60) .. ")"
  end
end

function report.training_chart(results)
  local a = results.arguments or {}
  local subtitle = {}
  subtitle[1] = ("%s%s, batch size %s, data mode %s; lower is better"):format(
    cli.plural(a.epochs or "?", "epoch"),
    a.max_batches and (" of at most " .. cli.plural(a.max_batches, "batch", "batches")) or "",
    tostring(a.batch_size), tostring(a.data_mode))
  subtitle[#subtitle + 1] = no_gpu_line(results)
  if results.interrupted then subtitle[#subtitle + 1] = "INTERRUPTED (Ctrl-C): partial results" end
  return svg.bar_chart({
    title = ("Training time: %s on %s"):format(results.model and results.model.name or "model",
      results.dataset and results.dataset.name or "data"),
    subtitle = subtitle,
    x_label = "device",
    y_label = "training time (seconds)",
    bars = chart_bars(results, "training", function(r)
      return r.training.seconds, ("%s (%s img/s)"):format(seconds(r.training.seconds),
        svg.format_number(r.training.images_per_second))
    end),
  })
end

function report.inference_chart(results)
  local a = results.arguments or {}
  local subtitle = {}
  -- "the median of 1" says nothing: one pass is named as such
  subtitle[1] = ("%s test images, %s%s after a warm-up; lower is better"):format(
    results.inference_images and svg.format_number(results.inference_images) or "?",
    a["repeat"] == 1 and "" or "median of ", cli.plural(a["repeat"] or "?", "timed pass", "timed passes"))
  subtitle[#subtitle + 1] = no_gpu_line(results)
  if results.interrupted then subtitle[#subtitle + 1] = "INTERRUPTED (Ctrl-C): partial results" end
  return svg.bar_chart({
    title = "Inference time over the test set",
    subtitle = subtitle,
    x_label = "device",
    y_label = "inference time per pass (seconds)",
    bars = chart_bars(results, "inference", function(r)
      return r.inference.median_seconds, ("%s (%s img/s)"):format(seconds(r.inference.median_seconds),
        svg.format_number(r.inference.images_per_second))
    end),
  })
end

local function integer_text(v) return tostring(math.type(v) == "float" and math.tointeger(v) or v) end

--- The measured devices of an earlier results.json (--compare), each with
-- `recorded_on` ("recorded on NVIDIA H100, 2026-11-30") and `settings`.
-- Returns the list, or nil and a message naming the file and the problem.
function report.load_compared(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, ("cannot read %s"):format(tostring(err)) end
  local text = f:read("a")
  f:close()
  local ok, data = pcall(cjson.decode, text)
  if not ok or type(data) ~= "table" then
    return nil, ("%s is not JSON: %s"):format(path, tostring(data))
  end
  if data.schema ~= "lunet.gpu_vs_cpu/1" or type(data.devices) ~= "table" then
    return nil, ("%s is not the results.json of a session (schema %s, expected lunet.gpu_vs_cpu/1)")
      :format(path, tostring(data.schema))
  end
  local env, a = data.environment or {}, data.arguments or {}
  local date = tostring(env.date or "unknown date"):match("^(%d%d%d%d%-%d%d%-%d%d)") or tostring(env.date)
  local list = {}
  for _, r in ipairs(data.devices) do
    if r.status == "ok" and type(r.training) == "table" and type(r.inference) == "table" then
      list[#list + 1] = { device = r.device, status = "ok", file = path, info = r.info,
        training = r.training, inference = r.inference, accuracy = r.accuracy,
        machine = ("%s, %s"):format(report.hardware(r, env), date),
        recorded_on = ("recorded on %s, %s"):format(report.hardware(r, env), date),
        settings = ("%s, batch %s%s, %s"):format(cli.plural(a.epochs or "?", "epoch"), integer_text(a.batch_size),
          a.max_batches and (", at most " .. cli.plural(a.max_batches, "batch", "batches")) or "",
          tostring(a.data_mode)) }
    end
  end
  if #list == 0 then return nil, path .. " has no measured device" end
  return list
end

--- Writes results.json, report.md, training_time.svg and inference_time.svg
-- into `dir`; returns the list of paths. opts.suffix goes before each
-- extension (".interrupted": results.interrupted.json, ...), so a partial run
-- never replaces a complete one.
function report.write_session(results, dir, opts)
  local suffix = opts and opts.suffix or ""
  results.speedups = results.speedups or report.speedups(results)
  local names = { json = "results" .. suffix .. ".json", md = "report" .. suffix .. ".md",
    training = "training_time" .. suffix .. ".svg", inference = "inference_time" .. suffix .. ".svg" }
  local files = {
    { names.json, report.json(results) .. "\n" },
    { names.md, report.session_markdown(results, names) },
    { names.training, report.training_chart(results) },
    { names.inference, report.inference_chart(results) },
  }
  local paths = {}
  for i, f in ipairs(files) do
    paths[i] = dir .. "/" .. f[1]
    report.write_file(paths[i], f[2])
  end
  return paths
end

-- The batch-size sweep -----------------------------------------------------------------------

function report.sweep_chart(sweep)
  local series, gpu_index = {}, 0
  for _, d in ipairs(sweep.devices or {}) do
    if d.device ~= "cpu" then gpu_index = gpu_index + 1 end
    local color = device_color(d.device, math.max(gpu_index, 1))
    for _, phase in ipairs({ "training", "inference" }) do
      local pts = {}
      for _, p in ipairs(d.points or {}) do
        if p[phase] and p[phase].images_per_second then
          pts[#pts + 1] = { p.batch_size, p[phase].images_per_second }
        end
      end
      if #pts > 0 then
        series[#series + 1] = { name = d.device .. " " .. phase, color = color, dashed = phase == "inference",
          points = pts }
      end
    end
  end
  local ymin, ymax = math.huge, 0
  for _, s in ipairs(series) do
    for _, p in ipairs(s.points) do
      if p[2] > 0 then ymin = math.min(ymin, p[2]) end
      ymax = math.max(ymax, p[2])
    end
  end
  local subtitle = { "images per second against batch size (higher is better); solid: training, dashed: inference" }
  if sweep.gpu_available == false then
    subtitle[#subtitle + 1] = "no GPU here (" .. report.short_reason(sweep.gpu_unavailable_reason, 60) .. ")"
  end
  if sweep.interrupted then subtitle[#subtitle + 1] = "INTERRUPTED (Ctrl-C): partial results" end
  return svg.line_chart({
    title = ("Throughput against batch size: %s"):format(sweep.model and sweep.model.name or "model"),
    subtitle = subtitle,
    x_label = "batch size (log2 scale)",
    y_label = "images per second" .. ((ymax / ymin > 30) and " (log scale)" or ""),
    x_log2 = true,
    y_log = ymax / ymin > 30,
    series = series,
    empty = "nothing was measured",
  })
end

function report.write_sweep(sweep, dir, opts)
  local suffix = opts and opts.suffix or ""
  local paths = { dir .. "/batch_sweep" .. suffix .. ".json", dir .. "/batch_sweep" .. suffix .. ".svg" }
  report.write_file(paths[1], report.json(sweep) .. "\n")
  report.write_file(paths[2], report.sweep_chart(sweep))
  return paths
end

return report
