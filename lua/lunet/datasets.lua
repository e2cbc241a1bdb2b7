--- Datasets: Fashion-MNIST (IDX files) and CIFAR-10 (binary batches).
--
-- Each loader returns a dataset table:
--   images   uint8 CPU tensor {N, C, H, W} (raw pixels, 0..255)
--   labels   int32 CPU tensor {N}, 1-based (1..10): classes[label] is the name
--   classes  the 10 class names
--   split, root, files (the paths read)
-- and `#dataset` is N. The C readers (csrc/io/) validate the bytes; this
-- module finds the files and checks they are the ones expected.
local core = require("lunet.core")

local datasets = {}

local FASHION_CLASSES = {
  "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
}

local CIFAR_CLASSES = {
  "airplane", "automobile", "bird", "cat", "deer",
  "dog", "frog", "horse", "ship", "truck",
}

local FASHION_HOWTO = "Get Fashion-MNIST with `apt-get install dataset-fashion-mnist` " ..
  "(Debian/Ubuntu: it installs to /usr/share/datasets/fashion-mnist), or download the four " ..
  "*-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist into " ..
  "./data/fashion-mnist or $LUNET_DATA/fashion-mnist (or pass root=DIR)"
local FASHION_DAMAGED = "the file is damaged or is not Fashion-MNIST: reinstall it " ..
  "(`apt-get install --reinstall dataset-fashion-mnist`) or download it again from " ..
  "https://github.com/zalandoresearch/fashion-mnist"

local CIFAR_HOWTO = "Get CIFAR-10's binary version (cifar-10-binary.tar.gz) from " ..
  "https://www.cs.toronto.edu/~kriz/cifar.html and unpack it so that data_batch_1.bin .. " ..
  "data_batch_5.bin and test_batch.bin lie in ./data/cifar-10 (or ./data/cifar-10-batches-bin, " ..
  "or $LUNET_DATA/cifar-10), or pass root=DIR"
local CIFAR_DAMAGED = "the file is damaged or is not a CIFAR-10 binary batch: download " ..
  "cifar-10-binary.tar.gz again from https://www.cs.toronto.edu/~kriz/cifar.html"

local Dataset = { __name = "lunet.Dataset" }
Dataset.__index = Dataset
Dataset.__len = function(self) return self.images:size(1) end

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function check_options(fname, opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error(("%s: expected an options table {split=, root=}, got %s"):format(fname, type(opts)), 3)
  end
  local split = opts.split or "train"
  if split ~= "train" and split ~= "test" then
    error(("%s: split must be \"train\" or \"test\", got %s"):format(fname, tostring(split)), 3)
  end
  if opts.root ~= nil and type(opts.root) ~= "string" then
    error(("%s: root must be a directory name (a string), got %s"):format(fname, type(opts.root)), 3)
  end
  return split, opts.root
end

--- The folders searched, in order: `root` alone when given, else
-- $LUNET_DATA/<name>, ./data/<name>, /usr/share/datasets/<name> for each name.
local function search_dirs(root, names)
  if root then return { root } end
  local dirs = {}
  local env = os.getenv("LUNET_DATA")
  local bases = {}
  if env and env ~= "" then bases[#bases + 1] = env end
  bases[#bases + 1] = "./data"
  bases[#bases + 1] = "/usr/share/datasets"
  for _, base in ipairs(bases) do
    for _, name in ipairs(names) do dirs[#dirs + 1] = base .. "/" .. name end
  end
  return dirs
end

--- `dir/name` or `dir/name.gz`, whichever exists (raw first: no inflating).
local function find_in(dir, name)
  for _, candidate in ipairs({ dir .. "/" .. name, dir .. "/" .. name .. ".gz" }) do
    if file_exists(candidate) then return candidate end
  end
  return nil
end

--- Reads a file with a C reader, turning its error into one that names the
-- dataset function, the file, and what to do about it.
local function read_with(reader, fname, hint, path)
  local ok, a, b = pcall(reader, path)
  if not ok then
    local msg = tostring(a):gsub("^lunet%.read_%a+: ", "")
    error(("%s: %s; %s"):format(fname, msg, hint), 0)
  end
  return a, b
end

local function format_dims(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

-- Fashion-MNIST -----------------------------------------------------------------

local FASHION_FILES = {
  train = { "train-images-idx3-ubyte", "train-labels-idx1-ubyte" },
  test = { "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte" },
}

--- lunet.datasets.fashion_mnist{split="train"|"test", root=nil}
function datasets.fashion_mnist(opts)
  local fname = "lunet.datasets.fashion_mnist"
  local split, root = check_options(fname, opts)
  local image_name, label_name = FASHION_FILES[split][1], FASHION_FILES[split][2]
  local dirs = search_dirs(root, { "fashion-mnist" })
  local dir, image_path
  for _, d in ipairs(dirs) do
    image_path = find_in(d, image_name)
    if image_path then dir = d break end
  end
  if not dir then
    error(("%s: the Fashion-MNIST %s images (%s or %s.gz) were not found in %s. %s")
      :format(fname, split, image_name, image_name, table.concat(dirs, ", "), FASHION_HOWTO), 0)
  end
  local label_path = find_in(dir, label_name)
  if not label_path then
    error(("%s: %s/%s(.gz) is missing (the images are there: %s). %s")
      :format(fname, dir, label_name, image_path, FASHION_HOWTO), 0)
  end

  local function bad(path, what)
    error(("%s: %s: %s; %s"):format(fname, path, what, FASHION_DAMAGED), 0)
  end
  local raw_images = read_with(core.read_idx, fname, FASHION_DAMAGED, image_path)
  if raw_images:dim() ~= 3 then
    bad(image_path, ("expected images (IDX magic number 0x00000803: 3 dimensions), got %d " ..
      "dimensions %s"):format(raw_images:dim(), format_dims(raw_images)))
  end
  if raw_images:size(2) ~= 28 or raw_images:size(3) ~= 28 then
    bad(image_path, ("expected 28x28 images, got %s"):format(format_dims(raw_images)))
  end
  local raw_labels = read_with(core.read_idx, fname, FASHION_DAMAGED, label_path)
  if raw_labels:dim() ~= 1 then
    bad(label_path, ("expected labels (IDX magic number 0x00000801: 1 dimension), got %d " ..
      "dimensions %s"):format(raw_labels:dim(), format_dims(raw_labels)))
  end
  local n = raw_images:size(1)
  if raw_labels:size(1) ~= n then
    bad(label_path, ("holds %d labels but %s holds %d images"):format(raw_labels:size(1), image_path, n))
  end
  local top = raw_labels:max()
  if top > 9 then
    bad(label_path, ("label %d is outside 0..9"):format(top))
  end
  return setmetatable({
    images = raw_images:reshape({ n, 1, 28, 28 }),
    labels = raw_labels:to("int32") + 1,
    classes = { table.unpack(FASHION_CLASSES) },
    split = split,
    root = dir,
    files = { images = image_path, labels = label_path },
    name = "Fashion-MNIST",
  }, Dataset)
end

-- CIFAR-10 -------------------------------------------------------------------------

local CIFAR_FILES = {
  train = { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
    "data_batch_5.bin" },
  test = { "test_batch.bin" },
}

--- lunet.datasets.cifar10{split="train"|"test", root=nil}. With `root` the
-- files may lie in root itself or in root/cifar-10-batches-bin (the folder
-- the archive unpacks to).
function datasets.cifar10(opts)
  local fname = "lunet.datasets.cifar10"
  local split, root = check_options(fname, opts)
  local names = CIFAR_FILES[split]
  local dirs = search_dirs(root, { "cifar-10", "cifar-10-batches-bin" })
  if root then dirs[#dirs + 1] = root .. "/cifar-10-batches-bin" end
  local dir
  for _, d in ipairs(dirs) do
    if find_in(d, names[1]) then dir = d break end
  end
  if not dir then
    error(("%s: the CIFAR-10 %s batch %s was not found in %s. %s")
      :format(fname, split, names[1], table.concat(dirs, ", "), CIFAR_HOWTO), 0)
  end
  local parts, paths, total = {}, {}, 0
  for i, name in ipairs(names) do
    local path = find_in(dir, name)
    if not path then
      error(("%s: %s/%s is missing (%s is there). %s"):format(fname, dir, name, paths[1], CIFAR_HOWTO), 0)
    end
    local images, labels = read_with(core.read_cifar, fname, CIFAR_DAMAGED, path)
    parts[i], paths[i] = { images, labels }, path
    total = total + images:size(1)
  end
  local images, labels
  if #parts == 1 then
    images, labels = parts[1][1], parts[1][2]
  else
    images = core.empty({ total, 3, 32, 32 }, { dtype = "uint8" })
    labels = core.empty({ total }, { dtype = "int32" })
    local at = 1
    for _, part in ipairs(parts) do
      local count = part[1]:size(1)
      images:narrow(1, at, count):copy(part[1])
      labels:narrow(1, at, count):copy(part[2])
      part[1]:free()
      part[2]:free()
      at = at + count
    end
  end
  return setmetatable({
    images = images,
    labels = labels,
    classes = { table.unpack(CIFAR_CLASSES) },
    split = split,
    root = dir,
    files = paths,
    name = "CIFAR-10",
  }, Dataset)
end

datasets.FASHION_MNIST_CLASSES = FASHION_CLASSES
datasets.CIFAR10_CLASSES = CIFAR_CLASSES

return datasets
