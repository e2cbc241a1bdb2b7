-- lunet.transforms (RandomCrop, RandomHorizontalFlip, Normalize) and the
-- DataLoader's transform= option: values against plain Lua loops, the same
-- augmented batches on every device and with any batch size for one seed.
local lunet = require("lunet")
local helpers = require("helpers")
local T = lunet.transforms

--- A small in-memory dataset of uint8 images {n, c, h, w}.
local function dataset(n, c, h, w, seed)
  lunet.manual_seed(seed or 1)
  local labels = {}
  for i = 1, n do labels[i] = (i - 1) % 3 + 1 end
  return { images = (lunet.rand({ n, c, h, w }) * 255):to("uint8"),
    labels = lunet.tensor(labels, { dtype = "int32" }) }
end

--- Every batch of one epoch, as nested tables (x) and arrays (y).
local function epoch(loader, e)
  local xs, ys = {}, {}
  for x, y in loader:iter(e) do
    xs[#xs + 1] = x:to("cpu"):totable()
    ys[#ys + 1] = y:to("cpu"):totable()
  end
  return xs, ys
end

--- The images of an epoch's batches, one after the other.
local function images_of(xs)
  local out = {}
  for _, batch in ipairs(xs) do
    for _, img in ipairs(batch) do out[#out + 1] = img end
  end
  return out
end

describe("lunet.transforms", function()
  for _, dev in ipairs({ "ref", "cpu" }) do
    describe("on " .. dev, function()
      it("RandomCrop copies the drawn window of the zero-padded image", function()
        local x = helpers.random({ 5, 2, 6, 7 }, 3):to(dev)
        local crop = T.RandomCrop({ 4, 5 }, { padding = 2 })
        local out = lunet.empty({ 5, 2, 4, 5 }, { device = dev })
        crop:apply(x, 99, 1000, out)
        local xs, os_ = x:to("cpu"):totable(), out:to("cpu"):totable()
        local padded_zero = 0
        for i = 1, 5 do
          local dy, dx = lunet.augment_draws(99, 1000, i - 1, 6 + 4 - 4 + 1, 7 + 4 - 5 + 1, 0.5)
          for c = 1, 2 do
            for y = 1, 4 do
              for xx = 1, 5 do
                local sy, sx = y + dy - 2, xx + dx - 2
                local expected = (sy >= 1 and sy <= 6 and sx >= 1 and sx <= 7) and xs[i][c][sy][sx] or 0
                if expected == 0 then padded_zero = padded_zero + 1 end
                assert.equal(expected, os_[i][c][y][xx])
              end
            end
          end
        end
        assert.is_true(padded_zero > 0, "some window should reach into the padding")
      end)

      it("RandomCrop with padding wider than the crop: windows wholly in the padding are zeros", function()
        -- 4x4 images padded by 5, 2x2 windows: offsets range over 13, and many
        -- windows lie wholly in the padding (rows of zeros past the crop's width)
        local x = (helpers.random({ 40, 1, 4, 4 }, 4) + 1):to(dev)
        local out = lunet.empty({ 40, 1, 2, 2 }, { device = dev })
        T.RandomCrop(2, { padding = 5 }):apply(x, 7, 0, out)
        local xs, os_ = x:to("cpu"):totable(), out:to("cpu"):totable()
        local zeros = 0
        for i = 1, 40 do
          local dy, dx = lunet.augment_draws(7, 0, i - 1, 13, 13, 0.5)
          for y = 1, 2 do
            for xx = 1, 2 do
              local sy, sx = y + dy - 5, xx + dx - 5
              local expected = (sy >= 1 and sy <= 4 and sx >= 1 and sx <= 4) and xs[i][1][sy][sx] or 0
              if expected == 0 then zeros = zeros + 1 end
              assert.equal(expected, os_[i][1][y][xx])
            end
          end
        end
        assert.is_true(zeros > 40, "most windows should lie in the padding")
      end)

      it("RandomHorizontalFlip mirrors the drawn images, p = 0 and p = 1 at the ends", function()
        local x = helpers.random({ 6, 3, 2, 5 }, 4):to(dev)
        local before = x:to("cpu"):totable()
        T.RandomHorizontalFlip(0.5):apply(x, 7, 40)
        local after = x:to("cpu"):totable()
        local flipped = 0
        for i = 1, 6 do
          local _, _, flip = lunet.augment_draws(7, 40, i - 1, 1, 1, 0.5)
          if flip then flipped = flipped + 1 end
          for c = 1, 3 do
            for y = 1, 2 do
              for xx = 1, 5 do
                assert.equal(before[i][c][y][flip and (6 - xx) or xx], after[i][c][y][xx])
              end
            end
          end
        end
        assert.is_true(flipped > 0 and flipped < 6)
        local y = x:clone()
        T.RandomHorizontalFlip(0):apply(y, 1, 0)
        helpers.assert_close(y:to("cpu"), x:to("cpu"), 0, 0)
        T.RandomHorizontalFlip(1):apply(y, 1, 0)
        T.RandomHorizontalFlip(1):apply(y, 2, 5)
        helpers.assert_close(y:to("cpu"), x:to("cpu"), 0, 0)
      end)

      it("Normalize subtracts the mean and divides by the std per channel", function()
        local x = helpers.random({ 3, 2, 3, 4 }, 5):to(dev)
        local before = x:to("cpu"):totable()
        T.Normalize({ 0.5, 0.25 }, { 0.2, 2 }):apply(x)
        local after = x:to("cpu"):totable()
        local mean, std = { 0.5, 0.25 }, { 0.2, 2 }
        for i = 1, 3 do
          for c = 1, 2 do
            for y = 1, 3 do
              for xx = 1, 4 do
                local expected = (before[i][c][y][xx] - mean[c]) / std[c]
                assert.is_true(math.abs(after[i][c][y][xx] - expected) <= 1e-6 * math.max(1, math.abs(expected)))
              end
            end
          end
        end
      end)
    end)
  end

  it("a transform called on a tensor returns a new tensor", function()
    lunet.manual_seed(3)
    local x = lunet.rand({ 3, 4, 4 })
    local y = T.RandomHorizontalFlip(1)(x)
    assert.same({ 3, 4, 4 }, y:shape())
    assert.equal(x:get(1, 1, 1), y:get(1, 1, 4))
    assert.same({ 2, 3, 2, 2 }, T.RandomCrop(2)(lunet.rand({ 2, 3, 4, 4 })):shape())
    assert.matches("RandomCrop%(2x2, padding 0%)", tostring(T.RandomCrop(2)))
  end)

  it("misuse is a clear error", function()
    helpers.assert_error(function() T.RandomCrop(0) end, "lunet.transforms.RandomCrop", "size must be at least 1")
    helpers.assert_error(function() T.RandomCrop(4, { pad = 1 }) end, "unknown option 'pad'")
    helpers.assert_error(function() T.RandomHorizontalFlip(2) end, "p must be a probability")
    helpers.assert_error(function() T.Normalize({ 1, 2 }, { 1 }) end, "mean has 2 numbers but std has 1")
    helpers.assert_error(function() T.Normalize({ 1 }, { 0 }) end, "std[1] must be positive")
    local ds = dataset(4, 3, 8, 8)
    helpers.assert_error(function()
      lunet.data.DataLoader(ds, { transform = { T.RandomCrop(12) } })
    end, "lunet.data.DataLoader: transform 1: lunet.transforms.RandomCrop: a 12x12 crop does not fit in images [4, 3, 8, 8] padded by 0")
    helpers.assert_error(function()
      lunet.data.DataLoader(ds, { transform = { T.Normalize({ 1, 2 }, { 1, 1 }) } })
    end, "2 means and stds for images with 3 channels")
    helpers.assert_error(function() lunet.data.DataLoader(ds, { transform = { 3 } }) end,
      "transform 1 is number, not a lunet.transforms object")
    helpers.assert_error(function() lunet.data.DataLoader(ds, { transform = "flip" }) end,
      "transform must be a function, a transform or a list")
    helpers.assert_error(function()
      T.RandomCrop(2):apply(lunet.zeros({ 2, 3 }), 1, 1, lunet.zeros({ 2, 3 }))
    end, "must be a float32 batch [N, C, H, W], got float32 [2, 3]")
  end)
end)

describe("DataLoader transform=", function()
  local ds = dataset(11, 3, 8, 6, 9)
  local function list()
    return { T.RandomCrop({ 6, 6 }, { padding = 2 }), T.RandomHorizontalFlip(0.5),
      T.Normalize({ 0.5, 0.4, 0.3 }, { 0.2, 0.3, 0.25 }) }
  end

  it("gives the same augmented batches for one seed on ref and cpu, and with any batch size", function()
    local reference
    for _, dev in ipairs({ "cpu", "ref" }) do
      for _, bs in ipairs({ 4, 3, 11 }) do
        local loader = lunet.data.DataLoader(ds, { batch_size = bs, shuffle = true, seed = 5, device = dev,
          transform = list() })
        local xs = epoch(loader, 2)
        assert.same({ bs > 11 and 11 or bs, 3, 6, 6 }, loader.x:shape())
        local imgs = images_of(xs)
        assert.equal(11, #imgs)
        if reference then assert.same(reference, imgs) else reference = imgs end
      end
    end
    -- another seed, or another epoch, augments differently
    local other = images_of((epoch(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 6,
      transform = list() }), 2)))
    assert.are_not.same(reference, other)
    local epoch3 = images_of((epoch(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 5,
      transform = list() }), 3)))
    assert.are_not.same(reference, epoch3)
  end)

  it("gives each data-parallel rank the augmentation of its images in the global batch", function()
    local single = epoch(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 5, transform = list() }), 1)
    for rank = 0, 1 do
      local shard = epoch(lunet.data.DataLoader(ds, { batch_size = 2, shuffle = true, seed = 5, rank = rank,
        world = 2, transform = list() }), 1)
      for b = 1, 2 do -- the full global batches
        assert.same({ single[b][2 * rank + 1], single[b][2 * rank + 2] }, shard[b])
      end
    end
  end)

  it("without a seed draws the key from lunet.manual_seed's generator", function()
    lunet.manual_seed(11)
    local a = images_of((epoch(lunet.data.DataLoader(ds, { batch_size = 5, transform = list() }), 1)))
    lunet.manual_seed(11)
    local b = images_of((epoch(lunet.data.DataLoader(ds, { batch_size = 5, transform = list() }), 1)))
    assert.same(a, b)
  end)

  it("takes a function, run on the batch on the loader's device", function()
    local calls = 0
    local loader = lunet.data.DataLoader(ds, { batch_size = 4, transform = function(x, y, b)
      calls = calls + 1
      assert.equal(calls, b)
      return x * 2, y
    end })
    local plain = lunet.data.DataLoader(ds, { batch_size = 4 })
    local xs = epoch(loader, 1)
    local ps = epoch(plain, 1)
    assert.equal(3, calls)
    assert.is_true(math.abs(xs[1][1][1][1][1] - 2 * ps[1][1][1][1][1]) < 1e-6)
  end)

  helpers.cuda_it("gives the same augmented batches on CUDA (seed and resident mode) as on the CPU", function()
    local cpu = images_of((epoch(lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 5,
      transform = list() }), 1)))
    -- CUDA's augmentation kernels are off until run on a GPU (cuda/unverified.c):
    -- then the host augments; switched on, resident mode augments on the device
    local before = lunet.cuda.get_unverified_kernels()
    finally(function() lunet.cuda.set_unverified_kernels(before) end)
    for _, on in ipairs({ false, true }) do
      lunet.cuda.set_unverified_kernels(on)
      assert.equal(on, lunet.augment_on_device(lunet.device("cuda")))
      for _, mode in ipairs({ "seed", "resident" }) do
        local loader = lunet.data.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 5, device = "cuda",
          mode = mode, transform = list() })
        if on and mode == "resident" then
          assert.equal(tostring(lunet.device("cuda")), loader.transform_where)
        else
          assert.matches("fallback", loader.transform_where)
        end
        assert.same(cpu, images_of((epoch(loader, 1))), mode .. (on and ", kernels on" or ", kernels off"))
      end
    end
    -- and a direct call on a CUDA batch with the kernels off says why it cannot
    lunet.cuda.set_unverified_kernels(false)
    local x = lunet.zeros({ 2, 3, 4, 4 }, { device = "cuda" })
    helpers.assert_error(function() lunet.augment_random_hflip(x, 0.5, 1, 0) end,
      "augmentation runs on host tensors", "LUNET_CUDA_UNVERIFIED_KERNELS=1")
  end)

  it("augment_on_device: host-memory devices augment", function()
    assert.is_true(lunet.augment_on_device(lunet.device("cpu")))
    assert.is_true(lunet.augment_on_device(lunet.device("ref")))
  end)
end)
