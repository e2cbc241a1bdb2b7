# The workload options the benchmark scripts share (sourced by cpu_peers.sh,
# cpu_vs_pytorch.sh and ab_builds.sh, which session_ab.sh runs): --repeats, --batches,
# --warmup, --threads, --batch-size and --out, read into the variables of
# the same names, and one check of the numbers.

# workload_option OPTION VALUE: sets the variable and succeeds when OPTION is
# one of the shared ones; fails (sets nothing) otherwise.
workload_option() {
  case "$1" in
    --repeats) repeats="$2" ;;
    --batches) batches="$2" ;;
    --warmup) warmup="$2" ;;
    --threads) threads="$2" ;;
    --batch-size) batch_size="$2" ;;
    --out) out="$2" ;;
    *) return 1 ;;
  esac
}

# check_workload_numbers SCRIPT: whole numbers, and at least 1 where 0 means
# nothing to time (the warm-up may be 0); exits 2 naming SCRIPT otherwise.
check_workload_numbers() {
  local v
  for v in "$repeats" "$batches" "$warmup" "$threads" "$batch_size"; do
    [[ "$v" =~ ^[0-9]+$ ]] || { echo "$1: expected a whole number, got '$v'" >&2; exit 2; }
  done
  [ "$repeats" -ge 1 ] && [ "$batches" -ge 1 ] && [ "$threads" -ge 1 ] && [ "$batch_size" -ge 1 ] \
    || { echo "$1: repeats, batches, threads and batch size must be at least 1" >&2; exit 2; }
}
