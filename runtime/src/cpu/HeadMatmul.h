//===- HeadMatmul.h - per-head products, one weight's rows -*- C++ -*-===//
//
// ds.head_matmul on the CPU path (convert-ds-to-loops head-matmul-calls):
// every head h multiplies its slice of x by its own block of weight rows,
// rows [h * group + offset, ...) of one binding (the absorbed MLA's W_UK and
// W_UV, both blocks of kv_b_proj). The weight is read where it lies (f32,
// bf16 or FP8 with its 128x128 block scales), so the binding needs no f32
// copy; products are in f32 arithmetic (bf16 widened, FP8 scaled: exact),
// as the generated kernel they replace computed them.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_HEADMATMUL_H
#define DSRT_CPU_HEADMATMUL_H

#include "cpu/Kernels.h"
#include "cpu/MemRef.h"
#include "cpu/WeightMatrix.h"

#include <string>

namespace dsrt::cpu {

/// Tokens from which the untransposed product runs through the GEMM tile
/// kernel instead of one axpy per (token, weight row). `ds-cpu-bench heads
/// ROWS ...` at V3's shapes (one thread, loaded machine): the tile path
/// 1.6-1.9x the axpy path at 2 rows, 2-6x from 8 rows; decode's single row
/// keeps the axpy path (the tile would compute mr rows for it).
constexpr int64_t kHeadGemmRows = 4;

/// transpose:  out[t, h, n] = sum_k x[t, h, k] * w[h * group + offset + n, k]
/// otherwise:  out[t, h, n] = sum_k x[t, h, k] * w[h * group + offset + k, n]
/// (each output summed from k = 0 upwards). Returns "" or a description of
/// inconsistent shapes or rows past the weight (then nothing is written).
std::string headMatmul(const MemRef<float, 3> &x, const WeightMatrix &w,
                       const MemRef<float, 3> &out, int64_t group,
                       int64_t offset, bool transpose);
/// The same with one ISA's kernels (tests compare every ISA's): the
/// others take the active one's.
std::string headMatmul(const KernelSet &ks, const MemRef<float, 3> &x,
                       const WeightMatrix &w, const MemRef<float, 3> &out,
                       int64_t group, int64_t offset, bool transpose);
/// The same over an f32 memref weight (unit column stride).
std::string headMatmul(const MemRef<float, 3> &x, const MemRef<float, 2> &w,
                       const MemRef<float, 3> &out, int64_t group,
                       int64_t offset, bool transpose);

/// headMatmul for the rows of a ragged step's absorbed sequences only
/// (ds.head_matmul skip(query_start)): sequence s owns tokens
/// [queryStart[s], queryStart[s + 1]); those of the sequences with at least
/// max(naiveMinTokens, 1) tokens (the naive form's) are neither computed
/// nor written (ds.paged_naive_attention replaces them), rows outside every
/// sequence are zeroed, the others get exactly what headMatmul gives them.
/// Adds the number of rows computed to *computedRows when it is not null.
/// Returns "" or a description of inconsistent shapes or a query_start that
/// is not non-decreasing within [0, tokens] (then nothing is written).
std::string headMatmulSkip(const MemRef<float, 3> &x, const WeightMatrix &w,
                           const MemRef<float, 3> &out,
                           const MemRef<int32_t, 1> &queryStart, int64_t group,
                           int64_t offset, bool transpose,
                           int64_t naiveMinTokens, int64_t *computedRows);
std::string headMatmulSkip(const MemRef<float, 3> &x, const MemRef<float, 2> &w,
                           const MemRef<float, 3> &out,
                           const MemRef<int32_t, 1> &queryStart, int64_t group,
                           int64_t offset, bool transpose,
                           int64_t naiveMinTokens, int64_t *computedRows);

/// y[T, N] = x[T, K] * w[N, K]^T like cpu::linear, but in f32 arithmetic
/// whatever the weight's format: x is never rounded to bf16. The naive MLA
/// form expands its latents through kv_b_proj with it, so that form and the
/// absorbed one (headMatmul, also exact) agree to f32 accumulation on bf16
/// checkpoints. Returns "" or a description of inconsistent shapes.
std::string linearExact(const MemRef<float, 2> &x, const WeightMatrix &w,
                        const MemRef<float, 2> &y);
std::string linearExact(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                        const MemRef<float, 2> &y);

} // namespace dsrt::cpu

#endif // DSRT_CPU_HEADMATMUL_H
