#include "weights/DType.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace dsrt;

TEST(DType, NamesAndSizes) {
  DType t;
  ASSERT_TRUE(parseDType("BF16", t));
  EXPECT_EQ(t, DType::BF16);
  EXPECT_EQ(dtypeSize(t), 2u);
  ASSERT_TRUE(parseDType("F8_E4M3", t));
  EXPECT_EQ(dtypeSize(t), 1u);
  EXPECT_TRUE(isSupportedWeightDType(t));
  ASSERT_TRUE(parseDType("I64", t));
  EXPECT_FALSE(isSupportedWeightDType(t));
  EXPECT_FALSE(parseDType("bf16", t)); // safetensors spelling only
}

TEST(DType, BF16RoundTripAndRounding) {
  EXPECT_EQ(bf16ToF32(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToF32(0xC040), -3.0f);
  EXPECT_EQ(f32ToBF16(1.0f), 0x3F80);
  // 1 + 2^-8 is exactly between two bf16 values: ties go to even (1.0).
  EXPECT_EQ(f32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(f32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBF16(NAN))));
}

TEST(DType, F16IncludingSubnormalsAndSpecials) {
  EXPECT_EQ(f16ToF32(0x3C00), 1.0f);
  EXPECT_EQ(f16ToF32(0xC000), -2.0f);
  EXPECT_EQ(f16ToF32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(f16ToF32(0x7C00)));
  EXPECT_TRUE(std::isnan(f16ToF32(0x7E00)));
}

TEST(DType, E4M3) {
  EXPECT_EQ(e4m3ToF32(0x38), 1.0f);     // exp 7, mant 0
  EXPECT_EQ(e4m3ToF32(0x7E), 448.0f);   // the largest finite value
  EXPECT_EQ(e4m3ToF32(0xFE), -448.0f);
  EXPECT_EQ(e4m3ToF32(0x01), std::ldexp(1.0f, -9)); // smallest subnormal
  EXPECT_EQ(e4m3ToF32(0x08), std::ldexp(1.0f, -6)); // smallest normal
  EXPECT_TRUE(std::isnan(e4m3ToF32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3ToF32(0xFF)));
  EXPECT_EQ(e4m3ToF32(0x78), 256.0f); // no infinity encoding: 0x78 is finite
}
