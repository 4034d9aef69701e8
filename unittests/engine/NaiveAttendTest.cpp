//===- NaiveAttendTest.cpp - the naive MLA attend step, every ISA ---------===//
//
// cpu::naiveAttendChunk over two chunks (the running max / sum merge)
// against a plain double-precision softmax attention over the rows each
// token's position allows; ragged token blocks, positions that mask part of
// a chunk or all of it, strided queries, each ISA path against the scalar
// one; and the vector exp against the double one.
//
//===----------------------------------------------------------------------===//
#include "cpu/Isa.h"
#include "cpu/NaiveAttend.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

struct Case {
  int64_t tokens, heads, dn, dr, dv, rows, chunk;
  std::vector<int32_t> pos;
  // q as one [T, H, dn + dr] buffer: q_nope and q_rope are strided views.
  std::vector<float> q, kv, rope; // kv: [rows, H * (dn + dv)], rope: [rows, dr]

  Case(int64_t tokens, int64_t heads, int64_t dn, int64_t dr, int64_t dv,
       int64_t chunk, std::vector<int32_t> positions, std::mt19937 &rng)
      : tokens(tokens), heads(heads), dn(dn), dr(dr), dv(dv), chunk(chunk),
        pos(std::move(positions)) {
    rows = 0;
    for (int32_t p : pos)
      rows = std::max<int64_t>(rows, p + 1);
    std::normal_distribution<float> d(0.0f, 1.0f);
    auto fill = [&](std::vector<float> &v, size_t n) {
      v.resize(n);
      for (float &x : v)
        x = d(rng);
    };
    fill(q, size_t(tokens * heads * (dn + dr)));
    fill(kv, size_t(rows * heads * (dn + dv)));
    fill(rope, size_t(rows * dr));
  }

  /// q's nope (offset 0) or rope (offset dn) part; in `buf` with every
  /// element `spread` apart when spread > 1.
  MemRef<float, 3> qView(int64_t offset, int64_t width,
                         std::vector<float> *buf = nullptr,
                         int64_t spread = 1) {
    MemRef<float, 3> m;
    m.allocated = m.aligned = buf ? buf->data() : q.data();
    m.offset = offset * spread;
    m.sizes[0] = tokens, m.sizes[1] = heads, m.sizes[2] = width;
    m.strides[0] = heads * (dn + dr) * spread,
    m.strides[1] = (dn + dr) * spread, m.strides[2] = spread;
    return m;
  }

  /// out[t, h, j] in double over every row <= pos[t].
  std::vector<double> reference(double scale) const {
    std::vector<double> out(size_t(tokens * heads * dv), 0.0);
    int64_t group = dn + dv;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const float *qt = q.data() + (t * heads + h) * (dn + dr);
        std::vector<double> s(size_t(pos[size_t(t)] + 1));
        double mx = -INFINITY;
        for (int64_t r = 0; r <= pos[size_t(t)]; ++r) {
          double a = 0;
          for (int64_t j = 0; j < dn; ++j)
            a += double(qt[j]) * kv[size_t(r * heads * group + h * group + j)];
          for (int64_t j = 0; j < dr; ++j)
            a += double(qt[dn + j]) * rope[size_t(r * dr + j)];
          s[size_t(r)] = a * scale;
          mx = std::max(mx, s[size_t(r)]);
        }
        double sum = 0;
        for (double &x : s)
          sum += (x = std::exp(x - mx));
        double *o = out.data() + (t * heads + h) * dv;
        for (int64_t r = 0; r <= pos[size_t(t)]; ++r)
          for (int64_t j = 0; j < dv; ++j)
            o[j] += s[size_t(r)] / sum *
                    kv[size_t(r * heads * group + h * group + dn + j)];
      }
    return out;
  }

  /// The kernel over tokens [t0, t0 + n), chunk by chunk as the generated
  /// driver calls it (kv and rope of one chunk only, rows relative to it),
  /// then divided by the sums. Tokens outside keep `init`. spread > 1:
  /// the queries and the output with every element `spread` apart (the
  /// kernel's element-wise paths instead of the panel packer and the tile
  /// store).
  std::vector<float> run(Isa isa, float scale, int64_t t0, int64_t n,
                         float init = 0.0f, int64_t spread = 1) {
    int64_t group = dn + dv;
    std::vector<float> out(size_t(tokens * heads * dv), init);
    std::vector<float> qs, os(out.size() * size_t(spread));
    if (spread > 1) {
      qs.assign(q.size() * size_t(spread), NAN);
      for (size_t i = 0; i < q.size(); ++i)
        qs[i * size_t(spread)] = q[i];
    }
    std::vector<float> mx(size_t(tokens * heads), -INFINITY),
        sm(size_t(tokens * heads), 0.0f);
    for (int64_t t = t0; t < t0 + n; ++t)
      std::fill(out.begin() + t * heads * dv, out.begin() + (t + 1) * heads * dv,
                0.0f);
    int64_t sz3[3] = {tokens, heads, dv}, sz2[2] = {tokens, heads},
            sz1[1] = {tokens};
    auto o = makeMemRef<float, 3>(out.data(), sz3);
    if (spread > 1) {
      for (size_t i = 0; i < out.size(); ++i)
        os[i * size_t(spread)] = out[i];
      o.allocated = o.aligned = os.data();
      for (int64_t &st : o.strides)
        st *= spread;
    }
    auto m = makeMemRef<float, 2>(mx.data(), sz2);
    auto s = makeMemRef<float, 2>(sm.data(), sz2);
    auto p = makeMemRef<int32_t, 1>(pos.data(), sz1);
    for (int64_t c0 = 0; c0 < rows; c0 += chunk) {
      int64_t cnt = std::min(chunk, rows - c0);
      // Whole-chunk buffers as the driver allocates them; rows past the
      // context are garbage the kernel must not read into the result.
      std::vector<float> kvc(size_t(chunk * heads * group), NAN),
          rc(size_t(chunk * dr), NAN);
      std::memcpy(kvc.data(), kv.data() + c0 * heads * group,
                  size_t(cnt * heads * group) * sizeof(float));
      std::memcpy(rc.data(), rope.data() + c0 * dr,
                  size_t(cnt * dr) * sizeof(float));
      int64_t kvSz[2] = {chunk, heads * group}, rSz[2] = {chunk, dr};
      std::string e = naiveAttendChunk(
          isa, qView(0, dn, spread > 1 ? &qs : nullptr, spread),
          qView(dn, dr, spread > 1 ? &qs : nullptr, spread), p,
          makeMemRef<float, 2>(kvc.data(), kvSz),
          makeMemRef<float, 2>(rc.data(), rSz), m, s, o, t0, n, c0, cnt, scale);
      EXPECT_EQ(e, "");
    }
    if (spread > 1)
      for (size_t i = 0; i < out.size(); ++i)
        out[i] = os[i * size_t(spread)];
    for (int64_t t = t0; t < t0 + n; ++t)
      for (int64_t h = 0; h < heads; ++h)
        for (int64_t j = 0; j < dv; ++j)
          out[size_t((t * heads + h) * dv + j)] /= sm[size_t(t * heads + h)];
    return out;
  }
};

double maxAbsDiff(const std::vector<float> &a, const std::vector<double> &b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(double(a[i]) - b[i]));
  return d;
}

/// Every ISA path: within f32 accumulation of the double reference, and
/// of the scalar path.
void checkEveryIsa(Case &c, float scale, double tol) {
  std::vector<double> ref = c.reference(scale);
  std::vector<float> scalar = c.run(Isa::Scalar, scale, 0, c.tokens);
  EXPECT_LT(maxAbsDiff(scalar, ref), tol) << "scalar";
  std::vector<double> scalarD(scalar.begin(), scalar.end());
  for (Isa isa : supportedIsas()) {
    std::vector<float> out = c.run(isa, scale, 0, c.tokens);
    EXPECT_LT(maxAbsDiff(out, ref), tol) << isaName(isa);
    EXPECT_LT(maxAbsDiff(out, scalarD), tol) << isaName(isa) << " vs scalar";
  }
}

TEST(NaiveAttend, CausalPrefillOverTwoChunksMatchesTheF64Softmax) {
  std::mt19937 rng(7);
  // 45 tokens: a whole block of 32 and a ragged one of 13. Positions 20..64
  // over chunks of 40 rows: the first chunk is masked in part for the
  // early tokens, the second is masked whole for those before row 40.
  std::vector<int32_t> pos;
  for (int32_t t = 0; t < 45; ++t)
    pos.push_back(20 + t);
  Case c(45, 3, 64, 32, 64, 40, pos, rng);
  checkEveryIsa(c, 0.125f, 5e-6);
}

TEST(NaiveAttend, OddWidthsAndShuffledPositions) {
  std::mt19937 rng(11);
  // Widths no tile size divides; positions in any order (a token's rows are
  // its own), some far apart, three chunks of 17.
  std::vector<int32_t> pos;
  std::uniform_int_distribution<int32_t> d(0, 50);
  for (int t = 0; t < 37; ++t)
    pos.push_back(d(rng));
  pos[5] = 0;
  Case c(37, 2, 20, 6, 13, 17, pos, rng);
  // Large scores: exp over a wide range of arguments.
  checkEveryIsa(c, 0.6f, 5e-6);
}

TEST(NaiveAttend, OnlyTheGivenTokensChange) {
  std::mt19937 rng(3);
  std::vector<int32_t> pos;
  for (int32_t t = 0; t < 70; ++t)
    pos.push_back(t);
  Case c(70, 2, 16, 8, 16, 24, pos, rng);
  std::vector<double> ref = c.reference(0.25f);
  for (Isa isa : supportedIsas()) {
    // Tokens [10, 43): a sequence of a ragged step.
    std::vector<float> out = c.run(isa, 0.25f, 10, 33, 5.0f);
    for (int64_t t = 0; t < 70; ++t)
      for (int64_t i = 0; i < 2 * 16; ++i) {
        float v = out[size_t(t * 32 + i)];
        if (t < 10 || t >= 43)
          ASSERT_EQ(v, 5.0f) << isaName(isa) << " token " << t;
        else
          ASSERT_NEAR(v, ref[size_t(t * 32 + i)], 5e-6)
              << isaName(isa) << " token " << t;
      }
  }
}

TEST(NaiveAttend, PackerAndTileStoreGiveTheElementLoopsBits) {
  // Unit-stride queries go through the ISA's panel packer (a short block's
  // missing tokens zero, not repeated) and O through the tile store into
  // token rows; strided ones through the element loops. Same values, same
  // sums in the same order: bit for bit, on every ISA.
  std::mt19937 rng(5);
  std::vector<int32_t> pos;
  for (int32_t t = 0; t < 45; ++t)
    pos.push_back(3 + t);
  Case c(45, 3, 20, 6, 19, 17, pos, rng);
  for (Isa isa : supportedIsas()) {
    std::vector<float> fast = c.run(isa, 0.3f, 2, 41, 5.0f);
    std::vector<float> slow = c.run(isa, 0.3f, 2, 41, 5.0f, 2);
    ASSERT_EQ(fast.size(), slow.size());
    for (size_t i = 0; i < fast.size(); ++i)
      ASSERT_EQ(std::memcmp(&fast[i], &slow[i], 4), 0)
          << isaName(isa) << " at " << i << ": " << fast[i] << " vs "
          << slow[i];
  }
}

TEST(NaiveAttend, BadShapesAreReportedAndNothingIsWritten) {
  std::vector<float> buf(4096, 1.0f);
  std::vector<int32_t> pos(4, 0);
  int64_t q3[3] = {4, 2, 8}, r3[3] = {4, 2, 4}, o3[3] = {4, 2, 8},
          kv2[2] = {3, 31}, rp2[2] = {3, 4}, st2[2] = {4, 2}, p1[1] = {4};
  std::vector<float> out(64, 7.0f);
  std::string e = naiveAttendChunk(
      activeIsa(), makeMemRef<float, 3>(buf.data(), q3),
      makeMemRef<float, 3>(buf.data(), r3), makeMemRef<int32_t, 1>(pos.data(), p1),
      makeMemRef<float, 2>(buf.data(), kv2), makeMemRef<float, 2>(buf.data(), rp2),
      makeMemRef<float, 2>(buf.data(), st2), makeMemRef<float, 2>(buf.data(), st2),
      makeMemRef<float, 3>(out.data(), o3), 0, 4, 0, 3, 1.0f);
  EXPECT_EQ(e, "naive_attend: kv has 31 columns, expected 32");
  for (float v : out)
    EXPECT_EQ(v, 7.0f);
  kv2[1] = 32;
  e = naiveAttendChunk(
      activeIsa(), makeMemRef<float, 3>(buf.data(), q3),
      makeMemRef<float, 3>(buf.data(), r3), makeMemRef<int32_t, 1>(pos.data(), p1),
      makeMemRef<float, 2>(buf.data(), kv2), makeMemRef<float, 2>(buf.data(), rp2),
      makeMemRef<float, 2>(buf.data(), st2), makeMemRef<float, 2>(buf.data(), st2),
      makeMemRef<float, 3>(out.data(), o3), 0, 4, 0, 5, 1.0f);
  EXPECT_EQ(e, "naive_attend: 5 rows from row 0, the chunk holds 3");
}

/// ulps between two floats of the same sign.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  return std::abs(int64_t(ia) - int64_t(ib));
}

TEST(NaiveAttend, VectorExpIsWithinTwoUlps) {
  for (Isa isa : supportedIsas()) {
    const AttendKernels &k = attendKernelsFor(isa);
    std::vector<float> x;
    for (float v = -87.0f; v < 88.0f; v += 0.00731f)
      x.push_back(v);
    for (float v : {0.0f, -0.0f, 1e-8f, -1e-8f, 0.5f * std::log(2.0f)})
      x.push_back(v);
    std::vector<float> y = x;
    k.expInPlace(y.data(), int64_t(y.size()));
    int64_t worst = 0;
    for (size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, ulps(y[i], float(std::exp(double(x[i])))));
    EXPECT_LE(worst, 2) << isaName(isa);
    // Where exp underflows past the normal range, -inf (masked rows), NaN
    // (kept: a NaN score poisons its row), and overflow.
    float inf = std::numeric_limits<float>::infinity();
    std::vector<float> edge{-inf, -100.0f, -87.5f, NAN, inf, 100.0f, 0.0f};
    k.expInPlace(edge.data(), int64_t(edge.size()));
    EXPECT_EQ(edge[0], 0.0f) << isaName(isa);
    EXPECT_LT(edge[1], 1e-38f) << isaName(isa);
    EXPECT_LT(edge[2], 1.2e-38f) << isaName(isa);
    EXPECT_TRUE(std::isnan(edge[3])) << isaName(isa);
    EXPECT_EQ(edge[4], inf) << isaName(isa);
    EXPECT_EQ(edge[5], inf) << isaName(isa);
    EXPECT_EQ(edge[6], 1.0f) << isaName(isa);
  }
}

} // namespace
