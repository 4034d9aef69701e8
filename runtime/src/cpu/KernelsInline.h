//===- KernelsInline.h - steps the per-ISA kernel files share --*- C++ -*-===//
//
// Included only by the per-ISA kernel files (Kernels*.cpp). Everything
// here has internal linkage (an unnamed namespace), so each file keeps its
// own copy compiled with its own flags: as Kernels.h says, the linker must
// never hand a caller on a CPU without AVX-512 an inline function compiled
// for it.
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

#if defined(__AVX512BF16__)
/// a0[i] / a1[i] (panel rows [0, 16) / [16, 32)) += the bf16 pairs of
/// weight row i (i < Mr, rows ldw apart) times the panel's activation
/// pairs, over kp pairs of k; `next` prefetches one line per pair. The
/// bf16 tile and the FP8 tile (rows looked up as bf16) share it.
template <int Mr>
inline void bf16TileSteps(__m512 (&a0)[Mr], __m512 (&a1)[Mr], const uint16_t *w,
                          int64_t ldw, const uint16_t *xb, int64_t kp,
                          PrefetchCursor &next) {
  for (int64_t j = 0; j < kp; ++j) {
    next.step();
    __m512bh x0 = (__m512bh)_mm512_loadu_si512(xb + j * 2 * kPanel);
    __m512bh x1 = (__m512bh)_mm512_loadu_si512(xb + j * 2 * kPanel + 32);
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      int pair;
      __builtin_memcpy(&pair, w + i * ldw + 2 * j, 4);
      __m512bh b = (__m512bh)_mm512_set1_epi32(pair);
      a0[i] = _mm512_dpbf16_ps(a0[i], x0, b);
      a1[i] = _mm512_dpbf16_ps(a1[i], x1, b);
    }
  }
}

/// bf16TileSteps over panel rows [0, 16) only (the half tiles).
template <int Mr>
inline void bf16HalfTileSteps(__m512 (&a0)[Mr], const uint16_t *w, int64_t ldw,
                              const uint16_t *xb, int64_t kp,
                              PrefetchCursor &next) {
  for (int64_t j = 0; j < kp; ++j) {
    next.step();
    __m512bh x0 = (__m512bh)_mm512_loadu_si512(xb + j * 2 * kPanel);
#pragma unroll
    for (int i = 0; i < Mr; ++i) {
      int pair;
      __builtin_memcpy(&pair, w + i * ldw + 2 * j, 4);
      a0[i] = _mm512_dpbf16_ps(a0[i], x0, (__m512bh)_mm512_set1_epi32(pair));
    }
  }
}
#endif

} // namespace
} // namespace dsrt::cpu

#endif
