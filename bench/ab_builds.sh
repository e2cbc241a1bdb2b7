#!/usr/bin/env bash
# Two lunet builds on the seed workload in one run, taking turns: the small
# AlexNet on Fashion-MNIST (batch 64, Adam) trained for a fixed number of
# batches after untimed warm-up steps and run on the whole test set, by each
# tree's own scripts/gpu_vs_cpu.lua with its own Lua modules and build
# (DIR/build from `cmake -B build`, or DIR/.luarocks from ./scripts/test),
# A then B on odd repeats, B then A on even ones, each pair with the same
# seed, so a change in the machine's load hits both. For "before vs after"
# checks: build the old commit in a scratch tree (git archive <commit> | tar
# -x -C DIR; cmake -B DIR/build -DLUNET_CUDA=OFF; cmake --build DIR/build)
# and pass it as --a. --training-only times training alone (one inference
# batch, a small sgemm rate: a quicker run). bench/session_ab.sh is this with
# --training-only.
#
# Prints each run's training and inference images/s, the medians and the
# medians of the per-repeat B/A ratios, the whole runs' processor seconds
# (steadier than the wall clock on a shared machine) and whether each pair's
# mean losses agree, and writes bench/results/ab_builds-<UTC date>.json with
# every run and the load averages.
#
#   bench/ab_builds.sh --a DIR [--b DIR (default: this checkout)] [--training-only]
#                      [--precision fp32|bf16] [--repeats 5] [--batches 200] [--warmup 10]
#                      [--threads 2] [--batch-size 64] [--out bench/results]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
a="" b="$(cd "$here/.." && pwd)" repeats=5 batches=200 warmup=10 threads=2 batch_size=64 out=""
training_only=0 name=ab_builds precision=fp32
source "$(dirname "$0")/workload_options.sh"
while [ $# -gt 0 ]; do
  if workload_option "$1" "${2-}"; then shift 2; continue; fi
  case "$1" in
    --a) a="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    --training-only) training_only=1; shift ;;
    --precision) precision="$2"; shift 2 ;;
    --name) name="$2"; shift 2 ;; # the results file's prefix (session_ab.sh)
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ab_builds.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
check_workload_numbers ab_builds.sh
[ -n "$a" ] || { echo "ab_builds.sh: --a DIR is required (try --help)" >&2; exit 2; }
# the Lua paths of a checkout: its lua/ first, then its build
lua_paths() {
  local dir="$1"
  if [ -f "$dir/build/lunet/core.so" ]; then
    echo "$dir/lua/?.lua;$dir/lua/?/init.lua;;" "$dir/build/?.so;;"
  elif [ -f "$dir/.luarocks/lib/lua/5.4/lunet/core.so" ]; then
    echo "$dir/lua/?.lua;$dir/lua/?/init.lua;;" "$dir/.luarocks/lib/lua/5.4/?.so;;"
  else
    echo "ab_builds.sh: $dir has no build of lunet (cmake -B build && cmake --build build, or ./scripts/test)" >&2
    return 1
  fi
}
for d in "$a" "$b"; do
  [ -f "$d/scripts/gpu_vs_cpu.lua" ] || { echo "ab_builds.sh: $d is not a lunet checkout" >&2; exit 2; }
  lua_paths "$d" >/dev/null || exit 2
done
a="$(cd "$a" && pwd)" b="$(cd "$b" && pwd)"
out="${out:-$here/results}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_build() { # label dir repeat
  local label="$1" dir="$2" r="$3" lp lcp
  read -r lp lcp <<<"$(lua_paths "$dir")"
  local phases=(--eval-max-batches 0)
  # --precision only when asked: trees older than it (4f64f06) still run fp32
  [ "$precision" != fp32 ] && phases+=(--precision "$precision")
  [ "$training_only" -eq 1 ] && phases=(--eval-max-batches 1 --sgemm-size 256)
  echo "[$r/$repeats] $label: $dir (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg >"$work/$label-$r.load"
  local TIMEFORMAT='%U %S' # the whole run's processor seconds (user, system)
  { time LUA_PATH="$lp" LUA_CPATH="$lcp" lua5.4 "$dir/scripts/gpu_vs_cpu.lua" --devices cpu \
    --threads "$threads" --epochs 1 --max-batches "$batches" --warmup-batches "$warmup" "${phases[@]}" \
    --repeat 1 --batch-size "$batch_size" --seed "$r" --out "$work/$label-$r" >"$work/$label-$r.log" 2>&1 ; } \
    2>"$work/$label-$r.cpu" || { cat "$work/$label-$r.log" >&2; exit 1; }
}

echo "A: $a"
echo "B: $b"
echo "$repeats repeats, $batches timed training batches after $warmup warm-up steps, batch $batch_size," \
     "$threads threads, $precision, $([ "$training_only" -eq 1 ] && echo "training only" || echo "inference over the whole test set")"
for r in $(seq 1 "$repeats"); do
  if [ $((r % 2)) -eq 1 ]; then run_build a "$a" "$r"; run_build b "$b" "$r"
  else run_build b "$b" "$r"; run_build a "$a" "$r"; fi
done

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
result="$out/$name-$stamp.json"
commit_of() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout"; }
read -r lp lcp <<<"$(lua_paths "$b")"
LUA_PATH="$lp" LUA_CPATH="$lcp" lua5.4 - "$work" "$repeats" "$result" \
  "$a" "$b" "$batches" "$warmup" "$threads" "$batch_size" "$(commit_of "$a")" "$(commit_of "$b")" \
  "$training_only" "$precision" <<'LUA'
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
local training_only = arg[12] == "1"
local runs, series = {}, { a_train = {}, a_infer = {}, b_train = {}, b_infer = {}, ratio_train = {},
  ratio_infer = {}, a_cpu_seconds = {}, b_cpu_seconds = {} }
local same_loss = true
for r = 1, repeats do
  local run = { repeat_index = r, first = r % 2 == 1 and "a" or "b" }
  for _, label in ipairs({ "a", "b" }) do
    local session = cjson.decode(read(("%s/%s-%d/results.json"):format(work, label, r)))
    local cpu = session.devices[1]
    assert(cpu.status == "ok", label .. "'s run failed: " .. tostring(cpu.error))
    local user, sys = read(("%s/%s-%d.cpu"):format(work, label, r)):match("([%d.]+)%s+([%d.]+)")
    run[label] = { train_images_per_s = cpu.training.images_per_second,
      -- one batch with --training-only: no rate worth a number
      infer_images_per_s = not training_only and cpu.inference.images_per_second or nil,
      accuracy = not training_only and cpu.accuracy.accuracy or nil,
      mean_loss = cpu.training.epochs[1].mean_loss, process_cpu_seconds = tonumber(user) + tonumber(sys),
      load_average = read(("%s/%s-%d.load"):format(work, label, r)):gsub("%s+$", "") }
    series[label .. "_train"][r] = run[label].train_images_per_s
    series[label .. "_infer"][r] = run[label].infer_images_per_s
    series[label .. "_cpu_seconds"][r] = run[label].process_cpu_seconds
  end
  run.train_ratio = run.b.train_images_per_s / run.a.train_images_per_s
  run.infer_ratio = not training_only and run.b.infer_images_per_s / run.a.infer_images_per_s or nil
  run.same_mean_loss = run.a.mean_loss == run.b.mean_loss
  same_loss = same_loss and run.same_mean_loss
  series.ratio_train[r], series.ratio_infer[r] = run.train_ratio, run.infer_ratio
  runs[r] = run
end
local median, spread = {}, {}
for k, v in pairs(series) do
  if #v > 0 then
    local s = bench.stats(v)
    median[k], spread[k] = s.median, { min = s.min, max = s.max }
  end
end
median.same_mean_loss_every_pair = same_loss
local doc = {
  schema = "lunet.ab_builds/1",
  builds = { a = { dir = arg[4], commit = arg[10] }, b = { dir = arg[5], commit = arg[11] } },
  settings = { repeats = repeats, timed_training_batches = tonumber(arg[6]), warmup_batches = tonumber(arg[7]),
    threads = tonumber(arg[8]), batch_size = tonumber(arg[9]), precision = arg[13],
    inference = training_only and "not timed (--training-only)" or "the whole test set (10,000 images)",
    order = "odd repeats run A first, even repeats B first" },
  runs = runs, median = median, spread = spread,
}
report.write_file(result, report.json(doc) .. "\n")
print()
local function rate(v) return v and ("%.0f"):format(v) or "-" end
print(("%-8s %-4s %16s %16s %10s %8s %10s"):format("repeat", "", "train images/s", "infer images/s", "accuracy",
  "load", "cpu s"))
for _, run in ipairs(runs) do
  for _, label in ipairs({ "a", "b" }) do
    local x = run[label]
    print(("%-8d %-4s %16s %16s %10s %8s %10.1f"):format(run.repeat_index, label, rate(x.train_images_per_s),
      rate(x.infer_images_per_s), x.accuracy and ("%.2f%%"):format(100 * x.accuracy) or "-",
      x.load_average:match("^%S+"), x.process_cpu_seconds))
  end
  print(("%-8s %-4s %15.3fx %16s"):format("", "B/A", run.train_ratio,
    run.infer_ratio and ("%.3fx"):format(run.infer_ratio) or "-"))
end
print()
print(("median of %d: A %s / %s images/s, B %s / %s images/s (training / inference); whole runs' processor "
  .. "seconds A %.1f, B %.1f"):format(repeats, rate(median.a_train), rate(median.a_infer), rate(median.b_train),
  rate(median.b_infer), median.a_cpu_seconds, median.b_cpu_seconds))
print(("B/A (median of the per-repeat ratios): training %.3fx [%.3f..%.3f]%s"):format(median.ratio_train,
  spread.ratio_train.min, spread.ratio_train.max, median.ratio_infer and (", inference %.3fx [%.3f..%.3f]")
  :format(median.ratio_infer, spread.ratio_infer.min, spread.ratio_infer.max) or ""))
print("mean losses: " .. (same_loss and "identical in every pair" or "differ in some pair (with warm-up, a build "
  .. "from before issue 14 trains on its warm-up batches: compare with --warmup 0)"))
print("wrote " .. result)
LUA
