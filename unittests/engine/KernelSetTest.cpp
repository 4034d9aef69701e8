//===- KernelSetTest.cpp - the ISA kernel sets' building blocks -----------===//
//
// What the products are made of, each ISA's set against the scalar rules:
// the packers' panel layout, the tile stores, the e4m3 -> bf16 lookup, the
// activations' bf16 rounding, the ISA names and the measured tile choice.
// The products themselves are MatMulTest.cpp's.
//
//===----------------------------------------------------------------------===//
#include "TestWeight.h"
#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/TileChoice.h"
#include "weights/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

namespace {

// The ISA packers write a whole panel in the tiles' layout (Kernels.h):
// f32 bit for bit, bf16 pairs rounded as roundToBf16 rounds (NaN payloads,
// Inf, ties, denormals), rows past the panel's zero, an odd K's last pair
// zero in its high half; ragged rows and K around the 16 x 16 blocks.
TEST(MatMul, PackersWriteTheTileLayout) {
  std::mt19937 rng(19);
  std::normal_distribution<float> d;
  const uint32_t specials[] = {0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001,
                               0x00000001, 0x807fffff, 0x3f808000, 0x3f818000,
                               0x7f7fffff, 0x80000000};
  int checked = 0;
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    if (!ks.packF32 && !ks.packBf16 && !ks.packRoundedF32)
      continue;
    for (int64_t rows : {1, 3, 15, 16, 17, 31, 32})
      for (int64_t k : {1, 2, 15, 16, 17, 31, 32, 33, 64, 257}) {
        int64_t ldx = k + 5, kp = (k + 1) / 2;
        std::vector<float> x(size_t(rows * ldx));
        for (float &v : x)
          v = d(rng);
        for (size_t i = 0; i < x.size(); i += 7)
          std::memcpy(&x[i], &specials[(i / 7) % 10], 4);
        // Gathered (odd K): row t read from x's row rows - 1 - t / 2, some
        // rows twice, as the experts' slots read their tokens' rows.
        std::vector<int32_t> index(static_cast<size_t>(rows));
        for (int64_t t = 0; t < rows; ++t)
          index[size_t(t)] = int32_t(rows - 1 - t / 2);
        const int32_t *ix = k % 2 ? index.data() : nullptr;
        auto src = [&](int64_t t) { return ix ? int64_t(ix[t]) : t; };
        // A packer's f32 panel: element (c, t) the bits want(&x's value)
        // for t < rows, zero past them.
        auto checkF32Panel = [&](auto pack, const char *what, auto want) {
          std::vector<uint32_t> panel(size_t(k * kPanel) + 1, 0xABABABAB);
          pack(x.data(), ldx, ix, rows, k,
               reinterpret_cast<float *>(panel.data()));
          for (int64_t c = 0; c < k; ++c)
            for (int64_t t = 0; t < kPanel; ++t) {
              uint32_t expect =
                  t < rows ? want(&x[size_t(src(t) * ldx + c)]) : 0u;
              ASSERT_EQ(panel[size_t(c * kPanel + t)], expect)
                  << setName(*set) << " " << what << " rows " << rows << " k "
                  << k << " at " << c << "," << t;
            }
          ASSERT_EQ(panel.back(), 0xABABABABu) << "wrote past the panel";
        };
        if (ks.packF32)
          checkF32Panel(ks.packF32, "f32", [](const float *v) {
            uint32_t bits;
            std::memcpy(&bits, v, 4);
            return bits;
          });
        // roundBf16's value, widened: what a rounding pass over packF32's
        // panel gives.
        if (ks.packRoundedF32)
          checkF32Panel(ks.packRoundedF32, "rounded f32", [](const float *v) {
            return uint32_t(roundToBf16(*v)) << 16;
          });
        if (ks.packBf16) {
          std::vector<uint16_t> panel(size_t(kp * kPanel * 2) + 1, 0xABAB);
          ks.packBf16(x.data(), ldx, ix, rows, k, panel.data());
          for (int64_t c = 0; c < kp * 2; ++c)
            for (int64_t t = 0; t < kPanel; ++t) {
              uint16_t want = t < rows && c < k
                                  ? roundToBf16(x[size_t(src(t) * ldx + c)])
                                  : uint16_t(0);
              ASSERT_EQ(panel[size_t(((c / 2) * kPanel + t) * 2 + c % 2)], want)
                  << setName(*set) << " bf16 rows " << rows << " k " << k
                  << " at " << c << "," << t;
            }
          ASSERT_EQ(panel.back(), 0xABAB) << "wrote past the panel";
        }
        ++checked;
      }
  }
  if (detectedIsa() >= Isa::Avx512)
    EXPECT_GT(checked, 0) << "no AVX-512 packer ran";
}

// packBf16 rounds normal f32s as roundToBf16 does (ties both ways, the
// extremes, values that round up to Inf) in every position of a 32-float
// group, with no special value in the group to send it down another path.
TEST(MatMul, PackBf16RoundsNormalsAsRoundToBf16) {
  std::mt19937 rng(29);
  std::uniform_real_distribution<float> d(-3.0f, 3.0f);
  const uint32_t edges[] = {0x3f808000, 0x3f818000, 0xbf808000, 0x7f7fffff,
                            0x7f7f8000, 0x00800000, 0x80800000, 0x00808000,
                            0x4b7fff80, 0x3f80ffff};
  constexpr int64_t kRows = 32, kK = 256, kLd = 260, kKp = kK / 2;
  std::vector<float> x(size_t(kRows * kLd));
  for (float &v : x)
    v = d(rng);
  for (int64_t t = 0; t < kRows; ++t)
    for (int64_t c = t % 3; c < kK; c += 3)
      std::memcpy(&x[size_t(t * kLd + c)], &edges[size_t(t + c) % 10], 4);
  int checked = 0;
  for (const KernelSet *set : testedSets()) {
    if (!set->packBf16)
      continue;
    ++checked;
    std::vector<uint16_t> panel(size_t(kKp * kPanel * 2), 0xABAB);
    set->packBf16(x.data(), kLd, nullptr, kRows, kK, panel.data());
    for (int64_t c = 0; c < kK; ++c)
      for (int64_t t = 0; t < kRows; ++t)
        ASSERT_EQ(panel[size_t(((c / 2) * kPanel + t) * 2 + c % 2)],
                  roundToBf16(x[size_t(t * kLd + c)]))
            << setName(*set) << " at " << c << "," << t;
  }
  if (detectedIsa() >= Isa::Avx512)
    EXPECT_GT(checked, 0);
}

// The ISA tile stores write a panel's accumulators into y's rows: m
// values per row (ragged m and rows around the vector widths), nothing
// past them in a row, no row past `rows`.
TEST(MatMul, TileStoresWriteTheRowsOfY) {
  std::mt19937 rng(23);
  std::normal_distribution<float> d;
  int checked = 0;
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    if (!ks.storeTile)
      continue;
    for (int64_t m : {1, 4, 7, 12, 16})
      for (int64_t rows : {1, 5, 15, 16, 17, 32}) {
        std::vector<float> c(size_t(16 * kPanel));
        for (float &v : c)
          v = d(rng);
        int64_t ldy = m + 3;
        std::vector<float> y(size_t(kPanel * ldy), -7.0f);
        ks.storeTile(c.data(), m, rows, y.data(), ldy);
        for (int64_t t = 0; t < kPanel; ++t)
          for (int64_t i = 0; i < ldy; ++i)
            ASSERT_EQ(y[size_t(t * ldy + i)],
                      t < rows && i < m ? c[size_t(i * kPanel + t)] : -7.0f)
                << setName(*set) << " m " << m << " rows " << rows << " at "
                << t << "," << i;
        ++checked;
      }
  }
  if (detectedIsa() >= Isa::Avx512)
    EXPECT_GT(checked, 0) << "no AVX-512 tile store ran";
}

// copyRows moves each row's bytes exactly, `ld` apart in and `ldDst` out,
// whole vectors and tails alike (lengths below, at and past 64 and 256
// bytes, odd ones), and writes nothing past a row's bytes.
TEST(MatMul, CopyRowsCopiesEachRowsBytesOnly) {
  constexpr int64_t kRows = 5, kLd = 700;
  std::vector<uint8_t> src(size_t(kRows * kLd));
  for (size_t i = 0; i < src.size(); ++i)
    src[i] = uint8_t(i * 7 + i / 251);
  int tested = 0;
  for (const KernelSet *set : testedSets()) {
    if (!set->copyRows)
      continue;
    ++tested;
    for (int64_t bytes : {512, 511, 300, 256, 255, 64, 63, 1, 0})
      for (int64_t rows : {int64_t(1), kRows}) {
        const int64_t ldDst = bytes + 37;
        std::vector<uint8_t> dst(size_t(rows * ldDst), 0xA5);
        set->copyRows(src.data() + 3, kLd, rows, bytes, dst.data(), ldDst);
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t i = 0; i < ldDst; ++i)
            ASSERT_EQ(dst[size_t(r * ldDst + i)],
                      i < bytes ? src[size_t(3 + r * kLd + i)] : 0xA5)
                << setName(*set) << " rows " << rows << " bytes " << bytes
                << " at " << r << "," << i;
      }
  }
  // Every AVX-512 set has it.
  EXPECT_EQ(tested > 0, isaSupported(Isa::Avx512));
}

/// Whether bf16 `got` is e4m3 `code`'s exact value (a NaN for its NaNs).
::testing::AssertionResult isBf16Of(uint8_t code, uint16_t got) {
  float want = e4m3ToF32(code), have = bf16ToF32(got);
  if (std::isnan(want) ? std::isnan(have) : !std::memcmp(&want, &have, 4))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "code " << int(code) << ": " << want << " vs " << have;
}

// The in-register e4m3 -> bf16 lookup is exact for all 256 codes (the
// subnormals, down to 2^-9, are normal bf16s; NaN stays NaN), on every
// length's tail, in every row of a call (rows `ld` apart in, `ldDst` out),
// writing nothing past n in a row.
TEST(MatMul, Fp8ToBf16IsExactForEveryCode) {
  // Three rows of the 256 codes, each rotated by its row (so a row that
  // read another's bytes fails), 300 bytes apart.
  constexpr int64_t kRows = 3, kLd = 300;
  std::vector<uint8_t> codes(size_t(kRows * kLd), 0x38);
  for (int64_t r = 0; r < kRows; ++r)
    for (int i = 0; i < 256; ++i)
      codes[size_t(r * kLd + i)] = uint8_t(i + 85 * r);
  int tested = 0;
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    if (!ks.fp8ToBf16)
      continue;
    ++tested;
    for (int64_t n : {256, 200, 64, 63, 33, 32, 1})
      for (int64_t rows : {int64_t(1), kRows}) {
        int64_t off = 256 - n, ldDst = n + 5;
        std::vector<uint16_t> got(size_t(rows * ldDst), 0xABCD);
        ks.fp8ToBf16(codes.data() + off, kLd, rows, n, got.data(), ldDst);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t i = 0; i < n; ++i) {
            ASSERT_TRUE(isBf16Of(codes[size_t(r * kLd + off + i)],
                                 got[size_t(r * ldDst + i)]))
                << setName(*set) << " row " << r;
          }
          for (int64_t i = n; i < ldDst; ++i)
            ASSERT_EQ(got[size_t(r * ldDst + i)], 0xABCD)
                << setName(*set) << " rows " << rows << " n " << n
                << " wrote past n in row " << r;
        }
      }
  }
  // The lookup path exists wherever the CPU has VBMI (Isa.cpp).
  EXPECT_EQ(tested > 0, isaSupported(Isa::Avx512Vbmi));
}

// Where the CPU has GFNI, 64 codes with no zero, subnormal or NaN among
// them (nor the few normal codes the test for those lets through) are
// converted by two affine maps instead of the lookup (KernelsAvx512Fp8.cpp):
// every such code in every byte position of a 64-byte group, and groups
// holding one special or rare code (in each position), which take the
// lookup, must all give the exact values.
TEST(MatMul, Fp8ToBf16IsExactOnBothConversionPaths) {
  // The affine maps take a group whose every code is outside the rare set
  // the conversion tests for: exponent 0, NaN, and exponent 1 with
  // mantissa 0-6 ((c + 1) & 0x70 zero; KernelsAvx512Fp8.cpp). Any rare
  // code sends its group to the table.
  auto rare = [](int c) { return ((c + 1) & 0x70) == 0; };
  std::vector<uint8_t> common, rareNormals;
  for (int c = 0; c < 256; ++c) {
    bool normal = (c & 0x78) != 0 && (c & 0x7F) != 0x7F;
    if (normal)
      (rare(c) ? rareNormals : common).push_back(uint8_t(c));
    else
      ASSERT_TRUE(rare(c)) << "code " << c << " would take the affine maps";
  }
  ASSERT_EQ(common.size(), 224u);
  ASSERT_EQ(rareNormals.size(), 14u);
  // Rows 32.. hold only common codes, common[(4 r + g + 7 p) % 224] at
  // position p of group g: every one in every position of a group, over the
  // rows (checked below), all through the affine maps. Rows 0..31 hold the same
  // with one special code (zero, a subnormal or NaN) or rare normal code a
  // group, at a position that moves with the row: all through the table.
  constexpr int64_t kRows = 96, kN = 256, kLd = 320;
  std::vector<uint8_t> codes(size_t(kRows * kLd), 0);
  for (int64_t r = 0; r < kRows; ++r)
    for (int64_t i = 0; i < kN; ++i)
      codes[size_t(r * kLd + i)] =
          common[size_t((4 * r + i / 64 + 7 * (i % 64)) % 224)];
  std::vector<std::vector<bool>> seen(64, std::vector<bool>(256, false));
  for (int64_t r = 32; r < kRows; ++r)
    for (int64_t i = 0; i < kN; ++i)
      seen[size_t(i % 64)][codes[size_t(r * kLd + i)]] = true;
  for (int64_t p = 0; p < 64; ++p)
    for (uint8_t c : common)
      ASSERT_TRUE(seen[size_t(p)][c]) << "code " << int(c) << " position " << p;
  const uint8_t specials[] = {0x00, 0x80, 0x01, 0x87, 0x7F, 0xFF, 0x05, 0x83};
  for (int64_t r = 0; r < 32; ++r)
    for (int64_t g = 0; g < kN / 64; ++g) {
      int64_t at = r * kLd + g * 64 + (r * 5 + g * 13) % 64;
      codes[size_t(at)] = (r + g) % 2 ? specials[size_t(r + g) % 8]
                                      : rareNormals[size_t(r * 3 + g) % 14];
    }
  int tested = 0;
  for (const KernelSet *set : testedSets()) {
    if (!set->fp8ToBf16)
      continue;
    ++tested;
    std::vector<uint16_t> got(size_t(kRows * kN), 0);
    set->fp8ToBf16(codes.data(), kLd, kRows, kN, got.data(), kN);
    for (int64_t r = 0; r < kRows; ++r)
      for (int64_t i = 0; i < kN; ++i)
        ASSERT_TRUE(
            isBf16Of(codes[size_t(r * kLd + i)], got[size_t(r * kN + i)]))
            << setName(*set) << " row " << r << " byte " << i;
  }
  EXPECT_EQ(tested > 0, isaSupported(Isa::Avx512Vbmi));
}

TEST(MatMul, IsaNamesParseAndScalarIsAlwaysThere) {
  Isa isa;
  for (const char *name :
       {"scalar", "avx2", "avx512", "avx512bf16", "avx512vbmi", "amx"}) {
    ASSERT_TRUE(parseIsa(name, isa));
    EXPECT_STREQ(isaName(isa), name);
  }
  EXPECT_FALSE(parseIsa("avx10", isa));
  EXPECT_EQ(isaSupported(Isa::Amx),
            isaSupported(Isa::Avx512Vbmi) && amxAvailable());
  EXPECT_EQ(supportedIsas().front(), Isa::Scalar);
  EXPECT_EQ(supportedIsas().back(), detectedIsa());
}

// The bf16 / FP8 GEMM tiles are chosen by measuring both where the set
// has both; the runtime's kernels follow the choice, and only sets with
// bf16 tiles have a widened variant.
TEST(TileChoice, MeasuresBothTilesAndTheRuntimeFollowsTheChoice) {
  for (const KernelSet *set : testedSets()) {
    double bf16 = -1, f32 = -1;
    measureTiles(*set, bf16, f32);
    if (set->tileBf16) {
      EXPECT_GT(bf16, 0.1) << setName(*set);
      EXPECT_GT(f32, 0.1) << setName(*set);
    } else {
      EXPECT_EQ(bf16, 0.0) << setName(*set);
      EXPECT_EQ(f32, 0.0) << setName(*set);
    }
    EXPECT_EQ(&widenedTileKernels(set->isa) != &kernelsFor(set->isa),
              kernelsFor(set->isa).tileBf16 != nullptr)
        << setName(*set);
  }
  const TileChoice &c = activeTileChoice();
  const KernelSet &ks = activeKernels();
  EXPECT_EQ(ks.isa, activeIsa());
  EXPECT_EQ(c.choice, kernelsFor(activeIsa()).tileBf16 != nullptr);
  EXPECT_EQ(ks.widenedTiles, c.choice && c.tiles == GemmTiles::F32);
  if (std::string(c.by) == "measured")
    EXPECT_EQ(c.tiles == GemmTiles::F32,
              c.f32Gflops > kWidenMargin * c.bf16Gflops);
}

// Every ISA rounds activations to bf16 alike (prefill packs with one
// kernel, decode's dot products read another's output): nearest even,
// ties both ways, Inf kept, NaN quieted, denormals and the largest finite
// values (which round to Inf), and a tail shorter than a vector.
TEST(MatMul, Bf16RoundingIsTheSameOnEveryIsa) {
  std::vector<uint32_t> bits = {0x00000000, 0x80000000, 0x3f808000,
                                0x3f818000, 0x3f807fff, 0x00000001,
                                0x807fffff, 0x7f7fffff, 0xff7f8000,
                                0x7f800000, 0xff800000, 0x7fc00000,
                                0x7f800001, 0xffbfffff, 0x3f800000};
  std::mt19937 rng(17);
  for (int i = 0; i < 1000; ++i)
    bits.push_back(uint32_t(rng()));
  std::vector<float> x(bits.size());
  std::memcpy(x.data(), bits.data(), bits.size() * 4);
  // Reference values: RNE by hand, NaN quieted with its sign and payload.
  for (size_t i = 0; i < bits.size(); ++i) {
    uint32_t u = bits[i];
    uint16_t want =
        (u & 0x7f800000u) == 0x7f800000u
            ? uint16_t((u >> 16) | ((u & 0xffff) ? 0x40 : 0))
            : uint16_t((uint64_t(u) + 0x7fff + ((u >> 16) & 1)) >> 16);
    ASSERT_EQ(roundToBf16(x[i]), want) << std::hex << u;
  }
  for (const KernelSet *set : testedSets()) {
    const KernelSet &ks = *set;
    Isa isa = ks.isa;
    if (!ks.roundBf16)
      continue;
    for (size_t n : {bits.size(), size_t(13), size_t(1)}) {
      std::vector<uint16_t> got(n + 1, 0xABCD);
      ks.roundBf16(x.data(), int64_t(n), got.data());
      for (size_t i = 0; i < n; ++i)
        ASSERT_EQ(got[i], roundToBf16(x[i]))
            << setName(*set) << " " << std::hex << bits[i];
      ASSERT_EQ(got[n], 0xABCD) << setName(*set) << " wrote past n";
    }
  }
}

} // namespace
