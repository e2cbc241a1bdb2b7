--- Bar and line charts as self-contained SVG 1.1: no scripts, no external
-- fonts, images or style sheets, so a chart opens the same in any browser,
-- viewer or report. Small on purpose (DESIGN.md: "the SVG charts are small
-- and ours").
--
--   svg.bar_chart{title=, subtitle=, x_label=, y_label=, bars={{label=, sublabel=,
--     value=, text=, note=, color=, missing=, recorded=}}, width=, height=, log=}
--     (note: a bold line above the bar's value, e.g. "25.0x faster than cpu";
--     the y axis turns logarithmic by itself when the values differ by more
--     than 20x, or when log=true)
--   svg.line_chart{title=, subtitle=, x_label=, y_label=, x_log2=true, y_log=false,
--     series={{name=, color=, dashed=, points={{x, y}, ...}}}, width=, height=}
-- Each returns the SVG document as a string. Every text is escaped for XML.
local svg = {}

local FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"

svg.PALETTE = { "#4e79a7", "#59a14f", "#f28e2b", "#e15759", "#76b7b2", "#edc948",
  "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac" }

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

--- Text made safe for XML content and attributes. Control characters that
-- XML 1.0 forbids are dropped.
function svg.escape(s)
  s = tostring(s):gsub("[%z\1-\8\11\12\14-\31]", "")
  if not utf8.len(s) then s = s:gsub("[\128-\255]", "?") end -- not UTF-8: keep the XML valid
  return (s:gsub("[&<>\"']", ESCAPES))
end

--- A number for an attribute: short, never "nan" or "inf".
local function num(v)
  if v ~= v or v == math.huge or v == -math.huge then v = 0 end
  local s = ("%.2f"):format(v):gsub("%.?0+$", "")
  if s == "-0" then s = "0" end
  return s
end

--- About how wide `text` is at `size` px in a sans-serif font.
local function text_width(text, size)
  local n = utf8.len(text) or #text
  return n * size * 0.58
end

--- Three significant digits, with thousands grouped: 1,234 / 56.7 / 0.0123.
function svg.format_number(v)
  if v == nil or v ~= v then return "n/a" end
  local a = math.abs(v)
  local s
  if a >= 1000 or (v == math.floor(v) and a < 1e15) then
    s = ("%.0f"):format(v)
    local sign, digits = s:match("^(-?)(%d+)$")
    s = sign .. digits:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  elseif a >= 100 then s = ("%.0f"):format(v)
  elseif a >= 10 then s = ("%.1f"):format(v)
  elseif a >= 1 then s = ("%.2f"):format(v)
  elseif a == 0 then s = "0"
  elseif a >= 1e-6 then
    local decimals = 2 - math.floor(math.log(a, 10))
    s = ("%." .. decimals .. "f"):format(v):gsub("0+$", "")
  else s = ("%.3g"):format(v)
  end
  return s
end

--- The tick labels of a linear axis with step `step`: one format for the
-- whole axis (the decimals the step needs, thousands grouped), so "0.5"
-- never stands beside "2.50".
function svg.axis_format(step)
  local decimals = 0
  if step > 0 and step < 1 then
    decimals = math.max(0, math.ceil(-math.log(step, 10) - 1e-9))
    -- 0.25 needs 2 decimals, not 1
    while decimals < 6 and math.abs(step * 10 ^ decimals - math.floor(step * 10 ^ decimals + 0.5)) > 1e-6 do
      decimals = decimals + 1
    end
  end
  return function(v)
    local s = ("%." .. decimals .. "f"):format(v)
    local sign, int, frac = s:match("^(-?)(%d+)(.*)$")
    if not int then return s end
    int = int:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
    s = sign .. int .. frac
    if s:match("^%-0%.?0*$") then s = s:sub(2) end
    return s
  end
end

--- The label of a log-axis tick (a power of ten, or 2x or 5x one): written
-- out in full, with no trailing zeros ("0.01", "1", "1,000") on every tick.
function svg.log_tick_format(v)
  if v >= 1 then return svg.axis_format(1)(v) end
  local decimals = math.ceil(-math.log(v, 10) - 1e-9)
  return (("%." .. decimals .. "f"):format(v))
end

--- A "nice" step (1, 2 or 5 times a power of ten) giving about `count` ticks
-- over [0, top].
local function nice_step(top, count)
  if top <= 0 then return 1 end
  local raw = top / count
  local p = 10 ^ math.floor(math.log(raw, 10))
  for _, m in ipairs({ 1, 2, 2.5, 5, 10 }) do
    if raw <= m * p * 1.0000001 then return m * p end
  end
  return 10 * p
end

local Doc = {}
Doc.__index = Doc

local function new_doc(width, height)
  local d = setmetatable({ parts = {}, width = width, height = height }, Doc)
  d:add(('<?xml version="1.0" encoding="UTF-8"?>\n' ..
    '<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="%d" height="%d" ' ..
    'viewBox="0 0 %d %d" font-family="%s">'):format(width, height, width, height, FONT))
  d:add(('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>'):format(width, height))
  return d
end

function Doc:add(s) self.parts[#self.parts + 1] = s end

--- <text>: opts.anchor (start|middle|end), size, weight, fill, rotate.
function Doc:text(x, y, s, opts)
  opts = opts or {}
  local transform = ""
  if opts.rotate then
    transform = (' transform="rotate(%s %s %s)"'):format(num(opts.rotate), num(x), num(y))
  end
  self:add(('<text x="%s" y="%s" font-size="%s" text-anchor="%s" fill="%s"%s%s>%s</text>'):format(
    num(x), num(y), num(opts.size or 12), opts.anchor or "start", opts.fill or "#222222",
    opts.weight and (' font-weight="%s"'):format(opts.weight) or "", transform, svg.escape(s)))
end

function Doc:line(x1, y1, x2, y2, stroke, width, dash)
  self:add(('<line x1="%s" y1="%s" x2="%s" y2="%s" stroke="%s" stroke-width="%s"%s/>'):format(
    num(x1), num(y1), num(x2), num(y2), stroke, num(width or 1),
    dash and (' stroke-dasharray="%s"'):format(dash) or ""))
end

function Doc:finish()
  self:add("</svg>\n")
  return table.concat(self.parts, "\n")
end

local function check_spec(fname, spec, list_field)
  if type(spec) ~= "table" then
    error(("lunet.svg.%s: expected a chart table, got %s"):format(fname, type(spec)), 3)
  end
  if type(spec[list_field]) ~= "table" then
    error(("lunet.svg.%s: %s must be an array"):format(fname, list_field), 3)
  end
end

--- Splits `text` at spaces into at most `max_lines` lines that fit `width`
-- px at `size`; the last line is cut with an ellipsis when needed.
local function wrap(text, size, width, max_lines)
  local lines, current = {}, nil
  for word in tostring(text):gmatch("%S+") do
    local candidate = current and (current .. " " .. word) or word
    if current and text_width(candidate, size) > width then
      lines[#lines + 1] = current
      current = word
    else
      current = candidate
    end
  end
  if current then lines[#lines + 1] = current end
  if #lines > max_lines then
    local kept = { table.unpack(lines, 1, max_lines) }
    kept[max_lines] = table.concat(lines, " ", max_lines)
    lines = kept
  end
  local last = lines[#lines]
  if last and text_width(last, size) > width then
    local cut = math.max(1, math.floor(width / (size * 0.58)) - 1)
    local ok, stop = pcall(utf8.offset, last, cut + 1)
    lines[#lines] = last:sub(1, (ok and stop or cut + 1) - 1) .. "…"
  end
  return lines
end

--- The subtitle's lines, each wrapped to the chart's width (two lines at
-- most per entry).
local function subtitle_lines(spec, width)
  local entries = spec.subtitle
  if entries == nil then return {} end
  if type(entries) ~= "table" then entries = { entries } end
  local lines = {}
  for _, entry in ipairs(entries) do
    for _, line in ipairs(wrap(entry, 13, width - 40, 2)) do lines[#lines + 1] = line end
  end
  return lines
end

local function subtitle_count(spec, width)
  return #subtitle_lines(spec, width)
end

--- Title, subtitle lines and axis labels shared by both charts.
local function frame(d, spec, plot)
  d:text(d.width / 2, 30, spec.title or "", { anchor = "middle", size = 19, weight = "bold" })
  for i, line in ipairs(subtitle_lines(spec, d.width)) do
    d:text(d.width / 2, 32 + 19 * i, line, { anchor = "middle", size = 13, fill = "#555555" })
  end
  if spec.x_label then
    d:text(plot.x + plot.w / 2, d.height - 14, spec.x_label, { anchor = "middle", size = 14 })
  end
  if spec.y_label then
    d:text(20, plot.y + plot.h / 2, spec.y_label, { anchor = "middle", size = 14, rotate = -90 })
  end
end

--- A bar chart: one bar per entry, its value written above it. A bar
-- without a value (a device that failed) shows its `missing` text instead.
function svg.bar_chart(spec)
  check_spec("bar_chart", spec, "bars")
  local bars = spec.bars
  local width, height = spec.width or 760, spec.height or 480
  local d = new_doc(width, height)
  local top = 52 + 19 * subtitle_count(spec, width)
  local has_sub = false
  for _, b in ipairs(bars) do has_sub = has_sub or b.sublabel ~= nil end
  local plot = { x = 84, y = top, w = width - 84 - 28 }
  plot.h = height - top - (has_sub and 100 or 68)
  frame(d, spec, plot)

  local max, min = 0, math.huge
  for _, b in ipairs(bars) do
    if type(b.value) == "number" and b.value == b.value then
      if b.value > max then max = b.value end
      if b.value > 0 and b.value < min then min = b.value end
    end
  end
  -- values more than 20x apart: a log axis, or the small bar is a 1-px line
  local log = spec.log or (max > 0 and min < math.huge and max / min > 20)
  local y_of, floor
  local head = 1.12 + 0.06 * (spec.note_lines or 1) -- room above the tallest bar for its labels
  if log then
    local lo = 10 ^ math.floor(math.log(min, 10) - 1e-9)
    local hi = 10 ^ math.ceil(math.log(max * head * head, 10) - 1e-9)
    local a, b = math.log(lo, 10), math.log(hi, 10)
    floor = lo
    y_of = function(v) return plot.y + plot.h - plot.h * (math.log(math.max(v, lo), 10) - a) / (b - a) end
    for e = math.floor(a + 0.5), math.floor(b + 0.5) do
      local v = 10 ^ e
      local y = y_of(v)
      d:line(plot.x, y, plot.x + plot.w, y, e == math.floor(a + 0.5) and "#333333" or "#e3e3e3", 1)
      d:text(plot.x - 8, y + 4, svg.log_tick_format(v), { anchor = "end", size = 12, fill = "#444444" })
    end
    d:text(plot.x + plot.w, plot.y - 6, ("log scale: the values differ %sx"):format(svg.format_number(max / min)),
      { anchor = "end", size = 11, fill = "#b05a00" })
  else
    local step = nice_step(max > 0 and max * head or 1, 5)
    local axis_top = math.max(step, math.ceil(max * head / step - 1e-9) * step)
    floor = 0
    y_of = function(v) return plot.y + plot.h - plot.h * v / axis_top end
    local label = svg.axis_format(step)
    -- grid and y ticks
    for k = 0, math.floor(axis_top / step + 0.5) do
      local v = k * step
      local y = y_of(v)
      d:line(plot.x, y, plot.x + plot.w, y, v == 0 and "#333333" or "#e3e3e3", 1)
      d:text(plot.x - 8, y + 4, label(v), { anchor = "end", size = 12, fill = "#444444" })
    end
  end
  d:line(plot.x, plot.y, plot.x, plot.y + plot.h, "#333333", 1)

  local n = math.max(#bars, 1)
  local slot = plot.w / n
  local bar_w = math.min(slot * 0.6, 150)
  for i, b in ipairs(bars) do
    local cx = plot.x + slot * (i - 0.5)
    local color = b.color or svg.PALETTE[(i - 1) % #svg.PALETTE + 1]
    if type(b.value) == "number" and b.value == b.value then
      local y = y_of(math.max(b.value, floor))
      local h = plot.y + plot.h - y
      d:add(('<rect x="%s" y="%s" width="%s" height="%s" fill="%s"%s><title>%s</title></rect>'):format(
        num(cx - bar_w / 2), num(y), num(bar_w), num(h), color,
        b.recorded and ' fill-opacity="0.55" stroke="#555555" stroke-dasharray="4,3"' or "",
        svg.escape((b.label or "") .. ": " .. (b.text or svg.format_number(b.value)))))
      local label = b.text or svg.format_number(b.value)
      local size = 14
      while size > 9 and text_width(label, size) > slot * 0.95 do size = size - 1 end
      d:text(cx, y - 7, label, { anchor = "middle", size = size, weight = "bold" })
      if b.note then
        local nsize = 13
        while nsize > 9 and text_width(b.note, nsize) > slot * 0.95 do nsize = nsize - 1 end
        d:text(cx, y - 10 - size, b.note, { anchor = "middle", size = nsize, weight = "bold", fill = "#1b7a2e" })
      end
    else
      local lines = wrap(b.missing or "not measured", 12, slot * 0.92, 3)
      for k, line in ipairs(lines) do
        d:text(cx, plot.y + plot.h - 10 - 15 * (#lines - k), line, { anchor = "middle", size = 12, fill = "#b22222" })
      end
    end
    d:text(cx, plot.y + plot.h + 20, b.label or "", { anchor = "middle", size = 14 })
    if b.sublabel then
      for k, line in ipairs(wrap(b.sublabel, 11, slot * 0.96, 2)) do
        d:text(cx, plot.y + plot.h + 24 + 14 * k, line, { anchor = "middle", size = 11, fill = "#555555" })
      end
    end
  end
  return d:finish()
end

--- Ticks of a log axis over [lo, hi]: powers of `base` (and 2x, 5x for
-- base 10 when there are few decades).
local function log_ticks(lo, hi, base)
  local ticks = {}
  local e0, e1 = math.floor(math.log(lo, base) + 1e-9), math.ceil(math.log(hi, base) - 1e-9)
  local few = base == 10 and (e1 - e0) <= 2
  for e = e0, e1 do
    for _, m in ipairs(few and { 1, 2, 5 } or { 1 }) do
      local v = m * base ^ e
      if v >= lo * (1 - 1e-9) and v <= hi * (1 + 1e-9) then ticks[#ticks + 1] = v end
    end
  end
  return ticks
end

--- A line chart, one line per series, with a legend on the right. The x
-- axis is log2 when spec.x_log2 (ticks at the powers of two); the y axis is
-- log10 when spec.y_log, else linear from 0.
function svg.line_chart(spec)
  check_spec("line_chart", spec, "series")
  local width, height = spec.width or 860, spec.height or 500
  local d = new_doc(width, height)
  local legend_w = 0
  for _, s in ipairs(spec.series) do
    legend_w = math.max(legend_w, text_width(s.name or "", 12) + 44)
  end
  local top = 52 + 19 * subtitle_count(spec, width)
  local plot = { x = 90, y = top, w = width - 90 - 24 - legend_w, h = height - top - 64 }
  frame(d, spec, plot)

  local ymin, ymax = math.huge, 0
  local xmin, xmax = math.huge, -math.huge
  for _, s in ipairs(spec.series) do
    for _, p in ipairs(s.points or {}) do
      local x, y = p[1] or p.x, p[2] or p.y
      if x and y and y == y then
        xmin, xmax = math.min(xmin, x), math.max(xmax, x)
        if y > 0 then ymin = math.min(ymin, y) end
        ymax = math.max(ymax, y)
      end
    end
  end
  if xmin == math.huge then xmin, xmax = 1, 2 end
  if xmin == xmax then xmin, xmax = xmin / 2, xmax * 2 end
  if ymax <= 0 then ymax, ymin = 1, 1 end

  local fx
  if spec.x_log2 ~= false then
    local a, b = math.log(xmin, 2), math.log(xmax, 2)
    fx = function(x) return plot.x + plot.w * (math.log(x, 2) - a) / (b - a) end
    for e = math.ceil(a - 1e-9), math.floor(b + 1e-9) do
      local x = fx(2 ^ e)
      d:line(x, plot.y, x, plot.y + plot.h, "#eeeeee", 1)
      d:text(x, plot.y + plot.h + 18, svg.format_number(2 ^ e), { anchor = "middle", size = 12, fill = "#444444" })
    end
  else
    local step = nice_step(xmax, 6)
    local label = svg.axis_format(step)
    fx = function(x) return plot.x + plot.w * (x - 0) / (math.ceil(xmax / step) * step) end
    for k = 0, math.ceil(xmax / step) do
      d:text(fx(k * step), plot.y + plot.h + 18, label(k * step), { anchor = "middle", size = 12, fill = "#444444" })
    end
  end

  local fy
  if spec.y_log then
    local lo = 10 ^ math.floor(math.log(ymin, 10))
    local hi = 10 ^ math.ceil(math.log(ymax, 10))
    local a, b = math.log(lo, 10), math.log(hi, 10)
    fy = function(y) return plot.y + plot.h - plot.h * (math.log(math.max(y, lo), 10) - a) / (b - a) end
    for _, v in ipairs(log_ticks(lo, hi, 10)) do
      d:line(plot.x, fy(v), plot.x + plot.w, fy(v), "#e3e3e3", 1)
      d:text(plot.x - 8, fy(v) + 4, svg.log_tick_format(v), { anchor = "end", size = 12, fill = "#444444" })
    end
  else
    local step = nice_step(ymax * 1.08, 6)
    local axis_top = math.ceil(ymax * 1.08 / step - 1e-9) * step
    local label = svg.axis_format(step)
    fy = function(y) return plot.y + plot.h - plot.h * y / axis_top end
    for k = 0, math.floor(axis_top / step + 0.5) do
      local v = k * step
      d:line(plot.x, fy(v), plot.x + plot.w, fy(v), "#e3e3e3", 1)
      d:text(plot.x - 8, fy(v) + 4, label(v), { anchor = "end", size = 12, fill = "#444444" })
    end
  end
  d:line(plot.x, plot.y + plot.h, plot.x + plot.w, plot.y + plot.h, "#333333", 1)
  d:line(plot.x, plot.y, plot.x, plot.y + plot.h, "#333333", 1)

  for i, s in ipairs(spec.series) do
    local color = s.color or svg.PALETTE[(i - 1) % #svg.PALETTE + 1]
    local pts = {}
    for _, p in ipairs(s.points or {}) do
      local x, y = p[1] or p.x, p[2] or p.y
      if x and y and y == y and (not spec.y_log or y > 0) then
        pts[#pts + 1] = { fx(x), fy(y), x, y }
      end
    end
    if #pts > 1 then
      local coords = {}
      for k, p in ipairs(pts) do coords[k] = num(p[1]) .. "," .. num(p[2]) end
      d:add(('<polyline points="%s" fill="none" stroke="%s" stroke-width="2.5"%s/>'):format(
        table.concat(coords, " "), color, s.dashed and ' stroke-dasharray="7,4"' or ""))
    end
    for _, p in ipairs(pts) do
      d:add(('<circle cx="%s" cy="%s" r="3.5" fill="%s"><title>%s</title></circle>'):format(
        num(p[1]), num(p[2]), color,
        svg.escape(("%s: %s at %s"):format(s.name or "", svg.format_number(p[4]), svg.format_number(p[3])))))
    end
    -- legend entry
    local ly = plot.y + 10 + (i - 1) * 22
    local lx = plot.x + plot.w + 18
    d:line(lx, ly, lx + 28, ly, color, 2.5, s.dashed and "7,4" or nil)
    d:add(('<circle cx="%s" cy="%s" r="3.5" fill="%s"/>'):format(num(lx + 14), num(ly), color))
    d:text(lx + 36, ly + 4, s.name or "", { size = 12 })
  end
  if #spec.series == 0 then
    d:text(plot.x + plot.w / 2, plot.y + plot.h / 2, spec.empty or "nothing measured",
      { anchor = "middle", size = 14, fill = "#b22222" })
  end
  return d:finish()
end

return svg
