//===- KernelsAvx2.cpp - AVX2 + FMA kernels -------------------------------===//
//
// Compiled with -mavx2 -mfma -mf16c (runtime/CMakeLists.txt), only called
// when the CPU has them. FP8 widening: see KernelsAvx512.cpp.
//
//===----------------------------------------------------------------------===//
#include "cpu/Expf.h"
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <type_traits>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 3; // 12 accumulators of 16 registers

inline float fp8One(uint8_t v) { // v * 2^-8, see fp8x8
  // Sign-extended, then shifted as unsigned: the same bits, without a
  // left shift of a negative value (undefined, UBSan).
  return _cvtsh_ss(
      uint16_t(uint16_t(uint16_t(int16_t(int8_t(v))) << 7) & 0xBF80));
}

/// The 8 e4m3 bytes in the low half of `bytes`, as fp8One widens them.
inline __m256 fp8x8(__m128i bytes) {
  __m128i h = _mm_cvtepi8_epi16(bytes);
  h = _mm_and_si128(_mm_slli_epi16(h, 7), _mm_set1_epi16(short(0xBF80)));
  return _mm256_cvtph_ps(h);
}

inline __m256 fp8x8(const uint8_t *p) {
  return fp8x8(_mm_loadl_epi64(reinterpret_cast<const __m128i *>(p)));
}

inline float bf16One(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

inline __m256 bf16x8(const uint16_t *p) {
  __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// Panel rows [0, 8 * Vecs) of the tile: Vecs 4 is the whole panel
/// (tileF32), 2 and 3 its half and three-quarter tiles
/// (KernelSet::tileF32Part), with the same per-element sums (the quarter
/// tile: tileF32Quarter). With `scales` (tileF32Scaled) the sums start
/// from zero and go into c times scales[i], once.
template <int Vecs>
void tileF32Rows(const float *w, int64_t ldw, const float *scales,
                 const float *xp, int64_t kc, float *c,
                 const TilePrefetch *pf) {
  PrefetchCursor next(pf);
  __m256 a[kMr][Vecs];
#pragma unroll
  for (int i = 0; i < kMr; ++i)
#pragma unroll
    for (int j = 0; j < Vecs; ++j)
      a[i][j] = scales ? _mm256_setzero_ps()
                       : _mm256_loadu_ps(c + i * kPanel + 8 * j);
  for (int64_t k = 0; k < kc; ++k) {
    next.step();
    const float *x = xp + k * kPanel;
    // The rows' broadcasts first, then one vector of x at a time: 12
    // accumulators, 3 broadcasts and 1 x fill the 16 registers. Row by row
    // (a broadcast, then every x vector), clang kept all 4 x vectors live
    // and spilled two accumulators through the stack on every k, which
    // held the full tile to half the three-quarter one's rate
    // (bench/RESULTS.md, "AVX2 machines").
    __m256 b[kMr];
#pragma unroll
    for (int i = 0; i < kMr; ++i)
      b[i] = _mm256_broadcast_ss(w + i * ldw + k);
#pragma unroll
    for (int j = 0; j < Vecs; ++j) {
      __m256 xv = _mm256_loadu_ps(x + 8 * j);
#pragma unroll
      for (int i = 0; i < kMr; ++i)
        a[i][j] = _mm256_fmadd_ps(b[i], xv, a[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < kMr; ++i)
#pragma unroll
    for (int j = 0; j < Vecs; ++j) {
      float *at = c + i * kPanel + 8 * j;
      _mm256_storeu_ps(at, scales ? _mm256_fmadd_ps(a[i][j],
                                                    _mm256_set1_ps(scales[i]),
                                                    _mm256_loadu_ps(at))
                                  : a[i][j]);
    }
}

template <int Vecs>
void tileF32Plain(const float *w, int64_t ldw, const float *xp, int64_t kc,
                  float *c, const TilePrefetch *pf) {
  tileF32Rows<Vecs>(w, ldw, nullptr, xp, kc, c, pf);
}

/// The quarter tile (panel rows [0, 8)): tileF32Rows<1>'s three chains,
/// one a row, left the FMA units waiting on their latency (35-39 GFLOP/s
/// a core in L1, against 94-101 for the full tile). Each row sums its even
/// and odd steps of k on two chains, added at the store, as AVX-512's
/// quarter tile does (KernelsInline.h's PairAcc): within f32 accumulation
/// of the full tile's sums, not bit for bit.
void tileF32QuarterScaled(const float *w, int64_t ldw, const float *scales,
                          const float *xp, int64_t kc, float *c,
                          const TilePrefetch *pf) {
  PrefetchCursor next(pf);
  __m256 even[kMr], odd[kMr];
#pragma unroll
  for (int i = 0; i < kMr; ++i) {
    even[i] = scales ? _mm256_setzero_ps() : _mm256_loadu_ps(c + i * kPanel);
    odd[i] = _mm256_setzero_ps();
  }
  int64_t k = 0;
  for (; k + 2 <= kc; k += 2) {
    next.step();
    next.step();
    __m256 x0 = _mm256_loadu_ps(xp + k * kPanel),
           x1 = _mm256_loadu_ps(xp + (k + 1) * kPanel);
#pragma unroll
    for (int i = 0; i < kMr; ++i) {
      even[i] =
          _mm256_fmadd_ps(_mm256_broadcast_ss(w + i * ldw + k), x0, even[i]);
      odd[i] =
          _mm256_fmadd_ps(_mm256_broadcast_ss(w + i * ldw + k + 1), x1, odd[i]);
    }
  }
  if (k < kc) {
    next.step();
    __m256 x0 = _mm256_loadu_ps(xp + k * kPanel);
#pragma unroll
    for (int i = 0; i < kMr; ++i)
      even[i] =
          _mm256_fmadd_ps(_mm256_broadcast_ss(w + i * ldw + k), x0, even[i]);
  }
#pragma unroll
  for (int i = 0; i < kMr; ++i) {
    __m256 sum = _mm256_add_ps(even[i], odd[i]);
    float *at = c + i * kPanel;
    _mm256_storeu_ps(at, scales
                             ? _mm256_fmadd_ps(sum, _mm256_set1_ps(scales[i]),
                                               _mm256_loadu_ps(at))
                             : sum);
  }
}

void tileF32Quarter(const float *w, int64_t ldw, const float *xp, int64_t kc,
                    float *c, const TilePrefetch *pf) {
  tileF32QuarterScaled(w, ldw, nullptr, xp, kc, c, pf);
}

void decodeBf16(const uint16_t *src, int64_t n, float *dst) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, bf16x8(src + i));
  for (; i < n; ++i)
    dst[i] = bf16One(src[i]);
}

void decodeFp8(const uint8_t *src, int64_t n, float scale, float *dst) {
  float s1 = scale * 256.0f;
  __m256 s = _mm256_set1_ps(s1);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_mul_ps(fp8x8(src + i), s));
  for (; i < n; ++i)
    dst[i] = fp8One(src[i]) * s1;
}

/// The sum of row t's C chains in chainSteps' sums (chain c at c * R + t),
/// in a fixed order: (0 + 1) for two, (0 + 1) + (2 + 3) for four.
template <int R, int C> inline __m256 chainSum(const __m256 *sums, int t) {
  __m256 pair = _mm256_add_ps(sums[t], sums[R + t]);
  if constexpr (C == 2)
    return pair;
  else
    return _mm256_add_ps(pair, _mm256_add_ps(sums[2 * R + t], sums[3 * R + t]));
}

/// Sums of one weight row with R rows of x over [begin, end) on C chains
/// of 8 lanes (C = 2 or 4): C consecutive 8-value blocks a step, one to
/// each chain; the last blocks (fewer than C) to chains 0, 1, ... in turn.
/// Into sums[c * R + t]. `load(i)` gives 8 weights as f32 and
/// `load.pair(i, a, b)` 16; `ahead(i)` is called once a step (the GEMVs'
/// prefetch, else nothing). Returns where the whole blocks end.
template <int R, int C, typename Load, typename Ahead>
int64_t chainSteps(const Load &load, Ahead ahead, const float *x, int64_t ldx,
                   int64_t begin, int64_t end, __m256 *sums) {
  int64_t i = begin;
  for (; i + 8 * C <= end; i += 8 * C) {
    ahead(i);
#pragma unroll
    for (int c = 0; c < C; c += 2) {
      __m256 w0, w1;
      load.pair(i + 8 * c, w0, w1);
#pragma unroll
      for (int t = 0; t < R; ++t) {
        sums[c * R + t] = _mm256_fmadd_ps(
            w0, _mm256_loadu_ps(x + t * ldx + i + 8 * c), sums[c * R + t]);
        sums[(c + 1) * R + t] =
            _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + t * ldx + i + 8 * c + 8),
                            sums[(c + 1) * R + t]);
      }
    }
  }
  // Unrolled with a guard: a chain indexed at run time would put every
  // chain on the stack (test/tools/check_kernel_spills.py).
#pragma unroll
  for (int c = 0; c + 1 < C; ++c) {
    if (i + 8 > end)
      break;
    __m256 w0 = load(i);
#pragma unroll
    for (int t = 0; t < R; ++t)
      sums[c * R + t] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + t * ldx + i),
                                        sums[c * R + t]);
    i += 8;
  }
  return i;
}

/// Dot products of one weight row with R rows of x over [begin, end):
/// chainSteps on C chains, the chains added (chainSum) and summed across
/// lanes, the rest one by one (`load.one(i)`: one weight). One chain's FMA
/// latency held a core to ~0.73 of a vector read of the same bytes with
/// 7168- and 16384-wide f32 rows, two ~0.78 (four ~0.80; bench/RESULTS.md,
/// "f32 GEMVs on two chains"): f32 keeps two. bf16 rows, half the bytes a
/// value, were bound by the chains' latency at two too (31 GB/s a core
/// from L3 against f32's 60; bench/RESULTS.md, "AVX2 machines") and take
/// four, at most two rows of x a pass (dotBf16), so that a row's value
/// does not depend on how many rows of x came with it.
template <int R, int C, typename Load, typename Ahead>
void dotRows(const Load &load, Ahead ahead, const float *x, int64_t ldx,
             int64_t begin, int64_t end, float *out) {
  __m256 sums[C * R];
#pragma unroll
  for (int j = 0; j < C * R; ++j)
    sums[j] = _mm256_setzero_ps();
  int64_t i = chainSteps<R, C>(load, ahead, x, ldx, begin, end, sums);
#pragma unroll
  for (int t = 0; t < R; ++t) {
    float s = hsum(chainSum<R, C>(sums, t));
    for (int64_t j = i; j < end; ++j)
      s += load.one(j) * x[t * ldx + j];
    out[t] = s;
  }
}

/// f(std::integral_constant<int, R>()) for R = rows, 1 to Max (more: Max):
/// the dot kernels' row counts as template arguments.
template <int Max = 4, typename F> void forRows(int rows, F f) {
  static_assert(Max >= 1 && Max <= 4, "1 to 4 rows of x a pass");
  int r = rows < Max ? rows : Max;
  if constexpr (Max >= 4)
    if (r == 4)
      return f(std::integral_constant<int, 4>());
  if constexpr (Max >= 3)
    if (r == 3)
      return f(std::integral_constant<int, 3>());
  if constexpr (Max >= 2)
    if (r == 2)
      return f(std::integral_constant<int, 2>());
  return f(std::integral_constant<int, 1>());
}

constexpr auto kNoAhead = [](int64_t) {};

/// `rows` rows of x, at most `Pass` a pass (the rows past the first pass
/// re-read the weight row from cache).
template <int C, int Pass, typename Load>
void dotDispatch(const Load &load, const float *x, int64_t ldx, int rows,
                 int64_t begin, int64_t end, float *out) {
  for (int t0 = 0; t0 < rows; t0 += Pass)
    forRows<Pass>(rows - t0, [&](auto r) {
      dotRows<decltype(r)::value, C>(load, kNoAhead, x + t0 * ldx, ldx, begin,
                                     end, out + t0);
    });
}

inline __m256 f32x8(const float *p) { return _mm256_loadu_ps(p); }
inline float f32One(float v) { return v; }

/// A row of T as dotRows loads it, widened to f32: 8 values, 16 (pair) or
/// one.
template <typename T, __m256 (*Vec)(const T *), float (*One)(T)>
struct WidenedRow {
  const T *w;
  __m256 operator()(int64_t i) const { return Vec(w + i); }
  void pair(int64_t i, __m256 &a, __m256 &b) const {
    a = Vec(w + i);
    b = Vec(w + i + 8);
  }
  float one(int64_t i) const { return One(w[i]); }
};
using F32Row = WidenedRow<float, f32x8, f32One>;
using Bf16Row = WidenedRow<uint16_t, bf16x8, bf16One>;

/// An FP8 row as chainSteps loads it (fp8Rows sums its tail itself).
struct Fp8Row {
  const uint8_t *w;
  __m256 operator()(int64_t i) const { return fp8x8(w + i); }
  /// fp8x8's values for 16 bytes, widened and masked once.
  void pair(int64_t i, __m256 &a, __m256 &b) const {
    __m256i h = _mm256_cvtepi8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i *>(w + i)));
    h = _mm256_and_si256(_mm256_slli_epi16(h, 7),
                         _mm256_set1_epi16(short(0xBF80)));
    a = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    b = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
  }
};

void dotF32(const float *w, const float *x, int64_t ldx, int rows, int64_t k,
            float *out) {
  dotDispatch<2, 4>(F32Row{w}, x, ldx, rows, 0, k, out);
}

/// Row after row, each one's arithmetic that of dotF32 with one row of x.
/// Rows are not interleaved to run several rows' chains side by side: that
/// measured slower (the weights' stream then alternates between rows,
/// which the hardware prefetcher follows worse than one row after the
/// other; bench/RESULTS.md). The AVX-512 sets take this kernel too.
/// Software prefetch only with the prefetcht0 hint (Isa.h's
/// StreamPrefetch): on a Zen EPYC (nta) the rows streamed fastest with
/// none, while on an Emerald Rapids Xeon (t0) prefetchAhead took a
/// two-core f32 GEMV from 0.83 of the read stream to 0.97, and a V3-wide
/// f32 decode 1.12-1.17x faster (bench/RESULTS.md, "f32 GEMVs fetched
/// ahead on the Xeon"). The same arithmetic either way.
void gemvF32(const float *w, int64_t ldw, int64_t n, const float *x, int64_t k,
             float *y) {
  if (streamNonTemporal) {
    for (int64_t j = 0; j < n; ++j, w += ldw)
      dotRows<1, 2>(F32Row{w}, kNoAhead, x, 0, 0, k, y + j);
    return;
  }
  for (int64_t j = 0; j < n; ++j, w += ldw)
    dotRows<1, 2>(
        F32Row{w}, [w](int64_t i) { prefetchAhead(w + i); }, x, 0, 0, k, y + j);
}

void dotBf16(const uint16_t *w, const float *x, int64_t ldx, int rows,
             int64_t k, float *out) {
  dotDispatch<4, 2>(Bf16Row{w}, x, ldx, rows, 0, k, out);
}

/// dotBf16's rows with one row of x, the stream fetched ahead across the
/// hardware prefetchers' page boundaries (prefetchAhead).
void gemvBf16(const uint16_t *w, int64_t ldw, int64_t n, const float *x,
              int64_t k, float *y) {
  for (int64_t j = 0; j < n; ++j, w += ldw)
    dotRows<1, 4>(
        Bf16Row{w}, [w](int64_t i) { prefetchAhead(w + i); }, x, 0, 0, k,
        y + j);
}

/// One FP8 row against R rows of x. Each 128-value block is summed on four
/// chains (chainSteps, as dotRows sums a bf16 row), a row's last values
/// (fewer than 8, where its length is not a multiple of 8) zero-padded
/// onto the first chain; the block's chainSum is scaled into the row's
/// accumulator with one fused add, and the lanes are summed once, at the
/// end. Summing the lanes and scaling in scalars block by block took as
/// many operations as the block's conversions; two chains left the FMAs
/// waiting on their latency.
template <int R, typename Ahead>
void fp8Rows(const uint8_t *w, const float *scales, Ahead ahead, const float *x,
             int64_t ldx, int64_t k, float *out) {
  constexpr int C = 4;
  Fp8Row load{w};
  __m256 acc[R];
#pragma unroll
  for (int t = 0; t < R; ++t)
    acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b * kScaleBlock < k; ++b) {
    int64_t begin = b * kScaleBlock;
    int64_t end = k < begin + kScaleBlock ? k : begin + kScaleBlock;
    __m256 sums[C * R];
#pragma unroll
    for (int j = 0; j < C * R; ++j)
      sums[j] = _mm256_setzero_ps();
    int64_t i = chainSteps<R, C>(load, ahead, x, ldx, begin, end, sums);
    if (i < end) {
      // The bytes past the row's end read as zeros, and x's as zeros
      // through a masked load. Gathered in a register: a copy to the stack
      // through memcpy (a call) spilled every accumulator around it.
      int64_t n = end - i;
      uint64_t bytes = 0;
      for (int64_t q = 0; q < n; ++q)
        bytes |= uint64_t(w[i + q]) << (8 * q);
      __m256 w0 = fp8x8(_mm_cvtsi64_si128(int64_t(bytes)));
      __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
      __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), lanes);
#pragma unroll
      for (int t = 0; t < R; ++t)
        sums[t] = _mm256_fmadd_ps(w0, _mm256_maskload_ps(x + t * ldx + i, mask),
                                  sums[t]);
    }
    __m256 s = _mm256_set1_ps(scales[b] * 256.0f);
#pragma unroll
    for (int t = 0; t < R; ++t)
      acc[t] = _mm256_fmadd_ps(chainSum<R, C>(sums, t), s, acc[t]);
  }
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = hsum(acc[t]);
}

void dotFp8(const uint8_t *w, const float *scales, const float *x, int64_t ldx,
            int rows, int64_t k, float *out) {
  // At most two rows of x a pass (four chains each), as dotBf16.
  for (int t0 = 0; t0 < rows; t0 += 2)
    forRows<2>(rows - t0, [&](auto r) {
      fp8Rows<decltype(r)::value>(w, scales, kNoAhead, x + t0 * ldx, ldx, k,
                                  out + t0);
    });
}

/// dotFp8's rows with one row of x (prefetchFp8Ahead).
void gemvFp8(const uint8_t *w, int64_t ldw, int64_t n, const float *scales,
             const float *x, int64_t k, float *y) {
  for (int64_t j = 0; j < n; ++j, w += ldw)
    fp8Rows<1>(
        w, scales, [w](int64_t i) { prefetchFp8Ahead(w + i); }, x, 0, k, y + j);
}

/// combineRowsAvx2 for one element format: `vec(row, c)` gives the 8
/// values of row i from column c, `one(row, c)` one, both as decodeBf16 /
/// decodeFp8 give them (`scale` is the row's scale for the strip's block).
template <int Bytes, typename Vec, typename One>
void combineRows(Vec vec, One one, const void *const *rows,
                 const float *const *scaleRows, const float *x, int64_t k,
                 int64_t n, float *out) {
  constexpr int64_t kStrip = 64; // 8 accumulators; inside one FP8 block
  int64_t c0 = 0;
  for (; c0 + kStrip <= n; c0 += kStrip) {
    __m256 acc[8];
#pragma unroll
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_setzero_ps();
    for (int64_t i = 0; i < k; ++i) {
      // The row's next strip, which the next pass reads: the passes walk
      // the rows at a stride the prefetchers follow only for the first.
      const char *next =
          static_cast<const char *>(rows[i]) + (c0 + kStrip) * Bytes;
      if (c0 + 2 * kStrip <= n)
        for (int l = 0; l < kStrip * Bytes; l += 64)
          _mm_prefetch(next + l, _MM_HINT_T0);
      float s = scaleRows ? scaleRows[i][c0 / kScaleBlock] * 256.0f : 1.0f;
      __m256 a = _mm256_set1_ps(x[i]);
#pragma unroll
      for (int j = 0; j < 8; ++j)
        acc[j] = _mm256_fmadd_ps(a, vec(rows[i], c0 + 8 * j, s), acc[j]);
    }
#pragma unroll
    for (int j = 0; j < 8; ++j)
      _mm256_storeu_ps(out + c0 + 8 * j, acc[j]);
  }
  if (c0 == n)
    return;
  for (int64_t c = c0; c < n; ++c)
    out[c] = 0.0f;
  for (int64_t i = 0; i < k; ++i) {
    float s = scaleRows ? scaleRows[i][c0 / kScaleBlock] * 256.0f : 1.0f;
    for (int64_t c = c0; c < n; ++c)
      out[c] = __builtin_fmaf(x[i], one(rows[i], c, s), out[c]);
  }
}

} // namespace

void dsrt::cpu::combineRowsAvx2(int elementBytes, const void *const *rows,
                                const float *const *scaleRows, const float *x,
                                int64_t k, int64_t n, float *out) {
  if (elementBytes == 4)
    return combineRows<4>(
        [](const void *r, int64_t c, float) {
          return _mm256_loadu_ps(static_cast<const float *>(r) + c);
        },
        [](const void *r, int64_t c, float) {
          return static_cast<const float *>(r)[c];
        },
        rows, nullptr, x, k, n, out);
  if (elementBytes == 2)
    return combineRows<2>(
        [](const void *r, int64_t c, float) {
          return bf16x8(static_cast<const uint16_t *>(r) + c);
        },
        [](const void *r, int64_t c, float) {
          return bf16One(static_cast<const uint16_t *>(r)[c]);
        },
        rows, nullptr, x, k, n, out);
  combineRows<1>(
      [](const void *r, int64_t c, float s) {
        return _mm256_mul_ps(fp8x8(static_cast<const uint8_t *>(r) + c),
                             _mm256_set1_ps(s));
      },
      [](const void *r, int64_t c, float s) {
        return fp8One(static_cast<const uint8_t *>(r)[c]) * s;
      },
      rows, scaleRows, x, k, n, out);
}

const KernelSet &dsrt::cpu::avx2Kernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Avx2, kMr,    tileF32Plain<4>, nullptr, decodeBf16,
                decodeFp8, dotF32, dotBf16,         dotFp8};
    s.gemvF32 = gemvF32;
    s.gemvBf16 = gemvBf16;
    s.gemvFp8 = gemvFp8;
    s.expfRow = expfRowAvx2;
    s.siluMulRow = siluMulRowAvx2;
    s.tileF32Part[0] = tileF32Quarter;
    s.tileF32Part[1] = tileF32Plain<2>;
    s.tileF32Part[2] = tileF32Plain<3>;
    s.tileF32Scaled = tileF32Rows<4>;
    s.tileF32ScaledPart[0] = tileF32QuarterScaled;
    s.tileF32ScaledPart[1] = tileF32Rows<2>;
    s.tileF32ScaledPart[2] = tileF32Rows<3>;
    return s;
  }();
  return set;
}

#else
const dsrt::cpu::KernelSet &dsrt::cpu::avx2Kernels() { return scalarKernels(); }
void dsrt::cpu::combineRowsAvx2(int, const void *const *, const float *const *,
                                const float *, int64_t, int64_t, float *) {
  __builtin_trap(); // never called: no CPU here has AVX2
}
#endif
