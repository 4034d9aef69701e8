//===- Gemm.h - the GEMMs generated CPU code delegates to -------*- C++ -*-===//
//
// Kernel-level IR keeps matrix products as calls (dsrt_linear_f32,
// dsrt_linear_silu_mul_f32, dsrt_grouped_linear_f32). These functions take
// the memref views the generated code holds, with whatever strides it gives
// them, and the weight where it lies (WeightMatrix: f32, bf16 or FP8 in
// the mmapped checkpoint). They run on the kernel set of activeIsa().
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_GEMM_H
#define DSRT_CPU_GEMM_H

#include "cpu/MemRef.h"
#include "cpu/WeightMatrix.h"

#include <string>

namespace dsrt::cpu {

/// y[T, N] = x[T, K] * w[N, K]^T (a HF linear layer). T may be 0. Returns ""
/// or a description of inconsistent shapes (then nothing is written).
std::string linear(const MemRef<float, 2> &x, const WeightMatrix &w,
                   const MemRef<float, 2> &y);
std::string linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                   const MemRef<float, 2> &y);

/// y[T, F] = silu(x w[:F]^T) * (x w[F:]^T) for a packed [2F, K] w: each
/// thread computes the gate and up values of a block of columns into a
/// small local buffer and writes only the product (the GEMM's epilogue).
std::string linearSiluMul(const MemRef<float, 2> &x, const WeightMatrix &w,
                          const MemRef<float, 2> &y);
std::string linearSiluMul(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                          const MemRef<float, 2> &y);

/// out[t] = table[ids[t]] (ds.embedding), the table in its stored format.
/// Returns "" or a description of inconsistent shapes or an id out of
/// range (then nothing is written).
std::string embedding(const WeightMatrix &table, const MemRef<int32_t, 1> &ids,
                      const MemRef<float, 2> &out);
std::string embedding(const MemRef<float, 2> &table,
                      const MemRef<int32_t, 1> &ids,
                      const MemRef<float, 2> &out);

/// silu(g) * u as the generated kernels compute it.
inline float siluMul(float g, float u) {
  return g / (1.0f + __builtin_expf(-g)) * u;
}

/// For each expert e, rows [offsets[e], offsets[e+1]) of x times w_e^T into
/// the same rows of y, where w_e is rows [e * N, (e + 1) * N) of w; rows of
/// no group are left untouched. Returns "" or a description of
/// inconsistent shapes or offsets (then nothing is written).
///
/// With rowOfSlot (ds.grouped_matmul's gather form) x is the tokens' rows
/// and row r of the product is token s / k's for the slot s with
/// rowOfSlot[s] = r (k slots a token): y has a row per slot, and
/// rowOfSlot must be a permutation of them.
std::string groupedLinear(const MemRef<float, 2> &x, const WeightMatrix &w,
                          int64_t experts, const MemRef<int32_t, 1> &offsets,
                          const MemRef<float, 2> &y,
                          const MemRef<int32_t, 1> *rowOfSlot = nullptr);
std::string groupedLinear(const MemRef<float, 2> &x, const MemRef<float, 3> &w,
                          const MemRef<int32_t, 1> &offsets,
                          const MemRef<float, 2> &y,
                          const MemRef<int32_t, 1> *rowOfSlot = nullptr);

/// y = silu(groupedLinear(x, gate)) * groupedLinear(x, up) for gate and up
/// of one shape and format, each group's x packed once for both
/// (matmulGroupsSiluMul): the routed experts' gate, up and SiLU-mul. The
/// same checks; nothing is written on an error.
std::string groupedLinearSiluMul(const MemRef<float, 2> &x,
                                 const WeightMatrix &gate,
                                 const WeightMatrix &up, int64_t experts,
                                 const MemRef<int32_t, 1> &offsets,
                                 const MemRef<float, 2> &y,
                                 const MemRef<int32_t, 1> *rowOfSlot = nullptr);
std::string groupedLinearSiluMul(const MemRef<float, 2> &x,
                                 const MemRef<float, 3> &gate,
                                 const MemRef<float, 3> &up,
                                 const MemRef<int32_t, 1> &offsets,
                                 const MemRef<float, 2> &y,
                                 const MemRef<int32_t, 1> *rowOfSlot = nullptr);

} // namespace dsrt::cpu

#endif // DSRT_CPU_GEMM_H
