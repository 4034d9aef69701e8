//===- AmxTest.cpp - the AMX tiles: the ISA's wiring and the emulation ----===//
//
// The AMX tiles' layouts run through every product test on CPUs without
// AMX (testedSets() adds amxEmulatedKernels()). These check what those
// tests cannot: that the emulation computes TDPBF16PS as the SDM defines
// it (each product rounded into the sum in turn, bf16 denormals read as
// zero), and how the ISA is offered.
//
//===----------------------------------------------------------------------===//
#include "cpu/Isa.h"
#include "cpu/Kernels.h"

#include <gtest/gtest.h>

#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// One 16-pair step of the emulated tile over a zero weight chunk and
/// panel but for pair 0 of row 0 and token 0: c[0] starts at `c0`.
float oneStep(float c0, uint16_t w0, uint16_t w1, uint16_t x0, uint16_t x1) {
  const KernelSet &ks = amxEmulatedKernels();
  constexpr int64_t kp = 16, ldw = 2 * kp;
  std::vector<uint16_t> w(size_t(ks.mrPairs * ldw), 0),
      xb(size_t(kp * kPanel * 2));
  w[0] = w0;
  w[1] = w1;
  xb[0] = x0;
  xb[1] = x1;
  std::vector<float> c(size_t(ks.mrPairs * kPanel), 0.0f);
  c[0] = c0;
  ks.tileBf16(w.data(), ldw, xb.data(), kp, c.data(), nullptr);
  return c[0];
}

TEST(Amx, EmulationAddsEachProductInTurn) {
  if (!isaSupported(Isa::Avx512Vbmi))
    GTEST_SKIP() << "the AMX sets are built on avx512vbmi's";
  const float tiny = 1.0f / 4096; // 2^-12: products of 2^-24
  uint16_t t = roundToBf16(tiny), one = roundToBf16(1.0f);
  // 1 + 2^-24 rounds to 1 (a tie, to even) twice; the pair's sum 2^-23
  // added at once would have given 1 + 2^-23.
  EXPECT_EQ(oneStep(1.0f, t, t, t, t), 1.0f);
  // The even product goes first: (1 + 2^-24) + 2^-23 is 1 + 2^-23 after
  // the first rounding to 1, where 2^-23 + 2^-24 first would round up.
  EXPECT_EQ(oneStep(1.0f, t, roundToBf16(2.0f * tiny), t, t),
            1.0f + 1.0f / 8388608);
  // A bf16 denormal weight reads as zero, whatever it multiplies.
  EXPECT_EQ(oneStep(0.0f, 0x0001, 0, roundToBf16(1e30f), 0), 0.0f);
  // And the ordinary case: 3 * 5 + 2 * 7 onto 1.
  EXPECT_EQ(oneStep(1.0f, roundToBf16(3), roundToBf16(2), roundToBf16(5),
                    roundToBf16(7)),
            30.0f);
  EXPECT_EQ(oneStep(0.0f, one, 0, one, 0), 1.0f);
}

// The ISA exists by name everywhere; it is offered only where the CPU, the
// OS and the hardware tiles' check all agree, and its set keeps the
// avx512vbmi set's dot products (decode) with AMX tiles (prefill).
TEST(Amx, OfferedOnlyWhereItRuns) {
  Isa isa;
  ASSERT_TRUE(parseIsa("amx", isa));
  EXPECT_EQ(isa, Isa::Amx);
  EXPECT_EQ(isaSupported(Isa::Amx),
            isaSupported(Isa::Avx512Vbmi) && amxAvailable());
  if (isaSupported(Isa::Amx))
    EXPECT_EQ(detectedIsa(), Isa::Amx);
  else
    EXPECT_NE(detectedIsa(), Isa::Amx);
  for (const KernelSet *set : {&amxKernels(), &amxEmulatedKernels()}) {
    if (!isaSupported(Isa::Avx512Vbmi))
      break;
    const KernelSet &vbmi = kernelsFor(Isa::Avx512Vbmi);
    EXPECT_EQ(set->isa, Isa::Amx);
    EXPECT_EQ(set->mr, vbmi.mr);
    EXPECT_EQ(set->mrPairs, 32); // two 16-row weight tiles a call
    EXPECT_EQ(set->dotFp8Pairs, vbmi.dotFp8Pairs);
    EXPECT_EQ(set->gemvBf16Pairs, vbmi.gemvBf16Pairs);
    EXPECT_NE(set->tileBf16, vbmi.tileBf16);
    EXPECT_NE(set->tileFp8, vbmi.tileFp8);
    for (int q = 0; q < 3; ++q) {
      EXPECT_TRUE(set->tileBf16Part[q]);
      EXPECT_TRUE(set->tileFp8Part[q]);
    }
  }
  EXPECT_TRUE(amxEmulatedKernels().emulatedAmx);
  EXPECT_FALSE(amxKernels().emulatedAmx);
}

} // namespace
