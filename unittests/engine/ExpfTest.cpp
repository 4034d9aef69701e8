//===- ExpfTest.cpp - the vector sets' expf and SiLU against libm's -------===//
//
// KernelSet::expfRow and siluMulRow claim libm's bits (ExpfConstants.h):
// checked over a sweep of float bit patterns (every 1031st, ~4.2 million:
// every exponent and sign, the special-case boundaries by their own list),
// and over every pattern with DSRT_TEST_EXPF_STRIDE=1 (a few minutes).
//
//===----------------------------------------------------------------------===//
#include "cpu/Gemm.h"
#include "cpu/Isa.h"
#include "cpu/Kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

using namespace dsrt::cpu;

namespace {

uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

float fromBits(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

uint64_t sweepStride() {
  const char *s = std::getenv("DSRT_TEST_EXPF_STRIDE");
  uint64_t v = s ? std::strtoull(s, nullptr, 10) : 0;
  return v ? v : 1031;
}

/// Inputs where e_expf.c changes path or its result changes kind: the
/// thresholds and their neighbours, zeros, infinities, NaNs, denormal
/// results.
std::vector<float> specialInputs() {
  std::vector<float> v;
  for (float c : {0.0f, 88.0f, 0x1.62e42ep6f, -88.0f, -0x1.9fe368p6f,
                  -0x1.9d1d9ep6f, -87.33655f, -100.0f, -103.0f, 89.0f, 1e-30f,
                  0x1p-149f, 1.0f, -1.0f, 0.5f}) {
    for (float s : {c, -c}) {
      v.push_back(s);
      v.push_back(std::nextafter(s, std::numeric_limits<float>::infinity()));
      v.push_back(std::nextafter(s, -std::numeric_limits<float>::infinity()));
    }
  }
  for (uint32_t b : {0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00000u,
                     0x7f800001u, 0xff812345u, 0x7fffffffu})
    v.push_back(fromBits(b));
  return v;
}

/// Every set this CPU runs whose expf is its own code.
std::vector<const KernelSet *> vectorSets() {
  std::vector<const KernelSet *> out;
  for (Isa isa : supportedIsas())
    if (kernelsFor(isa).expfRow)
      out.push_back(&kernelsFor(isa));
  return out;
}

/// Runs check(batch, n) over `inputs` then the sweep, in batches of 4096.
template <typename Check> void overInputs(Check check) {
  std::vector<float> batch;
  auto flush = [&] {
    if (!batch.empty())
      check(batch.data(), int64_t(batch.size()));
    batch.clear();
  };
  for (float f : specialInputs())
    batch.push_back(f);
  flush();
  uint64_t stride = sweepStride();
  for (uint64_t b = 7 % stride; b < (uint64_t(1) << 32); b += stride) {
    batch.push_back(fromBits(uint32_t(b)));
    if (batch.size() == 4096)
      flush();
  }
  flush();
}

TEST(Expf, VectorSetsGiveLibmsBits) {
  auto sets = vectorSets();
  if (sets.empty())
    GTEST_SKIP() << "no vector set on this CPU";
  for (const KernelSet *ks : sets) {
    int64_t mismatches = 0;
    std::vector<float> y(4096);
    overInputs([&](const float *x, int64_t n) {
      ks->expfRow(x, n, y.data());
      for (int64_t i = 0; i < n; ++i) {
        uint32_t want = bitsOf(__builtin_expf(x[i])), got = bitsOf(y[i]);
        if (want != got && ++mismatches <= 5)
          ADD_FAILURE() << isaName(ks->isa) << ": expf(" << x[i] << " = 0x"
                        << std::hex << bitsOf(x[i]) << ") gave 0x" << got
                        << ", libm 0x" << want << std::dec;
      }
    });
    EXPECT_EQ(mismatches, 0) << isaName(ks->isa);
  }
}

TEST(Expf, SiluMulRowIsTheScalarSiluBitForBit) {
  auto sets = vectorSets();
  if (sets.empty())
    GTEST_SKIP() << "no vector set on this CPU";
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> u(4096), y(4096);
  for (float &v : u)
    v = normal(rng);
  for (const KernelSet *ks : sets) {
    ASSERT_NE(ks->siluMulRow, nullptr) << isaName(ks->isa);
    int64_t mismatches = 0;
    overInputs([&](const float *g, int64_t n) {
      ks->siluMulRow(g, u.data(), n, y.data());
      for (int64_t i = 0; i < n; ++i) {
        uint32_t want = bitsOf(siluMul(g[i], u[i])), got = bitsOf(y[i]);
        if (want != got && ++mismatches <= 5)
          ADD_FAILURE() << isaName(ks->isa) << ": silu(" << g[i] << ") * "
                        << u[i] << " gave 0x" << std::hex << got
                        << ", scalar 0x" << want << std::dec;
      }
    });
    EXPECT_EQ(mismatches, 0) << isaName(ks->isa);
  }
}

TEST(Expf, RowsOfAnyLengthWriteTheirOwnElementsOnly) {
  std::vector<float> x(40), g(40), u(40);
  for (int i = 0; i < 40; ++i) {
    x[i] = 0.37f * float(i) - 7.0f;
    g[i] = 0.21f * float(i) - 4.0f;
    u[i] = 1.0f + 0.01f * float(i);
  }
  for (const KernelSet *ks : vectorSets()) {
    for (int64_t n = 0; n <= 37; ++n) {
      std::vector<float> y(40, -5.0f), s(40, -5.0f);
      ks->expfRow(x.data(), n, y.data());
      ks->siluMulRow(g.data(), u.data(), n, s.data());
      for (int64_t i = 0; i < 40; ++i) {
        EXPECT_EQ(y[i], i < n ? __builtin_expf(x[i]) : -5.0f)
            << isaName(ks->isa) << " n " << n << " i " << i;
        EXPECT_EQ(s[i], i < n ? siluMul(g[i], u[i]) : -5.0f)
            << isaName(ks->isa) << " n " << n << " i " << i;
      }
    }
    // In place.
    std::vector<float> inPlace = x;
    ks->expfRow(inPlace.data(), 40, inPlace.data());
    for (int i = 0; i < 40; ++i)
      EXPECT_EQ(inPlace[i], __builtin_expf(x[i])) << isaName(ks->isa);
  }
}

} // namespace
