--- busted's terminal output (utfTerminal on a terminal, plainTerminal
-- elsewhere) with the pending specs summarised: one line per reason, with
-- how many specs it holds back, instead of a paragraph per spec. .busted
-- selects it; `busted -o utfTerminal` gives the stock output.
return function(options)
  local handler = require("busted.outputHandlers." .. (options.defaultOutput or "plainTerminal"))(options)

  --- The reason a pending spec gives: its pending("...") message, or the
  -- "(skipped: ...)" its name ends with (helpers.cuda_it and the like).
  local function reason_of(p)
    if type(p.message) == "string" and p.message ~= "" then
      return (p.message:gsub("^[^\n:]+:%d+: ", "")) -- without the spec file's name and line
    end
    local why = p.name:match("%(skipped: (.*)%)$")
    return why or p.name
  end

  local function summarise()
    local groups, order = {}, {}
    for _, p in ipairs(handler.pendings) do
      local reason = reason_of(p)
      if not groups[reason] then
        groups[reason] = { count = 0, first = p }
        order[#order + 1] = reason
      end
      groups[reason].count = groups[reason].count + 1
    end
    handler.pendings = {} -- the stock handler's paragraph per spec: replaced by the lines below
    if #order > 0 then io.write("\n") end
    for _, reason in ipairs(order) do
      local g = groups[reason]
      if g.count == 1 then
        local name = g.first.name:gsub("%s*%(skipped: .*%)$", "")
        io.write(("pending: %s (%s)\n"):format(name, reason))
      else
        io.write(("pending: %d specs, %s\n"):format(g.count, reason))
      end
    end
    return nil, true
  end

  -- run after the base handler's bookkeeping (priority 1) and before the
  -- stock handler's suiteEnd, which prints what is left in handler.pendings
  local subscribe = handler.subscribe
  handler.subscribe = function(self, opts)
    subscribe(self, opts)
    require("busted").subscribe({ "suite", "end" }, summarise, { priority = 2 })
  end
  return handler
end
