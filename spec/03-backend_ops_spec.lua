-- Every tensor op on every device against the reference backend ("ref", the
-- plain loops of csrc/ops_ref.c), on random inputs and odd shapes; sizes are
-- chosen to take both the serial and the threaded CPU paths.
local lunet = require("lunet")
local helpers = require("helpers")

local shapes = { { 1 }, { 7 }, { 3, 5 }, { 2, 3, 5, 7 }, { 300000 }, { 613, 431 } }

describe("backend ops against the reference", function()
  for _, dev in ipairs(helpers.devices()) do
    if dev ~= "ref" then
      describe(dev, function()
        it("elementwise arithmetic", function()
          for i, shape in ipairs(shapes) do
            local a = helpers.random(shape, i, nil, -2, 2)
            local b = helpers.random(shape, i + 100, nil, 0.5, 3)
            local ra, rb = a:to("ref"), b:to("ref")
            local da, db = a:to(dev), b:to(dev)
            helpers.assert_close(da + db, ra + rb, 0, 0, "add")
            helpers.assert_close(da - db, ra - rb, 0, 0, "sub")
            helpers.assert_close(da * db, ra * rb, 0, 0, "mul")
            helpers.assert_close(da / db, ra / rb, 0, 0, "div")
            helpers.assert_close(da:eq(da), ra:eq(ra), 0, 0, "eq")
            helpers.assert_close(1.5 - da, 1.5 - ra, 0, 0, "scalar sub")
            helpers.assert_close(da / 3, ra / 3, 0, 0, "scalar div")
            helpers.assert_close(3 / db, 3 / rb, 0, 0, "scalar-first div")
            helpers.assert_close(-da, -ra, 0, 0, "neg")
          end
        end)

        it("reductions and argmax", function()
          for i, shape in ipairs(shapes) do
            local a = helpers.random(shape, i, nil, -5, 5)
            local ra, da = a:to("ref"), a:to(dev)
            assert.is_true(math.abs(da:sum() - ra:sum()) <= 1e-9 * math.max(1, math.abs(ra:sum())))
            assert.equal(ra:max(), da:max())
            assert.equal(ra:min(), da:min())
            helpers.assert_close(da:argmax(#shape), ra:argmax(#shape), 0, 0, "argmax")
          end
        end)

        it("copies and fills through strides and dtypes", function()
          local a = helpers.random({ 37, 41 }, 5, nil, -300, 300)
          for _, dt in ipairs({ "float32", "int32", "uint8", "float16", "bfloat16" }) do
            helpers.assert_close(a:to(dev):to(dt), a:to("ref"):to(dt), 0, 0, "to " .. dt)
          end
          local u8 = helpers.random({ 50000 }, 6, nil, 0, 255):to("uint8")
          helpers.assert_close(u8:to(dev):to("float32"), u8:to("ref"):to("float32"), 0, 0, "uint8 to float32")
          local d, r = lunet.zeros({ 37, 41 }, { device = dev }), lunet.zeros({ 37, 41 }, { device = "ref" })
          d:narrow(2, 3, 10):copy(a:narrow(2, 5, 10))
          r:narrow(2, 3, 10):copy(a:narrow(2, 5, 10))
          d:narrow(1, 2, 5):fill(-1)
          r:narrow(1, 2, 5):fill(-1)
          helpers.assert_close(d, r, 0, 0, "strided copy and fill")
        end)

        it("matrix products of odd shapes", function()
          for i, mnk in ipairs({ { 1, 1, 1 }, { 3, 5, 7 }, { 64, 10, 512 }, { 17, 33, 65 }, { 128, 1, 300 } }) do
            local m, n, k = mnk[1], mnk[2], mnk[3]
            local a, b = helpers.random({ m, k }, i, nil, -1, 1), helpers.random({ k, n }, i + 50, nil, -1, 1)
            helpers.assert_close(lunet.matmul(a:to(dev), b:to(dev)), lunet.matmul(a:to("ref"), b:to("ref")),
              1e-5, 1e-5 * k, "matmul")
          end
        end)

        it("random draws match the reference exactly", function()
          lunet.manual_seed(11)
          local r = lunet.rand({ 1001 }, { device = "ref" })
          local rn = lunet.randn({ 1001 }, { device = "ref" })
          lunet.manual_seed(11)
          helpers.assert_close(lunet.rand({ 1001 }, { device = dev }), r, 0, 0, "rand")
          helpers.assert_close(lunet.randn({ 1001 }, { device = dev }), rn, 1e-6, 1e-6, "randn")
        end)

        it("gathers and scales rows like ToTensor", function()
          local images = helpers.random({ 20, 1, 4, 3 }, 9, nil, 0, 255):to("uint8")
          local idx = lunet.tensor({ 19, 0, 5, 5 }, { dtype = "int32" })
          local out_d = lunet.empty({ 4, 1, 4, 3 }, { device = dev })
          local out_r = lunet.empty({ 4, 1, 4, 3 }, { device = "ref" })
          lunet.gather_rows(out_d, images:to(dev), idx:to(dev), 255)
          lunet.gather_rows(out_r, images:to("ref"), idx:to("ref"), 255)
          helpers.assert_close(out_d, out_r, 0, 0, "gather_rows")
          assert.is_true(math.abs(out_r:get(1, 1, 1, 1) - images:get(20, 1, 1, 1) / 255) < 1e-7)
          helpers.assert_error(function()
            lunet.gather_rows(out_r, images:to("ref"), lunet.tensor({ 20, 0, 0, 0 }, { dtype = "int32", device = "ref" }), 255)
          end, "lunet.gather_rows", "row index 21 is outside 1..20")
        end)
      end)
    end
  end
end)
