//===- MatMul.h - y = x w^T over weights in their stored format -*- C++ -*-===//
//
// Decode (a few rows of x): one dot product per weight row, streaming the
// weight once at memory speed. Prefill (more rows): x is packed once per
// call into panels of 32 transposed rows; the weight is streamed from where
// it lies, 12 rows x 256 columns at a time, decoded (FP8 with its block
// scale, bf16 widened) or copied into an L1 tile that every panel of x then
// reuses from a register tile of 12 x 32 accumulators. So each weight
// element is read from memory once per call and nothing of it is kept:
// no repacked copy, no per-call allocation (buffers are per-thread and
// only grow). The pool splits the weight rows.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_MATMUL_H
#define DSRT_CPU_MATMUL_H

#include "cpu/Kernels.h"
#include "cpu/WeightMatrix.h"

#include <string>
#include <vector>

namespace dsrt::cpu {

/// Rows of x up to which the dot-product path is taken (by default; see
/// gemvRows).
constexpr int64_t kGemvRows = 16;

/// Whether a row's products may not depend on how many rows its call
/// carried, up to kGemvRows (decode's batch invariance: a token's logits
/// are the same alone or in a batched step of up to kGemvRows tokens,
/// dense products and expert groups alike). Off by default, as in vLLM and
/// SGLang: sets whose tiles overtake the dot products from fewer rows take
/// them from there (AMX, where 8 to 16 rows run 1.2-3.7x faster on the
/// tiles; expert groups on every set with bf16 or FP8 tiles, from 6-10
/// rows). On (DSRT_BATCH_INVARIANT=1, or setBatchInvariant for tests),
/// every product of up to kGemvRows rows takes the dot products.
bool batchInvariant();
void setBatchInvariant(bool on);
/// Reads DSRT_BATCH_INVARIANT once ("0", the default, or "1"); the error
/// for any other value, naming it.
std::string configureBatchInvariance();
/// parse for configureBatchInvariance: null or "" (unset) and "0" are off,
/// "1" on; false, with `error`, for any other value.
bool parseBatchInvariance(const char *value, bool &on, std::string &error);

/// Rows of x up to which matmul and matmulSiluMul take the dot products
/// for w on ks: kGemvRows while batchInvariant(); else, on AMX with bf16
/// arithmetic, 5 (bf16 weights) or 7 (FP8), where the tiles overtake them
/// (ds-cpu-bench gemm R N K, bench/RESULTS.md). `exact` (f32 arithmetic
/// over any weight): kGemvRows.
int64_t gemvRows(const KernelSet &ks, const WeightMatrix &w,
                 bool exact = false);

/// y[t, j] = sum_k x[t, k] * w[r0 + j, k] for t < rows, j < n. x and y
/// rows have unit column stride (row strides ldx, ldy). With bf16 weights
/// and a kernel set with bf16 arithmetic (FP8 weights and a set with
/// tileFp8), x is rounded to bf16 (the products and sums stay f32), in
/// decode and prefill alike.
void matmul(const KernelSet &ks, const float *x, int64_t ldx, int64_t rows,
            const WeightMatrix &w, int64_t r0, int64_t n, float *y,
            int64_t ldy);

/// One group of a grouped product: x rows [begin, end) times weight rows
/// [r0, r0 + n).
struct MatmulGroup {
  int64_t begin, end, r0;
};

/// matmul for each group (y rows as x rows, columns [0, n)). Groups of
/// decode's size share one parallel region: a decode step's experts are
/// one wake of the pool, not one each. `index` (may be null): row t of
/// the product (t < rows) is x's row index[t], gathered while packing
/// (ds.grouped_matmul's gather form); y keeps the product's rows.
void matmulGroups(const KernelSet &ks, const float *x, int64_t ldx,
                  int64_t rows, const WeightMatrix &w, int64_t n,
                  const std::vector<MatmulGroup> &groups, float *y, int64_t ldy,
                  const int32_t *index = nullptr);

/// y[t, j] = silu(x[t] . gate[g.r0 + j]) * (x[t] . up[g.r0 + j]) for the
/// rows t of each group g, j < n: matmulGroups over gate and up (same
/// shape and groups) with each group's x packed once for both and the
/// SiLU-mul as the epilogue: g / (1 + exp(-g)) * u of matmulGroups' values
/// bit for bit, exp being the ISA's expInPlace (NaiveAttend.h).
void matmulGroupsSiluMul(const KernelSet &ks, const float *x, int64_t ldx,
                         int64_t rows, const WeightMatrix &gate,
                         const WeightMatrix &up, int64_t n,
                         const std::vector<MatmulGroup> &groups, float *y,
                         int64_t ldy, const int32_t *index = nullptr);

/// out[t, :] = row ids[t] of w as f32 (widened, or e4m3 times its block
/// scale), t < n: the embedding gather, reading the table where it lies.
/// The ids must lie in [0, w.rows).
void gatherRows(const KernelSet &ks, const WeightMatrix &w, const int32_t *ids,
                int64_t idStride, int64_t n, float *out, int64_t ldo);

/// y[t, j] = silu(x w[g0 + j]) * (x w[u0 + j]) for j < n.
void matmulSiluMul(const KernelSet &ks, const float *x, int64_t ldx,
                   int64_t rows, const WeightMatrix &w, int64_t g0, int64_t u0,
                   int64_t n, float *y, int64_t ldy);

/// matmul in f32 arithmetic whatever the weight's format (bf16 widened,
/// FP8 scaled per block: exact products, x never rounded; on AMX's bf16
/// tiles x goes as three bf16 terms that sum to it exactly,
/// PackAs::Bf16Split), each output bit for bit matmulSerialF32's: x packed
/// once, the rows split over the pool in tiles (linearExact).
void matmulF32(const KernelSet &ks, const float *x, int64_t ldx, int64_t rows,
               const WeightMatrix &w, int64_t r0, int64_t n, float *y,
               int64_t ldy);

/// matmul on the calling thread only and in f32 arithmetic whatever the
/// weight's format (bf16 widened, FP8 scaled per block: exact products,
/// x never rounded), for callers that split the work over the pool
/// themselves (HeadMatmul.cpp: one head's rows of a weight per task).
void matmulSerialF32(const KernelSet &ks, const float *x, int64_t ldx,
                     int64_t rows, const WeightMatrix &w, int64_t r0, int64_t n,
                     float *y, int64_t ldy);

/// Row r of w, columns [k0, k0 + n), as f32 into dst.
void decodeWeightRow(const KernelSet &ks, const WeightMatrix &w, int64_t r,
                     int64_t k0, int64_t n, float *dst);

} // namespace dsrt::cpu

#endif // DSRT_CPU_MATMUL_H
