--- A short training run for valgrind's memcheck (scripts/check): the seed
-- model (models.fashion_alexnet) trained 20 steps of 16 images with Adam,
-- then an evaluation pass with accuracy, a checkpoint saved and loaded back,
-- and every tensor released at the end (lua_close runs the finalizers), so
-- memcheck sees every allocation lunet made and every byte it touched.
-- Fashion-MNIST's test split when it is installed, else random images.
--   valgrind ... lua5.4 tools/valgrind/train_short.lua [steps]
local lunet = require("lunet")
local steps = tonumber(arg and arg[1]) or 20
local batch = 16

lunet.set_num_threads(2)
lunet.manual_seed(1)
local ok, dataset = pcall(lunet.datasets.fashion_mnist, { split = "test" })
if not ok then
  local n = 256
  local images = lunet.rand({ n, 1, 28, 28 }) * 255
  dataset = { images = images:to("uint8"), labels = (lunet.rand({ n }) * 10):to("int32") + 1 }
  images:free()
  print("Fashion-MNIST not installed: random images")
end
local loader = lunet.data.DataLoader(dataset, { batch_size = batch, shuffle = true, seed = 2 })
local model = lunet.models.fashion_alexnet()
local criterion = lunet.nn.CrossEntropyLoss()
local optimizer = lunet.optim.Adam(model, { lr = 1e-3 })

model:train()
local done, first, last = 0, nil, nil
for x, y in loader:iter() do
  optimizer:zero_grad()
  local out = model:forward(x)
  local loss = criterion:forward(out, y)
  model:backward(x, criterion:backward(out, y))
  optimizer:step()
  first, last = first or loss, loss
  done = done + 1
  if done == steps then break end
end
assert(done == steps and last == last, "training did not run")

model:eval()
local correct, total = 0, 0
for x, y, b in loader:iter(1) do
  local predicted = model:forward(x):argmax(2)
  correct = correct + predicted:eq(y):sum()
  total = total + x:size(1)
  if b == 4 then break end
end

local path = os.tmpname()
lunet.save(model, path) -- the whole module: architecture and state
local back = lunet.load(path)
lunet.save(back:state_dict(), path) -- a state dict, loaded into a new model
lunet.models.fashion_alexnet():load_state_dict(lunet.load(path))
os.remove(path)
loader:free()
print(("valgrind run: %d steps, loss %.4f -> %.4f, accuracy %d/%d"):format(done, first, last, correct, total))
