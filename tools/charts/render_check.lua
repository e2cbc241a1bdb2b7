--- Renders the report's charts in headless Chromium and checks what a
-- reader sees: every expected text drawn, no text outside the picture
-- (clipped), no two texts on top of each other, and a screenshot of each.
--   lua5.4 tools/charts/render_check.lua CHROMIUM OUT-DIR
-- Run by `scripts/check charts`; exits 1 when a chart fails. The charts are
-- drawn from made-up results covering the hard cases: a 150x speed-up (log
-- axis), a failed device with a long driver error, no GPU, a recorded device
-- (--compare), an interrupted run, one timed pass, a sweep on a log axis.
local chromium, out = arg[1], arg[2]
assert(chromium and out, "usage: lua5.4 tools/charts/render_check.lua CHROMIUM OUT-DIR")
local report = require("lunet.report")
local cjson = require("cjson")

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function device(name, train_s, infer_s, extra)
  local r = { device = name, status = "ok", info = { name = name == "cpu" and "AMD EPYC 9R14 96-Core Processor"
      or "NVIDIA H100 80GB HBM3", threads = 2 },
    training = { seconds = train_s, images = 120000, images_per_second = 120000 / train_s, gflops = 50,
      epochs = { { epoch = 1, batches = 938, images = 60000, seconds = train_s / 2, images_per_second = 1, mean_loss = 0.4 } } },
    accuracy = { correct = 9080, total = 10000, accuracy = 0.908 },
    inference = { median_seconds = infer_s, min_seconds = infer_s, max_seconds = infer_s,
      images_per_second = 10000 / infer_s, gflops = 40 } }
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local function results(t)
  local r = {
    arguments = { epochs = t.epochs or 2, batch_size = 64, lr = 1e-3, ["repeat"] = t["repeat"] or 3,
      data_mode = "seed", seed = 42, max_batches = t.max_batches },
    environment = { date = "2026-12-03T10:00:00Z", cpu = { model = "AMD EPYC", cores = 2, threads = 2 }, gpus = {} },
    dataset = { name = "Fashion-MNIST" }, model = { name = "fashion_alexnet" },
    inference_images = 10000, gpu_available = t.gpu_available ~= false,
    gpu_unavailable_reason = t.gpu_available == false and ("lunet.cuda: CUDA driver error: cudaGetDeviceCount " ..
      "returned 35 (CUDA driver version is insufficient for CUDA runtime version): install a newer driver") or nil,
    devices = t.devices, compared = t.compared, interrupted = t.interrupted,
  }
  return r
end

local long_error = "cuda:1: CUDA error: out of memory (cudaMalloc of 2147483648 bytes failed: the device has " ..
  "1073741824 bytes free) at cuda/alloc.c:88"
local cases = {
  { name = "speedup_150x", chart = "training", results = results({ devices = {
      device("cpu", 150, 8), device("cuda:0", 1, 0.2), { device = "cuda:1", status = "failed", error = long_error } } }),
    expect = { "150.0x faster than cpu", "log scale: the values differ 150x", "failed: CUDA error: out of memory",
      "Training time: fashion_alexnet on Fashion-MNIST", "2 epochs, batch size 64" } },
  { name = "no_gpu_one_pass", chart = "inference", results = results({ gpu_available = false, ["repeat"] = 1,
      devices = { device("cpu", 77, 2.5) } }),
    expect = { "10,000 test images, 1 timed pass after a warm-up", "no GPU here (CUDA driver error: cudaGetDeviceCount returned 35)",
      "2.50 s (4,000 img/s)" } },
  { name = "compare_recorded", chart = "training", results = results({ gpu_available = false, devices = { device("cpu", 77, 2.5) },
      compared = { (function()
        local c = device("cuda:0", 3.1, 0.09)
        c.recorded_on = "recorded on NVIDIA H100 80GB HBM3, 2026-11-30"
        return c
      end)() } }),
    expect = { "cuda:0 (recorded)", "recorded on NVIDIA H100 80GB HBM3, 2026-11-30", "24.8x faster than cpu" } },
  { name = "interrupted", chart = "training", results = results({ epochs = 1, max_batches = 1, devices = {
      device("cpu", 12, 1.1), { device = "cuda:0", status = "interrupted", error = "interrupted (Ctrl-C)" } },
      interrupted = { at = "on cuda:0, training epoch 1, batch 5" } }),
    expect = { "INTERRUPTED (Ctrl-C): partial results", "interrupted (Ctrl-C)", "1 epoch of at most 1 batch" } },
  { name = "close_values", chart = "inference", results = results({ devices = { device("cpu", 10, 2.5), device("cuda:0", 5, 0.6) } }),
    expect = { "4.2x faster than cpu", "0.600 s (16,667 img/s)", "2.50 s (4,000 img/s)" } },
}
local sweep = { model = { name = "fashion_alexnet" }, gpu_available = true, devices = {} }
for d, scale in pairs({ cpu = 1, ["cuda:0"] = 200 }) do
  local pts = {}
  for i, b in ipairs({ 16, 32, 64, 128, 256, 512, 1024 }) do
    pts[i] = { batch_size = b, training = { images_per_second = 300 * scale * (1 + i / 4) },
      inference = { images_per_second = 1000 * scale * (1 + i / 3) } }
  end
  sweep.devices[#sweep.devices + 1] = { device = d, points = pts }
end
table.sort(sweep.devices, function(a, b) return a.device < b.device end)
cases[#cases + 1] = { name = "sweep_log", svg = report.sweep_chart(sweep),
  expect = { "images per second (log scale)", "cuda:0 training", "cpu inference", "1,024" } }

-- The page: the chart inline, and a script that measures every text.
local PAGE = [[<!DOCTYPE html><html><head><meta charset="utf-8"><style>body{margin:0}</style></head><body>
%s
<pre id="result"></pre>
<script>
const svg = document.querySelector("svg");
const box = svg.getBoundingClientRect();
const texts = [...svg.querySelectorAll("text")];
const problems = [];
const rects = texts.map(t => t.getBoundingClientRect());
texts.forEach((t, i) => {
  const r = rects[i];
  if (!t.textContent.trim()) return;
  if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)
    problems.push("clipped: '" + t.textContent + "' at " + [r.left, r.top, r.right, r.bottom].map(Math.round).join(","));
  for (let j = 0; j < i; j++) {
    const s = rects[j];
    const w = Math.min(r.right, s.right) - Math.max(r.left, s.left);
    const h = Math.min(r.bottom, s.bottom) - Math.max(r.top, s.top);
    if (w > 2 && h > 3 && texts[j].textContent.trim())
      problems.push("overlap: '" + t.textContent + "' and '" + texts[j].textContent + "'");
  }
});
const all = texts.map(t => t.textContent).join(" | ");
document.getElementById("result").textContent = JSON.stringify({ problems: problems, texts: all });
</script></body></html>]]

local failed = 0
for _, c in ipairs(cases) do
  local doc = c.svg or (c.chart == "training" and report.training_chart(c.results) or report.inference_chart(c.results))
  local svg_path, html_path, png_path = out .. "/" .. c.name .. ".svg", out .. "/" .. c.name .. ".html",
    out .. "/" .. c.name .. ".png"
  report.write_file(svg_path, doc)
  report.write_file(html_path, PAGE:format((doc:gsub("^<%?xml[^>]*>%s*", ""))))
  local w, h = doc:match('width="(%d+)" height="(%d+)"')
  local flags = "--headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1 2>/dev/null"
  local p = io.popen(("%s --virtual-time-budget=2000 --dump-dom %s %s"):format(q(chromium), q("file://" .. html_path), flags))
  local dom = p:read("a")
  p:close()
  os.execute(("%s --screenshot=%s --window-size=%s,%s %s %s >/dev/null"):format(q(chromium), q(png_path), w, h,
    q("file://" .. svg_path), flags))
  local json = dom:match('<pre id="result">(.-)</pre>')
  local problems = {}
  if not json or json == "" then
    problems[1] = "Chromium gave no result (is it working? " .. chromium .. ")"
  else
    json = json:gsub("&quot;", '"'):gsub("&lt;", "<"):gsub("&gt;", ">"):gsub("&amp;", "&")
    local r = cjson.decode(json)
    for _, pr in ipairs(r.problems) do problems[#problems + 1] = pr end
    local drawn = r.texts:gsub("%s*|%s*", " ")
    for _, want in ipairs(c.expect) do
      if not drawn:find(want, 1, true) then problems[#problems + 1] = "missing text: '" .. want .. "'" end
    end
    -- singular after 1, never "1 ... passes"/"1 batches"
    for bad in drawn:gmatch("%f[%d]1 %a+ ?%a*") do
      if bad:match("^1 batches") or bad:match("^1 epochs") or bad:match("^1 timed passes") then
        problems[#problems + 1] = "wrong plural: '" .. bad .. "'"
      end
    end
  end
  local f = io.open(png_path, "rb")
  local png = f and f:read("a") or ""
  if f then f:close() end
  if #png < 2000 or png:sub(2, 4) ~= "PNG" then problems[#problems + 1] = "no screenshot (" .. png_path .. ")" end
  if #problems == 0 then
    print(("charts: %-18s PASS (%s texts checked, screenshot %s)"):format(c.name, #c.expect, png_path))
  else
    failed = failed + 1
    print(("charts: %-18s FAIL"):format(c.name))
    for _, pr in ipairs(problems) do print("  " .. pr) end
  end
end
print(("charts: %d of %d charts clean"):format(#cases - failed, #cases))
os.exit(failed == 0 and 0 or 1)
