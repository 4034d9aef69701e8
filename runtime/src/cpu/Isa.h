//===- Isa.h - which vector instructions the CPU kernels use ---*- C++ -*-===//
//
// The GEMM/GEMV kernels exist once per instruction set; the best one the
// CPU has is picked at run time, and $DSRT_CPU_ISA forces another (tests
// run every path against the scalar one).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_ISA_H
#define DSRT_CPU_ISA_H

#include <string>
#include <vector>

namespace dsrt::cpu {

/// Ordered: each includes the ones before it.
enum class Isa {
  Scalar,     // portable C++
  Avx2,       // AVX2 + FMA + F16C
  Avx512,     // AVX512F/BW/VL: f32 arithmetic, 16 lanes
  Avx512Bf16, // + AVX512_BF16: bf16 weights x bf16 activations (vdpbf16ps)
  Avx512Vbmi, // + AVX512_VBMI: FP8 weights looked up as bf16 (vpermi2b), too
  Amx,        // + AMX-TILE/BF16: the bf16 and FP8 GEMM tiles on TDPBF16PS
};

const char *isaName(Isa isa);
/// "scalar", "avx2", "avx512", "avx512bf16", "avx512vbmi", "amx".
bool parseIsa(const std::string &name, Isa &out);
bool isaSupported(Isa isa);
/// Every path this CPU can run, scalar first.
std::vector<Isa> supportedIsas();
/// The best path this CPU can run.
Isa detectedIsa();

/// How the GEMV kernels fetch their weight stream ahead of their loads
/// (KernelsInline.h's prefetchAhead). The best hint depends on the
/// microarchitecture, not on the instruction set: on a Zen 5 EPYC
/// prefetchnta ran FP8 decode steps 1.07x faster than prefetcht2, bf16
/// and f32 level; on an Emerald Rapids Xeon prefetchnta ran a bf16 GEMV
/// from L3 at a quarter of prefetcht0's rate, and a bf16 decode at a third
/// (bench/RESULTS.md, "Weight stream prefetch hint per CPU").
enum class StreamPrefetch {
  NonTemporal, // prefetchnta
  L1,          // prefetcht0, and prefetcht2 further ahead (KernelsInline.h)
};
const char *streamPrefetchName(StreamPrefetch hint);
/// "nta", "t0".
bool parseStreamPrefetch(const std::string &name, StreamPrefetch &out);
/// AMD: NonTemporal (as measured on Zen 5); any other vendor: L1.
StreamPrefetch detectedStreamPrefetch();

/// The path the runtime's kernels take: $DSRT_CPU_ISA when set, else
/// detectedIsa(); their stream prefetch: $DSRT_CPU_PREFETCH when set,
/// else detectedStreamPrefetch(). "" or a one-line error for a value that
/// is unknown or that this CPU cannot run (then the detected one is used).
std::string configureIsa();
Isa activeIsa();
StreamPrefetch activeStreamPrefetch();

/// activeStreamPrefetch() == NonTemporal, as the kernels read it in
/// their loops (a plain flag, set before main: no guard to test per
/// prefetch).
extern const bool streamNonTemporal;

} // namespace dsrt::cpu

#endif // DSRT_CPU_ISA_H
