//===- Gemm.h - GEMMs on the GPU (cuBLAS) -----------------------*- C++ -*-===//
#ifndef DSRT_CUDA_GEMM_H
#define DSRT_CUDA_GEMM_H

#include "cpu/MemRef.h"

#include <string>

namespace dsrt::cuda {

/// y[T, N] = x[T, K] w[N, K]^T on device pointers; "" or what went wrong.
std::string linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                   const MemRef<float, 2> &y);

/// Per expert e, rows [offsets[e], offsets[e+1]) of x times w[e]^T.
std::string groupedLinear(const MemRef<float, 3> &w, const MemRef<float, 2> &x,
                          const MemRef<int32_t, 1> &offsets,
                          const MemRef<float, 2> &y);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_GEMM_H
