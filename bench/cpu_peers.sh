#!/usr/bin/env bash
# lunet against the CPU frameworks a user installs today from PyPI, side by
# side on the seed workload (the small AlexNet on Fashion-MNIST, batch 64,
# Adam): PyTorch eager (fp32 and bf16 autocast), TensorFlow-CPU / Keras 3
# (oneDNN), ONNX Runtime (inference only), JAX + optax (jit), and lunet in
# fp32 and bf16 (lunet.autocast, where the CPU has AVX512-BF16).
#
# Same rule for all: the same thread count (--threads), training timed over
# --batches steps after --warmup untimed steps, inference timed over the
# whole 10,000-image test set after warm-up, --infer-repeats passes a run and
# their median taken (one slow pass does not decide a ratio); the data as
# images decoded once into an array for every framework (PyTorch with
# --predecoded: not torchvision's per-image ToTensor, which would time PIL);
# one process per run; the order
# of the runners rotates from repeat to repeat (odd repeats forward, even
# ones reversed), so a change in the machine's load hits all of them. Prints
# and writes bench/results/cpu_peers-<UTC date>.json: every run, the medians,
# the ratios (lunet fp32 against the best peer, lunet bf16 against lunet fp32
# and PyTorch bf16), issue 16's goals (each ratio's bar, in training and
# inference, met or not), the peers' versions, the CPU model and its vector
# flags, and the load averages.
#
# The peers go into a virtual environment under the build folder
# (build/peers-venv, or $LUNET_PEERS_VENV), installed from PyPI on the first
# run. A peer that cannot be installed or imported (offline, no wheel for
# this Python) is skipped and the results say why. PyPI's Linux torch wheels
# are built against CUDA: `pip install torch` pulls the nvidia-* runtime
# wheels (~3 GB) even for CPU use, and torch without them fails to import
# (libcufile), so they are installed too. Not part of scripts/test.
#
#   bench/cpu_peers.sh [--quick] [--repeats 3] [--infer-repeats 3] [--batches 200]
#                      [--warmup 10] [--threads 2] [--batch-size 64] [--peers LIST] [--no-install]
#                      [--out bench/results]
#   --quick: 1 repeat of 50 timed batches and 1 inference pass (a check that everything runs)
#   --peers: comma-separated subset of lunet,lunet-bf16,pytorch,pytorch-bf16,
#            tensorflow,onnxruntime,jax (default: all)
set -euo pipefail

repeats=3 infer_repeats="" batches=200 warmup=10 threads=2 batch_size=64 out="" install=1
peers="lunet,lunet-bf16,pytorch,pytorch-bf16,tensorflow,onnxruntime,jax"
source "$(dirname "$0")/workload_options.sh"
while [ $# -gt 0 ]; do
  if workload_option "$1" "${2-}"; then shift 2; continue; fi
  case "$1" in
    --quick) repeats=1; quick=1; batches=50; shift ;;
    --infer-repeats)
      [[ "${2-}" =~ ^[1-9][0-9]*$ ]] || { echo "cpu_peers.sh: --infer-repeats needs a whole number >= 1, got '${2-}'" >&2; exit 2; }
      infer_repeats="$2"; shift 2 ;;
    --peers) peers="$2"; shift 2 ;;
    --no-install) install=0; shift ;;
    -h|--help) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu_peers.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
# --quick: one inference pass unless --infer-repeats says otherwise
[ -n "$infer_repeats" ] || infer_repeats=$([ "${quick:-0}" -eq 1 ] && echo 1 || echo 3)
check_workload_numbers cpu_peers.sh

here="$(cd "$(dirname "$0")" && pwd)"
# installs what is missing, builds lunet into .luarocks and sets the Lua paths
source "$here/../scripts/setup.sh"
out="${out:-$LUNET_ROOT/bench/results}"
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
venv="${LUNET_PEERS_VENV:-$LUNET_ROOT/build/peers-venv}"
py="$venv/bin/python"

# --- the peers' environment ------------------------------------------------------
: >"$work/skipped"
skip() { echo "cpu_peers.sh: skipping $1: $2" >&2; printf '%s\t%s\n' "$1" "$2" >>"$work/skipped"; }
if [ ! -x "$py" ]; then
  if [ "$install" -eq 1 ]; then
    echo "cpu_peers.sh: creating $venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" || { echo "cpu_peers.sh: python3 -m venv failed (apt-get install python3-venv)" >&2; exit 1; }
  else
    echo "cpu_peers.sh: no environment at $venv and --no-install given" >&2; exit 1
  fi
fi
# peer -> pip packages, and the import that proves it works
declare -A packages=([pytorch]="torch torchvision" [tensorflow]="tensorflow-cpu"
  [onnxruntime]="onnxruntime onnx numpy" [jax]="jax optax")
declare -A imports=([pytorch]="import torch, torchvision" [tensorflow]="import tensorflow, keras"
  [onnxruntime]="import onnxruntime, onnx, numpy" [jax]="import jax, optax")
declare -A usable=()
for peer in pytorch tensorflow onnxruntime jax; do
  case ",$peers," in *",$peer,"*|*",$peer-bf16,"*) ;; *) continue ;; esac
  if ! "$py" -c "${imports[$peer]}" >/dev/null 2>&1 && [ "$install" -eq 1 ]; then
    echo "cpu_peers.sh: pip install ${packages[$peer]} (log: $venv/pip-$peer.log)"
    "$py" -m pip install ${packages[$peer]} >"$venv/pip-$peer.log" 2>&1 \
      || skip "$peer" "pip install ${packages[$peer]} failed: $(tail -n 1 "$venv/pip-$peer.log")"
  fi
  if "$py" -c "${imports[$peer]}" >"$work/import-$peer.log" 2>&1; then
    usable[$peer]=1
  elif ! grep -q "^$peer	" "$work/skipped"; then
    skip "$peer" "'${imports[$peer]}' failed: $(tail -n 1 "$work/import-$peer.log")"
  fi
done
has_bf16=0
lua5.4 -e 'for _, l in ipairs(require("lunet").cpu_levels()) do if l == "avx512bf16" then os.exit(0) end end os.exit(1)' \
  && has_bf16=1

runners=()
for r in lunet lunet-bf16 pytorch pytorch-bf16 tensorflow onnxruntime jax; do
  case ",$peers," in *",$r,"*) ;; *) continue ;; esac
  case "$r" in
    lunet) ;;
    lunet-bf16) [ "$has_bf16" -eq 1 ] || { skip "$r" "this CPU has no AVX512-BF16 (lunet.cpu_levels())"; continue; } ;;
    pytorch-bf16) [ -n "${usable[pytorch]:-}" ] || continue ;;
    *) [ -n "${usable[$r]:-}" ] || continue ;;
  esac
  runners+=("$r")
done
[ "${#runners[@]}" -ge 1 ] || { echo "cpu_peers.sh: nothing to run" >&2; exit 1; }

# --- the runs ------------------------------------------------------------------------
run_one() { # runner repeat
  local who="$1" r="$2" log="$work/$1-$2.log"
  echo "[$r/$repeats] $who (load $(cut -d' ' -f1-3 /proc/loadavg))"
  cut -d' ' -f1-3 /proc/loadavg >"$work/$who-$r.load"
  local common=(--threads "$threads" --batch-size "$batch_size" --max-batches "$batches"
                --warmup-batches "$warmup" --seed "$r")
  case "$who" in
    lunet|lunet-bf16)
      local precision=fp32
      [ "$who" = lunet-bf16 ] && precision=bf16
      lua5.4 "$LUNET_ROOT/scripts/gpu_vs_cpu.lua" --devices cpu --epochs 1 --eval-max-batches 0 \
        --repeat "$infer_repeats" --precision "$precision" "${common[@]}" --out "$work/$who-$r" >"$log" 2>&1 \
        || { cat "$log" >&2; exit 1; }
      ;;
    pytorch|pytorch-bf16)
      local precision=fp32
      [ "$who" = pytorch-bf16 ] && precision=bf16
      OMP_NUM_THREADS="$threads" "$py" "$here/peers/seed_pytorch.py" --epochs 1 --predecoded \
        --infer-repeats "$infer_repeats" --precision "$precision" "${common[@]}" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
      tail -n 1 "$log" >"$work/$who-$r.json"
      ;;
    *)
      OMP_NUM_THREADS="$threads" "$py" "$here/peers/seed_$who.py" --infer-repeats "$infer_repeats" \
        "${common[@]}" >"$log" 2>&1 \
        || { cat "$log" >&2; exit 1; }
      tail -n 1 "$log" >"$work/$who-$r.json"
      ;;
  esac
}
echo "cpu_peers.sh: ${runners[*]}; $repeats repeats, $batches timed training batches after" \
     "$warmup warm-up steps, batch $batch_size, $threads threads, inference: the median of" \
     "$infer_repeats passes over the whole test set"
for r in $(seq 1 "$repeats"); do
  if [ $((r % 2)) -eq 1 ]; then
    for who in "${runners[@]}"; do run_one "$who" "$r"; done
  else
    for ((i = ${#runners[@]} - 1; i >= 0; i--)); do run_one "${runners[$i]}" "$r"; done
  fi
done

# --- the results -----------------------------------------------------------------
grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2- >"$work/cpu_flags"
lscpu >"$work/lscpu" 2>/dev/null || true
stamp="$(date -u +%Y-%m-%dT%H%M%SZ)"
result="$out/cpu_peers-$stamp.json"
lua5.4 - "$work" "$repeats" "$result" "$batches" "$warmup" "$threads" "$batch_size" "$infer_repeats" "${runners[@]}" <<'LUA'
local cjson = require("cjson")
local report = require("lunet.report")
local bench = require("lunet.bench")
local work, repeats, result = arg[1], tonumber(arg[2]), arg[3]
local runners = {}
for i = 9, #arg do runners[#runners + 1] = arg[i] end
local function read(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local runs, versions, env = {}, {}, nil
local series = {}
for _, who in ipairs(runners) do series[who] = { train = {}, infer = {} } end
for r = 1, repeats do
  for _, who in ipairs(runners) do
    local run = { runner = who, repeat_index = r,
      load_average = (read(("%s/%s-%d.load"):format(work, who, r)) or ""):gsub("%s+$", "") }
    if who:match("^lunet") then
      local session = cjson.decode(read(("%s/%s-%d/results.json"):format(work, who, r)))
      local cpu = session.devices[1]
      assert(cpu.status == "ok", "lunet's run failed: " .. tostring(cpu.error))
      env = session.environment
      run.train_images_per_s, run.infer_images_per_s = cpu.training.images_per_second, cpu.inference.images_per_second
      run.accuracy, run.precision = cpu.accuracy.accuracy, session.arguments.precision
      run.kernels = env.cpu and env.cpu.kernels
      run.infer_pass_seconds = cpu.inference.times
      versions[who] = "lunet " .. tostring(env.lunet_version) .. " (" .. tostring(env.git_commit) .. ")"
    else
      local peer = cjson.decode(read(("%s/%s-%d.json"):format(work, who, r)))
      run.train_images_per_s = peer.train_images_per_s ~= cjson.null and peer.train_images_per_s or nil
      run.infer_images_per_s = peer.infer_images_per_s
      run.infer_pass_seconds = peer.infer_pass_seconds ~= cjson.null and peer.infer_pass_seconds or nil
      versions[who] = peer.version or ("torch " .. tostring(peer.torch))
    end
    runs[#runs + 1] = run
    if run.train_images_per_s then table.insert(series[who].train, run.train_images_per_s) end
    table.insert(series[who].infer, run.infer_images_per_s)
  end
end
local medians = {}
for _, who in ipairs(runners) do
  local s = series[who]
  medians[who] = { train_images_per_s = #s.train > 0 and bench.stats(s.train).median or nil,
    infer_images_per_s = bench.stats(s.infer).median }
end
local function best(kind, filter)
  local name, value
  for _, who in ipairs(runners) do
    local v = medians[who][kind .. "_images_per_s"]
    if not who:match("^lunet") and v and filter(who) and (not value or v > value) then name, value = who, v end
  end
  return name, value
end
local ratios = {}
local function ratio(key, num, den)
  if num and den then ratios[key] = num / den end
end
local lf, lb = medians.lunet, medians["lunet-bf16"]
for _, kind in ipairs({ "train", "infer" }) do
  local k = kind .. "_images_per_s"
  local fp32_peer, fp32_value = best(kind, function(w) return not w:match("bf16") end)
  local any_peer, any_value = best(kind, function() return true end)
  ratios["best_fp32_peer_" .. kind] = fp32_peer
  ratios["best_peer_" .. kind] = any_peer
  if lf then
    ratio("lunet_fp32_vs_best_fp32_peer_" .. kind, lf[k], fp32_value)
    ratio("lunet_fp32_vs_best_peer_" .. kind, lf[k], any_value)
  end
  if lb then
    ratio("lunet_bf16_vs_lunet_fp32_" .. kind, lb[k], lf and lf[k])
    ratio("lunet_bf16_vs_pytorch_bf16_" .. kind, lb[k], medians["pytorch-bf16"] and medians["pytorch-bf16"][k])
  end
end
-- issue 16's goals, each in both phases: met when both ratios reach the bar
-- (absent ratios, e.g. a skipped peer, leave the goal open: met = nil)
local goals = {}
local function goal(name, key, at_least)
  local train, infer = ratios[key .. "_train"], ratios[key .. "_infer"]
  local met
  if train and infer then met = train >= at_least and infer >= at_least end
  goals[#goals + 1] = { goal = name, at_least = at_least, train = train, infer = infer, met = met }
end
goal("lunet fp32 against the best fp32 peer", "lunet_fp32_vs_best_fp32_peer", 1.5)
goal("lunet bf16 against lunet fp32", "lunet_bf16_vs_lunet_fp32", 1.6)
goal("lunet bf16 against PyTorch bf16 autocast", "lunet_bf16_vs_pytorch_bf16", 1.5)
local skipped = {}
for line in (read(work .. "/skipped") or ""):gmatch("[^\n]+") do
  local who, why = line:match("^([^\t]+)\t(.*)$")
  skipped[#skipped + 1] = { runner = who, reason = why }
end
local lscpu = read(work .. "/lscpu") or ""
local doc = {
  schema = "lunet.cpu_peers/1",
  settings = { repeats = repeats, infer_repeats = tonumber(arg[8]), timed_training_batches = tonumber(arg[4]), warmup_batches = tonumber(arg[5]),
    threads = tonumber(arg[6]), batch_size = tonumber(arg[7]),
    inference = "the whole test set (10,000 images), after warm-up; the median of " .. arg[8] .. " passes a run",
    data = "images decoded once into an array for every runner (PyTorch: --predecoded)",
    order = "odd repeats run the runners in the listed order, even repeats reversed" },
  environment = { cpu_model = lscpu:match("Model name:%s*([^\n]+)"), cpu_family = lscpu:match("CPU family:%s*([^\n]+)"),
    cpu_model_number = lscpu:match("\nModel:%s*([^\n]+)"), cpu_flags = (read(work .. "/cpu_flags") or ""):gsub("^%s+", ""):gsub("%s+$", ""),
    lunet = env and { cpu = env.cpu, commit = env.git_commit, local_changes = env.git_dirty, os = env.os,
      date = env.date, host = env.hostname } or nil },
  versions = versions,
  runners = runners,
  skipped = skipped,
  runs = runs,
  median = medians,
  ratios = ratios,
  goals = goals,
  note = "ratios of medians; the load averages of each run are in runs[]: on a shared machine "
    .. "(load above ~1 on 2 cores) the ratios move by tens of percent from run to run",
}
report.write_file(result, report.json(doc) .. "\n")

print()
print(("%-14s %14s %14s   %s"):format("runner", "train img/s", "infer img/s", "version"))
for _, who in ipairs(runners) do
  local m = medians[who]
  print(("%-14s %14s %14.0f   %s"):format(who, m.train_images_per_s and ("%.0f"):format(m.train_images_per_s) or "-",
    m.infer_images_per_s, versions[who] or "?"))
end
print()
local keys = {}
for k in pairs(ratios) do keys[#keys + 1] = k end
table.sort(keys)
for _, k in ipairs(keys) do
  local v = ratios[k]
  print(("  %-40s %s"):format(k, type(v) == "number" and ("%.2fx"):format(v) or tostring(v)))
end
for _, g in ipairs(goals) do
  local function f(v) return v and ("%.2fx"):format(v) or "-" end
  print(("  goal: %-42s at least %.1fx: train %s, infer %s: %s"):format(g.goal, g.at_least, f(g.train),
    f(g.infer), g.met == nil and "not measured" or g.met and "met" or "NOT met"))
end
for _, s in ipairs(skipped) do print(("  skipped %s: %s"):format(s.runner, s.reason)) end
print("wrote " .. result)
LUA
