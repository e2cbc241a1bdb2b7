-- lunet.datasets.image_folder and the image readers under it: JPEG and PNG
-- files written by the spec itself (lunet.image_write), decoding, resizing,
-- class folders, background decoding with prefetch, and clear errors for
-- corrupt, truncated, wrong-format and non-regular files.
local lunet = require("lunet")
local helpers = require("helpers")

local formats = lunet.image_formats()
local have_both = formats.jpeg and formats.png

--- uint8 {3, h, w}: a colour per class, a little noise.
local function picture(class, h, w, seed)
  lunet.manual_seed(seed)
  return (lunet.rand({ 3, h, w }) * 40 + class * 60):to("uint8")
end

--- DIR/<split>/<class>/<i>.{jpg,png}: `per_class` images of classes a, b, c.
local function make_folder(dir, split, per_class)
  for c, name in ipairs({ "b_dog", "a_cat", "c_emu" }) do
    local d = ("%s/%s/%s"):format(dir, split, name)
    assert(os.execute("mkdir -p " .. helpers.sh_quote(d)))
    for i = 1, per_class do
      local ext = i % 2 == 0 and "png" or "jpg"
      lunet.image_write(("%s/%02d.%s"):format(d, i, ext), picture(c, 20 + i, 30, 100 * c + i))
    end
  end
end

local function bytes_of(path) return assert(helpers.read_file(path)) end

local function batches(loader, e)
  local out = {}
  for x, y in loader:iter(e) do out[#out + 1] = { x:to("cpu"):totable(), y:to("cpu"):totable() } end
  return out
end

local function describe_if(cond, name, fn)
  if cond then describe(name, fn) else pending(name .. " (lunet built without libjpeg or libpng)") end
end

describe_if(have_both, "image files", function()
  local dir
  setup(function() dir = helpers.tmpdir() end)
  teardown(function() helpers.rmdir(dir) end)

  it("PNG round-trips exactly; JPEG comes back close; probes read the header", function()
    local img = picture(1, 9, 13, 1)
    lunet.image_write(dir .. "/p.png", img)
    lunet.image_write(dir .. "/j.jpg", img, { quality = 100 })
    local w, h, f = lunet.image_probe(dir .. "/p.png")
    assert.same({ 13, 9, "PNG" }, { w, h, f })
    w, h, f = lunet.image_probe(dir .. "/j.jpg")
    assert.same({ 13, 9, "JPEG" }, { w, h, f })
    assert.same(img:totable(), lunet.image_load(dir .. "/p.png", 9, 13):totable())
    local j = lunet.image_load(dir .. "/j.jpg", 9, 13):to("float32")
    local d = j - img:to("float32")
    local rms = math.sqrt((d * d):mean()) -- noise through 4:2:0 chroma subsampling
    assert.is_true(rms < 16, "rms difference " .. rms)
    -- grayscale images come back as RGB
    lunet.image_write(dir .. "/g.png", (lunet.ones({ 1, 4, 4 }) * 77):to("uint8"))
    local g = lunet.image_load(dir .. "/g.png", 4, 4)
    assert.equal(77, g:to("float32"):min())
    assert.equal(77, g:to("float32"):max())
  end)

  it("scales to cover the size and cuts out the centre", function()
    -- 40 wide, 20 high: left half 0, right half 200, with a 10-pixel wide
    -- red band in the middle; scaled to 10x10 the centre 20x20 remains
    local t = lunet.zeros({ 3, 20, 40 })
    t:narrow(3, 21, 20):fill(200)
    t:narrow(1, 1, 1):narrow(3, 16, 10):fill(255)
    lunet.image_write(dir .. "/halves.png", t:to("uint8"))
    local out = lunet.image_load(dir .. "/halves.png", 10, 10):to("float32"):totable()
    -- output column x covers source columns 10 + 2 (x - 1) .. 11 + 2 (x - 1)
    assert.equal(0, out[1][5][1])    -- left of the band
    assert.equal(255, out[1][5][5])  -- the band
    assert.equal(0, out[2][5][1])    -- left half, green channel
    assert.equal(200, out[2][5][10]) -- right half
    -- a constant image stays constant through up- and down-scaling
    lunet.image_write(dir .. "/flat.png", (lunet.ones({ 3, 7, 11 }) * 90):to("uint8"))
    for _, size in ipairs({ { 3, 3 }, { 20, 31 }, { 1, 1 } }) do
      local f = lunet.image_load(dir .. "/flat.png", size[1], size[2]):to("float32")
      assert.same({ 90, 90 }, { f:min(), f:max() })
    end
  end)

  it("corrupt, truncated, wrong-format and non-regular files are errors naming the file", function()
    local img = picture(2, 16, 16, 2)
    lunet.image_write(dir .. "/ok.jpg", img)
    lunet.image_write(dir .. "/ok.png", img)
    local jpg, png = bytes_of(dir .. "/ok.jpg"), bytes_of(dir .. "/ok.png")
    helpers.write_file(dir .. "/trunc.jpg", jpg:sub(1, #jpg // 2))
    helpers.write_file(dir .. "/trunc.png", png:sub(1, #png - 20))
    helpers.write_file(dir .. "/header_only.jpg", jpg:sub(1, 300))
    helpers.write_file(dir .. "/text.jpg", "this is not an image at all")
    helpers.write_file(dir .. "/empty.png", "")
    helpers.write_file(dir .. "/png_named.jpg", png) -- the signature decides, not the name
    -- damaged PNG data: flip bytes inside the compressed stream
    local mid = #png // 2
    helpers.write_file(dir .. "/garbled.png", png:sub(1, mid) .. ("\255"):rep(8) .. png:sub(mid + 9))
    -- a PNG header claiming an absurd size
    helpers.write_file(dir .. "/huge.png", png:sub(1, 16) .. "\0\1\0\0\0\1\0\0" .. png:sub(25))
    assert(os.execute("mkfifo " .. helpers.sh_quote(dir .. "/fifo.jpg")))
    local cases = {
      { "trunc.jpg", "JPEG" },
      { "trunc.png", "PNG" },
      { "header_only.jpg", "JPEG" },
      { "text.jpg", "not a JPEG or PNG image" },
      { "empty.png", "empty file" },
      { "garbled.png", "PNG" },
      { "huge.png", "larger than lunet decodes" },
      { "fifo.jpg", "not a regular file" },
      { "", "not a regular file (a directory)" },
      { "missing.jpg", "cannot open" },
    }
    for _, case in ipairs(cases) do
      local path = dir .. "/" .. case[1]
      if case[1] == "" then path = dir end
      local ok, err = pcall(lunet.image_load, path, 8, 8)
      assert.is_false(ok, case[1] .. " should fail")
      assert.truthy(err:find("lunet.image_load: " .. path, 1, true), err)
      assert.truthy(err:find(case[2], 1, true), err)
    end
    assert.same({ 8, 8 }, { lunet.image_load(dir .. "/png_named.jpg", 8, 8):size(2), 8 })
  end)

  it("image_write refuses what it cannot write", function()
    helpers.assert_error(function() lunet.image_write(dir .. "/x.bmp", lunet.zeros({ 3, 2, 2 }, { dtype = "uint8" })) end,
      "name the format")
    helpers.assert_error(function() lunet.image_write(dir .. "/x.png", lunet.zeros({ 3, 2, 2 })) end,
      "expected a contiguous uint8 CPU tensor [C, H, W], got float32 [3, 2, 2]")
    helpers.assert_error(function() lunet.image_write(dir .. "/x.png", lunet.zeros({ 2, 2, 2 }, { dtype = "uint8" })) end,
      "1 or 3 channels")
    helpers.assert_error(function() lunet.image_write("/nonexistent/dir/x.png", lunet.zeros({ 3, 2, 2 }, { dtype = "uint8" })) end,
      "/nonexistent/dir/x.png")
  end)
end)

describe_if(have_both, "lunet.datasets.image_folder", function()
  local dir
  setup(function()
    dir = helpers.tmpdir()
    make_folder(dir, "train", 5)
    make_folder(dir, "val", 2)
    helpers.write_file(dir .. "/train/a_cat/notes.txt", "ignored")
  end)
  teardown(function() helpers.rmdir(dir) end)

  it("lists classes sorted by folder name, files sorted, labels 1..C", function()
    local ds = lunet.datasets.image_folder({ root = dir, split = "train", size = { 12, 10 } })
    assert.equal(15, #ds)
    assert.same({ "a_cat", "b_dog", "c_emu" }, ds.classes)
    assert.equal(1, ds.ignored)
    assert.equal(0, ds.skipped)
    assert.matches("a_cat/01%.jpg$", ds.paths[1])
    assert.matches("c_emu/05%.jpg$", ds.paths[15])
    assert.same({ 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3 }, ds.labels:totable())
    local img, label = ds:get(6)
    assert.same({ 3, 12, 10 }, img:shape())
    assert.equal("uint8", img:dtype())
    assert.equal(2, label)
    -- dataset.images decodes them all on first use
    assert.same({ 15, 3, 12, 10 }, ds.images:shape())
    assert.same(img:totable(), ds.images:narrow(1, 6, 1):reshape({ 3, 12, 10 }):totable())
    -- without split, root itself holds the classes
    assert.equal(6, #lunet.datasets.image_folder({ root = dir .. "/val", size = 8 }))
  end)

  it("decodes the same batches lazily (any prefetch) and preloaded, on ref and cpu", function()
    local lazy = lunet.datasets.image_folder({ root = dir, split = "train", size = { 12, 10 }, threads = 3 })
    local pre = lunet.datasets.image_folder({ root = dir, split = "train", size = { 12, 10 }, preload = true })
    assert.same({ 15, 3, 12, 10 }, pre.images:shape())
    local reference
    for _, case in ipairs({ { lazy, 0, "cpu" }, { lazy, 3, "cpu" }, { pre, 2, "cpu" }, { lazy, 1, "ref" } }) do
      local loader = lunet.data.DataLoader(case[1], { batch_size = 4, shuffle = true, seed = 2, prefetch = case[2],
        device = case[3], transform = { lunet.transforms.RandomHorizontalFlip(0.5) } })
      local got = batches(loader, 1)
      assert.equal(4, #got)
      if reference then assert.same(reference, got) else reference = got end
      -- an epoch cut short, then a full one: nothing left over from the first
      for _, b in loader:iter(1) do if b == 2 then break end end
      assert.same(reference, batches(loader, 1))
      assert.is_true(loader.wait_seconds >= 0)
      loader:free()
    end
  end)

  it("trains a small ResNet on the folder: the loss falls (ref and cpu)", function()
    local ds = lunet.datasets.image_folder({ root = dir, split = "train", size = { 16, 16 } })
    for _, dev in ipairs({ "ref", "cpu" }) do
      lunet.manual_seed(4)
      local model = lunet.models.cifar_resnet({ width = 4, num_classes = 3 }):to(dev)
      local opt = lunet.optim.Adam(model, { lr = 0.01 })
      local crit = lunet.nn.CrossEntropyLoss()
      local loader = lunet.data.DataLoader(ds, { batch_size = 15, shuffle = true, seed = 1, device = dev,
        transform = { lunet.transforms.Normalize({ 0.5, 0.5, 0.5 }, { 0.25, 0.25, 0.25 }) } })
      local losses = {}
      for e = 1, 8 do
        for x, y in loader:iter(e) do
          opt:zero_grad()
          local out = model:forward(x)
          losses[#losses + 1] = crit:forward(out, y)
          model:backward(x, crit:backward(out, y))
          opt:step()
        end
      end
      assert.is_true(losses[#losses] < 0.5 * losses[1], ("%s: loss %.3f -> %.3f"):format(dev, losses[1], losses[#losses]))
      loader:free()
    end
  end)

  describe("bad files", function()
    local bad
    before_each(function()
      bad = helpers.tmpdir()
      make_folder(bad, "x", 2)
    end)
    after_each(function() helpers.rmdir(bad) end)

    it("a file that is no image is an error naming it, or skipped and counted", function()
      helpers.write_file(bad .. "/x/b_dog/zz.jpg", "GIF89a not what the name says")
      assert(os.execute("mkdir " .. helpers.sh_quote(bad .. "/x/a_cat/dir.png")))
      local ok, err = pcall(lunet.datasets.image_folder, { root = bad, split = "x", size = 8 })
      assert.is_false(ok)
      assert.truthy(err:find("lunet.datasets.image_folder: " .. bad .. "/x/a_cat/dir.png", 1, true), err)
      assert.truthy(err:find("skip_bad", 1, true))
      local ds = lunet.datasets.image_folder({ root = bad, split = "x", size = 8, skip_bad = true })
      assert.equal(6, #ds)
      assert.equal(2, ds.skipped)
      assert.truthy(ds.skipped_files[2]:find("zz.jpg: not a JPEG or PNG image", 1, true), ds.skipped_files[2])
    end)

    it("an image damaged after its header fails the batch naming the file, or becomes a counted black image", function()
      local path = bad .. "/x/b_dog/01.jpg"
      local jpg = bytes_of(path)
      helpers.write_file(path, jpg:sub(1, #jpg * 2 // 3)) -- the header survives
      local ds = lunet.datasets.image_folder({ root = bad, split = "x", size = 8 })
      assert.equal(6, #ds) -- the header check passes
      local loader = lunet.data.DataLoader(ds, { batch_size = 4 })
      local ok, err = pcall(batches, loader, 1)
      assert.is_false(ok)
      assert.truthy(err:find(path .. ": corrupt", 1, true), err)
      local skip = lunet.datasets.image_folder({ root = bad, split = "x", size = 8, skip_bad = true })
      local l2 = lunet.data.DataLoader(skip, { batch_size = 4 })
      local got = batches(l2, 1)
      assert.equal(1, l2.bad_images)
      assert.equal(0, got[1][1][3][1][1][1]) -- image 3 (b_dog/01) is black
    end)

    it("an empty folder or a missing root is a clear error", function()
      helpers.assert_error(function() lunet.datasets.image_folder({ root = bad .. "/nope", size = 8 }) end,
        "lunet.datasets.image_folder", bad .. "/nope: cannot list", "Imagenette")
      helpers.assert_error(function() lunet.datasets.image_folder({ root = bad .. "/x/a_cat", size = 8 }) end,
        "has no class folders")
      helpers.assert_error(function() lunet.datasets.image_folder({ root = bad, split = "x", size = { 0, 3 } }) end,
        "size must be {H, W}")
      helpers.assert_error(function() lunet.datasets.image_folder({ root = bad, split = "x", size = 8, thread = 2 }) end,
        "unknown option 'thread'")
    end)
  end)
end)
