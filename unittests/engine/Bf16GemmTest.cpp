//===- Bf16GemmTest.cpp - GEMMs over bf16 weights, the thread pool --------===//
#include "cpu/Bf16Gemm.h"
#include "cpu/Gemm.h"
#include "cpu/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

// The pool entry the generated code calls (ds-parallelize-kernels).
extern "C" void dsrt_parallel_for(void (*task)(void *, int64_t, int64_t),
                                  void *packed, int64_t n, int64_t grain);

namespace {

uint16_t toBf16(float f) { // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

struct Case {
  int64_t rows, n, k;
};

/// y = x w^T against a double-precision loop over the same bf16 values,
/// with x and y given row strides wider than their rows.
void check(const Case &c, std::mt19937 &rng) {
  std::normal_distribution<float> d;
  int64_t ldx = c.k + 3, ldy = c.n + 5;
  std::vector<float> x(size_t(std::max<int64_t>(c.rows, 1) * ldx));
  for (float &v : x)
    v = d(rng);
  std::vector<uint16_t> w(size_t(c.n * c.k));
  for (uint16_t &v : w)
    v = toBf16(d(rng));
  std::vector<float> y(size_t(std::max<int64_t>(c.rows, 1) * ldy), -7.0f);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {c.rows, c.k}, {ldx, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {c.rows, c.n}, {ldy, 1}};
  ASSERT_EQ(linearBf16(xm, {w.data(), c.n, c.k, c.k}, ym), "");
  for (int64_t t = 0; t < c.rows; ++t)
    for (int64_t n = 0; n < c.n; ++n) {
      double want = 0;
      for (int64_t k = 0; k < c.k; ++k)
        want += double(x[size_t(t * ldx + k)]) * bf16ToF32(w[size_t(n * c.k + k)]);
      EXPECT_NEAR(y[size_t(t * ldy + n)], want, 1e-4 * (1 + std::sqrt(double(c.k))))
          << "rows " << c.rows << " n " << c.n << " k " << c.k << " at " << t
          << "," << n;
    }
  // Padding between rows is untouched.
  for (int64_t t = 0; t < c.rows; ++t)
    EXPECT_EQ(y[size_t(t * ldy + c.n)], -7.0f);
}

TEST(Bf16Gemm, MatchesTheF64ProductOnEveryPath) {
  std::mt19937 rng(3);
  // One row (decode's matrix-vector product), a few rows, many rows (tiles
  // + sgemm), K below, at and past the 16-wide vector step, N past a tile.
  for (Case c : {Case{1, 7, 5}, Case{1, 300, 16}, Case{1, 64, 1000},
                 Case{3, 33, 47}, Case{4, 129, 64}, Case{5, 200, 33},
                 Case{20, 300, 100}, Case{0, 8, 8}})
    check(c, rng);
}

TEST(Bf16Gemm, RejectsMismatchedShapes) {
  std::vector<float> x(8), y(8);
  std::vector<uint16_t> w(8);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {2, 4}, {4, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {2, 3}, {3, 1}};
  EXPECT_NE(linearBf16(xm, {w.data(), 2, 4, 4}, ym), "");
  EXPECT_NE(linearBf16(xm, {w.data(), 3, 5, 5}, ym), "");
}

TEST(Bf16Gemm, GroupedByExpertOffsets) {
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  int64_t experts = 3, n = 6, k = 20, rows = 9;
  std::vector<float> x(size_t(rows * k));
  for (float &v : x)
    v = d(rng);
  std::vector<uint16_t> w(size_t(experts * n * k));
  for (uint16_t &v : w)
    v = toBf16(d(rng));
  std::vector<int32_t> off = {0, 1, 1, 9}; // expert 1 gets no row
  std::vector<float> y(size_t(rows * n), 0.0f);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {rows, k}, {k, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {rows, n}, {n, 1}};
  MemRef<int32_t, 1> om{off.data(), off.data(), 0, {4}, {1}};
  ASSERT_EQ(groupedLinearBf16(xm, w.data(), experts, n, k, n * k, om, ym), "");
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t t = off[size_t(e)]; t < off[size_t(e + 1)]; ++t)
      for (int64_t j = 0; j < n; ++j) {
        double want = 0;
        for (int64_t c = 0; c < k; ++c)
          want += double(x[size_t(t * k + c)]) *
                  bf16ToF32(w[size_t((e * n + j) * k + c)]);
        EXPECT_NEAR(y[size_t(t * n + j)], want, 1e-4);
      }
  off = {0, 5, 4, 9}; // decreasing
  EXPECT_NE(groupedLinearBf16(xm, w.data(), experts, n, k, n * k, om, ym), "");
}

// The gate|up GEMM with its SiLU-mul epilogue, f32 and bf16 weights, on
// the one-row and the many-row paths, against a double-precision loop.
TEST(LinearSiluMul, MatchesGemmThenSiluMul) {
  std::mt19937 rng(11);
  std::normal_distribution<float> d;
  for (int64_t rows : {1, 3, 9}) {
    int64_t f = 40, k = 37;
    std::vector<float> x(size_t(rows * k)), w32(size_t(2 * f * k));
    std::vector<uint16_t> w16(w32.size());
    for (float &v : x)
      v = d(rng);
    for (size_t i = 0; i < w32.size(); ++i) {
      w16[i] = toBf16(d(rng));
      w32[i] = bf16ToF32(w16[i]); // same values in both layouts
    }
    std::vector<float> y32(size_t(rows * f)), y16(size_t(rows * f));
    MemRef<float, 2> xm{x.data(), x.data(), 0, {rows, k}, {k, 1}};
    MemRef<float, 2> wm{w32.data(), w32.data(), 0, {2 * f, k}, {k, 1}};
    MemRef<float, 2> y32m{y32.data(), y32.data(), 0, {rows, f}, {f, 1}};
    MemRef<float, 2> y16m{y16.data(), y16.data(), 0, {rows, f}, {f, 1}};
    ASSERT_EQ(linearSiluMul(xm, wm, y32m), "");
    ASSERT_EQ(linearSiluMulBf16(xm, {w16.data(), 2 * f, k, k}, y16m), "");
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t j = 0; j < f; ++j) {
        double g = 0, u = 0;
        for (int64_t c = 0; c < k; ++c) {
          g += double(x[size_t(t * k + c)]) * w32[size_t(j * k + c)];
          u += double(x[size_t(t * k + c)]) * w32[size_t((f + j) * k + c)];
        }
        double want = g / (1 + std::exp(-g)) * u;
        EXPECT_NEAR(y32[size_t(t * f + j)], want, 1e-4 * (1 + std::abs(want)));
        EXPECT_NEAR(y16[size_t(t * f + j)], want, 1e-4 * (1 + std::abs(want)));
      }
  }
  std::vector<float> x(4), w(12), y(3);
  MemRef<float, 2> xm{x.data(), x.data(), 0, {1, 4}, {4, 1}};
  MemRef<float, 2> odd{w.data(), w.data(), 0, {3, 4}, {4, 1}};
  MemRef<float, 2> ym{y.data(), y.data(), 0, {1, 1}, {1, 1}};
  EXPECT_NE(linearSiluMul(xm, odd, ym), "");
}

TEST(ThreadPool, GeneratedCodeEntryCoversEveryIterationOnce) {
  for (int64_t n : {0, 1, 5, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    dsrt_parallel_for(
        [](void *p, int64_t b, int64_t e) {
          auto &h = *static_cast<std::vector<std::atomic<int>> *>(p);
          for (int64_t i = b; i < e; ++i)
            h[size_t(i)]++;
        },
        &hits, n, 1);
    for (auto &h : hits)
      EXPECT_EQ(h.load(), 1);
  }
  dsrt_parallel_for(nullptr, nullptr, 10, 1); // no task: nothing happens
}

TEST(ThreadPool, EveryIndexOnceAndNestedCallsRunInline) {
  for (int64_t n : {0, 1, 7, 1000, 4097}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallelFor(n, 16, [&](int64_t b, int64_t e) {
      EXPECT_LE(b, e);
      for (int64_t i = b; i < e; ++i)
        hits[size_t(i)]++;
      // A nested region runs on the caller, entirely.
      std::atomic<int64_t> inner{0};
      parallelFor(10, 1, [&](int64_t ib, int64_t ie) { inner += ie - ib; });
      EXPECT_EQ(inner.load(), 10);
    });
    for (auto &h : hits)
      EXPECT_EQ(h.load(), 1);
  }
  EXPECT_GE(numThreads(), 1);
}

} // namespace
