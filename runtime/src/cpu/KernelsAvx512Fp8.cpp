//===- KernelsAvx512Fp8.cpp - FP8 weights through the bf16 dot product ----===//
//
// Compiled with the avx512bf16 flags plus -mavx512vbmi (runtime/
// src/engine.cmake) and only called when the CPU has VBMI (Isa.cpp).
//
// Every e4m3 value, its subnormals included (the smallest is 2^-9), is a
// normal bf16: so an e4m3 byte becomes its exact bf16 by table lookup, and
// the weights go into vdpbf16ps as bf16 weights do (vdpbf16ps reads bf16
// denormals as zero, which is why e4m3 bits shifted into a bf16's place
// would lose the subnormals). The 128 magnitudes' bf16 high and low bytes
// are two 128-byte tables, each looked up by one vpermi2b (its index is the
// byte's low 7 bits); the sign goes into the high byte, and an unpack
// interleaves low and high bytes into 16-bit lanes. The unpack works within
// 128-bit lanes, so the bytes are first permuted (vpermb) so that the two
// results hold k in order: the activations keep the bf16 paths' layout.
// e4m3's NaN (0x7f, 0xff) becomes a bf16 NaN.
//
// The 128-wide block scale multiplies each block's partial sums (f32) once,
// as in the f32 kernels: the products of bf16 weights and bf16 activations
// are exact in f32, so this path differs from the f32 one only by the
// activations' rounding to bf16 (MatMul.cpp gemvInput / pack).
//
//===----------------------------------------------------------------------===//
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 12; // as KernelsAvx512.cpp's tiles

/// The bf16 bits of the e4m3 magnitude v (0..127).
constexpr uint16_t bf16OfE4m3(int v) {
  int e = v >> 3, m = v & 7;
  if (v == 0x7f)
    return 0x7fc0; // NaN
  // Normal: (1 + m/8) 2^(e-7), a bf16 exponent of e - 7 + 127.
  if (e)
    return uint16_t(((e + 120) << 7) | (m << 4));
  if (!m)
    return 0;
  int p = m >= 4 ? 2 : m >= 2 ? 1 : 0; // m 2^-9 = (m / 2^p) 2^(p-9)
  return uint16_t(((118 + p) << 7) | ((m << (7 - p)) & 0x7f));
}

struct Tables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
  /// Byte i of the permuted input is byte order[i] of the weights: after
  /// the unpacks, 16-bit lane j of the first result is weight j and of the
  /// second weight 32 + j.
  alignas(64) uint8_t order[64];
};

constexpr Tables makeTables() {
  Tables t{};
  for (int v = 0; v < 128; ++v) {
    t.lo[v] = uint8_t(bf16OfE4m3(v) & 0xff);
    t.hi[v] = uint8_t(bf16OfE4m3(v) >> 8);
  }
  for (int lane = 0; lane < 4; ++lane)
    for (int m = 0; m < 8; ++m) {
      t.order[16 * lane + m] = uint8_t(8 * lane + m);
      t.order[16 * lane + 8 + m] = uint8_t(32 + 8 * lane + m);
    }
  return t;
}

constexpr Tables kTables = makeTables();

/// The lookup's constants, loaded once per kernel call.
struct Fp8Bf16 {
  __m512i lo0, lo1, hi0, hi1, order, sign;
  Fp8Bf16()
      : lo0(_mm512_load_si512(kTables.lo)),
        lo1(_mm512_load_si512(kTables.lo + 64)),
        hi0(_mm512_load_si512(kTables.hi)),
        hi1(_mm512_load_si512(kTables.hi + 64)),
        order(_mm512_load_si512(kTables.order)),
        sign(_mm512_set1_epi8(char(0x80))) {}

  /// 64 e4m3 bytes as bf16: weights [0, 32) into a, [32, 64) into b.
  inline void convert(__m512i bytes, __m512i &a, __m512i &b) const {
    __m512i v = _mm512_permutexvar_epi8(order, bytes);
    __m512i l = _mm512_permutex2var_epi8(lo0, v, lo1);
    __m512i h = _mm512_permutex2var_epi8(hi0, v, hi1);
    h = _mm512_ternarylogic_epi32(h, v, sign, 0xF8); // h | (v & sign)
    a = _mm512_unpacklo_epi8(l, h);
    b = _mm512_unpackhi_epi8(l, h);
  }
};

inline __mmask64 byteMask(int64_t n) {
  return n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
}

void fp8ToBf16(const uint8_t *src, int64_t n, uint16_t *dst) {
  Fp8Bf16 cv;
  for (int64_t i = 0; i < n; i += 64) {
    __m512i a, b;
    cv.convert(_mm512_maskz_loadu_epi8(byteMask(n - i), src + i), a, b);
    int64_t left = n - i;
    __mmask32 ma = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
    __mmask32 mb = left >= 64   ? ~__mmask32(0)
                   : left <= 32 ? __mmask32(0)
                                : (__mmask32(1) << (left - 32)) - 1;
    _mm512_mask_storeu_epi16(dst + i, ma, a);
    _mm512_mask_storeu_epi16(dst + i + 32, mb, b);
  }
}

/// c[i * kPanel + t] += scales[i] * sum_j w-pair j of row i . xb-pair
/// (j, t), over panel rows [0, 8 Q) (Q = 4: tileFp8): tileBf16 over one
/// scale block, its sums scaled once.
template <int Q>
void tileFp8Rows(const uint16_t *w, int64_t ldw, const float *scales,
                 const uint16_t *xb, int64_t kp, float *c) {
  TileAcc<kMr, Q> a;
  a.zero();
  PrefetchCursor none(nullptr);
  bf16TileSteps(a, w, ldw, xb, kp, none);
  a.scaleInto(scales, c);
}

/// One 128-column block at a time (its scale multiplies the block's two
/// partial sums once per row); 64 weights per lookup, whose two halves go
/// to two accumulators, so one row (decode) is not bound by vdpbf16ps's
/// latency. The tail masks the weights (the row's padding in the file may
/// hold anything); xb is zero there up to a multiple of 32.
template <int R>
void dotFp8PairsRows(const uint8_t *w, const float *scales, const uint16_t *xb,
                     int64_t ldxb, int64_t k, float *out) {
  Fp8Bf16 cv;
  __m512 acc[R];
#pragma unroll
  for (int t = 0; t < R; ++t)
    acc[t] = _mm512_setzero_ps();
  for (int64_t blk = 0; blk * kScaleBlock < k; ++blk) {
    int64_t begin = blk * kScaleBlock;
    int64_t end = k < begin + kScaleBlock ? k : begin + kScaleBlock;
    __m512 part[2][R];
#pragma unroll
    for (int t = 0; t < R; ++t)
      part[0][t] = part[1][t] = _mm512_setzero_ps();
    // 64 weights from i: lanes [0, 32) into part[0], [32, 64) into
    // part[1] when `both`.
    auto chunk = [&](int64_t i, __m512i bytes, bool both) {
      __m512i a, b;
      cv.convert(bytes, a, b);
#pragma unroll
      for (int t = 0; t < R; ++t)
        part[0][t] =
            _mm512_dpbf16_ps(part[0][t], (__m512bh)a,
                             (__m512bh)_mm512_loadu_si512(xb + t * ldxb + i));
      if (both) {
#pragma unroll
        for (int t = 0; t < R; ++t)
          part[1][t] = _mm512_dpbf16_ps(
              part[1][t], (__m512bh)b,
              (__m512bh)_mm512_loadu_si512(xb + t * ldxb + i + 32));
      }
    };
    if (end - begin == kScaleBlock) {
      prefetchAhead(w + begin);
      prefetchAhead(w + begin + 64);
      chunk(begin, _mm512_loadu_si512(w + begin), true);
      chunk(begin + 64, _mm512_loadu_si512(w + begin + 64), true);
    } else {
      for (int64_t i = begin; i < end; i += 64)
        chunk(i, _mm512_maskz_loadu_epi8(byteMask(end - i), w + i),
              i + 32 < end);
    }
    __m512 s = _mm512_set1_ps(scales[blk]);
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[t] =
          _mm512_fmadd_ps(_mm512_add_ps(part[0][t], part[1][t]), s, acc[t]);
  }
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = _mm512_reduce_add_ps(acc[t]);
}

/// Row after row (not interleaved: see KernelsAvx2.cpp's gemvF32), each
/// one's arithmetic that of dotFp8PairsRows<1>; the lookup tables stay in
/// registers across the call, and the rows' address and scales come
/// without the per-row division of WeightMatrix::row / scaleRow: with the
/// 1 KiB rows of a 1024-wide model, those per-row costs were as much as
/// the row's conversion.
void gemvFp8Pairs(const uint8_t *w, int64_t ldw, int64_t n, const float *scales,
                  const uint16_t *xb, int64_t k, float *y) {
  Fp8Bf16 cv;
  for (int64_t j = 0; j < n; ++j, w += ldw) {
    __m512 acc = _mm512_setzero_ps();
    for (int64_t blk = 0; blk * kScaleBlock < k; ++blk) {
      int64_t begin = blk * kScaleBlock;
      int64_t end = k < begin + kScaleBlock ? k : begin + kScaleBlock;
      __m512 part0 = _mm512_setzero_ps(), part1 = _mm512_setzero_ps();
      auto chunk = [&](int64_t i, __m512i bytes, bool both) {
        __m512i a, b;
        cv.convert(bytes, a, b);
        part0 = _mm512_dpbf16_ps(part0, (__m512bh)a,
                                 (__m512bh)_mm512_loadu_si512(xb + i));
        if (both)
          part1 = _mm512_dpbf16_ps(part1, (__m512bh)b,
                                   (__m512bh)_mm512_loadu_si512(xb + i + 32));
      };
      if (end - begin == kScaleBlock) {
        prefetchAhead(w + begin);
        prefetchAhead(w + begin + 64);
        chunk(begin, _mm512_loadu_si512(w + begin), true);
        chunk(begin + 64, _mm512_loadu_si512(w + begin + 64), true);
      } else {
        for (int64_t i = begin; i < end; i += 64)
          chunk(i, _mm512_maskz_loadu_epi8(byteMask(end - i), w + i),
                i + 32 < end);
      }
      acc = _mm512_fmadd_ps(_mm512_add_ps(part0, part1),
                            _mm512_set1_ps(scales[blk]), acc);
    }
    y[j] = _mm512_reduce_add_ps(acc);
  }
}

void dotFp8Pairs(const uint8_t *w, const float *scales, const uint16_t *xb,
                 int64_t ldxb, int rows, int64_t k, float *out) {
  switch (rows) {
  case 1:
    return dotFp8PairsRows<1>(w, scales, xb, ldxb, k, out);
  case 2:
    return dotFp8PairsRows<2>(w, scales, xb, ldxb, k, out);
  case 3:
    return dotFp8PairsRows<3>(w, scales, xb, ldxb, k, out);
  default:
    return dotFp8PairsRows<4>(w, scales, xb, ldxb, k, out);
  }
}

} // namespace

const KernelSet &dsrt::cpu::avx512VbmiKernels() {
  static const KernelSet set = [] {
    KernelSet s = avx512Bf16Kernels();
    s.isa = Isa::Avx512Vbmi;
    s.fp8ToBf16 = fp8ToBf16;
    s.tileFp8 = tileFp8Rows<4>;
    s.tileFp8Part[0] = tileFp8Rows<1>;
    s.tileFp8Part[1] = tileFp8Rows<2>;
    s.tileFp8Part[2] = tileFp8Rows<3>;
    s.dotFp8Pairs = dotFp8Pairs;
    s.gemvFp8Pairs = gemvFp8Pairs;
    return s;
  }();
  return set;
}

#else
const dsrt::cpu::KernelSet &dsrt::cpu::avx512VbmiKernels() {
  return scalarKernels();
}
#endif
