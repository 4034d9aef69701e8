//===- MgpuAbi.cpp - the mgpu* functions MLIR's host lowering calls -------===//
//
// gpu-to-llvm turns launches, buffer operations and the embedded device
// binaries into calls with these names and signatures (MLIR's
// CudaRuntimeWrappers ABI); Debian ships no implementation, so the runtime
// provides one over its own session state:
// - streams: every call of one entry point goes to the session's stream,
//   so program order is execution order and mgpuStreamSynchronize need not
//   wait (the host never reads device memory except through mgpuMemcpy,
//   which waits, and the runtime's final copy of the logits);
// - memory: mgpuMemAlloc/Free are served by the session's arena;
// - modules: loaded by the artifact's constructors at dlopen time, once per
//   model; functions are cached per (module, name).
//
// The artifact is dlopen()ed RTLD_LOCAL and resolves these from libdsrt.
//
//===----------------------------------------------------------------------===//
#include "cuda/Device.h"

#include <cstdint>
#include <map>
#include <mutex>

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt::cuda;

namespace {

const Gpu *theGpu() {
  std::string ignored;
  return gpu(ignored);
}

/// The session stream of the call in flight, or the legacy default stream
/// (only the module constructors run outside a call).
CUstream currentStream() {
  Execution *e = Execution::current();
  return e && e->session ? e->session->stream : nullptr;
}

void fail(const std::string &message) {
  if (Execution *e = Execution::current())
    e->fail(message);
  else if (moduleLoadError().empty())
    moduleLoadError() = message;
}

std::mutex functionsMutex;
std::map<std::pair<CUmodule, std::string>, CUfunction> functions;

} // namespace

DSRT_EXPORT void *mgpuModuleLoad(void *data, size_t /*size*/) {
  const Gpu *g = theGpu();
  if (!g) {
    fail("mgpuModuleLoad: no CUDA device");
    return nullptr;
  }
  CUmodule m = nullptr;
  CUresult r = g->drv.cuModuleLoadData(&m, data);
  if (r != CUDA_SUCCESS) {
    fail("the artifact's GPU code does not load on " + g->name + " (sm_" +
         std::to_string(g->ccMajor) + std::to_string(g->ccMinor) +
         "): " + g->describe("cuModuleLoadData", r));
    return nullptr;
  }
  return m;
}

DSRT_EXPORT void mgpuModuleUnload(void *module) {
  const Gpu *g = theGpu();
  if (!g || !module)
    return;
  {
    std::lock_guard<std::mutex> lock(functionsMutex);
    for (auto it = functions.begin(); it != functions.end();)
      it = it->first.first == module ? functions.erase(it) : std::next(it);
  }
  g->drv.cuModuleUnload(static_cast<CUmodule>(module));
}

DSRT_EXPORT void *mgpuModuleGetFunction(void *module, const char *name) {
  const Gpu *g = theGpu();
  if (!g || !module) {
    fail(std::string("kernel '") + name + "' is not loaded");
    return nullptr;
  }
  auto key = std::make_pair(static_cast<CUmodule>(module), std::string(name));
  std::lock_guard<std::mutex> lock(functionsMutex);
  auto it = functions.find(key);
  if (it != functions.end())
    return it->second;
  CUfunction f = nullptr;
  CUresult r = g->drv.cuModuleGetFunction(&f, key.first, name);
  if (r != CUDA_SUCCESS) {
    fail(g->describe("cuModuleGetFunction", r) + " (" + name + ")");
    return nullptr;
  }
  functions[key] = f;
  return f;
}

DSRT_EXPORT void mgpuLaunchKernel(void *function, intptr_t gridX,
                                  intptr_t gridY, intptr_t gridZ,
                                  intptr_t blockX, intptr_t blockY,
                                  intptr_t blockZ, int32_t smem, void *stream,
                                  void **params, void **extra,
                                  size_t /*paramsCount*/) {
  Execution *e = Execution::current();
  const Gpu *g = theGpu();
  if (!g || !function || (e && !e->error.empty()))
    return fail("kernel launch skipped after an earlier failure");
  if (gridX <= 0 || gridY <= 0 || gridZ <= 0 || gridX > INT32_MAX)
    return fail("kernel launch with grid " + std::to_string(gridX) + "x" +
                std::to_string(gridY) + "x" + std::to_string(gridZ));
  CUresult r = g->drv.cuLaunchKernel(
      static_cast<CUfunction>(function), unsigned(gridX), unsigned(gridY),
      unsigned(gridZ), unsigned(blockX), unsigned(blockY), unsigned(blockZ),
      unsigned(smem), static_cast<CUstream>(stream), params, extra);
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuLaunchKernel", r));
}

DSRT_EXPORT void *mgpuStreamCreate() { return currentStream(); }
DSRT_EXPORT void mgpuStreamDestroy(void *) {}
DSRT_EXPORT void mgpuStreamSynchronize(void *) {}

DSRT_EXPORT void *mgpuMemAlloc(uint64_t bytes, void * /*stream*/,
                               bool /*isHostShared*/) {
  Execution *e = Execution::current();
  if (!e || !e->session) {
    fail("device allocation outside a model call");
    return nullptr;
  }
  std::string error;
  void *p = e->session->arena.allocate(size_t(bytes), error);
  if (!p)
    e->fail(error);
  return p;
}

DSRT_EXPORT void mgpuMemFree(void *, void *) {}

DSRT_EXPORT void mgpuMemcpy(void *dst, void *src, size_t bytes,
                            void *stream) {
  const Gpu *g = theGpu();
  if (!g || !dst || !src)
    return fail("mgpuMemcpy on a buffer that was not allocated");
  auto s = static_cast<CUstream>(stream);
  CUresult r = g->drv.cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                                    reinterpret_cast<CUdeviceptr>(src), bytes,
                                    s);
  if (r == CUDA_SUCCESS)
    r = g->drv.cuStreamSynchronize(s); // the host reads the result next
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuMemcpyAsync", r));
}

DSRT_EXPORT void mgpuMemset32(void *dst, unsigned value, size_t count,
                              void *stream) {
  const Gpu *g = theGpu();
  if (!g || !dst)
    return fail("mgpuMemset32 on a buffer that was not allocated");
  CUresult r = g->drv.cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(dst),
                                       value, count,
                                       static_cast<CUstream>(stream));
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuMemsetD32Async", r));
}

DSRT_EXPORT void mgpuMemset16(void *dst, unsigned short value, size_t count,
                              void *stream) {
  const Gpu *g = theGpu();
  if (!g || !dst)
    return fail("mgpuMemset16 on a buffer that was not allocated");
  CUresult r = g->drv.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(dst),
                                       value, count,
                                       static_cast<CUstream>(stream));
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuMemsetD16Async", r));
}
