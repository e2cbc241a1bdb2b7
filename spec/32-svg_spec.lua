-- lua/lunet/svg.lua: self-contained SVG 1.1 bar and line charts.
local svg = require("lunet.svg")
local helpers = require("helpers")

local xml_check = require("xml_check")
local parse_xml, check_chart = xml_check.parse, xml_check.check_svg

local function texts(elements)
  local list = {}
  for _, el in ipairs(elements) do
    if el.name == "text" then list[#list + 1] = el.text end
  end
  return list
end

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

describe("lunet.svg", function()
  it("(the spec's XML checker rejects malformed documents)", function()
    for _, bad in ipairs({ "<svg><g></svg>", "<svg>a & b</svg>", "<svg/><svg/>", "<svg x=1/>",
      "<svg a=\"1\" a=\"2\"/>", "<svg>\1</svg>", "<svg></g>", "<svg>x<y</svg>" }) do
      assert.is_false(pcall(parse_xml, bad), bad)
    end
    assert.equal("svg", parse_xml('<?xml version="1.0"?>\n<svg a="&amp;&#38;"><g/>t</svg>\n'))
  end)

  it("escapes text for XML and drops what XML cannot hold", function()
    assert.equal("a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;", svg.escape("a <b> & \"c\" 'd'"))
    assert.equal("ab", svg.escape("a\1\27b"))
    assert.equal("x?y", svg.escape("x\255y"))
    assert.equal("é", svg.escape("é"))
    assert.equal("12", svg.escape(12))
  end)

  it("formats numbers for people", function()
    assert.equal("1,234,568", svg.format_number(1234567.8))
    assert.equal("512", svg.format_number(512))
    assert.equal("56.7", svg.format_number(56.71))
    assert.equal("3.14", svg.format_number(3.14159))
    assert.equal("0.0123", svg.format_number(0.012345))
    assert.equal("0", svg.format_number(0))
    assert.equal("n/a", svg.format_number(0 / 0))
  end)

  describe("bar_chart", function()
    local doc = svg.bar_chart({
      title = "Training time <2 epochs> & more",
      subtitle = { "cuda:0 is 25.0x faster than cpu", "second line" },
      x_label = "device", y_label = "training time (s)",
      bars = {
        { label = "cpu", sublabel = "Some CPU @ 2.70GHz, 2 threads, OpenBLAS", value = 250, text = "250 s" },
        { label = "cuda:0", sublabel = "NVIDIA H100", value = 25, text = "25.0 s" },
        { label = "cuda:1", missing = "failed: out of memory" },
      },
    })
    local elements = check_chart(doc)
    local t = texts(elements)

    it("is well-formed, self-contained SVG 1.1 with escaped text", function()
      assert.truthy(contains(t, "Training time &lt;2 epochs&gt; &amp; more"))
      assert.truthy(doc:find('viewBox="0 0 760 480"', 1, true))
    end)

    it("writes the title, subtitle lines, axis labels, values and device names", function()
      for _, want in ipairs({ "cuda:0 is 25.0x faster than cpu", "second line", "device", "training time (s)",
        "250 s", "25.0 s", "cpu", "cuda:0", "cuda:1", "NVIDIA H100", "failed: out of memory" }) do
        assert.truthy(contains(t, want), "missing text " .. want)
      end
    end)

    it("draws one bar per measured value, heights in proportion", function()
      local bars = {}
      for _, el in ipairs(elements) do
        if el.name == "rect" and el.attrs.fill ~= "#ffffff" then bars[#bars + 1] = el end
      end
      assert.equal(2, #bars)
      local h1, h2 = tonumber(bars[1].attrs.height), tonumber(bars[2].attrs.height)
      assert.is_true(math.abs(h1 / h2 - 10) < 0.1, ("heights %s and %s"):format(h1, h2))
      -- both bars stand on the same baseline
      assert.is_true(math.abs((bars[1].attrs.y + h1) - (bars[2].attrs.y + h2)) < 0.02)
      -- the y axis reaches above the tallest bar
      assert.is_true(tonumber(bars[1].attrs.y) > 50)
    end)

    it("labels every tick of an axis in one format", function()
      local els = check_chart(svg.bar_chart({ title = "t", bars = { { label = "a", value = 2.2 },
        { label = "b", value = 0.6 } } }))
      local ticks = {}
      for _, el in ipairs(els) do
        if el.name == "text" and el.attrs["text-anchor"] == "end" then ticks[#ticks + 1] = el.text end
      end
      assert.is_true(#ticks >= 3)
      local decimals = #(ticks[1]:match("%.(%d+)$") or "")
      for _, t in ipairs(ticks) do assert.equal(decimals, #(t:match("%.(%d+)$") or ""), table.concat(ticks, " ")) end
      assert.equal("0.50", svg.axis_format(0.25)(0.5))
      assert.equal("2,500", svg.axis_format(500)(2500))
      assert.equal("0.5", svg.axis_format(0.5)(0.5))
    end)

    it("turns to a log axis, and says so, when the values differ by more than 20x", function()
      local els = check_chart(svg.bar_chart({ title = "t", bars = { { label = "cpu", value = 150 },
        { label = "gpu", value = 1, note = "150.0x faster than cpu" } } }))
      local t = texts(els)
      assert.truthy(contains(t, "log scale: the values differ 150x"), table.concat(t, " | "))
      assert.truthy(contains(t, "150.0x faster than cpu"))
      assert.truthy(contains(t, "1") and contains(t, "10") and contains(t, "100") and contains(t, "1,000"))
      local bars = {}
      for _, el in ipairs(els) do
        if el.name == "rect" and el.attrs.fill ~= "#ffffff" then bars[#bars + 1] = tonumber(el.attrs.height) end
      end
      -- the fast bar is a bar, not a 1-px line
      assert.is_true(bars[2] > 40 and bars[1] > bars[2], table.concat(bars, ", "))
    end)

    it("handles no bars, zero values and one bar", function()
      check_chart(svg.bar_chart({ title = "empty", bars = {} }))
      check_chart(svg.bar_chart({ title = "zero", bars = { { label = "cpu", value = 0 } } }))
      local one = check_chart(svg.bar_chart({ title = "one", bars = { { label = "cpu", value = 0.004 } } }))
      assert.truthy(contains(texts(one), "0.004"))
    end)

    it("rejects a missing chart table", function()
      helpers.assert_error(function() svg.bar_chart() end, "lunet.svg.bar_chart", "expected a chart table")
      helpers.assert_error(function() svg.bar_chart({ title = "x" }) end, "bars must be an array")
    end)
  end)

  describe("line_chart", function()
    local sizes = { 16, 32, 64, 128, 256, 512, 1024 }
    local function series(name, base, dashed)
      local pts = {}
      for i, b in ipairs(sizes) do pts[i] = { b, base * (1 + i / 10) } end
      return { name = name, points = pts, dashed = dashed }
    end

    it("draws one line per series on a log2 x axis, with a legend", function()
      local doc = svg.line_chart({
        title = "Throughput against batch size", subtitle = "higher is better",
        x_label = "batch size (log2 scale)", y_label = "images/s",
        series = { series("cpu training", 1000), series("cpu inference", 3000, true),
          series("cuda:0 training", 100000), { name = "one point", points = { { 64, 50 } } } },
      })
      local elements = check_chart(doc)
      local t = texts(elements)
      for _, want in ipairs({ "16", "32", "64", "128", "256", "512", "1,024", "cpu training", "cpu inference",
        "cuda:0 training", "one point", "batch size (log2 scale)", "images/s", "higher is better" }) do
        assert.truthy(contains(t, want), "missing text " .. want)
      end
      local lines, dashed, dots = 0, 0, {}
      for k, el in ipairs(elements) do
        if el.name == "polyline" then
          lines = lines + 1
          if el.attrs["stroke-dasharray"] then dashed = dashed + 1 end
        elseif el.name == "title" and el.text:find("^cpu training:") then
          assert.equal("circle", elements[k - 1].name)
          dots[#dots + 1] = tonumber(elements[k - 1].attrs.cx)
        end
      end
      assert.equal(3, lines)
      assert.equal(1, dashed)
      -- log2: each doubling of the batch size is the same distance
      assert.equal(#sizes, #dots)
      for k = 2, #dots - 1 do
        assert.is_true(math.abs((dots[k + 1] - dots[k]) - (dots[2] - dots[1])) < 0.02)
      end
    end)

    it("supports a log y axis and survives empty and degenerate input", function()
      local elements = check_chart(svg.line_chart({ title = "log", y_log = true,
        series = { series("a", 10), series("b", 100000) } }))
      local t = texts(elements)
      assert.truthy(contains(t, "10") and contains(t, "1,000,000"))
      local empty = check_chart(svg.line_chart({ title = "nothing", series = {}, empty = "no device measured" }))
      assert.truthy(contains(texts(empty), "no device measured"))
      check_chart(svg.line_chart({ title = "nan", series = { { name = "x", points = { { 16, 0 / 0 }, { 32, 1 } } } } }))
      helpers.assert_error(function() svg.line_chart({}) end, "lunet.svg.line_chart", "series must be an array")
    end)
  end)
end)
