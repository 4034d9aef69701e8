//===- RtldLocalProbe.cpp - libdsrt loaded RTLD_LOCAL, like Python --------===//
//
// A host that dlopen()s libdsrt without RTLD_GLOBAL (a Python extension)
// must still get kernels that resolve their calls into libdsrt. Usage:
//   RtldLocalProbe LIBDSRT ARTIFACT WEIGHTS_DIR
// prints "column 2 = <value>" after one decode step, or the error.
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt.h"

#include <cstdio>
#include <dlfcn.h>

template <typename F> F lookup(void *lib, const char *name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

int main(int argc, char **argv) {
  if (argc != 4)
    return 2;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    std::printf("dlopen: %s\n", dlerror());
    return 1;
  }
  auto load = lookup<decltype(&dsrt_model_load)>(lib, "dsrt_model_load");
  auto lastError = lookup<decltype(&dsrt_last_error)>(lib, "dsrt_last_error");
  auto create =
      lookup<decltype(&dsrt_session_create)>(lib, "dsrt_session_create");
  auto decode =
      lookup<decltype(&dsrt_session_decode)>(lib, "dsrt_session_decode");
  auto freeSession =
      lookup<decltype(&dsrt_session_free)>(lib, "dsrt_session_free");
  auto freeModel = lookup<decltype(&dsrt_model_free)>(lib, "dsrt_model_free");
  dsrt_model *model = nullptr;
  dsrt_session *session = nullptr;
  float row[12];
  if (load(argv[2], argv[3], "cpu", &model) != DSRT_OK ||
      create(model, 4, &session) != DSRT_OK ||
      decode(session, 6, row) != DSRT_OK) {
    std::printf("error: %s\n", lastError());
    return 1;
  }
  std::printf("column 2 = %g\n", row[2]);
  // Freed so that LeakSanitizer (make test-asan) sees a clean exit.
  freeSession(session);
  freeModel(model);
  return 0;
}
