rockspec_format = "3.0"
package = "lunet"
version = "scm-1"
source = {
   url = "git+file://.",
}
description = {
   summary = "Tensors, neural-network layers and devices (CPU and CUDA) for Lua 5.4",
   detailed = [[
lunet gives Lua tensor, layer and device objects backed by the CPU (OpenBLAS)
and by CUDA (cuBLAS, cuDNN and its own kernels), with honest timing and SVG
reports: train a network on the CPU and on the GPU and see the difference.
]],
   license = "MIT",
}
dependencies = {
   "lua >= 5.4",
}
build = {
   type = "cmake",
   variables = {
      CMAKE_BUILD_TYPE = "Release",
      CMAKE_INSTALL_PREFIX = "$(PREFIX)",
      LUA_INCLUDE_DIR = "$(LUA_INCDIR)",
      LUA_LIBDIR = "$(LIBDIR)",
      LUA_DIR = "$(LUADIR)",
   },
}
