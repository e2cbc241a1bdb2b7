#!/usr/bin/env bash
# Two lunet builds on the seed workload in one run, taking turns: the small
# AlexNet on Fashion-MNIST (batch 64, Adam) trained for a fixed number of
# batches after untimed warm-up steps and run on the whole test set, by each
# tree's own scripts/gpu_vs_cpu.lua on its own build, A then B on odd
# repeats, B then A on even ones, so a change in the machine's load hits
# both. For "before vs after" checks of a redesign (issue 12): build the old
# commit in a scratch tree (git archive <commit> | tar -x -C DIR; cmake -B
# DIR/build -DLUNET_CUDA=OFF; cmake --build DIR/build) and pass it as --a.
#
# Prints each run's training and inference images/s, the medians and the
# medians of the per-repeat B/A ratios, and writes
# bench/results/ab_builds-<UTC date>.json with every run and the load averages.
#
#   bench/ab_builds.sh --a DIR [--b DIR (default: this checkout)] [--repeats 5]
#                      [--batches 200] [--warmup 10] [--threads 2] [--batch-size 64]
#                      [--out bench/results]
# Each DIR is a lunet source tree with its cmake build in DIR/build.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
a="" b="$(cd "$here/.." && pwd)" repeats=5 batches=200 warmup=10 threads=2 batch_size=64 out=""
source "$(dirname "$0")/workload_options.sh"
while [ $# -gt 0 ]; do
  if workload_option "$1" "${2-}"; then shift 2; continue; fi
  case "$1" in
    --a) a="$2"; shift 2 ;;
    --b) b="$2"; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "ab_builds.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
check_workload_numbers ab_builds.sh
[ -n "$a" ] || { echo "ab_builds.sh: --a DIR is required (try --help)" >&2; exit 2; }
for d in "$a" "$b"; do
  [ -f "$d/build/lunet/core.so" ] && [ -f "$d/scripts/gpu_vs_cpu.lua" ] \
    || { echo "ab_builds.sh: $d is not a built lunet tree (no build/lunet/core.so or scripts/gpu_vs_cpu.lua)" >&2; exit 2; }
done
a="$(cd "$a" && pwd)" b="$(cd "$b" && pwd)"
out="${out:-$here/results}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run_build() { # label dir repeat
  local label="$1" dir="$2" r="$3"
  echo "[$r/$repeats] $label: $dir (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg >"$work/$label-$r.load"
  LUA_PATH="$dir/lua/?.lua;$dir/lua/?/init.lua;;" LUA_CPATH="$dir/build/?.so;;" \
    lua5.4 "$dir/scripts/gpu_vs_cpu.lua" --devices cpu --threads "$threads" --epochs 1 \
    --max-batches "$batches" --warmup-batches "$warmup" --eval-max-batches 0 --repeat 1 \
    --batch-size "$batch_size" --seed "$r" --out "$work/$label-$r" >"$work/$label-$r.log" 2>&1 \
    || { cat "$work/$label-$r.log" >&2; exit 1; }
}

echo "A: $a"
echo "B: $b"
echo "$repeats repeats, $batches timed training batches after $warmup warm-up steps, batch $batch_size," \
     "$threads threads, inference over the whole test set"
for r in $(seq 1 "$repeats"); do
  if [ $((r % 2)) -eq 1 ]; then run_build a "$a" "$r"; run_build b "$b" "$r"
  else run_build b "$b" "$r"; run_build a "$a" "$r"; fi
done

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
result="$out/ab_builds-$stamp.json"
commit_of() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo "not a git checkout"; }
LUA_PATH="$b/lua/?.lua;$b/lua/?/init.lua;;" LUA_CPATH="$b/build/?.so;;" lua5.4 - "$work" "$repeats" "$result" \
  "$a" "$b" "$batches" "$warmup" "$threads" "$batch_size" "$(commit_of "$a")" "$(commit_of "$b")" <<'LUA'
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
local runs, series = {}, { a_train = {}, a_infer = {}, b_train = {}, b_infer = {}, ratio_train = {}, ratio_infer = {} }
for r = 1, repeats do
  local run = { repeat_index = r, first = r % 2 == 1 and "a" or "b" }
  for _, label in ipairs({ "a", "b" }) do
    local session = cjson.decode(read(("%s/%s-%d/results.json"):format(work, label, r)))
    local cpu = session.devices[1]
    assert(cpu.status == "ok", label .. "'s run failed: " .. tostring(cpu.error))
    run[label] = { train_images_per_s = cpu.training.images_per_second,
      infer_images_per_s = cpu.inference.images_per_second, accuracy = cpu.accuracy.accuracy,
      load_average = read(("%s/%s-%d.load"):format(work, label, r)):gsub("%s+$", "") }
    series[label .. "_train"][r] = run[label].train_images_per_s
    series[label .. "_infer"][r] = run[label].infer_images_per_s
  end
  run.train_ratio = run.b.train_images_per_s / run.a.train_images_per_s
  run.infer_ratio = run.b.infer_images_per_s / run.a.infer_images_per_s
  series.ratio_train[r], series.ratio_infer[r] = run.train_ratio, run.infer_ratio
  runs[r] = run
end
local median, spread = {}, {}
for k, v in pairs(series) do
  local s = bench.stats(v)
  median[k], spread[k] = s.median, { min = s.min, max = s.max }
end
local doc = {
  schema = "lunet.ab_builds/1",
  builds = { a = { dir = arg[4], commit = arg[10] }, b = { dir = arg[5], commit = arg[11] } },
  settings = { repeats = repeats, timed_training_batches = tonumber(arg[6]), warmup_batches = tonumber(arg[7]),
    threads = tonumber(arg[8]), batch_size = tonumber(arg[9]), inference = "the whole test set (10,000 images)",
    order = "odd repeats run A first, even repeats B first" },
  runs = runs, median = median, spread = spread,
}
report.write_file(result, report.json(doc) .. "\n")
print()
print(("%-8s %-4s %16s %16s %10s %8s"):format("repeat", "", "train images/s", "infer images/s", "accuracy", "load"))
for _, run in ipairs(runs) do
  for _, label in ipairs({ "a", "b" }) do
    local x = run[label]
    print(("%-8d %-4s %16.0f %16.0f %9.2f%% %8s"):format(run.repeat_index, label, x.train_images_per_s,
      x.infer_images_per_s, 100 * x.accuracy, x.load_average:match("^%S+")))
  end
  print(("%-8s %-4s %15.3fx %15.3fx"):format("", "B/A", run.train_ratio, run.infer_ratio))
end
print()
print(("median of %d: A %.0f / %.0f images/s, B %.0f / %.0f images/s (training / inference)")
  :format(repeats, median.a_train, median.a_infer, median.b_train, median.b_infer))
print(("B/A (median of the per-repeat ratios): training %.3fx [%.3f..%.3f], inference %.3fx [%.3f..%.3f]")
  :format(median.ratio_train, spread.ratio_train.min, spread.ratio_train.max, median.ratio_infer,
    spread.ratio_infer.min, spread.ratio_infer.max))
print("wrote " .. result)
LUA
