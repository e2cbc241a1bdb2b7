# For working on lunet itself: `source scripts/dev-env.sh` after
#   cmake -B build && cmake --build build -j
# puts the checkout's Lua files and build/lunet/*.so first on the Lua paths,
# so `lua5.4 "$(command -v busted)"` and the scripts use the working tree.
_lunet_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export LUA_PATH="$_lunet_root/lua/?.lua;$_lunet_root/lua/?/init.lua;$_lunet_root/spec/?.lua;;"
export LUA_CPATH="$_lunet_root/build/?.so;;"
alias busted54='lua5.4 "$(command -v busted)"'
unset _lunet_root
