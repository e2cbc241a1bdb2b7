--- lunet.models: ready-made networks.
local nn = require("lunet.nn")

local models = {}

--- The small AlexNet of the GPU-vs-CPU session, for 1x28x28 images
-- (Fashion-MNIST): two 3x3 convolutions with ReLU and 2x2 max pooling, then
-- two fully connected layers. About 3.3 million parameters.
function models.fashion_alexnet(num_classes)
  num_classes = num_classes or 10
  if math.type(num_classes) ~= "integer" or num_classes < 1 then
    error(("lunet.models.fashion_alexnet: num_classes must be a positive integer, got %s")
      :format(tostring(num_classes)), 2)
  end
  return nn.Sequential(
    nn.Conv2d(1, 64, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(64, 128, 3, { padding = 1 }), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(),
    nn.Linear(128 * 7 * 7, 512), nn.ReLU(),
    nn.Linear(512, num_classes))
end

return models
