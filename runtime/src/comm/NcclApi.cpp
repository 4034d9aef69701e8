//===- NcclApi.cpp - NCCL reached by dlopen -------------------------------===//
#include "comm/NcclApi.h"

#include <cstdlib>
#include <dlfcn.h>
#include <mutex>

using namespace dsrt::comm::nccl;

namespace {

template <typename F>
void lookup(void *lib, const char *name, F &fn, std::string &missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && missing.empty())
    missing = name;
}

std::string versionText(int v) {
  // NCCL_VERSION(X,Y,Z) = X*10000 + Y*100 + Z since 2.9; X*1000 + Y*100 + Z
  // before.
  int major = v >= 10000 ? v / 10000 : v / 1000;
  int minor = v >= 10000 ? (v / 100) % 100 : (v / 100) % 10;
  return std::to_string(major) + "." + std::to_string(minor) + "." +
         std::to_string(v % 100);
}

} // namespace

std::unique_ptr<Api> dsrt::comm::nccl::load(const std::string &path,
                                            std::string &error) {
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    error = "no NCCL: cannot load " + path + " (" +
            (why ? why : "unknown error") + ")";
    return nullptr;
  }
  auto api = std::make_unique<Api>();
  Api &a = *api;
  std::string missing;
  lookup(lib, "ncclGetVersion", a.getVersion, missing);
  lookup(lib, "ncclGetUniqueId", a.getUniqueId, missing);
  lookup(lib, "ncclCommInitRank", a.commInitRank, missing);
  lookup(lib, "ncclCommDestroy", a.commDestroy, missing);
  lookup(lib, "ncclCommAbort", a.commAbort, missing);
  lookup(lib, "ncclCommGetAsyncError", a.commGetAsyncError, missing);
  lookup(lib, "ncclGetErrorString", a.getErrorString, missing);
  lookup(lib, "ncclAllReduce", a.allReduce, missing);
  lookup(lib, "ncclAllGather", a.allGather, missing);
  lookup(lib, "ncclBroadcast", a.broadcast, missing);
  lookup(lib, "ncclSend", a.send, missing);
  lookup(lib, "ncclRecv", a.recv, missing);
  lookup(lib, "ncclGroupStart", a.groupStart, missing);
  lookup(lib, "ncclGroupEnd", a.groupEnd, missing);
  if (!missing.empty()) {
    error = "NCCL library " + path + " lacks " + missing +
            " (not NCCL, or older than 2.7)";
    dlclose(lib);
    return nullptr;
  }
  if (a.getVersion(&a.version) != ncclSuccess || a.version < kMinVersion) {
    error = "NCCL library " + path + " is version " + versionText(a.version) +
            "; the communicator needs 2.7 or later";
    dlclose(lib);
    return nullptr;
  }
  a.path = path;
  return api;
}

const Api *dsrt::comm::nccl::get(std::string &error) {
  static std::once_flag once;
  static Api *instance = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    const char *env = std::getenv("DSRT_NCCL");
    if (env && *env) {
      instance = load(env, failure).release();
      return;
    }
    std::string first;
    if ((instance = load("libnccl.so.2", first).release()))
      return;
    const char *home = std::getenv("CUDA_HOME");
    std::string toolkit =
        std::string(home && *home ? home : "/usr/local/cuda") +
        "/lib64/libnccl.so.2";
    if (!(instance = load(toolkit, failure).release()) &&
        failure.rfind("no NCCL", 0) == 0)
      failure = "no NCCL: cannot load libnccl.so.2 (not on the loader's "
                "path) nor " +
                toolkit + "; set DSRT_NCCL";
  });
  if (!instance)
    error = failure;
  return instance;
}

std::string dsrt::comm::nccl::describe(const Api &api, const char *call,
                                       ncclResult_t r) {
  const char *text = api.getErrorString ? api.getErrorString(r) : nullptr;
  std::string out = std::string(call) + ": " +
                    (text ? text : "NCCL error " + std::to_string(r));
  // NCCL 2.28's texts end with the hint already; older ones do not.
  if (out.find("NCCL_DEBUG") == std::string::npos)
    out += " (NCCL_DEBUG=INFO says more)";
  return out;
}
