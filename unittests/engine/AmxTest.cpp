//===- AmxTest.cpp - the AMX tiles: the ISA's wiring and the emulation ----===//
//
// The AMX tiles' layouts run through every product test on CPUs with
// avx512vbmi (testedSets() adds amxEmulatedKernels(), beside the hardware
// set where the CPU has AMX). These check what those tests cannot: that
// the emulation computes TDPBF16PS as the SDM defines it (each product
// rounded into the sum in turn, bf16 denormals read as zero), that the
// hardware agrees with it where there is one, and how the ISA is offered.
//
//===----------------------------------------------------------------------===//
#include "cpu/Isa.h"
#include "cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
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

// Where the CPU has AMX: the hardware tiles agree with the emulation on
// random values (denormals among them), full and partial panels, a K tail,
// bf16 and FP8, FP8 over three planes of x summed in the tiles: the emulation,
// which CI checks the layouts through, reads the same weights and tokens as the
// hardware. Not bit for bit: the hardware sums a TDPBF16PS's 32 products in an
// order of its own (an Emerald Rapids Xeon summed each pair and then added it
// on all of 512,000 one-pair samples, against 81% for the SDM's pseudocode,
// which the emulation follows; with 16 pairs no simple order matched every
// sum), so both are held to the error any f32 summation order of the 2 kp
// products and the accumulator may make. (amxAvailable() checks exact
// integer sums, where every order agrees.)
TEST(Amx, HardwareMatchesTheEmulation) {
  if (!isaSupported(Isa::Amx))
    GTEST_SKIP() << "no AMX on this CPU";
  const KernelSet &hw = amxKernels(), &emu = amxEmulatedKernels();
  const int mr = hw.mrPairs;
  ASSERT_EQ(emu.mrPairs, mr);
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  auto value = [](uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return (u & 0x7f800000u) == 0 ? 0.0f : f; // DAZ
  };
  int checked = 0;
  for (int64_t kp : {1, 16, 40, 64}) {
    const int64_t ldw = 2 * kp + 10;
    const int64_t plane = kp * kPanel * 2;
    std::vector<uint16_t> w(size_t(mr * ldw)), xb(size_t(3 * plane));
    for (uint16_t &v : w)
      v = roundToBf16(d(rng));
    for (uint16_t &v : xb)
      v = roundToBf16(d(rng) * (rng() % 8 ? 1.0f : 1e-39f)); // some denormal
    std::vector<float> scales(static_cast<size_t>(mr));
    for (float &s : scales)
      s = std::uniform_real_distribution<float>(0.01f, 4.0f)(rng);
    for (int kind = 0; kind < 3; ++kind)
      for (int q = 1; q <= 4; ++q) {
        const bool fp8 = kind > 0;
        const int planes = kind == 2 ? 3 : 1;
        std::vector<float> init(size_t(mr * kPanel));
        for (float &v : init)
          v = d(rng);
        std::vector<float> a = init, b = init;
        if (planes > 1) {
          (q == 4 ? hw.tileFp8Planes : hw.tileFp8PlanesPart[q - 1])(
              w.data(), ldw, scales.data(), xb.data(), plane, planes, kp,
              a.data(), nullptr);
          (q == 4 ? emu.tileFp8Planes : emu.tileFp8PlanesPart[q - 1])(
              w.data(), ldw, scales.data(), xb.data(), plane, planes, kp,
              b.data(), nullptr);
        } else if (fp8) {
          (q == 4 ? hw.tileFp8 : hw.tileFp8Part[q - 1])(
              w.data(), ldw, scales.data(), xb.data(), kp, a.data(), nullptr);
          (q == 4 ? emu.tileFp8 : emu.tileFp8Part[q - 1])(
              w.data(), ldw, scales.data(), xb.data(), kp, b.data(), nullptr);
        } else {
          (q == 4 ? hw.tileBf16 : hw.tileBf16Part[q - 1])(
              w.data(), ldw, xb.data(), kp, a.data(), nullptr);
          (q == 4 ? emu.tileBf16 : emu.tileBf16Part[q - 1])(
              w.data(), ldw, xb.data(), kp, b.data(), nullptr);
        }
        for (int i = 0; i < mr; ++i)
          for (int t = 0; t < kPanel; ++t) {
            size_t at = size_t(i * kPanel + t);
            if (t >= q * kQuarterPanel) {
              ASSERT_EQ(a[at], init[at]) << "hardware wrote token " << t;
              continue;
            }
            // Any order's error: one rounding per addition, each at most
            // half an ulp of a partial sum no larger than the magnitude.
            double mag = 0;
            for (int pl = 0; pl < planes; ++pl)
              for (int64_t j = 0; j < 2 * kp; ++j)
                mag += std::abs(
                    double(value(w[size_t(i * ldw + j)])) *
                    value(xb[size_t(pl * plane + (j / 2 * kPanel + t) * 2 +
                                    j % 2)]));
            mag = mag * (fp8 ? scales[size_t(i)] : 1.0) + std::abs(init[at]);
            double tol = double(2 * kp * planes + 2) * std::ldexp(mag, -23);
            ASSERT_NEAR(a[at], b[at], tol)
                << (fp8 ? "fp8" : "bf16") << " planes " << planes << " kp "
                << kp << " quarters " << q << " at " << i << "," << t;
          }
        ++checked;
      }
  }
  EXPECT_EQ(checked, 48);
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
    EXPECT_TRUE(set->tileFp8Planes);
    EXPECT_FALSE(vbmi.tileFp8Planes); // its exact products take f32 tiles
    for (int q = 0; q < 3; ++q) {
      EXPECT_TRUE(set->tileBf16Part[q]);
      EXPECT_TRUE(set->tileFp8Part[q]);
      EXPECT_TRUE(set->tileFp8PlanesPart[q]);
    }
  }
  EXPECT_TRUE(amxEmulatedKernels().emulatedAmx);
  EXPECT_FALSE(amxKernels().emulatedAmx);
}

} // namespace
