//===- CudaApi.cpp - the CUDA driver and cuBLAS, reached by dlopen --------===//
#include "cuda/CudaApi.h"

#include <cstdlib>
#include <dlfcn.h>
#include <glob.h>
#include <unistd.h>
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
#define DSRT_CU_SYM(field, symbol, params)                                     \
  lookup(lib, #symbol, d.field, missing);
#define DSRT_CU_OPT_SYM(field, symbol, params)                                 \
  d.field = reinterpret_cast<decltype(d.field)>(dlsym(lib, #symbol));
#include "cuda/CudaSymbols.inc"
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
  if ((r = g->bind()) != CUDA_SUCCESS) {
    error = "CUDA device 0 is unusable: " + g->describe("cuCtxSetCurrent", r);
    return nullptr;
  }
  return g;
}

CUresult Gpu::bind() const { return drv.cuCtxSetCurrent(context); }

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
  if (!instance) {
    error = failure;
    return nullptr;
  }
  if (CUresult r = instance->bind(); r != CUDA_SUCCESS) {
    error = instance->describe("cuCtxSetCurrent", r);
    return nullptr;
  }
  return instance;
}

std::vector<std::string>
dsrt::cuda::cublasCandidates(const char *env, const char *home,
                             const std::vector<std::string> &sitePackages) {
  std::vector<std::string> out;
  if (env && *env)
    out.push_back(env);
  std::vector<std::string> dirs;
  if (home && *home)
    dirs.push_back(std::string(home) + "/lib64");
  dirs.push_back("/usr/local/cuda/lib64");
  for (const std::string &sp : sitePackages) {
    dirs.push_back(sp + "/nvidia/cublas/lib"); // nvidia-cublas-cu11/12
    dirs.push_back(sp + "/nvidia/cu13/lib");   // CUDA 13 wheels
  }
  const char *sonames[] = {"libcublas.so.13", "libcublas.so.12",
                           "libcublas.so.11"};
  for (const std::string &dir : dirs)
    for (const char *so : sonames)
      out.push_back(dir + "/" + so);
  for (const char *so : sonames)
    out.push_back(so);
  out.push_back("libcublas.so");
  return out;
}

std::unique_ptr<Cublas> dsrt::cuda::loadCublas(const std::string &path,
                                               std::string &error) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    // cuBLAS needs the cublasLt of its own release: load the neighbour
    // first (its RUNPATH may not say where it is).
    std::string lt = path.substr(0, slash + 1) + "libcublasLt" +
                     path.substr(path.find(".so", slash));
    if (access(lt.c_str(), R_OK) == 0)
      dlopen(lt.c_str(), RTLD_NOW | RTLD_GLOBAL);
  }
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    error = "cannot load " + path + " (" + (why ? why : "unknown error") + ")";
    return nullptr;
  }
  auto c = std::make_unique<Cublas>();
  std::string missing;
#define DSRT_CUBLAS_SYM(field, symbol, params)                                 \
  lookup(lib, #symbol, c->field, missing);
#define DSRT_CUBLAS_OPT_SYM(field, symbol, params)                             \
  c->field = reinterpret_cast<decltype(c->field)>(dlsym(lib, #symbol));
#include "cuda/CudaSymbols.inc"
  if (!missing.empty()) {
    error = path + " lacks " + missing;
    return nullptr;
  }
  return c;
}

namespace {

/// site-packages / dist-packages folders a pip-installed torch may have
/// brought nvidia wheels into.
std::vector<std::string> sitePackageDirs() {
  std::vector<std::string> out;
  auto add = [&](const std::string &pattern) {
    glob_t g;
    if (glob(pattern.c_str(), GLOB_ONLYDIR, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i)
        out.push_back(g.gl_pathv[i]);
    globfree(&g);
  };
  if (const char *pp = std::getenv("PYTHONPATH")) {
    std::string all = pp;
    for (size_t b = 0, e; b <= all.size(); b = e + 1) {
      e = all.find(':', b);
      if (e == std::string::npos)
        e = all.size();
      if (e > b)
        out.push_back(all.substr(b, e - b));
    }
  }
  for (const char *var : {"VIRTUAL_ENV", "CONDA_PREFIX"})
    if (const char *v = std::getenv(var); v && *v)
      add(std::string(v) + "/lib/python3*/site-packages");
  if (const char *h = std::getenv("HOME"); h && *h)
    add(std::string(h) + "/.local/lib/python3*/site-packages");
  add("/usr/local/lib/python3*/dist-packages");
  add("/usr/local/lib/python3*/site-packages");
  add("/usr/lib/python3/dist-packages");
  add("/opt/conda/lib/python3*/site-packages");
  return out;
}

} // namespace

const Cublas *dsrt::cuda::cublas(std::string &error) {
  static std::once_flag once;
  static Cublas *instance = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    std::string firstProblem;
    for (const std::string &path :
         cublasCandidates(std::getenv("DSRT_CUBLAS"), std::getenv("CUDA_HOME"),
                          sitePackageDirs())) {
      // Absolute paths that are not there are skipped quietly.
      if (path[0] == '/' && access(path.c_str(), R_OK) != 0)
        continue;
      std::string why;
      if (std::unique_ptr<Cublas> c = loadCublas(path, why)) {
        instance = c.release(); // lives as long as the process
        return;
      }
      if (firstProblem.empty())
        firstProblem = why;
    }
    failure = "cuBLAS not found (looked in $DSRT_CUBLAS, $CUDA_HOME/lib64, "
              "/usr/local/cuda/lib64, pip's nvidia wheels and the loader's "
              "path; " +
              (firstProblem.empty() ? std::string("none loads")
                                    : firstProblem) +
              ")";
  });
  if (!instance)
    error = failure;
  return instance;
}
