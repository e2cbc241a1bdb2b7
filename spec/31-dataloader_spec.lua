-- API.md, Data: lunet.data.DataLoader — batching, drop_last, seeded shuffling,
-- ToTensor scaling, and the seed and resident data modes on every device.
local lunet = require("lunet")
local helpers = require("helpers")

--- A small dataset: n images {1, 3, 2} whose pixels encode the image number,
-- labels 1..10 cycling.
local function make_dataset(n)
  local images = lunet.empty({ n, 1, 3, 2 }, { dtype = "uint8" })
  local labels = lunet.empty({ n }, { dtype = "int32" })
  for i = 1, n do
    for k = 1, 6 do images:set((i * 5 + k * 41) % 256, i, 1, (k - 1) // 2 + 1, (k - 1) % 2 + 1) end
    labels:set((i - 1) % 10 + 1, i)
  end
  return { images = images, labels = labels }
end

--- Which images a batch holds, read back from its labels and pixels.
local function batch_rows(x, y, n)
  local rows = {}
  local xs, ys = x:to("cpu"):totable(), y:to("cpu"):totable()
  for b = 1, #ys do
    local first = math.floor(xs[b][1][1][1] * 255 + 0.5)
    local found
    for i = 1, n do
      if (i * 5 + 41) % 256 == first and (i - 1) % 10 + 1 == ys[b] then
        -- disambiguate by the second pixel
        if (i * 5 + 82) % 256 == math.floor(xs[b][1][1][2] * 255 + 0.5) then found = i break end
      end
    end
    rows[b] = found or -1
  end
  return rows
end

local function epoch_order(loader, n, epoch)
  local order, sizes = {}, {}
  for x, y in loader:iter(epoch) do
    sizes[#sizes + 1] = x:size(1)
    for _, r in ipairs(batch_rows(x, y, n)) do order[#order + 1] = r end
  end
  return order, sizes
end

describe("lunet.data.DataLoader", function()
  local ds = make_dataset(23)

  it("batches in order with a short last batch, and #loader counts batches", function()
    local loader = lunet.data.DataLoader(ds, { batch_size = 5 })
    assert.equal(5, #loader)
    local order, sizes = epoch_order(loader, 23)
    assert.same({ 5, 5, 5, 5, 3 }, sizes)
    local expected = {}
    for i = 1, 23 do expected[i] = i end
    assert.same(expected, order)
  end)

  it("drop_last drops the short batch", function()
    local loader = lunet.data.DataLoader(ds, { batch_size = 5, drop_last = true })
    assert.equal(4, #loader)
    local _, sizes = epoch_order(loader, 23)
    assert.same({ 5, 5, 5, 5 }, sizes)
    assert.equal(1, #lunet.data.DataLoader(ds, { batch_size = 23, drop_last = true }))
    assert.equal(1, #lunet.data.DataLoader(ds, { batch_size = 100 }))
  end)

  it("yields float32 images equal to pixel / 255 in float32 and int32 labels 1..C", function()
    local loader = lunet.data.DataLoader(ds, { batch_size = 23 })
    for x, y in loader:iter() do
      assert.equal("float32", x:dtype())
      assert.equal("int32", y:dtype())
      assert.same({ 23, 1, 3, 2 }, x:shape())
      assert.same(ds.labels:totable(), y:totable())
      -- exactly what ToTensor computes: float32(pixel) / float32(255), rounded once
      local expected = ds.images:to("float32") / 255
      assert.equal(0, helpers.max_abs_diff(x, expected))
      assert.is_true(x:min() >= 0 and x:max() <= 1)
    end
    local full = lunet.data.DataLoader({ images = lunet.tensor({ { 0, 255, 128 } }, { dtype = "uint8" }),
      labels = lunet.tensor({ 3 }, { dtype = "int32" }) }, { batch_size = 1 })
    for x in full:iter() do
      assert.equal(0, x:get(1, 1))
      assert.equal(1, x:get(1, 2))
      assert.equal(string.unpack("f", string.pack("f", 128 / 255)), x:get(1, 3))
    end
  end)

  it("shuffles: the same seed repeats the same orders, epochs differ, all rows once", function()
    local a = lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 7 })
    local b = lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 7 })
    local a1, a2 = epoch_order(a, 23), epoch_order(a, 23)
    local b1, b2 = epoch_order(b, 23), epoch_order(b, 23)
    assert.same(a1, b1)
    assert.same(a2, b2)
    assert.are_not.same(a1, a2)
    assert.same(a1, epoch_order(a, 23, 1)) -- replaying epoch 1
    local c1 = epoch_order(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 8 }), 23)
    assert.are_not.same(a1, c1)
    for _, order in ipairs({ a1, a2, c1 }) do
      local sorted = { table.unpack(order) }
      table.sort(sorted)
      for i = 1, 23 do assert.equal(i, sorted[i]) end
    end
    -- the seeded stream ignores the global generator
    lunet.manual_seed(123)
    local again = epoch_order(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 7 }), 23)
    assert.same(a1, again)
  end)

  it("without a seed, shuffles from the global generator (lunet.manual_seed)", function()
    lunet.manual_seed(5)
    local x1 = epoch_order(lunet.data.DataLoader(ds, { batch_size = 8, shuffle = true }), 23)
    lunet.manual_seed(5)
    local x2 = epoch_order(lunet.data.DataLoader(ds, { batch_size = 8, shuffle = true }), 23)
    lunet.manual_seed(6)
    local x3 = epoch_order(lunet.data.DataLoader(ds, { batch_size = 8, shuffle = true }), 23)
    assert.same(x1, x2)
    assert.are_not.same(x1, x3)
  end)

  it("reuses its batch tensors (each batch overwrites the last)", function()
    local loader = lunet.data.DataLoader(ds, { batch_size = 5 })
    local seen = {}
    for x in loader:iter() do seen[#seen + 1] = x end
    assert.equal(seen[1], seen[2])
    assert.equal(seen[1], seen[4])
  end)

  for _, device in ipairs(helpers.devices()) do
    it("gives identical batches in seed and resident modes on " .. device, function()
      local seed_mode = lunet.data.DataLoader(ds, { batch_size = 6, shuffle = true, seed = 3, device = device })
      local resident = lunet.data.DataLoader(ds, { batch_size = 6, shuffle = true, seed = 3, device = device,
        mode = "resident" })
      local reference = lunet.data.DataLoader(ds, { batch_size = 6, shuffle = true, seed = 3 })
      assert.equal("resident", resident.mode)
      for epoch = 1, 2 do
        local it1, it2, it3 = seed_mode:iter(), resident:iter(), reference:iter()
        for _ = 1, #reference do
          local x1, y1 = it1()
          local x2, y2 = it2()
          local x3, y3 = it3()
          assert.equal(device, (tostring(x1:device()):gsub(":0$", "")))
          assert.equal(device, (tostring(x2:device()):gsub(":0$", "")))
          assert.equal(device, (tostring(y2:device()):gsub(":0$", "")))
          assert.equal(0, helpers.max_abs_diff(x1, x3), "epoch " .. epoch)
          assert.equal(0, helpers.max_abs_diff(x2, x3), "epoch " .. epoch)
          assert.same(y3:totable(), y1:to("cpu"):totable())
          assert.same(y3:totable(), y2:to("cpu"):totable())
        end
        assert.is_nil(it1())
        assert.is_nil(it2())
      end
      assert.is_true(resident.upload_seconds >= 0)
      resident:free()
      seed_mode:free()
    end)
  end

  it("rejects bad datasets and options with clear errors", function()
    local DL = lunet.data.DataLoader
    helpers.assert_error(function() DL(nil) end, "lunet.data.DataLoader", "expected a dataset")
    helpers.assert_error(function() DL({ images = ds.images }) end, "images", "labels")
    helpers.assert_error(function() DL({ images = ds.images, labels = lunet.zeros({ 23 }) }) end,
      "labels must be an int32 tensor", "float32")
    helpers.assert_error(function() DL({ images = ds.images, labels = lunet.zeros({ 22 }, { dtype = "int32" }) }) end,
      "23 images but 22 labels")
    helpers.assert_error(function() DL(ds, { batch_size = 0 }) end, "batch_size must be at least 1")
    helpers.assert_error(function() DL(ds, { batch_size = 2.5 }) end, "batch_size must be an integer")
    helpers.assert_error(function() DL(ds, { mode = "fast" }) end, "mode must be \"seed\" or \"resident\"", "fast")
    helpers.assert_error(function() DL(ds, { device = "tpu" }) end, "lunet.data.DataLoader", "device", "tpu")
    helpers.assert_error(function() DL(ds, { batchsize = 4 }) end, "unknown option batchsize")
    helpers.assert_error(function() DL(ds, { batch_size = 30, drop_last = true }) end, "leaves no batch")
    helpers.assert_error(function() DL(ds, { seed = -1 }) end, "seed must be at least 0")
    helpers.assert_error(function() DL(ds, 64) end, "options table")
  end)

  it("loads Fashion-MNIST batches of 64 with a last batch of 32 (938 batches)", function()
    local ok, train = pcall(lunet.datasets.fashion_mnist)
    if not ok then
      pending("Fashion-MNIST not installed: " .. tostring(train))
      return
    end
    local loader = lunet.data.DataLoader(train, { batch_size = 64, shuffle = true, seed = 1 })
    assert.equal(938, #loader)
    local count, last, labels_ok = 0, nil, true
    for x, y in loader:iter() do
      count = count + x:size(1)
      last = x:size(1)
      labels_ok = labels_ok and y:min() >= 1 and y:max() <= 10
    end
    assert.equal(60000, count)
    assert.equal(32, last)
    assert.is_true(labels_ok)
  end)
end)
