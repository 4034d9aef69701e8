//===- BatchInvarianceTest.cpp - decode rows alone or in a batch ---------===//
//
// DSRT_BATCH_INVARIANT: with it on, a row of x gets what it gets alone, bit
// for bit, whatever rows share its step; with it off, the sets whose tiles
// overtake the dot products take them.
//
//===----------------------------------------------------------------------===//
#include "MatMulTestUtil.h"
#include "TestWeight.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

// With batch invariance off (DSRT_BATCH_INVARIANT=0) the sets whose tiles
// overtake the dot products from fewer rows take them from there: on AMX
// (hardware or emulated) 16 rows are then a half panel of the tile, bit for
// bit the first 16 rows of a 32-row product, while up to gemvRows a row
// still gives what it gives alone. Every other set, and exact (f32)
// products, keep the dot products up to kGemvRows. On again, AMX keeps
// them too.
TEST(MatMul, BatchInvarianceOffTakesTheTilesWhereTheyAreAhead) {
  InvarianceScope restore(batchInvariant());
  std::mt19937 rng(17);
  std::normal_distribution<float> d;
  int tiled = 0;
  for (WeightFormat f : {WeightFormat::BF16, WeightFormat::FP8})
    for (int64_t k : {int64_t(300), int64_t(1045)}) {
      TestWeight w(f, 1, 100, k, 0, rng);
      const int64_t n = w.rows;
      std::vector<float> x(size_t(32 * k));
      for (float &v : x)
        v = d(rng);
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        setBatchInvariant(true);
        EXPECT_EQ(gemvRows(ks, w.matrix), kGemvRows) << setName(ks);
        setBatchInvariant(false);
        const bool amx = ks.isa == Isa::Amx && !ks.widenedTiles;
        const int64_t limit = gemvRows(ks, w.matrix);
        EXPECT_EQ(limit, amx ? (f == WeightFormat::FP8 ? 7 : 5) : kGemvRows)
            << setName(ks) << " " << formatName(f);
        EXPECT_EQ(gemvRows(ks, w.matrix, /*exact=*/true), kGemvRows);
        auto product = [&](int64_t rows) {
          std::vector<float> y(size_t(rows * n));
          matmul(ks, x.data(), k, rows, w.matrix, 0, n, y.data(), n);
          return y;
        };
        std::vector<float> all = product(32), sixteen = product(16),
                           atLimit = product(limit);
        for (int64_t t = 0; t < limit; ++t) {
          std::vector<float> one(static_cast<size_t>(n));
          matmul(ks, x.data() + t * k, k, 1, w.matrix, 0, n, one.data(), n);
          for (int64_t j = 0; j < n; ++j)
            ASSERT_EQ(atLimit[size_t(t * n + j)], one[size_t(j)])
                << setName(ks) << " " << formatName(f) << " row " << t;
        }
        if (limit < 16) {
          for (size_t i = 0; i < sixteen.size(); ++i)
            ASSERT_EQ(sixteen[i], all[i])
                << setName(ks) << " " << formatName(f) << " k " << k << " at "
                << i / size_t(n) << "," << i % size_t(n);
          ++tiled;
        }
      }
    }
  if (isaSupported(Isa::Avx512Vbmi))
    EXPECT_GT(tiled, 0) << "no AMX set took its tiles";
}

TEST(MatMul, BatchInvarianceValues) {
  bool on = true;
  std::string error;
  EXPECT_TRUE(parseBatchInvariance(nullptr, on, error));
  EXPECT_FALSE(on); // off by default
  EXPECT_TRUE(parseBatchInvariance("", on, error));
  EXPECT_FALSE(on);
  EXPECT_TRUE(parseBatchInvariance("0", on, error));
  EXPECT_FALSE(on);
  EXPECT_TRUE(parseBatchInvariance("1", on, error));
  EXPECT_TRUE(on);
  EXPECT_FALSE(parseBatchInvariance("no", on, error));
  EXPECT_EQ(error, "DSRT_BATCH_INVARIANT='no' is unknown (expected 1 or 0)");
}

// With batch invariance on, decode's rows of x (up to kGemvRows) must each
// give what that row alone gives, bit for bit: one row goes through the ISA's
// gemv kernels (which take a run of weight rows per call), several through the
// dot kernels (a few x rows per call), and a token's logits may not depend on
// how many tokens its step carried. Runs cross a part and the FP8 scale blocks;
// K has a tail past the vector widths and a ragged scale block; one K is past
// 8192, where a row's x (16 KiB of bf16) no longer stays in L1 beside the
// weights and a kernel may want to take several rows a piece at a time.
TEST(MatMul, DecodeRowsMatchEachRowAloneBitForBit) {
  InvarianceScope invariant(true);
  std::mt19937 rng(13);
  std::normal_distribution<float> d;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (int64_t k : {int64_t(37), int64_t(200), int64_t(300), int64_t(1045),
                      int64_t(8192 + 37)}) {
      TestWeight w(f, 2, 150, k, 2, rng);
      // 2 to 16 rows: FP8's gemvFp8PairsRows where the set has it (a scale
      // block's tail of 72, 44 and 37 weights among the k). 1045 leaves a
      // whole 16-value block and then 5 past the last 32 (a kernel that
      // adds that block to another chain for some row counts fails here).
      for (int64_t rows : {2, 3, 5, 9, 16}) {
        std::vector<float> x(size_t(rows * k));
        for (float &v : x)
          v = d(rng);
        for (const Product &p : kProducts)
          for (const KernelSet *set : testedSets()) {
            const KernelSet &ks = *set;
            Isa isa = ks.isa;
            std::vector<float> all(size_t(rows * w.rows)), one(size_t(w.rows));
            p.fn(ks, x.data(), k, rows, w.matrix, 0, w.rows, all.data(),
                 w.rows);
            for (int64_t t = 0; t < rows; ++t) {
              p.fn(ks, x.data() + t * k, k, 1, w.matrix, 0, w.rows, one.data(),
                   w.rows);
              for (int64_t r = 0; r < w.rows; ++r)
                ASSERT_EQ(all[size_t(t * w.rows + r)], one[size_t(r)])
                    << p.name << " " << setName(*set) << " " << formatName(f)
                    << " k " << k << " rows " << rows << " x row " << t
                    << " weight row " << r;
            }
          }
      }
    }
}

// With batch invariance on, a batched decode step's expert groups give
// each row what it gives alone, bit for bit, as the dense products do: a
// group of up to kGemvRows rows (an expert several of the step's tokens
// chose, or the folded shared expert over all B) takes the dot products on
// every set, where without the invariance sets with bf16 or FP8 tiles take
// a partial tile from 6-10 rows. Gathered rows (the index form) and the
// SiLU-mul epilogue too.
TEST(MatMul, GroupRowsMatchEachRowAloneWhenInvariant) {
  InvarianceScope invariant(true);
  std::mt19937 rng(23);
  std::normal_distribution<float> d;
  const int64_t n = 40, k = 1045, experts = 3;
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight gate(f, experts, n, k, 0, rng), up(f, experts, n, k, 0, rng);
    for (int64_t rows : {6, 8, 11, 16}) {
      std::vector<float> x(size_t(rows * k));
      for (float &v : x)
        v = d(rng);
      std::vector<int32_t> index(static_cast<size_t>(rows));
      for (int64_t t = 0; t < rows; ++t)
        index[size_t(t)] = int32_t(rows - 1 - t);
      // All rows to expert 2, one group.
      const std::vector<MatmulGroup> all = {{0, rows, 2 * n}};
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        for (bool silu : {false, true})
          for (const int32_t *ix :
               {static_cast<const int32_t *>(nullptr),
                static_cast<const int32_t *>(index.data())}) {
            auto product = [&](const std::vector<MatmulGroup> &groups,
                               float *y) {
              if (silu)
                matmulGroupsSiluMul(ks, x.data(), k, rows, gate.matrix,
                                    up.matrix, n, groups, y, n, ix);
              else
                matmulGroups(ks, x.data(), k, rows, gate.matrix, n, groups, y,
                             n, ix);
            };
            std::vector<float> y(size_t(rows * n)), one(size_t(rows * n));
            product(all, y.data());
            for (int64_t t = 0; t < rows; ++t)
              product({{t, t + 1, 2 * n}}, one.data());
            for (size_t i = 0; i < y.size(); ++i)
              ASSERT_EQ(y[i], one[i])
                  << setName(ks) << " " << formatName(f) << " rows " << rows
                  << (silu ? " silu" : "") << (ix ? " gathered" : "") << " at "
                  << i / size_t(n) << "," << i % size_t(n);
          }
      }
    }
  }
}
