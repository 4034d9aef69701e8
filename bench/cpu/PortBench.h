//===- PortBench.h - what FP8's kernels cost a core, per instruction ------===//
#ifndef DS_BENCH_CPU_PORTBENCH_H
#define DS_BENCH_CPU_PORTBENCH_H

namespace dsbench {

/// ds-cpu-bench ports REPS: one thread's cost of the instructions FP8's
/// kernels are made of, in cycles (a dependent chain of FMAs is taken as
/// 4 cycles each): each instruction's throughput over independent chains,
/// mixes that show which share a port, and the runtime's own e4m3 -> bf16
/// conversion (KernelSet::fp8ToBf16) over L1-resident codes, in GB/s, once
/// with every 64-byte group of normal codes (GF(2) affine maps where the
/// CPU has GFNI) and once with a zero code in every group (the table
/// lookup). Needs AVX512-BF16, VBMI and GFNI; one JSON object.
int portBench(int reps);

} // namespace dsbench

#endif
