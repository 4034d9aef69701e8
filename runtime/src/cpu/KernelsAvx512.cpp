//===- KernelsAvx512.cpp - AVX-512 tiles, decodes and packers -------------===//
//
// Compiled with -mavx512f/bw/vl/bf16 -mfma -mf16c (runtime/src/engine.cmake)
// and only called when the CPU has them (Isa.cpp). Decode's dot products
// and GEMVs are KernelsAvx512Dots.cpp's.
//
// FP8 e4m3 -> f32 without a table: the byte, sign-extended to 16 bits and
// shifted left by 7, masked to sign | exponent | mantissa, is an IEEE half
// of value v * 2^-8 (e4m3's subnormals land on half subnormals, which the
// conversion instruction handles at full speed), so one vcvtph2ps widens 16
// of them; the 2^8 is folded into the block scale. e4m3's NaN (0x7f) reads
// as 480: NaN weights are found by dsrt_model_check_weights instead.
//
//===----------------------------------------------------------------------===//
#include "cpu/Expf.h"
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"
#include "cpu/LanesAvx512.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 12; // 24 accumulators of 32 registers

/// The full tile's x, kXAhead values of k (1 KiB) ahead of `x`, into
/// L1. In a product the panels' chunks come from L2 (a 256-row x is 1 MiB
/// at K 1024) with the weights' prefetches in flight beside them, and the
/// full tiles of a bf16 prefill ran at 70-82% of their L1 rate (rdtsc
/// around each call, three runs), 74-84% with this. Prefill with it, in
/// interleaved pairs of ds-cpu-bench model: bench shape bf16 1.02x, FP8
/// 1.005-1.014x, f32 level; V3 width (K 7168) bf16 1.014-1.033x, FP8
/// 1.009-1.017x (bench/RESULTS.md, "thirty-sixth session"). The partial
/// tiles, an expert's last panel whose chunk is usually still in L1, are
/// left as they were.
constexpr int64_t kXAhead = 8;
inline void prefetchPanelAhead(const float *x) {
  __builtin_prefetch(x + kXAhead * kPanel, 0, 3);
  __builtin_prefetch(x + kXAhead * kPanel + 16, 0, 3);
}

/// tileF32Rows' body for a weight stride of `Ld` elements, or of `ldwArg`
/// where Ld is 0.
template <int Q, int64_t Ld>
void tileF32RowsAt(const float *w, int64_t ldwArg, const float *scales,
                   const float *xp, int64_t kc, float *c,
                   const TilePrefetch *pf) {
  const int64_t ldw = Ld ? Ld : ldwArg;
  PrefetchCursor next(pf);
  if constexpr (Q == 1) {
    PairAcc<kMr> a;
    if (scales)
      a.zero();
    else
      a.load(c);
    f32PairSteps<kMr, Ld>(a, w, ldw, xp, kc, next);
    if (scales)
      a.scaleInto(scales, c);
    else
      a.store(c);
  } else {
    using Acc = TileAcc<kMr, Q>;
    Acc a;
    if (scales)
      a.zero();
    else
      a.load(c);
    // One value of k: x's Z vectors against weight row i's value wAt(i).
    auto step = [&](const float *x, auto wAt) {
      __m512 xz[Acc::Z];
#pragma unroll
      for (int v = 0; v < Acc::Z; ++v)
        xz[v] = _mm512_loadu_ps(x + 16 * v);
#pragma unroll
      for (int i = 0; i < kMr; ++i) {
        __m512 b = _mm512_set1_ps(wAt(i));
#pragma unroll
        for (int v = 0; v < Acc::Z; ++v)
          a.z[i][v] = _mm512_fmadd_ps(b, xz[v], a.z[i][v]);
      }
    };
    if constexpr (Ld != 0) {
      // The pointers opaque to the compiler, so each row's load stays wk
      // plus a constant: an indexed load folded into an FMA is two
      // operations at issue.
      const float *wk = w, *x = xp;
      for (int64_t k = 0; k < kc; ++k, ++wk, x += kPanel) {
        next.step();
        if constexpr (Q == 4)
          prefetchPanelAhead(x);
        asm("" : "+r"(wk), "+r"(x));
        step(x, [&](int i) { return wk[i * Ld]; });
      }
    } else if constexpr (Q < 4) {
      // Rows 3 g + j at p[g] + j ldw: four pointers and the stride in one
      // register address all twelve (the compiler's own addressing
      // recomputed them every k: 124 against 155 GFLOP/s in L1 for the
      // half tile).
      const float *p[4] = {w, w + 3 * ldw, w + 6 * ldw, w + 9 * ldw};
      const float *x = xp;
      for (int64_t k = 0; k < kc; ++k, x += kPanel) {
        next.step();
        asm("" : "+r"(p[0]), "+r"(p[1]), "+r"(p[2]), "+r"(p[3]), "+r"(x));
        step(x, [&](int i) { return p[i / 3][(i % 3) * ldw]; });
#pragma unroll
        for (int g = 0; g < 4; ++g)
          ++p[g];
      }
    } else {
      // The full tile issues two FMAs a weight load and keeps up either
      // way; this form measured fastest for it.
      for (int64_t k = 0; k < kc; ++k) {
        next.step();
        prefetchPanelAhead(xp + k * kPanel);
        step(xp + k * kPanel, [&](int i) { return w[i * ldw + k]; });
      }
    }
    if (scales)
      a.scaleInto(scales, c);
    else
      a.store(c);
  }
}

/// The f32 tile over panel rows [0, 8 Q): Q = 4 is tileF32 and 2 its half
/// tile (TileAcc), 1 its quarter tile on PairAcc (within f32 accumulation
/// of the full tile's sums, not bit for bit), and 3 those two one after
/// the other (their steps differ: one value of k against two).
/// With `scales` (tileF32Scaled): the sums start from zero and go into c
/// times scales[i], once, as tileFp8's.
///
/// Compiled twice: for TileGemm.cpp's tile stride kTileLd as a constant, and
/// for any. With the constant every weight load is a base register (moved
/// on by k) plus a displacement; with a stride in a register the compiler
/// indexes each row's load and recomputes row addresses every k, and the
/// half and quarter tiles, whose FMAs are fewer per weight load, were
/// bound by the instructions' issue rather than the FMA ports.
template <int Q>
void tileF32Rows(const float *w, int64_t ldw, const float *scales,
                 const float *xp, int64_t kc, float *c,
                 const TilePrefetch *pf) {
  if constexpr (Q == 3) {
    tileF32Rows<2>(w, ldw, scales, xp, kc, c, pf);
    tileF32Rows<1>(w, ldw, scales, xp + 2 * kQuarterPanel, kc,
                   c + 2 * kQuarterPanel, nullptr);
  } else if (ldw == kTileLd) {
    tileF32RowsAt<Q, kTileLd>(w, ldw, scales, xp, kc, c, pf);
  } else {
    tileF32RowsAt<Q, 0>(w, ldw, scales, xp, kc, c, pf);
  }
}

template <int Q>
void tileF32Plain(const float *w, int64_t ldw, const float *xp, int64_t kc,
                  float *c, const TilePrefetch *pf) {
  tileF32Rows<Q>(w, ldw, nullptr, xp, kc, c, pf);
}

/// The bf16 tile over panel rows [0, 8 Q): Q = 4 is tileBf16 and 2 its half
/// tile (TileAcc), 1 its quarter tile on PairAcc (within f32 accumulation
/// of the full tile's sums), 3 those two one after the other.
template <int Q>
void tileBf16Rows(const uint16_t *w, int64_t ldw, const uint16_t *xb,
                  int64_t kp, float *c, const TilePrefetch *pf) {
  PrefetchCursor next(pf);
  if constexpr (Q == 3) {
    tileBf16Rows<2>(w, ldw, xb, kp, c, pf);
    tileBf16Rows<1>(w, ldw, xb + 4 * kQuarterPanel, kp, c + 2 * kQuarterPanel,
                    nullptr);
  } else if constexpr (Q == 1) {
    PairAcc<kMr> a;
    a.load(c);
    bf16PairSteps(a, w, ldw, xb, kp, next);
    a.store(c);
  } else {
    TileAcc<kMr, Q> a;
    a.load(c);
    bf16TileSteps(a, w, ldw, xb, kp, next);
    a.store(c);
  }
}

// The decodes fill the GEMM's weight tile a row chunk at a time (256
// values): 64 values a step without masks, then the rest masked (a mask
// computed every 16 values was half of decodeBf16's own instructions).
void decodeBf16(const uint16_t *src, int64_t n, float *dst) {
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
#pragma unroll
    for (int j = 0; j < 64; j += 16)
      _mm512_storeu_ps(dst + i + j,
                       bf16x16(_mm256_loadu_si256(
                           reinterpret_cast<const __m256i *>(src + i + j))));
  }
  for (; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    _mm512_mask_storeu_ps(dst + i, m,
                          bf16x16(_mm256_maskz_loadu_epi16(m, src + i)));
  }
}

void decodeFp8(const uint8_t *src, int64_t n, float scale, float *dst) {
  __m512 s = _mm512_set1_ps(scale * 256.0f);
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
#pragma unroll
    for (int j = 0; j < 64; j += 16)
      _mm512_storeu_ps(
          dst + i + j,
          _mm512_mul_ps(fp8x16(_mm_loadu_si128(
                            reinterpret_cast<const __m128i *>(src + i + j))),
                        s));
  }
  for (; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    __m512 v = fp8x16(_mm_maskz_loadu_epi8(m, src + i));
    _mm512_mask_storeu_ps(dst + i, m, _mm512_mul_ps(v, s));
  }
}

/// roundToBf16 on 16 lanes (each result in its lane's low 16 bits): the
/// same integer rounding, so a vector and a scalar rounding of one value
/// agree bit for bit.
inline __m512i roundLanes(__m512i u) {
  const __m512i expMask = _mm512_set1_epi32(0x7f800000);
  __mmask16 special =
      _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, expMask), expMask);
  __m512i hi = _mm512_srli_epi32(u, 16);
  __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(
          u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                              _mm512_and_si512(hi, _mm512_set1_epi32(1)))),
      16);
  __mmask16 payload = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0xffff));
  __m512i quiet =
      _mm512_mask_or_epi32(hi, payload, hi, _mm512_set1_epi32(0x40));
  return _mm512_mask_blend_epi32(special, rounded, quiet);
}

void roundBf16(const float *src, int64_t n, uint16_t *dst) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    __m512i r = roundLanes(_mm512_maskz_loadu_epi32(m, src + i));
    _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtepi32_epi16(r));
  }
}

/// The panel in 16 x 16 blocks of 32-bit units (an f32, or a bf16 pair):
/// `row(t, j0)` gives units [j0, j0 + 16) of panel row t (t < rows; the
/// rest are zero), and the transposed block goes to units [j0, j0 + 16) of
/// rows [t0, t0 + 16) of the panel.
template <typename Row>
inline void packUnits(Row row, int64_t rows, int64_t units, uint32_t *panel) {
  for (int64_t t0 = 0; t0 < kPanel; t0 += 16)
    for (int64_t j0 = 0; j0 < units; j0 += 16) {
      __m512i r[16];
#pragma unroll
      for (int i = 0; i < 16; ++i)
        r[i] = t0 + i < rows ? row(t0 + i, j0) : _mm512_setzero_si512();
      transpose16(r);
      // Unrolled with constant indices, so r stays in registers.
      int64_t n = units - j0;
#pragma unroll
      for (int q = 0; q < 16; ++q)
        if (q < n)
          _mm512_storeu_si512(panel + (j0 + q) * kPanel + t0, r[q]);
    }
}

void storeTile(const float *c, int64_t m, int64_t rows, float *y, int64_t ldy) {
  __mmask16 lanes = tailMask(m);
  for (int64_t t0 = 0; t0 < rows; t0 += 16) {
    __m512i r[16];
#pragma unroll
    for (int i = 0; i < 16; ++i)
      r[i] = i < m ? _mm512_loadu_si512(c + i * kPanel + t0)
                   : _mm512_setzero_si512();
    transpose16(r);
    int64_t n = rows - t0;
#pragma unroll
    for (int q = 0; q < 16; ++q)
      if (q < n)
        _mm512_mask_storeu_epi32(y + (t0 + q) * ldy, lanes, r[q]);
  }
}

/// The panel's row pointers: row t at x + (index ? index[t] : t) * ldx.
struct PanelRows {
  const float *row[kPanel];
  PanelRows(const float *x, int64_t ldx, const int32_t *index, int64_t rows) {
    for (int64_t t = 0; t < rows && t < kPanel; ++t)
      row[t] = x + (index ? int64_t(index[t]) : t) * ldx;
  }
};

/// Floats ahead of its loads that the packers prefetch in each row.
constexpr int64_t kPackAhead = 128;

/// packF32, or with Round packRoundedF32.
template <bool Round>
void packF32Rows(const float *x, int64_t ldx, const int32_t *index,
                 int64_t rows, int64_t k, float *panel) {
  PanelRows src(x, ldx, index, rows);
  packUnits(
      [&](int64_t t, int64_t j0) {
        const float *row = src.row[t] + j0;
        // As packBf16's: 16 rows side by side are streams the hardware
        // prefetchers follow poorly.
        __builtin_prefetch(row + kPackAhead, 0, 3);
        __m512i u = _mm512_maskz_loadu_epi32(tailMask(k - j0), row);
        if constexpr (Round)
          return _mm512_slli_epi32(roundLanes(u), 16);
        else
          return u;
      },
      rows, k, reinterpret_cast<uint32_t *>(panel));
}

void packBf16(const float *x, int64_t ldx, const int32_t *index, int64_t rows,
              int64_t k, uint16_t *panel) {
  PanelRows rowsOf(x, ldx, index, rows);
  packUnits(
      [&](int64_t t, int64_t j0) {
        // Floats [2 j0, 2 j0 + 32) of the row; past k they load as zero,
        // which rounds to zero (an odd K's last pair).
        const float *src = rowsOf.row[t] + 2 * j0;
        int64_t left = k - 2 * j0;
        // The row's next lines: 16 rows read side by side, a page apart
        // for a 1024-wide x, are streams the hardware prefetchers follow
        // poorly (prefill's packing took 7% less time with this).
        __builtin_prefetch(src + kPackAhead, 0, 3);
        __builtin_prefetch(src + kPackAhead + 16, 0, 3);
        __m512i lo = roundLanes(_mm512_maskz_loadu_epi32(tailMask(left), src));
        __m512i hi = left > 16 ? roundLanes(_mm512_maskz_loadu_epi32(
                                     tailMask(left - 16), src + 16))
                               : _mm512_setzero_si512();
        return _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm512_cvtepi32_epi16(lo)),
            _mm512_cvtepi32_epi16(hi), 1);
      },
      rows, (k + 1) / 2, reinterpret_cast<uint32_t *>(panel));
}

/// The f32 tiles every AVX-512 set shares past tileF32: the partial ones,
/// and the scaled ones whole and partial.
void setF32Tiles(KernelSet &s) {
  s.tileF32Part[0] = tileF32Plain<1>;
  s.tileF32Part[1] = tileF32Plain<2>;
  s.tileF32Part[2] = tileF32Plain<3>;
  s.tileF32Scaled = tileF32Rows<4>;
  s.tileF32ScaledPart[0] = tileF32Rows<1>;
  s.tileF32ScaledPart[1] = tileF32Rows<2>;
  s.tileF32ScaledPart[2] = tileF32Rows<3>;
}

/// KernelSet::copyRows: 64 bytes a load, a block's eight loads before its
/// stores (so that a row's lines are requested together), a masked tail.
void copyRows(const void *src, int64_t ld, int64_t rows, int64_t bytes,
              void *dst, int64_t ldDst) {
  constexpr int64_t kBlock = 512;
  const int64_t whole = bytes / kBlock * kBlock;
  for (int64_t r = 0; r < rows; ++r) {
    const char *s = static_cast<const char *>(src) + r * ld;
    char *d = static_cast<char *>(dst) + r * ldDst;
    int64_t i = 0;
    for (; i < whole; i += kBlock) {
      __m512i v[kBlock / 64];
      for (int j = 0; j < kBlock / 64; ++j)
        v[j] = _mm512_loadu_si512(s + i + 64 * j);
      for (int j = 0; j < kBlock / 64; ++j)
        _mm512_storeu_si512(d + i + 64 * j, v[j]);
    }
    for (; i < bytes; i += 64) {
      __mmask64 m =
          bytes - i >= 64 ? ~__mmask64(0) : (__mmask64(1) << (bytes - i)) - 1;
      _mm512_mask_storeu_epi8(d + i, m, _mm512_maskz_loadu_epi8(m, s + i));
    }
  }
}

} // namespace

const KernelSet &dsrt::cpu::avx512Kernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Avx512, kMr,       tileF32Plain<4>, nullptr,
                decodeBf16,  decodeFp8, nullptr,         nullptr,
                nullptr,     nullptr,   roundBf16};
    setAvx512Dots(s, /*bf16Pairs=*/false);
    s.packF32 = packF32Rows<false>;
    s.packRoundedF32 = packF32Rows<true>;
    s.packBf16 = packBf16;
    s.storeTile = storeTile;
    s.copyRows = copyRows;
    s.expfRow = expfRowAvx512;
    s.siluMulRow = siluMulRowAvx512;
    setF32Tiles(s);
    return s;
  }();
  return set;
}

const KernelSet &dsrt::cpu::avx512Bf16Kernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Avx512Bf16, kMr,       tileF32Plain<4>, tileBf16Rows<4>,
                decodeBf16,      decodeFp8, nullptr,         nullptr,
                nullptr,         nullptr,   roundBf16};
    setAvx512Dots(s, /*bf16Pairs=*/true);
    s.packF32 = packF32Rows<false>;
    s.packRoundedF32 = packF32Rows<true>;
    s.packBf16 = packBf16;
    s.storeTile = storeTile;
    s.copyRows = copyRows;
    s.expfRow = expfRowAvx512;
    s.siluMulRow = siluMulRowAvx512;
    setF32Tiles(s);
    s.tileBf16Part[0] = tileBf16Rows<1>;
    s.tileBf16Part[1] = tileBf16Rows<2>;
    s.tileBf16Part[2] = tileBf16Rows<3>;
    return s;
  }();
  return set;
}

#else
const dsrt::cpu::KernelSet &dsrt::cpu::avx512Kernels() {
  return scalarKernels();
}
const dsrt::cpu::KernelSet &dsrt::cpu::avx512Bf16Kernels() {
  return scalarKernels();
}
#endif
