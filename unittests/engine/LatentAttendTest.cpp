//===- LatentAttendTest.cpp - decode's absorbed attention, every ISA ------===//
//
// cpu::latentAttendDecode against a plain double-precision softmax over the
// rows each token's position allows: contexts of one row, of exactly one
// block, and ending one row into a block; a head count that is not a
// multiple of the dot kernel's rows; strided query views; scores far apart
// (the blocks' maxima differ, so the merge's rescaling matters); each ISA
// path against the scalar one; bad shapes reported with nothing written;
// bf16 and FP8 caches (contiguous and paged) bit for bit the f32 path on
// their decoded values.
//
//===----------------------------------------------------------------------===//
#include "cpu/LatentAttend.h"
#include "cpu/Isa.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

struct Case {
  int64_t tokens, heads, dc, dr, layers = 2, capacity, layer = 1;
  std::vector<int32_t> pos;
  std::vector<float> q;     // [T, H, dc + dr]: q_latent and q_rope are views
  std::vector<float> cache; // [layers, capacity, dc + dr]

  Case(int64_t tokens, int64_t heads, int64_t dc, int64_t dr, int64_t capacity,
       std::vector<int32_t> positions, float spread, std::mt19937 &rng)
      : tokens(tokens), heads(heads), dc(dc), dr(dr), capacity(capacity),
        pos(std::move(positions)) {
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    q.resize(size_t(tokens * heads * (dc + dr)));
    for (float &v : q)
      v = spread * u(rng);
    cache.resize(size_t(layers * capacity * (dc + dr)));
    for (float &v : cache)
      v = u(rng);
  }

  MemRef<float, 3> qView(int64_t off, int64_t n) {
    MemRef<float, 3> m;
    m.allocated = m.aligned = q.data();
    m.offset = off;
    m.sizes[0] = tokens;
    m.sizes[1] = heads;
    m.sizes[2] = n;
    m.strides[0] = heads * (dc + dr);
    m.strides[1] = dc + dr;
    m.strides[2] = 1;
    return m;
  }

  std::vector<double> reference(double scale) const {
    std::vector<double> out(size_t(tokens * heads * dc), 0.0);
    int64_t w = dc + dr;
    const float *rows = cache.data() + layer * capacity * w;
    for (int64_t t = 0; t < tokens; ++t)
      for (int64_t h = 0; h < heads; ++h) {
        const float *qt = q.data() + (t * heads + h) * w;
        std::vector<double> s(size_t(pos[size_t(t)] + 1));
        double mx = -INFINITY;
        for (int64_t r = 0; r <= pos[size_t(t)]; ++r) {
          double a = 0;
          for (int64_t j = 0; j < w; ++j)
            a += double(qt[j]) * rows[r * w + j];
          s[size_t(r)] = a * scale;
          mx = std::max(mx, s[size_t(r)]);
        }
        double sum = 0;
        for (double &x : s)
          sum += (x = std::exp(x - mx));
        double *o = out.data() + (t * heads + h) * dc;
        for (int64_t r = 0; r <= pos[size_t(t)]; ++r)
          for (int64_t j = 0; j < dc; ++j)
            o[j] += s[size_t(r)] / sum * rows[r * w + j];
      }
    return out;
  }

  std::string run(Isa isa, float scale, std::vector<float> &out,
                  int64_t layerArg = -1, int64_t outHeads = -1) {
    out.assign(size_t(tokens * heads * dc), 7.0f);
    int64_t oSz[3] = {tokens, outHeads < 0 ? heads : outHeads, dc},
            cSz[3] = {layers, capacity, dc + dr}, pSz[1] = {tokens};
    return latentAttendDecode(isa, qView(0, dc), qView(dc, dr),
                              makeMemRef<float, 3>(cache.data(), cSz),
                              makeMemRef<int32_t, 1>(pos.data(), pSz),
                              makeMemRef<float, 3>(out.data(), oSz),
                              layerArg < 0 ? layer : layerArg, scale);
  }
};

double maxAbsDiff(const std::vector<float> &a, const std::vector<double> &b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i)
    d = std::max(d, std::abs(double(a[i]) - b[i]));
  return d;
}

void checkEveryIsa(Case &c, float scale, double tol) {
  std::vector<double> ref = c.reference(scale);
  std::vector<float> scalar;
  ASSERT_EQ(c.run(Isa::Scalar, scale, scalar), "");
  EXPECT_LT(maxAbsDiff(scalar, ref), tol) << "scalar";
  std::vector<double> scalarD(scalar.begin(), scalar.end());
  for (Isa isa : supportedIsas()) {
    std::vector<float> out;
    ASSERT_EQ(c.run(isa, scale, out), "") << isaName(isa);
    EXPECT_LT(maxAbsDiff(out, ref), tol) << isaName(isa);
    EXPECT_LT(maxAbsDiff(out, scalarD), tol) << isaName(isa) << " vs scalar";
  }
}

TEST(LatentAttend, BlockEdgesMatchTheF64Softmax) {
  std::mt19937 rng(11);
  // One row; exactly one block (32 rows); one row into the third block;
  // a long context of several blocks. 5 heads: a pass of 4 and one of 1.
  Case c(4, 5, 64, 16, 200, {0, kLatentBlock - 1, 2 * kLatentBlock, 170}, 1.0f,
         rng);
  checkEveryIsa(c, 0.125f, 3e-7);
  // Widths off the vector tiles: 23 values per row (a dot product's tail),
  // 20 latent values (a weighted sum's tail), 6 heads (a tile of 4 and 2
  // single heads), 39 rows (a block and an odd remainder).
  Case odd(2, 6, 20, 3, 64, {38, 11}, 1.0f, rng);
  checkEveryIsa(odd, 0.3f, 3e-7);
  // 13 heads (tiles of 4 and a single head) and 56 latent values (a
  // weighted sum's strips of 16 and a tail of 8).
  Case wide(2, 13, 56, 8, 96, {70, 33}, 1.0f, rng);
  checkEveryIsa(wide, 0.2f, 3e-7);
  // 21 heads (the scores' lanes: a tile of 16 heads and one of 8, padded)
  // and rows of 160 values (three passes of the scores' 64 columns, the
  // last partial); 45 rows (a block and a remainder of 13).
  Case many(1, 21, 150, 10, 64, {44}, 1.0f, rng);
  checkEveryIsa(many, 0.1f, 3e-7);
  // 63 blocks: the pool's slices then come in runs of several blocks, each
  // block's kernels fetching the next one's rows as they compute.
  Case longer(1, 3, 40, 8, 2048, {2000}, 1.0f, rng);
  checkEveryIsa(longer, 0.2f, 3e-7);
  // 4 heads and 1 head (half the scores' lanes or more padding), rows of
  // 71 values: an odd last column, past a pass boundary at 64.
  Case fourHeads(2, 4, 66, 5, 80, {70, 9}, 1.0f, rng);
  checkEveryIsa(fourHeads, 0.2f, 3e-7);
  Case oneHead(1, 1, 66, 5, 40, {33}, 1.0f, rng);
  checkEveryIsa(oneHead, 0.2f, 3e-7);
}

// Drawn shapes: tokens, heads, latent and rope widths, context lengths
// from one row to several blocks, the softmax scale; every ISA against
// the float64 softmax. DS_RANDOM_SHAPES=N draws N cases (default 16).
TEST(LatentAttend, DrawnShapesMatchTheF64Softmax) {
  const char *env = std::getenv("DS_RANDOM_SHAPES");
  const int cases = env && std::atoi(env) > 0 ? std::atoi(env) : 16;
  for (int i = 0; i < cases; ++i) {
    std::mt19937 rng(700u + unsigned(i));
    auto draw = [&](int64_t lo, int64_t hi) {
      return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
    };
    int64_t tokens = draw(1, 4), heads = draw(1, 24), dc = draw(1, 200),
            dr = draw(1, 40);
    int64_t longest = draw(0, 2) ? draw(0, 100) : draw(100, 700);
    std::vector<int32_t> pos(static_cast<size_t>(tokens));
    for (int32_t &p : pos)
      p = int32_t(draw(0, longest));
    float scale = std::uniform_real_distribution<float>(0.02f, 0.3f)(rng);
    Case c(tokens, heads, dc, dr, longest + 1 + draw(0, 40), pos, 1.0f, rng);
    SCOPED_TRACE("case " + std::to_string(i) + ": tokens " +
                 std::to_string(tokens) + " heads " + std::to_string(heads) +
                 " dc " + std::to_string(dc) + " dr " + std::to_string(dr) +
                 " longest " + std::to_string(longest));
    checkEveryIsa(c, scale, 1.5e-6);
  }
}

TEST(LatentAttend, FarApartScoresMergeAcrossBlocks) {
  std::mt19937 rng(5);
  // Scores spread over tens of units: each block's max differs, and an
  // unscaled exp would overflow; the merge rescales every block's sums.
  Case c(2, 3, 48, 8, 128, {127, 90}, 6.0f, rng);
  checkEveryIsa(c, 1.0f, 5e-6);
}

TEST(LatentAttend, OtherLayerAndPositionsAreNotRead) {
  std::mt19937 rng(3);
  Case c(1, 2, 32, 8, 96, {40}, 1.0f, rng);
  std::vector<float> before;
  ASSERT_EQ(c.run(activeIsa(), 0.2f, before), "");
  // Rows past the position and the other layer changed: the same result.
  int64_t w = c.dc + c.dr;
  for (int64_t r = 41; r < c.capacity; ++r)
    c.cache[size_t((c.layer * c.capacity + r) * w)] = NAN;
  for (int64_t i = 0; i < c.capacity * w; ++i)
    c.cache[size_t(i)] = NAN; // layer 0
  std::vector<float> after;
  ASSERT_EQ(c.run(activeIsa(), 0.2f, after), "");
  EXPECT_EQ(before, after);
}

TEST(LatentAttend, BadShapesAreReportedAndNothingIsWritten) {
  std::mt19937 rng(1);
  Case c(2, 2, 16, 8, 40, {3, 39}, 1.0f, rng);
  std::vector<float> out;
  EXPECT_EQ(c.run(activeIsa(), 1.0f, out, /*layer=*/2),
            "latent_attention: layer 2 of a cache of 2 layers");
  for (float v : out)
    ASSERT_EQ(v, 7.0f);
  EXPECT_EQ(c.run(activeIsa(), 1.0f, out, -1, /*outHeads=*/3),
            "latent_attention: the output is [2, 3, 16], expected [2, 2, 16]");
  c.pos[1] = 40;
  EXPECT_EQ(c.run(activeIsa(), 1.0f, out),
            "latent_attention: position 40 of token 1 outside the cache's 40 "
            "rows");
  for (float v : out)
    ASSERT_EQ(v, 7.0f);
}

/// A contiguous cache ([layers, perm.size() * page rows, rowLen] of T) in
/// physical pages: logical page i of every layer at page perm[i].
template <typename T>
std::vector<T> intoPages(const std::vector<T> &rows, int64_t layers,
                         int64_t page, const std::vector<int32_t> &perm,
                         int64_t rowLen, T fill) {
  int64_t pages = int64_t(perm.size()), capacity = pages * page;
  std::vector<T> paged(size_t(layers * capacity * rowLen), fill);
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t r = 0; r < capacity; ++r)
      std::copy_n(rows.begin() + (l * capacity + r) * rowLen, rowLen,
                  paged.begin() +
                      ((l * pages + perm[size_t(r / page)]) * page + r % page) *
                          rowLen);
  return paged;
}

/// The same rows through a paged cache (pages shuffled, two sequences):
/// bit for bit the contiguous kernel's result per token, and the rows of the
/// tokens of a sequence long enough for the naive form are not written.
TEST(LatentAttend, PagedRowsGiveTheContiguousResult) {
  std::mt19937 rng(9);
  const int64_t page = 16, pages = 12;
  // Tokens 0-1: sequence 0 (positions 37, 38); tokens 2-4: sequence 1
  // (positions 5..7), whose 3 new tokens reach naiveMinTokens = 3.
  Case c(5, 5, 32, 8, page * pages, {37, 38, 5, 6, 7}, 1.0f, rng);
  int64_t w = c.dc + c.dr;
  std::vector<float> contiguous;
  ASSERT_EQ(c.run(activeIsa(), 0.3f, contiguous), "");
  // Page i of sequence 0 is physical page perm[i]; sequence 1 unused pages.
  std::vector<int32_t> perm = {7, 2, 11, 0, 5, 9, 1, 3, 4, 6, 8, 10};
  std::vector<float> paged = intoPages(c.cache, c.layers, page, perm, w, NAN);
  std::vector<int32_t> tables(size_t(2 * pages));
  std::copy(perm.begin(), perm.end(), tables.begin());
  std::copy(perm.begin(), perm.end(), tables.begin() + pages);
  std::vector<int32_t> starts = {0, 2, 5};
  int64_t cSz[4] = {c.layers, pages, page, w}, tSz[2] = {2, pages},
          sSz[1] = {3}, pSz[1] = {c.tokens}, oSz[3] = {c.tokens, c.heads, c.dc};
  for (Isa isa : supportedIsas()) {
    std::vector<float> contiguousIsa, out(contiguous.size(), 7.0f);
    ASSERT_EQ(c.run(isa, 0.3f, contiguousIsa), "");
    ASSERT_EQ(pagedLatentAttendDecode(
                  isa, c.qView(0, c.dc), c.qView(c.dc, c.dr),
                  makeMemRef<float, 4>(paged.data(), cSz),
                  makeMemRef<int32_t, 1>(c.pos.data(), pSz),
                  makeMemRef<int32_t, 1>(starts.data(), sSz),
                  makeMemRef<int32_t, 2>(tables.data(), tSz),
                  makeMemRef<float, 3>(out.data(), oSz), c.layer, page,
                  /*naiveMinTokens=*/3, 0.3f),
              "")
        << isaName(isa);
    size_t half = size_t(2 * c.heads * c.dc);
    EXPECT_TRUE(
        std::equal(out.begin(), out.begin() + half, contiguousIsa.begin()))
        << isaName(isa);
    for (size_t i = half; i < out.size(); ++i)
      ASSERT_EQ(out[i], 7.0f) << isaName(isa) << ": a naive row written";
  }
  // A page outside the cache is reported, nothing written.
  tables[2] = 40;
  std::vector<float> out(contiguous.size(), 7.0f);
  EXPECT_EQ(pagedLatentAttendDecode(
                activeIsa(), c.qView(0, c.dc), c.qView(c.dc, c.dr),
                makeMemRef<float, 4>(paged.data(), cSz),
                makeMemRef<int32_t, 1>(c.pos.data(), pSz),
                makeMemRef<int32_t, 1>(starts.data(), sSz),
                makeMemRef<int32_t, 2>(tables.data(), tSz),
                makeMemRef<float, 3>(out.data(), oSz), c.layer, page, 3, 0.3f),
            "paged_latent_attention: page 40 of sequence 0 outside the "
            "cache's 12 pages");
  for (float v : out)
    ASSERT_EQ(v, 7.0f);
}

/// e4m3fn's value (no NaN codes are drawn).
float e4m3(uint8_t code) {
  int sign = code >> 7, exp = (code >> 3) & 15, man = code & 7;
  float v = exp ? std::ldexp(1.0f + float(man) / 8, exp - 7)
                : std::ldexp(float(man) / 8, -6);
  return sign ? -v : v;
}

float widen(uint16_t bf16) {
  uint32_t bits = uint32_t(bf16) << 16;
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

/// The case's cache re-drawn as bf16 values (`bf16`) and in FlashMLA's FP8
/// layout (`fp8`: dc e4m3 bytes, dc / group f32 scales, dr bf16 rope
/// values a row), each with its decoded values; c.cache becomes the FP8
/// one's, bf16F32 the bf16 one's.
struct Coded {
  int64_t group, rowBytes;
  std::vector<uint16_t> bf16;
  std::vector<float> bf16F32;
  std::vector<uint8_t> fp8;

  Coded(Case &c, int64_t group, std::mt19937 &rng)
      : group(group), rowBytes(c.dc + 4 * (c.dc / group) + 2 * c.dr) {
    int64_t w = c.dc + c.dr, rows = c.layers * c.capacity;
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f), sc(0.01f, 0.2f);
    auto bf16Of = [&](float v) {
      uint32_t bits;
      std::memcpy(&bits, &v, 4);
      return uint16_t(bits >> 16);
    };
    bf16.resize(size_t(rows * w));
    bf16F32.resize(bf16.size());
    for (size_t i = 0; i < bf16.size(); ++i)
      bf16F32[i] = widen(bf16[i] = bf16Of(u(rng)));
    fp8.resize(size_t(rows * rowBytes));
    for (int64_t r = 0; r < rows; ++r) {
      uint8_t *row = fp8.data() + r * rowBytes;
      float *f = c.cache.data() + r * w;
      for (int64_t g = 0; g < c.dc / group; ++g) {
        float scale = sc(rng);
        std::memcpy(row + c.dc + 4 * g, &scale, 4);
        for (int64_t i = g * group; i < (g + 1) * group; ++i) {
          uint8_t code;
          do
            code = uint8_t(byte(rng));
          while ((code & 0x7F) == 0x7F);
          row[i] = code;
          f[i] = e4m3(code) * scale;
        }
      }
      for (int64_t i = 0; i < c.dr; ++i) {
        uint16_t v = bf16Of(u(rng));
        std::memcpy(row + c.dc + 4 * (c.dc / group) + 2 * i, &v, 2);
        f[c.dc + i] = widen(v);
      }
    }
  }
};

bool sameBits(const std::vector<float> &a, const std::vector<float> &b) {
  return a.size() == b.size() &&
         std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(LatentAttend, Bf16AndFp8CachesGiveTheF32PathOnTheirValues) {
  std::mt19937 rng(21);
  // 3 tokens over 1, 40 and 75 rows (blocks with tails); 6 heads; rows of
  // 64 latent values (two scale groups of 32) and 8 rope values.
  Case c(3, 6, 64, 8, 80, {0, 39, 74}, 1.0f, rng);
  Coded coded(c, 32, rng);
  int64_t w = c.dc + c.dr;
  int64_t bSz[3] = {c.layers, c.capacity, w},
          fSz[3] = {c.layers, c.capacity, coded.rowBytes}, pSz[1] = {c.tokens},
          oSz[3] = {c.tokens, c.heads, c.dc};
  auto pos = makeMemRef<int32_t, 1>(c.pos.data(), pSz);
  for (Isa isa : supportedIsas()) {
    std::vector<float> f32;
    ASSERT_EQ(c.run(isa, 0.2f, f32), "") << isaName(isa);
    std::vector<float> out(f32.size(), 7.0f);
    ASSERT_EQ(latentAttendDecodeFp8(
                  isa, c.qView(0, c.dc), c.qView(c.dc, c.dr),
                  makeMemRef<uint8_t, 3>(coded.fp8.data(), fSz), coded.group,
                  pos, makeMemRef<float, 3>(out.data(), oSz), c.layer, 0.2f),
              "")
        << isaName(isa);
    EXPECT_TRUE(sameBits(out, f32)) << "fp8 " << isaName(isa);
    // The bf16 cache against the f32 cache of its widened values.
    std::vector<float> saved = c.cache;
    c.cache = coded.bf16F32;
    ASSERT_EQ(c.run(isa, 0.2f, f32), "") << isaName(isa);
    c.cache = saved;
    ASSERT_EQ(latentAttendDecode(
                  isa, c.qView(0, c.dc), c.qView(c.dc, c.dr),
                  makeMemRef<uint16_t, 3>(coded.bf16.data(), bSz), pos,
                  makeMemRef<float, 3>(out.data(), oSz), c.layer, 0.2f),
              "")
        << isaName(isa);
    EXPECT_TRUE(sameBits(out, f32)) << "bf16 " << isaName(isa);
  }
  // Rows of another size and a group that does not divide the latent are
  // reported, nothing written.
  std::vector<float> out(size_t(c.tokens * c.heads * c.dc), 7.0f);
  int64_t shortSz[3] = {c.layers, c.capacity, coded.rowBytes - 1};
  EXPECT_EQ(latentAttendDecodeFp8(
                activeIsa(), c.qView(0, c.dc), c.qView(c.dc, c.dr),
                makeMemRef<uint8_t, 3>(coded.fp8.data(), shortSz), coded.group,
                pos, makeMemRef<float, 3>(out.data(), oSz), c.layer, 0.2f),
            "latent_attention: FP8 cache rows of 87 bytes, expected 88 (64 "
            "e4m3 values, 2 f32 scales, 8 bf16 rope values)");
  EXPECT_EQ(latentAttendDecodeFp8(
                activeIsa(), c.qView(0, c.dc), c.qView(c.dc, c.dr),
                makeMemRef<uint8_t, 3>(coded.fp8.data(), fSz), 48, pos,
                makeMemRef<float, 3>(out.data(), oSz), c.layer, 0.2f),
            "latent_attention: an FP8 scale group of 48 for 64 latent values "
            "(a positive divisor)");
  for (float v : out)
    ASSERT_EQ(v, 7.0f);
}

/// The FP8 cache through shuffled pages: the contiguous FP8 result per
/// token, bit for bit, also at an odd row size (odd rope addresses).
TEST(LatentAttend, PagedFp8RowsGiveTheContiguousResult) {
  std::mt19937 rng(17);
  const int64_t page = 16, pages = 6;
  for (int64_t dr : {8, 3}) {
    // dr = 3 with groups of 5: rows of 40 + 32 + 6 = 78 bytes.
    int64_t dc = dr == 8 ? 64 : 40, group = dr == 8 ? 32 : 5;
    Case c(2, 3, dc, dr, page * pages, {70, 20}, 1.0f, rng);
    Coded coded(c, group, rng);
    int64_t rb = coded.rowBytes;
    std::vector<int32_t> perm = {4, 1, 5, 0, 3, 2};
    std::vector<uint8_t> paged =
        intoPages(coded.fp8, c.layers, page, perm, rb, uint8_t(0xFF));
    std::vector<int32_t> tables(perm), starts = {0, 2};
    int64_t cSz[4] = {c.layers, pages, page, rb}, tSz[2] = {1, pages},
            sSz[1] = {2}, pSz[1] = {c.tokens},
            oSz[3] = {c.tokens, c.heads, c.dc};
    for (Isa isa : supportedIsas()) {
      std::vector<float> f32, out(size_t(c.tokens * c.heads * c.dc), 7.0f);
      ASSERT_EQ(c.run(isa, 0.3f, f32), "");
      ASSERT_EQ(pagedLatentAttendDecodeFp8(
                    isa, c.qView(0, c.dc), c.qView(c.dc, c.dr),
                    makeMemRef<uint8_t, 4>(paged.data(), cSz), group,
                    makeMemRef<int32_t, 1>(c.pos.data(), pSz),
                    makeMemRef<int32_t, 1>(starts.data(), sSz),
                    makeMemRef<int32_t, 2>(tables.data(), tSz),
                    makeMemRef<float, 3>(out.data(), oSz), c.layer, page,
                    /*naiveMinTokens=*/-1, 0.3f),
                "")
          << isaName(isa);
      EXPECT_TRUE(sameBits(out, f32)) << isaName(isa) << " dr " << dr;
    }
  }
}

// The AVX-512 tiles sum every score and output value as AVX2's do (the
// same fused adds in the same order; 8 heads 16 rows a vector, then two
// rows a vector), so a token's result does not depend on which of the two
// served it: 8 heads, 16 + 8, 32 + 16 + 8 + padding, 3; blocks of 32
// rows (two groups of 16), 20 (one, then pairs) and 5 or 6 (pairs, an odd
// row left); 81 columns (16 columns a step, one left).
TEST(LatentAttend, Avx512GivesTheAvx2Bits) {
  if (!isaSupported(Isa::Avx512))
    GTEST_SKIP() << "no AVX-512 here";
  std::mt19937 rng(17);
  for (int64_t heads : {8, 24, 61, 3}) {
    Case c(3, heads, 72, 9, 120, {100, 37, 51}, 1.0f, rng);
    std::vector<float> avx2, avx512;
    ASSERT_EQ(c.run(Isa::Avx2, 0.15f, avx2), "");
    ASSERT_EQ(c.run(Isa::Avx512, 0.15f, avx512), "");
    EXPECT_TRUE(sameBits(avx2, avx512)) << heads << " heads";
  }
}

} // namespace
