//===- GemmTest.cpp - linear and grouped linear against naive loops -------===//
#include "cpu/Gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

using namespace dsrt;
using dsrt::cpu::groupedLinear;
using dsrt::cpu::linear;

namespace {

/// A buffer with a 2-D view whose strides the test chooses.
struct Strided {
  std::vector<float> buf;
  MemRef<float, 2> ref;
  Strided(int64_t rows, int64_t cols, int64_t rowStride, int64_t colStride,
          int64_t offset, float fill = NAN) {
    buf.assign(size_t(offset + std::max<int64_t>(rows, 1) * rowStride +
                      cols * colStride + 1),
               fill);
    ref.allocated = ref.aligned = buf.data();
    ref.offset = offset;
    ref.sizes[0] = rows;
    ref.sizes[1] = cols;
    ref.strides[0] = rowStride;
    ref.strides[1] = colStride;
  }
  float &at(int64_t i, int64_t j) {
    return buf[size_t(ref.offset + i * ref.strides[0] + j * ref.strides[1])];
  }
};

Strided dense(int64_t rows, int64_t cols, float fill = NAN) {
  return Strided(rows, cols, cols, 1, 0, fill);
}

void randomize(Strided &m, std::mt19937 &rng) {
  std::normal_distribution<float> d;
  for (int64_t i = 0; i < m.ref.sizes[0]; ++i)
    for (int64_t j = 0; j < m.ref.sizes[1]; ++j)
      m.at(i, j) = d(rng);
}

/// y[t, n] = sum_k x[t, k] w[n, k], in double.
double naive(Strided &x, Strided &w, int64_t t, int64_t n) {
  double acc = 0;
  for (int64_t k = 0; k < x.ref.sizes[1]; ++k)
    acc += double(x.at(t, k)) * double(w.at(n, k));
  return acc;
}

void expectLinear(Strided x, Strided w, Strided y) {
  std::mt19937 rng(42);
  randomize(x, rng);
  randomize(w, rng);
  ASSERT_EQ(linear(x.ref, w.ref, y.ref), "");
  for (int64_t t = 0; t < x.ref.sizes[0]; ++t)
    for (int64_t n = 0; n < w.ref.sizes[0]; ++n)
      EXPECT_NEAR(y.at(t, n), naive(x, w, t, n), 1e-4)
          << "t=" << t << " n=" << n;
}

} // namespace

TEST(Gemm, LinearMatchesNaive) {
  expectLinear(dense(5, 7), dense(3, 7), dense(5, 3));
  expectLinear(dense(33, 64), dense(48, 64), dense(33, 48));
}

TEST(Gemm, SingleRowUsesTheVectorPath) {
  expectLinear(dense(1, 19), dense(11, 19), dense(1, 11));
  // A one-row view inside a bigger buffer: its row stride is the parent's.
  expectLinear(Strided(1, 19, 40, 1, 3), dense(11, 19), dense(1, 11));
}

TEST(Gemm, HonoursRowStridesAndOffsets) {
  // x is every other row of a wider buffer, with an offset; y too.
  expectLinear(Strided(6, 5, 13, 1, 7), Strided(4, 5, 9, 1, 2),
               Strided(6, 4, 10, 1, 5));
}

TEST(Gemm, NonUnitColumnStridesFallBackToLoops) {
  // Transposed views (column stride != 1) are not BLAS layouts.
  expectLinear(Strided(4, 6, 1, 4, 0), dense(3, 6), dense(4, 3));
  expectLinear(dense(4, 6), Strided(3, 6, 1, 3, 0), Strided(4, 3, 1, 4, 0));
}

TEST(Gemm, ZeroRowsWritesNothing) {
  Strided x = dense(0, 8), w = dense(4, 8, 1.0f), y = dense(0, 4, 5.0f);
  EXPECT_EQ(linear(x.ref, w.ref, y.ref), "");
  for (float v : y.buf)
    EXPECT_EQ(v, 5.0f);
}

TEST(Gemm, EmptyReductionGivesZeros) {
  Strided x = dense(2, 0), w = dense(3, 0), y = dense(2, 3, 5.0f);
  EXPECT_EQ(linear(x.ref, w.ref, y.ref), "");
  for (int64_t t = 0; t < 2; ++t)
    for (int64_t n = 0; n < 3; ++n)
      EXPECT_EQ(y.at(t, n), 0.0f);
}

TEST(Gemm, LinearRejectsShapeMismatch) {
  Strided x = dense(2, 5), w = dense(3, 4), y = dense(2, 3, 9.0f);
  EXPECT_NE(linear(x.ref, w.ref, y.ref).find("disagree on K (5 vs 4)"),
            std::string::npos);
  Strided w2 = dense(3, 5), y2 = dense(2, 4, 9.0f);
  EXPECT_NE(linear(x.ref, w2.ref, y2.ref).find("y is [2, 4], expected [2, 3]"),
            std::string::npos);
  for (float v : y2.buf)
    EXPECT_EQ(v, 9.0f); // nothing written
}

namespace {

struct Grouped {
  int64_t experts, n, k;
  std::vector<float> w;
  MemRef<float, 3> ref;
  Grouped(int64_t experts, int64_t n, int64_t k, std::mt19937 &rng)
      : experts(experts), n(n), k(k), w(size_t(experts * n * k)) {
    std::normal_distribution<float> d;
    for (float &v : w)
      v = d(rng);
    int64_t shape[3] = {experts, n, k};
    ref = makeMemRef<float, 3>(w.data(), shape);
  }
  float at(int64_t e, int64_t i, int64_t j) const {
    return w[size_t((e * n + i) * k + j)];
  }
};

MemRef<int32_t, 1> offsetsRef(std::vector<int32_t> &v) {
  int64_t n = int64_t(v.size());
  return makeMemRef<int32_t, 1>(v.data(), &n);
}

} // namespace

TEST(Gemm, GroupedLinearMatchesPerExpertLoops) {
  std::mt19937 rng(7);
  Grouped w(5, 6, 8, rng);
  // Experts 1 and 3 get no rows; expert 4 gets one (the vector path).
  std::vector<int32_t> off = {0, 3, 3, 7, 7, 8};
  Strided x(8, 8, 11, 1, 2); // strided rows, as a permuted buffer view
  randomize(x, rng);
  Strided y = dense(8, 6);
  ASSERT_EQ(groupedLinear(x.ref, w.ref, offsetsRef(off), y.ref), "");
  for (int64_t e = 0; e < 5; ++e)
    for (int64_t t = off[size_t(e)]; t < off[size_t(e + 1)]; ++t)
      for (int64_t i = 0; i < 6; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < 8; ++j)
          acc += double(x.at(t, j)) * double(w.at(e, i, j));
        EXPECT_NEAR(y.at(t, i), acc, 1e-4) << "e=" << e << " t=" << t;
      }
}

TEST(Gemm, GroupedLinearLeavesUngroupedRowsAlone) {
  std::mt19937 rng(8);
  Grouped w(3, 4, 4, rng);
  std::vector<int32_t> off = {1, 1, 2, 2}; // only row 1, by expert 1
  Strided x = dense(4, 4, 1.0f), y = dense(4, 4, -3.0f);
  ASSERT_EQ(groupedLinear(x.ref, w.ref, offsetsRef(off), y.ref), "");
  for (int64_t t : {0, 2, 3})
    for (int64_t i = 0; i < 4; ++i)
      EXPECT_EQ(y.at(t, i), -3.0f);
  for (int64_t i = 0; i < 4; ++i) {
    double acc = 0;
    for (int64_t j = 0; j < 4; ++j)
      acc += w.at(1, i, j);
    EXPECT_NEAR(y.at(1, i), acc, 1e-5);
  }
}

TEST(Gemm, GroupedLinearAllGroupsEmpty) {
  std::mt19937 rng(9);
  Grouped w(4, 3, 2, rng);
  std::vector<int32_t> off = {0, 0, 0, 0, 0};
  Strided x = dense(0, 2), y = dense(0, 3);
  EXPECT_EQ(groupedLinear(x.ref, w.ref, offsetsRef(off), y.ref), "");
}

TEST(Gemm, GroupedLinearRejectsBadOffsets) {
  std::mt19937 rng(10);
  Grouped w(2, 3, 2, rng);
  Strided x = dense(4, 2, 1.0f), y = dense(4, 3, 8.0f);
  std::vector<int32_t> decreasing = {0, 3, 1};
  EXPECT_NE(groupedLinear(x.ref, w.ref, offsetsRef(decreasing), y.ref)
                .find("offsets of expert 1 are [3, 1)"),
            std::string::npos);
  std::vector<int32_t> past = {0, 2, 5};
  EXPECT_NE(groupedLinear(x.ref, w.ref, offsetsRef(past), y.ref)
                .find("outside [0, 4]"),
            std::string::npos);
  std::vector<int32_t> negative = {-1, 2, 4};
  EXPECT_NE(groupedLinear(x.ref, w.ref, offsetsRef(negative), y.ref), "");
  std::vector<int32_t> tooFew = {0, 4};
  EXPECT_NE(groupedLinear(x.ref, w.ref, offsetsRef(tooFew), y.ref)
                .find("fewer offsets than experts + 1 (2 vs 3)"),
            std::string::npos);
  for (float v : y.buf)
    EXPECT_EQ(v, 8.0f); // checked before anything is written
}
