//===- ExpfAvx2.cpp - glibc's expf on 8 lanes -----------------------------===//
//
// Compiled with -mavx2 -mfma (runtime/src/engine.cmake); only called on
// CPUs with both (the avx2 set). The algorithm: ExpfConstants.h.
//
//===----------------------------------------------------------------------===//
#include "cpu/Expf.h"
#include "cpu/ExpfConstants.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;
namespace eg = dsrt::cpu::expf_glibc;

namespace {

/// e_expf.c's common path on 4 lanes of double, as ExpfAvx512.cpp's.
__m128 commonPath(__m128 x) {
  const __m256d invLn2N = _mm256_set1_pd(eg::kInvLn2N);
  const __m256d shift = _mm256_set1_pd(eg::kShift);
  __m256d xd = _mm256_cvtps_pd(x);
  __m256d kd = _mm256_fmadd_pd(invLn2N, xd, shift);
  __m256i ki = _mm256_castpd_si256(kd);
  kd = _mm256_sub_pd(kd, shift);
  __m256d r = _mm256_fmsub_pd(invLn2N, xd, kd);
  __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
  __m256i t = _mm256_i64gather_epi64(
      reinterpret_cast<const long long *>(eg::kExp2Table), idx, 8);
  t = _mm256_add_epi64(t, _mm256_slli_epi64(_mm256_srli_epi64(ki, 5), 52));
  __m256d s = _mm256_castsi256_pd(t);
  __m256d z =
      _mm256_fmadd_pd(_mm256_set1_pd(eg::kC0), r, _mm256_set1_pd(eg::kC1));
  __m256d r2 = _mm256_mul_pd(r, r);
  __m256d y = _mm256_fmadd_pd(r, _mm256_set1_pd(eg::kC2), _mm256_set1_pd(1.0));
  y = _mm256_fmadd_pd(z, r2, y);
  return _mm256_cvtpd_ps(_mm256_mul_pd(y, s));
}

__m256 select(__m256 mask, __m256 yes, __m256 no) {
  return _mm256_blendv_ps(no, yes, mask);
}

__m256 expf8(__m256 x) {
  __m256 y = _mm256_set_m128(commonPath(_mm256_extractf128_ps(x, 1)),
                             commonPath(_mm256_castps256_ps128(x)));
  __m256i bits = _mm256_castps_si256(x);
  __m256i top =
      _mm256_and_si256(_mm256_srli_epi32(bits, 20), _mm256_set1_epi32(0x7ff));
  __m256 special = _mm256_castsi256_ps(
      _mm256_cmpgt_epi32(top, _mm256_set1_epi32(eg::kSpecialTop)));
  if (_mm256_testz_ps(special, special)) // |x| < 88 everywhere
    return y;
  // Later selections take precedence: e_expf.c's order reversed.
  auto below = [&](float c) {
    return _mm256_and_ps(special,
                         _mm256_cmp_ps(x, _mm256_set1_ps(c), _CMP_LT_OQ));
  };
  y = select(below(eg::kMayUnderflow),
             _mm256_castsi256_ps(_mm256_set1_epi32(1)), y);
  y = select(below(eg::kUnderflow), _mm256_setzero_ps(), y);
  __m256 over = _mm256_and_ps(
      special, _mm256_cmp_ps(x, _mm256_set1_ps(eg::kOverflow), _CMP_GT_OQ));
  y = select(over, _mm256_set1_ps(__builtin_inff()), y);
  __m256 nanInf =
      _mm256_castsi256_ps(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x7f7)));
  y = select(nanInf, _mm256_add_ps(x, x), y);
  __m256 negInf = _mm256_castsi256_ps(
      _mm256_cmpeq_epi32(bits, _mm256_set1_epi32(int32_t(0xff800000u))));
  return select(negInf, _mm256_setzero_ps(), y);
}

} // namespace

void dsrt::cpu::expfRowAvx2(const float *x, int64_t n, float *y) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, expf8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) // libm's: the same bits on this CPU
    y[i] = __builtin_expf(x[i]);
}

void dsrt::cpu::siluMulRowAvx2(const float *g, const float *u, int64_t n,
                               float *y) {
  const __m256 one = _mm256_set1_ps(1.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 gv = _mm256_loadu_ps(g + i);
    // -g as the scalar code negates: the sign bit flipped.
    __m256 e = expf8(_mm256_xor_ps(gv, _mm256_set1_ps(-0.0f)));
    __m256 s = _mm256_div_ps(gv, _mm256_add_ps(one, e));
    _mm256_storeu_ps(y + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i)
    y[i] = g[i] / (1.0f + __builtin_expf(-g[i])) * u[i];
}

#else
void dsrt::cpu::expfRowAvx2(const float *, int64_t, float *) {
  __builtin_trap(); // never called: no CPU here has AVX2
}
void dsrt::cpu::siluMulRowAvx2(const float *, const float *, int64_t, float *) {
  __builtin_trap();
}
#endif
