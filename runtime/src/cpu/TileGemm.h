//===- TileGemm.h - prefill's products on the GEMM tiles ---------*- C++
//-*-===//
//
// Internal to the CPU kernels (MatMul.cpp and TileGemm.cpp): the path taken
// for more than kGemvRows rows of x. x is packed once per call into panels
// of 32 transposed rows (PackedX); the weight's rows are streamed 12 x 256
// values at a time where they lie, or decoded (FP8, widened bf16) or
// copied into an L1 tile, and every panel of x runs the ISA's register
// tile over them (gemmBlock). Also the per-thread buffers both files grow.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_TILEGEMM_H
#define DSRT_CPU_TILEGEMM_H

#include "cpu/GrowBuffer.h"
#include "cpu/Kernels.h"
#include "cpu/WeightMatrix.h"

#include <cstdint>

namespace dsrt::cpu {

/// The calling thread's buffers of the matrix products: they only grow,
/// so steady-state calls allocate nothing.
struct MatMulBuffers {
  GrowBuffer<float> packed;      // x panels (f32), the calling thread's
  GrowBuffer<uint16_t> packed16; // x panels (bf16 pairs)
  GrowBuffer<float> ctile, wtile, gate, up;
  GrowBuffer<uint16_t> wtile16;
  GrowBuffer<uint16_t> rowBf16; // one row being packed
  GrowBuffer<float> gathered;   // a panel's gathered rows (no packF32)
  GrowBuffer<float> splitRows;  // a panel's Bf16Split residuals
  GrowBuffer<float> expv;       // exp(-gate) of a SiLU-mul epilogue
};
MatMulBuffers &matmulBuffers();

/// x packed once per call (see Kernels.h for the layouts).
struct PackedX {
  const float *f32 = nullptr;
  const uint16_t *bf16 = nullptr;
  int64_t rows = 0, k = 0, panels = 0;
  /// bf16 pairs: PackAs::Bf16Split's planes (planeSize uint16s apart),
  /// summed by the tiles one after the other: three, or fewer where the
  /// last ones are zero for every x (x already bf16: one); else one.
  int planes = 1;
  int64_t planeSize = 0;
  int64_t pairs() const { return (k + 1) / 2; }
  /// Plane i's pair-rows of panel p from column k (even) on.
  const uint16_t *panelAt(int i, int64_t p, int64_t k) const {
    return bf16 + i * planeSize + (p * pairs() + k / 2) * kPanel * 2;
  }
};

/// Floats (f32) or uint16 (bf16 pairs) of one packed panel.
inline int64_t panelSize(int64_t k, bool bf16) {
  return bf16 ? (k + 1) / 2 * kPanel * 2 : k * kPanel;
}

/// How x is packed for a product's tiles.
enum class PackAs {
  F32,        // as it is, for tileF32
  Bf16Pairs,  // rounded to bf16, paired (tileBf16, tileFp8)
  RoundedF32, // rounded to bf16, kept as f32 (KernelSet::widenedTiles)
  // As it is, as three bf16 terms that sum to it exactly, each paired:
  // f32 x on AMX's bf16 tiles with every product exact, as on tileF32
  // (AMX's bf16 tiles ran 1018-1065 GFLOP/s at the naive form's kv_b
  // expansion, 256 x 32768 x 512, where bf16 weights on the f32 tiles
  // ran 252-288: the three passes still come out ahead).
  Bf16Split,
};

/// Whether `as` packs bf16 pairs (one plane, or Bf16Split's three).
inline bool packsPairs(PackAs as) {
  return as == PackAs::Bf16Pairs || as == PackAs::Bf16Split;
}

/// The packing the tiles of a product with w take (`exact`: x as it is,
/// whatever the weight's format).
PackAs packAs(const KernelSet &ks, const WeightMatrix &w, bool exact);

/// Panel p of rows [0, rows) of x packed into `out` (panels of panelSize
/// each; the last zero-padded), as anything but Bf16Split (pack's). `index`
/// (may be null): row t of the product is x's row index[t] (the experts' rows
/// gathered from the tokens').
void packPanel(const KernelSet &ks, const float *x, int64_t ldx,
               const int32_t *index, int64_t rows, int64_t k, PackAs as,
               void *out, int64_t p);

/// Rows [0, rows) of x packed into the calling thread's buffer, the
/// panels split over the pool.
PackedX pack(const KernelSet &ks, const float *x, int64_t ldx, int64_t rows,
             int64_t k, PackAs as);

/// Row r of w, elements [k0, k0 + n), as f32 into dst.
void decodeRow(const KernelSet &ks, const WeightMatrix &w, int64_t r,
               int64_t k0, int64_t n, float *dst);

/// y[t, j] = x[t] . w[r + j] for j < m, single-threaded, in blocks of mr
/// rows; the first chunk of weight rows [next, next + nextM) of nextW
/// (default w) is prefetched during the last (nextM 0: nothing follows).
/// Each output's sum runs over the same chunks in the same order whatever
/// m is, so its value does not depend on how the rows were split.
void gemmBlock(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
               int64_t r, int64_t m, int64_t next, int64_t nextM, float *y,
               int64_t ldy, const WeightMatrix *nextW = nullptr);

/// Prefill over weight rows [r0, r0 + n), single-threaded: gemmBlock over
/// groups of blocks whose accumulators stay in L2.
void gemmRange(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
               int64_t r0, int64_t n, float *y, int64_t ldy);

} // namespace dsrt::cpu

#endif // DSRT_CPU_TILEGEMM_H
