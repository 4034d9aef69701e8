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
//   model; each launch site of the host code keeps its function in a global
//   after its first lookup (lib/Target/KernelFunctionCache.cpp), so lookups
//   are rare: a per-thread cache keyed by the name's address answers
//   without a lock, the shared (module, name) map fills it, and a
//   function -> name map names the kernel in an error;
// - failures: the first one is recorded in the call's Execution and every
//   later launch, copy and memset is skipped (Device.h).
//
// The artifact is dlopen()ed RTLD_LOCAL and resolves these from libdsrt.
//
//===----------------------------------------------------------------------===//
#include "cuda/Device.h"

#include <atomic>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

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

/// Never destroyed: an artifact's destructors unload its modules, and a
/// process that exits with a model loaded runs them after this library's
/// static destructors.
std::mutex &functionsMutex = *new std::mutex;
auto &functions = *new std::map<std::pair<CUmodule, std::string>, CUfunction>;
/// The kernel name of each function handed out, for error messages.
auto &functionNames = *new std::map<CUfunction, std::string>;
/// Functions whose launches leave the host copy of expert offsets valid
/// (see keepsOffsets).
auto &offsetKeepers = *new std::set<CUfunction>;
/// Bumped by every unload: per-thread caches older than it are dropped.
std::atomic<uint64_t> functionsGeneration{0};

struct SiteCache {
  uint64_t generation = 0;
  /// Key: (module, address of the launch site's name string).
  std::map<std::pair<void *, const char *>, CUfunction> sites;
};
thread_local SiteCache siteCache;

/// Whether the call in flight already failed (then nothing more runs).
/// Called before every operation that writes device memory, so it also
/// drops the host copy of expert offsets such a write may change.
bool skipped() {
  Execution *e = Execution::current();
  if (e)
    e->forgetOffsets();
  return e && e->failed();
}

/// The SiLU-mul kernel is the only launch between a MoE layer's grouped
/// GEMMs (gate, up, then down after it): it writes its own [rows, F]
/// output, never an offsets buffer, which is live (and so not reused)
/// until the layer's last grouped GEMM. Every other launch may be the
/// next layer's permutation writing new offsets at the same address, so
/// it drops the copy. With this, a prefill MoE layer reads its offsets
/// once instead of once before and once after the SiLU-mul.
bool keepsOffsetsByName(const std::string &name) {
  return name.rfind("__ds_silu_mul", 0) == 0;
}

/// Only asked while a copy of the offsets is held (prefill MoE layers), so
/// the lock is not taken per decode launch.
bool keepsOffsets(CUfunction f) {
  std::lock_guard<std::mutex> lock(functionsMutex);
  return offsetKeepers.count(f) != 0;
}

std::string kernelName(CUfunction f) {
  std::lock_guard<std::mutex> lock(functionsMutex);
  auto it = functionNames.find(f);
  return it == functionNames.end() ? std::string("a kernel")
                                   : "kernel " + it->second;
}

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
    for (auto it = functions.begin(); it != functions.end();) {
      if (it->first.first != module) {
        ++it;
        continue;
      }
      functionNames.erase(it->second);
      offsetKeepers.erase(it->second);
      it = functions.erase(it);
    }
    ++functionsGeneration;
  }
  CUresult r = g->drv.cuModuleUnload(static_cast<CUmodule>(module));
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuModuleUnload", r));
}

DSRT_EXPORT void *mgpuModuleGetFunction(void *module, const char *name) {
  SiteCache &c = siteCache;
  uint64_t generation = functionsGeneration.load(std::memory_order_acquire);
  if (c.generation != generation) {
    c.sites.clear();
    c.generation = generation;
  }
  auto site = c.sites.find({module, name});
  if (site != c.sites.end())
    return site->second;
  const Gpu *g = theGpu();
  if (!g || !module) {
    fail(std::string("kernel '") + name + "' is not loaded");
    return nullptr;
  }
  auto key = std::make_pair(static_cast<CUmodule>(module), std::string(name));
  CUfunction f = nullptr;
  {
    std::lock_guard<std::mutex> lock(functionsMutex);
    auto it = functions.find(key);
    if (it != functions.end()) {
      f = it->second;
    } else {
      CUresult r = g->drv.cuModuleGetFunction(&f, key.first, name);
      if (r != CUDA_SUCCESS) {
        fail(g->describe("cuModuleGetFunction", r) + " (" + name + ")");
        return nullptr;
      }
      functions[key] = f;
      functionNames[f] = name;
      if (keepsOffsetsByName(key.second))
        offsetKeepers.insert(f);
    }
  }
  c.sites[{module, name}] = f;
  return f;
}

DSRT_EXPORT void mgpuLaunchKernel(void *function, intptr_t gridX,
                                  intptr_t gridY, intptr_t gridZ,
                                  intptr_t blockX, intptr_t blockY,
                                  intptr_t blockZ, int32_t smem, void *stream,
                                  void **params, void **extra,
                                  size_t /*paramsCount*/) {
  Execution *e = Execution::current();
  bool keep = e && e->offsetsAt && function &&
              keepsOffsets(static_cast<CUfunction>(function));
  if (keep ? e->failed() : skipped())
    return;
  const Gpu *g = theGpu();
  if (!g || !function)
    return fail("launch of a kernel that did not load");
  // Only an error or DSRT_CUDA_SYNC needs the name.
  auto name = [&] { return kernelName(static_cast<CUfunction>(function)); };
  if (gridX <= 0 || gridY <= 0 || gridZ <= 0 || gridX > INT32_MAX ||
      gridY > 65535 || gridZ > 65535)
    return fail(name() + " launched with grid " + std::to_string(gridX) + "x" +
                std::to_string(gridY) + "x" + std::to_string(gridZ));
  CUresult r = g->drv.cuLaunchKernel(
      static_cast<CUfunction>(function), unsigned(gridX), unsigned(gridY),
      unsigned(gridZ), unsigned(blockX), unsigned(blockY), unsigned(blockZ),
      unsigned(smem), static_cast<CUstream>(stream), params, extra);
  if (r != CUDA_SUCCESS)
    return fail(name() + ": " + g->describe("cuLaunchKernel", r));
  if (syncEveryCall())
    syncForBringUp(name());
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
  // After a failure nothing reads or writes device memory: the views the
  // host code derives from a null buffer are never dereferenced.
  if (e->failed())
    return nullptr;
  std::string error;
  void *p = e->session->arena.allocate(size_t(bytes), error);
  if (!p)
    e->fail(error);
  return p;
}

DSRT_EXPORT void mgpuMemFree(void *p, void * /*stream*/) {
  Execution *e = Execution::current();
  if (e && e->session && p)
    e->session->arena.release(p);
}

DSRT_EXPORT void mgpuMemcpy(void *dst, void *src, size_t bytes,
                            void *stream) {
  Execution *e = Execution::current();
  // Host code copies device scalars (a cache position, a count) into host
  // memory and uses them as loop bounds: after a failure they read 0.
  auto zeroHostDestination = [&] {
    if (e && e->session && dst && !e->session->isDevice(dst))
      std::memset(dst, 0, bytes);
  };
  if (skipped())
    return zeroHostDestination();
  // Only a copy into host memory is read by the host next; a copy between
  // device buffers is ordered by the stream and needs no wait (nor ends a
  // graph capture).
  bool toHost = !(e && e->session && dst && e->session->isDevice(dst));
  if (toHost && e && e->refuseHostWait("a copy to host memory"))
    return zeroHostDestination();
  const Gpu *g = theGpu();
  if (!g || !dst || !src) {
    zeroHostDestination();
    return fail("mgpuMemcpy on a buffer that was not allocated");
  }
  auto s = static_cast<CUstream>(stream);
  CUresult r = g->drv.cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                                    reinterpret_cast<CUdeviceptr>(src), bytes,
                                    s);
  const char *what = "cuMemcpyAsync";
  if (r == CUDA_SUCCESS && toHost) {
    what = "cuStreamSynchronize after a copy";
    r = g->drv.cuStreamSynchronize(s); // the host reads the result next
  }
  if (r != CUDA_SUCCESS) {
    zeroHostDestination();
    fail(g->describe(what, r));
  }
}

DSRT_EXPORT void mgpuMemset32(void *dst, unsigned value, size_t count,
                              void *stream) {
  if (skipped())
    return;
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
  if (skipped())
    return;
  const Gpu *g = theGpu();
  if (!g || !dst)
    return fail("mgpuMemset16 on a buffer that was not allocated");
  CUresult r = g->drv.cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(dst),
                                       value, count,
                                       static_cast<CUstream>(stream));
  if (r != CUDA_SUCCESS)
    fail(g->describe("cuMemsetD16Async", r));
}

/// The split-KV attention's host code sizes its splits by the tokens of
/// context this call reaches (session position + tokens), not by the cache
/// capacity: a short context in a long session is not cut into slivers.
/// `capacity` outside a call or when the call did not say.
DSRT_EXPORT int64_t dsrt_gpu_context_tokens(int64_t capacity) {
  Execution *e = Execution::current();
  if (!e || e->contextTokens <= 0 || e->contextTokens > capacity)
    return capacity;
  return e->contextTokens;
}
