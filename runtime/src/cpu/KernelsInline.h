//===- KernelsInline.h - steps the per-ISA kernel files share --*- C++ -*-===//
//
// Included only by the per-ISA kernel files (Kernels*.cpp,
// LatentAttendAvx2.cpp). Everything here has internal linkage (an unnamed
// namespace), so each file keeps its own copy compiled with its own flags:
// as Kernels.h says, the linker must never hand a caller on a CPU without
// AVX-512 an inline function compiled for it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_KERNELSINLINE_H
#define DSRT_CPU_KERNELSINLINE_H

#include "cpu/Kernels.h"

#include <cstdint>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace dsrt::cpu {
namespace {

/// Walks a TilePrefetch one cache line per call; a null or empty one
/// prefetches nothing.
struct PrefetchCursor {
  const char *row = nullptr;
  int64_t off = 0, ld = 0, bytes = 0;
  int rows = 0;
  bool l1 = false;
  explicit PrefetchCursor(const TilePrefetch *pf) {
    if (pf && pf->rows > 0 && pf->bytes > 0) {
      row = pf->base;
      ld = pf->ld;
      bytes = pf->bytes;
      rows = pf->rows;
      l1 = pf->l1;
    }
  }
  void step() {
    if (!row)
      return;
    if (l1)
      __builtin_prefetch(row + off, 0, 3);
    else
      __builtin_prefetch(row + off, 0, 2);
    off += 64;
    if (off >= bytes) {
      off = 0;
      row = --rows > 0 ? row + ld : nullptr;
    }
  }
};

/// How far ahead of its loads a GEMV streams its weights into L1 (a
/// software prefetch, bytes). Each core streams its rows one after the
/// other, but the hardware prefetchers stop at every 4 KiB page and start
/// again cold: on a Zen 5 EPYC a bf16 row of 2048 values (one page) then
/// ran at 0.69-0.78 of the read stream, about 1.0 with this look-ahead
/// (bench/RESULTS.md, "Decode's weight stream across pages"). Past a
/// row's end it runs on into the next row (rows are contiguous within a
/// part), and past the matrix's end it only touches lines no one reads.
/// The hint is non-temporal (prefetchnta) where that is measured faster
/// (Isa.h's StreamPrefetch: AMD): a decode step streams every weight once,
/// more bytes than L3 holds, so weights kept there only pushed out what
/// the step reads again (the latent cache, activations, the small
/// weights); see prefetchFp8Ahead for what it measured. Elsewhere it is
/// prefetcht0 (with a prefetcht2 further ahead: prefetchStreamAhead): on
/// an Emerald Rapids Xeon prefetchnta left a bf16 GEMV at a quarter of its
/// rate.
constexpr int64_t kGemvAheadBytes = 4096;

/// [p, p + bytes) into L1.
inline void prefetchSpan(const void *p, int64_t bytes) {
  const char *c = static_cast<const char *>(p);
  for (int64_t l = 0; l < bytes; l += 64)
    __builtin_prefetch(c + l, 0, 3);
  __builtin_prefetch(c + bytes - 1, 0, 3);
}

/// Row i + kCombineAhead of `rows` (k of this call's, then `ahead` of the
/// next's), elementBytes each: columns [c0, c0 + width) of this call's, on
/// the last pass (`last`) the first pass's columns [0, first) of the next.
inline void prefetchCombineRow(const void *const *rows, int64_t i, int64_t k,
                               int64_t ahead, int elementBytes, int64_t c0,
                               int64_t width, bool last, int64_t first) {
  int64_t j = i + kCombineAhead;
  if (j < k)
    prefetchSpan(static_cast<const char *>(rows[j]) + c0 * elementBytes,
                 width * elementBytes);
  else if (last && j < k + ahead)
    prefetchSpan(rows[j], first * elementBytes);
}

/// The line of a weight stream `nearBytes` ahead of `p`, with the CPU's
/// hint (Isa.h's StreamPrefetch). With prefetcht0 (not AMD) the line twice
/// as far ahead is also asked for into L2 (prefetcht2): on an Emerald
/// Rapids Xeon one prefetcht0 kept too few lines in flight for a core that
/// also computes (FP8's e4m3 lookup above all) once the weights come from
/// memory. With both, V3-wide decode ran 1.06-1.10x (bf16) and 1.02-1.06x
/// (FP8) faster, and the bench model's bf16 decode, whose weights largely
/// fit L3, held its rate, where the far prefetch alone, or with the L1
/// one moved to 1 KiB, lost 5% there (bench/RESULTS.md, "thirty-third
/// session"). The flag is the same on every call, so the branch costs
/// nothing the stream would notice.
inline void prefetchStreamAhead(const char *p, int64_t nearBytes) {
  if (streamNonTemporal) {
    __builtin_prefetch(p + nearBytes, 0, 0);
    return;
  }
  __builtin_prefetch(p + 2 * nearBytes, 0, 1);
  __builtin_prefetch(p + nearBytes, 0, 3);
}

/// One line of the weights' stream kGemvAheadBytes ahead of `p`.
inline void prefetchAhead(const void *p) {
  prefetchStreamAhead(static_cast<const char *>(p), kGemvAheadBytes);
}

/// The same for FP8 weights, further ahead (the hint is prefetchAhead's;
/// on Zen 5 it had been prefetcht2, the outer caches, before). An FP8 row
/// costs a core about as much time converting (the e4m3 lookup) as waiting
/// for memory, so its loads go out at half a bf16 row's rate, and 4 KiB
/// ahead into L1 left the memory idle between them: FP8 GEMVs streamed
/// 22-29 GB/s where bf16's streamed 33-36. With 6 KiB ahead through
/// prefetcht2 (the outer caches) decode ran 1.07-1.16x faster (medians of
/// 9-10 interleaved pairs); bf16 gained nothing from either change
/// (bench/RESULTS.md, "FP8 decode's weight stream further ahead"). On a
/// Zen 5 EPYC prefetchnta instead of prefetcht2 (here and in
/// prefetchAhead) took an FP8 decode step from 1.21-1.25 to 1.14-1.16 ms
/// (3 interleaved pool traces each), bf16 and f32 steps unchanged
/// (bench/RESULTS.md, "twentieth session").
constexpr int64_t kFp8GemvAheadBytes = 6144;
inline void prefetchFp8Ahead(const void *p) {
  prefetchStreamAhead(static_cast<const char *>(p), kFp8GemvAheadBytes);
}

#if defined(__AVX512F__)
/// 16 e4m3 bytes as f32 times 2^-8 (KernelsAvx512.cpp's header: the byte
/// placed in an IEEE half, widened by vcvtph2ps).
inline __m512 fp8x16(__m128i bytes) {
  __m256i h = _mm256_cvtepi8_epi16(bytes);
  h = _mm256_and_si256(_mm256_slli_epi16(h, 7),
                       _mm256_set1_epi16(short(0xBF80)));
  return _mm512_cvtph_ps(h);
}

/// 16 bf16 values widened to f32.
inline __m512 bf16x16(__m256i halves) {
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_cvtepu16_epi32(halves), 16));
}

/// The first min(n, 16) lanes.
inline __mmask16 tailMask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

/// The accumulators of a tile of Mr weight rows over panel rows [0, 8 Q):
/// per weight row, Q / 2 zmm of 16 panel rows. Q = 4 is the full tile and
/// 2 the half tile; every operation on them is per lane, so the half tile
/// gives its rows the full tile's sums bit for bit. (An odd quarter once
/// went here as a ymm, as cheap as a zmm on Zen 4, which splits a zmm
/// instruction into two 256-bit halves, but as dear on Zen 5: PairAcc
/// takes it now.)
template <int Mr, int Q> struct TileAcc {
  static_assert(Q == 2 || Q == 4, "a tile covers a half or a whole panel");
  static constexpr int Z = Q / 2;
  __m512 z[Mr][Z];

  void load(const float *c) {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
#pragma unroll
      for (int j = 0; j < Z; ++j)
        z[i][j] = _mm512_loadu_ps(c + i * kPanel + 16 * j);
  }
  void zero() {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
#pragma unroll
      for (int j = 0; j < Z; ++j)
        z[i][j] = _mm512_setzero_ps();
  }
  void store(float *c) const {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
#pragma unroll
      for (int j = 0; j < Z; ++j)
        _mm512_storeu_ps(c + i * kPanel + 16 * j, z[i][j]);
  }
  /// c[i][t] += scales[i] * the sums (one fused multiply-add: the FP8
  /// tile's scale block).
  void scaleInto(const float *scales, float *c) const {
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      __m512 s = _mm512_set1_ps(scales[i]);
#pragma unroll
      for (int j = 0; j < Z; ++j) {
        float *at = c + i * kPanel + 16 * j;
        _mm512_storeu_ps(at, _mm512_fmadd_ps(z[i][j], s, _mm512_loadu_ps(at)));
      }
    }
  }
};
#endif

#if defined(__AVX512BF16__)
/// a (panel rows [0, 8 Q)) += the bf16 pairs of weight row i (i < Mr, rows
/// ldw apart) times the panel's activation pairs, over kp pairs of k;
/// `next` prefetches one line per pair. The bf16 tiles and the FP8 tiles
/// (rows looked up as bf16) share it.
template <int Mr, int Q>
inline void bf16TileSteps(TileAcc<Mr, Q> &a, const uint16_t *w, int64_t ldw,
                          const uint16_t *xb, int64_t kp,
                          PrefetchCursor &next) {
  constexpr int Z = TileAcc<Mr, Q>::Z;
  for (int64_t j = 0; j < kp; ++j) {
    next.step();
    const uint16_t *x = xb + j * 2 * kPanel;
    __m512bh xz[Z];
#pragma unroll
    for (int v = 0; v < Z; ++v)
      xz[v] = (__m512bh)_mm512_loadu_si512(x + 32 * v);
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      int pair;
      __builtin_memcpy(&pair, w + i * ldw + 2 * j, 4);
      __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
#pragma unroll
      for (int v = 0; v < Z; ++v)
        a.z[i][v] = _mm512_dpbf16_ps(a.z[i][v], xz[v], b);
    }
  }
}
#endif

#if defined(__AVX512F__)
/// The accumulators of a quarter panel (8 activation rows) on full zmm
/// vectors: lanes 2 t and 2 t + 1 of weight row i's vector hold panel row
/// t's sums over the even and the odd steps of k (values of k, or bf16
/// pairs), folded into one value at the end; a step takes two values of k
/// of each weight row in one 64-bit broadcast. As a ymm (TileAcc's until
/// the twenty-first session, bench/RESULTS.md), a quarter tile issued as many
/// vdpbf16ps as the half tile for half its work: on Zen 5, with zmm at full
/// width, experts' groups of 8 and of 16 rows took the same time. (The half
/// tile this way, two vectors a weight row and half a broadcast an FMA, ran
/// f32's 1.3x faster in L1 and bf16's no faster, and neither faster in
/// ds-cpu-bench experts.)
template <int Mr> struct PairAcc {
  __m512 z[Mr];

  /// c's 8 values into the even lanes (the odd ones zero).
  void load(const float *c) {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
      z[i] = _mm512_castsi512_ps(_mm512_cvtepu32_epi64(_mm256_loadu_si256(
          reinterpret_cast<const __m256i *>(c + i * kPanel))));
  }
  void zero() {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
      z[i] = _mm512_setzero_ps();
  }
  /// Lane 2 t + lane 2 t + 1, for t < 8.
  static __m256 fold(__m512 v) {
    __m512 odd =
        _mm512_castsi512_ps(_mm512_srli_epi64(_mm512_castps_si512(v), 32));
    return _mm256_castsi256_ps(
        _mm512_cvtepi64_epi32(_mm512_castps_si512(_mm512_add_ps(v, odd))));
  }
  void store(float *c) const {
#pragma unroll
    for (int i = 0; i < Mr; ++i)
      _mm256_storeu_ps(c + i * kPanel, fold(z[i]));
  }
  /// c[i][t] += scales[i] * the sums (TileAcc::scaleInto).
  void scaleInto(const float *scales, float *c) const {
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      float *at = c + i * kPanel;
      _mm256_storeu_ps(at,
                       _mm256_fmadd_ps(fold(z[i]), _mm256_set1_ps(scales[i]),
                                       _mm256_loadu_ps(at)));
    }
  }
};

/// The lanes of PairAcc from two 8-row halves: rows of a and b interleaved
/// (a's row t in lane 2 t, b's in lane 2 t + 1).
inline __m512i interleaveRows(__m256i a, __m256i b) {
  const __m512i order =
      _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  return _mm512_permutex2var_epi32(_mm512_castsi256_si512(a), order,
                                   _mm512_castsi256_si512(b));
}

/// Even lanes only: an odd K's last step, whose odd lanes have no value
/// of k to add (a zero x there could still turn an infinite weight into
/// NaN).
constexpr __mmask16 kEvenLanes = 0x5555;

/// The f32 tile's steps over a quarter panel into a PairAcc: values k
/// and k + 1 of its rows interleaved, each weight row's two broadcast as
/// one 64-bit unit; an odd kc's last value alone, into the even lanes.
/// Ld: the weight stride as a constant (tileF32Rows), or 0 for ldwArg.
template <int Mr, int64_t Ld = 0>
__attribute__((always_inline)) inline void
f32PairSteps(PairAcc<Mr> &a, const float *w, int64_t ldwArg, const float *xp,
             int64_t kc, PrefetchCursor &next) {
  const int64_t ldw = Ld ? Ld : ldwArg;
  auto rows = [&](int64_t k) {
    return _mm256_castps_si256(_mm256_loadu_ps(xp + k * kPanel));
  };
  int64_t k = 0;
  const float *wk = w;
  auto pair = [&] {
    // As tileF32Rows': each row's load wk plus a constant.
    if constexpr (Ld != 0)
      asm("" : "+r"(wk));
    __m512 x = _mm512_castsi512_ps(interleaveRows(rows(k), rows(k + 1)));
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      double pair;
      __builtin_memcpy(&pair, wk + i * ldw, 8);
      a.z[i] =
          _mm512_fmadd_ps(_mm512_castpd_ps(_mm512_set1_pd(pair)), x, a.z[i]);
    }
    k += 2;
    wk += 2;
  };
  // The prefetches go out a burst of 16 lines every 16 values of k, so
  // that the steps between them have no branch: with the cursor's
  // branches in the loop, the compiler copied every accumulator each step.
  constexpr int kBurst = 16;
  while (k + kBurst <= kc) {
    for (int j = 0; j < kBurst; ++j)
      next.step();
    for (int j = 0; j < kBurst / 2; ++j)
      pair();
  }
  while (k + 2 <= kc) {
    next.step();
    next.step();
    pair();
  }
  if (k < kc) {
    next.step();
    __m512 x =
        _mm512_castsi512_ps(interleaveRows(rows(k), _mm256_setzero_si256()));
#pragma unroll
    for (int i = 0; i < Mr; ++i)
      a.z[i] = _mm512_mask3_fmadd_ps(_mm512_set1_ps(w[i * ldw + k]), x, a.z[i],
                                     kEvenLanes);
  }
}
#endif

#if defined(__AVX512BF16__)
/// bf16TileSteps over a quarter panel into a PairAcc: two pairs of k a
/// step, the rows' pairs j and j + 1 interleaved by one permute and each
/// weight row's two pairs broadcast as one 64-bit unit. An odd kp's last
/// pair goes alone, into the even lanes (its weights' next pair may lie
/// past the row).
template <int Mr>
__attribute__((always_inline)) inline void
bf16PairSteps(PairAcc<Mr> &a, const uint16_t *w, int64_t ldw,
              const uint16_t *xb, int64_t kp, PrefetchCursor &next) {
  auto rows = [&](int64_t j) {
    return _mm256_loadu_si256(
        reinterpret_cast<const __m256i *>(xb + j * 2 * kPanel));
  };
  int64_t j = 0;
  for (; j + 2 <= kp; j += 2) {
    next.step();
    next.step();
    __m512bh x = (__m512bh)interleaveRows(rows(j), rows(j + 1));
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      long long pairs;
      __builtin_memcpy(&pairs, w + i * ldw + 2 * j, 8);
      a.z[i] = _mm512_dpbf16_ps(a.z[i], x, (__m512bh)_mm512_set1_epi64(pairs));
    }
  }
  if (j < kp) {
    next.step();
    __m512bh x = (__m512bh)interleaveRows(rows(j), _mm256_setzero_si256());
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      int pair;
      __builtin_memcpy(&pair, w + i * ldw + 2 * j, 4);
      a.z[i] = _mm512_mask_dpbf16_ps(a.z[i], kEvenLanes, x,
                                     (__m512bh)_mm512_set1_epi32(pair));
    }
  }
}
#endif

} // namespace
} // namespace dsrt::cpu

#endif
