#!/bin/sh
# Runs lunet's CUDA kernels, allocator and transfers on the host (no GPU),
# every kernel whatever LUNET_CUDA_UNVERIFIED_KERNELS says, and the
# host-staged slots that stand in for the unverified ones (host_staged.c,
# unverified.c):
#   tools/cuda_emu/run.sh        (a few minutes on 2 cores)
# Needs g++, gcc, python3 and the CUDA toolkit's headers ($CUDA_PATH/include,
# default /usr/local/cuda/include).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cuda_include=${CUDA_PATH:-/usr/local/cuda}/include
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
inc="-I$here -I$root/csrc -I$root/cuda -I$cuda_include"
for f in copy elementwise reduce random pool activation batchnorm loss optim families augment; do
  python3 "$here/to_host.py" "$root/cuda/$f.cu" > "$work/$f.cc"
  g++ -O2 -std=c++17 -include emu.h $inc -c "$work/$f.cc" -o "$work/$f.o"
done
for f in host_staged unverified; do
  gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra $inc -c "$root/cuda/$f.c" -o "$work/c_$f.o"
done
for f in emu kernels_test; do
  g++ -O2 -std=c++17 -include emu.h $inc -c "$here/$f.cc" -o "$work/$f.o"
done
for f in ops_ref dtype host_memory status augment_image; do
  gcc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I"$root/csrc" -c "$root/csrc/$f.c" -o "$work/c_$f.o"
done
g++ "$work"/*.o -o "$work/kernels_test" -lm
gcc -O1 -g -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=address,undefined $inc \
  "$here/alloc_test.c" "$root/cuda/allocator.c" "$root/cuda/transfer.c" -o "$work/alloc_test"
ASAN_OPTIONS=detect_leaks=0 "$work/alloc_test"
gcc -O1 -g -std=c11 -D_POSIX_C_SOURCE=200809L -fsanitize=address,undefined $inc \
  "$here/async_read_test.c" "$root/cuda/async_read.c" "$root/csrc/async_read.c" \
  "$root/csrc/status.c" -o "$work/async_read_test"
"$work/async_read_test"
"$work/kernels_test"
