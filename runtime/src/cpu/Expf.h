//===- Expf.h - glibc's expf and the SiLU over vector lanes -----*- C++ -*-===//
//
// KernelSet::expfRow and siluMulRow of the vector sets, each compiled with
// its ISA's flags (ExpfAvx2.cpp, ExpfAvx512.cpp) and called only on CPUs
// that have it. The algorithm and why it is glibc's: ExpfConstants.h.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_EXPF_H
#define DSRT_CPU_EXPF_H

#include <cstdint>

namespace dsrt::cpu {

/// y[i] = expf(x[i]) for i < n, bit for bit glibc's on CPUs with FMA and
/// AVX2 (y may be x).
void expfRowAvx2(const float *x, int64_t n, float *y);
void expfRowAvx512(const float *x, int64_t n, float *y);

/// y[i] = g[i] / (1 + expf(-g[i])) * u[i] for i < n: Gemm.h's siluMul,
/// bit for bit, over a row.
void siluMulRowAvx2(const float *g, const float *u, int64_t n, float *y);
void siluMulRowAvx512(const float *g, const float *u, int64_t n, float *y);

} // namespace dsrt::cpu

#endif // DSRT_CPU_EXPF_H
