//===- ExpfConstants.h - the constants of glibc's expf ----------*- C++ -*-===//
//
// The vector sets' expf (KernelSet::expfRow) computes glibc's algorithm
// (sysdeps/ieee754/flt-32/e_expf.c since 2.27) lane by lane:
//
//   x / ln2 * 32 = k + r, |r| <= 1/2
//   exp(x) = 2^(k / 32) * (1 + C2 r + C1 r^2 + C0 r^3)
//
// in double, with 2^(k / 32) as a table entry times a power of two, the
// operations contracted as its FMA build (__expf_fma) contracts them. glibc
// takes that build on every CPU with FMA and AVX2, which every vector set
// here requires, so the lanes give libm's expf bit for bit (ExpfTest): the
// dense MLP's SiLU keeps its values in every path (scalar, GEMV, GEMM).
// Data only: no code of an ISA's file may be shared (Kernels.h).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_EXPFCONSTANTS_H
#define DSRT_CPU_EXPFCONSTANTS_H

#include <cstdint>

namespace dsrt::cpu::expf_glibc {

/// 32 / ln 2, and the shift whose addition rounds to an integer in the
/// low bits of the sum.
constexpr double kInvLn2N = 0x1.71547652b82fep+5;
constexpr double kShift = 0x1.8p+52;
/// The cubic's coefficients, scaled for r in units of 1/32.
constexpr double kC0 = 0x1.c6af84b912394p-20;
constexpr double kC1 = 0x1.ebfce50fac4f3p-13;
constexpr double kC2 = 0x1.62e42ff0c52d6p-6;

/// |x| >= 88 (the top 12 bits of the float past 0x42a) takes the special
/// cases, in this order: -inf -> 0; inf or NaN -> x + x; x > kOverflow ->
/// inf; x < kUnderflow -> 0; x < kMayUnderflow -> the least denormal (the
/// rounded square of 0x1.4p-75f); else the common path.
constexpr uint32_t kSpecialTop = 0x42a;
constexpr float kOverflow = 0x1.62e42ep6f;
constexpr float kUnderflow = -0x1.9fe368p6f;
constexpr float kMayUnderflow = -0x1.9d1d9ep6f;

/// 2^(i / 32), rounded to nearest (checked against glibc's table).
alignas(64) constexpr double kExp2Table[32] = {
    0x1.0000000000000p+0, 0x1.059b0d3158574p+0, 0x1.0b5586cf9890fp+0,
    0x1.11301d0125b51p+0, 0x1.172b83c7d517bp+0, 0x1.1d4873168b9aap+0,
    0x1.2387a6e756238p+0, 0x1.29e9df51fdee1p+0, 0x1.306fe0a31b715p+0,
    0x1.371a7373aa9cbp+0, 0x1.3dea64c123422p+0, 0x1.44e086061892dp+0,
    0x1.4bfdad5362a27p+0, 0x1.5342b569d4f82p+0, 0x1.5ab07dd485429p+0,
    0x1.6247eb03a5585p+0, 0x1.6a09e667f3bcdp+0, 0x1.71f75e8ec5f74p+0,
    0x1.7a11473eb0187p+0, 0x1.82589994cce13p+0, 0x1.8ace5422aa0dbp+0,
    0x1.93737b0cdc5e5p+0, 0x1.9c49182a3f090p+0, 0x1.a5503b23e255dp+0,
    0x1.ae89f995ad3adp+0, 0x1.b7f76f2fb5e47p+0, 0x1.c199bdd85529cp+0,
    0x1.cb720dcef9069p+0, 0x1.d5818dcfba487p+0, 0x1.dfc97337b9b5fp+0,
    0x1.ea4afa2a490dap+0, 0x1.f50765b6e4540p+0,
};

} // namespace dsrt::cpu::expf_glibc

#endif // DSRT_CPU_EXPFCONSTANTS_H
