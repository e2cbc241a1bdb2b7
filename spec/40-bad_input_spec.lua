-- Bad input, systematically: every function of API.md called the wrong way
-- (types and counts of arguments, shapes and dtypes, indices and labels out
-- of range, absurd sizes, freed tensors, tensors on different devices, a
-- module used before forward, bad optimizer settings, missing and damaged
-- dataset and checkpoint files, unwritable paths) must raise a Lua error
-- whose message names the function and the problem.
--
-- The cases live in spec/bad_input_cases.lua. They all run in one child
-- lua5.4 process, so a case that crashed the process fails the spec with
-- its name instead of killing busted; each case is then reported as its own
-- test. The last test checks that every API.md function has cases.
local helpers = require("helpers")

-- Every function and method of API.md, as the cases name them.
local API = {
  -- Module
  "lunet.manual_seed", "lunet.clock", "lunet.set_num_threads", "lunet.get_num_threads",
  -- Devices
  "lunet.device", "lunet.devices", "lunet.cuda_available", "lunet.Device",
  "lunet.Device:synchronize", "lunet.Device:info",
  -- Tensors
  "lunet.tensor", "lunet.empty", "lunet.zeros", "lunet.ones", "lunet.full", "lunet.rand",
  "lunet.randn", "Tensor:shape", "Tensor:size", "Tensor:dim", "Tensor:numel", "Tensor:dtype",
  "Tensor:device", "Tensor:to", "Tensor:reshape", "Tensor:narrow", "Tensor:clone", "Tensor:copy",
  "Tensor:fill", "Tensor:zero", "Tensor:get", "Tensor:set", "Tensor:totable", "Tensor:sum",
  "Tensor:mean", "Tensor:max", "Tensor:min", "Tensor:argmax", "Tensor:eq", "Tensor:add (+)",
  "Tensor:sub (-)", "Tensor:mul (*)", "Tensor:div (/)", "Tensor:neg (unary -)", "lunet.matmul",
  "tostring(tensor)", "Tensor:free",
  -- nn
  "m:forward", "m:backward", "m:parameters", "m:zero_grad", "m:train", "m:eval", "m:to",
  "m:state_dict", "m:load_state_dict", "nn.Sequential", "Sequential:add", "#seq and seq[i]",
  "nn.Linear", "nn.Conv2d", "nn.MaxPool2d", "nn.AvgPool2d", "nn.Dropout", "nn.BatchNorm2d",
  -- optim
  "optim.SGD", "optim.Adam", "opt:step", "opt:zero_grad", "optim.AdamW", "optim.clip_grad_norm",
  "m:flat_parameters", "crit:forward_tensor",
  -- data
  "datasets.fashion_mnist", "datasets.cifar10", "data.DataLoader", "#loader", "loader:iter",
  -- serialization
  "lunet.save", "lunet.load",
}
-- Modules whose mistakes show in forward and backward (their constructors
-- take nothing that could be wrong): each needs cases of both.
local LAYERS_WITHOUT_ARGUMENTS = { "ReLU", "Flatten", "CrossEntropyLoss" }
-- Exported beyond API.md, covered too.
local EXTRAS = { "lunet.read_idx", "lunet.read_cifar", "lunet.randperm", "lunet.gather_rows",
  "models.fashion_alexnet" }
-- Issue 17's data and training additions (spec/bad_input_cases_data.lua).
local DATA_API = { "transforms.RandomCrop", "transforms.RandomHorizontalFlip", "transforms.Normalize",
  "DataLoader transform=", "datasets.image_folder", "lunet.image_load", "lunet.image_probe",
  "lunet.image_write", "lunet.list_dir", "optim.StepLR", "optim.CosineAnnealingLR", "optim.OneCycleLR",
  "sched:step", "nn.AdaptiveAvgPool2d", "nn.Residual", "models.cifar_resnet", "models.alexnet" }
for _, name in ipairs(DATA_API) do EXTRAS[#EXTRAS + 1] = name end

local RUNNER = [[
local lunet = require("lunet")
local cases = require("bad_input_cases")
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local root = assert(io.popen("mktemp -d")):read("l")
local function one_line(s) return (tostring(s):gsub("[\r\n]", " ")) end
for i, c in ipairs(cases) do
  io.stdout:write("BEGIN\t", i, "\n")
  io.stdout:flush()
  local dir = root .. "/" .. i
  assert(os.execute("mkdir " .. sh(dir)))
  local ctx = { dir = dir }
  function ctx.write(name, bytes)
    local path = dir .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
    return path
  end
  function ctx.idx(dims, payload)
    local n = 1
    for _, d in ipairs(dims) do n = n * d end
    local parts = { string.char(0, 0, 8, #dims) }
    for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
    parts[#parts + 1] = payload or ("\0"):rep(n)
    return table.concat(parts)
  end
  function ctx.freed()
    local t = lunet.ones({ 2, 5 })
    t:free()
    return t
  end
  local results = table.pack(pcall(c.run, ctx))
  local verdict, detail
  if c.ok then
    if not results[1] then
      verdict, detail = "FAIL", "raised: " .. one_line(results[2])
    else
      local checked, why = pcall(c.check or function() end, table.unpack(results, 2, results.n))
      verdict, detail = checked and "PASS" or "FAIL", checked and "ok" or ("check failed: " .. one_line(why))
    end
  elseif results[1] then
    verdict, detail = "FAIL", "no error was raised"
  else
    local msg = results[2]
    if type(msg) ~= "string" then
      verdict, detail = "FAIL", "the error is a " .. type(msg) .. ", not a message"
    else
      verdict, detail = "PASS", one_line(msg)
      for _, fragment in ipairs(c.expect) do
        if not msg:find(fragment, 1, true) then
          verdict, detail = "FAIL", ("message %q lacks %q"):format(one_line(msg), fragment)
          break
        end
      end
    end
  end
  io.stdout:write("RESULT\t", i, "\t", verdict, "\t", detail, "\n")
  io.stdout:flush()
  collectgarbage()
end
os.execute("rm -rf " .. sh(root))
io.stdout:write("DONE\n")
]]

local cases = require("bad_input_cases")

-- The child's report, run once, on first need.
local report
local function results()
  if report then return report end
  local ok, out, code = helpers.run_child(helpers.checkout_paths() .. RUNNER)
  report = { ok = ok, out = out, code = code, by_case = {}, done = out:find("\nDONE\n", 1, true) ~= nil }
  local last_begun
  for line in out:gmatch("[^\n]+") do
    local begun = line:match("^BEGIN\t(%d+)$")
    if begun then last_begun = tonumber(begun) end
    local i, verdict, detail = line:match("^RESULT\t(%d+)\t(%u+)\t(.*)$")
    if i then report.by_case[tonumber(i)] = { verdict = verdict, detail = detail } end
  end
  report.crashed_in = (not report.done) and last_begun or nil
  return report
end

describe("bad input", function()
  for i, c in ipairs(cases) do
    it(("%s: %s"):format(c.api, c.what), function()
      local r = results()
      local got = r.by_case[i]
      if not got then
        local tail = r.out:sub(-1500)
        if r.crashed_in == i then
          error(("the child process died in this case (exit %s):\n%s"):format(tostring(r.code), tail), 0)
        end
        error(("no result: the child process died earlier, in case %s (exit %s):\n%s")
          :format(tostring(r.crashed_in), tostring(r.code), tail), 0)
      end
      assert(got.verdict == "PASS", got.detail)
    end)
  end

  it("the child process ran every case and exited cleanly", function()
    local r = results()
    assert(r.done, "the child process did not finish:\n" .. r.out:sub(-2000))
    assert(r.ok, ("the child process exited with %s (a sanitizer report?):\n%s")
      :format(tostring(r.code), r.out:sub(-2000)))
  end)

  it("covers every function of API.md, and every layer's forward and backward", function()
    local count = {}
    for _, c in ipairs(cases) do count[c.api] = (count[c.api] or 0) + 1 end
    local missing, known = {}, {}
    for _, name in ipairs(API) do
      known[name] = true
      if not count[name] then missing[#missing + 1] = name end
    end
    for _, name in ipairs(EXTRAS) do
      known[name] = true
      if not count[name] then missing[#missing + 1] = name end
    end
    assert(#missing == 0, "no bad-input case for: " .. table.concat(missing, ", "))
    for _, c in ipairs(cases) do
      assert(known[c.api], ("case %q names %q, which is not in the API list"):format(c.what, c.api))
    end
    -- every module class: its forward and its backward are each misused
    local classes = { "Linear", "Conv2d", "MaxPool2d", "AvgPool2d", "BatchNorm2d", "Dropout",
      "Sequential", table.unpack(LAYERS_WITHOUT_ARGUMENTS) }
    for _, class in ipairs(classes) do
      for _, method in ipairs({ "forward", "backward" }) do
        local needle, found = "lunet.nn." .. class .. ":" .. method, false
        for _, c in ipairs(cases) do
          for _, fragment in ipairs(c.expect or {}) do
            if fragment == needle then found = true end
          end
        end
        assert(found, "no bad-input case for " .. needle)
      end
    end
  end)
end)
