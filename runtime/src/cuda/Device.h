//===- Device.h - a model and its sessions on the GPU -----------*- C++ -*-===//
//
// What the CUDA backend keeps per model (weights uploaded once, f32) and
// per session (stream, cuBLAS handle, latent cache, I/O buffers, an arena
// for the activations). Generated host code reaches the session through
// `Execution::current()`, set by the runtime around each entry-point call.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CUDA_DEVICE_H
#define DSRT_CUDA_DEVICE_H

#include "cuda/CudaApi.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsrt::cuda {

/// Device memory owned by one object (freed with it).
class DeviceBuffer {
public:
  DeviceBuffer() = default;
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  DeviceBuffer(DeviceBuffer &&o) noexcept { *this = std::move(o); }
  DeviceBuffer &operator=(DeviceBuffer &&o) noexcept;

  /// Frees what was held and allocates `bytes`; "" or the error.
  std::string allocate(const Gpu &g, size_t bytes);
  CUdeviceptr ptr() const { return p; }
  size_t size() const { return bytes; }
  template <typename T> T *as() const { return reinterpret_cast<T *>(p); }

private:
  const Gpu *g = nullptr;
  CUdeviceptr p = 0;
  size_t bytes = 0;
};

/// Activation memory. Generated code allocates and frees buffers as it
/// goes (mgpuMemAlloc/Free); the arena serves them by bumping a pointer
/// and forgets them all when the next call starts. A call that outgrows
/// the arena falls back to driver allocations once; the arena is then
/// regrown to that peak, so a decode step in steady state makes no driver
/// allocation (`driverAllocations` counts them).
class Arena {
public:
  explicit Arena(const Gpu &g) : g(g) {}
  ~Arena();
  /// Starts a call: everything handed out before is dead.
  std::string reset();
  void *allocate(size_t bytes, std::string &error);
  size_t peakBytes() const { return peak; }
  int64_t driverAllocations = 0;

private:
  const Gpu &g;
  CUdeviceptr base = 0;
  size_t capacity = 0, used = 0, peak = 0;
  std::vector<CUdeviceptr> overflow;
};

/// The weights of a model on the device, in binding order.
struct DeviceModel {
  std::vector<DeviceBuffer> weights;
};

struct DeviceSession {
  explicit DeviceSession(const Gpu &g) : g(g), arena(g) {}
  ~DeviceSession();
  const Gpu &g;
  CUstream stream = nullptr;
  cublasHandle_t blas = nullptr;
  const Cublas *cublasApi = nullptr;
  DeviceBuffer cache, tokens, positions, logits;
  Arena arena;
};

/// One entry-point call in flight on this thread; the mgpu* functions and
/// the GEMM calls use its stream and arena and record the first failure
/// (generated code has no way to receive an error).
struct Execution {
  DeviceSession *session = nullptr;
  std::string error;
  void fail(const std::string &e) {
    if (error.empty())
      error = e;
  }
  static Execution *&current();
};

/// Errors of module loads run by the artifact's constructors during
/// dlopen (before any session exists); the loader reads and clears it.
std::string &moduleLoadError();

} // namespace dsrt::cuda

#endif // DSRT_CUDA_DEVICE_H
