//===- BenchUtil.h - timing and random weights shared by ds-cpu-bench -----===//
//
// Every subcommand times the best of REPS calls and builds random weights
// in the three formats the kernels read in place (f32, bf16, FP8 with one
// scale per 128x128 block); one copy of each here.
//
//===----------------------------------------------------------------------===//
#ifndef DS_BENCH_CPU_BENCHUTIL_H
#define DS_BENCH_CPU_BENCHUTIL_H

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/WeightMatrix.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace dsbench {

/// Seconds on the steady clock.
inline double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU seconds of the whole process (every thread, spinning included) and
/// of the calling thread: on a shared machine they are moved less by
/// other processes than wall time.
inline double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}
inline double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// The shortest of `reps` (at least one) timed calls of `f` on `clock`:
/// the least disturbed by other processes. `warm` adds an untimed call
/// first, for callers whose first call grows scratch or pages the weight
/// in.
template <typename F>
double best(int reps, F &&f, bool warm = false, double (*clock)() = now) {
  if (warm)
    f();
  double b = 1e30;
  for (int i = 0; i < std::max(reps, 1); ++i) {
    double t = clock();
    f();
    b = std::min(b, clock() - t);
  }
  return b;
}

/// `n` draws of a normal distribution of deviation `stddev`.
std::vector<float> normal(size_t n, std::mt19937 &rng, float stddev = 1.0f);

/// `w` rounded to bf16.
std::vector<uint16_t> toBf16(const std::vector<float> &w);

/// `n` random FP8 (e4m3) codes distributed as a checkpoint's (normal
/// values at an amax / 448 block scale), never NaN.
std::vector<uint8_t> randomFp8(size_t n, std::mt19937 &rng);

/// One 0.01 scale per 128x128 block of an [n, k] FP8 matrix.
std::vector<float> fp8Scales(int64_t n, int64_t k);

/// The same weights as bf16, and random FP8 codes with their block scales
/// for an [n, k] matrix.
struct LowPrecision {
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> fp8;
  std::vector<float> scales;
};
LowPrecision lowPrecision(const std::vector<float> &w, int64_t n, int64_t k,
                          std::mt19937 &rng);

/// A [rows, cols] weight of random values in one format ("f32", "bf16",
/// "fp8"), with the storage its WeightMatrix points into.
struct RandomWeight {
  std::vector<float> f32, scales;
  std::vector<uint16_t> bf16;
  std::vector<uint8_t> fp8;
  dsrt::cpu::WeightMatrix m;
  RandomWeight(const std::string &dtype, int64_t rows, int64_t cols,
               std::mt19937 &rng);
  // `m` points into the vectors: a copy would point into the original's.
  RandomWeight(const RandomWeight &) = delete;
  RandomWeight &operator=(const RandomWeight &) = delete;
};

/// The ISA paths a per-ISA subcommand runs: $DSRT_CPU_ISA's alone (to
/// profile it), else every one this CPU has.
std::vector<dsrt::cpu::Isa> benchIsas();

/// ds's f32 GEMM on [rows, 1024] x [1024, 1024]^T: the rate the FMAs of a
/// kernel timed beside it could reach at best, on the same ISA in the same
/// run.
struct F32GemmReference {
  int64_t rows;
  std::vector<float> x, w, y;
  dsrt::cpu::WeightMatrix m;
  F32GemmReference(int64_t rows, std::mt19937 &rng);
  /// GFLOP/s, best of `reps`.
  double gflops(const dsrt::cpu::KernelSet &ks, int reps);
  // `m` points into `w`.
  F32GemmReference(const F32GemmReference &) = delete;
  F32GemmReference &operator=(const F32GemmReference &) = delete;
};

} // namespace dsbench

#endif
