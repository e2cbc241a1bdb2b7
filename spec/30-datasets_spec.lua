-- API.md, Data: lunet.datasets.fashion_mnist and cifar10, and the IDX and
-- CIFAR readers under them (lunet.read_idx, lunet.read_cifar).
local lunet = require("lunet")
local helpers = require("helpers")

local DEBIAN = "/usr/share/datasets/fashion-mnist"

local function have_debian_data()
  local f = io.open(DEBIAN .. "/train-images-idx3-ubyte.gz", "rb")
  if f then f:close() end
  return f ~= nil
end

local write = helpers.write_file

local function gzip(path)
  assert(os.execute("gzip -f '" .. path .. "'"))
  return path .. ".gz"
end

--- An IDX file's bytes: magic (00 00 type ndim), big-endian sizes, payload.
local function idx_bytes(dims, payload, type_byte)
  local parts = { "\0\0", string.char(type_byte or 8, #dims) }
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  parts[#parts + 1] = payload
  return table.concat(parts)
end

local function pixel(i, r, c) return (i * 31 + r * 7 + c) % 256 end

--- n small Fashion-MNIST-shaped images with known pixels and labels 0..9 cycling.
local function fake_fashion(n)
  local img, lab = {}, {}
  for i = 1, n do
    for r = 1, 28 do
      for c = 1, 28 do img[#img + 1] = string.char(pixel(i, r, c)) end
    end
    lab[i] = string.char((i - 1) % 10)
  end
  return idx_bytes({ n, 28, 28 }, table.concat(img)), idx_bytes({ n }, table.concat(lab))
end

local function write_fashion(dir, split, n, compress)
  local prefix = split == "train" and "train" or "t10k"
  local images, labels = fake_fashion(n)
  local ip, lp = dir .. "/" .. prefix .. "-images-idx3-ubyte", dir .. "/" .. prefix .. "-labels-idx1-ubyte"
  write(ip, images)
  write(lp, labels)
  if compress then ip, lp = gzip(ip), gzip(lp) end
  return ip, lp
end

--- n CIFAR-10 records: label byte then 3072 pixel bytes.
local function cifar_bytes(n, first_label)
  local parts = {}
  for i = 1, n do
    parts[#parts + 1] = string.char(((first_label or 0) + i - 1) % 10)
    local px = {}
    for k = 1, 3072 do px[k] = string.char((i * 13 + k) % 256) end
    parts[#parts + 1] = table.concat(px)
  end
  return table.concat(parts)
end

describe("lunet.datasets.fashion_mnist on Debian's dataset-fashion-mnist", function()
  if not have_debian_data() then
    pending("Debian's dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)")
    return
  end

  it("loads the training split: shapes, dtypes, labels 1..10, 6000 of each class", function()
    local d = lunet.datasets.fashion_mnist({ root = DEBIAN })
    assert.equal(60000, #d)
    assert.same({ 60000, 1, 28, 28 }, d.images:shape())
    assert.equal("uint8", d.images:dtype())
    assert.same({ 60000 }, d.labels:shape())
    assert.equal("int32", d.labels:dtype())
    assert.equal(1, d.labels:min())
    assert.equal(10, d.labels:max())
    local counts = {}
    for _, l in ipairs(d.labels:totable()) do counts[l] = (counts[l] or 0) + 1 end
    for c = 1, 10 do assert.equal(6000, counts[c]) end
    -- pixel sums and the first label, as Python's gzip module reads them
    assert.equal(76247, d.images:narrow(1, 1, 1):to("float32"):sum())
    assert.equal(16684, d.images:narrow(1, 60000, 1):to("float32"):sum())
    assert.equal(217, d.images:get(1, 1, 15, 15))
    assert.equal("Ankle boot", d.classes[d.labels:get(1)])
  end)

  it("loads the test split and finds it by the default search order", function()
    local d = lunet.datasets.fashion_mnist({ split = "test" })
    assert.equal(10000, #d)
    assert.same({ 10000, 1, 28, 28 }, d.images:shape())
    local first = d.labels:narrow(1, 1, 10):totable()
    assert.same({ 10, 3, 2, 2, 7, 2, 5, 7, 6, 8 }, first)
    assert.same({ 9, 2, 6 }, d.labels:narrow(1, 9998, 3):totable())
    assert.equal(33456, d.images:narrow(1, 1, 1):to("float32"):sum())
    assert.equal(24390, d.images:narrow(1, 10000, 1):to("float32"):sum())
    assert.same({ "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
      "Sneaker", "Bag", "Ankle boot" }, d.classes)
  end)
end)

describe("lunet.datasets.fashion_mnist on generated files", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  for _, compress in ipairs({ false, true }) do
    it("reads " .. (compress and "gzipped" or "raw") .. " IDX files exactly", function()
      write_fashion(dir, "test", 7, compress)
      local d = lunet.datasets.fashion_mnist({ split = "test", root = dir })
      assert.equal(7, #d)
      assert.same({ 7, 1, 28, 28 }, d.images:shape())
      for _, pos in ipairs({ { 1, 1, 1 }, { 3, 28, 1 }, { 7, 14, 28 }, { 5, 2, 9 } }) do
        local i, r, c = pos[1], pos[2], pos[3]
        assert.equal(pixel(i, r, c), d.images:get(i, 1, r, c))
      end
      assert.same({ 1, 2, 3, 4, 5, 6, 7 }, d.labels:totable())
      assert.equal(dir, d.root)
    end)
  end

  it("searches $LUNET_DATA/fashion-mnist and ./data/fashion-mnist", function()
    assert(os.execute("mkdir -p '" .. dir .. "/env/fashion-mnist' '" .. dir .. "/cwd/data/fashion-mnist'"))
    write_fashion(dir .. "/env/fashion-mnist", "test", 3, true)
    write_fashion(dir .. "/cwd/data/fashion-mnist", "test", 4, false)
    local code = [[
      local lunet = require("lunet")
      local d = lunet.datasets.fashion_mnist({ split = "test" })
      print(#d, d.root)
    ]]
    local ok, out = helpers.run_child(code, { prefix = ("cd '%s/cwd' && LUNET_DATA='%s/env'"):format(dir, dir) })
    assert.is_true(ok, out)
    assert.truthy(out:find("3\t" .. dir .. "/env/fashion-mnist", 1, true), out)
    ok, out = helpers.run_child(code, { prefix = ("cd '%s/cwd' && LUNET_DATA="):format(dir) })
    assert.is_true(ok, out)
    assert.truthy(out:find("4\t./data/fashion-mnist", 1, true), out)
  end)

  it("says which file is missing and how to get the data", function()
    local err = helpers.assert_error(function() lunet.datasets.fashion_mnist({ root = dir }) end,
      "lunet.datasets.fashion_mnist", "train-images-idx3-ubyte", dir,
      "apt-get install dataset-fashion-mnist", "github.com/zalandoresearch/fashion-mnist")
    assert.is_nil(err:find("\n"))
    write_fashion(dir, "train", 2, false)
    os.remove(dir .. "/train-labels-idx1-ubyte")
    helpers.assert_error(function() lunet.datasets.fashion_mnist({ root = dir }) end,
      dir .. "/train-labels-idx1-ubyte", "is missing", "apt-get install dataset-fashion-mnist")
  end)

  it("rejects bad options", function()
    helpers.assert_error(function() lunet.datasets.fashion_mnist({ split = "valid" }) end,
      "lunet.datasets.fashion_mnist", "split", "valid")
    helpers.assert_error(function() lunet.datasets.fashion_mnist("train") end, "options table")
    helpers.assert_error(function() lunet.datasets.fashion_mnist({ root = 3 }) end, "root")
  end)

  describe("damaged files give errors that name the file", function()
    local function expect_damaged(images, labels, ...)
      local ip, lp = dir .. "/train-images-idx3-ubyte", dir .. "/train-labels-idx1-ubyte"
      write(ip, images)
      write(lp, labels)
      helpers.assert_error(function() lunet.datasets.fashion_mnist({ root = dir }) end,
        "lunet.datasets.fashion_mnist", "dataset-fashion-mnist", ...)
    end
    local good_images, good_labels = fake_fashion(3)
    local ip, lp = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"

    it("wrong magic number", function()
      expect_damaged("\1\2" .. good_images:sub(3), good_labels, ip, "not an IDX file", "0x01020803")
      expect_damaged(good_images, "\0\0\13\1" .. good_labels:sub(5), lp, "data type 0x0d")
    end)
    it("truncated data and trailing bytes", function()
      expect_damaged(good_images:sub(1, -2), good_labels, ip, "truncated", "[3, 28, 28]", "2351")
      expect_damaged(good_images, good_labels .. "x", lp, "trailing bytes")
      expect_damaged(good_images:sub(1, 10), good_labels, ip, "truncated IDX header")
      expect_damaged("", good_labels, ip, "0 bytes")
    end)
    it("wrong dimensions", function()
      expect_damaged(idx_bytes({ 3, 27, 28 }, ("\0"):rep(3 * 27 * 28)), good_labels, ip, "28x28", "[3, 27, 28]")
      expect_damaged(good_labels, good_labels, ip, "0x00000803", "1 dimensions")
      expect_damaged(good_images, good_images, lp, "0x00000801", "3 dimensions")
      expect_damaged(idx_bytes({ 0, 28, 28 }, ""), good_labels, ip, "size 1 of 3 is 0")
      expect_damaged(good_images, "\0\0\8\0", lp, "0 dimensions")
    end)
    it("image and label counts that disagree", function()
      local _, four_labels = fake_fashion(4)
      expect_damaged(good_images, four_labels, lp, "holds 4 labels", "holds 3 images")
    end)
    it("labels outside 0..9", function()
      expect_damaged(good_images, idx_bytes({ 3 }, "\1\10\2"), lp, "label 10 is outside 0..9")
    end)
    it("damaged gzip data", function()
      write_fashion(dir, "train", 3, true)
      local f = assert(io.open(dir .. "/train-images-idx3-ubyte.gz", "rb"))
      local gz = f:read("a")
      f:close()
      write(dir .. "/train-images-idx3-ubyte.gz", gz:sub(1, #gz // 2))
      helpers.assert_error(function() lunet.datasets.fashion_mnist({ root = dir }) end,
        dir .. "/train-images-idx3-ubyte.gz", "truncated or damaged", "dataset-fashion-mnist")
    end)
  end)
end)

describe("lunet.read_idx", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("reads any number of dimensions as uint8 with the file's sizes", function()
    write(dir .. "/x", idx_bytes({ 2, 3, 4 }, string.char(table.unpack((function()
      local v = {}
      for i = 1, 24 do v[i] = i * 10 end
      return v
    end)()))))
    local t = lunet.read_idx(dir .. "/x")
    assert.same({ 2, 3, 4 }, t:shape())
    assert.equal("uint8", t:dtype())
    assert.equal(10, t:get(1, 1, 1))
    assert.equal(240, t:get(2, 3, 4))
  end)

  it("names the file when it cannot be opened", function()
    helpers.assert_error(function() lunet.read_idx(dir .. "/none") end, "lunet.read_idx", dir .. "/none",
      "No such file")
    helpers.assert_error(function() lunet.read_idx(dir) end, "lunet.read_idx", dir)
    helpers.assert_error(function() lunet.read_idx() end, "read_idx")
  end)

  it("rejects more dimensions than a tensor holds", function()
    write(dir .. "/x", idx_bytes({ 1, 1, 1, 1, 1, 1, 1, 1, 1 }, "a"))
    helpers.assert_error(function() lunet.read_idx(dir .. "/x") end, dir .. "/x", "9 dimensions")
  end)
end)

describe("lunet.datasets.cifar10", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("reads the test batch: images {N, 3, 32, 32} uint8 as stored, labels 1..10", function()
    write(dir .. "/test_batch.bin", cifar_bytes(12, 3))
    local d = lunet.datasets.cifar10({ split = "test", root = dir })
    assert.equal(12, #d)
    assert.same({ 12, 3, 32, 32 }, d.images:shape())
    assert.equal("uint8", d.images:dtype())
    assert.equal("int32", d.labels:dtype())
    assert.same({ 4, 5, 6, 7, 8, 9, 10, 1, 2, 3, 4, 5 }, d.labels:totable())
    -- record i, byte k (1-based, after the label) sits at channel, row, column
    for _, p in ipairs({ { 1, 1 }, { 2, 1025 }, { 12, 3072 }, { 5, 2048 + 33 } }) do
      local i, k = p[1], p[2]
      local c, r, col = (k - 1) // 1024, ((k - 1) % 1024) // 32, (k - 1) % 32
      assert.equal((i * 13 + k) % 256, d.images:get(i, c + 1, r + 1, col + 1))
    end
    assert.equal("dog", d.classes[6])
  end)

  it("concatenates the five training batches, from cifar-10-batches-bin too, gzipped or not", function()
    assert(os.execute("mkdir -p '" .. dir .. "/cifar-10-batches-bin'"))
    for b = 1, 5 do
      local path = dir .. "/cifar-10-batches-bin/data_batch_" .. b .. ".bin"
      write(path, cifar_bytes(b, b))
      if b == 2 then gzip(path) end
    end
    local d = lunet.datasets.cifar10({ root = dir })
    assert.equal(15, #d)
    assert.same({ 2, 3, 4, 4, 5, 6, 5, 6, 7, 8 }, d.labels:narrow(1, 1, 10):totable())
    assert.equal((1 * 13 + 1) % 256, d.images:get(2, 1, 1, 1)) -- batch 2, record 1
    assert.equal((5 * 13 + 3072) % 256, d.images:get(15, 3, 32, 32))
  end)

  it("names missing and damaged files and says how to get CIFAR-10", function()
    helpers.assert_error(function() lunet.datasets.cifar10({ split = "test", root = dir }) end,
      "lunet.datasets.cifar10", "test_batch.bin", "cs.toronto.edu/~kriz/cifar.html")
    write(dir .. "/data_batch_1.bin", cifar_bytes(2))
    helpers.assert_error(function() lunet.datasets.cifar10({ root = dir }) end,
      dir .. "/data_batch_2.bin", "is missing", "cifar-10-binary")
    write(dir .. "/test_batch.bin", cifar_bytes(2):sub(1, -2))
    helpers.assert_error(function() lunet.datasets.cifar10({ split = "test", root = dir }) end,
      dir .. "/test_batch.bin", "6145 bytes is not a whole number of 3073-byte", "cifar.html")
    write(dir .. "/test_batch.bin", "\10" .. cifar_bytes(1):sub(2))
    helpers.assert_error(function() lunet.datasets.cifar10({ split = "test", root = dir }) end,
      dir .. "/test_batch.bin", "label 10", "outside 0..9")
    write(dir .. "/test_batch.bin", "")
    helpers.assert_error(function() lunet.datasets.cifar10({ split = "test", root = dir }) end,
      dir .. "/test_batch.bin", "empty file")
  end)
end)
