//===- KernelsAvx512.cpp - AVX-512 kernels (f32 FMA and bf16 dot) ---------===//
//
// Compiled with -mavx512f/bw/vl/bf16 -mfma -mf16c (runtime/CMakeLists.txt)
// and only called when the CPU has them (Isa.cpp).
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
#include <algorithm>
#include <immintrin.h>
#include <utility>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 12; // 24 accumulators of 32 registers

inline __m512 fp8x16(__m128i bytes) {
  __m256i h = _mm256_cvtepi8_epi16(bytes);
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7),
                       _mm256_set1_epi16(short(0xBF80)));
  return _mm512_cvtph_ps(h);
}

inline __m512 bf16x16(__m256i halves) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

inline __mmask16 tailMask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
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

/// KernelSet::combineBf16Rows: out[c] = sum over i < k of x[i] * rows[i][c]
/// widened, one fused add per row, rows in order (combineRowsAvx2's sums).
/// 256 columns a pass in 16 accumulators: a 32-bit lane of 32 loaded
/// weights holds columns 2 j and 2 j + 1, widened by a shift and a mask
/// (no shuffles) into an even and an odd accumulator, interleaved at the
/// store.
void combineBf16Rows(const void *const *rows, const float *x, int64_t k,
                     int64_t n, int64_t ahead, float *out) {
  constexpr int kPairs = 8; // accumulator pairs: 32 columns each
  const __m512i high = _mm512_set1_epi32(int(0xFFFF0000u));
  const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21,
                                       6, 22, 7, 23),
                hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13,
                                       29, 14, 30, 15, 31);
  for (int64_t c0 = 0; c0 < n; c0 += 32 * kPairs) {
    const int64_t width = n - c0 < 32 * kPairs ? n - c0 : 32 * kPairs;
    const int chunks = int((width + 31) / 32);
    const bool last = c0 + width >= n;
    __m512 even[kPairs], odd[kPairs];
#pragma unroll
    for (int j = 0; j < kPairs; ++j)
      even[j] = odd[j] = _mm512_setzero_ps();
    auto add = [&](int j, __m512i v, __m512 xi) {
      even[j] = _mm512_fmadd_ps(
          xi, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), even[j]);
      odd[j] = _mm512_fmadd_ps(
          xi, _mm512_castsi512_ps(_mm512_and_si512(v, high)), odd[j]);
    };
    for (int64_t i = 0; i < k; ++i) {
      const uint16_t *r = static_cast<const uint16_t *>(rows[i]) + c0;
      prefetchCombineRow(rows, i, k, ahead, 2, c0, width, last,
                         n < 32 * kPairs ? n : 32 * kPairs);
      __m512 xi = _mm512_set1_ps(x[i]);
      if (width == 32 * kPairs) { // unmasked, unrolled
#pragma unroll
        for (int j = 0; j < kPairs; ++j)
          add(j, _mm512_loadu_si512(r + 32 * j), xi);
        continue;
      }
      // Unrolled with a guard, not a loop to `chunks`: an accumulator
      // indexed at run time puts all of them on the stack, and then every
      // fused add of the unmasked path above went through memory too.
#pragma unroll
      for (int j = 0; j < kPairs; ++j) {
        if (j >= chunks)
          break;
        int64_t left = width - 32 * j;
        __mmask32 m = left >= 32 ? __mmask32(0xFFFFFFFFu)
                                 : __mmask32((uint32_t(1) << left) - 1);
        add(j, _mm512_maskz_loadu_epi16(m, r + 32 * j), xi);
      }
    }
#pragma unroll
    for (int j = 0; j < kPairs; ++j) {
      if (j >= chunks)
        break;
      int64_t left = width - 32 * j;
      __mmask16 m0 = tailMask(left),
                m1 = left > 16 ? tailMask(left - 16) : __mmask16(0);
      float *o = out + c0 + 32 * j;
      _mm512_mask_storeu_ps(o, m0, _mm512_permutex2var_ps(even[j], lo, odd[j]));
      _mm512_mask_storeu_ps(o + 16, m1,
                            _mm512_permutex2var_ps(even[j], hi, odd[j]));
    }
  }
}

/// Dot products of one weight row with R rows of x; `load(i, mask)` gives
/// 16 weights from element i as f32, and `ahead(i)` is called once per 64
/// (the GEMV's prefetch, else nothing). Four chains per row, over four
/// consecutive 16-value blocks a step; the last whole blocks go to chains
/// 0-2 in turn and a masked last one to chain 0; the chains are added as
/// (0 + 1) + (2 + 3). Two chains bound a bf16 row by the FMA latency at
/// 55-62 GB/s a core from L3 (ds-cpu-bench gemv-kernels, avx512: f32 x),
/// the rate f32 rows stream at with twice the bytes a value.
template <int R, typename Load, typename Ahead>
void dotRows(Load load, Ahead ahead, const float *x, int64_t ldx, int64_t k,
             float *out) {
  constexpr int C = 4;
  __m512 acc[C][R];
#pragma unroll
  for (int c = 0; c < C; ++c)
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[c][t] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 * C <= k; i += 16 * C) {
    ahead(i);
#pragma unroll
    for (int c = 0; c < C; ++c) {
      __m512 wv = load(i + 16 * c, __mmask16(0xFFFF));
#pragma unroll
      for (int t = 0; t < R; ++t)
        acc[c][t] = _mm512_fmadd_ps(
            wv, _mm512_loadu_ps(x + t * ldx + i + 16 * c), acc[c][t]);
    }
  }
  // Unrolled with a guard (a chain indexed at run time would put them all
  // on the stack).
#pragma unroll
  for (int c = 0; c + 1 < C; ++c) {
    if (i + 16 > k)
      break;
    __m512 wv = load(i, __mmask16(0xFFFF));
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[c][t] =
          _mm512_fmadd_ps(wv, _mm512_loadu_ps(x + t * ldx + i), acc[c][t]);
    i += 16;
  }
  if (i < k) {
    __mmask16 m = tailMask(k - i);
    __m512 wv = load(i, m);
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[0][t] = _mm512_fmadd_ps(wv, _mm512_maskz_loadu_ps(m, x + t * ldx + i),
                                  acc[0][t]);
  }
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = _mm512_reduce_add_ps(
        _mm512_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]),
                      _mm512_add_ps(acc[2][t], acc[3][t])));
}

constexpr auto kNoAhead = [](int64_t) {};

template <typename Load>
void dotDispatch(Load load, const float *x, int64_t ldx, int rows, int64_t k,
                 float *out) {
  switch (rows) {
  case 1:
    return dotRows<1>(load, kNoAhead, x, ldx, k, out);
  case 2:
    return dotRows<2>(load, kNoAhead, x, ldx, k, out);
  case 3:
    return dotRows<3>(load, kNoAhead, x, ldx, k, out);
  default:
    return dotRows<4>(load, kNoAhead, x, ldx, k, out);
  }
}

/// A bf16 row's 16 values from element i as f32 (masked: zeros past m).
struct Bf16Load {
  const uint16_t *w;
  __m512 operator()(int64_t i, __mmask16 m) const {
    return bf16x16(_mm256_maskz_loadu_epi16(m, w + i));
  }
};

void dotF32(const float *w, const float *x, int64_t ldx, int rows, int64_t k,
            float *out) {
  dotDispatch(
      [w](int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, w + i); },
      x, ldx, rows, k, out);
}

void dotBf16(const uint16_t *w, const float *x, int64_t ldx, int rows,
             int64_t k, float *out) {
  dotDispatch(Bf16Load{w}, x, ldx, rows, k, out);
}

/// The f32-x FP8 dot products of RW weight rows (ldw apart, sharing
/// `scales`) with RX rows of x (ldx apart), pair (a, c) into
/// out[a * RX + c]. One 128-column block at a time, so its scale
/// multiplies the block's partial sums once; two partial sums per pair
/// (see dotRows). Each pair's arithmetic is the same whatever RW and RX,
/// so a weight row alone, several side by side (gemvFp8) and one against
/// several rows of x (dotFp8) give the same bits. `Ahead`: each weight
/// row's stream fetched ahead (the GEMV's, which reads rows once).
template <int RW, int RX, bool Ahead>
void fp8Dots(const uint8_t *w, int64_t ldw, const float *scales, const float *x,
             int64_t ldx, int64_t k, float *out) {
  constexpr int R = RW * RX;
  __m512 acc[R];
#pragma unroll
  for (int t = 0; t < R; ++t)
    acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b * kScaleBlock < k; ++b) {
    int64_t begin = b * kScaleBlock;
    int64_t end = k < begin + kScaleBlock ? k : begin + kScaleBlock;
    __m512 part[2][R];
#pragma unroll
    for (int t = 0; t < R; ++t)
      part[0][t] = part[1][t] = _mm512_setzero_ps();
    int64_t i = begin;
    for (; i + 32 <= end; i += 32) {
      __m512 wv[RW][2];
#pragma unroll
      for (int a = 0; a < RW; ++a) {
        const uint8_t *row = w + a * ldw + i;
        if (Ahead)
          prefetchAhead(row);
        wv[a][0] =
            fp8x16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(row)));
        wv[a][1] = fp8x16(
            _mm_loadu_si128(reinterpret_cast<const __m128i *>(row + 16)));
      }
#pragma unroll
      for (int c = 0; c < RX; ++c) {
        __m512 x0 = _mm512_loadu_ps(x + c * ldx + i),
               x1 = _mm512_loadu_ps(x + c * ldx + i + 16);
#pragma unroll
        for (int a = 0; a < RW; ++a) {
          int t = a * RX + c;
          part[0][t] = _mm512_fmadd_ps(wv[a][0], x0, part[0][t]);
          part[1][t] = _mm512_fmadd_ps(wv[a][1], x1, part[1][t]);
        }
      }
    }
    for (; i < end; i += 16) {
      __mmask16 m = tailMask(end - i);
      __m512 wv[RW];
#pragma unroll
      for (int a = 0; a < RW; ++a)
        wv[a] = fp8x16(_mm_maskz_loadu_epi8(m, w + a * ldw + i));
#pragma unroll
      for (int c = 0; c < RX; ++c) {
        __m512 xm = _mm512_maskz_loadu_ps(m, x + c * ldx + i);
#pragma unroll
        for (int a = 0; a < RW; ++a)
          part[0][a * RX + c] = _mm512_fmadd_ps(wv[a], xm, part[0][a * RX + c]);
      }
    }
    __m512 s = _mm512_set1_ps(scales[b] * 256.0f);
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[t] =
          _mm512_fmadd_ps(_mm512_add_ps(part[0][t], part[1][t]), s, acc[t]);
  }
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = _mm512_reduce_add_ps(acc[t]);
}

void dotFp8(const uint8_t *w, const float *scales, const float *x, int64_t ldx,
            int rows, int64_t k, float *out) {
  switch (rows) {
  case 1:
    return fp8Dots<1, 1, false>(w, 0, scales, x, ldx, k, out);
  case 2:
    return fp8Dots<1, 2, false>(w, 0, scales, x, ldx, k, out);
  case 3:
    return fp8Dots<1, 3, false>(w, 0, scales, x, ldx, k, out);
  default:
    return fp8Dots<1, 4, false>(w, 0, scales, x, ldx, k, out);
  }
}

/// Row after row, each one's arithmetic that of dotRows<1> over widened
/// bf16 (rows not interleaved: see KernelsAvx2.cpp's gemvF32), the stream
/// fetched ahead (prefetchAhead).
void gemvBf16(const uint16_t *w, int64_t ldw, int64_t n, const float *x,
              int64_t k, float *y) {
  for (int64_t j = 0; j < n; ++j, w += ldw)
    dotRows<1>(
        Bf16Load{w}, [w](int64_t i) { prefetchAhead(w + i); }, x, 0, k, y + j);
}

/// Rows of up to kFp8SideBySideBytes go kFp8SideBySide at a time
/// (fp8Dots): decode's u_h W_UV_h^T, 512-byte rows at V3's width, ran
/// one row at a time at ~30 GB/s, bound by each row's FMA chains. Longer
/// rows go one after the other: the weights' stream alternating between
/// rows is followed worse by the hardware prefetcher (KernelsAvx2.cpp's
/// gemvF32). Each row's value is the same either way.
constexpr int64_t kFp8SideBySideBytes = 2048;
constexpr int kFp8SideBySide = 4;

void gemvFp8(const uint8_t *w, int64_t ldw, int64_t n, const float *scales,
             const float *x, int64_t k, float *y) {
  int64_t j = 0;
  if (k <= kFp8SideBySideBytes)
    for (; j + kFp8SideBySide <= n; j += kFp8SideBySide)
      fp8Dots<kFp8SideBySide, 1, true>(w + j * ldw, ldw, scales, x, 0, k,
                                       y + j);
  for (; j < n; ++j)
    fp8Dots<1, 1, true>(w + j * ldw, ldw, scales, x, 0, k, y + j);
}

/// Dot products over bf16 pairs (vdpbf16ps): 32 weights per instruction
/// and no widening; two accumulators per row keep a single row (decode)
/// above the memory's rate. The tail masks the weights (the padding of a
/// row in the file may hold anything); xb is zero there.
template <int R>
void dotPairsRows(const uint16_t *w, const uint16_t *xb, int64_t ldxb,
                  int64_t k, float *out) {
  __m512 acc[2][R];
#pragma unroll
  for (int t = 0; t < R; ++t)
    acc[0][t] = acc[1][t] = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 64 <= k; i += 64) {
    prefetchAhead(w + i);
    prefetchAhead(w + i + 32);
    __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + i);
    __m512bh w1 = (__m512bh)_mm512_loadu_si512(w + i + 32);
#pragma unroll
    for (int t = 0; t < R; ++t) {
      acc[0][t] = _mm512_dpbf16_ps(
          acc[0][t], w0, (__m512bh)_mm512_loadu_si512(xb + t * ldxb + i));
      acc[1][t] = _mm512_dpbf16_ps(
          acc[1][t], w1, (__m512bh)_mm512_loadu_si512(xb + t * ldxb + i + 32));
    }
  }
  for (; i < k; i += 32) {
    __mmask32 m =
        k - i >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << (k - i)) - 1);
    __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, w + i);
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[0][t] = _mm512_dpbf16_ps(
          acc[0][t], wv, (__m512bh)_mm512_loadu_si512(xb + t * ldxb + i));
  }
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t]));
}

/// Row after row, each one's arithmetic that of dotPairsRows<1> (rows
/// not interleaved: see KernelsAvx2.cpp's gemvF32).
void gemvBf16Pairs(const uint16_t *w, int64_t ldw, int64_t n,
                   const uint16_t *xb, int64_t k, float *y) {
  for (int64_t j = 0; j < n; ++j, w += ldw) {
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
      prefetchAhead(w + i);
      prefetchAhead(w + i + 32);
      acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(w + i),
                              (__m512bh)_mm512_loadu_si512(xb + i));
      acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_loadu_si512(w + i + 32),
                              (__m512bh)_mm512_loadu_si512(xb + i + 32));
    }
    for (; i < k; i += 32) {
      __mmask32 m =
          k - i >= 32 ? __mmask32(0xFFFFFFFFu) : __mmask32((1u << (k - i)) - 1);
      acc0 =
          _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_maskz_loadu_epi16(m, w + i),
                           (__m512bh)_mm512_loadu_si512(xb + i));
    }
    y[j] = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  }
}

void dotBf16Pairs(const uint16_t *w, const uint16_t *xb, int64_t ldxb, int rows,
                  int64_t k, float *out) {
  switch (rows) {
  case 1:
    return dotPairsRows<1>(w, xb, ldxb, k, out);
  case 2:
    return dotPairsRows<2>(w, xb, ldxb, k, out);
  case 3:
    return dotPairsRows<3>(w, xb, ldxb, k, out);
  default:
    return dotPairsRows<4>(w, xb, ldxb, k, out);
  }
}

/// Rows of x dotBf16PairsMany takes a pass: two accumulators each (16
/// of the 32 registers), each pair of weight vectors loaded once for all.
constexpr int kBf16ManyPass = 8;

template <int... R>
void dotPairsPass(std::integer_sequence<int, R...>, const uint16_t *w,
                  const uint16_t *xb, int64_t ldxb, int rows, int64_t k,
                  float *out) {
  // rows is in [1, kBf16ManyPass]: the one instantiation for it runs.
  (void)((rows == R + 1 && (dotPairsRows<R + 1>(w, xb, ldxb, k, out), true)) ||
         ...);
}

/// KernelSet::dotBf16PairsMany: dotPairsRows over up to kBf16ManyPass rows
/// of x a pass (the row's later passes read it from L1). Each row's
/// arithmetic is dotPairsRows<1>'s whatever the pass, so bit for bit
/// dotBf16Pairs' results.
void dotBf16PairsMany(const uint16_t *w, const uint16_t *xb, int64_t ldxb,
                      int rows, int64_t k, float *out) {
  for (int t0 = 0; t0 < rows; t0 += kBf16ManyPass)
    dotPairsPass(std::make_integer_sequence<int, kBf16ManyPass>(), w,
                 xb + t0 * ldxb, ldxb, std::min(kBf16ManyPass, rows - t0), k,
                 out + t0);
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

} // namespace

const KernelSet &dsrt::cpu::avx512Kernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Avx512, kMr,       tileF32Plain<4>, nullptr,
                decodeBf16,  decodeFp8, dotF32,          dotBf16,
                dotFp8,      nullptr,   roundBf16};
    s.packF32 = packF32Rows<false>;
    s.packRoundedF32 = packF32Rows<true>;
    s.packBf16 = packBf16;
    s.storeTile = storeTile;
    s.gemvBf16 = gemvBf16;
    s.gemvFp8 = gemvFp8;
    s.combineBf16Rows = combineBf16Rows;
    s.expfRow = expfRowAvx512;
    s.siluMulRow = siluMulRowAvx512;
    setF32Tiles(s);
    return s;
  }();
  return set;
}

const KernelSet &dsrt::cpu::avx512Bf16Kernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Avx512Bf16, kMr,          tileF32Plain<4>, tileBf16Rows<4>,
                decodeBf16,      decodeFp8,    dotF32,          dotBf16,
                dotFp8,          dotBf16Pairs, roundBf16};
    s.packF32 = packF32Rows<false>;
    s.packRoundedF32 = packF32Rows<true>;
    s.packBf16 = packBf16;
    s.storeTile = storeTile;
    s.gemvBf16Pairs = gemvBf16Pairs;
    s.dotBf16PairsMany = dotBf16PairsMany;
    s.gemvBf16 = gemvBf16;
    s.gemvFp8 = gemvFp8;
    s.combineBf16Rows = combineBf16Rows;
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
