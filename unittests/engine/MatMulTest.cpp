//===- MatMulTest.cpp - GEMMs on f32/bf16/FP8 weights, every ISA ---------===//
#include "cpu/MatMul.h"
#include "MatMulTestUtil.h"
#include "TestWeight.h"
#include "cpu/Gemm.h"
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/TileGemm.h"
#include "weights/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

namespace {

/// Whether this path rounds x to bf16 for these weights: at every row
/// count, so that decode and prefill compute the same function.
bool roundsX(Isa isa, WeightFormat f, int64_t rows) {
  (void)rows;
  return (isa >= Isa::Avx512Bf16 && f == WeightFormat::BF16) ||
         (isa >= Isa::Avx512Vbmi && f == WeightFormat::FP8);
}

/// matmul over weight rows [r0, r0 + n) on every ISA against a double
/// loop over the same values (and x rounded to bf16 where the path does),
/// with strides wider than the rows. The tolerance is f32 accumulation's:
/// a wrong scale block, a swapped tile or a dropped tail is far outside it.
void checkAllIsas(const TestWeight &w, int64_t rows, int64_t r0, int64_t n,
                  std::mt19937 &rng) {
  int64_t k = w.cols, ldx = k + 3, ldy = n + 5;
  std::vector<float> x =
      normalValues(rng, size_t(std::max<int64_t>(rows, 1) * ldx));
  for (const KernelSet *set : testedSets()) {
    Isa isa = set->isa;
    std::vector<float> y(size_t(std::max<int64_t>(rows, 1) * ldy), -7.0f);
    matmul(*set, x.data(), ldx, rows, w.matrix, r0, n, y.data(), ldy);
    bool rx = roundsX(isa, w.format, rows);
    for (int64_t t = 0; t < rows; ++t) {
      for (int64_t j = 0; j < n; ++j) {
        double want = 0, mag = 0;
        for (int64_t c = 0; c < k; ++c) {
          float xv = x[size_t(t * ldx + c)];
          double term = double(rx ? roundBf16(xv) : xv) *
                        w.values[size_t((r0 + j) * k + c)];
          want += term;
          mag += std::abs(term);
        }
        ASSERT_NEAR(y[size_t(t * ldy + j)], want, 1e-6 * (1 + mag))
            << setName(*set) << " " << formatName(w.format) << " rows " << rows
            << " k " << k << " partRows " << w.partRows << " r0 " << r0
            << " at " << t << "," << j;
      }
      ASSERT_EQ(y[size_t(t * ldy + n)], -7.0f) << "padding written";
    }
  }
}

TEST(MatMul, EveryFormatAndIsaMatchesTheF64Product) {
  std::mt19937 rng(3);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    // Decode rows (1, 3, 4; 5 and 16 in blocks of 4 over the same weight
    // rows), the tile path from 17 rows, prefill rows past one panel; K below, at and
    // past the vector widths, past a 256 chunk, odd; FP8 blocks ragged in
    // both directions (200 = 128 + 72 rows, K 300 = 2*128 + 44).
    for (auto [rows, partRows, k] :
         std::vector<std::tuple<int64_t, int64_t, int64_t>>{{1, 7, 5},
                                                            {1, 200, 300},
                                                            {3, 33, 47},
                                                            {4, 129, 64},
                                                            {5, 200, 33},
                                                            {16, 150, 131},
                                                            {17, 40, 260},
                                                            {20, 30, 300},
                                                            {37, 200, 130},
                                                            {70, 13, 515},
                                                            {0, 8, 8}}) {
      TestWeight w(f, 1, partRows, k, 3, rng);
      checkAllIsas(w, rows, 0, partRows, rng);
    }
}

// linearExact's split: x packed once, rows in tiles over the pool. Each
// output must be the one-thread product's bit for bit (the naive and the
// absorbed forms of attention agree only if neither rounds differently),
// on products large enough to split, row ranges off the tile grid, every
// format (FP8 with ragged scale blocks) and ISA.
TEST(MatMul, F32ProductOverThePoolIsTheSerialOneBitForBit) {
  std::mt19937 rng(29);
  std::normal_distribution<float> d;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (auto [rows, r0, n] :
         std::vector<std::tuple<int64_t, int64_t, int64_t>>{
             {3, 5, 290}, {90, 0, 300}, {130, 7, 251}}) {
      TestWeight w(f, 1, 300, 260, 2, rng);
      int64_t k = w.cols, ldx = k + 3, ldy = n + 5;
      std::vector<float> x(size_t(rows * ldx));
      for (float &v : x)
        v = d(rng);
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        Isa isa = ks.isa;
        std::vector<float> pooled(size_t(rows * ldy), -7.0f),
            serial(size_t(rows * ldy), -7.0f);
        matmulF32(ks, x.data(), ldx, rows, w.matrix, r0, n, pooled.data(), ldy);
        matmulSerialF32(ks, x.data(), ldx, rows, w.matrix, r0, n, serial.data(),
                        ldy);
        ASSERT_EQ(std::memcmp(pooled.data(), serial.data(),
                              pooled.size() * sizeof(float)),
                  0)
            << setName(*set) << " " << formatName(f) << " rows " << rows
            << " r0 " << r0 << " n " << n;
      }
    }
}

// matmulF32's products are exact whatever the weight's format and the
// ISA's tiles (AMX sums x as three bf16 terms): with one weight of 1 or -1
// in each row (at a random column, the rest zeros), each output is that
// one value of x, bit for bit, for x of every f32's 24 significant bits.
// x rounded to bf16 (8), or split into two bf16 terms (about 17), would
// lose its last bits. 40 rows of x: a whole panel of tiles and a partial
// one; K 300: two chunks, the last ragged.
/// n weight rows of k, each zero but for a 1 or -1 at a random column,
/// so every output of an exact product is one value of x.
struct OneHotRows {
  std::vector<int64_t> at; // the column of row j's nonzero
  std::vector<int> w;      // [n, k]
};

OneHotRows oneHotRows(std::mt19937 &rng, int64_t n, int64_t k) {
  std::uniform_int_distribution<int64_t> column(0, k - 1);
  std::uniform_int_distribution<int> sign(0, 1);
  OneHotRows o{std::vector<int64_t>(static_cast<size_t>(n)),
               std::vector<int>(size_t(n * k), 0)};
  for (int64_t j = 0; j < n; ++j) {
    o.at[size_t(j)] = column(rng);
    o.w[size_t(j * k + o.at[size_t(j)])] = sign(rng) ? 1 : -1;
  }
  return o;
}

/// matmulF32 on `set` over `oh` stored as m: each output is exactly its
/// weight row's nonzero times its value of x.
void expectExactOneHot(const KernelSet &set, const std::vector<float> &x,
                       int64_t rows, int64_t k, const WeightMatrix &m,
                       const OneHotRows &oh, const std::string &what) {
  const int64_t n = m.rows;
  std::vector<float> y(size_t(rows * n));
  matmulF32(set, x.data(), k, rows, m, 0, n, y.data(), n);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t j = 0; j < n; ++j) {
      int64_t c = oh.at[size_t(j)];
      float want = float(oh.w[size_t(j * k + c)]) * x[size_t(t * k + c)];
      ASSERT_EQ(y[size_t(t * n + j)], want)
          << setName(set) << " " << what << " row " << t << " output " << j;
    }
}

TEST(MatMul, F32ProductsAreExactOnEveryTile) {
  std::mt19937 rng(31);
  const int64_t rows = 40, n = 70, k = 300;
  const OneHotRows oh = oneHotRows(rng, n, k);
  const std::vector<int> &w = oh.w;
  std::vector<float> x = normalValues(rng, size_t(rows * k));
  // The e4m3 codes of 1 and -1.
  uint8_t one = 0, minusOne = 0;
  for (int b = 0; b < 256; ++b) {
    if (e4m3ToF32(uint8_t(b)) == 1.0f)
      one = uint8_t(b);
    if (e4m3ToF32(uint8_t(b)) == -1.0f)
      minusOne = uint8_t(b);
  }
  std::vector<float> f32(w.begin(), w.end());
  std::vector<uint16_t> bf16(w.size());
  std::vector<uint8_t> fp8(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    bf16[i] = f32ToBF16(float(w[i]));
    fp8[i] = w[i] > 0 ? one : w[i] < 0 ? minusOne : 0;
  }
  std::vector<float> scales(size_t((n + 127) / 128 * ((k + 127) / 128)), 1.0f);
  const WeightMatrix matrices[] = {
      WeightMatrix::single(WeightFormat::F32, f32.data(), n, k, k),
      WeightMatrix::single(WeightFormat::BF16, bf16.data(), n, k, k),
      WeightMatrix::single(WeightFormat::FP8, fp8.data(), n, k, k,
                           scales.data())};
  for (const WeightMatrix &m : matrices)
    for (const KernelSet *set : testedSets())
      ASSERT_NO_FATAL_FAILURE(
          expectExactOneHot(*set, x, rows, k, m, oh, formatName(m.format)));
}

// The exact products' split (AMX's PackAs::Bf16Split) keeps only the
// planes x needs: one where x is bf16 already (a bf16 latent cache's rows
// through kv_b), two where every x - bf16(x) is a bf16 value, else three;
// and the products stay exact with fewer planes (the one-hot weights of
// F32ProductsAreExactOnEveryTile, on x of each kind).
TEST(MatMul, SplitKeepsOnlyThePlanesXNeeds) {
  std::vector<const KernelSet *> sets;
  for (const KernelSet *set : testedSets())
    if (set->isa == Isa::Amx && !set->widenedTiles)
      sets.push_back(set);
  if (sets.empty())
    GTEST_SKIP() << "no AMX set (the emulated one needs avx512vbmi)";
  std::mt19937 rng(41);
  const int64_t rows = 40, n = 40, k = 300;
  std::vector<float> hi = normalValues(rng, size_t(rows * k));
  for (float &v : hi)
    v = bf16ToF32(f32ToBF16(v));
  std::vector<float> two = hi, three = normalValues(rng, size_t(rows * k));
  // hi + a bf16 value 2^-9 of it: exact in f32, and its residual is that
  // bf16 value, whose own residual is zero. One row of 40 only (the second
  // panel's) already needs the second plane.
  for (int64_t j = 0; j < k; ++j)
    two[size_t(35 * k + j)] += std::ldexp(hi[size_t(35 * k + j)], -9);
  const OneHotRows oh = oneHotRows(rng, n, k);
  std::vector<uint16_t> w(oh.w.size());
  for (size_t i = 0; i < w.size(); ++i)
    w[i] = f32ToBF16(float(oh.w[i]));
  const WeightMatrix m =
      WeightMatrix::single(WeightFormat::BF16, w.data(), n, k, k);
  for (const KernelSet *set : sets) {
    ASSERT_EQ(packAs(*set, m, /*exact=*/true), PackAs::Bf16Split);
    int want = 1;
    for (const std::vector<float> *x : {&hi, &two, &three}) {
      PackedX p = pack(*set, x->data(), k, rows, k, PackAs::Bf16Split);
      EXPECT_EQ(p.planes, want) << setName(*set);
      ASSERT_NO_FATAL_FAILURE(expectExactOneHot(
          *set, *x, rows, k, m, oh, "planes " + std::to_string(want)));
      ++want;
    }
  }
}

// rowsFrom's one division walks the parts and 128-row scale blocks as
// row() and scaleRow() find them, across both boundaries.
TEST(MatMul, RowsFromWalksPartsAndScaleBlocks) {
  std::mt19937 rng(3);
  TestWeight w(WeightFormat::FP8, 3, 150, 260, 5, rng);
  const WeightMatrix &m = w.matrix;
  for (int64_t r : {0, 100, 127, 140, 149, 150, 277, 299, 420}) {
    const int64_t n = std::min<int64_t>(40, m.rows - r);
    std::vector<const uint8_t *> rows(static_cast<size_t>(n));
    std::vector<const float *> scales(static_cast<size_t>(n));
    m.rowsFrom(r, n, rows.data(), scales.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(rows[size_t(i)], m.row(r + i)) << "row " << r + i;
      ASSERT_EQ(scales[size_t(i)], m.scaleRow(r + i)) << "row " << r + i;
    }
  }
}

TEST(MatMul, PartsAndRowRangesKeepTheirOwnScaleBlocks) {
  std::mt19937 rng(7);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    // Three parts of 150 rows (a tile of 12 rows crosses a part), and a
    // row range starting inside the second part's second scale block.
    TestWeight w(f, 3, 150, 260, 0, rng);
    for (int64_t rows : {1, 2, 9, 40}) {
      checkAllIsas(w, rows, 0, w.rows, rng);
      checkAllIsas(w, rows, 150 + 131, 100, rng);
    }
  }
}

// A one-row product's value must not depend on the range of rows a call
// (or a thread's share of it) covers: the same row alone, in a range, or
// in a range that starts elsewhere and crosses a part or a scale block is
// bitwise the same (decode results may not depend on how the pool split
// the rows, nor on kernels that take several rows at once).
TEST(MatMul, OneRowProductsDoNotDependOnTheirGrouping) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 2, 150, 300, 5, rng);
    std::vector<float> x(size_t(w.cols));
    for (float &v : x)
      v = d(rng);
    for (const Product &p : kProducts)
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        Isa isa = ks.isa;
        std::vector<float> all(size_t(w.rows)), one(size_t(w.rows));
        p.fn(ks, x.data(), w.cols, 1, w.matrix, 0, w.rows, all.data(), w.rows);
        for (int64_t r = 0; r < w.rows; ++r)
          p.fn(ks, x.data(), w.cols, 1, w.matrix, r, 1, &one[size_t(r)], 1);
        std::vector<float> shifted(size_t(w.rows - 3));
        p.fn(ks, x.data(), w.cols, 1, w.matrix, 3, w.rows - 3, shifted.data(),
             w.rows);
        for (int64_t r = 0; r < w.rows; ++r) {
          ASSERT_EQ(all[size_t(r)], one[size_t(r)])
              << p.name << " " << setName(*set) << " " << formatName(f)
              << " row " << r;
          if (r >= 3)
            ASSERT_EQ(shifted[size_t(r - 3)], one[size_t(r)])
                << p.name << " " << setName(*set) << " " << formatName(f)
                << " row " << r;
        }
      }
  }
}

// Prefill's tiles run several blocks of weight rows through each K chunk
// together (TileGemm.cpp gemmBlock): a row's result must still not depend on
// which rows came with it. 70 rows of x (three panels, the last partial),
// 150 weight rows (more than one group of blocks, a partial block), K 600
// (a ragged last chunk); rows read in place (one part, no padding) and
// copied (two parts, padded rows).
TEST(MatMul, PrefillRowsDoNotDependOnTheirGrouping) {
  std::mt19937 rng(19);
  std::normal_distribution<float> d;
  const int64_t rows = 70;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (auto [parts, pad] : {std::pair<int64_t, int64_t>{1, 0}, {2, 3}}) {
      TestWeight w(f, parts, 150 / parts, 600, pad, rng);
      std::vector<float> x(size_t(rows * w.cols));
      for (float &v : x)
        v = d(rng);
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        Isa isa = ks.isa;
        int64_t n = w.rows;
        std::vector<float> all(size_t(rows * n)), pieces(all.size()),
            shifted(all.size());
        matmul(ks, x.data(), w.cols, rows, w.matrix, 0, n, all.data(), n);
        // One block of mr rows at a time, then a split off the blocks' grid.
        for (int64_t r = 0; r < n; r += ks.mr)
          matmul(ks, x.data(), w.cols, rows, w.matrix, r,
                 std::min<int64_t>(ks.mr, n - r), pieces.data() + r, n);
        matmul(ks, x.data(), w.cols, rows, w.matrix, 0, 5, shifted.data(), n);
        matmul(ks, x.data(), w.cols, rows, w.matrix, 5, n - 5,
               shifted.data() + 5, n);
        for (size_t i = 0; i < all.size(); ++i) {
          ASSERT_EQ(all[i], pieces[i])
              << setName(*set) << " " << formatName(f) << " parts " << parts
              << " at " << i / n << "," << i % n;
          ASSERT_EQ(all[i], shifted[i])
              << setName(*set) << " " << formatName(f) << " parts " << parts
              << " at " << i / n << "," << i % n;
        }
      }
    }
}

// A prefill row's products do not depend on how many rows come with it:
// gemmBlock takes its blocks one after the other (every K chunk of one
// block, then the next) while x is small, an L2's worth for FP8 rows and
// a quarter of that for the others, and chunk by chunk across the blocks
// past that; each output sums the same chunks in the same order either
// way. With K 4200, 32 rows of x are past the small bound, 96 within
// FP8's and 160 past it.
TEST(MatMul, PrefillRowsDoNotDependOnHowManyComeWithThem) {
  std::mt19937 rng(23);
  std::normal_distribution<float> d;
  const int64_t k = 4200;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 1, 30, k, 0, rng);
    std::vector<float> x(size_t(160 * k));
    for (float &v : x)
      v = d(rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      int64_t n = w.rows;
      std::vector<float> few(size_t(32 * n)), some(size_t(96 * n)),
          many(size_t(160 * n));
      matmul(ks, x.data(), k, 32, w.matrix, 0, n, few.data(), n);
      matmul(ks, x.data(), k, 96, w.matrix, 0, n, some.data(), n);
      matmul(ks, x.data(), k, 160, w.matrix, 0, n, many.data(), n);
      for (size_t i = 0; i < few.size(); ++i) {
        ASSERT_EQ(few[i], some[i]) << setName(*set) << " " << formatName(f)
                                   << " at " << i / n << "," << i % n;
        ASSERT_EQ(few[i], many[i]) << setName(*set) << " " << formatName(f)
                                   << " at " << i / n << "," << i % n;
      }
      for (size_t i = 0; i < some.size(); ++i)
        ASSERT_EQ(some[i], many[i]) << setName(*set) << " " << formatName(f)
                                    << " at " << i / n << "," << i % n;
    }
  }
}

// The embedding gather reads a table in its stored format: every row is
// exactly the stored value (bf16 widened, e4m3 times its block's scale),
// across parts and scale blocks; an id out of range is an error naming it,
// and nothing is written.
TEST(Embedding, GathersRowsInTheirStoredFormat) {
  std::mt19937 rng(13);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 2, 150, 200, 3, rng);
    std::vector<int32_t> ids = {0, 299, 150, 131, 7, 149, 299};
    int64_t n = int64_t(ids.size()), shape[2] = {n, w.cols};
    std::vector<float> out(size_t(n * w.cols), -1.0f);
    auto idm = makeMemRef<int32_t, 1>(ids.data(), &n);
    auto om = makeMemRef<float, 2>(out.data(), shape);
    ASSERT_EQ(embedding(w.matrix, idm, om), "");
    for (int64_t t = 0; t < n; ++t)
      for (int64_t c = 0; c < w.cols; ++c)
        ASSERT_EQ(out[size_t(t * w.cols + c)],
                  float(w.values[size_t(ids[size_t(t)] * w.cols + c)]))
            << formatName(f) << " id " << ids[size_t(t)] << " col " << c;
    ids[3] = 300;
    std::fill(out.begin(), out.end(), -1.0f);
    std::string err = embedding(w.matrix, idm, om);
    EXPECT_NE(err.find("token id 300 at 3"), std::string::npos) << err;
    EXPECT_EQ(out[0], -1.0f);
  }
}

// A block scale applied to the wrong block (or not at all) is far outside
// the tolerance of checkAllIsas, on the decode and the tile paths: one
// block's scale changed after the reference values were taken must fail.
TEST(MatMul, WrongFp8BlockScaleFails) {
  std::mt19937 rng(19);
  std::normal_distribution<float> d;
  TestWeight w(WeightFormat::FP8, 1, 200, 300, 3, rng);
  // Block (1, 2): rows 128-199, columns 256-299, the ragged corner.
  w.scales[0][size_t(1 * 3 + 2)] *= 1.5f;
  for (int64_t rows : {1, 4, 40}) {
    int64_t k = w.cols, n = w.rows;
    std::vector<float> x(size_t(rows * k));
    for (float &v : x)
      v = d(rng);
    for (const KernelSet *set : testedSets()) {
      Isa isa = set->isa;
      std::vector<float> y(size_t(rows * n));
      matmul(*set, x.data(), k, rows, w.matrix, 0, n, y.data(), n);
      bool rx = roundsX(isa, w.format, rows);
      double worst = 0;
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < n; ++j) {
          double want = 0, mag = 0;
          for (int64_t c = 0; c < k; ++c) {
            float xv = x[size_t(t * k + c)];
            double term =
                double(rx ? roundBf16(xv) : xv) * w.values[size_t(j * k + c)];
            want += term;
            mag += std::abs(term);
          }
          worst = std::max(worst,
                           std::abs(y[size_t(t * n + j)] - want) / (1 + mag));
        }
      EXPECT_GT(worst, 1e-3) << setName(*set) << " rows " << rows;
    }
  }
}

TEST(Gemm, GroupedOverInPlaceParts) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::FP8}) {
    int64_t experts = 3, n = 6, k = 140, rows = 9;
    TestWeight w(f, experts, n, k, 0, rng);
    std::vector<float> x(size_t(rows * k));
    for (float &v : x)
      v = d(rng);
    std::vector<int32_t> off = {0, 1, 1, 9}; // expert 1 gets no row
    std::vector<float> y(size_t(rows * n), 0.0f);
    MemRef<float, 2> xm{x.data(), x.data(), 0, {rows, k}, {k, 1}};
    MemRef<float, 2> ym{y.data(), y.data(), 0, {rows, n}, {n, 1}};
    MemRef<int32_t, 1> om{off.data(), off.data(), 0, {4}, {1}};
    ASSERT_EQ(groupedLinear(xm, w.matrix, experts, om, ym), "");
    for (int64_t e = 0; e < experts; ++e)
      for (int64_t t = off[size_t(e)]; t < off[size_t(e + 1)]; ++t)
        for (int64_t j = 0; j < n; ++j) {
          bool rx =
              roundsX(activeIsa(), f, off[size_t(e + 1)] - off[size_t(e)]);
          double want = 0;
          for (int64_t c = 0; c < k; ++c) {
            float xv = x[size_t(t * k + c)];
            want += double(rx ? roundBf16(xv) : xv) *
                    w.values[size_t((e * n + j) * k + c)];
          }
          EXPECT_NEAR(y[size_t(t * n + j)], want, 1e-4);
        }
    off = {0, 5, 4, 9}; // decreasing
    EXPECT_NE(groupedLinear(xm, w.matrix, experts, om, ym), "");
    EXPECT_NE(groupedLinear(xm, w.matrix, 4, om, ym), ""); // 18 rows / 4
  }
}

// Runs matmulGroups over `groups` of an experts x n x k weight on every
// format and ISA: each group's rows must be bitwise what matmulGroups gives
// for that group alone (GroupedMatMulTest.cpp checks the values against a
// float64 product), and rows of no group must stay untouched.
void expectGroupsMatchEachGroupAlone(unsigned seed, int64_t experts, int64_t n,
                                     int64_t k, int64_t rows,
                                     const std::vector<MatmulGroup> &groups) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  std::vector<bool> grouped(size_t(rows), false);
  for (const MatmulGroup &g : groups)
    for (int64_t t = g.begin; t < g.end; ++t)
      grouped[size_t(t)] = true;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, experts, n, k, 0, rng);
    std::vector<float> x(size_t(rows * k));
    for (float &v : x)
      v = d(rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      std::vector<float> y(size_t(rows * n), -7.0f), one(size_t(rows * n));
      matmulGroups(ks, x.data(), k, rows, w.matrix, n, groups, y.data(), n);
      for (const MatmulGroup &g : groups)
        matmulGroups(ks, x.data(), k, rows, w.matrix, n, {g}, one.data(), n);
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < n; ++j) {
          float got = y[size_t(t * n + j)];
          if (!grouped[size_t(t)])
            ASSERT_EQ(got, -7.0f) << "row of no group written";
          else
            ASSERT_EQ(got, one[size_t(t * n + j)])
                << setName(*set) << " " << formatName(f) << " " << t << ","
                << j;
        }
    }
  }
}

// The groups of a grouped product on every ISA: decode-sized groups share
// one parallel region (work items crossing groups), larger ones take the
// tile path (16 rows: bf16's half tile); each group's rows are bitwise what
// the group alone gives, so a token's expert output does not depend on the other
// experts of its step, and rows of no group stay untouched.
TEST(MatMul, GroupsMatchEachGroupAlone) {
  int64_t n = 70;
  // Rows 0-2 to expert 0, 3 to expert 4, 4-20 (17: tile path) to
  // expert 2, 21-36 (16) to expert 3; 37-39 in no group.
  expectGroupsMatchEachGroupAlone(
      13, 5, n, 200, 40,
      {{0, 3, 0}, {3, 4, 4 * n}, {4, 21, 2 * n}, {21, 37, 3 * n}, {37, 37, n}});
}

// Prefill's expert products: several groups above the dot-product size
// (one of more than one panel, ragged K across chunks, a partial block of
// weight rows at each group's end) share one parallel region whose blocks
// prefetch the next group's weights; each group's rows are still bitwise
// what the group alone gives (row 99 in no group).
TEST(MatMul, LargeGroupsMatchEachGroupAlone) {
  int64_t n = 30;
  expectGroupsMatchEachGroupAlone(
      17, 4, n, 300, 100,
      {{0, 40, 3 * n}, {40, 57, 0}, {57, 60, n}, {60, 99, 2 * n}});
}

TEST(Gemm, RejectsMismatchedShapes) {
  std::mt19937 rng(1);
  TestWeight w(WeightFormat::BF16, 1, 2, 4, 0, rng);
  std::vector<float> x(8), y(8);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {2, 4}, {4, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {2, 3}, {3, 1}};
  EXPECT_NE(linear(xm, w.matrix, ym), ""); // y has 3 columns, w 2 rows
  MemRef<float, 2> x5{x.data(), x.data(), 0, {1, 5}, {5, 1}};
  EXPECT_NE(linear(x5, w.matrix, ym), "");
}

// The gate|up GEMM with its SiLU-mul epilogue, f32 and FP8 weights, on
// the one-row and the many-row paths, against a double-precision loop.
TEST(LinearSiluMul, MatchesGemmThenSiluMul) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d;
  for (WeightFormat fmt : {WeightFormat::F32, WeightFormat::FP8})
    for (int64_t rows : {1, 3, 9, 40}) {
      int64_t f = 140, k = 37;
      TestWeight w(fmt, 2, f, k, 0, rng); // gate and up: two parts
      std::vector<float> x(size_t(rows * k));
      for (float &v : x)
        v = d(rng);
      std::vector<float> y(size_t(rows * f));
      MemRef<float, 2> xm{x.data(), x.data(), 0, {rows, k}, {k, 1}};
      MemRef<float, 2> ym{y.data(), y.data(), 0, {rows, f}, {f, 1}};
      ASSERT_EQ(linearSiluMul(xm, w.matrix, ym), "");
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < f; ++j) {
          double g = 0, u = 0;
          bool rx = roundsX(activeIsa(), fmt, rows);
          for (int64_t c = 0; c < k; ++c) {
            float xv = x[size_t(t * k + c)];
            double xr = rx ? roundBf16(xv) : xv;
            g += xr * w.values[size_t(j * k + c)];
            u += xr * w.values[size_t((f + j) * k + c)];
          }
          double want = g / (1 + std::exp(-g)) * u;
          EXPECT_NEAR(y[size_t(t * f + j)], want, 1e-4 * (1 + std::abs(want)));
        }
    }
  std::vector<float> x(4), w(12), y(3);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {1, 4}, {4, 1}};
  MemRef<float, 2> odd{w.data(), w.data(), 0, {3, 4}, {4, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {1, 1}, {1, 1}};
  EXPECT_NE(linearSiluMul(xm, odd, ym), "");
}

} // namespace

// ds.head_matmul's runtime form (cpu/HeadMatmul.cpp) and the naive MLA
// form's exact GEMM, on every format, against double loops over the same
// values: x never rounded (f32 arithmetic whatever the format). Heads'
// row blocks start off the 128-row scale blocks (group 130), a head's block
// crosses a scale block, and the weight is in two parts; decode's rows and
// the tile path's.
TEST(MatMul, HeadProductsReadEveryFormatInPlace) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  const int64_t heads = 3, dn = 70, dv = 60, group = dn + dv, dc = 300;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 2, heads * group / 2, dc, 4, rng);
    for (int64_t tokens : {1, 3, 20}) {
      for (bool transpose : {false, true}) {
        int64_t k = transpose ? dc : dn, n = transpose ? dv : dc;
        int64_t offset = transpose ? dn : 0;
        std::vector<float> x(size_t(tokens * heads * k));
        for (float &v : x)
          v = d(rng);
        std::vector<float> out(size_t(tokens * heads * n), -7.0f);
        int64_t xs[3] = {tokens, heads, k}, os[3] = {tokens, heads, n};
        auto xm = makeMemRef<float, 3>(x.data(), xs);
        auto om = makeMemRef<float, 3>(out.data(), os);
        ASSERT_EQ(headMatmul(xm, w.matrix, om, group, offset, transpose), "");
        for (int64_t t = 0; t < tokens; ++t)
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t j = 0; j < n; ++j) {
              double want = 0, mag = 0;
              for (int64_t c = 0; c < k; ++c) {
                int64_t row = h * group + offset + (transpose ? j : c);
                int64_t col = transpose ? c : j;
                double term = double(x[size_t((t * heads + h) * k + c)]) *
                              w.values[size_t(row * dc + col)];
                want += term;
                mag += std::abs(term);
              }
              ASSERT_NEAR(out[size_t((t * heads + h) * n + j)], want,
                          1e-6 * (1 + mag))
                  << formatName(f) << " tokens " << tokens << " transpose "
                  << transpose << " at " << t << "," << h << "," << j;
            }
      }
      // The naive form's expansion: every row of the weight.
      std::vector<float> x(size_t(tokens * dc)), y(size_t(tokens * w.rows));
      for (float &v : x)
        v = d(rng);
      int64_t xs[2] = {tokens, dc}, ys[2] = {tokens, w.rows};
      ASSERT_EQ(linearExact(makeMemRef<float, 2>(x.data(), xs), w.matrix,
                            makeMemRef<float, 2>(y.data(), ys)),
                "");
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t j = 0; j < w.rows; ++j) {
          double want = 0, mag = 0;
          for (int64_t c = 0; c < dc; ++c) {
            double term =
                double(x[size_t(t * dc + c)]) * w.values[size_t(j * dc + c)];
            want += term;
            mag += std::abs(term);
          }
          ASSERT_NEAR(y[size_t(t * w.rows + j)], want, 1e-6 * (1 + mag))
              << formatName(f) << " linearExact tokens " << tokens << " at "
              << t << "," << j;
        }
    }
  }
}

TEST(MatMul, HeadProductsRefuseRowsPastTheWeight) {
  std::mt19937 rng(9);
  TestWeight w(WeightFormat::FP8, 1, 64, 16, 0, rng);
  std::vector<float> x(2 * 4 * 8), out(2 * 4 * 16);
  int64_t xs[3] = {2, 4, 8}, os[3] = {2, 4, 16};
  // Heads 0..3 at a group of 16: the last head's rows end at 3*16+8+8 = 64
  // (fits); offset 9 would end at 65.
  EXPECT_EQ(headMatmul(makeMemRef<float, 3>(x.data(), xs), w.matrix,
                       makeMemRef<float, 3>(out.data(), os), 16, 8, false),
            "");
  EXPECT_EQ(headMatmul(makeMemRef<float, 3>(x.data(), xs), w.matrix,
                       makeMemRef<float, 3>(out.data(), os), 16, 9, false),
            "head_matmul: head rows up to 65 past the 64 rows of the weight");
}
