//===- OneDnnGemm.h - oneDNN's GEMM rate, the reference ds is held to -----===//
//
// The issue holds prefill to "the machine's GEMM rate for that dtype,
// measured with a large GEMM through the best library available here".
// OpenBLAS in Debian 12 has no bf16 GEMM; oneDNN (libdnnl-dev) has one, and
// its own f32 GEMM. Both are timed on the layout ds multiplies (x [rows, k]
// times w [n, k] transposed) and with oneDNN's preferred weight layout
// (packed once, the best case), so the rate is the library's best.
//
//===----------------------------------------------------------------------===//
#ifndef DS_BENCH_CPU_ONEDNNGEMM_H
#define DS_BENCH_CPU_ONEDNNGEMM_H

#include <cstdint>

namespace dsbench {

struct OneDnnRates {
  bool available = false; // false: built without oneDNN, or it failed
  double f32Plain = 0, f32Packed = 0;   // GFLOP/s
  double bf16Plain = 0, bf16Packed = 0; // bf16 x bf16 -> f32
};

/// GFLOP/s of y[rows, n] = x[rows, k] w[n, k]^T, best of `reps`, on random
/// data. Threads: oneDNN's OpenMP default (OMP_NUM_THREADS).
OneDnnRates oneDnnGemm(int64_t rows, int64_t n, int64_t k, int reps);

} // namespace dsbench

#endif
