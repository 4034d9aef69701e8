//===- NativeObject.cpp - the artifact's shared object, loaded ------------===//
#include "artifact/NativeObject.h"

#include "dsrt/dsrt.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

using namespace dsrt;

namespace {

/// The kernels call back into libdsrt (weights, GEMMs). They are opened
/// RTLD_LOCAL, so those references resolve against the global scope: when a
/// host loaded libdsrt itself RTLD_LOCAL (a Python extension), libdsrt is
/// promoted to the global scope once, here.
void promoteRuntimeToGlobalScope() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info;
    if (dladdr(reinterpret_cast<void *>(&dsrt_last_error), &info) &&
        info.dli_fname)
      dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  });
}

bool writeAll(int fd, const std::string &bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += size_t(n);
  }
  return true;
}

} // namespace

std::unique_ptr<NativeObject>
NativeObject::load(const std::string &bytes, const std::string &artifactPath,
                   std::string &error) {
  promoteRuntimeToGlobalScope();
  std::unique_ptr<NativeObject> obj(new NativeObject());
  std::string path, tmpPath;
  obj->fd = memfd_create("ds-kernels", MFD_CLOEXEC);
  if (obj->fd >= 0) {
    path = "/proc/self/fd/" + std::to_string(obj->fd);
  } else {
    // No memfd (old kernel, seccomp): a temporary file, unlinked as soon
    // as it is mapped.
    const char *dir = getenv("TMPDIR");
    std::string tmpl =
        std::string(dir && *dir ? dir : "/tmp") + "/ds-kernels-XXXXXX";
    std::vector<char> name(tmpl.begin(), tmpl.end());
    name.push_back('\0');
    obj->fd = mkstemp(name.data());
    if (obj->fd < 0) {
      error = artifactPath +
              ": cannot stage its native code: " + std::strerror(errno);
      return nullptr;
    }
    path = tmpPath = name.data();
  }
  if (!writeAll(obj->fd, bytes)) {
    error = artifactPath +
            ": cannot stage its native code: " + std::strerror(errno);
    if (!tmpPath.empty())
      unlink(tmpPath.c_str());
    return nullptr;
  }
  obj->path = path;
  obj->handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!tmpPath.empty())
    unlink(tmpPath.c_str());
  if (!obj->handle) {
    const char *why = dlerror();
    error = artifactPath + ": cannot load its native code: " +
            (why ? why : "unknown dlopen error");
    return nullptr;
  }
  return obj;
}

NativeObject::~NativeObject() {
  if (handle) {
    dlclose(handle);
    // An object glibc keeps loaded (NODELETE, e.g. for unique symbols)
    // still owns its path: the descriptor is then kept open for good, so
    // its number never names another artifact's code.
    if (void *still = dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
      dlclose(still);
      return;
    }
  }
  if (fd >= 0)
    close(fd);
}

void *NativeObject::symbol(const std::string &name) const {
  return handle ? dlsym(handle, name.c_str()) : nullptr;
}
