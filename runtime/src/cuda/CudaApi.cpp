//===- CudaApi.cpp - the CUDA driver and cuBLAS, reached by dlopen --------===//
#include "cuda/CudaApi.h"

#include <cstdlib>
#include <dlfcn.h>
#include <memory>
#include <mutex>

using namespace dsrt::cuda;

namespace {

/// The driver's path: $DSRT_CUDA_DRIVER (tests, unusual installs) or the
/// soname every driver install provides.
std::string driverPath() {
  const char *p = std::getenv("DSRT_CUDA_DRIVER");
  return p && *p ? p : "libcuda.so.1";
}

template <typename F>
bool lookup(void *lib, const char *name, F &fn, std::string &missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && missing.empty())
    missing = name;
  return fn != nullptr;
}

} // namespace

std::unique_ptr<Gpu> dsrt::cuda::loadGpu(const std::string &path,
                                         std::string &error) {
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    error = "no CUDA driver: cannot load " + path + " (" +
            (why ? why : "unknown error") + ")";
    return nullptr;
  }
  auto g = std::make_unique<Gpu>();
  Driver &d = g->drv;
  std::string missing;
  // Versioned names: the unversioned ones are the 32-bit legacy ABI.
  lookup(lib, "cuInit", d.cuInit, missing);
  lookup(lib, "cuDriverGetVersion", d.cuDriverGetVersion, missing);
  lookup(lib, "cuDeviceGetCount", d.cuDeviceGetCount, missing);
  lookup(lib, "cuDeviceGet", d.cuDeviceGet, missing);
  lookup(lib, "cuDeviceGetName", d.cuDeviceGetName, missing);
  lookup(lib, "cuDeviceGetAttribute", d.cuDeviceGetAttribute, missing);
  lookup(lib, "cuDevicePrimaryCtxRetain", d.cuDevicePrimaryCtxRetain, missing);
  lookup(lib, "cuCtxSetCurrent", d.cuCtxSetCurrent, missing);
  lookup(lib, "cuMemAlloc_v2", d.cuMemAlloc, missing);
  lookup(lib, "cuMemFree_v2", d.cuMemFree, missing);
  lookup(lib, "cuMemGetInfo_v2", d.cuMemGetInfo, missing);
  lookup(lib, "cuMemcpyAsync", d.cuMemcpyAsync, missing);
  lookup(lib, "cuMemcpyHtoDAsync_v2", d.cuMemcpyHtoDAsync, missing);
  lookup(lib, "cuMemcpyDtoHAsync_v2", d.cuMemcpyDtoHAsync, missing);
  lookup(lib, "cuMemsetD32Async", d.cuMemsetD32Async, missing);
  lookup(lib, "cuMemsetD16Async", d.cuMemsetD16Async, missing);
  lookup(lib, "cuStreamCreate", d.cuStreamCreate, missing);
  lookup(lib, "cuStreamDestroy_v2", d.cuStreamDestroy, missing);
  lookup(lib, "cuStreamSynchronize", d.cuStreamSynchronize, missing);
  lookup(lib, "cuModuleLoadData", d.cuModuleLoadData, missing);
  lookup(lib, "cuModuleUnload", d.cuModuleUnload, missing);
  lookup(lib, "cuModuleGetFunction", d.cuModuleGetFunction, missing);
  lookup(lib, "cuLaunchKernel", d.cuLaunchKernel, missing);
  lookup(lib, "cuGetErrorName", d.cuGetErrorName, missing);
  if (!missing.empty()) {
    error = "CUDA driver " + path + " lacks " + missing +
            " (driver too old for this runtime)";
    return nullptr;
  }
  CUresult r = d.cuInit(0);
  if (r != CUDA_SUCCESS) {
    error = "no CUDA device: " + g->describe("cuInit", r);
    return nullptr;
  }
  int count = 0;
  r = d.cuDeviceGetCount(&count);
  if (r != CUDA_SUCCESS || count == 0) {
    error = r != CUDA_SUCCESS ? "no CUDA device: " +
                                    g->describe("cuDeviceGetCount", r)
                              : "no CUDA device: the driver sees no GPU";
    return nullptr;
  }
  char name[256] = {0};
  if ((r = d.cuDeviceGet(&g->device, 0)) != CUDA_SUCCESS ||
      (r = d.cuDeviceGetName(name, sizeof(name) - 1, g->device)) !=
          CUDA_SUCCESS ||
      (r = d.cuDeviceGetAttribute(&g->ccMajor,
                                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                                  g->device)) != CUDA_SUCCESS ||
      (r = d.cuDeviceGetAttribute(&g->ccMinor,
                                  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                                  g->device)) != CUDA_SUCCESS ||
      (r = d.cuDevicePrimaryCtxRetain(&g->context, g->device)) !=
          CUDA_SUCCESS) {
    error = "CUDA device 0 is unusable: " + g->describe("device setup", r);
    return nullptr;
  }
  g->name = name;
  g->bind();
  return g;
}

void Gpu::bind() const { drv.cuCtxSetCurrent(context); }

std::string Gpu::describe(const char *call, CUresult r) const {
  const char *name = nullptr;
  if (drv.cuGetErrorName)
    drv.cuGetErrorName(r, &name);
  return std::string(call) + ": " +
         (name ? name : "CUDA error " + std::to_string(r));
}

const Gpu *dsrt::cuda::gpu(std::string &error) {
  static std::once_flag once;
  static Gpu *instance = nullptr;
  static std::string failure;
  // Lives as long as the process: the driver is never unloaded.
  std::call_once(once,
                 [] { instance = loadGpu(driverPath(), failure).release(); });
  if (!instance)
    error = failure;
  else
    instance->bind();
  return instance;
}

const Cublas *dsrt::cuda::cublas(std::string &error) {
  static std::once_flag once;
  static Cublas *instance = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    const char *env = std::getenv("DSRT_CUBLAS");
    void *lib = nullptr;
    std::string tried;
    for (const char *name : {env, "libcublas.so.13", "libcublas.so.12",
                             "libcublas.so.11", "libcublas.so"}) {
      if (!name || !*name)
        continue;
      tried += tried.empty() ? name : std::string(", ") + name;
      if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
        break;
    }
    if (!lib) {
      failure = "cuBLAS not found (tried " + tried + ")";
      return;
    }
    auto *c = new Cublas;
    std::string missing;
    lookup(lib, "cublasCreate_v2", c->create, missing);
    lookup(lib, "cublasDestroy_v2", c->destroy, missing);
    lookup(lib, "cublasSetStream_v2", c->setStream, missing);
    lookup(lib, "cublasSgemm_v2", c->sgemm, missing);
    lookup(lib, "cublasGemmEx", c->gemmEx, missing);
    if (!missing.empty()) {
      failure = "cuBLAS lacks " + missing;
      delete c;
      return;
    }
    instance = c;
  });
  if (!instance)
    error = failure;
  return instance;
}
