/* Every kernel slot of the CUDA backend (host-emulated, see emu.h) against the
 * reference (csrc/ops_ref.c) on random inputs and odd sizes, bit for bit where
 * the kernel performs the reference's arithmetic. cuBLAS and cuDNN (gemm.c,
 * conv.c) are not covered: they need a GPU. */
#include "emu.h"
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <string>
extern "C" {
#include "dtype.h"
#include "status.h"
}
#include "context.h"
extern "C" {
#include "ops_ref.h"
#include "device.h"
#include "augment_image.h"
}
#include "formulas.h"

/* check.c stand-ins */
extern "C" int ln_cuda_error(int code, const char *fmt, ...) { fprintf(stderr, "ln_cuda_error: %s\n", fmt); return code; }
extern "C" int ln_cuda_fail_cuda(cudaError_t e, const char *func, const char *call, const char *file, int line) {
    fprintf(stderr, "fail %d %s %s %s:%d\n", (int)e, func, call, file, line); return LN_EDEVICE; }
extern "C" int ln_cuda_unsupported_dtype(const char *func, ln_dtype dtype) { (void)func; (void)dtype; return LN_ENOTSUP; }
/* transfer.c and the host API stand-ins for host_staged.c: device memory is
 * host memory here; the bytes moved are counted */
static size_t downloaded, uploaded;
static const ln_backend *reference_now = &ln_ref_backend;
extern "C" int ln_cuda_download(void *, void *dst, const void *src, size_t n) { memcpy(dst, src, n); downloaded += n; return 0; }
extern "C" int ln_cuda_upload(void *, void *dst, const void *src, size_t n) { memcpy(dst, src, n); uploaded += n; return 0; }
extern "C" const ln_backend *ln_cuda_reference(void) { return reference_now; }
extern "C" { ln_backend ln_cuda_backend; }

static int failures, checks;
#define CHECK(cond, ...) do { checks++; if (!(cond)) { if (failures++ < 40) { fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); } } } while (0)

struct lcg { uint64_t s; uint32_t next() { s = s * 6364136223846793005ull + 1442695040888963407ull; return (uint32_t)(s >> 33); }
  int below(int n) { return (int)(next() % (uint32_t)n); } double unit() { return next() / 4294967296.0; } };

static ln_cuda_context *make_ctx() {
    ln_cuda_context *c = (ln_cuda_context *)calloc(1, sizeof *c);
    c->partials = (double *)calloc(LN_CUDA_MAX_PARTIALS, sizeof(double));
    c->scalars = (ln_cuda_scalars *)calloc(1, sizeof(ln_cuda_scalars));
    c->scalars_host = (ln_cuda_scalars *)calloc(1, sizeof(ln_cuda_scalars));
    return c;
}

static bool same_bytes(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }
static bool feq(float a, float b) { return (a != a && b != b) || memcmp(&a, &b, 4) == 0; }
static bool close_rel(double a, double b, double rtol, double atol) {
    if (a != a || b != b) return a != a && b != b;
    return fabs(a - b) <= atol + rtol * fabs(b);
}

static std::vector<float> randf(lcg &g, int64_t n, float lo, float hi) {
    std::vector<float> v(n); for (auto &x : v) x = lo + (float)g.unit() * (hi - lo); return v; }

static void test_binary(ln_cuda_context *ctx) {
    lcg g{1};
    for (int64_t n : {1, 7, 1000, 70001, 300000}) {
        auto a = randf(g, n, -3, 3), b = randf(g, n, 0.5f, 3);
        for (int op = 0; op <= LN_GE; op++) {
            std::vector<float> o1(n), o2(n);
            ln_ref_binary(nullptr, (ln_binary_op)op, LN_FLOAT32, n, a.data(), b.data(), o1.data());
            CHECK(ln_cuda_binary(ctx, (ln_binary_op)op, LN_FLOAT32, n, a.data(), b.data(), o2.data()) == 0, "rc");
            CHECK(same_bytes(o1.data(), o2.data(), n * 4), "binary f32 op %d n %ld", op, (long)n);
            for (int sf = 0; sf < 2; sf++) {
                ln_ref_binary_scalar(nullptr, (ln_binary_op)op, LN_FLOAT32, n, a.data(), 0.1, sf, o1.data());
                ln_cuda_binary_scalar(ctx, (ln_binary_op)op, LN_FLOAT32, n, a.data(), 0.1, sf, o2.data());
                CHECK(same_bytes(o1.data(), o2.data(), n * 4), "scalar f32 op %d sf %d", op, sf);
            }
        }
        std::vector<int32_t> ia(n), ib(n), i1(n), i2(n);
        std::vector<uint8_t> ua(n), ub(n), u1(n), u2(n);
        for (int64_t i = 0; i < n; i++) { ia[i] = (int32_t)g.next(); ib[i] = (int32_t)g.next(); ua[i] = (uint8_t)g.next(); ub[i] = (uint8_t)g.next(); }
        for (int op = 0; op <= LN_GE; op++) {
            if (op == LN_DIV) continue;
            ln_ref_binary(nullptr, (ln_binary_op)op, LN_INT32, n, ia.data(), ib.data(), i1.data());
            ln_cuda_binary(ctx, (ln_binary_op)op, LN_INT32, n, ia.data(), ib.data(), i2.data());
            CHECK(i1 == i2, "binary int32 op %d", op);
            ln_ref_binary(nullptr, (ln_binary_op)op, LN_UINT8, n, ua.data(), ub.data(), u1.data());
            ln_cuda_binary(ctx, (ln_binary_op)op, LN_UINT8, n, ua.data(), ub.data(), u2.data());
            CHECK(u1 == u2, "binary uint8 op %d", op);
            for (int sf = 0; sf < 2; sf++) {
                ln_ref_binary_scalar(nullptr, (ln_binary_op)op, LN_INT32, n, ia.data(), -7, sf, i1.data());
                ln_cuda_binary_scalar(ctx, (ln_binary_op)op, LN_INT32, n, ia.data(), -7, sf, i2.data());
                CHECK(i1 == i2, "scalar int32 op %d", op);
                ln_ref_binary_scalar(nullptr, (ln_binary_op)op, LN_UINT8, n, ua.data(), 100, sf, u1.data());
                ln_cuda_binary_scalar(ctx, (ln_binary_op)op, LN_UINT8, n, ua.data(), 100, sf, u2.data());
                CHECK(u1 == u2, "scalar uint8 op %d", op);
            }
        }
        /* half: compute in float32 and round once */
        for (ln_dtype dt : {LN_FLOAT16, LN_BFLOAT16}) {
            std::vector<uint16_t> ha(n), hb(n), ho(n);
            for (int64_t i = 0; i < n; i++) { ha[i] = dt == LN_FLOAT16 ? ln_float_to_half(a[i] * 30) : ln_float_to_bfloat16(a[i] * 30);
                                              hb[i] = dt == LN_FLOAT16 ? ln_float_to_half(b[i]) : ln_float_to_bfloat16(b[i]); }
            for (int op = 0; op <= LN_GE; op++) {
                ln_cuda_binary(ctx, (ln_binary_op)op, dt, n, ha.data(), hb.data(), ho.data());
                bool ok = true;
                for (int64_t i = 0; i < n && ok; i++) {
                    float x = (float)ln_load_as_double(ha.data(), dt, i), y = (float)ln_load_as_double(hb.data(), dt, i);
                    float r = ln_f_binary((ln_binary_op)op, x, y);
                    uint16_t e = dt == LN_FLOAT16 ? ln_float_to_half(r) : ln_float_to_bfloat16(r);
                    ok = e == ho[i];
                }
                CHECK(ok, "half binary dt %d op %d", dt, op);
            }
        }
    }
}

static void test_reduce(ln_cuda_context *ctx) {
    lcg g{2};
    for (int64_t n : {1, 5, 257, 4096, 300001}) {
        auto a = randf(g, n, -5, 5);
        for (int nan = 0; nan < 2; nan++) {
            if (nan) a[g.below((int)n)] = NAN;
            for (int op = 0; op < 3; op++) {
                double r1, r2;
                ln_ref_reduce(nullptr, (ln_reduce_op)op, LN_FLOAT32, n, a.data(), &r1);
                ln_cuda_reduce(ctx, (ln_reduce_op)op, LN_FLOAT32, n, a.data(), &r2);
                CHECK(op == LN_SUM ? close_rel(r2, r1, 1e-12, 1e-12) : (r1 == r2 || (r1 != r1 && r2 != r2)),
                      "reduce op %d n %ld nan %d: %.17g vs %.17g", op, (long)n, nan, r2, r1);
            }
        }
        std::vector<int32_t> ia(n); std::vector<uint8_t> ua(n);
        for (int64_t i = 0; i < n; i++) { ia[i] = (int32_t)(g.next() % 2000001) - 1000000; ua[i] = (uint8_t)g.next(); }
        for (int op = 0; op < 3; op++) {
            double r1, r2;
            ln_ref_reduce(nullptr, (ln_reduce_op)op, LN_INT32, n, ia.data(), &r1);
            ln_cuda_reduce(ctx, (ln_reduce_op)op, LN_INT32, n, ia.data(), &r2);
            CHECK(r1 == r2, "reduce int32 op %d", op);
            ln_ref_reduce(nullptr, (ln_reduce_op)op, LN_UINT8, n, ua.data(), &r1);
            ln_cuda_reduce(ctx, (ln_reduce_op)op, LN_UINT8, n, ua.data(), &r2);
            CHECK(r1 == r2, "reduce uint8 op %d", op);
        }
    }
}

static void test_argmax(ln_cuda_context *ctx) {
    lcg g{3};
    int64_t shapes[][3] = {{1, 1, 1}, {1, 10, 1}, {3, 7, 5}, {1, 5000, 1}, {2, 3000, 1}, {3, 1500, 2}, {257, 131, 1},
                           {1, 131, 257}, {5000, 1024, 1}, {1, 1024, 300}, {1, 2048, 3}, {4, 4, 4}};
    for (auto &s : shapes) {
        int64_t n = s[0] * s[1] * s[2];
        for (int variant = 0; variant < 4; variant++) {
            std::vector<float> a(n);
            for (auto &x : a) x = variant == 0 ? (float)g.unit() : (float)g.below(3);
            if (variant == 2) for (int k = 0; k < 5; k++) a[g.below((int)n)] = NAN;
            if (variant == 3) for (auto &x : a) x = -INFINITY;
            std::vector<int32_t> o1(s[0] * s[2]), o2(s[0] * s[2]);
            ln_ref_argmax(nullptr, LN_FLOAT32, s[0], s[1], s[2], a.data(), o1.data());
            ln_cuda_argmax(ctx, LN_FLOAT32, s[0], s[1], s[2], a.data(), o2.data());
            CHECK(o1 == o2, "argmax %ldx%ldx%ld variant %d", (long)s[0], (long)s[1], (long)s[2], variant);
        }
    }
}

static void random_view(lcg &g, ln_strided &v, std::vector<char> &buf, ln_dtype dt, const int64_t *shape, int ndim) {
    memset(&v, 0, sizeof v);
    v.ndim = ndim; v.dtype = dt;
    int perm[LN_MAX_DIMS]; for (int d = 0; d < ndim; d++) perm[d] = d;
    for (int d = ndim - 1; d > 0; d--) { int j = g.below(d + 1); std::swap(perm[d], perm[j]); }
    int64_t stride = 1 + g.below(2);
    for (int k = ndim - 1; k >= 0; k--) { int d = perm[k]; v.shape[d] = shape[d]; v.stride[d] = stride; stride *= shape[d] + g.below(2); }
    if (g.below(3) == 0) { /* contiguous */ int64_t st = 1; for (int d = ndim - 1; d >= 0; d--) { v.stride[d] = st; st *= shape[d]; } stride = st; }
    buf.assign((size_t)(stride + 8) * ln_dtype_size(dt), 0);
    for (auto &c : buf) c = (char)g.next();
    v.data = buf.data();
}

static void test_copy(ln_cuda_context *ctx) {
    lcg g{4};
    for (int trial = 0; trial < 300; trial++) {
        int ndim = 1 + g.below(4);
        int64_t shape[LN_MAX_DIMS];
        for (int d = 0; d < ndim; d++) shape[d] = 1 + g.below(6);
        ln_dtype sd = (ln_dtype)g.below(5), dd = (ln_dtype)g.below(5);
        ln_strided src, d1, d2;
        std::vector<char> sb, b1, b2;
        random_view(g, src, sb, sd, shape, ndim);
        if (sd == LN_FLOAT32) { /* sensible floats, with specials */
            int64_t cnt = (int64_t)sb.size() / 4; float *f = (float *)sb.data();
            for (int64_t i = 0; i < cnt; i++) f[i] = (float)(g.unit() * 600 - 300);
            if (cnt > 3) { f[0] = NAN; f[1] = INFINITY; f[2] = 1e10f; }
        }
        lcg g2 = g;
        random_view(g, d1, b1, dd, shape, ndim);
        random_view(g2, d2, b2, dd, shape, ndim);
        d2.data = b2.data();
        ln_ref_copy(nullptr, &d1, &src);
        ln_cuda_copy(ctx, &d2, &src);
        if (sd == dd && (sd == LN_FLOAT16 || sd == LN_BFLOAT16)) { /* bits vs canonical NaN: compare values */
            int64_t cnt = (int64_t)b1.size() / 2; bool ok = true;
            for (int64_t i = 0; i < cnt; i++) { double x = ln_load_as_double(b1.data(), dd, i), y = ln_load_as_double(b2.data(), dd, i);
                ok = ok && ((x != x && y != y) || memcmp(&x, &y, 8) == 0); }
            CHECK(ok, "copy trial %d %d -> %d (values)", trial, sd, dd);
        } else {
            CHECK(b1 == b2, "copy trial %d %d -> %d", trial, sd, dd);
        }
        double value = g.unit() * 1000 - 500;
        ln_ref_fill(nullptr, &d1, value);
        ln_cuda_fill(ctx, &d2, value);
        CHECK(b1 == b2, "fill trial %d", trial);
    }
}

static void test_gather(ln_cuda_context *ctx) {
    lcg g{5};
    int64_t rows = 20, row = 12, n = 9;
    std::vector<uint8_t> src(rows * row); for (auto &x : src) x = (uint8_t)g.next();
    std::vector<int32_t> idx = {19, 0, 5, 5, -1, 20, 3, 7, 19};
    for (ln_dtype dt : {LN_FLOAT32, LN_INT32, LN_FLOAT16}) {
        for (double div : {255.0, 1.0}) {
            std::vector<char> o1(n * row * 4, 1), o2(n * row * 4, 2);
            ln_ref_gather_rows(nullptr, LN_UINT8, src.data(), dt, o1.data(), row, idx.data(), n, rows, div);
            ln_cuda_gather_rows(ctx, LN_UINT8, src.data(), dt, o2.data(), row, idx.data(), n, rows, div);
            CHECK(same_bytes(o1.data(), o2.data(), n * row * ln_dtype_size(dt)), "gather dt %d div %g", dt, div);
        }
    }
}

static void test_random(ln_cuda_context *ctx) {
    for (int64_t n : {1, 4, 5, 1001, 70001}) {
        std::vector<float> o1(n), o2(n), m1(n), m2(n), y1(n), y2(n);
        ln_ref_rand_uniform(nullptr, LN_FLOAT32, n, o1.data(), -2, 3, 11, 77);
        ln_cuda_rand_uniform(ctx, LN_FLOAT32, n, o2.data(), -2, 3, 11, 77);
        CHECK(o1 == o2, "uniform n %ld", (long)n);
        ln_ref_rand_normal(nullptr, LN_FLOAT32, n, o1.data(), 1, 2, 11, 77);
        ln_cuda_rand_normal(ctx, LN_FLOAT32, n, o2.data(), 1, 2, 11, 77);
        CHECK(same_bytes(o1.data(), o2.data(), n * 4), "normal n %ld", (long)n);
        for (float p : {0.0f, 0.3f, 0.5f, 1.0f}) {
            lcg g{6}; auto x = randf(g, n, -1, 1);
            ln_ref_dropout_forward(nullptr, n, p, x.data(), y1.data(), m1.data(), 5, 9);
            ln_cuda_dropout_forward(ctx, n, p, x.data(), y2.data(), m2.data(), 5, 9);
            CHECK(same_bytes(y1.data(), y2.data(), n * 4) && same_bytes(m1.data(), m2.data(), n * 4), "dropout p %g", p);
        }
    }
}

static void test_pool(ln_cuda_context *ctx) {
    lcg g{7};
    for (int trial = 0; trial < 300; trial++) {
        ln_pool2d_shape s; memset(&s, 0, sizeof s);
        s.n = 1 + g.below(2); s.c = 1 + g.below(3);
        s.kernel_h = 1 + g.below(4); s.kernel_w = 1 + g.below(4);
        s.stride_h = 1 + g.below(3); s.stride_w = 1 + g.below(3);
        s.pad_h = g.below(s.kernel_h / 2 + 1); s.pad_w = g.below(s.kernel_w / 2 + 1);
        s.h = s.kernel_h + g.below(20); s.w = s.kernel_w + g.below(20);
        s.p = (s.h + 2 * s.pad_h - s.kernel_h) / s.stride_h + 1;
        s.q = (s.w + 2 * s.pad_w - s.kernel_w) / s.stride_w + 1;
        int64_t in = (int64_t)s.n * s.c * s.h * s.w, out = (int64_t)s.n * s.c * s.p * s.q;
        std::vector<float> x(in), dy(out), y1(out), y2(out), dx1(in), dx2(in);
        for (auto &v : x) v = (float)g.below(5) - 2.0f + (trial % 2 ? (float)g.unit() : 0.0f);
        if (trial % 7 == 0) x[g.below((int)in)] = NAN;
        for (auto &v : dy) v = (float)g.unit() * 2 - 1;
        for (int m = 0; m < 2; m++) {
            ln_ref_pool2d_forward(nullptr, (ln_pool_mode)m, &s, x.data(), y1.data());
            ln_cuda_pool2d_forward(ctx, (ln_pool_mode)m, &s, x.data(), y2.data());
            bool ok = true; for (int64_t i = 0; i < out; i++) ok = ok && feq(y1[i], y2[i]);
            CHECK(ok, "pool fwd mode %d trial %d", m, trial);
            std::fill(dx2.begin(), dx2.end(), 12345.0f);
            ln_ref_pool2d_backward(nullptr, (ln_pool_mode)m, &s, x.data(), y1.data(), dy.data(), dx1.data());
            ln_cuda_pool2d_backward(ctx, (ln_pool_mode)m, &s, x.data(), y2.data(), dy.data(), dx2.data());
            CHECK(same_bytes(dx1.data(), dx2.data(), in * 4), "pool bwd mode %d trial %d", m, trial);
        }
    }
}

static void test_activation(ln_cuda_context *ctx) {
    lcg g{8};
    for (int64_t n : {1, 1000, 70001}) {
        auto x = randf(g, n, -1, 1); x[0] = NAN; if (n > 2) x[1] = 0.0f;
        auto dy = randf(g, n, -1, 1);
        std::vector<float> y1(n), y2(n), d1(n), d2(n);
        ln_ref_relu_forward(nullptr, n, x.data(), y1.data()); ln_cuda_relu_forward(ctx, n, x.data(), y2.data());
        CHECK(same_bytes(y1.data(), y2.data(), n * 4), "relu fwd");
        ln_ref_relu_backward(nullptr, n, y1.data(), dy.data(), d1.data()); ln_cuda_relu_backward(ctx, n, y2.data(), dy.data(), d2.data());
        CHECK(same_bytes(d1.data(), d2.data(), n * 4), "relu bwd");
        y2 = x; ln_cuda_relu_forward(ctx, n, y2.data(), y2.data());
        CHECK(same_bytes(y1.data(), y2.data(), n * 4), "relu in place");
    }
    int64_t shapes[][3] = {{1, 1, 1}, {3, 5, 7}, {64, 10, 1}, {2, 300, 49}, {0, 4, 9}, {5, 3000, 1}, {1, 3, 100000}};
    for (auto &s : shapes) {
        int64_t n = s[0] * s[1] * s[2];
        auto y = randf(g, n, -1, 1), b = randf(g, s[1], -1, 1), dy = randf(g, n, -1, 1);
        auto y1 = y, y2 = y;
        ln_ref_bias_add(nullptr, s[0], s[1], s[2], y1.data(), b.data());
        ln_cuda_bias_add(ctx, s[0], s[1], s[2], y2.data(), b.data());
        CHECK(y1 == y2, "bias_add %ld %ld %ld", (long)s[0], (long)s[1], (long)s[2]);
        for (int acc = 0; acc < 2; acc++) {
            auto db1 = b, db2 = b;
            ln_ref_bias_backward(nullptr, s[0], s[1], s[2], dy.data(), db1.data(), acc);
            ln_cuda_bias_backward(ctx, s[0], s[1], s[2], dy.data(), db2.data(), acc);
            bool ok = true; for (int64_t i = 0; i < s[1]; i++) ok = ok && close_rel(db2[i], db1[i], 1e-6, 1e-6);
            CHECK(ok, "bias_backward %ld %ld %ld acc %d", (long)s[0], (long)s[1], (long)s[2], acc);
        }
    }
}

static void test_batchnorm(ln_cuda_context *ctx) {
    lcg g{9};
    int64_t shapes[][3] = {{4, 3, 25}, {16, 5, 1}, {1, 5, 6}, {8, 16, 255}, {2, 1, 1000}, {64, 64, 196}};
    for (auto &s : shapes) {
        int64_t n = s[0], c = s[1], in = s[2], tot = n * c * in;
        auto x = randf(g, tot, -2, 2), gm = randf(g, c, 0.5, 1.5), bt = randf(g, c, -1, 1), dy = randf(g, tot, -1, 1);
        std::vector<float> y1(tot), y2(tot), rm1(c, 0.1f), rv1(c, 0.9f), rm2(c, 0.1f), rv2(c, 0.9f), sm1(c), si1(c), sm2(c), si2(c);
        ln_ref_batchnorm_forward_train(nullptr, n, c, in, x.data(), gm.data(), bt.data(), y1.data(), rm1.data(), rv1.data(), 0.1f, 1e-5f, sm1.data(), si1.data());
        ln_cuda_batchnorm_forward_train(ctx, n, c, in, x.data(), gm.data(), bt.data(), y2.data(), rm2.data(), rv2.data(), 0.1f, 1e-5f, sm2.data(), si2.data());
        bool ok = true;
        for (int64_t i = 0; i < tot; i++) ok = ok && close_rel(y2[i], y1[i], 1e-5, 1e-6);
        for (int64_t i = 0; i < c; i++) ok = ok && close_rel(rm2[i], rm1[i], 1e-6, 1e-7) && close_rel(rv2[i], rv1[i], 1e-6, 1e-7)
                                        && close_rel(sm2[i], sm1[i], 1e-6, 1e-7) && close_rel(si2[i], si1[i], 1e-6, 1e-7);
        CHECK(ok, "bn train %ld %ld %ld", (long)n, (long)c, (long)in);
        ln_ref_batchnorm_forward_eval(nullptr, n, c, in, x.data(), gm.data(), bt.data(), rm1.data(), rv1.data(), 1e-5f, y1.data());
        ln_cuda_batchnorm_forward_eval(ctx, n, c, in, x.data(), gm.data(), bt.data(), rm1.data(), rv1.data(), 1e-5f, y2.data());
        CHECK(y1 == y2, "bn eval");
        for (int acc = 0; acc < 2; acc++) {
            std::vector<float> dx1(tot), dx2(tot), dg1(c, 0.5f), db1(c, -0.5f), dg2(c, 0.5f), db2(c, -0.5f);
            ln_ref_batchnorm_backward(nullptr, n, c, in, x.data(), dy.data(), gm.data(), sm1.data(), si1.data(), dx1.data(), dg1.data(), db1.data(), acc);
            ln_cuda_batchnorm_backward(ctx, n, c, in, x.data(), dy.data(), gm.data(), sm1.data(), si1.data(), dx2.data(), dg2.data(), db2.data(), acc);
            ok = true;
            float scale = 0; for (float v : dx1) scale = fmaxf(scale, fabsf(v));
            for (int64_t i = 0; i < tot; i++) ok = ok && close_rel(dx2[i], dx1[i], 1e-5, 1e-6 * scale);
            for (int64_t i = 0; i < c; i++) ok = ok && close_rel(dg2[i], dg1[i], 1e-5, 1e-6) && close_rel(db2[i], db1[i], 1e-5, 1e-6);
            CHECK(ok, "bn backward acc %d", acc);
        }
    }
}

static void test_loss(ln_cuda_context *ctx) {
    lcg g{10};
    int64_t shapes[][2] = {{1, 3}, {7, 10}, {64, 10}, {300, 1000}, {70000, 10}, {1, 1}};
    for (auto &s : shapes) {
        int64_t n = s[0], k = s[1];
        auto lg = randf(g, n * k, -8, 8);
        std::vector<int32_t> lab(n); for (auto &l : lab) l = 1 + g.below((int)k);
        double l1, l2; int64_t b1, b2;
        ln_ref_cross_entropy_forward(nullptr, n, k, lg.data(), lab.data(), &l1, &b1);
        ln_cuda_cross_entropy_forward(ctx, n, k, lg.data(), lab.data(), &l2, &b2);
        CHECK(b1 == b2 && close_rel(l2, l1, 1e-12, 1e-12), "ce fwd %ld %ld: %g %g bad %ld %ld", (long)n, (long)k, l2, l1, (long)b2, (long)b1);
        std::vector<float> d1(n * k), d2(n * k);
        ln_ref_cross_entropy_backward(nullptr, n, k, lg.data(), lab.data(), 1.0f / n, d1.data());
        ln_cuda_cross_entropy_backward(ctx, n, k, lg.data(), lab.data(), 1.0f / n, d2.data());
        CHECK(d1 == d2, "ce bwd");
        /* the loss left on the device: the same mean, written or added to a
         * running {sum, compensation} pair (twice: 2 * the mean) */
        float one[1] = {-1}, pair[2] = {0, 0};
        ln_cuda_cross_entropy_forward_device(ctx, n, k, lg.data(), lab.data(), one, 0);
        ln_cuda_cross_entropy_forward_device(ctx, n, k, lg.data(), lab.data(), pair, 1);
        ln_cuda_cross_entropy_forward_device(ctx, n, k, lg.data(), lab.data(), pair, 1);
        CHECK(one[0] == (float)l1, "ce fwd device %ld %ld: %g %g", (long)n, (long)k, one[0], l1);
        CHECK(close_rel((double)pair[0] + (double)pair[1], 2 * l1, 1e-12, 1e-12),
              "ce fwd device sum: %.17g %.17g", (double)pair[0] + (double)pair[1], 2 * l1);
        if (n >= 7) {
            auto l = lab; l[n / 2] = 0;
            ln_cuda_cross_entropy_forward_device(ctx, n, k, lg.data(), l.data(), pair, 1);
            CHECK(pair[0] != pair[0], "ce fwd device bad label gives NaN: %g", pair[0]);
        }
        if (n >= 7) {
            for (int bad : {0, (int)k + 1, -3}) {
                auto l = lab; l[n - 1] = bad; l[n / 2] = bad;
                ln_ref_cross_entropy_forward(nullptr, n, k, lg.data(), l.data(), &l1, &b1);
                ln_cuda_cross_entropy_forward(ctx, n, k, lg.data(), l.data(), &l2, &b2);
                CHECK(b1 == b2 && b1 == n / 2, "ce bad label %d: %ld vs %ld", bad, (long)b2, (long)b1);
                ln_cuda_cross_entropy_forward(ctx, n, k, lg.data(), lab.data(), &l2, &b2);
                CHECK(b2 == -1, "ce good labels after bad ones: %ld", (long)b2);
            }
        }
    }
}

static void test_optim(ln_cuda_context *ctx) {
    lcg g{11};
    int64_t n = 70001;
    auto p0 = randf(g, n, -1, 1);
    ln_sgd_params sp[] = {{0.1f, 0, 0, 0, 0, 1}, {0.05f, 0.9f, 0.2f, 1e-2f, 0, 1}, {0.05f, 0.9f, 0, 0, 1, 1}};
    for (auto sgd : sp) {
        auto a = p0, b = p0; std::vector<float> ma(n), mb(n);
        for (int step = 0; step < 4; step++) {
            auto gr = randf(g, n, -1, 1);
            sgd.first_step = step == 0;
            ln_ref_sgd_step(nullptr, &sgd, n, a.data(), gr.data(), sgd.momentum != 0 ? ma.data() : nullptr);
            ln_cuda_sgd_step(ctx, &sgd, n, b.data(), gr.data(), sgd.momentum != 0 ? mb.data() : nullptr);
        }
        CHECK(a == b && ma == mb, "sgd");
    }
    /* the third is AdamW (decoupled weight decay) */
    ln_adam_params ap[] = {{1e-3f, 0.9f, 0.999f, 1e-8f, 0, 1, 0}, {3e-3f, 0.8f, 0.9f, 1e-6f, 0.1f, 1, 0},
                           {1e-2f, 0.9f, 0.999f, 1e-8f, 0.5f, 1, 1}};
    for (auto adam : ap) {
        auto a = p0, b = p0; std::vector<float> m1(n), v1(n), m2(n), v2(n);
        for (int step = 1; step <= 4; step++) {
            auto gr = randf(g, n, -1, 1);
            adam.step = step;
            ln_ref_adam_step(nullptr, &adam, n, a.data(), gr.data(), m1.data(), v1.data());
            ln_cuda_adam_step(ctx, &adam, n, b.data(), gr.data(), m2.data(), v2.data());
        }
        CHECK(a == b && m1 == m2 && v1 == v2, "adam");
    }
}

extern long ln_emu_launches, ln_emu_barriers;

/* The unary, softmax and reduce_dim families: every op, forward and backward,
 * on odd sizes, bit for bit against the reference (the same formulas.h). */
static void test_families(ln_cuda_context *ctx) {
    lcg g{11};
    for (int64_t n : {1, 7, 1000, 70001}) {
        auto x = randf(g, n, -6, 6), dy = randf(g, n, -1, 1);
        if (n > 3) { x[1] = NAN; x[2] = 0.0f; }
        for (int op = 0; op < LN_UNARY_COUNT; op++) {
            ln_unary_params p = {op == LN_UNARY_POW ? 2.5f : 0.15f, -0.5f, 0.7f};
            std::vector<float> y1(n), y2(n), d1(n), d2(n);
            ln_ref_unary(nullptr, (ln_unary_op)op, &p, n, x.data(), y1.data());
            CHECK(ln_cuda_unary(ctx, (ln_unary_op)op, &p, n, x.data(), y2.data()) == 0, "rc");
            bool same = true;
            for (int64_t i = 0; i < n; i++) same = same && feq(y1[i], y2[i]);
            CHECK(same, "unary %s n %ld", ln_unary_name((ln_unary_op)op), (long)n);
            if (!ln_unary_has_backward((ln_unary_op)op)) continue;
            ln_ref_unary_backward(nullptr, (ln_unary_op)op, &p, n, x.data(), y1.data(), dy.data(), d1.data());
            ln_cuda_unary_backward(ctx, (ln_unary_op)op, &p, n, x.data(), y1.data(), dy.data(), d2.data());
            same = true;
            for (int64_t i = 0; i < n; i++) same = same && feq(d1[i], d2[i]);
            CHECK(same, "unary_backward %s n %ld", ln_unary_name((ln_unary_op)op), (long)n);
        }
    }
    int64_t shapes[][3] = {{1, 1, 1}, {1, 10, 1}, {3, 7, 5}, {257, 13, 1}, {1, 131, 257}, {4, 1, 9}, {2, 3000, 3}};
    for (auto &s : shapes) {
        int64_t n = s[0] * s[1] * s[2], rows = s[0] * s[2];
        auto x = randf(g, n, -30, 30), dy = randf(g, n, -1, 1);
        if (n > 20) x[g.below((int)n)] = NAN;
        for (int log = 0; log < 2; log++) {
            std::vector<float> y1(n), y2(n), d1(n), d2(n);
            ln_ref_softmax(nullptr, log, s[0], s[1], s[2], x.data(), y1.data());
            ln_cuda_softmax(ctx, log, s[0], s[1], s[2], x.data(), y2.data());
            bool same = true;
            for (int64_t i = 0; i < n; i++) same = same && feq(y1[i], y2[i]);
            CHECK(same, "softmax log %d shape %ld %ld %ld", log, (long)s[0], (long)s[1], (long)s[2]);
            ln_ref_softmax_backward(nullptr, log, s[0], s[1], s[2], y1.data(), dy.data(), d1.data());
            ln_cuda_softmax_backward(ctx, log, s[0], s[1], s[2], y1.data(), dy.data(), d2.data());
            same = true;
            for (int64_t i = 0; i < n; i++) same = same && feq(d1[i], d2[i]);
            CHECK(same, "softmax_backward log %d", log);
        }
        for (int op = 0; op <= LN_MEAN; op++) {
            bool pos = op == LN_MAX || op == LN_MIN;
            std::vector<float> v1(rows), v2(rows);
            std::vector<int32_t> p1(rows), p2(rows);
            ln_ref_reduce_dim(nullptr, (ln_reduce_op)op, s[0], s[1], s[2], x.data(), v1.data(), pos ? p1.data() : nullptr);
            ln_cuda_reduce_dim(ctx, (ln_reduce_op)op, s[0], s[1], s[2], x.data(), v2.data(), pos ? p2.data() : nullptr);
            bool same = true;
            for (int64_t i = 0; i < rows; i++) same = same && feq(v1[i], v2[i]);
            CHECK(same, "reduce_dim op %d values", op);
            CHECK(!pos || p1 == p2, "reduce_dim op %d positions", op);
        }
    }
}


/* augment.cu against csrc/augment_image.c (the host path's loops), bit for
 * bit: crops with padding wider than the crop, 1-pixel images, odd widths,
 * flips with p = 0, 1 and between, normalize over many channels. */
static void test_augment(ln_cuda_context *ctx) {
    lcg g{31};
    struct { int64_t n, c, h, w, oh, ow; int padding; } cases[] = {
        {5, 3, 8, 8, 8, 8, 2}, {7, 1, 5, 7, 3, 4, 0}, {4, 2, 4, 4, 2, 2, 5}, {3, 3, 1, 1, 1, 1, 0},
        {2, 1, 3, 9, 5, 11, 1}, {33, 3, 32, 32, 32, 32, 4}, {1, 70, 3, 5, 3, 5, 1}, {0, 3, 4, 4, 4, 4, 1}};
    for (auto &t : cases) {
        ln_augment_geometry geo = {t.c, t.h, t.w, t.oh, t.ow, t.padding,
                                   (int)(t.h + 2 * t.padding - t.oh + 1), (int)(t.w + 2 * t.padding - t.ow + 1)};
        int64_t in_n = t.n * t.c * t.h * t.w, out_n = t.n * t.c * t.oh * t.ow;
        auto in = randf(g, in_n, -1, 1);
        for (uint64_t seed : {1ull, 0x7fffffffffffffffull}) {
            uint64_t counter = (3ull << 32) + 17;
            std::vector<float> o1(out_n, 9.0f), o2(out_n, -9.0f);
            for (int64_t i = 0; i < t.n; i++) ln_augment_crop_image(&geo, o1.data(), in.data(), i, seed, counter);
            CHECK(ln_cuda_augment_random_crop(ctx, t.n, &geo, seed, counter, in.data(), o2.data()) == 0, "crop rc");
            CHECK(same_bytes(o1.data(), o2.data(), out_n * 4), "crop %ldx%ldx%ldx%ld -> %ldx%ld pad %d",
                  (long)t.n, (long)t.c, (long)t.h, (long)t.w, (long)t.oh, (long)t.ow, t.padding);
            for (double p : {0.0, 0.5, 1.0, 0.3}) {
                auto f1 = o1, f2 = o1;
                for (int64_t i = 0; i < t.n; i++) ln_augment_flip_image(f1.data(), t.c, t.oh, t.ow, i, p, seed, counter);
                CHECK(ln_cuda_augment_random_hflip(ctx, t.n, t.c, t.oh, t.ow, p, seed, counter, f2.data()) == 0, "flip rc");
                CHECK(same_bytes(f1.data(), f2.data(), out_n * 4), "flip p %g n %ld w %ld", p, (long)t.n, (long)t.ow);
            }
        }
        std::vector<float> mean(t.c), std_(t.c);
        for (int64_t k = 0; k < t.c; k++) { mean[k] = (float)g.unit(); std_[k] = 0.1f + (float)g.unit(); }
        auto n1 = in, n2 = in;
        for (int64_t i = 0; i < t.n; i++) ln_augment_normalize_image(n1.data(), t.c, t.h * t.w, i, mean.data(), std_.data());
        CHECK(ln_cuda_augment_normalize(ctx, t.n, t.c, t.h * t.w, mean.data(), std_.data(), n2.data()) == 0, "normalize rc");
        CHECK(same_bytes(n1.data(), n2.data(), in_n * 4), "normalize c %ld", (long)t.c);
    }
    /* the draws: every offset in range is reached, flips near p */
    int seen[13] = {0}, flips = 0;
    for (int64_t i = 0; i < 4000; i++) {
        int dy, dx;
        ln_augment_crop_offsets(5, 0, i, 13, 1, &dy, &dx);
        seen[dy]++;
        flips += ln_augment_flip_drawn(5, 0, i, 0.25);
    }
    bool all = true;
    for (int k : seen) all = all && k > 0;
    CHECK(all && flips > 800 && flips < 1200, "draws: offsets cover the range, flips %d of 4000 at p 0.25", flips);
}

/* The switch (unverified.c) and the host-staged slots (host_staged.c): off,
 * the unverified kernels' slots give the reference's results bit for bit,
 * in place as well, moving each buffer once; on, the kernels are in place. */
static void test_host_staged(ln_cuda_context *ctx) {
    ln_backend off = {}, on = {};
    ln_cuda_choose_kernels(&off, 0);
    ln_cuda_choose_kernels(&on, 1);
    CHECK(on.unary == ln_cuda_unary && on.softmax_backward == ln_cuda_softmax_backward && on.reduce_dim == ln_cuda_reduce_dim
          && on.binary == ln_cuda_binary && on.binary_scalar == ln_cuda_binary_scalar && on.adam_step == ln_cuda_adam_step
          && on.cross_entropy_forward_device == ln_cuda_cross_entropy_forward_device
          && on.augment_random_crop == ln_cuda_augment_random_crop && on.augment_random_hflip == ln_cuda_augment_random_hflip
          && on.augment_normalize == ln_cuda_augment_normalize, "switch on: the kernels");
    CHECK(off.unary == ln_cuda_staged_unary && off.unary_backward == ln_cuda_staged_unary_backward
          && off.softmax == ln_cuda_staged_softmax && off.softmax_backward == ln_cuda_staged_softmax_backward
          && off.reduce_dim == ln_cuda_staged_reduce_dim && off.cross_entropy_forward_device == nullptr
          && !off.augment_random_crop && !off.augment_random_hflip && !off.augment_normalize
          && off.binary && off.binary != ln_cuda_binary && off.adam_step && off.adam_step != ln_cuda_adam_step,
          "switch off: host-staged slots, no device loss");
    lcg g{21};
    for (int64_t n : {0, 1, 7, 1000, 70001}) {
        auto x = randf(g, n, -6, 6), dy = randf(g, n, -1, 1);
        if (n > 3) { x[1] = NAN; x[2] = 0.0f; }
        for (int op = 0; op < LN_UNARY_COUNT; op++) {
            ln_unary_params p = {op == LN_UNARY_POW ? 2.5f : 0.15f, -0.5f, 0.7f};
            std::vector<float> y1(n), y2(n), d1(n), d2(n);
            ln_ref_unary(nullptr, (ln_unary_op)op, &p, n, x.data(), y1.data());
            downloaded = uploaded = 0;
            CHECK(off.unary(ctx, (ln_unary_op)op, &p, n, x.data(), y2.data()) == 0, "staged unary rc");
            CHECK(same_bytes(y1.data(), y2.data(), n * 4), "staged unary %d n %ld", op, (long)n);
            CHECK(downloaded == (size_t)n * 4 && uploaded == (size_t)n * 4, "staged unary moves %zu, %zu", downloaded, uploaded);
            auto z = x;  /* in place: x == y */
            downloaded = uploaded = 0;
            off.unary(ctx, (ln_unary_op)op, &p, n, z.data(), z.data());
            CHECK(same_bytes(y1.data(), z.data(), n * 4), "staged unary in place %d", op);
            CHECK(downloaded == (size_t)n * 4 && uploaded == (size_t)n * 4, "in place: one download, one upload");
            if (!ln_unary_has_backward((ln_unary_op)op)) continue;
            ln_ref_unary_backward(nullptr, (ln_unary_op)op, &p, n, x.data(), y1.data(), dy.data(), d1.data());
            off.unary_backward(ctx, (ln_unary_op)op, &p, n, x.data(), y1.data(), dy.data(), d2.data());
            CHECK(same_bytes(d1.data(), d2.data(), n * 4), "staged unary_backward %d", op);
            auto dz = dy;  /* dx == dy */
            off.unary_backward(ctx, (ln_unary_op)op, &p, n, x.data(), y1.data(), dz.data(), dz.data());
            CHECK(same_bytes(d1.data(), dz.data(), n * 4), "staged unary_backward in place %d", op);
            off.unary_backward(ctx, (ln_unary_op)op, &p, n, nullptr, y1.data(), dy.data(), d2.data());
            ln_ref_unary_backward(nullptr, (ln_unary_op)op, &p, n, nullptr, y1.data(), dy.data(), d1.data());
            CHECK(same_bytes(d1.data(), d2.data(), n * 4), "staged unary_backward without x %d", op);
        }
    }
    int64_t shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {257, 13, 1}, {1, 131, 257}, {4, 1, 9}, {0, 3, 2}};
    for (auto &s : shapes) {
        int64_t n = s[0] * s[1] * s[2], rows = s[0] * s[2];
        auto x = randf(g, n, -30, 30), dy = randf(g, n, -1, 1);
        if (n > 20) x[g.below((int)n)] = NAN;
        for (int log = 0; log < 2; log++) {
            std::vector<float> y1(n), y2(n), d1(n), d2(n);
            ln_ref_softmax(nullptr, log, s[0], s[1], s[2], x.data(), y1.data());
            off.softmax(ctx, log, s[0], s[1], s[2], x.data(), y2.data());
            CHECK(same_bytes(y1.data(), y2.data(), n * 4), "staged softmax log %d", log);
            ln_ref_softmax_backward(nullptr, log, s[0], s[1], s[2], y1.data(), dy.data(), d1.data());
            off.softmax_backward(ctx, log, s[0], s[1], s[2], y1.data(), dy.data(), d2.data());
            CHECK(same_bytes(d1.data(), d2.data(), n * 4), "staged softmax_backward log %d", log);
        }
        for (int op = 0; op <= LN_MEAN; op++) {
            bool pos = op == LN_MAX || op == LN_MIN;
            std::vector<float> v1(rows), v2(rows);
            std::vector<int32_t> p1(rows), p2(rows, -7);
            ln_ref_reduce_dim(nullptr, (ln_reduce_op)op, s[0], s[1], s[2], x.data(), v1.data(), pos ? p1.data() : nullptr);
            off.reduce_dim(ctx, (ln_reduce_op)op, s[0], s[1], s[2], x.data(), v2.data(), pos ? p2.data() : nullptr);
            CHECK(same_bytes(v1.data(), v2.data(), rows * 4) && (!pos || p1 == p2), "staged reduce_dim op %d", op);
        }
    }
    /* binary: the new comparisons host-staged, the original ops on the kernel;
     * every dtype the kernel takes (float16/bfloat16 through float32, as the
     * kernel computes them), out == a in place */
    ln_dtype dts[] = {LN_FLOAT32, LN_INT32, LN_UINT8, LN_FLOAT16, LN_BFLOAT16};
    for (int64_t n : {1, 9, 5000}) {
        for (ln_dtype dt : dts) {
            size_t es = ln_dtype_size(dt), bytes = n * es;
            std::vector<char> a(bytes), b(bytes);
            for (int64_t i = 0; i < n; i++) {
                double va = g.below(7) - 3 + (dt == LN_INT32 || dt == LN_UINT8 ? 0 : 0.5 * g.below(2));
                double vb = g.below(2) ? va : g.below(7) - 3;
                if (dt == LN_UINT8) { va = va < 0 ? -va : va; vb = vb < 0 ? -vb : vb; }
                ln_store_from_double(a.data(), dt, i, va);
                ln_store_from_double(b.data(), dt, i, vb);
            }
            for (int op = 0; op <= LN_GE; op++) {
                std::vector<char> o1(bytes), o2(bytes);
                ln_cuda_binary(ctx, (ln_binary_op)op, dt, n, a.data(), b.data(), o1.data());
                downloaded = 0;
                CHECK(off.binary(ctx, (ln_binary_op)op, dt, n, a.data(), b.data(), o2.data()) == 0, "staged binary rc");
                CHECK(same_bytes(o1.data(), o2.data(), bytes), "staged binary op %d %s n %ld", op, ln_dtype_name(dt), (long)n);
                CHECK((downloaded != 0) == (op > LN_EQ), "binary op %d: host-staged exactly for the new comparisons", op);
                auto z = a;
                off.binary(ctx, (ln_binary_op)op, dt, n, z.data(), b.data(), z.data());
                CHECK(same_bytes(o1.data(), z.data(), bytes), "staged binary in place op %d %s", op, ln_dtype_name(dt));
                /* out = a OP a in place: one buffer, staged once (as the reference sees it) */
                std::vector<char> q1(bytes), q2 = a;
                ln_cuda_binary(ctx, (ln_binary_op)op, dt, n, a.data(), a.data(), q1.data());
                downloaded = uploaded = 0;
                off.binary(ctx, (ln_binary_op)op, dt, n, q2.data(), q2.data(), q2.data());
                CHECK(same_bytes(q1.data(), q2.data(), bytes), "staged binary a OP a in place op %d %s", op, ln_dtype_name(dt));
                CHECK(op <= LN_EQ || (downloaded == bytes && uploaded == bytes), "a OP a in place: staged once (%zu down)", downloaded);
                for (int sf = 0; sf < 2; sf++) {
                    ln_cuda_binary_scalar(ctx, (ln_binary_op)op, dt, n, a.data(), 1.0, sf, o1.data());
                    off.binary_scalar(ctx, (ln_binary_op)op, dt, n, a.data(), 1.0, sf, o2.data());
                    CHECK(same_bytes(o1.data(), o2.data(), bytes), "staged binary_scalar op %d %s sf %d", op, ln_dtype_name(dt), sf);
                }
            }
        }
    }
    /* adam: AdamW host-staged, Adam on the kernel; both against the reference */
    int64_t n = 4099;
    auto p0 = randf(g, n, -1, 1);
    ln_adam_params ap[] = {{3e-3f, 0.8f, 0.9f, 1e-6f, 0.1f, 1, 0}, {1e-2f, 0.9f, 0.999f, 1e-8f, 0.5f, 1, 1}};
    for (auto adam : ap) {
        auto a = p0, b = p0; std::vector<float> m1(n), v1(n), m2(n), v2(n);
        downloaded = 0;
        for (int step = 1; step <= 3; step++) {
            auto gr = randf(g, n, -1, 1);
            adam.step = step;
            ln_ref_adam_step(nullptr, &adam, n, a.data(), gr.data(), m1.data(), v1.data());
            off.adam_step(ctx, &adam, n, b.data(), gr.data(), m2.data(), v2.data());
        }
        CHECK(a == b && m1 == m2 && v1 == v2, "staged adam decoupled %d", adam.decoupled_weight_decay);
        CHECK((downloaded != 0) == (adam.decoupled_weight_decay != 0), "adam: host-staged exactly for AdamW");
    }
    /* no reference handed over: an error, nothing written */
    reference_now = nullptr;
    std::vector<float> x(5, 1.0f), y(5, 7.0f);
    ln_unary_params p = {0, 0, 0};
    CHECK(off.unary(ctx, LN_UNARY_EXP, &p, 5, x.data(), y.data()) == LN_EDEVICE && y[0] == 7.0f, "staged without reference");
    reference_now = &ln_ref_backend;
}

int main() {
    ln_cuda_context *ctx = make_ctx();
    test_binary(ctx); fprintf(stderr, "binary done\n");
    test_reduce(ctx); fprintf(stderr, "reduce done\n");
    test_argmax(ctx); fprintf(stderr, "argmax done\n");
    test_families(ctx); fprintf(stderr, "families done\n");
    test_copy(ctx); fprintf(stderr, "copy done\n");
    test_gather(ctx);
    test_random(ctx); fprintf(stderr, "random done\n");
    test_pool(ctx); fprintf(stderr, "pool done\n");
    test_activation(ctx); fprintf(stderr, "activation done\n");
    test_batchnorm(ctx); fprintf(stderr, "batchnorm done\n");
    test_loss(ctx); fprintf(stderr, "loss done\n");
    test_optim(ctx);
    test_host_staged(ctx); fprintf(stderr, "host-staged done\n");
    test_augment(ctx); fprintf(stderr, "augment done\n");
    printf("%d checks, %d failures (%ld launches, %ld barriers)\n", checks, failures, ln_emu_launches, ln_emu_barriers);
    return failures != 0;
}
