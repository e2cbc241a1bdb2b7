-- The seed model's first steps, as checksums of exact bits: loss, output, each gradient, weights after Adam.
local lunet = require("lunet")
local nn = lunet.nn
local function digest(t)
  local v = t:to("cpu"):reshape({ -1 }):totable()
  local h, parts = 0, {}
  for i, x in ipairs(v) do
    local bits = string.unpack("<I4", string.pack("<f", x))
    h = (h * 1000003 + bits + i) % 0x7fffffffffff
  end
  return ("%d elems h=%x"):format(#v, h)
end
for _, threads in ipairs({ 1, 2 }) do
  lunet.set_num_threads(threads)
  lunet.manual_seed(7)
  local m = lunet.models.fashion_alexnet()
  local crit = nn.CrossEntropyLoss()
  local opt = lunet.optim.Adam(m, { lr = 1e-3 })
  local x = lunet.randn({ 16, 1, 28, 28 })
  local y = lunet.tensor({ 1,2,3,4,5,6,7,8,9,10,1,2,3,4,5,6 }, { dtype = "int32" })
  for step = 1, 3 do
    m:zero_grad()
    local out = m:forward(x)
    local loss = crit:forward(out, y)
    m:backward(x, crit:backward(out, y))
    print(("threads %d step %d loss %.17g out %s"):format(threads, step, loss, digest(out)))
    local params, grads = m:parameters()
    for i, g in ipairs(grads) do print(("  grad %d %s"):format(i, digest(g))) end
    opt:step()
    for i, p in ipairs(params) do print(("  param %d %s"):format(i, digest(p))) end
  end
end
