//===- Gemv.h - decode's products over a few rows of x ---------*- C++ -*-===//
//
// Internal to the CPU kernels (MatMul.cpp and Gemv.cpp): the dot-product
// path taken for up to kGemvRows rows of x, and the bf16 rounding rule it
// shares with prefill's tiles.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_GEMV_H
#define DSRT_CPU_GEMV_H

#include "cpu/MatMul.h"

#include <vector>

namespace dsrt::cpu {

/// Decode's x as the dot-product kernels read it: f32 rows, or rows
/// rounded to bf16 (see gemvInput).
struct GemvX {
  const float *x = nullptr;
  int64_t ldx = 0;
  const uint16_t *xb = nullptr; // for ks.dotBf16Pairs
  int64_t ldxb = 0;
};

/// Whether products with w run in bf16 on this kernel set (x rounded to
/// bf16, exact products, f32 sums): bf16 weights with a bf16 tile, FP8
/// weights with an FP8 tile.
bool bf16Arithmetic(const KernelSet &ks, const WeightMatrix &w);

/// The kernel set's bf16 rounding of n floats (every set rounds alike).
void roundRow(const KernelSet &ks, const float *src, int64_t n, uint16_t *dst);

/// Decode's rows of x as prefill sees them (rounded to bf16 where
/// bf16Arithmetic), once per call; only the groups' rows when `only` is
/// given. The result lives in this thread's buffers until its next call.
/// `index` (may be null): row t is x's row index[t] (gathered).
GemvX gemvInput(const KernelSet &ks, const WeightMatrix &w, const float *x,
                int64_t ldx, int64_t rows,
                const std::vector<MatmulGroup> *only = nullptr,
                const int32_t *index = nullptr);

/// y[t, j] = x[t] . w[r0 + j] for t < rows, j < n, single-threaded; each
/// row's result independent of how many rows came with it.
void gemvRange(const KernelSet &ks, const GemvX &x, int64_t rows,
               const WeightMatrix &w, int64_t r0, int64_t n, float *y,
               int64_t ldy);

} // namespace dsrt::cpu

#endif // DSRT_CPU_GEMV_H
