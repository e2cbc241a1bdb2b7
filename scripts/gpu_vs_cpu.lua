#!/usr/bin/env lua5.4
--- The GPU-vs-CPU session. For now it lists the devices lunet sees; the
-- training and timing session follows (issue: the session and its reports).
local argparse = require("argparse")
local lunet = require("lunet")

local parser = argparse("gpu_vs_cpu.lua", "GPU vs CPU in machine learning, with lunet.")
parser:flag("--list-devices", "List the devices lunet sees, with their details, and exit.")
local args = parser:parse()

local function list_devices()
  local ok, reason = lunet.cuda_available()
  for _, name in ipairs(lunet.devices()) do
    local info = lunet.device(name):info()
    print(name .. ": " .. info.name)
    local keys = {}
    for k in pairs(info) do
      if k ~= "name" and k ~= "device" then keys[#keys + 1] = k end
    end
    table.sort(keys)
    for _, k in ipairs(keys) do print(("  %-20s %s"):format(k, tostring(info[k]))) end
    if name:match("^cuda") then -- results match the CPU only with TF32 off
      print(("  %-20s %s"):format("tf32", tostring(lunet.cuda.get_tf32())))
    end
  end
  if not ok then print("no GPU: " .. reason) end
end

list_devices()
if not args.list_devices then
  print("(the training session is not built yet: only the device listing is available)")
end
