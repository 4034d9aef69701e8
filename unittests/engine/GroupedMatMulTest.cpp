//===- GroupedMatMulTest.cpp - experts' grouped products: partial tiles ---===//
#include "cpu/Gemm.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"
#include "cpu/NaiveAttend.h"
#include "weights/DType.h"
#include "TestWeight.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

namespace {

float bf16Value(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Rows of a partial panel of `quarters` quarters (1..4) whose sums are the
/// full tile's bit for bit: all of them, but for an odd last quarter on
/// AVX-512 and AVX2, whose quarter tiles sum the even and odd steps of k
/// apart (KernelsInline.h's PairAcc, KernelsAvx2.cpp's tileF32Quarter) and
/// are within f32 accumulation of the full tile only.
int64_t fullTileBitRows(Isa isa, int64_t quarters) {
  return isa >= Isa::Avx2 && quarters % 2 ? (quarters - 1) * kQuarterPanel
                                          : quarters * kQuarterPanel;
}

/// A partial tile over panel rows [0, covered) against its full tile (bit
/// for bit on rows [0, exact): each element's sum is the same sequence of
/// operations) and against a float64 sum over the same values (a tile
/// reading the wrong panel rows, weight rows or pairs is far outside f32
/// accumulation's error); rows [covered, kPanel) of c must keep their
/// values. run(part, c) runs the partial tile `part` (1..3) or, with 0,
/// the full tile; rows [0, exact) are fullTileBitRows.
template <typename Run>
void expectPartMatchesFull(const char *what, Isa isa, int mr, int64_t k,
                           int part, const std::vector<double> &want, Run run,
                           std::mt19937 &rng) {
  std::normal_distribution<float> d;
  std::vector<float> init(size_t(mr * kPanel));
  for (float &v : init)
    v = d(rng);
  std::vector<float> partial = init, full = init;
  run(part, partial.data());
  run(0, full.data());
  const int covered = part * kQuarterPanel;
  const int64_t exact = fullTileBitRows(isa, part);
  for (int i = 0; i < mr; ++i)
    for (int t = 0; t < kPanel; ++t) {
      size_t at = size_t(i * kPanel + t);
      if (t >= covered) {
        ASSERT_EQ(partial[at], init[at])
            << what << " " << isaName(isa) << " part " << part << " wrote row "
            << t;
        continue;
      }
      if (t < exact)
        ASSERT_EQ(partial[at], full[at])
            << what << " " << isaName(isa) << " part " << part << " k " << k
            << " at " << i << "," << t;
      ASSERT_NEAR(partial[at], want[at], 1e-5 * (1 + std::abs(want[at])))
          << what << " " << isaName(isa) << " part " << part << " k " << k
          << " at " << i << "," << t;
    }
}

// Every partial tile (a quarter, half and three quarters of a panel) of
// every ISA and format that has one.
TEST(GroupedMatMul, PartialTilesMatchTheFullTileOnTheirRows) {
  std::mt19937 rng(41);
  std::normal_distribution<float> d;
  int checked[3] = {};
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    int mr = ks.mr;
    for (int64_t k : {1, 2, 17, 64, 256}) {
      int64_t ldw = k + 3, kp = (k + 1) / 2;
      std::vector<float> w(size_t(mr * ldw)), xp(size_t(k * kPanel));
      for (float &v : w)
        v = d(rng);
      for (float &v : xp)
        v = d(rng);
      std::vector<double> want(size_t(mr * kPanel), 0);
      for (int part = 1; part <= 3; ++part) {
        auto tile = ks.tileF32Part[part - 1];
        if (!tile)
          continue;
        auto run = [&](int q, float *c) {
          for (size_t at = 0; at < want.size(); ++at)
            want[at] = c[at]; // the tile adds to c
          for (int i = 0; i < mr; ++i)
            for (int t = 0; t < kPanel; ++t)
              for (int64_t j = 0; j < k; ++j)
                want[size_t(i * kPanel + t)] +=
                    double(w[size_t(i * ldw + j)]) * xp[size_t(j * kPanel + t)];
          (q ? tile : ks.tileF32)(w.data(), ldw, xp.data(), k, c, nullptr);
        };
        expectPartMatchesFull("f32", isa, mr, k, part, want, run, rng);
        ++checked[0];
      }
      if (!ks.tileBf16 && !ks.tileFp8)
        continue;
      // The bf16 and FP8 tiles' own rows (AMX's 32).
      const int mrp = tileRows(ks, true);
      want.assign(size_t(mrp * kPanel), 0);
      // bf16 weight pairs and panel pairs (an odd K's last pair zero).
      std::vector<uint16_t> wb(size_t(mrp * ldw) + 1),
          xb(size_t(kp * kPanel * 2));
      for (uint16_t &v : wb)
        v = roundToBf16(d(rng));
      for (int64_t j = 0; j < kp * 2; ++j)
        for (int t = 0; t < kPanel; ++t)
          xb[size_t((j / 2 * kPanel + t) * 2 + j % 2)] =
              j < k ? roundToBf16(d(rng)) : 0;
      std::vector<float> scales(static_cast<size_t>(mrp));
      for (float &s : scales)
        s = std::uniform_real_distribution<float>(0.5f, 2.0f)(rng);
      auto sum = [&](const float *c, bool scaled) {
        for (int i = 0; i < mrp; ++i)
          for (int t = 0; t < kPanel; ++t) {
            double acc = 0;
            for (int64_t j = 0; j < kp * 2; ++j)
              acc += double(bf16Value(wb[size_t(i * ldw + j)])) *
                     bf16Value(xb[size_t((j / 2 * kPanel + t) * 2 + j % 2)]);
            size_t at = size_t(i * kPanel + t);
            want[at] = c[at] + (scaled ? scales[size_t(i)] : 1.0) * acc;
          }
      };
      for (int part = 1; part <= 3; ++part) {
        if (auto tile = ks.tileBf16Part[part - 1]) {
          expectPartMatchesFull(
              "bf16", isa, mrp, k, part, want,
              [&](int q, float *c) {
                sum(c, false);
                (q ? tile : ks.tileBf16)(wb.data(), ldw, xb.data(), kp, c,
                                         nullptr);
              },
              rng);
          ++checked[1];
        }
        if (auto tile = ks.tileFp8Part[part - 1]) {
          expectPartMatchesFull(
              "fp8", isa, mrp, k, part, want,
              [&](int q, float *c) {
                sum(c, true);
                (q ? tile : ks.tileFp8)(wb.data(), ldw, scales.data(),
                                        xb.data(), kp, c, nullptr);
              },
              rng);
          ++checked[2];
        }
      }
    }
  }
  // The scalar set has f32 partial tiles; where the CPU has the bf16 and
  // FP8 tiles, each of them must have come with its partial tiles.
  EXPECT_GT(checked[0], 0) << "no partial f32 tile ran";
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    for (int part = 0; part < 3; ++part) {
      EXPECT_TRUE(ks.tileF32Part[part]) << setName(*set) << " part " << part;
      EXPECT_TRUE(!ks.tileBf16 || ks.tileBf16Part[part])
          << setName(*set) << " part " << part;
      EXPECT_TRUE(!ks.tileFp8 || ks.tileFp8Part[part])
          << setName(*set) << " part " << part;
    }
  }
}

/// Expert groups of `sizes` rows through matmulGroups on every ISA and
/// format, against a float64 product over the same values (x rounded to
/// bf16 where the path rounds it): a group's last panel read or stored
/// wrong, or a wrong block scale, is far outside the tolerance.
void expectGroupsMatchF64(unsigned seed, const std::vector<int64_t> &sizes,
                          int64_t n, int64_t k) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  const int64_t experts = int64_t(sizes.size());
  std::vector<MatmulGroup> groups;
  int64_t rows = 0;
  for (int64_t e = 0; e < experts; ++e) {
    groups.push_back({rows, rows + sizes[size_t(e)], ((e * 7) % experts) * n});
    rows += sizes[size_t(e)];
  }
  std::vector<float> x(size_t(rows * k));
  for (float &v : x)
    v = d(rng);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, experts, n, k, 2, rng);
    for (const KernelSet *set : testedSets()) {
      Isa isa = set->isa;
      bool rounds = (isa >= Isa::Avx512Bf16 && f == WeightFormat::BF16) ||
                    (isa >= Isa::Avx512Vbmi && f == WeightFormat::FP8);
      std::vector<float> y(size_t(rows * n), -7.0f);
      matmulGroups(*set, x.data(), k, rows, w.matrix, n, groups, y.data(), n);
      for (const MatmulGroup &g : groups)
        for (int64_t t = g.begin; t < g.end; ++t)
          for (int64_t j = 0; j < n; ++j) {
            double want = 0, mag = 0;
            for (int64_t c = 0; c < k; ++c) {
              float xv = x[size_t(t * k + c)];
              double term = double(rounds ? roundBf16(xv) : xv) *
                            w.values[size_t((g.r0 + j) * k + c)];
              want += term;
              mag += std::abs(term);
            }
            ASSERT_NEAR(y[size_t(t * n + j)], want, 1e-6 * (1 + mag))
                << setName(*set) << " " << formatName(f) << " group of "
                << g.end - g.begin << " row " << t - g.begin << " col " << j
                << " k " << k;
          }
    }
  }
}

// Groups of every size around the half panel and the dot-product
// thresholds (1..50 rows: one half panel, a full one, a full one plus a
// half, ...).
TEST(GroupedMatMul, EveryGroupSizeMatchesTheF64Product) {
  std::vector<int64_t> sizes;
  for (int64_t size = 1; size <= 50; ++size)
    sizes.push_back(size);
  expectGroupsMatchF64(43, sizes, 13, 150);
}

// FP8 groups of rows wider than 4 KiB in bf16 take the tile from 11 rows
// (MatMul.cpp's groupGemvRows), narrower ones the dot products up to 16:
// the sizes around both thresholds against the float64 product, the
// wide rows spanning ragged K chunks and scale blocks.
TEST(GroupedMatMul, WideRowGroupsAroundTheThresholdsMatchTheF64Product) {
  expectGroupsMatchF64(47, {9, 10, 11, 12, 16, 17}, 5, 2200);
}

// A group's last panel goes through the partial tile that covers its rows
// (a quarter, half or three quarters of a panel): every row's result must
// be bit for bit what the full tile gives it, but for an odd last quarter
// on AVX-512 and AVX2 (its even and odd steps of k summed apart,
// KernelsInline.h's PairAcc, KernelsAvx2.cpp's tileF32Quarter), which must
// be within f32 accumulation of it. Groups of 17..64 rows
// (past every dot-product threshold; last panels of 1..32 rows) of the
// same x rows against those rows in full panels, on every ISA and format.
TEST(GroupedMatMul, LastPanelRowsMatchTheFullTile) {
  std::mt19937 rng(53);
  std::normal_distribution<float> d;
  const int64_t n = 29, k = 300, base = 64;
  std::vector<float> xbase(size_t(base * k));
  for (float &v : xbase)
    v = d(rng);
  std::vector<MatmulGroup> groups;
  std::vector<float> x;
  int64_t rows = 0;
  for (int64_t size = 17; size <= base; ++size) {
    groups.push_back({rows, rows + size, 0});
    x.insert(x.end(), xbase.begin(), xbase.begin() + size * k);
    rows += size;
  }
  int paired = 0;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 1, n, k, 3, rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      std::vector<float> full(size_t(base * n)), y(size_t(rows * n));
      matmulGroups(ks, xbase.data(), k, base, w.matrix, n, {{0, base, 0}},
                   full.data(), n);
      matmulGroups(ks, x.data(), k, rows, w.matrix, n, groups, y.data(), n);
      for (const MatmulGroup &g : groups) {
        int64_t size = g.end - g.begin, last = (size - 1) / kPanel * kPanel;
        int64_t quarters = (size - last + kQuarterPanel - 1) / kQuarterPanel;
        int64_t pairedFrom = last + fullTileBitRows(isa, quarters);
        for (int64_t r = 0; r < size; ++r)
          for (int64_t j = 0; j < n; ++j) {
            float have = y[size_t((g.begin + r) * n + j)],
                  want = full[size_t(r * n + j)];
            if (r < pairedFrom) {
              ASSERT_EQ(have, want)
                  << setName(*set) << " " << formatName(f) << " group of "
                  << size << " row " << r << " col " << j;
              continue;
            }
            double mag = 0;
            for (int64_t c = 0; c < k; ++c)
              mag += std::abs(double(xbase[size_t(r * k + c)]) *
                              w.values[size_t(j * k + c)]);
            ASSERT_NEAR(have, want, 1e-6 * (1 + mag))
                << setName(*set) << " " << formatName(f) << " group of " << size
                << " row " << r << " col " << j;
            ++paired;
          }
      }
    }
  }
  // Where the CPU has AVX2, some rows took the paired quarter.
  bool paths = false;
  for (Isa isa : supportedIsas())
    paths |= isa >= Isa::Avx2;
  EXPECT_EQ(paired > 0, paths);
}

// The routed experts' gate, up and SiLU-mul in one call: each group's
// rows bit for bit g / (1 + exp(-g)) * u of matmulGroups' gate and up
// values (each element's sums are the same operations; exp the ISA's
// vector exp, within 1e-6 of libm's), on every ISA and format, for
// groups on the dot-product path, in one half panel, one full panel and
// several panels with a half last one; rows of no group untouched.
TEST(GroupedMatMul, SiluMulMatchesTheUnfusedProducts) {
  std::mt19937 rng(47);
  std::normal_distribution<float> d;
  const int64_t experts = 6, n = 29, k = 200;
  // Sizes 3 (dot products), 9 and 16 (half tile for bf16), 32, 50 (a full
  // panel and a half one), 1; row 111 in no group.
  std::vector<MatmulGroup> groups = {{0, 3, 2 * n},    {3, 12, 0},
                                     {12, 28, 5 * n},  {28, 60, n},
                                     {60, 110, 4 * n}, {110, 111, 3 * n}};
  int64_t rows = 112;
  std::vector<float> x(size_t(rows * k));
  for (float &v : x)
    v = d(rng);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight gate(f, experts, n, k, 1, rng), up(f, experts, n, k, 1, rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      std::vector<float> g(size_t(rows * n)), u(size_t(rows * n)),
          y(size_t(rows * n), -7.0f);
      matmulGroups(ks, x.data(), k, rows, gate.matrix, n, groups, g.data(), n);
      matmulGroups(ks, x.data(), k, rows, up.matrix, n, groups, u.data(), n);
      matmulGroupsSiluMul(ks, x.data(), k, rows, gate.matrix, up.matrix, n,
                          groups, y.data(), n);
      std::vector<float> e(g.size());
      for (size_t i = 0; i < g.size(); ++i)
        e[i] = -g[i];
      attendKernelsFor(isa).expInPlace(e.data(), int64_t(e.size()));
      for (const MatmulGroup &grp : groups)
        for (int64_t t = grp.begin; t < grp.end; ++t)
          for (int64_t j = 0; j < n; ++j) {
            size_t at = size_t(t * n + j);
            // Within the vector exp's error of libm's.
            ASSERT_NEAR(y[at], siluMul(g[at], u[at]),
                        1e-6 * std::abs(siluMul(g[at], u[at])) + 1e-30);
            ASSERT_EQ(y[at], g[at] / (1.0f + e[at]) * u[at])
                << setName(*set) << " " << formatName(f) << " group of "
                << grp.end - grp.begin << " row " << t - grp.begin << " col "
                << j;
          }
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(y[size_t((rows - 1) * n + j)], -7.0f) << "row of no group";
    }
  }
}

// gemmGroups hands the pool items of several blocks of weight rows (each
// expert's 113 rows: blocks of mr, items of up to four of them, the last
// item and block short), and each item prefetches the next one's weights
// and output rows. Every group of 1..100 rows (odd K over two chunks)
// must still be bit for bit what the plain product gives for its rows
// alone (matmul: row ranges split by the pool, not by items) where that
// takes the tiles too (over kGemvRows rows), and what the group alone
// gives otherwise; the SiLU-mul form bit for bit silu(gate) * up of those
// values; rows of no group untouched. Every ISA and format.
TEST(GroupedMatMul, MultiBlockItemsMatchThePlainProduct) {
  std::mt19937 rng(59);
  std::normal_distribution<float> d;
  std::vector<int64_t> sizes;
  for (int64_t s = 1; s <= 20; ++s)
    sizes.push_back(s);
  for (int64_t s : {23, 31, 32, 33, 47, 48, 49, 64, 65, 96, 97, 100})
    sizes.push_back(s);
  const int64_t experts = int64_t(sizes.size()), n = 113, k = 301;
  std::vector<MatmulGroup> groups;
  int64_t rows = 0;
  for (int64_t e = 0; e < experts; ++e) {
    groups.push_back({rows, rows + sizes[size_t(e)], ((e * 5) % experts) * n});
    rows += sizes[size_t(e)];
  }
  ++rows; // in no group
  std::vector<float> x(size_t(rows * k));
  for (float &v : x)
    v = d(rng);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight gate(f, experts, n, k, 0, rng), up(f, experts, n, k, 0, rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      std::vector<float> g(size_t(rows * n), -7.0f), u(g), y(g), one(g);
      matmulGroups(ks, x.data(), k, rows, gate.matrix, n, groups, g.data(), n);
      matmulGroups(ks, x.data(), k, rows, up.matrix, n, groups, u.data(), n);
      matmulGroupsSiluMul(ks, x.data(), k, rows, gate.matrix, up.matrix, n,
                          groups, y.data(), n);
      for (const MatmulGroup &grp : groups) {
        int64_t size = grp.end - grp.begin;
        float *ref = one.data() + grp.begin * n;
        if (size > kGemvRows)
          matmul(ks, x.data() + grp.begin * k, k, size, gate.matrix, grp.r0, n,
                 ref, n);
        else
          matmulGroups(ks, x.data(), k, rows, gate.matrix, n, {grp}, one.data(),
                       n);
        for (int64_t t = grp.begin; t < grp.end; ++t)
          for (int64_t j = 0; j < n; ++j) {
            size_t at = size_t(t * n + j);
            ASSERT_EQ(g[at], one[at])
                << setName(*set) << " " << formatName(f) << " group of " << size
                << " row " << t - grp.begin << " col " << j;
            float e = -g[at];
            attendKernelsFor(isa).expInPlace(&e, 1);
            ASSERT_EQ(y[at], g[at] / (1.0f + e) * u[at])
                << setName(*set) << " " << formatName(f) << " group of " << size
                << " row " << t - grp.begin << " col " << j;
          }
      }
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(y[size_t((rows - 1) * n + j)], -7.0f) << "row of no group";
    }
  }
}

// The runtime call's checks: gate and up of different shapes or formats,
// and offsets outside the rows, are one-line errors and write nothing.
TEST(GroupedMatMul, SiluMulRejectsMismatchedWeightsAndOffsets) {
  std::mt19937 rng(53);
  TestWeight g(WeightFormat::BF16, 2, 3, 8, 0, rng),
      u(WeightFormat::BF16, 2, 3, 8, 0, rng),
      narrow(WeightFormat::BF16, 2, 3, 6, 0, rng),
      f32(WeightFormat::F32, 2, 3, 8, 0, rng);
  std::vector<float> x(4 * 8, 1.0f), y(4 * 3, -7.0f);
  std::vector<int32_t> off = {0, 2, 4}, bad = {0, 3, 5};
  MemRef<float, 2> xm{x.data(), x.data(), 0, {4, 8}, {8, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {4, 3}, {3, 1}};
  int64_t three = 3;
  auto om = makeMemRef<int32_t, 1>(off.data(), &three);
  auto bm = makeMemRef<int32_t, 1>(bad.data(), &three);
  EXPECT_NE(groupedLinearSiluMul(xm, g.matrix, narrow.matrix, 2, om, ym)
                .find("gate is [6, 8], up [6, 6]"),
            std::string::npos);
  EXPECT_NE(groupedLinearSiluMul(xm, g.matrix, f32.matrix, 2, om, ym)
                .find("different formats"),
            std::string::npos);
  EXPECT_NE(groupedLinearSiluMul(xm, g.matrix, u.matrix, 2, bm, ym)
                .find("offsets of expert 1 are [3, 5)"),
            std::string::npos);
  for (float v : y)
    ASSERT_EQ(v, -7.0f) << "written despite an error";
  EXPECT_EQ(groupedLinearSiluMul(xm, g.matrix, u.matrix, 2, om, ym), "");
  EXPECT_NE(y[0], -7.0f);
}

/// A routing of `tokens` tokens to `slots` experts each as ds.moe_permute
/// orders it (stable counting sort): offsets, row_of_slot, and x's rows
/// permuted. Slot 0 of every token goes to expert experts - 1 (the shared
/// expert's group of every token); the others to experts skewed towards
/// the low ones, so that groups of one or a few rows (the dot-product
/// path) and of several panels (the tiles, a partial last panel) occur.
struct Routing {
  std::vector<int32_t> offsets, rowOfSlot;
  std::vector<float> permuted;
};
Routing route(const std::vector<float> &x, int64_t tokens, int64_t k,
              int64_t slots, int64_t experts, std::mt19937 &rng) {
  std::vector<int64_t> ids(size_t(tokens * slots));
  std::uniform_real_distribution<double> u;
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t j = 0; j < slots; ++j)
      ids[size_t(t * slots + j)] =
          j == 0 ? experts - 1
                 : std::min<int64_t>(experts - 2,
                                     int64_t(u(rng) * u(rng) * (experts - 1)));
  Routing r;
  r.offsets.assign(size_t(experts + 1), 0);
  for (int64_t id : ids)
    ++r.offsets[size_t(id + 1)];
  for (int64_t e = 0; e < experts; ++e)
    r.offsets[size_t(e + 1)] += r.offsets[size_t(e)];
  std::vector<int32_t> cursor(r.offsets.begin(), r.offsets.end() - 1);
  r.rowOfSlot.resize(ids.size());
  r.permuted.resize(ids.size() * size_t(k));
  for (size_t s = 0; s < ids.size(); ++s) {
    int32_t row = cursor[size_t(ids[s])]++;
    r.rowOfSlot[s] = row;
    std::memcpy(&r.permuted[size_t(row) * size_t(k)],
                &x[s / size_t(slots) * size_t(k)], size_t(k) * sizeof(float));
  }
  return r;
}

// ds.grouped_matmul's gather form (ds-gather-expert-rows): the products
// of the tokens' rows read through an index are bit for bit those of the
// permuted copy ds.moe_permute would have written, on every ISA and
// format, plain and SiLU-mul, for groups on the dot-product path and
// groups of several panels alike; and the runtime call, which derives the
// index from row_of_slot, gives the same on the active ISA.
TEST(GroupedMatMul, GatheredRowsAreThePermutedCopysProducts) {
  std::mt19937 rng(61);
  std::normal_distribution<float> d;
  const int64_t tokens = 45, slots = 3, experts = 7, n = 37, k = 131;
  std::vector<float> x(size_t(tokens * k));
  for (float &v : x)
    v = d(rng);
  Routing r = route(x, tokens, k, slots, experts, rng);
  int64_t rows = tokens * slots, nOff = experts + 1;
  std::vector<int32_t> index(static_cast<size_t>(rows));
  for (int64_t s = 0; s < rows; ++s)
    index[size_t(r.rowOfSlot[size_t(s)])] = int32_t(s / slots);
  std::vector<MatmulGroup> groups;
  bool small = false, large = false;
  for (int64_t e = 0; e < experts; ++e) {
    int32_t b = r.offsets[size_t(e)], end = r.offsets[size_t(e + 1)];
    if (b < end)
      groups.push_back({b, end, e * n});
    small |= end > b && end - b <= 4;
    large |= end - b > kPanel;
  }
  ASSERT_TRUE(small && large) << "the routing should give both paths";
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight gate(f, experts, n, k, 0, rng), up(f, experts, n, k, 0, rng);
    for (const KernelSet *set : testedSets()) {
      const KernelSet &ks = *set;
      Isa isa = ks.isa;
      for (bool silu : {false, true}) {
        std::vector<float> want(size_t(rows * n), -7.0f), got(want);
        auto run = [&](const float *in, std::vector<float> &y,
                       const int32_t *ix) {
          if (silu)
            matmulGroupsSiluMul(ks, in, k, rows, gate.matrix, up.matrix, n,
                                groups, y.data(), n, ix);
          else
            matmulGroups(ks, in, k, rows, gate.matrix, n, groups, y.data(), n,
                         ix);
        };
        run(r.permuted.data(), want, nullptr);
        run(x.data(), got, index.data());
        for (size_t i = 0; i < want.size(); ++i)
          ASSERT_EQ(got[i], want[i])
              << setName(*set) << " " << formatName(f) << (silu ? " silu" : "")
              << " row " << i / size_t(n) << " col " << i % size_t(n);
      }
    }
    MemRef<float, 2> xm{x.data(), x.data(), 0, {tokens, k}, {k, 1}};
    MemRef<float, 2> pm{
        r.permuted.data(), r.permuted.data(), 0, {rows, k}, {k, 1}};
    auto om = makeMemRef<int32_t, 1>(r.offsets.data(), &nOff);
    auto rm = makeMemRef<int32_t, 1>(r.rowOfSlot.data(), &rows);
    std::vector<float> want(size_t(rows * n), -7.0f), got(want);
    MemRef<float, 2> wm{want.data(), want.data(), 0, {rows, n}, {n, 1}};
    MemRef<float, 2> gm{got.data(), got.data(), 0, {rows, n}, {n, 1}};
    ASSERT_EQ(groupedLinearSiluMul(pm, gate.matrix, up.matrix, experts, om, wm),
              "");
    ASSERT_EQ(
        groupedLinearSiluMul(xm, gate.matrix, up.matrix, experts, om, gm, &rm),
        "");
    ASSERT_EQ(want, got) << formatName(f) << " through the runtime call";
  }
}

// The gather form's checks: row_of_slot must be a permutation of the
// result's rows, a whole number of slots per token; otherwise a one-line
// error names the slot, and nothing is written.
TEST(GroupedMatMul, GatherRejectsABadRowOfSlot) {
  std::mt19937 rng(67);
  TestWeight w(WeightFormat::BF16, 2, 3, 8, 0, rng);
  std::vector<float> x(2 * 8, 1.0f), y(4 * 3, -7.0f);
  std::vector<int32_t> off = {0, 2, 4};
  MemRef<float, 2> xm{x.data(), x.data(), 0, {2, 8}, {8, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {4, 3}, {3, 1}};
  int64_t three = 3, four = 4;
  auto om = makeMemRef<int32_t, 1>(off.data(), &three);
  auto check = [&](std::vector<int32_t> rows, const char *want) {
    int64_t count = int64_t(rows.size());
    auto rm = makeMemRef<int32_t, 1>(rows.data(), &count);
    std::string error = groupedLinear(xm, w.matrix, 2, om, ym, &rm);
    EXPECT_NE(error.find(want), std::string::npos) << error;
    for (float v : y)
      ASSERT_EQ(v, -7.0f) << "written despite: " << error;
  };
  check({0, 1, 1, 3}, "row_of_slot[2] = 1 is outside [0, 4) or repeats a row");
  check({0, 1, 4, 3}, "row_of_slot[2] = 4 is outside [0, 4)");
  check({0, -1, 2, 3}, "row_of_slot[1] = -1");
  check({0, 1, 2}, "row_of_slot has 3 slots but the result 4 rows");
  MemRef<float, 2> x3{x.data(), x.data(), 0, {3, 8}, {8, 1}};
  std::vector<int32_t> ok = {0, 1, 2, 3};
  auto rm = makeMemRef<int32_t, 1>(ok.data(), &four);
  EXPECT_NE(groupedLinear(x3, w.matrix, 2, om, ym, &rm)
                .find("4 slots are not a whole number per token (3 tokens)"),
            std::string::npos);
  EXPECT_EQ(groupedLinear(xm, w.matrix, 2, om, ym, &rm), "");
  EXPECT_NE(y[0], -7.0f);
}

} // namespace
