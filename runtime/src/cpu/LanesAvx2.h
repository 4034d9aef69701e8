//===- LanesAvx2.h - 8 f32 lanes (AVX2) -------------------------*- C++ -*-===//
//
// The vector type the attention kernels are written over
// (NaiveAttendInline.h's V, LatentAttendInline.h's), for the files
// compiled with AVX2 + FMA only (engine.cmake): internal linkage, as
// Kernels.h's rule asks.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_LANESAVX2_H
#define DSRT_CPU_LANESAVX2_H

#include "cpu/NaiveAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace dsrt::cpu {
namespace {

struct V8 {
  static constexpr int W = 8;
  using T = __m256;
  using M = __m256;
  static T load(const float *p) { return _mm256_loadu_ps(p); }
  static void store(float *p, T v) { _mm256_storeu_ps(p, v); }
  static T fmadd(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T set1(float f) { return _mm256_set1_ps(f); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
  static T sub(T a, T b) { return _mm256_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  static T max(T a, T b) { return _mm256_max_ps(a, b); }
  static M lt(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M eq(T a, T b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
  static T select(M m, T a, T b) { return _mm256_blendv_ps(b, a, m); }
  static T exp(T x) {
    T xc = _mm256_min_ps(_mm256_max_ps(x, set1(kExpLo)), set1(kExpHi));
    T n = _mm256_round_ps(_mm256_mul_ps(xc, set1(kLog2e)),
                          _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm256_fnmadd_ps(n, set1(kLn2Hi), xc);
    r = _mm256_fnmadd_ps(n, set1(kLn2Lo), r);
    T p = set1(kExpP[0]);
    for (int i = 1; i < 6; ++i)
      p = _mm256_fmadd_ps(p, r, set1(kExpP[i]));
    T y = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, set1(1.0f)));
    __m256i e = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
    y = select(_mm256_cmp_ps(x, set1(kExpLo), _CMP_LT_OQ), set1(0.0f), y);
    y = select(_mm256_cmp_ps(x, set1(kExpHi), _CMP_GT_OQ),
               set1(__builtin_inff()), y);
    return select(_mm256_cmp_ps(x, x, _CMP_UNORD_Q), x, y);
  }
};

} // namespace
} // namespace dsrt::cpu
#endif

#endif // DSRT_CPU_LANESAVX2_H
