//===- OpenBlasGemm.cpp - OpenBLAS sgemm's rate, loaded only to be timed --===//
#include "OpenBlasGemm.h"
#include "BenchUtil.h"

#include <cblas.h>
#include <dlfcn.h>

double dsbench::openBlasSgemm(const float *x, const float *w, float *y,
                              int64_t rows, int64_t n, int64_t k, int threads,
                              int reps, std::string &error) {
  // Never unloaded: its threads would outlive the code they run.
  void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char *why = dlerror();
    error = std::string("cannot load libopenblas.so.0: ") + (why ? why : "?");
    return 0;
  }
  auto sgemm =
      reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(lib, "cblas_sgemm"));
  auto setThreads = reinterpret_cast<decltype(&openblas_set_num_threads)>(
      dlsym(lib, "openblas_set_num_threads"));
  if (!sgemm || !setThreads) {
    error = "libopenblas.so.0 lacks cblas_sgemm or openblas_set_num_threads";
    return 0;
  }
  setThreads(threads);
  double t = best(reps, [&] {
    sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n), int(k),
          1.0f, x, int(k), w, int(k), 0.0f, y, int(n));
  });
  setThreads(1);
  return 2.0 * double(rows) * double(n) * double(k) / t / 1e9;
}
