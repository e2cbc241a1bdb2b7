#!/usr/bin/env lua5.4
--- Writes the seed corpus of fuzz_image into tools/fuzz/corpus/image/: small
-- JPEG and PNG files (colour and grey, odd sizes) written by lunet itself
-- (libjpeg-turbo, libpng), and near misses (truncated, header only, a wrong
-- signature). Run from the checkout after building: lua5.4 tools/fuzz/make_image_corpus.lua
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."
package.path = here .. "/../../lua/?.lua;" .. package.path
local lunet = require("lunet")

local dir = here .. "/corpus/image"
os.execute("mkdir -p '" .. dir .. "'")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(name, s)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(s)
  f:close()
end

lunet.manual_seed(1)
local images = {
  { "rgb_8x8", (lunet.rand({ 3, 8, 8 }) * 255):to("uint8") },
  { "rgb_5x13", (lunet.rand({ 3, 5, 13 }) * 255):to("uint8") },
  { "gray_16x3", (lunet.rand({ 1, 16, 3 }) * 255):to("uint8") },
  { "rgb_1x1", (lunet.rand({ 3, 1, 1 }) * 255):to("uint8") },
}
for _, img in ipairs(images) do
  for _, ext in ipairs({ "jpg", "png" }) do
    local tmp = os.tmpname() .. "." .. ext
    lunet.image_write(tmp, img[2], { quality = 75 })
    local bytes = read(tmp)
    os.remove(tmp)
    write(img[1] .. "." .. ext, bytes)
    if img[1] == "rgb_8x8" then
      write("truncated_half." .. ext, bytes:sub(1, #bytes // 2))
      write("header_only." .. ext, bytes:sub(1, ext == "png" and 33 or 200))
    end
  end
end
write("wrong_signature.bin", "GIF89a\1\0\1\0")
print("wrote " .. dir)
