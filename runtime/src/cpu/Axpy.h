//===- Axpy.h - y += a * row for the row-combining kernels ------*- C++ -*-===//
//
// The head products (HeadMatmul.cpp) and decode's latent attention
// (LatentAttend.cpp) both sum weighted rows; one loop, compiled for
// AVX-512 or AVX2 + FMA where the active kernel set says the CPU has them.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_AXPY_H
#define DSRT_CPU_AXPY_H

#include "cpu/Isa.h"

#include <cstdint>

namespace dsrt::cpu {

/// y[i] += a * row[i], i < n.
using Axpy = void (*)(float a, const float *row, int64_t n, float *y);
/// The AVX-512 build of the loop from Avx512 up, the AVX2 + FMA one from
/// Avx2 (the same fused adds), the portable one below.
Axpy axpyFor(Isa isa);

} // namespace dsrt::cpu

#endif // DSRT_CPU_AXPY_H
