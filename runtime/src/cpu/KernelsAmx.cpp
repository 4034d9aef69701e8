//===- KernelsAmx.cpp - bf16 and FP8 GEMM tiles on AMX (TDPBF16PS) --------===//
//
// Compiled with KernelsAvx512Fp8.cpp's flags plus -mamx-tile -mamx-bf16
// (runtime/src/engine.cmake). The AMX set is the avx512vbmi set with its
// bf16 and FP8 tiles replaced, on 32 weight rows (KernelSet::mrPairs) where
// the AVX-512 tiles take 12: one TDPBF16PS multiplies 16 weight rows by 16
// tokens over 16 pairs of k, and a 32-token panel is the 2 x 2 of them
// (four accumulator tiles, two weight tiles, two token tiles: each tile
// loaded feeds two products). Panels stream from L2 while a chunk of
// weights stays in L1, so what bounds a tile is the panel's load: with 12
// weight rows a call (one weight tile, each token tile used once) the tile
// ran 1.16-1.30 TFLOP/s a core over 8-32 panels, with 32 rows 1.64-1.71,
// and with the panel fetched two steps ahead 1.73-1.80 (a C model of the
// loop; the instruction's peak measured 3.4 here).
//
// The layouts are the ones the other tiles read, so nothing else changes:
//  - A (tiles 4, 5): weight rows 0-15 and 16-31, 64 bytes (32 bf16) each,
//    loaded where they lie (rows ldw apart) or from the chunk TileGemm.cpp
//    copied;
//  - B (tiles 6, 7): the packed panel's bf16 pairs, row j holding pair j
//    of 32 tokens (kPanel x 4 bytes): tokens 0-15 and 16-31 are the two
//    B tiles, 16 pair-rows of 64 bytes at a 128-byte stride;
//  - C (tiles 0-3): c[i * kPanel + t], the accumulators every tile kernel
//    adds into: rows 0-15 / 16-31 by tokens 0-15 / 16-31, 16 rows of 16
//    floats at a 128-byte stride.
// Pairs past the last whole 16 (a K not a multiple of 32) take one more
// step through zero-padded copies. A partial panel of 8 or 24 tokens
// computes its last 8 from zero in a buffer of its own (16 tokens, the
// rest dropped) and adds them, so no tile writes rows of c it does not own.
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

/// Weight rows per tile call (KernelSet::mrPairs): two A tiles of 16.
constexpr int kMr = 32;
/// Rows of one tile; pairs of k one TDPBF16PS takes (a 64-byte tile row
/// of bf16 pairs).
constexpr int kTileRows = 16;
constexpr int64_t kStepPairs = 16;
/// Bytes between rows of C (c's rows of kPanel floats) and of B (the
/// panel's pair-rows of kPanel pairs).
constexpr int64_t kCStride = kPanel * 4, kBStride = kPanel * 4;
/// Steps of k ahead of its loads that a tile fetches the panel into L1
/// (two: 1.73-1.80 TFLOP/s in the loop's C model, one 1.73-1.75, four
/// 1.64, none 1.64-1.71).
constexpr int64_t kPanelAhead = 2;

/// C<r><h>: weight rows 16r.. by tokens 16h..; A<r>: weight rows 16r..;
/// B<h>: tokens 16h...
enum Tile {
  C00 = 0,
  C01 = 1,
  C10 = 2,
  C11 = 3,
  A0 = 4,
  A1 = 5,
  B0 = 6,
  B1 = 7
};
constexpr int kTiles = 8;

/// LDTILECFG's 64-byte operand (palette 1): eight tiles of 16 rows of 64
/// bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, startRow = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr TileConfig makeConfig() {
  TileConfig c;
  for (int t = 0; t < kTiles; ++t) {
    c.rows[t] = kTileRows;
    c.colsb[t] = 64;
  }
  return c;
}
constexpr TileConfig kConfig = makeConfig();

/// The instructions. A call reads the thread's tile configuration and
/// loads kConfig where it differs: once per thread in this runtime, but
/// other AMX code on the thread (oneDNN under torch in the same process)
/// may have loaded its own, or released the tiles, since. (The check cost
/// nothing measurable in the loop's C model.)
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

/// The token halves a call computes: H of them (1 or 2) from half At.
template <int H, int At> struct Halves {
  static_assert(H == 2 ? At == 0 : At == 0 || At == 1);
  static constexpr int count = H, first = At;
};

/// One step of 16 pairs: both weight tiles by the halves' token tiles.
/// w: the step's first pair of weight row 0 (rows ldw apart); xs: the
/// step's first pair-row of the panel.
template <typename B, typename Hs>
inline void step(const uint16_t *w, int64_t ldw, const uint16_t *xs) {
  B::template load<A0>(w, ldw * 2);
  B::template load<B0 + Hs::first>(xs + 32 * Hs::first, kBStride);
  B::template dp<C00 + Hs::first, A0, B0 + Hs::first>();
  if constexpr (Hs::count == 2) {
    B::template load<B1>(xs + 32, kBStride);
    B::template dp<C01, A0, B1>();
  }
  B::template load<A1>(w + kTileRows * ldw, ldw * 2);
  B::template dp<C10 + Hs::first, A1, B0 + Hs::first>();
  if constexpr (Hs::count == 2)
    B::template dp<C11, A1, B1>();
}

/// Most planes of x a call sums (PackAs::Bf16Split's three).
constexpr int kMaxPlanes = 3;

/// step over `planes` planes of x (planeStride uint16s apart) into the
/// same accumulators: the weight tiles loaded once for all of them.
template <typename B, typename Hs>
inline void stepPlanes(const uint16_t *w, int64_t ldw, const uint16_t *xs,
                       int planes, int64_t planeStride) {
  if (planes == 1)
    return step<B, Hs>(w, ldw, xs);
  B::template load<A0>(w, ldw * 2);
  B::template load<A1>(w + kTileRows * ldw, ldw * 2);
  for (int i = 0; i < planes; ++i) {
    const uint16_t *xi = xs + i * planeStride;
    B::template load<B0 + Hs::first>(xi + 32 * Hs::first, kBStride);
    B::template dp<C00 + Hs::first, A0, B0 + Hs::first>();
    B::template dp<C10 + Hs::first, A1, B0 + Hs::first>();
    if constexpr (Hs::count == 2) {
      B::template load<B1>(xi + 32, kBStride);
      B::template dp<C01, A0, B1>();
      B::template dp<C11, A1, B1>();
    }
  }
}

/// c[i * kPanel + t] (+)= sum over pairs j < kp of w-pair j of row i .
/// xb-pair (j, t), for i < kMr and the tokens t of the halves Hs, summed
/// over `planes` planes of x (planeStride apart, each step's planes in
/// turn): with Zero the sums start from zero, else from c. The whole steps of
/// 16 pairs run where the data lie; a last partial step runs on zero-padded
/// copies of its pairs. Every sum is computed alone (the same products in the
/// same order whichever halves a call computes).
template <typename B, typename Hs, bool Zero>
void amxSums(const uint16_t *w, int64_t ldw, const uint16_t *xb, int64_t kp,
             float *c, const TilePrefetch *pf, int planes = 1,
             int64_t planeStride = 0) {
  B::configure();
  // Applies f to each C tile the call computes: (rows 16r, half h).
  auto each = [](auto f) {
    f(std::integral_constant<int, 0>{},
      std::integral_constant<int, Hs::first>{});
    f(std::integral_constant<int, 1>{},
      std::integral_constant<int, Hs::first>{});
    if constexpr (Hs::count == 2) {
      f(std::integral_constant<int, 0>{}, std::integral_constant<int, 1>{});
      f(std::integral_constant<int, 1>{}, std::integral_constant<int, 1>{});
    }
  };
  auto at = [c](int r, int h) { return c + r * kTileRows * kPanel + 16 * h; };
  each([&](auto r, auto h) {
    constexpr int T = C00 + 2 * decltype(r)::value + decltype(h)::value;
    if constexpr (Zero)
      B::template zero<T>();
    else
      B::template load<T>(at(r, h), kCStride);
  });
  const int64_t steps = kp / kStepPairs, rest = kp - steps * kStepPairs;
  PrefetchCursor next(pf);
  const int64_t perStep = linesPerStep(pf, steps + (rest > 0));
  for (int64_t s = 0; s < steps; ++s) {
    const uint16_t *xs = xb + s * kStepPairs * kPanel * 2;
    // The panel's pair-rows kPanelAhead steps on (past the chunk: the
    // next panel's, which the next call reads; a prefetch never faults).
    for (int i = 0; i < planes; ++i) {
      const char *ahead = reinterpret_cast<const char *>(
          xs + i * planeStride + kPanelAhead * kStepPairs * kPanel * 2);
      for (int l = 0; l < kStepPairs * kBStride / 64; ++l)
        _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
    }
    stepPlanes<B, Hs>(w + s * 2 * kStepPairs, ldw, xs, planes, planeStride);
    for (int64_t l = 0; l < perStep; ++l)
      next.step();
  }
  if (rest > 0) {
    alignas(64) uint16_t wt[kMr * 2 * kStepPairs] = {};
    constexpr int64_t kPlaneStep = kStepPairs * kPanel * 2;
    alignas(64) uint16_t xt[kMaxPlanes * kPlaneStep] = {};
    for (int i = 0; i < kMr; ++i)
      std::memcpy(wt + i * 2 * kStepPairs, w + i * ldw + steps * 2 * kStepPairs,
                  size_t(rest) * 4);
    for (int i = 0; i < planes; ++i)
      std::memcpy(xt + i * kPlaneStep,
                  xb + i * planeStride + steps * kStepPairs * kPanel * 2,
                  size_t(rest) * kBStride);
    stepPlanes<B, Hs>(wt, 2 * kStepPairs, xt, planes, kPlaneStep);
    for (int64_t l = 0; l < perStep; ++l)
      next.step();
  }
  each([&](auto r, auto h) {
    constexpr int T = C00 + 2 * decltype(r)::value + decltype(h)::value;
    B::template store<T>(at(r, h), kCStride);
  });
}

/// Tokens [t0, t0 + n) of sums (a kMr x kPanel tile from zero) times
/// scales[i] (1 where null) added into c's rows.
void addInto(const float *sums, const float *scales, int t0, int n, float *c) {
  for (int i = 0; i < kMr; ++i) {
    __m512 s = _mm512_set1_ps(scales ? scales[i] : 1.0f);
    for (int h = t0; h < t0 + n; h += 16) {
      __mmask16 m =
          t0 + n - h >= 16 ? 0xFFFF : __mmask16((1u << (t0 + n - h)) - 1);
      float *to = c + i * kPanel + h;
      _mm512_mask_storeu_ps(
          to, m,
          _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, sums + i * kPanel + h), s,
                          _mm512_maskz_loadu_ps(m, to)));
    }
  }
}

/// KernelSet::tileBf16 on AMX (Q = 4) and its partial tiles (Q quarter
/// panels): whole halves accumulate in c; a last quarter (Q odd) is summed
/// from zero in its half and added.
template <typename B, int Q>
void amxTileBf16(const uint16_t *w, int64_t ldw, const uint16_t *xb, int64_t kp,
                 float *c, const TilePrefetch *pf) {
  if constexpr (Q == 4)
    amxSums<B, Halves<2, 0>, false>(w, ldw, xb, kp, c, pf);
  else if constexpr (Q == 2)
    amxSums<B, Halves<1, 0>, false>(w, ldw, xb, kp, c, pf);
  else {
    if constexpr (Q == 3)
      amxSums<B, Halves<1, 0>, false>(w, ldw, xb, kp, c, pf);
    constexpr int half = Q / 2;
    alignas(64) float sums[kMr * kPanel];
    amxSums<B, Halves<1, half>, true>(w, ldw, xb, kp, sums,
                                      Q == 3 ? nullptr : pf);
    addInto(sums, nullptr, 16 * half, kQuarterPanel, c);
  }
}

/// KernelSet::tileFp8Planes on AMX: one scale block's sums from zero over
/// every plane, then c[i][t] += scales[i] * sums (TileAcc::scaleInto's
/// fused form).
template <typename B, int Q>
void amxTileFp8Planes(const uint16_t *w, int64_t ldw, const float *scales,
                      const uint16_t *xb, int64_t planeStride, int planes,
                      int64_t kp, float *c, const TilePrefetch *pf) {
  alignas(64) float sums[kMr * kPanel];
  if (kp <= 0)
    return;
  if constexpr (Q > 2)
    amxSums<B, Halves<2, 0>, true>(w, ldw, xb, kp, sums, pf, planes,
                                   planeStride);
  else
    amxSums<B, Halves<1, 0>, true>(w, ldw, xb, kp, sums, pf, planes,
                                   planeStride);
  addInto(sums, scales, 0, Q * kQuarterPanel, c);
}

/// KernelSet::tileFp8 on AMX: the one plane of amxTileFp8Planes.
template <typename B, int Q>
void amxTileFp8(const uint16_t *w, int64_t ldw, const float *scales,
                const uint16_t *xb, int64_t kp, float *c,
                const TilePrefetch *pf) {
  amxTileFp8Planes<B, Q>(w, ldw, scales, xb, 0, 1, kp, c, pf);
}

/// The avx512vbmi set with the tiles of backend B.
template <typename B> KernelSet amxSet() {
  KernelSet s = avx512VbmiKernels();
  s.isa = Isa::Amx;
  s.mrPairs = kMr;
  s.emulatedAmx = std::is_same_v<B, AmxEmulated>;
  s.tileBf16 = amxTileBf16<B, 4>;
  s.tileFp8 = amxTileFp8<B, 4>;
  s.tileBf16Part[0] = amxTileBf16<B, 1>;
  s.tileBf16Part[1] = amxTileBf16<B, 2>;
  s.tileBf16Part[2] = amxTileBf16<B, 3>;
  s.tileFp8Part[0] = amxTileFp8<B, 1>;
  s.tileFp8Part[1] = amxTileFp8<B, 2>;
  s.tileFp8Part[2] = amxTileFp8<B, 3>;
  s.tileFp8Planes = amxTileFp8Planes<B, 4>;
  s.tileFp8PlanesPart[0] = amxTileFp8Planes<B, 1>;
  s.tileFp8PlanesPart[1] = amxTileFp8Planes<B, 2>;
  s.tileFp8PlanesPart[2] = amxTileFp8Planes<B, 3>;
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
/// hardware reads otherwise than written here fails it (the bf16 and FP8
/// tiles, full and partial, the FP8 ones on one plane of x and on three,
/// over 40 pairs: two steps and a padded one, weight rows in place).
bool amxMatchesEmulation() {
  constexpr int64_t kp = 40, ldw = 2 * kp + 6, plane = kp * kPanel * 2;
  static uint16_t w[kMr * ldw], xb[kMaxPlanes * plane];
  for (int64_t i = 0; i < kMr * ldw; ++i)
    w[i] = roundToBf16(float((i * 7) % 9) - 4);
  for (int64_t i = 0; i < kMaxPlanes * plane; ++i)
    xb[i] = roundToBf16(float((i * 5) % 7) - 3);
  float scales[kMr];
  for (int i = 0; i < kMr; ++i)
    scales[i] = float(1 << (i % 5)) / 4;
  const KernelSet hwSet = amxSet<AmxHardware>(), emuSet = amxSet<AmxEmulated>();
  for (int kind = 0; kind < 3; ++kind)
    for (int q = 1; q <= 4; ++q) {
      alignas(64) float hw[kMr * kPanel], emu[kMr * kPanel];
      for (int64_t i = 0; i < kMr * kPanel; ++i)
        hw[i] = emu[i] = float(i % 5);
      if (kind == 2) {
        auto tile = [q](const KernelSet &s) {
          return q == 4 ? s.tileFp8Planes : s.tileFp8PlanesPart[q - 1];
        };
        tile(hwSet)(w, ldw, scales, xb, plane, kMaxPlanes, kp, hw, nullptr);
        tile(emuSet)(w, ldw, scales, xb, plane, kMaxPlanes, kp, emu, nullptr);
      } else if (kind == 1) {
        (q == 4 ? hwSet.tileFp8 : hwSet.tileFp8Part[q - 1])(w, ldw, scales, xb,
                                                            kp, hw, nullptr);
        (q == 4 ? emuSet.tileFp8 : emuSet.tileFp8Part[q - 1])(
            w, ldw, scales, xb, kp, emu, nullptr);
      } else {
        (q == 4 ? hwSet.tileBf16 : hwSet.tileBf16Part[q - 1])(w, ldw, xb, kp,
                                                              hw, nullptr);
        (q == 4 ? emuSet.tileBf16 : emuSet.tileBf16Part[q - 1])(w, ldw, xb, kp,
                                                                emu, nullptr);
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
