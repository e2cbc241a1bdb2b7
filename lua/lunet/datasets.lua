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
local interrupt = require("lunet.interrupt")

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

--- Whether `path` exists, of any kind: a named pipe or a device found here
-- is refused by the reader with a clear message. Never opens the file (io.open
-- of a named pipe would wait for a writer forever).
local function file_exists(path)
  return core.file_kind(path) ~= nil
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
  local kind = opts.root and core.file_kind(opts.root)
  if kind and kind ~= "directory" then
    error(("%s: root %s is not a directory (it is a %s)"):format(fname, opts.root, kind), 3)
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
  interrupt.pause_point("dataset")
  local ok, a, b = pcall(reader, path)
  if not ok then
    interrupt.rethrow(a) -- a Ctrl-C is not a damaged file
    local msg = tostring(a):gsub("^.-lunet%.read_%a+: ", "") -- no source position either
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

-- Image folders ----------------------------------------------------------------------

local IMAGE_FOLDER_HOWTO = "an image folder holds one sub-folder per class with its JPEG " ..
  "or PNG files, DIR/<class>/<image>.jpg (e.g. Imagenette: download imagenette2-160.tgz from " ..
  "https://github.com/fastai/imagenette, unpack it, and pass root=\"imagenette2-160\", " ..
  "split=\"train\" or \"val\")"

local IMAGE_EXTENSIONS = { jpg = true, jpeg = true, png = true }

local ImageFolder = { __name = "lunet.ImageFolder" }
ImageFolder.__len = function(self) return #self.paths end
local decode_all
-- `dataset.images` of a folder that was not preloaded decodes every image on
-- first use (and keeps them); a DataLoader does not ask for it and decodes
-- batch by batch instead.
ImageFolder.__index = function(self, key)
  if key == "images" then
    local images, bad = decode_all(self, "lunet.ImageFolder.images")
    rawset(self, "images", images)
    rawset(self, "bad_images", bad)
    return images
  end
  return ImageFolder[key]
end

--- {3, H, W}: the shape of one decoded image.
function ImageFolder:image_shape()
  return { 3, self.size[1], self.size[2] }
end

--- A background decoder for this folder's images (lunet.data.DataLoader uses it).
function ImageFolder:decoder()
  return core.image_loader({ threads = self.threads, height = self.size[1], width = self.size[2],
    skip_bad = self.skip_bad })
end

--- Image i (1-based) as uint8 {3, H, W}, decoded now, and its label.
function ImageFolder:get(i)
  if math.type(i) ~= "integer" or i < 1 or i > #self.paths then
    error(("lunet.ImageFolder:get: index must be an integer in 1..%d, got %s"):format(#self.paths,
      tostring(i)), 2)
  end
  local images = rawget(self, "images")
  if images then
    return images:narrow(1, i, 1):reshape(self:image_shape()), self.labels:get(i)
  end
  local ok, img = pcall(core.image_load, self.paths[i], self.size[1], self.size[2])
  if not ok then interrupt.rethrow(img) end
  if not ok then error("lunet.ImageFolder:get: " .. tostring(img):gsub("^.-lunet%.image_load: ", ""), 2) end
  return img, self.labels:get(i)
end

function decode_all(self, fname)
  local n = #self.paths
  local images = core.empty({ n, 3, self.size[1], self.size[2] }, { dtype = "uint8" })
  local decoder = self:decoder()
  local chunk, tickets = 64, {}
  for first = 1, n, chunk do
    local paths = {}
    for i = first, math.min(n, first + chunk - 1) do paths[#paths + 1] = self.paths[i] end
    tickets[#tickets + 1] = { first, #paths, decoder:submit(paths) }
  end
  local bad = 0
  for _, t in ipairs(tickets) do
    local ok, result = decoder:wait(t[3], images:narrow(1, t[1], t[2]))
    if not ok then
      decoder:close()
      images:free()
      error(("%s: %s"):format(fname, result), 0)
    end
    bad = bad + result
  end
  decoder:close()
  return images, bad
end

--- lunet.datasets.image_folder{root=DIR, size={H, W}, split=nil, preload=false,
-- skip_bad=false, threads=lunet.get_num_threads()}: a dataset over
-- DIR/<class>/<image> (or DIR/<split>/<class>/<image>), JPEG and PNG files,
-- classes sorted by folder name (labels 1..C), files sorted by name. Each
-- file's header is checked now: a file that is not a readable JPEG or PNG is
-- an error naming it, or with skip_bad = true left out and counted
-- (dataset.skipped, dataset.skipped_files); files with other extensions are
-- ignored (dataset.ignored). Images are decoded, scaled to cover `size` and
-- centre-cropped by `threads` C threads: all of them now with preload = true
-- (dataset.images, uint8 {N, 3, H, W}), else batch by batch as a DataLoader
-- asks, ahead of the training step (its prefetch= option; reading
-- dataset.images decodes them all then); an image that
-- turns out damaged then is an error naming the file, or with skip_bad a
-- black image counted in loader.bad_images.
function datasets.image_folder(opts)
  local fname = "lunet.datasets.image_folder"
  if type(opts) ~= "table" then
    error(("%s: expected an options table {root=, size={H, W}}, got %s"):format(fname, type(opts)), 2)
  end
  local known = { root = true, size = true, split = true, preload = true, skip_bad = true, threads = true }
  for k in pairs(opts) do
    if not known[k] then
      error(("%s: unknown option '%s' (known: preload, root, size, skip_bad, split, threads)")
        :format(fname, tostring(k)), 2)
    end
  end
  if type(opts.root) ~= "string" then
    error(("%s: root must be a directory name (a string), got %s; %s"):format(fname, type(opts.root),
      IMAGE_FOLDER_HOWTO), 2)
  end
  local size = opts.size
  if type(size) == "number" then size = { size, size } end
  if type(size) ~= "table" or #size ~= 2 or math.type(size[1]) ~= "integer" or math.type(size[2]) ~= "integer"
    or size[1] < 1 or size[2] < 1 or size[1] > 16384 or size[2] > 16384 then
    error(("%s: size must be {H, W} (positive integers), got %s"):format(fname, tostring(opts.size)), 2)
  end
  local threads = opts.threads or core.get_num_threads()
  if math.type(threads) ~= "integer" or threads < 1 or threads > 256 then
    error(("%s: threads must be an integer in 1..256, got %s"):format(fname, tostring(threads)), 2)
  end
  local formats = core.image_formats()
  local root = opts.root:gsub("/+$", "")
  if opts.split ~= nil then
    if type(opts.split) ~= "string" then
      error(("%s: split must be a folder name such as \"train\" or \"val\", got %s"):format(fname,
        type(opts.split)), 2)
    end
    root = root .. "/" .. opts.split
  end
  local ok, entries = pcall(core.list_dir, root)
  if not ok then
    interrupt.rethrow(entries)
    error(("%s: %s; %s"):format(fname, tostring(entries):gsub("^.-lunet%.list_dir: ", ""),
      IMAGE_FOLDER_HOWTO), 0)
  end
  local classes = {}
  for _, e in ipairs(entries) do
    if e.kind == "dir" then classes[#classes + 1] = e.name end
  end
  if #classes == 0 then
    error(("%s: %s has no class folders; %s"):format(fname, root, IMAGE_FOLDER_HOWTO), 0)
  end
  local paths, labels, skipped, ignored = {}, {}, {}, 0
  interrupt.pause_point("dataset")
  for label, class in ipairs(classes) do
    local dir = root .. "/" .. class
    for _, e in ipairs(core.list_dir(dir)) do
      local ext = e.name:match("%.([^./]+)$")
      ext = ext and ext:lower()
      if not ext or not IMAGE_EXTENSIONS[ext] then
        ignored = ignored + (e.kind == "dir" and 0 or 1)
      else
        local path = dir .. "/" .. e.name
        local good, why = pcall(core.image_probe, path)
        if good then
          paths[#paths + 1] = path
          labels[#labels + 1] = label
        else
          interrupt.rethrow(why) -- a Ctrl-C is not a bad file to skip
          why = tostring(why):gsub("^.-lunet%.image_probe: ", "")
          if why:find("built without", 1, true) then error(("%s: %s"):format(fname, why), 0) end
          if not opts.skip_bad then
            error(("%s: %s (pass skip_bad = true to leave such files out)"):format(fname, why), 0)
          end
          skipped[#skipped + 1] = why
        end
      end
    end
  end
  if #paths == 0 then
    error(("%s: no readable JPEG or PNG files under %s (%d skipped, %d with other extensions); %s")
      :format(fname, root, #skipped, ignored, IMAGE_FOLDER_HOWTO), 0)
  end
  local self = setmetatable({
    paths = paths,
    labels = core.tensor(labels, { dtype = "int32" }),
    classes = classes,
    root = root,
    split = opts.split,
    size = { size[1], size[2] },
    threads = threads,
    skip_bad = opts.skip_bad and true or false,
    skipped = #skipped,
    skipped_files = skipped,
    ignored = ignored,
    formats = formats,
    name = "image folder " .. (opts.root:gsub("/+$", ""):match("([^/]+)$") or opts.root)
      .. (opts.split and ("/" .. opts.split) or ""),
  }, ImageFolder)
  if opts.preload then
    local images, bad = decode_all(self, fname)
    self.images = images
    self.bad_images = bad
  end
  return self
end

datasets.FASHION_MNIST_CLASSES = FASHION_CLASSES
datasets.CIFAR10_CLASSES = CIFAR_CLASSES

return datasets
