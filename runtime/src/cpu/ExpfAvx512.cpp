//===- ExpfAvx512.cpp - glibc's expf on 16 lanes --------------------------===//
//
// Compiled with -mavx512f -mfma (runtime/src/engine.cmake); only called on
// CPUs with AVX-512F (the avx512 sets). The algorithm: ExpfConstants.h.
//
//===----------------------------------------------------------------------===//
#include "cpu/Expf.h"
#include "cpu/ExpfConstants.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;
namespace eg = dsrt::cpu::expf_glibc;

namespace {

/// e_expf.c's common path on 8 lanes of double, operation for operation
/// as __expf_fma computes it (FMA where it contracts, plain products and
/// sums elsewhere), then rounded to float.
__m256 commonPath(__m256 x) {
  const __m512d invLn2N = _mm512_set1_pd(eg::kInvLn2N);
  const __m512d shift = _mm512_set1_pd(eg::kShift);
  __m512d xd = _mm512_cvtps_pd(x);
  __m512d kd = _mm512_fmadd_pd(invLn2N, xd, shift);
  // k in the low bits of the sum's mantissa.
  __m512i ki = _mm512_castpd_si512(kd);
  kd = _mm512_sub_pd(kd, shift);
  __m512d r = _mm512_fmsub_pd(invLn2N, xd, kd);
  // 2^(k / 32): the table's entry for k mod 32, its exponent raised by
  // k / 32 (glibc adds k << 47 to entries stored less i << 47: the same
  // bits).
  const double *tab = eg::kExp2Table;
  __m512i t0 = _mm512_castpd_si512(_mm512_load_pd(tab));
  __m512i t1 = _mm512_castpd_si512(_mm512_load_pd(tab + 8));
  __m512i t2 = _mm512_castpd_si512(_mm512_load_pd(tab + 16));
  __m512i t3 = _mm512_castpd_si512(_mm512_load_pd(tab + 24));
  __m512i low = _mm512_permutex2var_epi64(t0, ki, t1);
  __m512i high = _mm512_permutex2var_epi64(t2, ki, t3);
  __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
  __m512i t = _mm512_mask_blend_epi64(upper, low, high);
  t = _mm512_add_epi64(t, _mm512_slli_epi64(_mm512_srli_epi64(ki, 5), 52));
  __m512d s = _mm512_castsi512_pd(t);
  __m512d z =
      _mm512_fmadd_pd(_mm512_set1_pd(eg::kC0), r, _mm512_set1_pd(eg::kC1));
  __m512d r2 = _mm512_mul_pd(r, r);
  __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(eg::kC2), _mm512_set1_pd(1.0));
  y = _mm512_fmadd_pd(z, r2, y);
  return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

__m512 expf16(__m512 x) {
  __m256 lo = commonPath(_mm512_castps512_ps256(x));
  __m256 hi = commonPath(
      _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
  __m512 y = _mm512_castpd_ps(_mm512_insertf64x4(
      _mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
  __m512i bits = _mm512_castps_si512(x);
  __m512i top =
      _mm512_and_si512(_mm512_srli_epi32(bits, 20), _mm512_set1_epi32(0x7ff));
  __mmask16 special =
      _mm512_cmpgt_epi32_mask(top, _mm512_set1_epi32(eg::kSpecialTop));
  if (!special) // |x| < 88 everywhere: the common case
    return y;
  // Later assignments take precedence: e_expf.c's order reversed.
  __mmask16 mayUnder =
      special &
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(eg::kMayUnderflow), _CMP_LT_OQ);
  y = _mm512_mask_mov_ps(y, mayUnder,
                         _mm512_castsi512_ps(_mm512_set1_epi32(1)));
  __mmask16 under =
      special &
      _mm512_cmp_ps_mask(x, _mm512_set1_ps(eg::kUnderflow), _CMP_LT_OQ);
  y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
  __mmask16 over = special & _mm512_cmp_ps_mask(
                                 x, _mm512_set1_ps(eg::kOverflow), _CMP_GT_OQ);
  y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(__builtin_inff()));
  __mmask16 nanInf =
      special & _mm512_cmpgt_epi32_mask(top, _mm512_set1_epi32(0x7f7));
  y = _mm512_mask_add_ps(y, nanInf, x, x);
  __mmask16 negInf =
      _mm512_cmpeq_epi32_mask(bits, _mm512_set1_epi32(int32_t(0xff800000u)));
  return _mm512_mask_mov_ps(y, negInf, _mm512_setzero_ps());
}

inline __mmask16 tailMask(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

} // namespace

void dsrt::cpu::expfRowAvx512(const float *x, int64_t n, float *y) {
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    _mm512_mask_storeu_ps(y + i, m, expf16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

void dsrt::cpu::siluMulRowAvx512(const float *g, const float *u, int64_t n,
                                 float *y) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = tailMask(n - i);
    __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
    // -g as the scalar code negates: the sign bit flipped.
    __m512 e = expf16(_mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(gv), _mm512_set1_epi32(int32_t(0x80000000u)))));
    __m512 s = _mm512_div_ps(gv, _mm512_add_ps(one, e));
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_mul_ps(s, _mm512_maskz_loadu_ps(m, u + i)));
  }
}

#else
void dsrt::cpu::expfRowAvx512(const float *, int64_t, float *) {
  __builtin_trap(); // never called: no CPU here has AVX-512
}
void dsrt::cpu::siluMulRowAvx512(const float *, const float *, int64_t,
                                 float *) {
  __builtin_trap();
}
#endif
