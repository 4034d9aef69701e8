//===- SseTransposeTest.cpp - the baseline transposes ---------------------===//
#include "cpu/SseTranspose.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

using namespace dsrt::cpu;

namespace {

// Every shape around the 4 x 4 blocks (whole blocks, an edge of rows, of
// columns, of both, fewer than a block), from strided sources into a
// destination wider than the rows: the values land transposed and the
// destination's columns past the rows keep what they held.
TEST(SseTranspose, StridedMatchesTheDefinition) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  for (int64_t rows : {1, 3, 4, 5, 8, 13})
    for (int64_t cols : {1, 2, 4, 7, 16, 19}) {
      int64_t ldSrc = cols + 5, ldDst = rows + 3;
      std::vector<float> src(size_t(rows * ldSrc));
      for (float &v : src)
        v = u(rng);
      std::vector<float> dst(size_t(cols * ldDst), 7.0f);
      transposeStrided(src.data(), ldSrc, rows, cols, dst.data(), ldDst);
      for (int64_t c = 0; c < cols; ++c) {
        for (int64_t r = 0; r < rows; ++r)
          ASSERT_EQ(dst[size_t(c * ldDst + r)], src[size_t(r * ldSrc + c)])
              << rows << "x" << cols << " at " << r << "," << c;
        for (int64_t r = rows; r < ldDst; ++r)
          ASSERT_EQ(dst[size_t(c * ldDst + r)], 7.0f)
              << rows << "x" << cols << " wrote past the rows at " << c;
      }
    }
}

} // namespace
