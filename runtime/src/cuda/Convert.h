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

#include <cstdint>
#include <string>

namespace dsrt::cuda {

/// The PTX of the runtime's module: `dsrt_f32_to_bf16(dst, src, n)` and
/// `dsrt_expert_rows` (below).
const char *conversionPtx();

/// dst[i] = bf16(src[i]) for i < n, on `stream`; "" or what failed.
std::string convertToBf16(const Gpu &g, CUstream stream, CUdeviceptr dst,
                          CUdeviceptr src, size_t n);

/// The pointer arrays of a MoE layer's products one row at a time,
/// computed on the device from the device offsets: a decode step's expert
/// GEMMs then need no host read of the offsets (no wait on the stream).
/// Strides are in bytes; `pointers` holds 3 * rows device pointers (A of
/// every row, then B, then C).
struct ExpertRows {
  CUdeviceptr pointers, offsets;
  uint64_t experts, rows;
  CUdeviceptr w;
  uint64_t wStride;
  CUdeviceptr x;
  uint64_t xStride;
  CUdeviceptr y;
  uint64_t yStride;
};
std::string expertRowPointers(const Gpu &g, CUstream stream,
                              const ExpertRows &a);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_CONVERT_H
