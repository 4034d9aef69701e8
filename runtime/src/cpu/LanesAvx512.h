//===- LanesAvx512.h - 16 f32 lanes (AVX-512) -------------------*- C++ -*-===//
//
// The vector type the attention kernels are written over
// (NaiveAttendInline.h's V, LatentAttendInline.h's), and the 16 x 16
// transpose of 32-bit lanes (the GEMM packers', the latent scores' rows),
// for the files compiled with AVX-512F (engine.cmake): internal linkage,
// as Kernels.h's rule asks.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_LANESAVX512_H
#define DSRT_CPU_LANESAVX512_H

#include "cpu/NaiveAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace dsrt::cpu {
namespace {

/// r[i] (16 rows of 16 32-bit values) transposed in place: r[c] holds
/// column c of the rows, row i in lane i.
inline void transpose16(__m512i (&r)[16]) {
  __m512i t[16];
#pragma unroll
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
  }
  // s[4i + q], 128-bit lane L: rows 4i..4i+3 of column 4L + q.
#pragma unroll
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
#pragma unroll
  for (int q = 0; q < 4; ++q) {
    __m512i u0 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0x88);
    __m512i u1 = _mm512_shuffle_i32x4(r[q], r[4 + q], 0xDD);
    __m512i v0 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0x88);
    __m512i v1 = _mm512_shuffle_i32x4(r[8 + q], r[12 + q], 0xDD);
    t[q] = _mm512_shuffle_i32x4(u0, v0, 0x88);      // column q
    t[4 + q] = _mm512_shuffle_i32x4(u1, v1, 0x88);  // 4 + q
    t[8 + q] = _mm512_shuffle_i32x4(u0, v0, 0xDD);  // 8 + q
    t[12 + q] = _mm512_shuffle_i32x4(u1, v1, 0xDD); // 12 + q
  }
#pragma unroll
  for (int i = 0; i < 16; ++i)
    r[i] = t[i];
}

struct V16 {
  static constexpr int W = 16;
  using T = __m512;
  using M = __mmask16;
  static T load(const float *p) { return _mm512_loadu_ps(p); }
  static void store(float *p, T v) { _mm512_storeu_ps(p, v); }
  static T fmadd(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T set1(float f) { return _mm512_set1_ps(f); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T sub(T a, T b) { return _mm512_sub_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  static T max(T a, T b) { return _mm512_max_ps(a, b); }
  static M lt(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M eq(T a, T b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static T select(M m, T a, T b) { return _mm512_mask_blend_ps(m, b, a); }
  static T exp(T x) {
    T xc = _mm512_min_ps(_mm512_max_ps(x, set1(kExpLo)), set1(kExpHi));
    T n = _mm512_roundscale_ps(_mm512_mul_ps(xc, set1(kLog2e)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    T r = _mm512_fnmadd_ps(n, set1(kLn2Hi), xc);
    r = _mm512_fnmadd_ps(n, set1(kLn2Lo), r);
    T p = set1(kExpP[0]);
    for (int i = 1; i < 6; ++i)
      p = _mm512_fmadd_ps(p, r, set1(kExpP[i]));
    T y = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, set1(1.0f)));
    __m512i e = _mm512_slli_epi32(
        _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, set1(kExpLo), _CMP_LT_OQ), y,
                             set1(0.0f));
    y = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, set1(kExpHi), _CMP_GT_OQ), y,
                             set1(__builtin_inff()));
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), y, x);
  }
};

} // namespace
} // namespace dsrt::cpu
#endif

#endif // DSRT_CPU_LANESAVX512_H
