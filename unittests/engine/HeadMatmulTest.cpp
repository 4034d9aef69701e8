//===- HeadMatmulTest.cpp - the absorbed MLA's per-head products ----------===//
#include "cpu/HeadMatmul.h"
#include "TestWeight.h"
#include "cpu/Isa.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

namespace {

constexpr int64_t kHeads = 3, kDn = 70, kDv = 60, kGroup = kDn + kDv, kDc = 300;

/// x [tokens, heads, k] at a token stride wider than heads * k, and out
/// likewise (so the GEMM path's row strides are exercised), out filled with
/// a sentinel.
struct HeadBuffers {
  int64_t tokens, k, n, ldx, ldo;
  std::vector<float> x, out;
  MemRef<float, 3> xm, om;
  HeadBuffers(int64_t tokens, int64_t k, int64_t n, std::mt19937 &rng)
      : tokens(tokens), k(k), n(n), ldx(kHeads * k + 5), ldo(kHeads * n + 3),
        x(size_t(std::max<int64_t>(tokens, 1) * ldx)),
        out(size_t(std::max<int64_t>(tokens, 1) * ldo), -7.0f) {
    std::normal_distribution<float> d;
    for (float &v : x)
      v = d(rng);
    xm = view(x.data(), k, ldx);
    om = view(out.data(), n, ldo);
  }
  MemRef<float, 3> view(float *p, int64_t width, int64_t ld) const {
    return headsView(p, tokens, kHeads, width, ld);
  }
  float at(int64_t t, int64_t h, int64_t j) const {
    return out[size_t(t * ldo + h * n + j)];
  }
};

/// Checks out's row t against the float64 product (x never rounded: the
/// products are in f32 arithmetic whatever the weight's format) within f32
/// accumulation error, which a wrong scale block, a swapped head or a
/// dropped column is far outside.
void expectRowMatches(const HeadBuffers &b, const TestWeight &w, int64_t t,
                      bool transpose, const std::string &what) {
  int64_t offset = transpose ? kDn : 0;
  for (int64_t h = 0; h < kHeads; ++h)
    for (int64_t j = 0; j < b.n; ++j) {
      double want = 0, mag = 0;
      for (int64_t c = 0; c < b.k; ++c) {
        int64_t row = h * kGroup + offset + (transpose ? j : c);
        int64_t col = transpose ? c : j;
        double term = double(b.x[size_t(t * b.ldx + h * b.k + c)]) *
                      w.values[size_t(row * kDc + col)];
        want += term;
        mag += std::abs(term);
      }
      ASSERT_NEAR(b.at(t, h, j), want, 1e-6 * (1 + mag))
          << what << " at " << t << "," << h << "," << j;
    }
}

// Every ISA's kernels (the scalar one is the reference the others are
// held to, through the float64 product), both products, row counts on
// either side of kHeadGemmRows (decode's per-row path, the GEMM) and of the
// GEMM's panels and tiles; head blocks off the 128-row scale blocks.
TEST(HeadMatmul, EveryIsaAndFormatMatchesTheF64Product) {
  std::mt19937 rng(21);
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
    TestWeight w(f, 2, kHeads * kGroup / 2, kDc, 4, rng);
    for (int64_t tokens : {int64_t(1), kHeadGemmRows - 1, kHeadGemmRows,
                           int64_t(33), int64_t(70)})
      for (bool transpose : {false, true}) {
        int64_t k = transpose ? kDc : kDn, n = transpose ? kDv : kDc;
        HeadBuffers b(tokens, k, n, rng);
        for (Isa isa : supportedIsas()) {
          std::fill(b.out.begin(), b.out.end(), -7.0f);
          ASSERT_EQ(headMatmul(kernelsFor(isa), b.xm, w.matrix, b.om, kGroup,
                               transpose ? kDn : 0, transpose),
                    "");
          std::string what = std::string(isaName(isa)) + " " + formatName(f) +
                             " tokens " + std::to_string(tokens) +
                             " transpose " + std::to_string(transpose);
          for (int64_t t = 0; t < tokens; ++t) {
            expectRowMatches(b, w, t, transpose, what);
            ASSERT_EQ(b.out[size_t(t * b.ldo + kHeads * n)], -7.0f)
                << what << ": padding written";
          }
        }
      }
  }
}

/// Decode's q_h W_UK_h (tokens 1 and kHeadGemmRows - 1) over w on every
/// set from AVX2 up, bit for bit what the AVX2 path gives.
void expectDecodeRowsAsAvx2s(const TestWeight &w, int64_t cols,
                             std::mt19937 &rng) {
  for (int64_t tokens : {int64_t(1), kHeadGemmRows - 1}) {
    HeadBuffers b(tokens, kDn, cols, rng);
    ASSERT_EQ(headMatmul(kernelsFor(Isa::Avx2), b.xm, w.matrix, b.om, kGroup, 0,
                         false),
              "");
    std::vector<float> want = b.out;
    for (Isa isa : supportedIsas()) {
      if (isa < Isa::Avx2)
        continue;
      std::fill(b.out.begin(), b.out.end(), -7.0f);
      ASSERT_EQ(
          headMatmul(kernelsFor(isa), b.xm, w.matrix, b.om, kGroup, 0, false),
          "");
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_EQ(std::memcmp(&b.out[i], &want[i], 4), 0)
            << isaName(isa) << " " << formatName(w.matrix.format) << " columns "
            << cols << " tokens " << tokens << " value " << i << ": "
            << b.out[i] << " vs the avx2 path's " << want[i];
    }
  }
}

// Decode's q_h W_UK_h over bf16 rows: the AVX-512 sets keep 256 outputs
// in registers (KernelSet::combineBf16Rows), AVX2 strips of 64: both sum x[k] *
// w[k][c] from k = 0 up with fused adds, so they must give the same bits (a
// token's result may not depend on the CPU path that served it; the scalar
// set's adds are not fused). n = 300 leaves a tail of every kernel's width.
TEST(HeadMatmul, Bf16DecodeRowsAreBitForBitThoseOfEveryPath) {
  if (!isaSupported(Isa::Avx2))
    GTEST_SKIP() << "no AVX2: only the scalar path runs here";
  std::mt19937 rng(5);
  TestWeight w(WeightFormat::BF16, 1, kHeads * kGroup, kDc, 4, rng);
  expectDecodeRowsAsAvx2s(w, kDc, rng);
}

// The same for FP8 rows (KernelSet::combineFp8Rows on VBMI: 256 columns a
// pass, then 128; AVX2: strips of 64, each weight times its block's scale
// rounded to f32 first): 300 columns end in a 44-column pass of 128, 200 in
// a part-filled pass of 256.
TEST(HeadMatmul, Fp8DecodeRowsAreBitForBitThoseOfEveryPath) {
  if (!isaSupported(Isa::Avx2))
    GTEST_SKIP() << "no AVX2: only the scalar path runs here";
  std::mt19937 rng(8);
  for (int64_t cols : {kDc, int64_t(200)}) {
    TestWeight w(WeightFormat::FP8, 1, kHeads * kGroup, cols, 4, rng);
    expectDecodeRowsAsAvx2s(w, cols, rng);
  }
}

// A ragged step's query_start: sequences of 1, 20, 1, 0, 8, 2 and 1 new
// tokens with naive from 5, then 2 rows outside every sequence (a padded
// step): rows of the 20- and 8-token sequences are neither computed nor
// written (ds.paged_naive_attention replaces them), the padding rows are
// zero, the others (two runs of adjacent absorbed sequences) the product.
TEST(HeadMatmul, SkipsTheNaiveSequencesRowsOnly) {
  std::mt19937 rng(22);
  TestWeight w(WeightFormat::BF16, 1, kHeads * kGroup, kDc, 0, rng);
  std::vector<int32_t> qs = {0, 1, 21, 22, 22, 30, 32, 33};
  int64_t qsShape[1] = {int64_t(qs.size())};
  auto qm = makeMemRef<int32_t, 1>(qs.data(), qsShape);
  const int64_t tokens = 35;
  auto naive = [](int64_t t) {
    return (t >= 1 && t < 21) || (t >= 22 && t < 30);
  };
  for (bool transpose : {false, true}) {
    int64_t k = transpose ? kDc : kDn, n = transpose ? kDv : kDc;
    HeadBuffers b(tokens, k, n, rng);
    int64_t rows = 100;
    ASSERT_EQ(headMatmulSkip(b.xm, w.matrix, b.om, qm, kGroup,
                             transpose ? kDn : 0, transpose, 5, &rows),
              "");
    EXPECT_EQ(rows, 100 + 1 + 1 + 2 + 1) << "rows computed";
    for (int64_t t = 0; t < tokens; ++t) {
      if (t < 33 && !naive(t)) {
        expectRowMatches(b, w, t, transpose, "absorbed row");
        continue;
      }
      float want = t < 33 ? -7.0f : 0.0f;
      for (int64_t h = 0; h < kHeads; ++h)
        for (int64_t j = 0; j < n; ++j)
          ASSERT_EQ(b.at(t, h, j), want)
              << (t < 33 ? "naive row " : "padding row ") << t;
    }
  }
  // Threshold 0 or 1: every non-empty sequence is naive, nothing computed
  // or written but the padding rows.
  HeadBuffers b(tokens, kDn, kDc, rng);
  int64_t rows = 0;
  ASSERT_EQ(
      headMatmulSkip(b.xm, w.matrix, b.om, qm, kGroup, 0, false, 0, &rows), "");
  EXPECT_EQ(rows, 0);
  for (int64_t t = 0; t < tokens; ++t)
    ASSERT_EQ(b.at(t, 2, kDc - 1), t < 33 ? -7.0f : 0.0f) << "row " << t;
}

TEST(HeadMatmul, SkipRefusesABadQueryStart) {
  std::mt19937 rng(23);
  TestWeight w(WeightFormat::F32, 1, kHeads * kGroup, kDc, 0, rng);
  HeadBuffers b(4, kDn, kDc, rng);
  for (auto [qs, message] :
       std::vector<std::pair<std::vector<int32_t>, std::string>>{
           {{0, 3, 2, 4},
            "head_matmul: query_start[2] = 2 is not non-decreasing within "
            "[0, 4]"},
           {{0, 5},
            "head_matmul: query_start[1] = 5 is not non-decreasing within "
            "[0, 4]"},
           {{},
            "head_matmul: query_start is empty, expected [sequences + "
            "1]"}}) {
    int64_t shape[1] = {int64_t(qs.size())};
    std::vector<int32_t> q = qs;
    q.reserve(1);
    EXPECT_EQ(headMatmulSkip(b.xm, w.matrix, b.om,
                             makeMemRef<int32_t, 1>(q.data(), shape), kGroup, 0,
                             false, 2, nullptr),
              message);
    for (float v : b.out)
      ASSERT_EQ(v, -7.0f) << "written despite the error";
  }
}

} // namespace
