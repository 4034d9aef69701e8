#include "weights/DType.h"

#include <cmath>
#include <cstring>
#include <gtest/gtest.h>

using namespace dsrt;

TEST(DType, NamesAndSizesFollowSafetensors) {
  struct {
    const char *name;
    DType type;
    size_t size;
    bool weight;
  } table[] = {
      {"F64", DType::F64, 8, false},
      {"F32", DType::F32, 4, true},
      {"F16", DType::F16, 2, true},
      {"BF16", DType::BF16, 2, true},
      {"F8_E4M3", DType::F8_E4M3, 1, true},
      {"F8_E5M2", DType::F8_E5M2, 1, false},
      {"I64", DType::I64, 8, false},
      {"I32", DType::I32, 4, false},
      {"I16", DType::I16, 2, false},
      {"I8", DType::I8, 1, false},
      {"U8", DType::U8, 1, false},
      {"BOOL", DType::BOOL, 1, false},
  };
  for (const auto &e : table) {
    SCOPED_TRACE(e.name);
    DType t;
    ASSERT_TRUE(parseDType(e.name, t));
    EXPECT_EQ(t, e.type);
    EXPECT_STREQ(dtypeName(t), e.name);
    EXPECT_EQ(dtypeSize(t), e.size);
    EXPECT_EQ(isSupportedWeightDType(t), e.weight);
  }
  DType t;
  EXPECT_FALSE(parseDType("bf16", t)); // safetensors spelling only
  EXPECT_FALSE(parseDType("F8_E4M3FN", t));
  EXPECT_FALSE(parseDType("", t));
}

TEST(DType, BF16ToF32) {
  EXPECT_EQ(bf16ToF32(0x3F80), 1.0f);
  EXPECT_EQ(bf16ToF32(0xC040), -3.0f);
  EXPECT_EQ(bf16ToF32(0x0001), std::ldexp(1.0f, -133)); // subnormal
  EXPECT_TRUE(std::isinf(bf16ToF32(0xFF80)));
  EXPECT_LT(bf16ToF32(0xFF80), 0.0f);
  EXPECT_TRUE(std::isnan(bf16ToF32(0x7FC0)));
  EXPECT_TRUE(std::signbit(bf16ToF32(0x8000)));
}

TEST(DType, F32ToBF16RoundsToNearestEven) {
  EXPECT_EQ(f32ToBF16(1.0f), 0x3F80);
  EXPECT_EQ(f32ToBF16(-2.0f), 0xC000);
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to even (1.0);
  // 1 + 3 * 2^-8 lies halfway between odd 0x3F81 and even 0x3F82.
  EXPECT_EQ(f32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(f32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(f32ToBF16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)),
            0x3F81);                           // just above half: up
  EXPECT_EQ(f32ToBF16(3.4028235e38f), 0x7F80); // rounds up to infinity
  EXPECT_EQ(f32ToBF16(INFINITY), 0x7F80);
  // A NaN whose payload sits in the low bits must not become infinity.
  uint32_t lowNaN = 0x7F800001;
  float f;
  std::memcpy(&f, &lowNaN, 4);
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBF16(f))));
  for (float x : {0.1f, -7.25f, 1e-30f, 65504.0f})
    EXPECT_NEAR(bf16ToF32(f32ToBF16(x)), x, std::fabs(x) * (1.0f / 256));
}

TEST(DType, F16ToF32IncludingSubnormalsAndSpecials) {
  EXPECT_EQ(f16ToF32(0x3C00), 1.0f);
  EXPECT_EQ(f16ToF32(0xC000), -2.0f);
  EXPECT_EQ(f16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(f16ToF32(0x7BFF), 65504.0f);
  EXPECT_EQ(f16ToF32(0x0400), std::ldexp(1.0f, -14)); // smallest normal
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24)); // smallest subnormal
  EXPECT_EQ(f16ToF32(0x03FF), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToF32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::signbit(f16ToF32(0x8000)));
  EXPECT_EQ(f16ToF32(0x7C00), INFINITY);
  EXPECT_EQ(f16ToF32(0xFC00), -INFINITY);
  EXPECT_TRUE(std::isnan(f16ToF32(0x7E00)));
  EXPECT_TRUE(std::isnan(f16ToF32(0x7C01)));
  // Every finite positive encoding is larger than the one before.
  for (uint16_t v = 0; v < 0x7BFF; ++v)
    ASSERT_LT(f16ToF32(v), f16ToF32(uint16_t(v + 1))) << v;
}

TEST(DType, E4M3ToF32) {
  EXPECT_EQ(e4m3ToF32(0x38), 1.0f);  // exp 7 (the bias), mant 0
  EXPECT_EQ(e4m3ToF32(0x3A), 1.25f); // mant 2/8
  EXPECT_EQ(e4m3ToF32(0x40), 2.0f);
  EXPECT_EQ(e4m3ToF32(0x7E), 448.0f); // the largest finite value
  EXPECT_EQ(e4m3ToF32(0xFE), -448.0f);
  EXPECT_EQ(e4m3ToF32(0x78), 256.0f); // no infinity: exp 15 is finite
  EXPECT_EQ(e4m3ToF32(0x08), std::ldexp(1.0f, -6)); // smallest normal
  EXPECT_EQ(e4m3ToF32(0x01), std::ldexp(1.0f, -9)); // smallest subnormal
  EXPECT_EQ(e4m3ToF32(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3ToF32(0x85), -5 * std::ldexp(1.0f, -9));
  EXPECT_EQ(e4m3ToF32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(e4m3ToF32(0x80)));
  EXPECT_TRUE(std::isnan(e4m3ToF32(0x7F)));
  EXPECT_TRUE(std::isnan(e4m3ToF32(0xFF)));
  for (int v = 0; v < 0x7E; ++v) {
    ASSERT_LT(e4m3ToF32(uint8_t(v)), e4m3ToF32(uint8_t(v + 1))) << v;
    ASSERT_EQ(e4m3ToF32(uint8_t(v | 0x80)), -e4m3ToF32(uint8_t(v))) << v;
  }
}
