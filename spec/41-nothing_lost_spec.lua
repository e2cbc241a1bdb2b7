-- Nothing lost: lunet.save and the session's report writer write to a
-- temporary file beside the target and rename it over the target at the end,
-- so a save that fails half-way -- a full disk, a value that cannot be
-- saved, a target that is a directory, a process killed mid-write -- leaves
-- the previous file whole, and (unless the process died) no temporary file.
-- A full disk is simulated with the file-size limit (ulimit -f) in a child
-- process that ignores SIGXFSZ, so writes fail with EFBIG as on a full disk;
-- a child that does not ignore it is killed mid-write instead.
local helpers = require("helpers")
local lunet = require("lunet")
local report = require("lunet.report")

local sh_quote, read, list_dir = helpers.sh_quote, helpers.read_file, helpers.list_dir

--- Runs Lua `code` in a child limited to `kib` KiB per file written;
-- `ignore_xfsz` makes writes past the limit fail instead of killing it.
local function run_limited(code, kib, ignore_xfsz)
  return helpers.run_child(code, {
    prefix = ("%sulimit -f %d;"):format(ignore_xfsz and "trap '' XFSZ; " or "", kib),
  })
end

local PATHS = helpers.checkout_paths()

describe("nothing lost", function()
  local dir
  before_each(function() dir = helpers.tmpdir() end)
  after_each(function() helpers.rmdir(dir) end)

  it("lunet.save on a full disk fails clearly and keeps the previous file", function()
    local path = dir .. "/model.lunet"
    lunet.save({ weight = lunet.ones({ 100 }) }, path)
    local before = read(path)
    local ok, out = run_limited(PATHS .. ([[
      local lunet = require("lunet")
      local ok, err = pcall(lunet.save, { weight = lunet.ones({ 1000000 }) }, %q)
      print("saved=" .. tostring(ok))
      print(err)
    ]]):format(path), 64, true)
    assert.is_true(ok, out)
    assert.truthy(out:find("saved=false", 1, true), out)
    assert.truthy(out:find("lunet.save: could not write '" .. path .. "': File too large", 1, true), out)
    assert.truthy(out:find("an existing '" .. path .. "' is unchanged", 1, true), out)
    assert.equal(before, read(path))
    assert.same({ "model.lunet" }, list_dir(dir))
    assert.equal(100, lunet.load(path).weight:sum())
  end)

  it("lunet.save killed mid-write leaves the previous file whole", function()
    local path = dir .. "/model.lunet"
    lunet.save({ weight = lunet.ones({ 100 }) }, path)
    local before = read(path)
    -- without the trap, the first write past the limit kills the process
    local ok, out = run_limited(PATHS .. ([[
      local lunet = require("lunet")
      lunet.save({ weight = lunet.ones({ 1000000 }) }, %q)
      print("survived")
    ]]):format(path), 64, false)
    assert.is_false(ok, out)
    assert.is_nil(out:find("survived", 1, true), out)
    assert.equal(before, read(path))
    -- the dead process could not clean up; what it left is recognisably a
    -- temporary file, never the target
    for _, name in ipairs(list_dir(dir)) do
      assert.truthy(name == "model.lunet" or name:match("^model%.lunet%.tmp%-%w+$"), name)
    end
  end)

  it("lunet.save failing half-way through a value keeps the previous file", function()
    local path = dir .. "/state.lunet"
    lunet.save({ step = 1 }, path)
    local before = read(path)
    -- a megabyte is streamed to the temporary file before the bad value is met
    local value = { a = lunet.rand({ 250000 }), b = { c = lunet.rand({ 10 }), d = coroutine.create(print) } }
    helpers.assert_error(function() lunet.save(value, path) end,
      "lunet.save: value[\"b\"][\"d\"]: cannot save a thread")
    assert.equal(before, read(path))
    assert.same({ "state.lunet" }, list_dir(dir))
  end)

  it("lunet.save over a directory fails and removes its temporary file", function()
    local target = dir .. "/out"
    assert(os.execute("mkdir " .. sh_quote(target)))
    helpers.assert_error(function() lunet.save({ 1 }, target) end,
      "lunet.save: cannot write '" .. target .. "'", "it is a directory")
    assert.same({ "out" }, list_dir(dir))
    assert.same({}, list_dir(target))
  end)

  it("the report writer on a full disk keeps the previous file", function()
    local path = dir .. "/results.json"
    report.write_file(path, "{\"old\": true}\n")
    local ok, out = run_limited(PATHS .. ([[
      local report = require("lunet.report")
      local ok, err = pcall(report.write_file, %q, string.rep("x", 200000))
      print("written=" .. tostring(ok))
      print(err)
    ]]):format(path), 64, true)
    assert.is_true(ok, out)
    assert.truthy(out:find("written=false", 1, true), out)
    assert.truthy(out:find("lunet.report: cannot write " .. path .. ": File too large", 1, true), out)
    assert.equal("{\"old\": true}\n", read(path))
    assert.same({ "results.json" }, list_dir(dir))
  end)

  it("the report writer given a value that is not text keeps the previous file", function()
    local path = dir .. "/report.md"
    report.write_file(path, "old\n")
    helpers.assert_error(function() report.write_file(path, { "not", "text" }) end,
      "lunet.report: cannot write " .. path)
    assert.equal("old\n", read(path))
    assert.same({ "report.md" }, list_dir(dir))
  end)

  it("the session on a full disk says so and keeps the previous results whole", function()
    if not helpers.have_fashion_mnist() then
      pending("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
      return
    end
    local out_dir = dir .. "/out"
    local args = "--devices cpu --epochs 1 --max-batches 1 --batch-size 8 --repeat 1 --out " .. sh_quote(out_dir)
    local function session(limit)
      return helpers.run_script("gpu_vs_cpu.lua", args, { env = limit })
    end
    local code, out = session()
    assert.equal(0, code, out)
    local names = list_dir(out_dir)
    local before = {}
    for _, name in ipairs(names) do before[name] = read(out_dir .. "/" .. name) end
    -- 2 KiB per file: the charts and results.json no longer fit
    code, out = session("trap '' XFSZ; ulimit -f 2;")
    assert.equal(1, code, out)
    assert.truthy(out:find("cannot write " .. out_dir .. "/", 1, true), out)
    assert.truthy(out:find("File too large", 1, true), out)
    assert.same(names, list_dir(out_dir))
    for _, name in ipairs(names) do
      local now = read(out_dir .. "/" .. name)
      -- each file is either the previous one or a complete new one
      assert.truthy(now == before[name] or #now < 2048, name)
    end
    assert.truthy(read(out_dir .. "/results.json"):find("\"schema\":", 1, true))
  end)
end)
