//===- NativeObject.h - the artifact's shared object, loaded ----*- C++ -*-===//
//
// The object is dlopen()ed from an anonymous in-memory file, so no copy of
// the kernels is left on disk and two artifacts never share a path.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ARTIFACT_NATIVEOBJECT_H
#define DSRT_ARTIFACT_NATIVEOBJECT_H

#include <memory>
#include <string>

namespace dsrt {

class NativeObject {
public:
  /// Loads `bytes` (an ELF shared object). Errors name `artifactPath`.
  static std::unique_ptr<NativeObject> load(const std::string &bytes,
                                            const std::string &artifactPath,
                                            std::string &error);
  ~NativeObject();
  NativeObject(const NativeObject &) = delete;
  NativeObject &operator=(const NativeObject &) = delete;

  /// The address of `name`, or nullptr.
  void *symbol(const std::string &name) const;

private:
  NativeObject() = default;
  void *handle = nullptr;
  /// The memfd stays open while the object is loaded: glibc recognises an
  /// already loaded object by its path, and a recycled descriptor number
  /// would make a second artifact's "/proc/self/fd/N" resolve to this one.
  int fd = -1;
  std::string path; // what dlopen was given
};

} // namespace dsrt

#endif // DSRT_ARTIFACT_NATIVEOBJECT_H
