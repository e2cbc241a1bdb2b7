#!/usr/bin/env bash
# lunet against PyTorch on the CPU, side by side: the seed workload (the small
# AlexNet on Fashion-MNIST, batch 64, Adam) trained and run on the test set by
# PyTorch (bench/peers/seed_pytorch.py, the notebook's code as written) and by
# lunet (scripts/gpu_vs_cpu.lua --devices cpu), back to back, several times.
# Both read Debian's data, use the same batch size and thread count, time
# training over the same number of batches after the same untimed warm-up
# steps, and time inference over the whole 10,000-image test set. The two take
# turns going first, so a change in the machine's load hits both.
#
# Prints training and inference images/s of both and their ratios (medians
# of the repeats) and writes bench/results/cpu_vs_pytorch-<UTC date>.json with
# every run's numbers and the environment (CPU, threads, BLAS, torch version,
# lunet commit, load averages, lunet's sgemm rate and achieved GFLOP/s).
#
#   bench/cpu_vs_pytorch.sh [--repeats 3] [--batches 200] [--warmup 10]
#                           [--threads 2] [--batch-size 64] [--out bench/results]
set -euo pipefail

repeats=3 batches=200 warmup=10 threads=2 batch_size=64 out=""
source "$(dirname "$0")/workload_options.sh"
while [ $# -gt 0 ]; do
  if workload_option "$1" "${2-}"; then shift 2; continue; fi
  case "$1" in
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu_vs_pytorch.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
check_workload_numbers cpu_vs_pytorch.sh

here="$(cd "$(dirname "$0")" && pwd)"
# installs what is missing, builds lunet into .luarocks and sets the Lua paths
source "$here/../scripts/setup.sh"
python=/usr/bin/python3
"$python" -c "import torch, torchvision" 2>/dev/null \
  || { echo "cpu_vs_pytorch.sh: PyTorch is missing: apt-get install python3-torch python3-torchvision" >&2; exit 1; }
out="${out:-$LUNET_ROOT/bench/results}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "lunet vs PyTorch on the CPU: $repeats repeats, $batches timed training batches after $warmup" \
     "warm-up steps, batch $batch_size, $threads threads, inference over the whole test set"
for r in $(seq 1 "$repeats"); do
  run_torch() {
    echo "[$r/$repeats] PyTorch (load $(cut -d' ' -f1-3 /proc/loadavg))"
    cut -d' ' -f1-3 /proc/loadavg >"$work/torch-$r.load"
    OMP_NUM_THREADS="$threads" "$python" "$here/peers/seed_pytorch.py" --threads "$threads" \
      --epochs 1 --max-batches "$batches" --warmup-batches "$warmup" --batch-size "$batch_size" \
      --seed "$r" >"$work/torch-$r.log" 2>&1 \
      || { cat "$work/torch-$r.log" >&2; exit 1; }
    tail -n 1 "$work/torch-$r.log" >"$work/torch-$r.json"
  }
  run_lunet() {
    echo "[$r/$repeats] lunet (load $(cut -d' ' -f1-3 /proc/loadavg))"
    cut -d' ' -f1-3 /proc/loadavg >"$work/lunet-$r.load"
    lua5.4 "$LUNET_ROOT/scripts/gpu_vs_cpu.lua" --devices cpu --threads "$threads" --epochs 1 \
      --max-batches "$batches" --warmup-batches "$warmup" --eval-max-batches 0 --repeat 1 \
      --batch-size "$batch_size" --seed "$r" --out "$work/lunet-$r" >"$work/lunet-$r.log" 2>&1 \
      || { cat "$work/lunet-$r.log" >&2; exit 1; }
  }
  if [ $((r % 2)) -eq 1 ]; then run_torch; run_lunet; else run_lunet; run_torch; fi
done

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
result="$out/cpu_vs_pytorch-$stamp.json"
lua5.4 - "$work" "$repeats" "$result" "$batches" "$warmup" "$threads" "$batch_size" <<'LUA'
local cjson = require("cjson")
local report = require("lunet.report")
local bench = require("lunet.bench")
local work, repeats, result = arg[1], tonumber(arg[2]), arg[3]
local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end
local runs, series = {}, { torch_train = {}, torch_infer = {}, lunet_train = {}, lunet_infer = {},
  ratio_train = {}, ratio_infer = {}, lunet_train_gflops = {}, lunet_infer_gflops = {}, sgemm = {} }
local torch_version, lunet_env, model
for r = 1, repeats do
  local torch = cjson.decode(read(("%s/torch-%d.json"):format(work, r)))
  local session = cjson.decode(read(("%s/lunet-%d/results.json"):format(work, r)))
  local cpu = session.devices[1]
  assert(cpu.status == "ok", "lunet's run failed: " .. tostring(cpu.error))
  torch_version, lunet_env, model = torch.torch, session.environment, session.model
  local run = {
    repeat_index = r,
    pytorch = { train_images_per_s = torch.train_images_per_s, infer_images_per_s = torch.infer_images_per_s,
      train_images = torch.train_images, infer_images = torch.infer_images, accuracy = torch.accuracy / 100,
      threads = torch.threads, load_average = read(("%s/torch-%d.load"):format(work, r)):gsub("%s+$", "") },
    lunet = { train_images_per_s = cpu.training.images_per_second,
      infer_images_per_s = cpu.inference.images_per_second, train_images = cpu.training.images,
      infer_images = cpu.inference.images, accuracy = cpu.accuracy.accuracy,
      train_gflops = cpu.training.gflops, infer_gflops = cpu.inference.gflops,
      sgemm_gflops = cpu.sgemm.gflops_best, train_sgemm_share = cpu.training.sgemm_share,
      infer_sgemm_share = cpu.inference.sgemm_share, threads = session.arguments.threads,
      load_average = read(("%s/lunet-%d.load"):format(work, r)):gsub("%s+$", "") },
  }
  run.train_ratio = run.lunet.train_images_per_s / run.pytorch.train_images_per_s
  run.infer_ratio = run.lunet.infer_images_per_s / run.pytorch.infer_images_per_s
  runs[r] = run
  local s = series
  s.torch_train[r], s.torch_infer[r] = run.pytorch.train_images_per_s, run.pytorch.infer_images_per_s
  s.lunet_train[r], s.lunet_infer[r] = run.lunet.train_images_per_s, run.lunet.infer_images_per_s
  s.ratio_train[r], s.ratio_infer[r] = run.train_ratio, run.infer_ratio
  s.lunet_train_gflops[r], s.lunet_infer_gflops[r] = run.lunet.train_gflops, run.lunet.infer_gflops
  s.sgemm[r] = run.lunet.sgemm_gflops
end

local medians = {}
for k, v in pairs(series) do medians[k] = bench.stats(v).median end
local doc = {
  schema = "lunet.cpu_vs_pytorch/1",
  settings = { repeats = repeats, timed_training_batches = tonumber(arg[4]), warmup_batches = tonumber(arg[5]),
    threads = tonumber(arg[6]), batch_size = tonumber(arg[7]), inference = "the whole test set (10,000 images)",
    order = "odd repeats run PyTorch first, even repeats lunet first" },
  environment = { cpu = lunet_env.cpu, host = lunet_env.hostname, os = lunet_env.os, date = lunet_env.date,
    lunet_version = lunet_env.lunet_version, lunet_commit = lunet_env.git_commit,
    lunet_local_changes = lunet_env.git_dirty, torch = torch_version,
    sgemm = "2048x2048x2048 float32 product through lunet.matmul (OpenBLAS sgemm on lunet's threads), best of 5 per run" },
  model = model,
  runs = runs,
  median = {
    pytorch_train_images_per_s = medians.torch_train, pytorch_infer_images_per_s = medians.torch_infer,
    lunet_train_images_per_s = medians.lunet_train, lunet_infer_images_per_s = medians.lunet_infer,
    train_ratio = medians.ratio_train, infer_ratio = medians.ratio_infer,
    lunet_train_gflops = medians.lunet_train_gflops, lunet_infer_gflops = medians.lunet_infer_gflops,
    sgemm_gflops = medians.sgemm,
    lunet_train_sgemm_share = medians.lunet_train_gflops / medians.sgemm,
    lunet_infer_sgemm_share = medians.lunet_infer_gflops / medians.sgemm,
  },
}
report.write_file(result, report.json(doc) .. "\n")

print()
print(("%-8s %-10s %16s %16s %10s %10s"):format("repeat", "", "train images/s", "infer images/s", "accuracy", "load"))
for _, run in ipairs(runs) do
  for _, who in ipairs({ "pytorch", "lunet" }) do
    local x = run[who]
    print(("%-8d %-10s %16.0f %16.0f %9.1f%% %10s"):format(run.repeat_index, who, x.train_images_per_s,
      x.infer_images_per_s, 100 * x.accuracy, x.load_average:match("^%S+")))
  end
  print(("%-8s %-10s %15.2fx %15.2fx"):format("", "ratio", run.train_ratio, run.infer_ratio))
end
local m = doc.median
print()
print(("median of %d: PyTorch %.0f / %.0f images/s, lunet %.0f / %.0f images/s (training / inference)")
  :format(repeats, m.pytorch_train_images_per_s, m.pytorch_infer_images_per_s, m.lunet_train_images_per_s,
    m.lunet_infer_images_per_s))
print(("ratios (median of the per-repeat ratios): training %.2fx, inference %.2fx"):format(m.train_ratio,
  m.infer_ratio))
print(("lunet: training %.1f GFLOP/s, inference %.1f GFLOP/s; sgemm rate %.1f GFLOP/s (%s):"
  .. " %.0f%% and %.0f%% of it"):format(m.lunet_train_gflops, m.lunet_infer_gflops, m.sgemm_gflops,
  doc.environment.sgemm, 100 * m.lunet_train_sgemm_share, 100 * m.lunet_infer_sgemm_share))
print("wrote " .. result)
LUA
