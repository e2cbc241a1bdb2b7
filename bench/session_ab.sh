#!/usr/bin/env bash
# Two builds of lunet on the seed workload, side by side in one run: the
# session's training (scripts/gpu_vs_cpu.lua --devices cpu, as
# bench/cpu_vs_pytorch.sh runs it: the small AlexNet on Fashion-MNIST, batch
# 64, Adam, the same untimed warm-up) from checkout OLD and from checkout
# NEW, taking turns going first, each pair with the same seed. Each checkout
# runs its own scripts and Lua modules with its own build (DIR/build from
# `cmake -B build`, or DIR/.luarocks from ./scripts/test).
#
# Prints training images/s of both (medians), their ratio, whether each
# pair's mean losses agree, and writes bench/results/session_ab-<UTC date>.json
# with every run's numbers, the load averages and both commits. The losses
# can only agree with --warmup 0 when OLD predates issue 14: its warm-up
# steps trained the model the timed epoch then continued from (today's
# warm-up puts the model and optimizer back).
#
#   bench/session_ab.sh --old DIR --new DIR [--repeats 5] [--batches 100] [--warmup 10]
#                       [--threads 2] [--batch-size 64] [--out bench/results]
set -euo pipefail

old="" new="" repeats=5 batches=100 warmup=10 threads=2 batch_size=64 out=""
source "$(dirname "$0")/workload_options.sh"
while [ $# -gt 0 ]; do
  if workload_option "$1" "${2-}"; then shift 2; continue; fi
  case "$1" in
    --old) old="$2"; shift 2 ;;
    --new) new="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "session_ab.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
check_workload_numbers session_ab.sh
[ -n "$old" ] && [ -n "$new" ] || { echo "session_ab.sh: --old DIR and --new DIR are required" >&2; exit 2; }
here="$(cd "$(dirname "$0")" && pwd)"
out="${out:-$here/results}"
mkdir -p "$out"

# the Lua paths of a checkout: its lua/ first, then its build
lua_paths() {
  local dir="$1"
  if [ -f "$dir/build/lunet/core.so" ]; then
    echo "$dir/lua/?.lua;$dir/lua/?/init.lua;;" "$dir/build/?.so;;"
  elif [ -f "$dir/.luarocks/lib/lua/5.4/lunet/core.so" ]; then
    echo "$dir/lua/?.lua;$dir/lua/?/init.lua;;" "$dir/.luarocks/lib/lua/5.4/?.so;;"
  else
    echo "session_ab.sh: $dir has no build of lunet (cmake -B build && cmake --build build, or ./scripts/test)" >&2
    return 1
  fi
}
for d in "$old" "$new"; do
  [ -f "$d/scripts/gpu_vs_cpu.lua" ] || { echo "session_ab.sh: $d is not a lunet checkout" >&2; exit 2; }
  lua_paths "$d" >/dev/null || exit 2
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
run_side() { # side repeat
  local side="$1" r="$2" dir paths
  if [ "$side" = old ]; then dir="$old"; else dir="$new"; fi
  read -r lp lcp <<<"$(lua_paths "$dir")"
  echo "[$r/$repeats] $side (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg >"$work/$side-$r.load"
  # the whole run's CPU seconds (user + system) too: on a shared machine the
  # work done is steadier than the wall clock
  local TIMEFORMAT='%U %S'
  { time LUA_PATH="$lp" LUA_CPATH="$lcp" lua5.4 "$dir/scripts/gpu_vs_cpu.lua" --devices cpu --threads "$threads" \
    --epochs 1 --max-batches "$batches" --warmup-batches "$warmup" --eval-max-batches 1 --repeat 1 \
    --sgemm-size 256 --batch-size "$batch_size" --seed "$r" --out "$work/$side-$r" >"$work/$side-$r.log" 2>&1 ; } 2>"$work/$side-$r.cpu" \
    || { cat "$work/$side-$r.log" >&2; exit 1; }
}
for r in $(seq 1 "$repeats"); do
  if [ $((r % 2)) -eq 1 ]; then run_side old "$r"; run_side new "$r"; else run_side new "$r"; run_side old "$r"; fi
done

stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
result="$out/session_ab-$stamp.json"
commit() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo unknown; }
lua5.4 - "$work" "$repeats" "$result" "$batches" "$warmup" "$threads" "$batch_size" \
  "$(commit "$old")" "$(commit "$new")" "$old" "$new" <<'LUA'
local cjson = require("cjson")
local work, repeats, result = arg[1], tonumber(arg[2]), arg[3]
local function read(path)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return s
end
local function median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) // 2] or (s[n // 2] + s[n // 2 + 1]) / 2
end
local runs, rates, ratios, same_loss = {}, { old = {}, new = {} }, {}, true
local cpu_seconds = { old = {}, new = {} }
for r = 1, repeats do
  local pair = {}
  for _, side in ipairs({ "old", "new" }) do
    local doc = cjson.decode(read(("%s/%s-%d/results.json"):format(work, side, r)))
    local cpu = doc.devices[1]
    local e = cpu.training.epochs[1]
    pair[side] = { images_per_second = cpu.training.images_per_second, seconds = cpu.training.seconds,
      images = cpu.training.images, mean_loss = e.mean_loss, correct = e.correct,
      load = read(("%s/%s-%d.load"):format(work, side, r)):gsub("%s+$", ""),
      warmup = cpu.warmup }
    local user, sys = read(("%s/%s-%d.cpu"):format(work, side, r)):match("([%d.]+)%s+([%d.]+)")
    pair[side].process_cpu_seconds = tonumber(user) + tonumber(sys)
    cpu_seconds[side][r] = pair[side].process_cpu_seconds
    rates[side][r] = pair[side].images_per_second
  end
  pair.repeat_ = r
  pair.first = r % 2 == 1 and "old" or "new"
  pair.same_mean_loss = pair.old.mean_loss == pair.new.mean_loss
  same_loss = same_loss and pair.same_mean_loss
  ratios[r] = pair.new.images_per_second / pair.old.images_per_second
  runs[r] = pair
end
local summary = {
  old_images_per_second = median(rates.old), new_images_per_second = median(rates.new),
  new_over_old_medians = median(rates.new) / median(rates.old), new_over_old_pairs_median = median(ratios),
  old_process_cpu_seconds = median(cpu_seconds.old), new_process_cpu_seconds = median(cpu_seconds.new),
  same_mean_loss_every_pair = same_loss,
  losses_note = tonumber(arg[5]) > 0 and "with warm-up, a build from before issue 14 trains on its "
    .. "warm-up batches (today's restores the model), so the losses differ by design; compare them with --warmup 0"
    or "no warm-up on either side: the same steps from the same weights",
}
local doc = {
  schema = "lunet-session-ab/1", workload = "seed (small AlexNet, Fashion-MNIST, Adam), scripts/gpu_vs_cpu.lua --devices cpu",
  settings = { repeats = repeats, timed_training_batches = tonumber(arg[4]), warmup_batches = tonumber(arg[5]),
    threads = tonumber(arg[6]), batch_size = tonumber(arg[7]) },
  old = { commit = arg[8], dir = arg[10] }, new = { commit = arg[9], dir = arg[11] },
  summary = summary, runs = runs,
}
local f = assert(io.open(result, "w"))
f:write(cjson.encode(doc), "\n")
f:close()
print(("training images/s, medians of %d: old %.0f, new %.0f: new/old %.3fx (median of the pairs' ratios %.3fx); "
  .. "whole runs' CPU seconds old %.1f, new %.1f; mean losses %s"):format(repeats, summary.old_images_per_second,
  summary.new_images_per_second, summary.new_over_old_medians, summary.new_over_old_pairs_median,
  summary.old_process_cpu_seconds, summary.new_process_cpu_seconds,
  same_loss and "identical in every pair" or ("differ in some pair" .. (tonumber(arg[5]) > 0
    and " (an OLD from before issue 14 trains on its warm-up: compare with --warmup 0)" or ""))))
print("wrote " .. result)
LUA
