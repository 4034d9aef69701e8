//===- KernelsAmx.cpp - bf16 and FP8 GEMM tiles on AMX (TDPBF16PS) --------===//
//
// Compiled with KernelsAvx512Fp8.cpp's flags plus -mamx-tile -mamx-bf16
// (runtime/src/engine.cmake). The AMX set is the avx512vbmi set with its
// bf16 and FP8 tiles replaced: one TDPBF16PS multiplies a 12 x 32 tile of
// weights (12 rows, 16 pairs of k) by 16 pairs of k of 16 tokens, so a
// 32-token panel takes two per 32 values of k, where the AVX-512 tile
// takes 384 vdpbf16ps.
//
// The layouts are the ones the other tiles read, so nothing else changes:
//  - A (tile 2): 12 weight rows, 64 bytes (32 bf16) each, loaded where
//    they lie (rows ldw apart) or from the chunk TileGemm.cpp copied;
//  - B (tiles 3, 4): the packed panel's bf16 pairs, row j holding pair j
//    of 32 tokens (kPanel x 4 bytes): tokens 0-15 and 16-31 are the two
//    B tiles, 16 pair-rows of 64 bytes at a 128-byte stride;
//  - C (tiles 0, 1): c[i * kPanel + t], the accumulators every tile kernel
//    adds into, 12 rows of 16 floats at a 128-byte stride.
// Pairs past the last whole 16 (a K not a multiple of 32) go through
// vdpbf16ps after the tiles.
//
// The kernels are written once over a backend: AmxHardware issues the
// instructions, AmxEmulated computes them as the SDM's pseudocode does
// (DAZ inputs, every product added in turn, RNE, FTZ results). The
// emulated set is what the tests run on CPUs without AMX (this project's
// CI); on a CPU with AMX, amxAvailable() checks the hardware kernels
// against exact integer sums before the set is offered at all.
//
//===----------------------------------------------------------------------===//
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <type_traits>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 12; // as KernelsAvx512.cpp's tiles
/// Pairs of k one TDPBF16PS takes (a 64-byte tile row of bf16 pairs).
constexpr int64_t kStepPairs = 16;
/// Bytes between rows of C (c's rows of kPanel floats) and of B (the
/// panel's pair-rows of kPanel pairs).
constexpr int64_t kCStride = kPanel * 4, kBStride = kPanel * 4;

/// C0, C1: tokens 0-15 and 16-31 of the 12 rows' sums; A: the weights;
/// B0, B1: their tokens' pairs. CQ and BQ are the same for 8 tokens (a
/// partial tile's quarter: it may not write the panel rows past its own).
enum Tile { C0 = 0, C1 = 1, A = 2, B0 = 3, B1 = 4, CQ = 5, BQ = 6, kTiles = 7 };

/// LDTILECFG's 64-byte operand (palette 1).
struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr TileConfig makeConfig() {
  TileConfig c;
  for (int t : {C0, C1, A, CQ})
    c.rows[t] = kMr;
  for (int t : {B0, B1, BQ})
    c.rows[t] = kStepPairs;
  for (int t = 0; t < kTiles; ++t)
    c.colsb[t] = t == CQ || t == BQ ? 32 : 64;
  return c;
}
constexpr TileConfig kConfig = makeConfig();

/// The instructions. A call reads the thread's tile configuration and
/// loads kConfig where it differs: once per thread in this runtime, but
/// other AMX code on the thread (oneDNN under torch in the same process)
/// may have loaded its own, or released the tiles, since.
struct AmxHardware {
  static void configure() {
    TileConfig current;
    _tile_storeconfig(&current);
    if (std::memcmp(&current, &kConfig, sizeof(TileConfig)) != 0)
      _tile_loadconfig(&kConfig);
  }
  template <int T> static void load(const void *p, int64_t stride) {
    _tile_loadd(T, p, stride);
  }
  template <int T> static void store(void *p, int64_t stride) {
    _tile_stored(T, p, stride);
  }
  template <int T> static void zero() { _tile_zero(T); }
  template <int C, int X, int Y> static void dp() { _tile_dpbf16ps(C, X, Y); }
};

/// The same in C++, per the SDM's TDPBF16PS: for each row m of C, over
/// the pairs k of A's row in order, for each column n, the even product
/// and then the odd one added into the f32 accumulator, each rounded to
/// nearest even; bf16 denormal inputs read as zero, denormal results are
/// flushed to zero.
struct AmxEmulated {
  struct Regs {
    alignas(64) uint8_t data[kTiles][16][64];
  };
  static Regs &regs() {
    static thread_local Regs r;
    return r;
  }
  static void configure() {}
  template <int T> static void load(const void *p, int64_t stride) {
    for (int r = 0; r < kConfig.rows[T]; ++r)
      std::memcpy(regs().data[T][r], static_cast<const char *>(p) + r * stride,
                  kConfig.colsb[T]);
  }
  template <int T> static void store(void *p, int64_t stride) {
    for (int r = 0; r < kConfig.rows[T]; ++r)
      std::memcpy(static_cast<char *>(p) + r * stride, regs().data[T][r],
                  kConfig.colsb[T]);
  }
  template <int T> static void zero() {
    std::memset(regs().data[T], 0, sizeof(regs().data[T]));
  }
  static float bf16(const uint8_t *p) {
    uint16_t h;
    std::memcpy(&h, p, 2);
    if ((h & 0x7f80) == 0) // DAZ
      h &= 0x8000;
    uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  static float flush(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    if ((bits & 0x7f800000u) == 0)
      bits &= 0x80000000u;
    std::memcpy(&f, &bits, 4);
    return f;
  }
  template <int C, int X, int Y> static void dp() {
    Regs &g = regs();
    for (int m = 0; m < kConfig.rows[C]; ++m)
      for (int k = 0; k < kConfig.colsb[X] / 4; ++k)
        for (int n = 0; n < kConfig.colsb[C] / 4; ++n) {
          float acc;
          std::memcpy(&acc, g.data[C][m] + 4 * n, 4);
          acc = flush(acc +
                      bf16(g.data[X][m] + 4 * k) * bf16(g.data[Y][k] + 4 * n));
          acc = flush(acc + bf16(g.data[X][m] + 4 * k + 2) *
                                bf16(g.data[Y][k] + 4 * n + 2));
          std::memcpy(g.data[C][m] + 4 * n, &acc, 4);
        }
  }
};

/// Lines of `pf` per tile step for `steps` steps (PrefetchCursor's
/// walk spread over the call, as the other tiles spread theirs).
int64_t linesPerStep(const TilePrefetch *pf, int64_t steps) {
  if (!pf || pf->rows <= 0 || pf->bytes <= 0 || steps <= 0)
    return 0;
  int64_t lines = pf->rows * ((pf->bytes + 63) / 64);
  return (lines + steps - 1) / steps;
}

/// A run of tokens of the panel on the tiles: C and Bt the sums' and the
/// pairs' tiles, `at` its first token.
template <int C, int Bt, int At> struct Segment {
  static constexpr int c = C, b = Bt, at = At;
};

/// The segments covering tokens [0, 8 Q): Q = 4 the full tile, 1-3 its
/// partial tiles.
template <int Q> struct Segments;
template <> struct Segments<1> {
  using S0 = Segment<CQ, BQ, 0>;
  static constexpr int count = 1;
};
template <> struct Segments<2> {
  using S0 = Segment<C0, B0, 0>;
  static constexpr int count = 1;
};
template <> struct Segments<3> {
  using S0 = Segment<C0, B0, 0>;
  using S1 = Segment<CQ, BQ, 16>;
  static constexpr int count = 2;
};
template <> struct Segments<4> {
  using S0 = Segment<C0, B0, 0>;
  using S1 = Segment<C1, B1, 16>;
  static constexpr int count = 2;
};

/// sums[i * kPanel + t] += sum over pairs j < kp of w-pair j of row i .
/// xb-pair (j, t), i < kMr, t < 8 Q: the whole steps of 16 pairs on the
/// tiles (C loaded from sums, or with Zero from zero, and stored back),
/// the rest on vdpbf16ps. Every sum is computed alone, so a partial
/// tile's are the full tile's bit for bit.
template <typename B, int Q, bool Zero = false>
void amxSums(const uint16_t *w, int64_t ldw, const uint16_t *xb, int64_t kp,
             float *sums, const TilePrefetch *pf) {
  using Seg = Segments<Q>;
  B::configure();
  const int64_t steps = kp / kStepPairs;
  PrefetchCursor next(pf);
  const int64_t perStep = linesPerStep(pf, steps);
  // Applies f to each segment's type.
  auto each = [](auto f) {
    f(typename Seg::S0{});
    if constexpr (Seg::count == 2)
      f(typename Seg::S1{});
  };
  if (steps > 0) {
    each([&](auto g) {
      if constexpr (Zero)
        B::template zero<decltype(g)::c>();
      else
        B::template load<decltype(g)::c>(sums + decltype(g)::at, kCStride);
    });
    for (int64_t s = 0; s < steps; ++s) {
      const uint16_t *xs = xb + s * kStepPairs * kPanel * 2;
      B::template load<A>(w + s * 2 * kStepPairs, ldw * 2);
      each([&](auto g) {
        using G = decltype(g);
        B::template load<G::b>(xs + 2 * G::at, kBStride);
        B::template dp<G::c, A, G::b>();
      });
      for (int64_t l = 0; l < perStep; ++l)
        next.step();
    }
    each([&](auto g) {
      B::template store<decltype(g)::c>(sums + decltype(g)::at, kCStride);
    });
  }
  if (steps * kStepPairs == kp)
    return;
  if (Zero && steps == 0)
    std::memset(sums, 0, sizeof(float) * kMr * kPanel);
  constexpr int kSegs = (Q + 1) / 2;
  const __mmask16 last = Q % 2 ? 0xFF : 0xFFFF;
  for (int i = 0; i < kMr; ++i) {
    float *row = sums + i * kPanel;
    __m512 acc[kSegs];
    for (int h = 0; h < kSegs; ++h)
      acc[h] =
          _mm512_maskz_loadu_ps(h + 1 < kSegs ? 0xFFFF : last, row + 16 * h);
    for (int64_t j = steps * kStepPairs; j < kp; ++j) {
      uint32_t pair;
      std::memcpy(&pair, w + i * ldw + 2 * j, 4);
      __m512bh wp = (__m512bh)_mm512_set1_epi32(int(pair));
      const uint16_t *xj = xb + j * kPanel * 2;
      for (int h = 0; h < kSegs; ++h)
        acc[h] = _mm512_dpbf16_ps(acc[h], wp,
                                  (__m512bh)_mm512_loadu_si512(xj + 32 * h));
    }
    for (int h = 0; h < kSegs; ++h)
      _mm512_mask_storeu_ps(row + 16 * h, h + 1 < kSegs ? 0xFFFF : last,
                            acc[h]);
  }
}

/// KernelSet::tileBf16 on AMX (Q = 4), and its partial tiles.
template <typename B, int Q>
void amxTileBf16(const uint16_t *w, int64_t ldw, const uint16_t *xb, int64_t kp,
                 float *c, const TilePrefetch *pf) {
  amxSums<B, Q>(w, ldw, xb, kp, c, pf);
}

/// KernelSet::tileFp8 on AMX: one scale block's sums from zero, then
/// c[i][t] += scales[i] * sums (TileAcc::scaleInto's fused form).
template <typename B, int Q>
void amxTileFp8(const uint16_t *w, int64_t ldw, const float *scales,
                const uint16_t *xb, int64_t kp, float *c,
                const TilePrefetch *pf) {
  alignas(64) float sums[kMr * kPanel];
  if (kp <= 0)
    return;
  amxSums<B, Q, /*Zero=*/true>(w, ldw, xb, kp, sums, pf);
  for (int i = 0; i < kMr; ++i) {
    __m512 s = _mm512_set1_ps(scales[i]);
    for (int h = 0; h < 8 * Q; h += 16) {
      __mmask16 m = 8 * Q - h >= 16 ? 0xFFFF : 0xFF;
      float *at = c + i * kPanel + h;
      _mm512_mask_storeu_ps(
          at, m,
          _mm512_fmadd_ps(_mm512_maskz_load_ps(m, sums + i * kPanel + h), s,
                          _mm512_maskz_loadu_ps(m, at)));
    }
  }
}

/// The avx512vbmi set with the tiles of backend B: a last panel of up to
/// 16 tokens takes one TDPBF16PS a step, of 17-31 two.
template <typename B> KernelSet amxSet() {
  KernelSet s = avx512VbmiKernels();
  s.isa = Isa::Amx;
  s.emulatedAmx = std::is_same_v<B, AmxEmulated>;
  s.tileBf16 = amxTileBf16<B, 4>;
  s.tileFp8 = amxTileFp8<B, 4>;
  s.tileBf16Part[0] = amxTileBf16<B, 1>;
  s.tileBf16Part[1] = amxTileBf16<B, 2>;
  s.tileBf16Part[2] = amxTileBf16<B, 3>;
  s.tileFp8Part[0] = amxTileFp8<B, 1>;
  s.tileFp8Part[1] = amxTileFp8<B, 2>;
  s.tileFp8Part[2] = amxTileFp8<B, 3>;
  return s;
}

/// CPUID's AMX-TILE and AMX-BF16, XCR0's tile state, and Linux's leave to
/// use it (ARCH_REQ_XCOMP_PERM for XTILEDATA: without it the first tile
/// instruction faults).
bool amxPermitted() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
    return false;
  if (!(d & (1u << 24)) || !(d & (1u << 22)))
    return false;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) // OSXSAVE
    return false;
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17))
    return false;
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

/// The hardware tiles against the emulated ones on small integers, where
/// every sum is exact whatever the order: a layout or configuration the
/// hardware reads otherwise than written here fails it (bf16 and FP8
/// tiles, 40 pairs: two steps and a tail, weight rows in place).
bool amxMatchesEmulation() {
  constexpr int64_t kp = 40, ldw = 2 * kp + 6;
  uint16_t w[kMr * ldw], xb[kp * kPanel * 2];
  for (int64_t i = 0; i < kMr * ldw; ++i)
    w[i] = roundToBf16(float((i * 7) % 9) - 4);
  for (int64_t i = 0; i < kp * kPanel * 2; ++i)
    xb[i] = roundToBf16(float((i * 5) % 7) - 3);
  const float scales[kMr] = {1, 2, 0.5f, 4, 1, 8, 0.25f, 1, 2, 1, 0.5f, 16};
  for (int fp8 = 0; fp8 < 2; ++fp8) {
    alignas(64) float hw[kMr * kPanel], emu[kMr * kPanel];
    for (int64_t i = 0; i < kMr * kPanel; ++i)
      hw[i] = emu[i] = float(i % 5);
    if (fp8) {
      amxTileFp8<AmxHardware, 4>(w, ldw, scales, xb, kp, hw, nullptr);
      amxTileFp8<AmxEmulated, 4>(w, ldw, scales, xb, kp, emu, nullptr);
    } else {
      amxTileBf16<AmxHardware, 4>(w, ldw, xb, kp, hw, nullptr);
      amxTileBf16<AmxEmulated, 4>(w, ldw, xb, kp, emu, nullptr);
    }
    if (std::memcmp(hw, emu, sizeof(hw)) != 0)
      return false;
  }
  return true;
}

} // namespace

bool dsrt::cpu::amxAvailable() {
  static const bool ok = [] {
    if (!amxPermitted())
      return false;
    if (amxMatchesEmulation())
      return true;
    std::fprintf(stderr, "dsrt: the AMX tiles' sums differ from their "
                         "emulation on this CPU; using avx512vbmi\n");
    return false;
  }();
  return ok;
}

const KernelSet &dsrt::cpu::amxKernels() {
  static const KernelSet set = amxSet<AmxHardware>();
  return set;
}

const KernelSet &dsrt::cpu::amxEmulatedKernels() {
  static const KernelSet set = amxSet<AmxEmulated>();
  return set;
}

#else
bool dsrt::cpu::amxAvailable() { return false; }
const dsrt::cpu::KernelSet &dsrt::cpu::amxKernels() { return scalarKernels(); }
const dsrt::cpu::KernelSet &dsrt::cpu::amxEmulatedKernels() {
  return scalarKernels();
}
#endif
