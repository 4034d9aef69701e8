//===- NaiveAttendInline.h - the attend step's softmax per ISA --*- C++ -*-===//
//
// AttendKernels::softmaxTile written once over a vector type V (scalar,
// AVX2, AVX-512), included by each ISA's file: internal linkage, so every
// file keeps its own copy built with its flags (Kernels.h's rule).
//
// V provides: W (lanes), T (vector), M (lane mask), load/store/set1,
// add/sub/mul/max, lt/eq (masks), select(m, a, b) (a where m), exp.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_NAIVEATTENDINLINE_H
#define DSRT_CPU_NAIVEATTENDINLINE_H

#include "cpu/NaiveAttend.h"

namespace dsrt::cpu {
namespace {

/// Two passes over each group of W tokens' columns: masked, scaled scores
/// and their max; then p = exp(score - max). The running max takes part in
/// the max, so p <= 1 and the merge with earlier chunks is the usual
/// log-sum-exp rescaling (corr = exp(old max - new max)).
template <class V>
void softmaxTileT(float *s, int64_t rows, const float *lim, float scale,
                  float *m, float *corr, float *psum) {
  const typename V::T negInf = V::set1(-__builtin_inff());
  const typename V::T zero = V::set1(0.0f), one = V::set1(1.0f);
  const typename V::T sc = V::set1(scale);
  for (int g = 0; g < kAttendTokens; g += V::W) {
    typename V::T lg = V::load(lim + g), rf = zero, mx = negInf;
    for (int64_t r = 0; r < rows; ++r) {
      float *p = s + r * kAttendTokens + g;
      typename V::T v = V::select(V::lt(rf, lg), V::mul(V::load(p), sc), negInf);
      V::store(p, v);
      mx = V::max(mx, v);
      rf = V::add(rf, one);
    }
    typename V::T old = V::load(m + g), nm = V::max(old, mx);
    // A token that has attended nothing yet and nothing here: exp(-inf -
    // 0) = 0 for everything instead of -inf - -inf = NaN.
    typename V::T base = V::select(V::eq(nm, negInf), zero, nm);
    V::store(m + g, nm);
    V::store(corr + g, V::exp(V::sub(old, base)));
    typename V::T sum = zero;
    for (int64_t r = 0; r < rows; ++r) {
      float *p = s + r * kAttendTokens + g;
      typename V::T e = V::exp(V::sub(V::load(p), base));
      V::store(p, e);
      sum = V::add(sum, e);
    }
    V::store(psum + g, sum);
  }
}

template <class V> void expInPlaceT(float *x, int64_t n) {
  int64_t i = 0;
  for (; i + V::W <= n; i += V::W)
    V::store(x + i, V::exp(V::load(x + i)));
  // The tail through a full vector: no masked loads needed per ISA.
  if (i < n) {
    float buf[V::W] = {};
    for (int64_t j = i; j < n; ++j)
      buf[j - i] = x[j];
    V::store(buf, V::exp(V::load(buf)));
    for (int64_t j = i; j < n; ++j)
      x[j] = buf[j - i];
  }
}

// Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two so n ln2
// is exact), exp(r) by a degree-7 polynomial, 2^n through the exponent
// bits. Within 1-2 ulp of expf; 0 where expf goes subnormal.
constexpr float kExpHi = 88.3762626647949f, kExpLo = -87.3365447504019f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpP[6] = {1.9875691500e-4f, 1.3981999507e-3f,
                            8.3334519073e-3f, 4.1665795894e-2f,
                            1.6666665459e-1f, 5.0000001201e-1f};

} // namespace
} // namespace dsrt::cpu

#endif // DSRT_CPU_NAIVEATTENDINLINE_H
