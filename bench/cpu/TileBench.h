//===- TileBench.h - the GEMM tile kernels against their own ceiling -----===//
#ifndef DS_BENCH_CPU_TILEBENCH_H
#define DS_BENCH_CPU_TILEBENCH_H

#include <cstdint>

namespace dsbench {

/// ds-cpu-bench tile ROWS N K REPS: on the calling thread, in GFLOP per
/// CPU-second (so other processes on a shared machine cost little but
/// cache), (1) each tile kernel (tileF32, tileBf16, tileFp8 of the active
/// kernel set) in a loop over one weight chunk and one panel of x that
/// stay in L1: the kernel's own ceiling on this core, and the same for
/// each partial tile (a quarter, half, three quarters of the panel's
/// rows: KernelSet::tileF32Part), counting the rows it computes, with the
/// weights at the L1 tile's stride (kTileLd, the kernels' constant) and,
/// for f32 (`f32_in_place`), at 1 KiB as rows read in place; (2) the
/// full kernel
/// over a whole panel set of a ROWS x K x, chunk by chunk, as gemmBlock
/// walks it (x streamed from L2/L3, weights from L1); (3) cpu::matmul of
/// ROWS x N x K with one thread (DSRT_NUM_THREADS=1 makes the pool one
/// thread; with more, the rate counts every thread's CPU time). Ratios of
/// (2) and (3) to (1) say how much the GEMM around the tile loses. Best of
/// REPS. One JSON object.
int tileBench(int64_t rows, int64_t n, int64_t k, int reps);

} // namespace dsbench

#endif
