//===- Convert.h - f32 -> bf16 on the device, for cuBLAS --------*- C++ -*-===//
//
// cublasGemmEx wants both operands in one type: activations are converted
// to bf16 before a GEMM against bf16 weights. The runtime has no compiler:
// the kernel ships as PTX (sm_80 and later JIT it), checked with ptxas by
// the tests.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CUDA_CONVERT_H
#define DSRT_CUDA_CONVERT_H

#include "cuda/CudaApi.h"

#include <string>

namespace dsrt::cuda {

/// The PTX of `dsrt_f32_to_bf16(dst, src, n)`.
const char *conversionPtx();

/// dst[i] = bf16(src[i]) for i < n, on `stream`; "" or what failed.
std::string convertToBf16(const Gpu &g, CUstream stream, CUdeviceptr dst,
                          CUdeviceptr src, size_t n);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_CONVERT_H
