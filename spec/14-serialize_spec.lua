-- lunet.save / lunet.load (API.md, Serialization): round trips of tensors,
-- tables and modules' state dicts; values that cannot be saved; atomic
-- saves; and damaged, truncated, foreign and forged files, which must give
-- clear errors and never crash (the format is csrc/io/checkpoint.h).
local lunet = require("lunet")
local helpers = require("helpers")
local nn = lunet.nn

local MAGIC = "\x89LUNET\r\n"

local function read_file(path) return (assert(helpers.read_file(path), "cannot read " .. path)) end
local write_file = helpers.write_file

local list_dir = helpers.list_dir

-- CRC-32 (zlib's), to forge files whose checksum is right but whose
-- structure lies: the parser must not rely on the checksum.
local CRC_CODE = [[
local function crc32(s)
  local crc = 0xFFFFFFFF
  for i = 1, #s do
    crc = crc ~ s:byte(i)
    for _ = 1, 8 do crc = (crc >> 1) ~ (0xEDB88320 & -(crc & 1)) end
  end
  return (~crc) & 0xFFFFFFFF
end
local function checkpoint(body, version)
  return "\x89LUNET\r\n" .. string.pack("<I4I4I8", version or 1, crc32(body), #body) .. body
end
return crc32, checkpoint
]]
local _, checkpoint = load(CRC_CODE)()

-- body encoders (see checkpoint.h)
local function str(s) return string.pack("<BI4", 5, #s) .. s end
local function int(i) return string.pack("<Bi8", 3, i) end
local function tbl(n) return string.pack("<BI4", 6, n) end

describe("lunet.save and lunet.load", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("round-trip tensors of every dtype and shape, numbers, strings, booleans and nested tables", function()
    local path = dir .. "/all.lunet"
    local value = {
      f32 = lunet.randn({ 3, 4 }), i32 = lunet.tensor({ -5, 0, 2147483647 }, { dtype = "int32" }),
      u8 = lunet.tensor({ { 0, 255 }, { 7, 9 } }, { dtype = "uint8" }),
      f16 = lunet.tensor({ 1.5, -2, 65504 }, { dtype = "float16" }),
      bf16 = lunet.tensor({ 3, -0.25 }, { dtype = "bfloat16" }),
      scalar = lunet.tensor(3.5), empty = lunet.zeros({ 0, 3 }),
      strided = lunet.randn({ 4, 6 }):narrow(2, 2, 3),
      on_ref = lunet.randn({ 5 }, { device = "ref" }),
      integer = 9007199254740993, float = 0.1, negative = -42, inf = math.huge, nan = 0 / 0,
      text = "a\0b\255\n", empty_string = "", yes = true, no = false,
      list = { 10, 20, { "x", { deep = true } } }, empty_table = {},
      [7] = "integer key", [-3] = "negative key",
    }
    lunet.save(value, path)
    local back = lunet.load(path)
    for _, name in ipairs({ "f32", "i32", "u8", "f16", "bf16", "scalar", "empty", "strided", "on_ref" }) do
      local a, b = back[name], value[name]
      assert.is_true(lunet.is_tensor(a), name)
      assert.equal("cpu", tostring(a:device()), name)
      assert.equal(b:dtype(), a:dtype(), name)
      assert.same(b:shape(), a:shape(), name)
      assert.same(b:to("cpu"):totable(), a:totable(), name)
    end
    assert.equal(9007199254740993, back.integer)
    assert.equal("integer", math.type(back.integer))
    assert.equal("float", math.type(back.float))
    assert.equal(0.1, back.float)
    assert.equal(-42, back.negative)
    assert.equal(math.huge, back.inf)
    assert.is_true(back.nan ~= back.nan)
    assert.equal("a\0b\255\n", back.text)
    assert.equal("", back.empty_string)
    assert.is_true(back.yes)
    assert.is_false(back.no)
    assert.same({ 10, 20, { "x", { deep = true } } }, back.list)
    assert.same({}, back.empty_table)
    assert.equal("integer key", back[7])
    assert.equal("negative key", back[-3])
    local raw = read_file(path)
    assert.equal(MAGIC, raw:sub(1, 8))
    assert.equal(1, string.unpack("<I4", raw, 9))
    -- a lone tensor and a lone number are values too
    lunet.save(lunet.ones({ 2 }), path)
    assert.same({ 1, 1 }, lunet.load(path):totable())
    lunet.save(12, path)
    assert.equal(12, lunet.load(path))
  end)

  it("the seed model's state survives a round trip: identical outputs", function()
    local path = dir .. "/seed.lunet"
    lunet.manual_seed(41)
    local model = lunet.models.fashion_alexnet()
    local x = lunet.rand({ 3, 1, 28, 28 })
    local expected = model:forward(x):clone()
    lunet.save(model:state_dict(), path) -- a state dict stays a table
    lunet.manual_seed(42)
    local fresh = lunet.models.fashion_alexnet()
    assert.is_true(helpers.max_abs_diff(fresh:forward(x), expected) > 0)
    local state = lunet.load(path)
    assert.is_nil(getmetatable(state))
    assert.is_true(lunet.is_tensor(state["8.weight"]))
    fresh:load_state_dict(state)
    helpers.assert_close(fresh:forward(x), expected, 0, 0, "outputs after loading")
    -- a model trained on another device loads the same way
    fresh:to("ref")
    lunet.save(fresh:state_dict(), path)
    local back = lunet.models.fashion_alexnet():load_state_dict(lunet.load(path))
    helpers.assert_close(back:forward(x), expected, 0, 0, "outputs after a ref -> cpu round trip")
  end)

  it("batch-norm buffers and plain tables of state dicts round-trip", function()
    local path = dir .. "/bn.lunet"
    local bn = nn.BatchNorm2d(3)
    bn:forward(lunet.randn({ 4, 3, 2, 2 }))
    lunet.save({ model = bn:state_dict(), epoch = 3, note = "after one batch" }, path)
    local back = lunet.load(path)
    assert.equal(3, back.epoch)
    local other = nn.BatchNorm2d(3):load_state_dict(back.model)
    helpers.assert_close(other.running_mean, bn.running_mean, 0, 0)
    helpers.assert_close(other.running_var, bn.running_var, 0, 0)
  end)

  it("refuses values that are not data, naming where they are", function()
    local path = dir .. "/bad.lunet"
    local cyclic = { a = 1 }
    cyclic.self = cyclic
    local freed = lunet.zeros({ 2 })
    freed:free()
    local deep = {}
    local cur = deep
    for _ = 1, 70 do cur.next = {}; cur = cur.next end
    local shared = { 1, 2 }
    for _, case in ipairs({
      { { f = print }, 'lunet.save: value["f"]: cannot save a function' },
      { cyclic, 'value["self"]: the table contains itself (a cycle)' },
      { { layers = { nn.Linear(2, 2) } }, 'value["layers"][1]: cannot save a table with a metatable',
        "save model:state_dict() instead" },
      { { dev = lunet.device("cpu") }, "cannot save a userdata that is not a lunet tensor" },
      { { t = freed }, 'value["t"]: cannot save a freed tensor' },
      { { [1.5] = "x" }, "table keys must be strings or integers, got a non-integer number key" },
      { { [true] = "x" }, "table keys must be strings or integers, got a boolean key" },
      { deep, "tables nest deeper than 64 levels" },
      { { co = coroutine.create(print) }, "cannot save a thread" },
    }) do
      helpers.assert_error(function() lunet.save(case[1], path) end, table.unpack(case, 2))
    end
    helpers.assert_error(function() lunet.save(nil, path) end, "lunet.save: argument #1: expected the value to save, got nil")
    helpers.assert_error(function() lunet.save({}, 42) end, "argument #2: expected a file path, got number")
    helpers.assert_error(function() lunet.save({}, dir .. "/missing/dir/x.lunet") end,
      "lunet.save: cannot create a file beside '" .. dir .. "/missing/dir/x.lunet'")
    assert.same({}, list_dir(dir), "no file and no temporary file is left behind")
    lunet.save({ a = shared, b = shared }, path) -- shared, not cyclic: fine
    assert.same({ 1, 2 }, lunet.load(path).b)
  end)

  it("is atomic: a failed save leaves an existing file as it was", function()
    local path = dir .. "/model.lunet"
    lunet.save({ weight = lunet.ones({ 100 }) }, path)
    local before = read_file(path)
    local bad = { a = lunet.randn({ 1000 }), b = { c = lunet.randn({ 1000 }), d = print }, e = lunet.randn({ 10 }) }
    helpers.assert_error(function() lunet.save(bad, path) end, "cannot save a function")
    assert.equal(before, read_file(path))
    assert.same({ "model.lunet" }, list_dir(dir))
    -- and a successful save replaces it whole
    lunet.save({ weight = lunet.zeros({ 3 }) }, path)
    assert.same({ 0, 0, 0 }, lunet.load(path).weight:totable())
    assert.same({ "model.lunet" }, list_dir(dir))
  end)

  it("reports missing, foreign, truncated and damaged files clearly", function()
    local path = dir .. "/x.lunet"
    helpers.assert_error(function() lunet.load(dir .. "/nope.lunet") end,
      "lunet.load: cannot open '" .. dir .. "/nope.lunet'", "No such file")
    helpers.assert_error(function() lunet.load(dir) end, "is not a regular file")
    helpers.assert_error(function() lunet.load(42) end, "lunet.load: argument #1: expected a file path")
    write_file(path, "")
    helpers.assert_error(function() lunet.load(path) end, "not a lunet checkpoint")
    write_file(path, "weight,bias\n1,2\n")
    helpers.assert_error(function() lunet.load(path) end, "not a lunet checkpoint")

    lunet.save({ w = lunet.randn({ 4, 5 }), name = "net", n = 3 }, path)
    local good = read_file(path)
    write_file(path, good:sub(1, 20))
    helpers.assert_error(function() lunet.load(path) end, "truncated checkpoint: 20 bytes, shorter than the 24-byte header")
    write_file(path, good:sub(1, #good - 1))
    helpers.assert_error(function() lunet.load(path) end, "truncated checkpoint: the header announces")
    write_file(path, good .. "extra")
    helpers.assert_error(function() lunet.load(path) end, "damaged checkpoint: 5 unexpected bytes after the")
    local flipped = good:sub(1, 40) .. string.char(good:byte(41) ~ 0x10) .. good:sub(42)
    write_file(path, flipped)
    helpers.assert_error(function() lunet.load(path) end, "damaged checkpoint: the data does not match its checksum")
    write_file(path, good:sub(1, 8) .. string.pack("<I4", 3) .. good:sub(13))
    helpers.assert_error(function() lunet.load(path) end, "checkpoint format version 3 is not supported (this lunet reads versions 1 to 2)")
    -- every truncation fails cleanly
    for len = 0, #good - 1 do
      write_file(path, good:sub(1, len))
      local ok = pcall(lunet.load, path)
      assert.is_false(ok, "a file cut to " .. len .. " bytes was accepted")
    end
  end)

  it("checks the structure even when the checksum is right", function()
    local path = dir .. "/forged.lunet"
    local function load_body(body)
      write_file(path, checkpoint(body))
      return function() lunet.load(path) end
    end
    assert.same({ a = 5 }, (function()
      write_file(path, checkpoint(tbl(1) .. str("a") .. int(5)))
      return lunet.load(path)
    end)())
    helpers.assert_error(load_body(tbl(1000000) .. str("a") .. int(5)), "table at byte 24 claims 1000000 entries")
    helpers.assert_error(load_body(string.pack("<B", 9)), "unknown value tag 0x09 at byte 24")
    helpers.assert_error(load_body(tbl(1) .. string.pack("<B", 2) .. int(1)),
      "table key at byte 29 is neither a string nor an integer")
    helpers.assert_error(load_body(tbl(2) .. str("a") .. int(1) .. str("a") .. int(2)), "a table holds the key a twice")
    helpers.assert_error(load_body(string.pack("<BBB", 7, 9, 1) .. string.pack("<i8I8", 1, 4)),
      "tensor at byte 24 has unknown dtype code 9")
    helpers.assert_error(load_body(string.pack("<BBB", 7, 0, 9)), "has 9 dimensions (at most 8)")
    helpers.assert_error(load_body(string.pack("<BBBi8I8", 7, 0, 1, 3, 8) .. string.rep("\0", 8)),
      "tensor at byte 24 declares 8 bytes of data, its shape needs 12")
    helpers.assert_error(load_body(string.pack("<BBBi8", 7, 0, 1, -1)), "negative size in dimension 1")
    helpers.assert_error(load_body(string.pack("<BBBi8i8I8", 7, 0, 2, 1 << 40, 1 << 40, 0)), "is too large")
    helpers.assert_error(load_body(string.pack("<BBBi8I8", 7, 0, 1, 1000, 4000)), "a tensor's data at byte 43 needs 4000 bytes")
    helpers.assert_error(load_body(string.pack("<BI4", 5, 100) .. "abc"), "a string at byte 29 needs 100 bytes")
    helpers.assert_error(load_body(int(1) .. int(2)), "bytes left over after the value")
    helpers.assert_error(load_body(string.rep(tbl(1) .. int(1), 70) .. int(0)), "tables nest deeper than 64 levels")
    helpers.assert_error(load_body(""), "a value's tag at byte 24 needs 1 bytes, only 0 are left")
  end)

  it("survives random damage with a valid checksum (a small fuzz run, in a child process)", function()
    local path = dir .. "/fuzz.lunet"
    lunet.save({ w = lunet.randn({ 3, 2 }), b = lunet.tensor({ 1, 2 }, { dtype = "int32" }), name = "m",
      list = { 1, 2.5, true, { x = "y" } } }, path)
    local code = "local crc32, checkpoint = load([==[" .. CRC_CODE .. "]==])()\n" .. ([[
      local lunet = require("lunet")
      local f = assert(io.open(%q, "rb")); local good = f:read("a"); f:close()
      local body = good:sub(25)
      local seed, accepted, refused = 12345, 0, 0
      local function rand(n) seed = (seed * 1103515245 + 12345) %% 2147483648; return seed %% n end
      for trial = 1, 400 do
        local b = { body:byte(1, -1) }
        for _ = 1, 1 + rand(3) do
          local i = 1 + rand(#b)
          local kind = rand(3)
          if kind == 0 then b[i] = rand(256)
          elseif kind == 1 then b[i] = b[i] ~ (1 << rand(8))
          else b[i] = ({0, 1, 255, 127, 128})[1 + rand(5)] end
        end
        local mutated = string.char(table.unpack(b))
        if rand(4) == 0 then mutated = mutated:sub(1, rand(#mutated)) end
        local out = assert(io.open(%q, "wb")); out:write(checkpoint(mutated)); out:close()
        local ok, err = pcall(lunet.load, %q)
        if ok then accepted = accepted + 1 else
          assert(tostring(err):find("lunet.load", 1, true), err)
          refused = refused + 1
        end
      end
      print("accepted " .. accepted .. " refused " .. refused)
    ]]):format(path, path .. ".m", path .. ".m")
    local ok, out = helpers.run_child(code)
    assert.is_true(ok, out)
    assert.matches("accepted %d+ refused %d+", out)
    assert.is_true(tonumber(out:match("refused (%d+)")) > 100, out)
  end)
end)

describe("lunet.save of a module (architecture and state)", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("gives a working module back: same class, same outputs, same modes and settings", function()
    local path = dir .. "/alexnet.lunet"
    lunet.manual_seed(7)
    local model = lunet.models.fashion_alexnet()
    model:forward(lunet.rand({ 4, 1, 28, 28 })) -- batch-norm statistics move, if any
    model:eval()
    local x = lunet.rand({ 3, 1, 28, 28 })
    local expected = model:forward(x):clone()
    lunet.save(model, path)
    lunet.manual_seed(8) -- loading must not depend on the generator
    local back = lunet.load(path)
    assert.is_true(nn.is_module(back))
    assert.equal(getmetatable(model), getmetatable(back))
    assert.equal(#model, #back)
    for i = 1, #model do assert.equal(model[i].__typename, back[i].__typename) end
    assert.is_false(back.training)
    assert.equal(tostring(model), tostring(back))
    helpers.assert_close(back:forward(x), expected, 0, 0, "outputs of the loaded module")
    -- and it trains: backward and an optimizer step work
    back:train()
    local y = back:forward(x)
    back:backward(x, lunet.ones(y:shape()))
    lunet.optim.SGD(back, { lr = 0.01 }):step()
  end)

  it("keeps modules added later, nested containers, shared modules and changed settings", function()
    local path = dir .. "/m.lunet"
    local shared = nn.Linear(4, 4)
    local model = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), shared, nn.Dropout(0.5), shared)
    model:add(nn.Linear(4, 2, { bias = false }))
    model[3].p = 0.25
    model.fuse = false
    model:eval()
    local x = lunet.rand({ 5, 3 })
    local expected = model:forward(x):clone()
    model:to("ref") -- saved from another device, loaded on the CPU
    lunet.save(model, path)
    local back = lunet.load(path)
    assert.equal(5, #back)
    assert.equal("Sequential", back[1].__typename)
    assert.equal(back[2], back[4], "a module used twice is one module again")
    assert.equal(0.25, back[3].p)
    assert.is_false(back.fuse)
    assert.is_nil(back[5].bias)
    assert.equal("cpu", tostring(back[5].weight:device()))
    helpers.assert_close(back:forward(x), expected, 1e-6, 1e-6, "outputs")
  end)

  it("saves nested modules given as constructor arguments (nn.Residual)", function()
    if not nn.Residual then
      pending("nn.Residual is not in this lunet yet")
      return
    end
    local path = dir .. "/res.lunet"
    local model = nn.Sequential(nn.Conv2d(2, 2, 3, { padding = 1 }),
      nn.Residual(nn.Sequential(nn.Conv2d(2, 2, 3, { padding = 1 }), nn.ReLU())))
    local x = lunet.rand({ 2, 2, 5, 5 })
    local expected = model:forward(x):clone()
    lunet.save(model, path)
    local back = lunet.load(path)
    assert.equal("Residual", back[2].__typename)
    helpers.assert_close(back:forward(x), expected, 0, 0, "outputs")
  end)

  it("refuses what it cannot rebuild, and damaged or unknown architectures", function()
    local path = dir .. "/bad.lunet"
    local odd = setmetatable({ training = true }, nn.ReLU) -- not built by calling nn.ReLU
    helpers.assert_error(function() lunet.save(nn.Sequential(nn.Linear(2, 2), odd), path) end,
      "lunet.save: model[2]: this nn.ReLU was not built by calling nn.ReLU(...)", "save model:state_dict() instead")
    local later = nn.Linear(2, 2)
    later.helper = nn.ReLU()
    helpers.assert_error(function() lunet.save(later, path) end,
      "lunet.save: model.helper: a module set after construction cannot be saved")

    lunet.save(nn.Sequential(nn.Linear(2, 3), nn.ReLU()), path)
    local core = require("lunet.core")
    local function tamper(edit)
      local raw = core.checkpoint_load(path)
      edit(raw)
      local bad = dir .. "/tampered.lunet"
      core.checkpoint_save(raw, bad)
      return bad
    end
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].type = "Transformer" end)) end,
      "lunet.load", "unknown module type nn.Transformer (this lunet has no such module)")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].type = "Conv2d" end)) end,
      "lunet.load", "cannot rebuild nn.Conv2d", "kernel")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].type = "is_module" end)) end,
      "lunet.load", "unknown module type nn.is_module")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].args.n = 1e9 end)) end,
      "lunet.load", "module 1 is damaged or missing")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.root = 99 end)) end,
      "lunet.load", "module 99 is damaged or missing")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].args[2] = "x" end)) end,
      "lunet.load", "cannot rebuild nn.Linear")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.modules[1].args[2] = 5 end)) end,
      "lunet.load", "the saved state does not fit the saved architecture", "this model needs [5]")
    helpers.assert_error(function() lunet.load(tamper(function(t) t.state["1.weight"] = nil end)) end,
      "lunet.load", "the saved state does not fit the saved architecture", "missing 1.weight")
    helpers.assert_error(function() lunet.load(tamper(function(t) t["lunet.module"] = 2 end)) end,
      "lunet.load", "this lunet reads format 1")
  end)

  it("still loads checkpoints written before (format 1, made by main a98ee06)", function()
    -- spec/fixtures/make_checkpoint_v1.lua wrote it: lunet.save(model) of
    -- Sequential(Linear(4, 3), ReLU, Linear(3, 2)), which then stored the
    -- state dict only
    local path = helpers.ROOT .. "/spec/fixtures/checkpoint_v1_main.lunet"
    assert.equal(1, string.unpack("<I4", read_file(path), 9))
    local state = lunet.load(path)
    assert.is_nil(getmetatable(state))
    assert.same({ "1.bias", "1.weight", "3.bias", "3.weight" }, (function()
      local k = {}
      for name in pairs(state) do k[#k + 1] = name end
      table.sort(k)
      return k
    end)())
    assert.near(0.111, state["1.weight"]:get(1, 1), 1e-7)
    local model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)):load_state_dict(state)
    local y = model:forward(lunet.tensor({ { 1, 2, 3, 4 }, { -1, 0.5, 2, -3 } }))
    helpers.assert_close(y, lunet.tensor({ { 0.86407995223999, 0.79497998952866 },
      { -0.10000000149012, -0.20000000298023 } }), 1e-6, 1e-7, "outputs with main's weights")
  end)
end)
