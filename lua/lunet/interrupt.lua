--- Ctrl-C in lunet's Lua code: recognising the interpreter's answer to
-- SIGINT, so that code which catches errors (pcall around a C reader, a
-- "skip bad files" loop) passes a Ctrl-C on instead of swallowing it; and a
-- test hook that holds a phase until a signal arrives, so a spec can send
-- SIGINT at a chosen moment without racing the clock.
local interrupt = {}
local reached = {} -- how many times each point was reached

--- Whether `err` is lua5.4's SIGINT error: its hook raises "interrupted!" at
-- the next Lua instruction or call (C calls included) after the signal.
function interrupt.is_interrupt(err)
  return tostring(err):find("interrupted!", 1, true) ~= nil
end

--- Raises `err` again, unchanged, when it is a Ctrl-C.
function interrupt.rethrow(err)
  if interrupt.is_interrupt(err) then error(err, 0) end
end

--- The test hook: when the environment variable LUNET_DEBUG_PAUSE names
-- `point` (a comma-separated list of "dataset": a dataset's files are about to
-- be read; "loader": a DataLoader starts an epoch, its decoding workers
-- running; "NAME:N": the Nth time that point is reached), says so on stderr
-- and waits, once, in Lua, so that a SIGINT raises here, at once; it goes on
-- after LUNET_DEBUG_PAUSE_SECONDS (default 30) if none comes.
function interrupt.pause_point(point)
  local wanted = os.getenv("LUNET_DEBUG_PAUSE")
  if not wanted or wanted == "" then return end
  reached[point] = (reached[point] or 0) + 1
  local found = false
  for name, nth in wanted:gmatch("([^,:%s]+):?(%d*)") do
    if name == point and reached[point] == (tonumber(nth) or 1) then found = true end
  end
  if not found then return end
  io.stderr:write(("lunet: paused at %s, time %d (LUNET_DEBUG_PAUSE)\n"):format(point, reached[point]))
  io.stderr:flush()
  local core = require("lunet.core") -- here: the scripts load this module before lunet itself
  local deadline = core.clock() + (tonumber(os.getenv("LUNET_DEBUG_PAUSE_SECONDS")) or 30)
  -- a call per turn: the interpreter's SIGINT hook fires at the next call
  while core.clock() < deadline do end
end

return interrupt
