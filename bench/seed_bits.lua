-- The seed model's first training steps as checksums of exact bits, to hold
-- two builds to bit-identical outputs and gradients (a redesign must change
-- no number): the loss, the output, every gradient and every parameter after
-- Adam, for three steps of the small AlexNet on a fixed random batch, on the
-- cpu device (1 and 2 threads) and the reference device.
--   LUA_PATH=... LUA_CPATH=... lua5.4 bench/seed_bits.lua > a.txt   (build A)
--   ... (build B) > b.txt; diff a.txt b.txt
local lunet = require("lunet")
local nn = lunet.nn

--- A hash of the float32 bits of every element, in order.
local function digest(t)
  local v = t:to("cpu"):reshape({ -1 }):totable()
  local h = 0
  for i, x in ipairs(v) do
    local bits = string.unpack("<I4", string.pack("<f", x))
    h = (h * 1000003 + bits + i) % 0x7fffffffffff
  end
  return ("%d elements, hash %x"):format(#v, h)
end

for _, setting in ipairs({ { "cpu", 1 }, { "cpu", 2 }, { "ref", 1 } }) do
  local device, threads = setting[1], setting[2]
  lunet.set_num_threads(threads)
  lunet.manual_seed(7)
  local m = lunet.models.fashion_alexnet():to(device)
  local crit = nn.CrossEntropyLoss()
  local opt = lunet.optim.Adam(m, { lr = 1e-3 })
  local x = lunet.randn({ 16, 1, 28, 28 }):to(device)
  local y = lunet.tensor({ 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5, 6 }, { dtype = "int32" }):to(device)
  for step = 1, 3 do
    m:zero_grad()
    local out = m:forward(x)
    local loss = crit:forward(out, y)
    m:backward(x, crit:backward(out, y))
    print(("%s threads %d step %d: loss %.17g, output %s"):format(device, threads, step, loss, digest(out)))
    local params, grads = m:parameters()
    for i, g in ipairs(grads) do print(("  gradient %d: %s"):format(i, digest(g))) end
    opt:step()
    for i, p in ipairs(params) do print(("  parameter %d after Adam: %s"):format(i, digest(p))) end
  end
end
