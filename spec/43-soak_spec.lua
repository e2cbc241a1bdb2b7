-- Soak (tag #slow, run by scripts/check, not by the default suite): 2,000
-- training steps of a small model that uses every kind of layer, with
-- shuffled epochs from a DataLoader, Adam, the loss read every step and an
-- accuracy pass every few epochs, as a session does. The resident memory of
-- the process (from /proc/self/statm) is sampled every 50 steps; after a
-- warm-up of 500 steps it must not grow: the median of the last 300 steps'
-- samples may exceed the median of the 300 after the warm-up by at most
-- 1 MiB, and no sample may exceed the post-warm-up level by more than 8 MiB
-- (the garbage collector lets some garbage pile up between cycles; the last
-- batch of an epoch is smaller, so outputs are reallocated twice an epoch).
-- A leak of one small tensor per step would grow by over 2 MiB.
local helpers = require("helpers")

local STEPS, EVERY, WARMUP, WINDOW = 2000, 50, 500, 300

local CHILD = [[
local lunet = require("lunet")
local nn = lunet.nn
local STEPS, EVERY = ...
local page = tonumber(io.popen("getconf PAGESIZE"):read("l")) or 4096
local function rss_kib()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * page // 1024
end

-- one thread: the memory behaviour is the same, and OpenMP threads spinning
-- on a busy machine would make the soak ten times slower
lunet.set_num_threads(1)
lunet.manual_seed(7)
local n = 512
local images = lunet.rand({ n, 1, 12, 12 }) * 255
local dataset = { images = images:to("uint8"), labels = (lunet.rand({ n }) * 10):to("int32") + 1 }
images:free()
local loader = lunet.data.DataLoader(dataset, { batch_size = 48, shuffle = true, seed = 3 })
local model = nn.Sequential(
  nn.Conv2d(1, 8, 3, { padding = 1 }), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
  nn.Conv2d(8, 16, 3, { padding = 1 }), nn.ReLU(), nn.AvgPool2d(2),
  nn.Flatten(), nn.Dropout(0.25), nn.Linear(16 * 3 * 3, 32), nn.ReLU(), nn.Linear(32, 10))
local criterion = nn.CrossEntropyLoss()
local optimizer = lunet.optim.Adam(model, { lr = 1e-3 })

local step, epoch, first_loss, last_loss = 0, 0, nil, nil
while step < STEPS do
  epoch = epoch + 1
  model:train()
  for x, y in loader:iter() do
    optimizer:zero_grad()
    local out = model:forward(x)
    local loss = criterion:forward(out, y)
    model:backward(x, criterion:backward(out, y))
    optimizer:step()
    assert(loss == loss, "the loss became NaN")
    first_loss = first_loss or loss
    last_loss = loss
    step = step + 1
    if step % EVERY == 0 then print(("RSS %d %d"):format(step, rss_kib())) end
    if step == STEPS then break end
  end
  if epoch % 10 == 0 then -- an accuracy pass, as the session's
    model:eval()
    local correct = 0
    for x, y in loader:iter(1) do
      local predicted = model:forward(x):argmax(2)
      local hits = predicted:eq(y)
      correct = correct + hits:sum()
      predicted:free()
      hits:free()
    end
    assert(correct >= 0 and correct <= n)
  end
end
print(("LOSS %.4f %.4f"):format(first_loss, last_loss))
print("EPOCHS " .. epoch)
]]

local function median(list)
  local s = { table.unpack(list) }
  table.sort(s)
  local k = #s
  return k % 2 == 1 and s[(k + 1) // 2] or (s[k // 2] + s[k // 2 + 1]) / 2
end

-- Temporaries that are never freed by hand: the garbage collector must keep
-- up with the tensor memory behind them, which it cannot see (the binding
-- runs it when the tensors allocated since its last run weigh as much as the
-- live ones). 1,000 sums of 4 MB tensors made 1.8 GB of garbage before.
local TEMPORARIES = [[
local lunet = require("lunet")
local a, b = lunet.rand({ 1000000 }), lunet.rand({ 1000000 })
local peak = 0
for i = 1, 1000 do
  local c = a + b
  if i % 10 == 0 then
    local f = assert(io.open("/proc/self/statm"))
    local _, resident = f:read("n", "n")
    f:close()
    peak = math.max(peak, resident)
  end
end
print("PEAK " .. peak * 4)
]]

describe("soak #slow", function()
  it("a loop of unfreed temporaries stays within a few of them", function()
    local ok, out = helpers.run_child(helpers.checkout_paths() .. TEMPORARIES)
    assert.is_true(ok, out)
    local peak = tonumber(out:match("PEAK (%d+)"))
    print(("\nsoak: 1,000 unfreed 4 MB temporaries: peak resident memory %d MiB"):format(peak // 1024))
    assert(peak < 192 * 1024, ("peak resident memory %d MiB"):format(peak // 1024))
  end)

  it(("trains %d steps without resident memory growth after warm-up"):format(STEPS), function()
    local code = helpers.checkout_paths() .. ("local STEPS, EVERY = %d, %d\n"):format(STEPS, EVERY)
      .. CHILD:gsub("local STEPS, EVERY = %.%.%.\n", "")
    local t0 = os.time()
    local ok, out = helpers.run_child(code)
    assert.is_true(ok, out)
    local samples = {}
    for step, kib in out:gmatch("RSS (%d+) (%d+)") do samples[#samples + 1] = { tonumber(step), tonumber(kib) } end
    assert.equal(STEPS // EVERY, #samples, out)
    local early, late, after = {}, {}, {}
    for _, s in ipairs(samples) do
      if s[1] > WARMUP and s[1] <= WARMUP + WINDOW then early[#early + 1] = s[2] end
      if s[1] > STEPS - WINDOW then late[#late + 1] = s[2] end
      if s[1] > WARMUP then after[#after + 1] = s[2] end
    end
    local base, final, peak = median(early), median(late), math.max(table.unpack(after))
    local first_loss, last_loss = out:match("LOSS (%S+) (%S+)")
    print(("\nsoak: %d steps in %d s; resident memory %d KiB at step %d, median %d KiB after warm-up, "
      .. "%d KiB at the end (growth %+d KiB), peak %d KiB; loss %s -> %s")
      :format(STEPS, os.time() - t0, samples[1][2], samples[1][1], base, final, final - base, peak,
        first_loss, last_loss))
    assert(final - base <= 1024, ("resident memory grew by %d KiB after warm-up (%d -> %d KiB)")
      :format(final - base, base, final))
    assert(peak - base <= 8192, ("a resident memory peak of %d KiB, %d KiB over the %d KiB after warm-up")
      :format(peak, peak - base, base))
    assert(tonumber(last_loss) < tonumber(first_loss), "the model did not learn: " .. first_loss .. " -> " .. last_loss)
  end)
end)
