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
#include <vector>

namespace dsrt::cuda {

using CUresult = int;
using CUdevice = int;
using CUdeviceptr = unsigned long long;
using CUcontext = struct CUctx_st *;
using CUmodule = struct CUmod_st *;
using CUfunction = struct CUfunc_st *;
using CUstream = struct CUstream_st *;
using CUgraph = struct CUgraph_st *;
using CUgraphExec = struct CUgraphExec_st *;
using cublasHandle_t = struct cublasContext *;

constexpr CUresult CUDA_SUCCESS = 0;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75;
constexpr int CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76;
constexpr int CUBLAS_OP_N = 0, CUBLAS_OP_T = 1;

/// The driver's entry points (CudaSymbols.inc), looked up by loadGpu.
struct Driver {
#define DSRT_CU_SYM(field, symbol, params) CUresult(*field) params = nullptr;
#define DSRT_CU_OPT_SYM(field, symbol, params)                                 \
  CUresult(*field) params = nullptr;
#include "cuda/CudaSymbols.inc"
  /// Whether every stream-capture and graph entry point is there.
  bool hasGraphs() const {
    return cuStreamBeginCapture && cuStreamEndCapture && cuGraphInstantiate &&
           cuGraphExecUpdate && cuGraphLaunch && cuGraphDestroy &&
           cuGraphExecDestroy;
  }
};

/// cuBLAS's entry points (CudaSymbols.inc), looked up by cublas().
struct Cublas {
#define DSRT_CUBLAS_SYM(field, symbol, params) int(*field) params = nullptr;
#define DSRT_CUBLAS_OPT_SYM(field, symbol, params)                             \
  int(*field) params = nullptr;
#include "cuda/CudaSymbols.inc"
};
constexpr int CUDA_R_32F = 0, CUDA_R_16BF = 14;
constexpr int CUBLAS_COMPUTE_32F = 68, CUBLAS_GEMM_DEFAULT = -1;
constexpr int CUBLAS_STATUS_NOT_SUPPORTED = 15;

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
  CUresult bind() const;
  /// "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY".
  std::string describe(const char *call, CUresult r) const;
};
const Gpu *gpu(std::string &error);

/// Loads the driver at `path` and sets up device 0 (what gpu() does once
/// with $DSRT_CUDA_DRIVER or libcuda.so.1); for tests.
std::unique_ptr<Gpu> loadGpu(const std::string &path, std::string &error);

/// cuBLAS, loaded on first use from the first of cublasCandidates() that
/// loads and has every entry point.
const Cublas *cublas(std::string &error);

/// Where cuBLAS is looked for, in order: $DSRT_CUBLAS, then libcublas.so.13,
/// .12, .11 in $CUDA_HOME/lib64, /usr/local/cuda/lib64 and pip's nvidia
/// wheel folders (site-packages/nvidia/cublas/lib, or nvidia/cu13/lib),
/// then the bare sonames (the loader's own search path). `home` and
/// `sitePackages` come from the environment and sys.path-like folders.
std::vector<std::string>
cublasCandidates(const char *env, const char *home,
                 const std::vector<std::string> &sitePackages);

/// Loads cuBLAS from `path` (cublasLt from the same folder first, so a
/// wheel's or toolkit's copy is not resolved against another version);
/// nullptr and `error` when it does not load or lacks an entry point.
std::unique_ptr<Cublas> loadCublas(const std::string &path,
                                   std::string &error);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_CUDAAPI_H
