//===- Gemm.h - the GEMMs generated CPU code delegates to BLAS --*- C++ -*-===//
//
// Kernel-level IR keeps matrix products as calls (dsrt_linear_f32,
// dsrt_grouped_linear_f32) because OpenBLAS beats any loop nest we would
// generate. These functions take the memref views the generated code holds,
// with whatever strides it gives them.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_GEMM_H
#define DSRT_CPU_GEMM_H

#include "cpu/MemRef.h"

#include <string>

namespace dsrt::cpu {

/// y[T, N] = x[T, K] * w[N, K]^T (a HF linear layer). T may be 0. Returns ""
/// or a description of inconsistent shapes (then nothing is written).
std::string linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                   const MemRef<float, 2> &y);

/// y[T, F] = silu(x w[:F]^T) * (x w[F:]^T) for a packed [2F, K] w: each
/// thread computes the gate and up values of a block of columns into a
/// small local buffer and writes only the product (the GEMM's epilogue).
std::string linearSiluMul(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                          const MemRef<float, 2> &y);

/// silu(g) * u as the generated kernels compute it.
inline float siluMul(float g, float u) { return g / (1.0f + __builtin_expf(-g)) * u; }

/// For each expert e, rows [offsets[e], offsets[e+1]) of x times w[e]^T into
/// the same rows of y; rows of no group are left untouched. Returns "" or a
/// description of inconsistent shapes or offsets (then nothing is written).
std::string groupedLinear(const MemRef<float, 2> &x, const MemRef<float, 3> &w,
                          const MemRef<int32_t, 1> &offsets,
                          const MemRef<float, 2> &y);

} // namespace dsrt::cpu

#endif // DSRT_CPU_GEMM_H
