//===- KernelsAvx512Dots.cpp - AVX-512 dot products and GEMVs ------------===//
//
// Decode's kernels of the AVX-512 sets (a few rows of x against each
// weight row, streamed once): f32, bf16 widened and FP8 e4m3 (the
// vcvtph2ps widening of KernelsAvx512.cpp's header) dot products, their
// one-row GEMVs, the bf16 ones on vdpbf16ps, and the weighted sum of rows
// of the absorbed attention (combineBf16Rows). Built with
// KernelsAvx512.cpp's flags; its tiles and packers are there.
//
//===----------------------------------------------------------------------===//
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"

#if defined(__x86_64__)
#include <algorithm>
#include <immintrin.h>
#include <utility>

using namespace dsrt::cpu;

namespace {

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
      // Each line's prefetches after its product, as the FP8 GEMV's
      // (KernelsAvx512Fp8.cpp rowSums): issued before both loads, the
      // GEMV streamed 27.6-27.8 GB/s where it now streams 29.0-30.0, and
      // V3-width bf16 decode ran 20.9-21.6 tok/s against 22.3-23.2 (an
      // Emerald Rapids VM, bench/RESULTS.md, "forty-third session"). Not
      // so in dotPairsRows: with 4 rows of x there, prefetches after the
      // products ran 15% slower and between them level.
      acc0 = _mm512_dpbf16_ps(acc0, (__m512bh)_mm512_loadu_si512(w + i),
                              (__m512bh)_mm512_loadu_si512(xb + i));
      prefetchAhead(w + i);
      acc1 = _mm512_dpbf16_ps(acc1, (__m512bh)_mm512_loadu_si512(w + i + 32),
                              (__m512bh)_mm512_loadu_si512(xb + i + 32));
      prefetchAhead(w + i + 32);
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

} // namespace

void dsrt::cpu::setAvx512Dots(KernelSet &s, bool bf16Pairs) {
  s.dotF32 = dotF32;
  s.dotBf16 = dotBf16;
  s.dotFp8 = dotFp8;
  s.gemvBf16 = gemvBf16;
  s.gemvFp8 = gemvFp8;
  s.combineBf16Rows = combineBf16Rows;
  if (bf16Pairs) {
    s.dotBf16Pairs = dotBf16Pairs;
    s.gemvBf16Pairs = gemvBf16Pairs;
    s.dotBf16PairsMany = dotBf16PairsMany;
  }
}

#endif
