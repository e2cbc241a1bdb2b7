# Sourced by scripts/run and scripts/test: installs what is missing (apt),
# builds lunet with luarocks into the project-local tree .luarocks/, and puts
# that tree on the Lua paths. Safe to run again: it only does what is missing.
set -euo pipefail

LUNET_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$LUNET_ROOT"

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
  echo "lunet: installing$missing"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing >/dev/null
}

lunet_build() {
  echo "lunet: building into $LUNET_ROOT/.luarocks"
  # nvcc is not always on PATH; CMake finds the toolkit from here
  [ -d /usr/local/cuda/bin ] && export PATH="$PATH:/usr/local/cuda/bin"
  local log="$LUNET_ROOT/.luarocks-build.log"
  if ! luarocks --lua-version=5.4 --tree="$LUNET_ROOT/.luarocks" make \
       "$LUNET_ROOT/lunet-scm-1.rockspec" >"$log" 2>&1; then
    cat "$log" >&2
    echo "lunet: build failed (log above, also in $log)" >&2
    exit 1
  fi
  grep -E "lunet: (CUDA|MPI)|warning" "$log" || true
}

lunet_paths() {
  eval "$(luarocks --lua-version=5.4 --tree="$LUNET_ROOT/.luarocks" path)"
  export LUA_PATH LUA_CPATH
}

lunet_install_packages
lunet_build
lunet_paths
