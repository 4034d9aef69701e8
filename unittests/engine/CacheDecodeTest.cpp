//===- CacheDecodeTest.cpp - FP8 latent cache rows to f32, every ISA ------===//
#include "cpu/CacheDecode.h"
#include "cpu/Isa.h"
#include "weights/DType.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

extern "C" void dsrt_cache_decode_fp8(const uint8_t *codes,
                                      const uint8_t *scales, int64_t n,
                                      int64_t group, float *dst);

namespace {

/// A row of `n` codes cycling through every finite e4m3 code (0x7f and
/// 0xff are NaN, never written by the cache) and its scale bytes, stored
/// one byte off alignment as a row may be.
struct Row {
  std::vector<uint8_t> codes, scaleBytes;
  std::vector<float> scales;
  Row(int64_t n, int64_t group) {
    for (int64_t i = 0; i < n; ++i) {
      uint8_t c = uint8_t((i * 37) % 256);
      codes.push_back((c & 0x7f) == 0x7f ? 0 : c);
    }
    scaleBytes.assign(1, 0);
    const float pool[] = {1.0f / 448, 3.7e-3f, 0.0f, 1.5e-40f, 2.0f};
    for (int64_t g = 0; g * group < n; ++g) {
      float s = pool[g % 5];
      scales.push_back(s);
      uint8_t b[4];
      std::memcpy(b, &s, 4);
      scaleBytes.insert(scaleBytes.end(), b, b + 4);
    }
  }
  float want(int64_t i, int64_t group) const {
    return e4m3ToF32(codes[size_t(i)]) * scales[size_t(i / group)];
  }
};

TEST(CacheDecode, EveryIsaGivesTheCodeTimesItsGroupScaleExactly) {
  // Three full groups and a ragged tail (the kernels' masked tails).
  for (int64_t n : {int64_t(512), int64_t(384 + 7), int64_t(5)}) {
    const int64_t group = 128;
    Row row(n, group);
    for (Isa isa : supportedIsas()) {
      std::vector<float> got(size_t(n), -1.0f);
      decodeCacheFp8(kernelsFor(isa), row.codes.data(),
                     row.scaleBytes.data() + 1, n, group, got.data());
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(got[size_t(i)], row.want(i, group))
            << isaName(isa) << " n " << n << " value " << i << " code "
            << int(row.codes[size_t(i)]);
    }
  }
}

TEST(CacheDecode, TheRuntimeCallTakesTheActivePath) {
  Row row(256, 128);
  std::vector<float> got(256), want(256);
  dsrt_cache_decode_fp8(row.codes.data(), row.scaleBytes.data() + 1, 256, 128,
                        got.data());
  decodeCacheFp8(kernelsFor(Isa::Scalar), row.codes.data(),
                 row.scaleBytes.data() + 1, 256, 128, want.data());
  EXPECT_EQ(got, want) << isaName(activeIsa());
}

} // namespace
