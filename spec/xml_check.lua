-- A small XML well-formedness checker for the specs of the SVG charts (not a
-- spec itself: required as "xml_check"). lua-expat is used too when it is
-- installed; this one always runs, so the check never depends on it.
local assert = require("luassert")

local xml_check = {}

--- A small XML well-formedness checker: one root element, tags balanced and
-- nested, attributes quoted and unique, every '&' an entity, no '<' in text.
-- Returns the root element's name and a list of {name=, attrs=, text=}.
function xml_check.parse(s)
  local elements, stack = {}, {}
  s = s:gsub("^<%?xml[^>]-%?>%s*", "")
  local i, roots = 1, 0
  local function check_text(text, where)
    for amp in text:gmatch("&[^;]*;?") do
      assert(amp:match("^&[%a]+;$") and ({ ["&amp;"] = 1, ["&lt;"] = 1, ["&gt;"] = 1, ["&quot;"] = 1, ["&apos;"] = 1 })[amp]
        or amp:match("^&#%d+;$") or amp:match("^&#x%x+;$"), "bad entity " .. amp .. " in " .. where)
    end
    assert(not text:find("[%z\1-\8\11\12\14-\31]"), "control character in " .. where)
    assert(utf8.len(text), "invalid UTF-8 in " .. where)
  end
  while i <= #s do
    local lt = s:find("<", i, true)
    local text = s:sub(i, (lt or #s + 1) - 1)
    check_text(text, "text")
    if #stack == 0 then assert(text:match("^%s*$"), "text outside the root: " .. text) end
    if #stack > 0 then local top = stack[#stack]; top.text = top.text .. text end
    if not lt then break end
    local gt = s:find(">", lt, true)
    assert(gt, "unclosed tag at " .. lt)
    local tag = s:sub(lt + 1, gt - 1)
    if tag:sub(1, 1) == "/" then
      local name = tag:match("^/([%w:_%-]+)%s*$")
      assert(name, "bad closing tag <" .. tag .. ">")
      local open = table.remove(stack)
      assert(open and open.name == name, ("</%s> closes <%s>"):format(name, open and open.name or "nothing"))
    else
      local self_closing = tag:sub(-1) == "/"
      if self_closing then tag = tag:sub(1, -2) end
      local name, rest = tag:match("^([%a_][%w:_%-%.]*)(.*)$")
      assert(name, "bad tag <" .. tag .. ">")
      local attrs = {}
      rest = rest:gsub('%s+([%a_][%w:_%-%.]*)%s*=%s*"([^"<]*)"', function(k, v)
        assert(attrs[k] == nil, "attribute " .. k .. " twice in <" .. name .. ">")
        check_text(v, "attribute " .. k)
        attrs[k] = v
        return ""
      end)
      assert(rest:match("^%s*$"), "malformed attributes in <" .. name .. ">: " .. rest)
      if #stack == 0 then roots = roots + 1 end
      local el = { name = name, attrs = attrs, text = "" }
      elements[#elements + 1] = el
      if not self_closing then stack[#stack + 1] = el end
    end
    i = gt + 1
  end
  assert(#stack == 0, "unclosed <" .. (stack[#stack] and stack[#stack].name or "?") .. ">")
  assert(roots == 1, "expected one root element, found " .. roots)
  return elements[1].name, elements
end

--- The checks every chart must pass: well-formed (also by expat when lua-expat
-- is installed), SVG 1.1, self-contained.
function xml_check.check_svg(doc)
  local root, elements = xml_check.parse(doc)
  assert.equal("svg", root)
  assert.equal("http://www.w3.org/2000/svg", elements[1].attrs.xmlns)
  assert.equal("1.1", elements[1].attrs.version)
  local has_lxp, lxp = pcall(require, "lxp")
  if has_lxp then
    local parser = lxp.new({})
    local ok, err = parser:parse(doc)
    assert.truthy(ok, "expat: " .. tostring(err))
    assert.truthy(parser:parse(), "expat: incomplete document")
    parser:close()
  end
  for _, el in ipairs(elements) do
    assert.are_not.equal("script", el.name)
    assert.are_not.equal("image", el.name)
    assert.are_not.equal("style", el.name)
    assert.are_not.equal("foreignObject", el.name)
    for k, v in pairs(el.attrs) do
      assert.is_nil(k:lower():find("href"), "link attribute " .. k)
      assert.is_nil(k:lower():find("^on"), "event handler " .. k)
      assert.is_nil(v:find("url%("), "external reference in " .. k)
    end
  end
  assert.is_nil(doc:find("@import", 1, true))
  return elements
end

return xml_check
