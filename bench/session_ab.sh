#!/usr/bin/env bash
# Two builds of lunet on the seed workload's training, side by side in one
# run: bench/ab_builds.sh --training-only with checkout OLD as A and NEW as
# B (100 timed batches unless --batches says otherwise). Each checkout runs
# its own scripts and Lua modules with its own build (DIR/build from
# `cmake -B build`, or DIR/.luarocks from ./scripts/test). Writes
# bench/results/session_ab-<UTC date>.json (ab_builds.sh's fields). The mean
# losses can only agree with --warmup 0 when OLD predates issue 14: its
# warm-up steps trained the model the timed epoch then continued from
# (today's warm-up puts the model and optimizer back).
#
#   bench/session_ab.sh --old DIR --new DIR [--repeats 5] [--batches 100] [--warmup 10]
#                       [--threads 2] [--batch-size 64] [--out bench/results]
set -euo pipefail

args=(--training-only --name session_ab --batches 100)
while [ $# -gt 0 ]; do
  case "$1" in
    --old) args+=(--a "${2-}"); shift 2 ;;
    --new) args+=(--b "${2-}"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
[[ " ${args[*]} " == *" --a "* && " ${args[*]} " == *" --b "* ]] \
  || { echo "session_ab.sh: --old DIR and --new DIR are required" >&2; exit 2; }
exec "$(dirname "$0")/ab_builds.sh" "${args[@]}"
