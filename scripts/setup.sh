# Sourced by scripts/run and scripts/test: installs what is missing (apt),
# builds lunet with luarocks into the project-local tree .luarocks/, and puts
# that tree on the Lua paths. Safe to run again: it only does what is missing.
# It leaves the current directory alone: paths the user gives the scripts are
# relative to where the user is.
set -euo pipefail

LUNET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

LUNET_APT_PACKAGES="lua5.4 liblua5.4-dev luarocks lua-busted libopenblas-dev zlib1g-dev
  lua-cjson lua-argparse dataset-fashion-mnist cmake gcc make
  libopenmpi-dev openmpi-bin
  libjpeg62-turbo-dev libpng-dev"

lunet_missing_packages() {
  local p missing=""
  for p in $LUNET_APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
      || missing="$missing $p"
  done
  echo "$missing"
}

lunet_install_packages() {
  local missing sudo=""
  missing="$(lunet_missing_packages)"
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "lunet: need root (or sudo) to install:$missing" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "lunet: installing$missing (apt-get; this can take a few minutes)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

# lunet_progress PID LOG WHAT: while PID runs, says every few seconds how far
# it is (the last "[ NN%]" of the make output in LOG) and for how long: on a
# terminal one line redrawn every 2 s, elsewhere a line every 15 s.
lunet_progress() {
  local pid="$1" log="$2" what="$3" t0=$SECONDS every=15 last=-100 pct line
  [ -t 1 ] && every=2
  while kill -0 "$pid" 2>/dev/null; do
    if [ $((SECONDS - last)) -ge "$every" ]; then
      last=$SECONDS
      pct="$(grep -aoE '^\[ *[0-9]+%\]' "$log" 2>/dev/null | tail -n 1 | tr -d '[] ' || true)"
      line="lunet: $what: ${pct:-starting}, $((SECONDS - t0)) s"
      if [ -t 1 ]; then printf '\r%s ' "$line"; else echo "$line"; fi
    fi
    sleep 1
  done
  [ -t 1 ] && printf '\r%*s\r' 60 ''
  return 0
}

lunet_build() {
  local log="$LUNET_ROOT/.luarocks-build.log" pid
  echo "lunet: building lunet with luarocks into $LUNET_ROOT/.luarocks (the first build takes a minute or more; log: $log)"
  # nvcc is not always on PATH; CMake finds the toolkit from here
  [ -d /usr/local/cuda/bin ] && export PATH="$PATH:/usr/local/cuda/bin"
  # luarocks runs `cmake --build` without -j
  export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 2)}"
  # in a process group of its own, so that Ctrl-C can stop the whole build
  # (a background job ignores SIGINT; make and the compilers would go on)
  (cd "$LUNET_ROOT" && exec setsid luarocks --lua-version=5.4 --tree="$LUNET_ROOT/.luarocks" make \
     "$LUNET_ROOT/lunet-scm-1.rockspec") >"$log" 2>&1 &
  pid=$!
  trap 'kill -TERM -- "-$pid" 2>/dev/null; echo; echo "lunet: build interrupted" >&2; exit 130' INT TERM
  lunet_progress "$pid" "$log" "building"
  local built=0
  wait "$pid" || built=$?
  trap - INT TERM
  if [ "$built" -ne 0 ]; then
    cat "$log" >&2
    echo "lunet: build failed (log above, also in $log)" >&2
    exit 1
  fi
  grep -E "lunet: (CUDA|MPI)|warning" "$log" || true
}

# Debian's lua-cjson and lua-argparse are the rockspec's lua-cjson and
# argparse: luarocks is told so, and does not try to fetch them.
lunet_rocks_config() {
  mkdir -p "$LUNET_ROOT/.luarocks"
  "$LUNET_ROOT/scripts/debian-rocks-config" >"$LUNET_ROOT/.luarocks/debian-rocks-5.4.lua"
  export LUAROCKS_CONFIG_5_4="$LUNET_ROOT/.luarocks/debian-rocks-5.4.lua"
}

lunet_paths() {
  eval "$(luarocks --lua-version=5.4 --tree="$LUNET_ROOT/.luarocks" path)"
  export LUA_PATH LUA_CPATH
}

lunet_install_packages
lunet_rocks_config
lunet_build
lunet_paths
