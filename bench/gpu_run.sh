#!/usr/bin/env bash
# The GPU run in one command, for the offline device machine (cuda/README.md,
# "Checking on a GPU", says what each step shows). From the checkout's root:
#
#   source .gpu-bundle/env.sh && bench/gpu_run.sh [--commit SHA] [--epochs 2]
#       [--stages build,gpu,specs,session] [--max-batches N] [--allow-no-gpu] [--out DIR]
#
# 1. build:   CMake into build-gpu/ with LUNET_CUDA=ON and CUDA warnings as
#             errors, honouring LUA_INCLUDE_DIR, LUA_LIBRARY, BLAS_INCLUDE_DIR,
#             BLAS_LIBRARY and CUDNN_ROOT (env.sh exports them);
# 2. gpu:     lunet must see a GPU (else it stops and says why, unless
#             --allow-no-gpu: for trying this script on a machine without one);
# 3. specs:   the CUDA specs (spec/20, spec/21) with LUNET_REQUIRE_CUDA=1, then
#             the whole suite the same way;
# 4. session: scripts/gpu_vs_cpu.lua on every device in seed mode, and on the
#             GPUs in resident mode, --epochs epochs each (--max-batches caps
#             each epoch and test pass: a quick try, not the lesson).
# Everything goes under --out (default results/gpu_run): a log per stage, each
# session's results.json, report.md and charts, and gpu_run-<UTC date>.json
# with the device, driver and library versions, the commit, the date, every
# stage's outcome and spec counts, and the sessions' figures. Where $OUT is
# set (the device tool brings back at most 8 files from it) and --out is not
# given, $OUT gets just that JSON and gpu_run-<date>.tar.gz of the rest.
# Commit the JSON under bench/results/: it is the proof the CUDA path ran.
# Exit status 0 only when every stage run passed.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
commit="" epochs=2 stages="build,gpu,specs,session" allow_no_gpu=0 out="" max_batches=""
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) commit="$2"; shift 2 ;;
    --epochs) epochs="$2"; shift 2 ;;
    --stages) stages="$2"; shift 2 ;;
    --max-batches) max_batches="$2"; shift 2 ;;
    --allow-no-gpu) allow_no_gpu=1; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$epochs" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_run.sh: --epochs must be a positive integer, got '$epochs'" >&2; exit 2; }
[[ -z "$max_batches" || "$max_batches" =~ ^[1-9][0-9]*$ ]] \
  || { echo "gpu_run.sh: --max-batches must be a positive integer, got '$max_batches'" >&2; exit 2; }
session_args=(--epochs "$epochs" ${max_batches:+--max-batches "$max_batches"})
for s in ${stages//,/ }; do
  case "$s" in build|gpu|specs|session) ;; *)
    echo "gpu_run.sh: --stages: unknown stage '$s' (build, gpu, specs, session)" >&2; exit 2 ;;
  esac
done
want() { [[ ",$stages," == *",$1,"* ]]; }
[ -n "$commit" ] || commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
# the session's environment names this commit where the copy has no .git
[[ "$commit" =~ ^[0-9a-f]+$ ]] && export LUNET_GIT_COMMIT="$commit"
deliver=""
if [ -z "$out" ] && [ -n "${OUT:-}" ]; then deliver="$OUT" out="/tmp/lunet-gpu-run"; rm -rf "$out"; fi
out="${out:-$root/results/gpu_run}"
mkdir -p "$out/logs" || { echo "gpu_run.sh: cannot create $out" >&2; exit 1; }
busted="${BUSTED:-$(command -v busted)}"
[ -n "$busted" ] || { echo "gpu_run.sh: busted not found (source .gpu-bundle/env.sh first)" >&2; exit 1; }
[ -d /usr/local/cuda/bin ] && export PATH="$PATH:/usr/local/cuda/bin"
# the device image has CMake from pip, in its Python environment's bin
if ! command -v cmake >/dev/null; then
  for d in "$(dirname "$(command -v python3 || echo /nonexistent/python3)")" /opt/*/.venv/bin /usr/local/bin; do
    [ -x "$d/cmake" ] && { export PATH="$PATH:$d"; break; }
  done
fi
if want build; then
  for tool in cmake nvcc; do
    command -v "$tool" >/dev/null || { echo "gpu_run.sh: $tool not found (PATH=$PATH)" >&2; exit 1; }
  done
fi
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/spec/?.lua;${LUA_PATH:-;}"
export LUA_CPATH="$root/build-gpu/?.so;${LUA_CPATH:-;}"

# One line per stage: name, outcome (pass/fail/skipped), seconds, then busted's
# counts for spec stages; the summary below turns them into JSON.
stages_tsv="$out/logs/stages.tsv"
: >"$stages_tsv"
failed=0
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "${4:-}" >>"$stages_tsv"; echo "== $1: $2 ($3 s)${4:+ $4}"; }
secs=0
run_stage() { # name, then the command; its output goes to logs/<name>.log, its time to $secs
  local name="$1" t0 rc tenths; shift
  echo "== $name: $*"
  t0=$(date +%s%N)
  "$@" >"$out/logs/$name.log" 2>&1; rc=$?
  tenths=$(( ($(date +%s%N) - t0) / 100000000 ))
  secs="$((tenths / 10)).$((tenths % 10))"
  tail -n 5 "$out/logs/$name.log"
  return $rc
}
spec_stage() { # name, then busted arguments
  local name="$1" counts rc; shift
  LUNET_REQUIRE_CUDA=$((1 - allow_no_gpu)) run_stage "$name" lua5.4 "$busted" "$@"; rc=$?
  counts="$(grep -aoE '[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' \
    "$out/logs/$name.log" | tail -n 1)"
  if [ "$rc" -eq 0 ] && [ -n "$counts" ]; then record "$name" pass "$secs" "$counts"
  else record "$name" fail "$secs" "${counts:-busted did not finish}"; failed=1; fi
}

if want build; then
  if run_stage build bash -c 'cmake -B build-gpu -S . -DCMAKE_BUILD_TYPE=Release -DLUNET_CUDA=ON \
        -DLUNET_CUDA_WERROR=ON && cmake --build build-gpu -j"$(nproc)"'; then
    record build pass "$secs" "$(grep -m1 'lunet: CUDA' "$out/logs/build.log")"
  else
    record build fail "$secs"; failed=1
    echo "gpu_run.sh: the build failed: $out/logs/build.log" >&2
    { grep -m 20 -iE "error|fatal|not found" "$out/logs/build.log"; tail -n 10 "$out/logs/build.log"; } >&2
    stages=""
  fi
fi

if want gpu; then
  if run_stage gpu lua5.4 -e '
      local lunet = require("lunet")
      local ok, why = lunet.cuda_available()
      if not ok then print("no GPU: " .. tostring(why)); os.exit(1) end
      for _, name in ipairs(lunet.devices()) do
        local info = lunet.device(name):info()
        local keys = {}
        for k in pairs(info) do keys[#keys + 1] = k end
        table.sort(keys)
        for _, k in ipairs(keys) do print(name, k, tostring(info[k])) end
      end
      print("tf32", tostring(lunet.cuda.get_tf32()))'; then
    record gpu pass "$secs"
  elif [ "$allow_no_gpu" -eq 1 ]; then
    record gpu skipped "$secs" "$(tail -n 1 "$out/logs/gpu.log")"
  else
    record gpu fail "$secs" "$(tail -n 1 "$out/logs/gpu.log")"
    echo "gpu_run.sh: lunet sees no GPU; see $out/logs/gpu.log and cuda/README.md" >&2
    failed=1; stages="${stages//specs/}"; stages="${stages//session/}"
  fi
fi

if want specs; then
  spec_stage specs-cuda spec/20-cuda_runtime_spec.lua spec/21-cuda_conformance_spec.lua
  spec_stage specs-all
fi

if want session; then
  if run_stage session-seed lua5.4 scripts/gpu_vs_cpu.lua --devices all --data-mode seed \
       "${session_args[@]}" --out "$out/session-seed"; then record session-seed pass "$secs"
  else record session-seed fail "$secs"; failed=1; fi
  gpus="$(lua5.4 -e 'local l = require("lunet"); local d = {}
    for _, n in ipairs(l.devices()) do if n ~= "cpu" then d[#d + 1] = n end end
    io.write(table.concat(d, ","))')"
  if [ -n "$gpus" ]; then
    if run_stage session-resident lua5.4 scripts/gpu_vs_cpu.lua --devices "$gpus" --data-mode resident \
         "${session_args[@]}" --out "$out/session-resident"; then record session-resident pass "$secs"
    else record session-resident fail "$secs"; failed=1; fi
  else
    record session-resident skipped 0 "no GPU"
  fi
fi

date_utc="$(date -u +%Y-%m-%dT%H%M%SZ)"
json="$out/gpu_run-$date_utc.json"
lua5.4 - "$stages_tsv" "$out" "$commit" "$date_utc" "$json" <<'EOF' || failed=1
local cjson = require("cjson")
local tsv, out, commit, date, path = arg[1], arg[2], arg[3], arg[4], arg[5]
local function read(p)
  local f = io.open(p, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end
local run = { what = "lunet GPU run (bench/gpu_run.sh)", commit = commit, date = date, stages = {}, sessions = {} }
for line in (read(tsv) or ""):gmatch("[^\n]+") do
  local name, outcome, secs, detail = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
  local stage = { name = name, outcome = outcome, seconds = tonumber(secs), detail = detail ~= "" and detail or nil }
  local s, f, e, p = detail:match("(%d+) successe?s? / (%d+) failures? / (%d+) errors? / (%d+) pending")
  if s then stage.passed, stage.failed, stage.errors, stage.pending = tonumber(s), tonumber(f), tonumber(e), tonumber(p) end
  run.stages[#run.stages + 1] = stage
end
local ok, lunet = pcall(require, "lunet")
if ok then
  run.lunet_version = lunet.version
  run.cuda_available, run.cuda_reason = lunet.cuda_available()
  run.devices = {}
  for _, name in ipairs(lunet.devices()) do
    local info = lunet.device(name):info()
    info.device = name
    run.devices[#run.devices + 1] = info
    if name ~= "cpu" and not run.device then run.device = info.name end
  end
end
for _, mode in ipairs({ "seed", "resident" }) do
  local s = read(out .. "/session-" .. mode .. "/results.json")
  if s then run.sessions[mode] = cjson.decode(s) end
end
require("lunet.report").write_file(path, cjson.encode(run) .. "\n") -- atomic; needs no C core
print("wrote " .. path)
EOF
awk -F'\t' '{ printf "%-18s %-8s %7s s  %s\n", $1, $2, $3, $4 }' "$stages_tsv"
if [ -n "$deliver" ]; then
  mkdir -p "$deliver"
  [ -f "$json" ] && cp "$json" "$deliver/"
  tar -czf "$deliver/gpu_run-$date_utc.tar.gz" -C "$out" . && echo "delivered to $deliver: $(ls "$deliver" | tr '\n' ' ')"
fi
exit "$failed"
