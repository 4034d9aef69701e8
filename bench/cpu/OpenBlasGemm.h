//===- OpenBlasGemm.h - OpenBLAS sgemm's rate, loaded only to be timed ----===//
//
// OpenBLAS starts its thread pool when the library is loaded, and its
// threads spin (sched_yield) for a while after start-up and after every
// call. Linked into ds-cpu-bench, they held the second core while ds's own
// kernels ran right after the sgemm: `ds-cpu-bench gemm 256 1024 768 20`
// gave ds bf16 338-370 GFLOP/s in half of the runs and 626-726 in the
// others, and all four runs at 629-670 with OPENBLAS_THREAD_TIMEOUT=4
// (bench/RESULTS.md, "twenty-ninth session"). So the `gemm` subcommand
// loads the library itself, after every other GEMM has been timed, and no
// other subcommand has its threads at all.
//
//===----------------------------------------------------------------------===//
#ifndef DS_BENCH_CPU_OPENBLASGEMM_H
#define DS_BENCH_CPU_OPENBLASGEMM_H

#include <cstdint>
#include <string>

namespace dsbench {

/// GFLOP/s of y[rows, n] = x[rows, k] w[n, k]^T through OpenBLAS's
/// cblas_sgemm on `threads` threads, best of `reps`; 0 with `error` set
/// when libopenblas cannot be loaded.
double openBlasSgemm(const float *x, const float *w, float *y, int64_t rows,
                     int64_t n, int64_t k, int threads, int reps,
                     std::string &error);

} // namespace dsbench

#endif
