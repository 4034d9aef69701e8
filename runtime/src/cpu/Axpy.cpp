//===- Axpy.cpp - y += a * row for the row-combining kernels --------------===//
#include "cpu/Axpy.h"

using namespace dsrt::cpu;

namespace {

void axpyPortable(float a, const float *row, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * row[i];
}

#if defined(__x86_64__) && defined(__clang__)
/// The same loop compiled for AVX2 + FMA (8 lanes, fused).
__attribute__((target("avx2,fma"))) void axpyAvx2(float a, const float *row,
                                                  int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * row[i];
}

/// And for AVX-512 (16 lanes): each element's one fused add as AVX2's, so
/// the same bits (LatentAttend.Avx512GivesTheAvx2Bits covers the
/// attention's merge through it).
__attribute__((target("avx512f,fma"))) void
axpyAvx512(float a, const float *row, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * row[i];
}
#endif

} // namespace

Axpy dsrt::cpu::axpyFor(Isa isa) {
#if defined(__x86_64__) && defined(__clang__)
  if (isa >= Isa::Avx512)
    return axpyAvx512;
  if (isa >= Isa::Avx2)
    return axpyAvx2;
#endif
  (void)isa;
  return axpyPortable;
}
