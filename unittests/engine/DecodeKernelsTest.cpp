//===- DecodeKernelsTest.cpp - one-token kernels: split, same numbers -----===//
//
// A decode step's products are bound by reading weights, so the runtime
// splits them over the pool even when their arithmetic is small. These
// tests pin that they are split (or a core idles, which only a benchmark
// would show) and that splitting changes no bit of any result.
//
//===----------------------------------------------------------------------===//
#include "cpu/HeadMatmul.h"
#include "cpu/ThreadPool.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// The absorbed MLA's head products at one token, with V3's per-head shape
/// scaled down (8 heads, 64 x 256 f32 blocks: 64 KiB of weights a head):
/// split over the pool where it has two threads, and every head's output
/// bit for bit what that head alone (one head, never split) gives.
TEST(DecodeKernels, OneTokenHeadProductsSplitOverThePool) {
  const int64_t heads = 8, dn = 64, dv = 64, group = dn + dv, dc = 256;
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  std::vector<float> w(size_t(heads * group * dc));
  for (float &v : w)
    v = d(rng);
  int64_t ws[2] = {heads * group, dc};
  auto wm = makeMemRef<float, 2>(w.data(), ws);
  for (bool transpose : {false, true}) {
    int64_t k = transpose ? dc : dn, n = transpose ? dv : dc;
    int64_t offset = transpose ? dn : 0;
    std::vector<float> x(size_t(heads * k)), out(size_t(heads * n), -7.0f);
    for (float &v : x)
      v = d(rng);
    int64_t xs[3] = {1, heads, k}, os[3] = {1, heads, n};
    PoolStats before = poolStats();
    ASSERT_EQ(headMatmul(makeMemRef<float, 3>(x.data(), xs), wm,
                         makeMemRef<float, 3>(out.data(), os), group, offset,
                         transpose),
              "");
    EXPECT_EQ(poolStats().regions - before.regions, numThreads() > 1 ? 1 : 0)
        << "transpose " << transpose;
    for (int64_t h = 0; h < heads; ++h) {
      std::vector<float> alone(size_t(n), -7.0f);
      int64_t xs1[3] = {1, 1, k}, os1[3] = {1, 1, n};
      ASSERT_EQ(headMatmul(makeMemRef<float, 3>(x.data() + h * k, xs1), wm,
                           makeMemRef<float, 3>(alone.data(), os1), group,
                           h * group + offset, transpose),
                "");
      for (int64_t j = 0; j < n; ++j)
        ASSERT_EQ(out[size_t(h * n + j)], alone[size_t(j)])
            << "transpose " << transpose << " head " << h << " at " << j;
    }
  }
}

} // namespace
