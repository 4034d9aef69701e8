//===- TileBench.cpp - ds-cpu-bench tile ----------------------------------===//
#include "TileBench.h"
#include "BenchUtil.h"

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <iterator>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// std::allocator at a 64-byte boundary, as the runtime's buffers
/// (GrowBuffer) are: a tile row or panel row across two cache lines loads
/// twice the lines (AMX's bf16 tile in L1, `tile 256 4096 4096`, ran 1.05
/// TFLOP/s on malloc's 16-byte alignment, 2.0-2.15 on 64).
template <typename T> struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <typename U> Aligned64(const Aligned64<U> &) {}
  T *allocate(size_t n) {
    return static_cast<T *>(
        ::operator new(n * sizeof(T), std::align_val_t(64)));
  }
  void deallocate(T *p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <typename U> bool operator==(const Aligned64<U> &) const {
    return true;
  }
};
template <typename T> using AlignedVector = std::vector<T, Aligned64<T>>;

/// Best GFLOP per CPU-second of `flops` done by f, over reps.
template <typename F> double rate(int reps, double flops, F f) {
  double b = dsbench::best(reps, f, false, dsbench::processCpuSeconds);
  return flops / std::max(b, 1e-12) / 1e9;
}

/// The tile call gemmBlock makes, one kind per weight format: 0 f32, 1
/// bf16, 2 FP8 (one 128-wide scale block per call).
struct Tile {
  const KernelSet &ks;
  int kind;
  int64_t kc; // K per call: one chunk (f32, bf16), one scale block (FP8)
  /// 0: the full tile; 1..3: the partial tile of that many quarter panels.
  int part = 0;
  bool exists() const {
    if (kind == 0)
      return part == 0 || ks.tileF32Part[part - 1];
    if (kind == 1)
      return part == 0 ? ks.tileBf16 != nullptr
                       : ks.tileBf16Part[part - 1] != nullptr;
    return part == 0 ? ks.tileFp8 != nullptr
                     : ks.tileFp8Part[part - 1] != nullptr;
  }
  /// Panel rows one call computes.
  int rows() const { return part ? part * kQuarterPanel : kPanel; }
  void operator()(const void *w, int64_t ldw, const void *x, float *c) const {
    // One scale a weight row, for the most rows a tile takes.
    float scales[kMaxTileRows];
    std::fill(std::begin(scales), std::end(scales), 1.0f);
    if (kind == 0)
      (part ? ks.tileF32Part[part - 1] : ks.tileF32)(
          static_cast<const float *>(w), ldw, static_cast<const float *>(x),
          kc, c, nullptr);
    else if (kind == 1)
      (part ? ks.tileBf16Part[part - 1] : ks.tileBf16)(
          static_cast<const uint16_t *>(w), ldw,
          static_cast<const uint16_t *>(x), kc / 2, c, nullptr);
    else
      (part ? ks.tileFp8Part[part - 1]
            : ks.tileFp8)(static_cast<const uint16_t *>(w), ldw, scales,
                          static_cast<const uint16_t *>(x), kc / 2, c, nullptr);
  }
  /// Bytes of one panel's K-element x chunk.
  int64_t xBytes(int64_t k) const {
    return k * kPanel * (kind == 0 ? 4 : 2);
  }
};

} // namespace

int dsbench::tileBench(int64_t rows, int64_t n, int64_t k, int reps) {
  const KernelSet &ks = kernelsFor(activeIsa());
  // Weight rows of the f32 tile and of the bf16 / FP8 tiles.
  const int mr32 = ks.mr, mrPairs = tileRows(ks, true),
            mrMax = std::max(mr32, mrPairs);
  const int64_t panels = (rows + kPanel - 1) / kPanel;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> small(-8, 8);
  // Weights and x as small integers in every format (exact, no Inf/NaN):
  // the kernels' speed does not depend on the values.
  AlignedVector<float> wf(size_t(mrMax * kTileLd)),
      xf(size_t(panels * k * kPanel));
  AlignedVector<uint16_t> wb(size_t(mrMax * kTileLd)),
      xb(size_t(panels * k * kPanel));
  for (size_t i = 0; i < wf.size(); ++i) {
    wf[i] = float(small(rng));
    wb[i] = roundToBf16(wf[i]);
  }
  for (size_t i = 0; i < xf.size(); ++i) {
    xf[i] = float(small(rng)) / 8;
    xb[i] = roundToBf16(xf[i]);
  }
  AlignedVector<float> c(size_t(panels * mrMax * kPanel));
  const char *names[3] = {"f32", "bf16", "fp8"};
  double l1[3] = {}, stream[3] = {}, gemm[3] = {}, partL1[3][3] = {},
         inPlaceL1[4] = {};
  for (int kind = 0; kind < 3; ++kind) {
    if ((kind == 1 && !ks.tileBf16) || (kind == 2 && !ks.tileFp8))
      continue;
    Tile tile{ks, kind, kind == 2 ? 128 : 256};
    const void *w = kind == 0 ? static_cast<const void *>(wf.data())
                              : static_cast<const void *>(wb.data());
    const char *x = kind == 0 ? reinterpret_cast<const char *>(xf.data())
                              : reinterpret_cast<const char *>(xb.data());
    const int mr = kind == 0 ? mr32 : mrPairs;
    double perCall = 2.0 * mr * kPanel * tile.kc;
    // (1) One chunk of one panel, again and again: L1 only.
    const int calls = 4096;
    l1[kind] = rate(reps, perCall * calls, [&] {
      for (int i = 0; i < calls; ++i)
        tile(w, kTileLd, x, c.data());
    });
    // One tile (0 full, 1..3 partial) with the weight rows ldw apart,
    // counting the rows it computes (0 where the set has none).
    auto partRate = [&](int part, int64_t ldw) {
      Tile pt{ks, kind, tile.kc, part};
      if (!pt.exists())
        return 0.0;
      return rate(reps, 2.0 * mr * pt.rows() * tile.kc * calls, [&] {
        for (int i = 0; i < calls; ++i)
          pt(w, ldw, x, c.data());
      });
    };
    // (1b) The same for each partial tile: at the full tile's rate, a
    // group's last panel costs only its rows.
    for (int part = 1; part <= 3; ++part)
      partL1[kind][part - 1] = partRate(part, kTileLd);
    // (1c) f32 only: the full and partial tiles on rows read in place, 1
    // KiB apart (an f32 row of 256, as an expert's down projection in the
    // bench model), where the stride is not the tile's constant kTileLd.
    if (kind == 0)
      for (int part = 0; part <= 3; ++part)
        inPlaceL1[part] = partRate(part, kKc);
    // (2) Every panel's chunks in gemmBlock's order (chunk, then panel).
    int64_t chunks = k / tile.kc;
    stream[kind] = rate(reps, perCall * double(chunks * panels) * 4, [&] {
      for (int rep = 0; rep < 4; ++rep)
        for (int64_t ch = 0; ch < chunks; ++ch)
          for (int64_t p = 0; p < panels; ++p)
            tile(w, kTileLd, x + tile.xBytes(p * k + ch * tile.kc),
                 c.data() + p * mr * kPanel);
    });
  }
  // (3) The whole product.
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(size_t(rows * k)), w(size_t(n * k)), y(size_t(rows * n));
  for (float &v : x)
    v = u(rng);
  for (float &v : w)
    v = u(rng);
  std::vector<uint16_t> w16(w.size());
  std::vector<uint8_t> w8(w.size());
  for (size_t i = 0; i < w.size(); ++i) {
    w16[i] = roundToBf16(w[i]);
    w8[i] = uint8_t(rng() & 0x77); // finite e4m3 codes of both signs
  }
  std::vector<float> scales(size_t((n + 127) / 128 * ((k + 127) / 128)),
                            0.01f);
  double flops = 2.0 * double(rows) * double(n) * double(k);
  auto product = [&](const WeightMatrix &m) {
    return rate(reps, flops,
                [&] { matmul(ks, x.data(), k, rows, m, 0, n, y.data(), n); });
  };
  gemm[0] = product(WeightMatrix::single(WeightFormat::F32, w.data(), n, k, k));
  if (ks.tileBf16)
    gemm[1] =
        product(WeightMatrix::single(WeightFormat::BF16, w16.data(), n, k, k));
  gemm[2] = product(WeightMatrix::single(WeightFormat::FP8, w8.data(), n, k, k,
                                         scales.data()));
  std::printf("{\"rows\": %lld, \"n\": %lld, \"k\": %lld, \"isa\": \"%s\", "
              "\"threads\": %d",
              (long long)rows, (long long)n, (long long)k,
              isaName(activeIsa()), numThreads());
  for (int kind = 0; kind < 3; ++kind)
    std::printf(", \"%s\": {\"tile_l1_gflops\": %.1f, "
                "\"tile_stream_gflops\": %.1f, \"gemm_gflops\": %.1f, "
                "\"stream_of_l1\": %.3f, \"gemm_of_l1\": %.3f, "
                "\"quarter_l1_gflops\": %.1f, \"half_l1_gflops\": %.1f, "
                "\"three_quarter_l1_gflops\": %.1f}",
                names[kind], l1[kind], stream[kind], gemm[kind],
                l1[kind] > 0 ? stream[kind] / l1[kind] : 0.0,
                l1[kind] > 0 ? gemm[kind] / l1[kind] : 0.0, partL1[kind][0],
                partL1[kind][1], partL1[kind][2]);
  std::printf(", \"f32_in_place\": {\"tile_l1_gflops\": %.1f, "
              "\"quarter_l1_gflops\": %.1f, \"half_l1_gflops\": %.1f, "
              "\"three_quarter_l1_gflops\": %.1f}",
              inPlaceL1[0], inPlaceL1[1], inPlaceL1[2], inPlaceL1[3]);
  std::printf("}\n");
  return 0;
}
