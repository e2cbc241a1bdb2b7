-- Hostile input (issue 19): the second bad-input battery. The cases live in
-- spec/hostile_input_cases.lua and run, as spec/40-bad_input_spec.lua's do,
-- in one child lua5.4, here under a timeout: a case that blocks (a named
-- pipe opened for reading) or crashes fails with its name instead of
-- hanging or killing busted. Each case is then reported as its own test.
local helpers = require("helpers")

local TIMEOUT_S = 120

local RUNNER = [[
local cases = require("hostile_input_cases")
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
local root = assert(io.popen("mktemp -d")):read("l")
local function one_line(s) return (tostring(s):gsub("[\r\n]", " ")) end
local function rss_mib()
  local f = assert(io.open("/proc/self/status"))
  local kib = f:read("a"):match("VmHWM:%s*(%d+)")
  f:close()
  return tonumber(kib) // 1024
end
for i, c in ipairs(cases) do
  io.stdout:write("BEGIN\t", i, "\n")
  io.stdout:flush()
  local dir = root .. "/" .. i
  assert(os.execute("mkdir " .. sh(dir)))
  local ctx = { dir = dir, rss_mib = rss_mib }
  function ctx.write(name, bytes)
    local path = dir .. "/" .. name
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
    return path
  end
  function ctx.fifo(name)
    local path = dir .. "/" .. name
    assert(os.execute("mkfifo " .. sh(path)))
    return path
  end
  function ctx.sparse(name, bytes)
    local path = dir .. "/" .. name
    assert(os.execute(("truncate -s %d %s"):format(bytes, sh(path))))
    return path
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
  os.execute("rm -rf " .. sh(dir))
  collectgarbage()
end
os.execute("rm -rf " .. sh(root))
io.stdout:write("DONE\n")
]]

local cases = require("hostile_input_cases")

local report
local function results()
  if report then return report end
  local ok, out, code = helpers.run_child(helpers.checkout_paths() .. RUNNER,
    { prefix = ("timeout -s KILL %d"):format(TIMEOUT_S) })
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

describe("hostile input", function()
  for i, c in ipairs(cases) do
    it(("%s: %s"):format(c.class, c.what), function()
      local r = results()
      local got = r.by_case[i]
      if not got then
        local tail = r.out:sub(-1500)
        if r.crashed_in == i then
          error(("the child process died or blocked in this case (exit %s):\n%s"):format(tostring(r.code), tail), 0)
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
    assert(r.ok, ("the child process exited with %s:\n%s"):format(tostring(r.code), r.out:sub(-2000)))
  end)

  it("lunet.save stops at the first write error (a full disk), not at the end of the walk", function()
    local dir = helpers.tmpdir()
    -- with the walk going on after the failed write, the function at [2]
    -- would be reported instead of the full disk
    local ok, out = helpers.run_child(helpers.checkout_paths() .. ([[
      local lunet = require("lunet")
      local ok, err = pcall(lunet.save, { lunet.ones({ 100000 }), print }, %q)
      print(err)
    ]]):format(dir .. "/x.lunet"), { prefix = "trap '' XFSZ; ulimit -f 16;" })
    helpers.rmdir(dir)
    assert(ok, out)
    assert(out:find("lunet.save: could not write", 1, true), out)
    assert(not out:find("cannot save a function", 1, true), out)
  end)

  it("the session scripts turn --threads 5000 into an option error, not a stack trace", function()
    for _, script in ipairs({ "gpu_vs_cpu.lua", "batch_sweep.lua" }) do
      local code, out = helpers.run_script(script, "--threads 5000 --devices cpu")
      assert(code ~= 0, out)
      assert(out:find("--threads", 1, true) and out:find("5000", 1, true), out)
      assert(not out:find("stack traceback", 1, true), out)
    end
  end)
end)
