rockspec_format = "3.0"
package = "lunet"
version = "scm-1"
source = {
   -- An archive of the working tree, made by scripts/pack next to a copy of
   -- this file, which it then packs as lunet-scm-1.src.rock: a rock that
   -- installs offline. `luarocks make` in a checkout does not read it.
   url = "file://lunet-scm.tar.gz",
   dir = "lunet-scm",
}
description = {
   summary = "Tensors, neural-network layers and devices (CPU and CUDA) for Lua 5.4",
   detailed = [[
lunet gives Lua tensor, layer and device objects backed by the CPU (OpenBLAS)
and by CUDA (cuBLAS, cuDNN and its own kernels), with honest timing and SVG
reports: train a network on the CPU and on the GPU and see the difference.
Installs the commands lunet-gpu-vs-cpu (the lesson) and lunet-batch-sweep.
]],
   license = "MIT",
}
-- lua-cjson and argparse are Debian's lua-cjson and lua-argparse: a luarocks
-- that should take those instead of fetching rocks is told so by the config
-- scripts/setup.sh writes (rocks_provided; see README "Installing with luarocks").
dependencies = {
   "lua >= 5.4",
   "lua-cjson >= 2.1",
   "argparse >= 0.7",
}
build = {
   type = "cmake",
   -- LUNET_CUDA (AUTO, ON or OFF) is read from the environment by CMakeLists.txt
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUA_INCLUDE_DIR = "$(LUA_INCDIR)",
      LUA_LIBDIR = "$(LIBDIR)",
      LUA_DIR = "$(LUADIR)",
   },
   install = {
      bin = {
         ["lunet-gpu-vs-cpu"] = "scripts/gpu_vs_cpu.lua",
         ["lunet-batch-sweep"] = "scripts/batch_sweep.lua",
      },
   },
}
