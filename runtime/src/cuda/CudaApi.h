//===- CudaApi.h - the CUDA driver and cuBLAS, reached by dlopen -*- C++ -*-===//
//
// libdsrt never links libcuda or libcublas: one build runs on machines with
// and without a GPU, and a missing driver is an error value, not a process
// that fails to start. Only the entry points the runtime uses are declared,
// with the driver's ABI types spelled out (no CUDA headers at build time).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CUDA_CUDAAPI_H
#define DSRT_CUDA_CUDAAPI_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dsrt::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using cublasHandle_t = struct cublasContext *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;

struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDriverGetVersion)(int *);
  CUresult (*cuDeviceGetCount)(int *);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDeviceGetName)(char *, int, CUdevice);
  CUresult (*cuDeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemGetInfo)(size_t *, size_t *);
  CUresult (*cuMemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*cuMemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*cuMemsetD32Async)(CUdeviceptr, unsigned, size_t, CUstream);
  CUresult (*cuMemsetD16Async)(CUdeviceptr, unsigned short, size_t, CUstream);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamSynchronize)(CUstream);
  CUresult (*cuModuleLoadData)(CUmodule *, const void *);
  CUresult (*cuModuleUnload)(CUmodule);
  CUresult (*cuModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*cuLaunchKernel)(CUfunction, unsigned, unsigned, unsigned,
                             unsigned, unsigned, unsigned, unsigned, CUstream,
                             void **, void **);
  CUresult (*cuGetErrorName)(CUresult, const char **);
};

struct Cublas {
  int (*create)(cublasHandle_t *);
  int (*destroy)(cublasHandle_t);
  int (*setStream)(cublasHandle_t, CUstream);
  int (*sgemm)(cublasHandle_t, int, int, int, int, int, const float *,
               const float *, int, const float *, int, const float *, float *,
               int);
  /// cublasGemmEx: C(type) = alpha op(A) op(B) + beta C, compute type.
  int (*gemmEx)(cublasHandle_t, int, int, int, int, int, const void *,
                const void *, int, int, const void *, int, int, const void *,
                void *, int, int, int, int);
};
constexpr int CUDA_R_32F = 0, CUDA_R_16BF = 14;
constexpr int CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1;

/// The process's GPU: driver loaded, device 0's primary context current on
/// the calling thread. nullptr and `error` (one line) when there is no
/// driver or no device; the answer is computed once.
struct Gpu {
  Driver drv{};
  CUdevice device = 0;
  CUcontext context = nullptr;
  std::string name;
  int ccMajor = 0, ccMinor = 0;
  /// Makes the context current on this thread (sessions may move threads).
  void bind() const;
  /// "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY".
  std::string describe(const char *call, CUresult r) const;
};
const Gpu *gpu(std::string &error);

/// Loads the driver at `path` and sets up device 0 (what gpu() does once
/// with $DSRT_CUDA_DRIVER or libcuda.so.1); for tests.
std::unique_ptr<Gpu> loadGpu(const std::string &path, std::string &error);

/// cuBLAS, loaded on first use (libcublas.so.13, .12 or .11).
const Cublas *cublas(std::string &error);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_CUDAAPI_H
