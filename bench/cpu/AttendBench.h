//===- AttendBench.h - the naive MLA attend step against the GEMM ---------===//
#ifndef DS_BENCH_CPU_ATTENDBENCH_H
#define DS_BENCH_CPU_ATTENDBENCH_H

#include <cstdint>

namespace dsbench {

/// ds-cpu-bench attend TOKENS HEADS DN DR DV REPS: cpu::naiveAttendChunk
/// over a causal prefill of TOKENS tokens (in chunks of 256 rows, the
/// default --attention-chunk), every ISA path this CPU runs, in GFLOP/s
/// of the causal products (2 (dn + dr + dv) per attended (token, head,
/// row)), beside ds's f32 GEMM on [TOKENS, 1024] x [1024, 1024]^T on the
/// same ISA in the same run; best of REPS, the pool's threads. One JSON
/// object.
int attendBench(int64_t tokens, int64_t heads, int64_t dn, int64_t dr,
                int64_t dv, int reps);

} // namespace dsbench

#endif
