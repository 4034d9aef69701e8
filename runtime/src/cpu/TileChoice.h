//===- TileChoice.h - the GEMM tiles for bf16 and FP8 weights --*- C++ -*-===//
//
// Where the CPU has a bf16 dot product (vdpbf16ps), the bf16 and FP8
// GEMMs can run on it (tileBf16 / tileFp8) or on the f32 FMA tile over
// widened weights (KernelSet::widenedTiles). Which is faster is a fact of
// the microarchitecture, not of the instruction set: on Zen 4 and 5 the
// dot product does twice the f32 FMA's work an instruction at the same
// rate; on an Emerald Rapids Xeon (no AMX) it ran at 0.57x the FMA tile
// (ds-cpu-bench gemm 512 2048 2048: 165 against 290 GFLOP/s). So the
// runtime measures both tiles once, on data in L1, and takes the faster;
// $DSRT_CPU_TILES=bf16|f32 forces one.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_TILECHOICE_H
#define DSRT_CPU_TILECHOICE_H

#include "cpu/Kernels.h"

#include <string>

namespace dsrt::cpu {

enum class GemmTiles {
  Bf16, // tileBf16 / tileFp8 (vdpbf16ps)
  F32,  // tileF32 over widened weights
};

struct TileChoice {
  GemmTiles tiles = GemmTiles::Bf16;
  /// Whether the active set has both to choose from.
  bool choice = false;
  /// How it was chosen: "measured", "DSRT_CPU_TILES", or "only" (one
  /// kind of tile in the set).
  const char *by = "only";
  /// The L1 rates measured (GFLOP per CPU-second of one thread), 0 where
  /// nothing was measured.
  double bf16Gflops = 0, f32Gflops = 0;
  /// "" or a one-line error for an unknown or inapplicable
  /// $DSRT_CPU_TILES (then the measured choice is used).
  std::string error;
};

const char *gemmTilesName(GemmTiles tiles);

/// The f32 tile's rate has to pass the bf16 tile's by this factor: the
/// widened path also widens each chunk of weights and packs x at twice
/// the bytes, so a tie in L1 is not a tie in a GEMM.
constexpr double kWidenMargin = 1.15;

/// The choice for activeIsa(), made on first use (a few milliseconds).
const TileChoice &activeTileChoice();

/// The kernels the runtime runs: kernelsFor(activeIsa()), or its
/// widenedTileKernels where activeTileChoice() took the f32 tiles.
const KernelSet &activeKernels();

/// The two tiles' L1 rates on ks (GFLOP per CPU-second, one thread).
void measureTiles(const KernelSet &ks, double &bf16Gflops, double &f32Gflops);

} // namespace dsrt::cpu

#endif // DSRT_CPU_TILECHOICE_H
