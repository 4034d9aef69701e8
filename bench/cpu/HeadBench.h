//===- HeadBench.h - the absorbed MLA's head products ---------------------===//
#ifndef DS_BENCH_CPU_HEADBENCH_H
#define DS_BENCH_CPU_HEADBENCH_H

#include <cstdint>
#include <string>

namespace dsbench {

/// ds-cpu-bench heads H DN DV DC LAYERS REPS: decode's head products (one
/// token, q_h W_UK_h then u_h W_UV_h^T) over LAYERS distinct kv_b_proj
/// weights of H (DN + DV) x DC read in turn, f32, bf16 and FP8: GB/s of
/// weight read and microseconds per layer. One JSON object.
int headsDecodeBench(int64_t h, int64_t dn, int64_t dv, int64_t dc,
                     int64_t layers, int reps);

/// ds-cpu-bench heads ROWS H DN DV DC DTYPE REPS: the same products for
/// ROWS tokens over one kv_b_proj stored as DTYPE, in GFLOP/s, beside the
/// per-row path and the runtime's f32-arithmetic GEMM on the same FLOPs.
/// One JSON object.
int headsRowsBench(int64_t rows, int64_t h, int64_t dn, int64_t dv, int64_t dc,
                   const std::string &dtype, int reps);

} // namespace dsbench

#endif
