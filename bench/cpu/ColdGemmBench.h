//===- ColdGemmBench.h - prefill's products with their data cold ---------===//
#ifndef DS_BENCH_CPU_COLDGEMMBENCH_H
#define DS_BENCH_CPU_COLDGEMMBENCH_H

#include <cstdint>

namespace dsbench {

/// ds-cpu-bench gemm-cold ROWS N K REPS: cpu::matmul of ROWS x N x K (all
/// threads, wall time, best of REPS) per weight format, warm (the same
/// weights and output every call, which then stay in the caches, as in
/// `ds-cpu-bench gemm`) and cold as in a model's prefill (8 weight sets
/// and outputs in turn, 256 MiB read before each call so that neither is
/// in any cache, x written just before the call as a kernel's output
/// would be). Their ratio is what a prefill's products lose to their
/// weights and outputs arriving from memory. One JSON object.
int coldGemmBench(int64_t rows, int64_t n, int64_t k, int reps);

} // namespace dsbench

#endif
