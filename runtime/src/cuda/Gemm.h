//===- Gemm.h - GEMMs on the GPU (cuBLAS) -----------------------*- C++ -*-===//
#ifndef DSRT_CUDA_GEMM_H
#define DSRT_CUDA_GEMM_H

#include "cpu/MemRef.h"

#include <string>

namespace dsrt::cuda {

/// y[T, N] = x[T, K] w[N, K]^T on device pointers; "" or what went wrong.
/// With `bf16Weights` w's storage is bf16 (a GEMM-only binding of a bf16
/// checkpoint): x is converted to bf16 and cublasGemmEx accumulates in f32.
std::string linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                   const MemRef<float, 2> &y, bool bf16Weights = false);

/// Per expert e, rows [offsets[e], offsets[e+1]) of x times w[e]^T.
std::string groupedLinear(const MemRef<float, 3> &w, const MemRef<float, 2> &x,
                          const MemRef<int32_t, 1> &offsets,
                          const MemRef<float, 2> &y, bool bf16Weights = false);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_GEMM_H
