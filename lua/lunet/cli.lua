--- What the command-line scripts (lunet-gpu-vs-cpu, lunet-batch-sweep) share:
-- option converters whose messages name the option, the value and the
-- allowed range; negative numbers as option values; paths relative to the
-- caller's folder; telling a Ctrl-C from a device failure, and ending on one
-- with exit status 130.
local cli = {}

--- An argparse converter: an integer from `lo` to `hi` (hi optional).
-- `why_hi` says where the upper bound comes from ("the CPU threads here").
function cli.integer(what, lo, hi, why_hi)
  return function(s)
    local v = math.tointeger(tonumber(s))
    local range = hi and ("from %d to %d%s"):format(lo, hi, why_hi and (" (" .. why_hi .. ")") or "")
      or ("at least %d"):format(lo)
    if not v then return nil, ("%s must be an integer %s, got %q"):format(what, range, s) end
    if v < lo or (hi and v > hi) then
      return nil, ("%s must be %s%s, got %d"):format(what, hi and "an integer " or "", range, v)
    end
    return v
  end
end

--- An argparse converter: a finite number above 0.
function cli.positive_number(what)
  return function(s)
    local v = tonumber(s)
    if not v or v ~= v or v <= 0 or v == math.huge then
      return nil, ("%s must be a positive number (above 0), got %q"):format(what, s)
    end
    return v
  end
end

--- An argparse converter: one of the words in `list`.
function cli.one_of(what, list)
  local allowed = {}
  for _, v in ipairs(list) do allowed[v] = true end
  return function(s)
    if allowed[s] then return s end
    return nil, ("%s must be one of %s, got %q"):format(what, table.concat(list, ", "), s)
  end
end

--- `argv` with "--name -1" joined into "--name=-1": argparse takes a value
-- that starts with "-" for an option, and says "unknown option '-1'".
function cli.join_negative_values(argv)
  local out, i = {}, 1
  while i <= #argv do
    local a, b = argv[i], argv[i + 1]
    if type(a) == "string" and a:match("^%-%-[%w-]+$") and type(b) == "string"
        and (b:match("^%-%d") or b:match("^%-%.%d") or b:match("^%-inf") or b:match("^%-nan")) then
      out[#out + 1] = a .. "=" .. b
      i = i + 2
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end

--- The folder the user ran the command from.
function cli.cwd()
  local pwd = os.getenv("PWD")
  if pwd and pwd:sub(1, 1) == "/" then return pwd end
  local p = io.popen("pwd")
  local dir = p and p:read("l")
  if p then p:close() end
  return dir or "."
end

--- `path` made absolute against the caller's folder (nil stays nil).
function cli.absolute(path)
  if path == nil or path:sub(1, 1) == "/" then return path end
  local rel = path:gsub("^%./", "")
  if rel == "." or rel == "" then return cli.cwd() end
  return cli.cwd() .. "/" .. rel
end

--- The CPU threads this process may run on (nproc: affinity and cgroup
-- limits included), at least 1.
function cli.cpu_threads()
  local p = io.popen("nproc 2>/dev/null")
  local n = p and tonumber(p:read("l") or "")
  if p then p:close() end
  return math.max(1, math.tointeger(n) or 1)
end

--- Whether an error is the Lua interpreter's answer to SIGINT (Ctrl-C):
-- lua5.4 raises "interrupted!" at the next Lua instruction.
cli.is_interrupt = require("lunet.interrupt").is_interrupt

--- Runs a script's body, `body(guard)`: a Ctrl-C that reaches it -- while
-- the data loads, the model is built or the files are written, outside a loop
-- that handles Ctrl-C itself -- ends the script with one line and exit status
-- 130 instead of Lua's traceback; any other error ends it as lua5.4 would
-- (the message and a traceback, exit status 1). The body keeps guard.doing
-- ("loading the data") and guard.kept ("nothing was written") up to date for
-- that line; guard.tty: a progress line may be open. (A function, not a
-- to-be-closed variable: the scripts must parse under Lua 5.1 to say they
-- need 5.4.)
function cli.main(script, body)
  local guard = { doing = "starting", kept = "nothing was written" }
  local ok, err = xpcall(body, function(e)
    if cli.is_interrupt(e) then return e end
    return debug.traceback(tostring(e), 2)
  end, guard)
  if ok then return end
  if cli.is_interrupt(err) then
    if guard.tty then io.stdout:write("\n") end
    io.stdout:flush()
    io.stderr:write(("%s: interrupted (Ctrl-C) while %s: %s.\n"):format(script, guard.doing, guard.kept))
    os.exit(130)
  end
  io.stdout:flush()
  io.stderr:write(script, ": ", tostring(err), "\n")
  os.exit(1)
end

--- "1 pass", "3 passes": a count with the right form of its noun.
function cli.plural(n, singular, plural)
  -- JSON gives back 2 as 2.0: a count is written as an integer
  local shown = math.type(n) == "float" and math.tointeger(n) or n
  return ("%s %s"):format(tostring(shown), n == 1 and singular or (plural or singular .. "s"))
end

return cli
