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
};

const char *isaName(Isa isa);
/// "scalar", "avx2", "avx512", "avx512bf16", "avx512vbmi".
bool parseIsa(const std::string &name, Isa &out);
bool isaSupported(Isa isa);
/// Every path this CPU can run, scalar first.
std::vector<Isa> supportedIsas();
/// The best path this CPU can run.
Isa detectedIsa();

/// The path the runtime's kernels take: $DSRT_CPU_ISA when set, else
/// detectedIsa(). "" or a one-line error for a value that is unknown or
/// that this CPU cannot run (then the detected path is used).
std::string configureIsa();
Isa activeIsa();

} // namespace dsrt::cpu

#endif // DSRT_CPU_ISA_H
