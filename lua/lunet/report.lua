--- Writing results: JSON (lua-cjson), Markdown and SVG charts for the
-- GPU-vs-CPU session and the batch-size sweep.
--
-- Every file is written to a temporary name in its folder and renamed into
-- place, so a reader never sees half a file; report.prepare_dir checks that
-- the folder is writable before any measurement starts.
local cjson = require("cjson")
local svg = require("lunet.svg")

local report = {}

local function quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

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
      return nil, ("cannot write to the output folder %s: %s"):format(dir,
        (err or "unknown error"):gsub("^" .. probe_path:gsub("%p", "%%%0") .. ": ", ""))
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
  return ("%.3g s"):format(v)
end
report.format_seconds = seconds

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
      lines[1] = "no GPU available: " .. tostring(results.gpu_unavailable_reason or "unknown reason")
    else
      lines[1] = "no speed-up to state: fewer than two devices were measured"
    end
  end
  return lines
end
report.speedup_lines = speedup_lines

-- The session: Markdown -----------------------------------------------------------------

function report.session_markdown(results)
  local a, env = results.arguments or {}, results.environment or {}
  local out = {}
  local function add(s) out[#out + 1] = s or "" end
  add("# GPU vs CPU in machine learning: " .. (results.model and results.model.name or "model") ..
    " on " .. (results.dataset and results.dataset.name or "the dataset"))
  add()
  add(("lunet %s%s, %s."):format(env.lunet_version or "?",
    env.git_commit and (" (git " .. env.git_commit .. (env.git_dirty and ", with local changes" or "") .. ")") or "",
    env.date or ""))
  add()
  if results.gpu_available == false then
    add("**No GPU available**: " .. md_escape(results.gpu_unavailable_reason or "unknown reason") ..
      ". Only the CPU was measured.")
    add()
  end
  add("| device | hardware | status | training time | training images/s | training GFLOP/s | test accuracy | inference time (median, min–max) | inference images/s | inference GFLOP/s |")
  add("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
  for _, r in ipairs(results.devices or {}) do
    if r.status == "ok" then
      local tr, inf = r.training, r.inference
      add(("| %s | %s | ok | %s | %s | %s | %s | %s (%s–%s) | %s | %s |"):format(
        r.device, md_escape(report.hardware(r, env)),
        seconds(tr.seconds), fmt(tr.images_per_second, "%.0f"), fmt(tr.gflops, "%.1f"),
        r.accuracy and ("%.2f%%"):format(100 * r.accuracy.accuracy) or "n/a",
        seconds(inf.median_seconds), seconds(inf.min_seconds), seconds(inf.max_seconds),
        fmt(inf.images_per_second, "%.0f"), fmt(inf.gflops, "%.1f")))
    else
      add(("| %s | %s | **failed**: %s | | | | | | | |"):format(r.device, md_escape(report.hardware(r, env)),
        md_escape(r.error or "unknown error")))
    end
  end
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
  local rated = {}
  for _, r in ipairs(results.devices or {}) do
    if r.status == "ok" and r.sgemm then rated[#rated + 1] = r end
  end
  if #rated > 0 then
    add("## Achieved rate against the device's sgemm rate")
    add()
    add("| device | sgemm rate (GFLOP/s, best of the repeats) | measured on | training GFLOP/s | share | " ..
      "inference GFLOP/s | share |")
    add("|---|---:|---|---:|---:|---:|---:|")
    for _, r in ipairs(rated) do
      add(("| %s | %s | %s%s | %s | %s | %s | %s |"):format(r.device,
        fmt(r.sgemm.gflops_best or r.sgemm.gflops, "%.1f"),
        md_escape(r.sgemm.what), r.sgemm.threads and (", " .. r.sgemm.threads .. " threads") or "",
        fmt(r.training.gflops, "%.1f"), fmt(100 * (r.training.sgemm_share or 0), "%.0f%%"),
        fmt(r.inference.gflops, "%.1f"), fmt(100 * (r.inference.sgemm_share or 0), "%.0f%%")))
    end
    add()
    add("The achieved rates count the model's arithmetic as a direct convolution does it (see below); " ..
      "where a device computes 3x3 convolutions with Winograd's F(2x2, 3x3), which needs 2.25 times " ..
      "fewer multiplications, a share above 100% is possible. The sgemm rate is measured in the same run, " ..
      "after the timed phases, and is the best of its repeats (results.json has their median too): " ..
      "a busy moment lowers a median, not what the device can do, so the shares err low.")
    add()
  end
  add("## Per epoch")
  add()
  add("| device | epoch | batches | images | time | images/s | mean loss |")
  add("|---|---:|---:|---:|---:|---:|---:|")
  for _, r in ipairs(results.devices or {}) do
    for _, e in ipairs(r.training and r.training.epochs or {}) do
      add(("| %s | %d | %d | %d | %s | %.0f | %.4f |"):format(r.device, e.epoch, e.batches, e.images,
        seconds(e.seconds), e.images_per_second, e.mean_loss))
    end
  end
  add()
  add("## How this was measured")
  add()
  local m = results.model or {}
  add(("- Model: %s, %s parameters, the same initial weights on every device (built on the CPU from seed %s, then copied)."):format(
    m.name or "?", m.parameters and svg.format_number(m.parameters) or "?", tostring(a.seed)))
  local recipe = results.recipe and results.recipe.optimizer or ("Adam (lr " .. tostring(a.lr) .. ")")
  add(("- Training: %s epoch(s), batch size %s, %s, cross-entropy loss, shuffled with seed %s%s."):format(
    tostring(a.epochs), tostring(a.batch_size), recipe, tostring(a.seed),
    a.max_batches and (", **capped at " .. a.max_batches .. " batches per epoch** (a quick run, not the full lesson)") or ""))
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
    add(("- Warm-up: %d training steps before the timed epochs, not timed."):format(a.warmup_batches))
  end
  add(("- Data mode `%s`: %s"):format(a.data_mode or "seed", a.data_mode == "resident"
    and "the dataset is uploaded to the device once (timed apart, as upload time) and each batch is gathered and scaled there."
    or "each batch is gathered and scaled on the host, then copied to the device, as the original notebook does; that time counts as training time."))
  if a.data_mode == "resident" then
    for _, r in ipairs(results.devices or {}) do
      if r.status == "ok" and r.training and r.training.upload_seconds then
        add(("  - upload of the datasets to %s: %s (not part of the training time)"):format(r.device,
          seconds(r.training.upload_seconds)))
      end
    end
  end
  for _, r in ipairs(results.devices or {}) do
    if r.gpu_memory and r.gpu_memory.peak_bytes then
      add(("- %s: peak GPU memory allocated %.0f MiB (lunet's caching allocator)"):format(r.device,
        r.gpu_memory.peak_bytes / 2 ^ 20))
    end
  end
  add("- Every clock read is preceded by a device synchronisation. Training time covers the whole loop (data, forward, backward, optimizer step, reading the loss) for every epoch.")
  add(("- Inference: the test set (%s images, batch size %s) in eval mode; one warm-up pass, excluded, then %s timed passes: median, min and max."):format(
    results.inference_images and svg.format_number(results.inference_images) or "?",
    tostring(a.eval_batch_size or a.batch_size), tostring(a["repeat"])))
  add(("- GFLOP/s: convolution and linear layers, a multiply-add counted as 2 FLOPs: %.1f MFLOP per image forward; training counted as %dx forward (forward, gradient of the inputs, gradient of the weights) = %.1f MFLOP per image."):format(
    (m.forward_flops_per_image or 0) / 1e6, m.train_flops_factor or 3, (m.train_flops_per_image or 0) / 1e6))
  add()
  add("## Environment")
  add()
  add(("- CPU: %s, %s cores, %s threads; BLAS: %s; lunet's CPU kernels: %s"):format(env.cpu and env.cpu.model or "?",
    env.cpu and env.cpu.cores or "?", env.cpu and env.cpu.threads or "?", env.cpu and env.cpu.blas or "?",
    env.cpu and env.cpu.kernels or "?"))
  for _, g in ipairs(env.gpus or {}) do
    add(("- %s: %s, compute capability %s, %.1f GiB; driver %s, CUDA runtime %s, cuDNN %s, cuBLAS %s%s"):format(
      g.device or "GPU", g.name or "?", g.compute_capability or "?", (g.memory_bytes or 0) / 2 ^ 30,
      g.driver_version or "?", g.runtime_version or "?", g.cudnn_version or "?", g.cublas_version or "?",
      env.tf32 ~= nil and ("; TF32 " .. (env.tf32 and "on" or "off")) or ""))
  end
  if #(env.gpus or {}) == 0 then
    add("- GPU: none" .. (env.cuda_unavailable_reason and (" (" .. md_escape(env.cuda_unavailable_reason) .. ")") or ""))
  end
  add(("- Host %s, %s, %s"):format(env.hostname or "?", env.os or "?", env.lua or "?"))
  add()
  add("Files: results.json (every figure), training_time.svg, inference_time.svg.")
  return table.concat(out, "\n") .. "\n"
end

-- The session: charts ---------------------------------------------------------------------

local DEVICE_COLORS = { cpu = "#4e79a7" }
local GPU_COLORS = { "#59a14f", "#f28e2b", "#b07aa1", "#e15759" }

local function device_color(name, index)
  return DEVICE_COLORS[name] or GPU_COLORS[(index - 1) % #GPU_COLORS + 1]
end

local function chart_bars(results, pick)
  local bars, gpu_index = {}, 0
  for _, r in ipairs(results.devices or {}) do
    if r.device ~= "cpu" then gpu_index = gpu_index + 1 end
    local bar = { label = r.device, sublabel = report.hardware(r, results.environment),
      color = device_color(r.device, math.max(gpu_index, 1)) }
    if r.status == "ok" then
      bar.value, bar.text = pick(r)
    else
      bar.missing = "failed: " .. tostring(r.error or "unknown error"):sub(1, 60)
    end
    bars[#bars + 1] = bar
  end
  return bars
end

function report.training_chart(results)
  local a = results.arguments or {}
  local subtitle = speedup_lines(results, "training")
  subtitle[#subtitle + 1] = ("%s epoch(s)%s, batch size %s, data mode %s; lower is better"):format(
    tostring(a.epochs), a.max_batches and (" of at most " .. a.max_batches .. " batches") or "",
    tostring(a.batch_size), tostring(a.data_mode))
  return svg.bar_chart({
    title = ("Training time: %s on %s"):format(results.model and results.model.name or "model",
      results.dataset and results.dataset.name or "data"),
    subtitle = subtitle,
    x_label = "device",
    y_label = "training time (seconds)",
    bars = chart_bars(results, function(r)
      return r.training.seconds, ("%s (%s img/s)"):format(seconds(r.training.seconds),
        svg.format_number(r.training.images_per_second))
    end),
  })
end

function report.inference_chart(results)
  local a = results.arguments or {}
  local subtitle = speedup_lines(results, "inference")
  subtitle[#subtitle + 1] = ("%s test images, median of %s timed passes after a warm-up; lower is better"):format(
    results.inference_images and svg.format_number(results.inference_images) or "?", tostring(a["repeat"]))
  return svg.bar_chart({
    title = "Inference time over the test set",
    subtitle = subtitle,
    x_label = "device",
    y_label = "inference time per pass (seconds)",
    bars = chart_bars(results, function(r)
      return r.inference.median_seconds, ("%s (%s img/s)"):format(seconds(r.inference.median_seconds),
        svg.format_number(r.inference.images_per_second))
    end),
  })
end

--- Writes results.json, report.md, training_time.svg and inference_time.svg
-- into `dir`; returns the list of paths.
function report.write_session(results, dir)
  results.speedups = results.speedups or report.speedups(results)
  local files = {
    { "results.json", report.json(results) .. "\n" },
    { "report.md", report.session_markdown(results) },
    { "training_time.svg", report.training_chart(results) },
    { "inference_time.svg", report.inference_chart(results) },
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
    subtitle[#subtitle + 1] = "no GPU available: " .. tostring(sweep.gpu_unavailable_reason or "unknown reason")
  end
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

function report.write_sweep(sweep, dir)
  local paths = { dir .. "/batch_sweep.json", dir .. "/batch_sweep.svg" }
  report.write_file(paths[1], report.json(sweep) .. "\n")
  report.write_file(paths[2], report.sweep_chart(sweep))
  return paths
end

return report
