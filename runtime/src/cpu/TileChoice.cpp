//===- TileChoice.cpp - the GEMM tiles for bf16 and FP8 weights -----------===//
#include "cpu/TileChoice.h"

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <vector>

using namespace dsrt::cpu;

const char *dsrt::cpu::gemmTilesName(GemmTiles tiles) {
  return tiles == GemmTiles::Bf16 ? "bf16" : "f32";
}

namespace {

double threadSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

} // namespace

void dsrt::cpu::measureTiles(const KernelSet &ks, double &bf16Gflops,
                             double &f32Gflops) {
  bf16Gflops = f32Gflops = 0;
  if (!ks.tileBf16)
    return;
  // One 128-deep chunk of one panel, again and again: about 28 KiB of
  // weights, x and accumulators, all in L1, so only the arithmetic is
  // timed. Row strides are not a power of two (no L1 set conflicts). The
  // values are small and exact; the tiles' speed does not depend on them.
  constexpr int64_t kc = 128, ld = kc + 8;
  constexpr int calls = 256, trials = 5;
  const int mr = ks.mr, mrPairs = tileRows(ks, true);
  std::vector<float> wf(size_t(mr * ld), 0.5f), xf(size_t(kc * kPanel), 0.25f);
  std::vector<uint16_t> wb(size_t(mrPairs * ld), roundToBf16(0.5f)),
      xb(xf.size(), roundToBf16(0.25f));
  std::vector<float> c(size_t(std::max(mr, mrPairs) * kPanel));
  const double flops = 2.0 * mr * kPanel * kc * calls,
               flopsBf16 = 2.0 * mrPairs * kPanel * kc * calls;
  double bestF32 = 1e30, bestBf16 = 1e30;
  // Interleaved trials, the best of each: a trial that lost the core to
  // another thread or the hypervisor does not decide.
  for (int t = 0; t < trials; ++t) {
    std::fill(c.begin(), c.end(), 0.0f);
    double t0 = threadSeconds();
    for (int i = 0; i < calls; ++i)
      ks.tileF32(wf.data(), ld, xf.data(), kc, c.data(), nullptr);
    double t1 = threadSeconds();
    for (int i = 0; i < calls; ++i)
      ks.tileBf16(wb.data(), ld, xb.data(), kc / 2, c.data(), nullptr);
    double t2 = threadSeconds();
    bestF32 = std::min(bestF32, t1 - t0);
    bestBf16 = std::min(bestBf16, t2 - t1);
  }
  f32Gflops = flops / std::max(bestF32, 1e-9) / 1e9;
  bf16Gflops = flopsBf16 / std::max(bestBf16, 1e-9) / 1e9;
}

const TileChoice &dsrt::cpu::activeTileChoice() {
  static const TileChoice choice = [] {
    TileChoice c;
    const Isa isa = activeIsa();
    const KernelSet &ks = kernelsFor(isa);
    c.choice = ks.tileBf16 != nullptr;
    c.tiles = c.choice ? GemmTiles::Bf16 : GemmTiles::F32;
    const char *env = std::getenv("DSRT_CPU_TILES");
    if (env && *env) {
      std::string v = env;
      if (v != "bf16" && v != "f32")
        c.error =
            "DSRT_CPU_TILES='" + v + "' is unknown (expected bf16 or f32)";
      else if (v == "bf16" && !c.choice)
        c.error = std::string("DSRT_CPU_TILES=bf16: the ") + isaName(isa) +
                  " kernels have no bf16 tiles";
      else {
        c.tiles = v == "bf16" ? GemmTiles::Bf16 : GemmTiles::F32;
        c.by = "DSRT_CPU_TILES";
        return c;
      }
    }
    if (!c.choice)
      return c;
    measureTiles(ks, c.bf16Gflops, c.f32Gflops);
    c.by = "measured";
    c.tiles = c.f32Gflops > kWidenMargin * c.bf16Gflops ? GemmTiles::F32
                                                        : GemmTiles::Bf16;
    return c;
  }();
  return choice;
}

const KernelSet &dsrt::cpu::activeKernels() {
  static const KernelSet &ks = activeTileChoice().tiles == GemmTiles::F32
                                   ? widenedTileKernels(activeIsa())
                                   : kernelsFor(activeIsa());
  return ks;
}
