//===- Bf16Gemm.h - GEMMs over weights kept in bf16 -------------*- C++ -*-===//
//
// A bf16 checkpoint's GEMM-only weights stay bf16 in memory: half the bytes
// of f32, and decode is a matrix-vector product bound by memory bandwidth.
// Activations and accumulation stay f32, so the result equals the f32
// product of the same (bf16-valued) weights up to summation order.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_BF16GEMM_H
#define DSRT_CPU_BF16GEMM_H

#include "cpu/MemRef.h"

#include <cstdint>
#include <string>

namespace dsrt::cpu {

/// A row-major bf16 matrix [rows, cols] with row stride `ld` (elements).
struct Bf16Matrix {
  const uint16_t *data;
  int64_t rows, cols, ld;
};

/// y[T, N] = x[T, K] * w[N, K]^T. "" or a description of a shape mismatch.
std::string linearBf16(const MemRef<float, 2> &x, const Bf16Matrix &w,
                       const MemRef<float, 2> &y);

/// silu(x w[:F]^T) * (x w[F:]^T) for a packed bf16 [2F, K] weight.
std::string linearSiluMulBf16(const MemRef<float, 2> &x, const Bf16Matrix &w,
                              const MemRef<float, 2> &y);

/// For each expert e, rows [offsets[e], offsets[e+1]) of x times w_e^T,
/// where w_e = base + e * expertStride ([n, k] each).
std::string groupedLinearBf16(const MemRef<float, 2> &x, const uint16_t *base,
                              int64_t experts, int64_t n, int64_t k,
                              int64_t expertStride,
                              const MemRef<int32_t, 1> &offsets,
                              const MemRef<float, 2> &y);

/// bf16 bits -> f32 (exact).
inline float bf16ToF32(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

} // namespace dsrt::cpu

#endif // DSRT_CPU_BF16GEMM_H
