--- Lets the scripts run straight from a checkout (`lua5.4 scripts/gpu_vs_cpu.lua`)
-- when lunet is not installed where Lua looks: it falls back to the
-- project-local tree that ./scripts/run and ./scripts/test build (.luarocks/),
-- and says how to build one when there is none. An installed lunet, or
-- LUA_PATH/LUA_CPATH set by `luarocks path` or scripts/dev-env.sh, wins.
local root = ...

if package.searchpath("lunet", package.path) and package.searchpath("lunet.core", package.cpath) then
  return
end
local tree = root .. "/.luarocks"
local core = tree .. "/lib/lua/5.4/lunet/core.so"
local f = io.open(core, "rb")
if not f then
  io.stderr:write(("lunet is not installed where Lua looks, and %s has no build of it:\n"
    .. "run ./scripts/run (or ./scripts/test) once, or `luarocks --lua-version=5.4 make`,\n"
    .. "or set LUA_PATH/LUA_CPATH with `eval \"$(luarocks --lua-version=5.4 path)\"`.\n"):format(root))
  os.exit(1)
end
f:close()
package.path = ("%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;%s"):format(tree, tree, package.path)
package.cpath = ("%s/lib/lua/5.4/?.so;%s"):format(tree, package.cpath)
