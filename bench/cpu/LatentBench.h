//===- LatentBench.h - decode's latent attention against the GEMM -*- C++
//-*-===//
#ifndef DS_BENCH_CPU_LATENTBENCH_H
#define DS_BENCH_CPU_LATENTBENCH_H

#include <cstdint>

namespace dsbench {

/// ds-cpu-bench latent CONTEXT HEADS DC DR LAYERS REPS: cpu::latentAttendDecode
/// for one decode token over CONTEXT cache rows of DC latent and DR rope
/// values, HEADS heads, one call per layer over LAYERS layers' caches (use
/// enough that they exceed the L3, as a decode step's weights evict the
/// cache rows), every ISA path this CPU runs, in GFLOP/s (2 (2 DC + DR) per
/// head and row), beside ds's f32 GEMM on [256, 1024] x [1024, 1024]^T on
/// the same ISA in the same run, and the cache bytes read per second;
/// best of REPS, the pool's threads. With DTYPE bf16 or fp8 the cache holds
/// bf16 values or FlashMLA's FP8 layout (scale groups of 128, or of DC
/// where smaller), and the bytes read are those rows'. One JSON object.
int latentBench(int64_t context, int64_t heads, int64_t dc, int64_t dr,
                int64_t layers, int reps, const char *dtype = "f32");

} // namespace dsbench

#endif
