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
#include <map>
#include <memory>
#include <string>
#include <utility>
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
/// goes (mgpuMemAlloc/Free, last allocated first freed); the arena serves
/// them from one block by bumping a pointer and takes a buffer back when
/// it is freed from the top, so the footprint is the peak of live buffers,
/// not their sum. A free out of order is kept until the buffers above it
/// go. A call that outgrows the block falls back to driver allocations;
/// the next call regrows the block to that peak, so a decode step in
/// steady state makes no driver allocation (`driverAllocations` counts
/// them). Reuse is safe without waiting: every user of the memory runs on
/// the session's one stream, in program order.
class Arena {
public:
  explicit Arena(const Gpu &g) : g(g) {}
  ~Arena();
  /// Starts a call: everything handed out before is dead.
  std::string reset();
  void *allocate(size_t bytes, std::string &error);
  /// Gives back a buffer of this arena (others are ignored).
  void release(void *p);
  /// Whether `p` lies in memory this arena handed out (its block or an
  /// overflow allocation of this call).
  bool contains(const void *p) const;
  size_t peakBytes() const { return peak; }
  size_t liveBytes() const { return footprint; }
  int64_t driverAllocations = 0;

private:
  struct Entry {
    CUdeviceptr p;
    size_t bytes;
    bool inBlock, released;
  };
  const Gpu &g;
  CUdeviceptr base = 0;
  size_t capacity = 0, used = 0, peak = 0, footprint = 0;
  std::vector<Entry> stack;
  std::vector<std::pair<CUdeviceptr, size_t>> overflow;
};

/// The weights of a model on the device, in binding order.
struct DeviceModel {
  std::vector<DeviceBuffer> weights;
};

/// The host-side arguments of one cublasGemmGroupedBatchedEx (per group,
/// and the A, B, C pointers of every problem), kept by the session so a
/// decode step does not reallocate them.
struct GroupedArgs {
  std::vector<int> transA, transB, m, n, k, lda, ldb, ldc, groupSize;
  std::vector<float> alpha, beta;
  std::vector<const void *> pointers;
  void clear() {
    for (auto *v : {&transA, &transB, &m, &n, &k, &lda, &ldb, &ldc,
                    &groupSize})
      v->clear();
    alpha.clear();
    beta.clear();
    pointers.clear();
  }
};

/// The CUDA graph of one call shape (entry point, tokens): see Graph.h.
struct StepGraph {
  CUgraphExec exec = nullptr;
  int64_t calls = 0;
  /// A capture of this shape failed (a host wait): never captured again.
  bool broken = false;
};

struct DeviceSession {
  explicit DeviceSession(const Gpu &g) : g(g), arena(g) {}
  ~DeviceSession();
  const Gpu &g;
  CUstream stream = nullptr;
  cublasHandle_t blas = nullptr;
  const Cublas *cublasApi = nullptr;
  DeviceBuffer cache, tokens, positions, logits;
  /// The bf16 copy of a GEMM's activations for cublasGemmEx: one per
  /// session, grown to the largest GEMM (after the stream drains).
  DeviceBuffer staging;
  Arena arena;
  /// Whether `p` is device memory of this session (the scalars generated
  /// code copies back land in host memory: on a failed call they are
  /// zeroed there, never here).
  bool isDevice(const void *p) const;
  /// A staging buffer of at least `bytes`; nullptr and `error` on failure.
  void *stagingFor(size_t bytes, std::string &error);
  /// The pointer arrays of a decode step's per-row expert GEMMs: one per
  /// session (the GEMMs of a step use it in stream order), outside the
  /// arena so a step's memory layout does not depend on it.
  DeviceBuffer rowPointers;
  void *rowPointersFor(size_t bytes, std::string &error);
  GroupedArgs grouped;
  /// cuBLAS answered NOT_SUPPORTED to a grouped GEMM of bf16 inputs with
  /// an f32 output: bf16 grouped GEMMs go expert by expert.
  bool groupedBf16Unsupported = false;
  /// cuBLAS answered NOT_SUPPORTED to the per-row batched GEMM of a decode
  /// step's experts: they go through the offsets read instead.
  bool perRowUnsupported = false;
  /// Executable graphs by (entry point, tokens), graph launches made, and
  /// captures that fell back to plain launches (the last reason).
  std::map<std::pair<const void *, int64_t>, StepGraph> graphs;
  int64_t graphLaunches = 0, graphFallbacks = 0;
  std::string graphNote;
};

/// One entry-point call in flight on this thread; the mgpu* functions and
/// the GEMM calls use its stream and arena and record the first failure
/// (generated code has no way to receive an error).
///
/// After the first failure every later GEMM, copy, memset and launch of the
/// call is skipped: device memory may be gone or half written, and a GEMM
/// on an unallocated buffer would read anywhere. Host scalars the code
/// copies back are zeroed instead, so no loop bound comes from garbage.
struct Execution {
  DeviceSession *session = nullptr;
  std::string error;
  /// Tokens of context after this call (session position + tokens): what
  /// the attention kernels size their split count by.
  int64_t contextTokens = 0;
  void fail(const std::string &e) {
    if (error.empty())
      error = e;
  }
  bool failed() const { return !error.empty(); }
  static Execution *&current();

  /// The expert offsets a grouped GEMM last read back, by device address:
  /// the gate, up and down GEMMs of a MoE layer share one read. A copy, a
  /// memset or a launch may write device memory, so each of them forgets
  /// it, except the SiLU-mul launch between the up and down GEMMs
  /// (MgpuAbi.cpp, keepsOffsets).
  const void *offsetsAt = nullptr;
  std::vector<int32_t> offsetsHost;
  void forgetOffsets() { offsetsAt = nullptr; }

  /// The call's work is being captured into a graph (Graph.h): nothing
  /// runs yet, so a host read of device memory cannot be answered; it
  /// fails the capture, and the call runs again without it.
  bool capturing = false;
  /// Fails the call when it is being captured; true then.
  bool refuseHostWait(const char *what) {
    if (capturing)
      fail(std::string("graph capture: ") + what + " waits on the host");
    return capturing;
  }
};

/// A stream, a cuBLAS handle on it, a zeroed cache of `cacheBytes` and
/// token/position buffers of `ioBytes` each on `g` (a session's, or the
/// engine step executor's page pool); "" or the first failure, allocation
/// failures as "<what> does not fit on <gpu>: ...".
std::string openDeviceSession(const Gpu &g, const std::string &what,
                              size_t cacheBytes, size_t ioBytes,
                              std::unique_ptr<DeviceSession> &out);

/// DSRT_CUDA_SYNC=1 (bring-up): synchronise after every launch and library
/// call, so an error names the kernel or call that raised it. Read once.
bool syncEveryCall();

/// In a call with DSRT_CUDA_SYNC=1: waits for the stream and records
/// "<what>: cuStreamSynchronize: <error>" on failure. No-op otherwise.
void syncForBringUp(const std::string &what);

/// Errors of module loads run by the artifact's constructors during
/// dlopen (before any session exists); the loader reads and clears it.
std::string &moduleLoadError();

} // namespace dsrt::cuda

#endif // DSRT_CUDA_DEVICE_H
