//===- DecodeKernelsTest.cpp - one-token kernels: split, same numbers -----===//
//
// A decode step's products are bound by reading weights, so the runtime
// splits them over the pool even when their arithmetic is small. These
// tests pin that they are split (or a core idles, which only a benchmark
// would show) and that splitting changes no bit of any result.
//
//===----------------------------------------------------------------------===//
#include "cpu/HeadMatmul.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"
#include "weights/DType.h"

#include <gtest/gtest.h>

#include <cstring>
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

/// A weight of [rows, cols] (ld = cols + 3) in `format`, FP8 with random
/// per-block scales; its bytes and scales live in the struct.
struct Stored {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  WeightMatrix matrix;
  Stored(WeightFormat format, int64_t rows, int64_t cols, std::mt19937 &rng) {
    std::normal_distribution<float> d;
    std::uniform_real_distribution<float> sc(0.001f, 0.02f);
    int64_t ld = cols + 3;
    size_t es = format == WeightFormat::F32    ? 4
                : format == WeightFormat::BF16 ? 2
                                               : 1;
    bytes.resize(size_t(rows * ld) * es);
    for (int64_t i = 0; i < rows * ld; ++i) {
      float f = d(rng);
      if (format == WeightFormat::F32)
        std::memcpy(&bytes[size_t(i) * 4], &f, 4);
      else if (format == WeightFormat::BF16) {
        uint16_t h = f32ToBF16(f);
        std::memcpy(&bytes[size_t(i) * 2], &h, 2);
      } else {
        uint8_t b = uint8_t(rng());
        bytes[size_t(i)] = (b & 0x7f) == 0x7f ? 0 : b; // no e4m3 NaN
      }
    }
    scales.resize(size_t((rows + 127) / 128 * ((cols + 127) / 128)));
    for (float &s : scales)
      s = sc(rng);
    matrix = WeightMatrix::single(format, bytes.data(), rows, cols, ld,
                                  scales.data());
  }
};

/// Decode's q_h W_UK_h (a few tokens, output rows kept in registers) and
/// the many-token loop give every token the same bits in every format: a
/// token's latent query does not depend on how many tokens share the step.
/// Columns past the 64-wide strips and the 128-wide FP8 passes (300 =
/// 4 x 64 + 44 = 2 x 128 + 44, 200 = 128 + 72) and heads whose rows cross
/// FP8 scale blocks (group 130) included.
TEST(DecodeKernels, FewTokenHeadProductsMatchTheManyTokenLoopBitForBit) {
  const int64_t heads = 3, dn = 70, group = 130, many = 20;
  std::mt19937 rng(8);
  std::normal_distribution<float> d;
  for (int64_t dc : {int64_t(300), int64_t(200)})
    for (WeightFormat f :
         {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8}) {
      Stored w(f, heads * group, dc, rng);
      std::vector<float> x(size_t(many * heads * dn));
      for (float &v : x)
        v = d(rng);
      std::vector<float> all(size_t(many * heads * dc), -7.0f);
      int64_t xs[3] = {many, heads, dn}, os[3] = {many, heads, dc};
      ASSERT_EQ(headMatmul(makeMemRef<float, 3>(x.data(), xs), w.matrix,
                           makeMemRef<float, 3>(all.data(), os), group, 0,
                           false),
                "");
      for (int64_t tokens : {int64_t(1), int64_t(3)}) {
        std::vector<float> few(size_t(tokens * heads * dc), -7.0f);
        int64_t fxs[3] = {tokens, heads, dn}, fos[3] = {tokens, heads, dc};
        ASSERT_EQ(headMatmul(makeMemRef<float, 3>(x.data(), fxs), w.matrix,
                             makeMemRef<float, 3>(few.data(), fos), group, 0,
                             false),
                  "");
        for (size_t i = 0; i < few.size(); ++i)
          ASSERT_EQ(few[i], all[i])
              << int(f) << " dc " << dc << " tokens " << tokens << " at " << i;
      }
    }
}

} // namespace
