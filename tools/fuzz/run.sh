#!/usr/bin/env bash
# Runs lunet's libFuzzer harnesses from the seed corpus.
#   tools/fuzz/run.sh [-b BUILD_DIR] [-t SECONDS] [HARNESS...]
# HARNESS is idx, cifar, checkpoint, tensor or image (default: all five), each run
# for SECONDS (default 20) from tools/fuzz/corpus/<harness>. New inputs go to
# BUILD_DIR/fuzz-out/<harness>/corpus (not the committed corpus), the log to
# BUILD_DIR/fuzz-out/<harness>/log, and a crashing input to
# BUILD_DIR/fuzz-out/<harness>/crash-* (then the script fails). A crash that
# has been fixed belongs in the committed corpus as regression-<what>.
# Build the harnesses first (see tools/fuzz/CMakeLists.txt).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build="$root/build-fuzz"
seconds=20
while getopts "b:t:" opt; do
  case "$opt" in
    b) build="$(cd "$OPTARG" && pwd)" ;;
    t) seconds="$OPTARG" ;;
    *) echo "usage: $0 [-b BUILD_DIR] [-t SECONDS] [idx|cifar|checkpoint|tensor|image ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(idx cifar checkpoint tensor image)

# The largest input each harness mutates: a few records, tensors or tables.
max_len() {
  case "$1" in
    cifar) echo 16384 ;;
    image) echo 8192 ;;
    tensor) echo 512 ;;
    *) echo 4096 ;;
  esac
}

failed=0
for h in "${harnesses[@]}"; do
  bin="$build/tools/fuzz/fuzz_$h"
  if [ ! -x "$bin" ]; then
    echo "fuzz $h: FAIL ($bin is not built)"
    failed=1
    continue
  fi
  out="$build/fuzz-out/$h"
  mkdir -p "$out/corpus"
  rm -f "$out"/crash-* "$out"/leak-* "$out"/oom-* "$out"/timeout-*
  # one process, one worker: the machine is shared; a Lua state or a file
  # per input is slow enough that 10 s is a hang
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$bin" -max_total_time="$seconds" -max_len="$(max_len "$h")" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" \
      "$out/corpus" "$here/corpus/$h" >"$out/log" 2>&1
  status=$?
  execs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$out/log" | grep -oE '[0-9]+$')"
  cov="$(grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' "$out/log" | tail -n 1 | grep -oE 'cov: [0-9]+ ft: [0-9]+')"
  if [ "$status" -eq 0 ]; then
    echo "fuzz $h: PASS (${seconds} s, ${execs:-?} inputs, ${cov:-no coverage line})"
  else
    echo "fuzz $h: FAIL (exit $status; log $out/log)"
    grep -E 'ERROR|invariant|runtime error|SUMMARY|Test unit written' "$out/log" | head -n 8
    failed=1
  fi
done
exit "$failed"
