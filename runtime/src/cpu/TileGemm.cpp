//===- TileGemm.cpp - prefill's products on the GEMM tiles ----------------===//
#include "cpu/TileGemm.h"
#include "cpu/Gemv.h"
#include "cpu/SseTranspose.h"
#include "cpu/ThreadPool.h"
#include "cpu/TileTrace.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstring>

using namespace dsrt;
using namespace dsrt::cpu;

MatMulBuffers &dsrt::cpu::matmulBuffers() {
  static thread_local MatMulBuffers b;
  return b;
}

namespace {

MatMulBuffers &buffers() { return matmulBuffers(); }

/// The n floats at p rounded to bf16 in place (roundBf16's rounding),
/// kept as f32.
void roundInPlace(const KernelSet &ks, float *p, int64_t n) {
  constexpr int64_t kChunk = 512;
  uint16_t b[kChunk];
  for (int64_t i = 0; i < n; i += kChunk) {
    int64_t m = std::min(kChunk, n - i);
    ks.roundBf16(p + i, m, b);
    ks.decodeBf16(b, m, p + i);
  }
}

} // namespace

PackAs dsrt::cpu::packAs(const KernelSet &ks, const WeightMatrix &w,
                         bool exact) {
  if (!bf16Arithmetic(ks, w))
    return PackAs::F32;
  if (exact)
    return ks.isa == Isa::Amx && !ks.widenedTiles ? PackAs::Bf16Split
                                                  : PackAs::F32;
  return ks.widenedTiles ? PackAs::RoundedF32 : PackAs::Bf16Pairs;
}

namespace {

/// Rows [0, n) of a panel (row t at src + t * ldx, or at src + ix[t] *
/// ldx) packed as `as` (not Bf16Split) into dst, the panel's own place.
void packPanelRows(const KernelSet &ks, const float *src, int64_t ldx,
                   const int32_t *ix, int64_t n, int64_t k, PackAs as,
                   void *dst) {
  const bool bf16 = as == PackAs::Bf16Pairs;
  int64_t size = panelSize(k, bf16);
  if (bf16 && ks.packBf16)
    return ks.packBf16(src, ldx, ix, n, k, static_cast<uint16_t *>(dst));
  if (as == PackAs::RoundedF32 && ks.packRoundedF32)
    return ks.packRoundedF32(src, ldx, ix, n, k, static_cast<float *>(dst));
  if (as == PackAs::F32 && ks.packF32)
    return ks.packF32(src, ldx, ix, n, k, static_cast<float *>(dst));
  if (ix) {
    // No packer of the set's own: the rows side by side first.
    float *rowsCopy = buffers().gathered.get(size_t(n * k));
    for (int64_t t = 0; t < n; ++t)
      std::memcpy(rowsCopy + t * k, src + int64_t(ix[t]) * ldx,
                  size_t(k) * sizeof(float));
    src = rowsCopy;
    ldx = k;
  }
  if (bf16) {
    int64_t kp = (k + 1) / 2;
    uint16_t *o = static_cast<uint16_t *>(dst);
    if (n < kPanel)
      std::memset(o, 0, size_t(size) * 2);
    // The rows rounded with the vector kernel, then their pairs moved as
    // 32-bit units by the f32 transpose (which moves bits only).
    uint16_t *rounded = buffers().rowBf16.get(size_t(kPanel * kp * 2));
    for (int64_t t = 0; t < n; ++t) {
      rounded[t * kp * 2 + kp * 2 - 1] = 0; // an odd K's last pair
      roundRow(ks, src + t * ldx, k, rounded + t * kp * 2);
    }
    transposePanel(reinterpret_cast<const float *>(rounded), kp, n, kp,
                   reinterpret_cast<float *>(o));
    return;
  }
  float *o = static_cast<float *>(dst);
  if (n < kPanel)
    std::memset(o, 0, size_t(size) * sizeof(float));
  transposePanel(src, ldx, n, k, o);
  if (as == PackAs::RoundedF32)
    roundInPlace(ks, o, size);
}

/// r = x - bf16(x) over a row of k: what x's bf16 rounding left out,
/// exact in f32 (0 where x rounds to itself, an infinity included).
/// Returns whether any of it is nonzero.
bool roundingResidual(const KernelSet &ks, const float *x, int64_t k,
                      float *r) {
  std::memcpy(r, x, size_t(k) * sizeof(float));
  roundInPlace(ks, r, k);
  bool any = false;
  for (int64_t j = 0; j < k; ++j) {
    r[j] = r[j] == x[j] ? 0.0f : x[j] - r[j];
    any |= r[j] != 0.0f;
  }
  return any;
}

/// Panel p of x as PackAs::Bf16Split's three planes (planeSize apart):
/// hi = bf16(x), mid = bf16(x - hi) and lo = x - hi - mid, each an exact
/// bf16 (x - hi keeps 16 of f32's 24 significant bits, x - hi - mid 8),
/// so hi + mid + lo = x (for x below bf16's largest finite value, past
/// which hi is infinite). Returns the planes the panel needs: 1 where
/// every x is a bf16 value (a bf16 latent cache's rows), 2 where every
/// x - hi is, else 3; the planes past them are packed as zeros.
int packSplitPanel(const KernelSet &ks, const float *x, int64_t ldx,
                   int64_t rows, int64_t k, uint16_t *out, int64_t planeSize,
                   int64_t p) {
  int64_t n = std::min(rows - p * kPanel, int64_t(kPanel));
  const float *src = x + p * kPanel * ldx;
  float *mid = buffers().splitRows.get(size_t(2 * n * k)), *lo = mid + n * k;
  int planes = 1;
  for (int64_t t = 0; t < n; ++t) {
    if (roundingResidual(ks, src + t * ldx, k, mid + t * k))
      planes = std::max(planes, 2);
    if (roundingResidual(ks, mid + t * k, k, lo + t * k))
      planes = 3;
  }
  uint16_t *dst = out + p * panelSize(k, true);
  packPanelRows(ks, src, ldx, nullptr, n, k, PackAs::Bf16Pairs, dst);
  packPanelRows(ks, mid, k, nullptr, n, k, PackAs::Bf16Pairs, dst + planeSize);
  packPanelRows(ks, lo, k, nullptr, n, k, PackAs::Bf16Pairs,
                dst + 2 * planeSize);
  return planes;
}

} // namespace

void dsrt::cpu::packPanel(const KernelSet &ks, const float *x, int64_t ldx,
                          const int32_t *index, int64_t rows, int64_t k,
                          PackAs as, void *out, int64_t p) {
  assert(as != PackAs::Bf16Split && "three planes: pack's");
  const bool bf16 = as == PackAs::Bf16Pairs;
  int64_t size = panelSize(k, bf16);
  int64_t n = std::min(rows - p * kPanel, int64_t(kPanel));
  const float *src = index ? x : x + p * kPanel * ldx;
  const int32_t *ix = index ? index + p * kPanel : nullptr;
  void *dst = bf16
                  ? static_cast<void *>(static_cast<uint16_t *>(out) + p * size)
                  : static_cast<void *>(static_cast<float *>(out) + p * size);
  packPanelRows(ks, src, ldx, ix, n, k, as, dst);
}

PackedX dsrt::cpu::pack(const KernelSet &ks, const float *x, int64_t ldx,
                        int64_t rows, int64_t k, PackAs as) {
  const bool bf16 = packsPairs(as);
  PackedX p;
  p.rows = rows;
  p.k = k;
  p.panels = (rows + kPanel - 1) / kPanel;
  p.planes = as == PackAs::Bf16Split ? 3 : 1;
  p.planeSize = p.panels * panelSize(k, bf16);
  size_t count = size_t(p.planes * p.planeSize);
  void *out;
  if (bf16)
    p.bf16 = static_cast<uint16_t *>(out = buffers().packed16.get(count));
  else
    p.f32 = static_cast<float *>(out = buffers().packed.get(count));
  // Split over the pool too: packing alone on the caller's thread would
  // leave the other cores waiting for the tiles.
  std::atomic<int> planes{1};
  parallelFor(p.panels, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      if (as == PackAs::Bf16Split) {
        int need = packSplitPanel(ks, x, ldx, rows, k,
                                  static_cast<uint16_t *>(out), p.planeSize, i);
        int seen = planes.load(std::memory_order_relaxed);
        while (need > seen && !planes.compare_exchange_weak(seen, need))
          ;
      } else {
        packPanel(ks, x, ldx, nullptr, rows, k, as, out, i);
      }
    }
  });
  // Planes of zeros add nothing to any sum: where x is bf16 already (a
  // bf16 latent cache's rows, through kv_b's exact expansion), its
  // products take one pass of the tiles, not three.
  if (as == PackAs::Bf16Split)
    p.planes = planes.load();
  return p;
}

namespace {

/// decodeRow over the row at `row` (FP8: its block row's `scales`), for
/// callers that have its address already.
void decodeRowAt(const KernelSet &ks, WeightFormat format, const uint8_t *row,
                 const float *scales, int64_t k0, int64_t n, float *dst) {
  switch (format) {
  case WeightFormat::F32:
    std::memcpy(dst, reinterpret_cast<const float *>(row) + k0,
                size_t(n) * sizeof(float));
    return;
  case WeightFormat::BF16:
    ks.decodeBf16(reinterpret_cast<const uint16_t *>(row) + k0, n, dst);
    return;
  case WeightFormat::FP8: {
    for (int64_t k = k0; k < k0 + n;) {
      int64_t len = std::min(k0 + n, (k / kScaleBlock + 1) * kScaleBlock) - k;
      ks.decodeFp8(row + k, len, scales[k / kScaleBlock], dst + (k - k0));
      k += len;
    }
    return;
  }
  }
}

} // namespace

void dsrt::cpu::decodeRow(const KernelSet &ks, const WeightMatrix &w, int64_t r,
                          int64_t k0, int64_t n, float *dst) {
  decodeRowAt(ks, w.format, w.row(r),
              w.format == WeightFormat::FP8 ? w.scaleRow(r) : nullptr, k0, n,
              dst);
}

namespace {

/// The chunk [k0, k0 + kc) of weight rows [r, r + m) as a prefetch, or
/// none where the rows cross parts (then the copy fetches them).
TilePrefetch chunkPrefetch(const WeightMatrix &w, int64_t r, int64_t m,
                           int64_t k0, int64_t kc, bool l1) {
  TilePrefetch pf;
  pf.l1 = l1;
  if (m <= 0 || r + m > w.rows || !w.inOnePart(r, m))
    return pf;
  int64_t es = int64_t(w.elementSize());
  pf.base = reinterpret_cast<const char *>(w.row(r)) + k0 * es;
  pf.ld = w.ld * es;
  pf.bytes = kc * es;
  pf.rows = int(m);
  return pf;
}

/// Whether the tile kernels may read mr weight rows `strideBytes` apart
/// where they lie: only if few of them share an L1 set (a 4 KiB stride
/// puts all of them in one 8-way set, and they would evict each other
/// between the 16 steps of k a line serves); else they are copied.
bool rowsFitL1Sets(int64_t strideBytes, int mr) {
  int64_t s = strideBytes % 4096, g = 4096;
  while (s) { // gcd: the distinct set offsets of rows r * stride
    int64_t t = g % s;
    g = s;
    s = t;
  }
  // Six of eight ways (a 2 KiB stride: bf16 rows of 1024) measured 1.3x
  // faster in place than copied (ds-cpu-bench experts, bench/RESULTS.md);
  // twelve (4 KiB) gained nothing measurable.
  int64_t distinct = 4096 / g;
  return (mr + distinct - 1) / distinct <= 6;
}

/// Stores a panel of a block's results into y as soon as its last chunk
/// completes, between two tile calls, rather than all panels at the
/// block's end: y's rows are a power of two apart (32 KiB for the
/// logits), so they share an L1 set and miss on every row either way; the
/// stores of one panel may then drain while the next tile computes. (It
/// measured the same as storing at the end, storeTile 2.9% against 2.8% of
/// a bf16 prefill: the vector transpose is what cut the scalar scatter's
/// 5.5%, bench/RESULTS.md.)
struct TileStore {
  void (*store)(const float *c, int64_t m, int64_t rows, float *y, int64_t ldy);
  const float *ctile;
  int mr;
  int64_t m, rows;
  float *y;
  int64_t ldy;
  void panel(int64_t p) const {
    // storeTile takes 16 weight rows at most: AMX's 32 in two.
    for (int64_t i = 0; i < m; i += 16)
      store(ctile + p * mr * kPanel + i * kPanel, std::min<int64_t>(16, m - i),
            std::min<int64_t>(kPanel, rows - p * kPanel),
            y + p * kPanel * ldy + i, ldy);
  }
};

/// The tile kernels for panel p of x: for a last panel of fewer than
/// kPanel rows, which experts' small groups leave, the smallest partial
/// tile the set has that covers its rows (the full tile would compute the
/// zero rows too).
struct PanelTiles {
  const KernelSet &ks;
  const PackedX &x;
  /// The full tile, or the partial one from `parts` for panel p.
  template <typename Tile, size_t N>
  Tile pick(int64_t p, Tile full, Tile const (&parts)[N]) const {
    if (p != x.panels - 1)
      return full;
    int64_t quarters =
        (x.rows - p * kPanel + kQuarterPanel - 1) / kQuarterPanel;
    for (int64_t q = std::max<int64_t>(quarters, 1); q <= int64_t(N); ++q)
      if (parts[q - 1])
        return parts[q - 1];
    return full;
  }
  decltype(KernelSet::tileF32) f32(int64_t p) const {
    return pick(p, ks.tileF32, ks.tileF32Part);
  }
  decltype(KernelSet::tileBf16) bf16(int64_t p) const {
    return pick(p, ks.tileBf16, ks.tileBf16Part);
  }
  decltype(KernelSet::tileFp8) fp8(int64_t p) const {
    return pick(p, ks.tileFp8, ks.tileFp8Part);
  }
  decltype(KernelSet::tileFp8Planes) fp8Planes(int64_t p) const {
    return pick(p, ks.tileFp8Planes, ks.tileFp8PlanesPart);
  }
  decltype(KernelSet::tileF32Scaled) f32Scaled(int64_t p) const {
    return pick(p, ks.tileF32Scaled, ks.tileF32ScaledPart);
  }
};

/// `pf`'s rows in equal shares over `calls` tile calls, in call order.
class PrefetchShares {
public:
  PrefetchShares(const TilePrefetch &pf, int64_t calls, bool intoL2)
      : pf(pf), perCall((pf.rows + calls - 1) / std::max<int64_t>(calls, 1)) {
    if (intoL2)
      this->pf.l1 = false;
  }
  /// The next call's share (no rows: nothing to prefetch).
  const TilePrefetch *next() {
    share = pf;
    share.base = pf.base ? pf.base + fed * pf.ld : nullptr;
    share.rows = int(std::min<int64_t>(perCall, pf.rows - fed));
    fed += share.rows;
    return share.rows > 0 && share.base ? &share : nullptr;
  }

private:
  TilePrefetch pf, share;
  int64_t perCall, fed = 0;
};

/// The FP8 rows [r, r + m)'s chunk [k0, k0 + kc) as exact bf16 in the
/// tile t (zero-padded by the caller), through every panel of x one scale
/// block at a time, each block's sums scaled once (ks.tileFp8).
void fp8TileBf16(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
                 int64_t r, int64_t m, int64_t k0, int64_t kc, uint16_t *t,
                 float *ctile, const TileStore *out, const TilePrefetch &pf) {
  const int mr = tileRows(ks, true);
  // `pf`'s rows go out over the tile calls, a share each, one line a pair
  // of k within a call (as the bf16 tile spreads its own).
  PrefetchShares shares(pf, (kc + kScaleBlock - 1) / kScaleBlock * x.panels,
                        /*intoL2=*/false);
  if (w.inOnePart(r, m))
    ks.fp8ToBf16(w.row(r) + k0, w.ld, m, kc, t, kTileLd);
  else
    for (int64_t i = 0; i < m; ++i)
      ks.fp8ToBf16(w.row(r + i) + k0, w.ld, 1, kc, t + i * kTileLd, kTileLd);
  float scales[kMaxTileRows] = {};
  const float *scaleRows[kMaxTileRows];
  w.scaleRowsFrom(r, m, scaleRows);
  PanelTiles tiles{ks, x};
  for (int64_t kb = 0; kb < kc; kb += kScaleBlock) {
    for (int64_t i = 0; i < m; ++i)
      scales[i] = scaleRows[i][(k0 + kb) / kScaleBlock];
    int64_t kp = (std::min(kScaleBlock, kc - kb) + 1) / 2;
    for (int64_t p = 0; p < x.panels; ++p) {
      const TilePrefetch *share = shares.next();
      if (x.planes > 1 && ks.tileFp8Planes)
        tiles.fp8Planes(p)(t + kb, kTileLd, scales, x.panelAt(0, p, k0 + kb),
                           x.planeSize, x.planes, kp, ctile + p * mr * kPanel,
                           share);
      else
        for (int i = 0; i < x.planes; ++i)
          tiles.fp8(p)(t + kb, kTileLd, scales, x.panelAt(i, p, k0 + kb), kp,
                       ctile + p * mr * kPanel, i == 0 ? share : nullptr);
      if (out && kb + kScaleBlock >= kc)
        out->panel(p);
    }
  }
}

/// The FP8 rows [r, r + m)'s chunk [k0, k0 + kc) as unscaled f32 in the
/// tile t (exact: every e4m3 value is an f32), through every panel of x one
/// scale block at a time, each block's sums scaled once into ctile, as
/// fp8TileBf16 and the dot products do: a product of an e4m3 weight and a
/// bf16-rounded x is exact in f32, so only the order of f32 sums within a
/// block differs between the paths. (A scale folded into each weight
/// summed the whole row in one chain: on FP8 ragged_v3 the prefill then
/// moved 16 of 17 seeds' logits past 2e-3 of the float64 reference through
/// bf16 rounding ties, against 10 of 17 this way.)
void fp8TileF32(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
                int64_t r, int64_t m, int64_t k0, int64_t kc, const float *t,
                float *ctile, const TileStore *out, const TilePrefetch &pf,
                int64_t pfPanel) {
  const int mr = ks.mr;
  const int64_t k = x.k;
  float scales[kMaxTileRows] = {};
  const float *scaleRows[kMaxTileRows];
  w.scaleRowsFrom(r, m, scaleRows);
  PanelTiles tiles{ks, x};
  for (int64_t kb = 0; kb < kc; kb += kScaleBlock) {
    const int64_t len = std::min(kScaleBlock, kc - kb);
    const bool last = kb + kScaleBlock >= kc;
    for (int64_t i = 0; i < m; ++i)
      scales[i] = scaleRows[i][(k0 + kb) / kScaleBlock];
    for (int64_t p = 0; p < x.panels; ++p) {
      const float *xp = x.f32 + (p * k + k0 + kb) * kPanel;
      const TilePrefetch *pp = p == pfPanel && kb == 0 ? &pf : nullptr;
      tiles.f32Scaled(p)(t + kb, kTileLd, scales, xp, len,
                         ctile + p * mr * kPanel, pp);
      if (out && last)
        out->panel(p);
    }
  }
}

/// One K chunk [k0, k0 + kc) of weight rows [r, r + m) (m <= mr) through
/// every panel of x, added into the block's accumulators ctile (a tile of
/// mr x kPanel per panel); `out` stores each panel once it is complete
/// (the block's last chunk), and `pf` is what to prefetch meanwhile.
/// Returns how the rows reached the tiles (DSRT_TILE_TRACE's path).
ChunkPath runChunk(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
                   int64_t r, int64_t m, int64_t k0, int64_t kc,
                   const TilePrefetch &pf, float *ctile, const TileStore *out) {
  const int mr = tileRows(ks, x.bf16 != nullptr);
  const int64_t k = x.k;
  MatMulBuffers &b = buffers();
  PanelTiles tiles{ks, x};
  auto after = [&](int64_t p) {
    if (out)
      out->panel(p);
  };
  // Rows read in place are prefetched into L2 from the first panel on,
  // for the most lead time (a group of experts' rows come from memory);
  // f32 rows to be copied into L1 during the last panel, which leaves
  // them there for the copy. bf16 rows to be copied go into L2 a share
  // with every panel: on AMX's tiles a panel is so short that the last
  // one could not bring 32 rows' chunk from memory, and the copy waited
  // for it (memcpy, 10% of a V3-width bf16 prefill); spread over the
  // panels, V3-width bf16 prefill ran 1.05-1.11x faster (six pairs,
  // bench/RESULTS.md). The f32 tiles gained nothing from the same.
  const int64_t pfPanel = pf.l1 ? x.panels - 1 : 0;
  // Whole blocks of f32 or bf16 rows (an even chunk) in one part whose
  // stride spreads them over L1's sets are read in place: the same
  // arithmetic as on a copy, without copying.
  // AMX's tiles (mrPairs) load whole lines, each once a panel: for one
  // panel (an expert's group) no line is read twice, so a copy only costs
  // (ds-cpu-bench experts 8 32 2048 7168 4 3 silu, bf16: 474-492 GFLOP/s
  // copied, 520-608 in place).
  const bool linesOnce = x.bf16 && ks.mrPairs && x.panels == 1;
  bool inPlace =
      m == mr && w.format != WeightFormat::FP8 && w.inOnePart(r, mr) &&
      (kc % 2 == 0 || !x.bf16) &&
      (linesOnce || rowsFitL1Sets(w.ld * int64_t(w.elementSize()), mr));
  if (x.bf16) {
    int64_t kp = (kc + 1) / 2;
    if (inPlace) {
      const uint16_t *t = reinterpret_cast<const uint16_t *>(w.row(r)) + k0;
      // Into L2, as every chunk read in place: gemmBlock asks for L1 where
      // the rows' stride crowds L1's sets (its hint for rows it copies),
      // which here are read in place only because each line is read once
      // (linesOnce), and 32 rows in two of L1's sets evict each other
      // there before the tiles reach them. One-panel chunks ran 6-8%
      // faster on the bench model, 8-17% at V3's widths (DSRT_TILE_TRACE,
      // bench/RESULTS.md).
      TilePrefetch next = pf;
      next.l1 = false;
      for (int64_t p = 0; p < x.panels; ++p) {
        for (int i = 0; i < x.planes; ++i)
          tiles.bf16(p)(t, w.ld, x.panelAt(i, p, k0), kp,
                        ctile + p * mr * kPanel,
                        p == pfPanel && i == 0 ? &next : nullptr);
        after(p);
      }
      return ChunkPath::InPlace;
    }
    // The rows' chunk, zero-padded to mr rows and an even K.
    uint16_t *t = b.wtile16.get(size_t(mr * kTileLd));
    if (m < mr || kc % 2)
      std::memset(t, 0, size_t(mr * kTileLd) * 2);
    if (w.format == WeightFormat::FP8) {
      fp8TileBf16(ks, x, w, r, m, k0, kc, t, ctile, out, pf);
      return ChunkPath::Converted;
    }
    if (ks.copyRows && w.inOnePart(r, m))
      ks.copyRows(reinterpret_cast<const uint16_t *>(w.row(r)) + k0, w.ld * 2,
                  m, kc * 2, t, kTileLd * 2);
    else
      for (int64_t i = 0; i < m; ++i)
        std::memcpy(t + i * kTileLd,
                    reinterpret_cast<const uint16_t *>(w.row(r + i)) + k0,
                    size_t(kc) * 2);
    PrefetchShares shares(pf, x.panels, /*intoL2=*/true);
    for (int64_t p = 0; p < x.panels; ++p) {
      const TilePrefetch *share = shares.next();
      for (int i = 0; i < x.planes; ++i)
        tiles.bf16(p)(t, kTileLd, x.panelAt(i, p, k0), kp,
                      ctile + p * mr * kPanel, i == 0 ? share : nullptr);
      after(p);
    }
    return ChunkPath::Copied;
  }
  if (inPlace && w.format == WeightFormat::F32) {
    const float *t = reinterpret_cast<const float *>(w.row(r)) + k0;
    for (int64_t p = 0; p < x.panels; ++p) {
      tiles.f32(p)(t, w.ld, x.f32 + (p * k + k0) * kPanel, kc,
                   ctile + p * mr * kPanel, p == pfPanel ? &pf : nullptr);
      after(p);
    }
    return ChunkPath::InPlace;
  }
  // The rows' chunk as f32 (FP8 unscaled: its scales go on each block's
  // sums), zero-padded to mr.
  float *t = b.wtile.get(size_t(mr * kTileLd));
  if (m < mr)
    std::memset(t + m * kTileLd, 0, size_t((mr - m) * kTileLd) * sizeof(float));
  const uint8_t *rows[kMaxTileRows];
  w.rowsFrom(r, m, rows, nullptr);
  if (w.format == WeightFormat::FP8) {
    for (int64_t i = 0; i < m; ++i)
      ks.decodeFp8(rows[i] + k0, kc, 1.0f, t + i * kTileLd);
    fp8TileF32(ks, x, w, r, m, k0, kc, t, ctile, out, pf, pfPanel);
    return ChunkPath::Converted;
  }
  for (int64_t i = 0; i < m; ++i)
    decodeRowAt(ks, w.format, rows[i], nullptr, k0, kc, t + i * kTileLd);
  for (int64_t p = 0; p < x.panels; ++p) {
    tiles.f32(p)(t, kTileLd, x.f32 + (p * k + k0) * kPanel, kc,
                 ctile + p * mr * kPanel, p == pfPanel ? &pf : nullptr);
    after(p);
  }
  return w.format == WeightFormat::F32 ? ChunkPath::Copied
                                       : ChunkPath::Converted;
}

/// runChunk, timed into DSRT_TILE_TRACE's shapes where it is set.
void blockChunk(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
                int64_t r, int64_t m, int64_t k0, int64_t kc,
                const TilePrefetch &pf, float *ctile, const TileStore *out) {
  if (!tileTraceOn()) {
    runChunk(ks, x, w, r, m, k0, kc, pf, ctile, out);
    return;
  }
  uint64_t begin = traceTicks();
  ChunkPath path = runChunk(ks, x, w, r, m, k0, kc, pf, ctile, out);
  double seconds = traceSeconds(begin, traceTicks());
  const char *format = w.format == WeightFormat::F32    ? "f32"
                       : w.format == WeightFormat::BF16 ? "bf16"
                                                        : "fp8";
  recordChunk({w.cols, format,
               x.planes == 3   ? "bf16x3"
               : x.planes == 2 ? "bf16x2"
               : x.bf16        ? "bf16"
                               : "f32",
               path, x.panels, x.rows, m, kc},
              seconds);
}

/// Packed x up to which gemmBlock takes its blocks one after the other,
/// each through every K chunk, rather than every block through one chunk
/// at a time: x then stays in L2 whole, and each block's weight rows are
/// read as one run (its mr rows lie together) instead of one chunk of
/// every block after another. Experts' groups of one or two panels: the
/// gate/up products ran 3-8% faster in ds-cpu-bench experts on Zen 4
/// (bench/RESULTS.md, "Zen 4 again"). Past this, x would not stay
/// in L2 and each block would read it from L3 again (the comment below).
///
/// FP8 rows go block by block up to an x as large as L2 (1 MiB on Zen 4
/// and 5): an FP8 chunk is converted to bf16 before its tiles run, and a
/// block's rows one chunk at a time, 7 KiB apart at V3's width, kept the
/// conversion waiting on memory (fp8ToBf16 took more samples than the
/// tiles it feeds, at 4.6x its time with its rows in L1). With a group's
/// x of one or two panels (32-64 rows, K 7168) each block streams its own
/// rows instead: ds-cpu-bench experts 8 32 2048 7168 4 3 silu, FP8, 262-292
/// -> 372-454 GFLOP/s, 64 rows 414-486 -> 426-547 (three interleaved runs
/// each; bench/RESULTS.md, "twenty-seventh session"). bf16 and f32 rows,
/// read in place, gained nothing from it.
constexpr int64_t kBlockByBlockBytes = 256 * 1024;
constexpr int64_t kFp8BlockByBlockBytes = 1024 * 1024;
bool blockByBlock(const PackedX &x, const WeightMatrix &w) {
  int64_t bytes =
      x.bf16 ? x.planes * panelSize(x.k, true) * 2 : panelSize(x.k, false) * 4;
  return x.panels * bytes <= (w.format == WeightFormat::FP8
                                  ? kFp8BlockByBlockBytes
                                  : kBlockByBlockBytes);
}

/// Row blocks gemmRange passes to gemmBlock at once: as many as keep their
/// accumulators (mr x kPanel floats per panel each) within kGroupBytes, so
/// that they stay in L2 beside the chunk of x; one where x is a single
/// panel (its chunk stays in L1 anyway).
constexpr int64_t kGroupBytes = 128 * 1024;
constexpr int64_t kMaxGroupBlocks = 8;
int64_t groupBlocks(const PackedX &x, int mr) {
  if (x.panels <= 1)
    return 1;
  int64_t each = x.panels * mr * kPanel * int64_t(sizeof(float));
  return std::clamp<int64_t>(kGroupBytes / each, 1, kMaxGroupBlocks);
}

} // namespace

// y[t, i] = x[t] . w[r + i] for i < m, single-threaded, in blocks of mr
// rows (the last may be short). Where x is larger than
// kBlockByBlockBytes, every block goes through one K chunk before any
// goes on to the next, so the chunk of x (every panel's, 16
// KiB a panel in bf16) is read from memory once for all of them and from
// L2 after that: the whole x of a 4096-wide product (2 MiB in bf16 for
// 256 tokens) does not fit in L2, and block by block every block read all
// of it from L3 (12% slower in a tile loop, bench/RESULTS.md). Each
// output's sum runs over the same chunks in the same order either way,
// so its value does not depend on m. The first chunk of weight rows
// [next, next + nextM) of nextW (default w) is prefetched during the
// last chunk (nextM 0: nothing follows).
void dsrt::cpu::gemmBlock(const KernelSet &ks, const PackedX &x,
                          const WeightMatrix &w, int64_t r, int64_t m,
                          int64_t next, int64_t nextM, float *y, int64_t ldy,
                          const WeightMatrix *nextW) {
  const int mr = tileRows(ks, x.bf16 != nullptr);
  const int64_t k = x.k;
  const int64_t blocks = (m + mr - 1) / mr, each = x.panels * mr * kPanel;
  float *ctile = buffers().ctile.get(size_t(blocks * each));
  std::memset(ctile, 0, size_t(blocks * each) * sizeof(float));
  auto rowsOf = [&](int64_t s) { return std::min<int64_t>(mr, m - s * mr); };
  auto store = [&](int64_t s) {
    return TileStore{ks.storeTile ? ks.storeTile : storeTile,
                     ctile + s * each,
                     mr,
                     rowsOf(s),
                     x.rows,
                     y + s * mr,
                     ldy};
  };
  if (k == 0) // no chunk: the zero sums
    for (int64_t s = 0; s < blocks; ++s)
      for (int64_t p = 0; p < x.panels; ++p)
        store(s).panel(p);
  // Into L1 where the next chunk is copied (FP8 converted) before use.
  const bool l1 = w.format == WeightFormat::FP8 ||
                  !rowsFitL1Sets(w.ld * int64_t(w.elementSize()), mr);
  // The first chunk of what follows this block's rows: the next block's,
  // or the next call's.
  auto firstOfNext = [&](int64_t s) {
    return s + 1 < blocks ? chunkPrefetch(w, r + (s + 1) * mr, rowsOf(s + 1), 0,
                                          std::min(kKc, k), l1)
                          : chunkPrefetch(nextW ? *nextW : w, next, nextM, 0,
                                          std::min(kKc, k), l1);
  };
  if (blockByBlock(x, w)) {
    for (int64_t s = 0; s < blocks; ++s) {
      TileStore out = store(s);
      for (int64_t k0 = 0; k0 < k; k0 += kKc) {
        int64_t kc = std::min(kKc, k - k0);
        bool last = k0 + kKc >= k;
        TilePrefetch pf =
            last ? firstOfNext(s)
                 : chunkPrefetch(w, r + s * mr, rowsOf(s), k0 + kKc,
                                 std::min(kKc, k - k0 - kKc), l1);
        blockChunk(ks, x, w, r + s * mr, rowsOf(s), k0, kc, pf,
                   ctile + s * each, last ? &out : nullptr);
      }
    }
    return;
  }
  for (int64_t k0 = 0; k0 < k; k0 += kKc) {
    int64_t kc = std::min(kKc, k - k0);
    bool last = k0 + kKc >= k;
    for (int64_t s = 0; s < blocks; ++s) {
      // Prefetched: the chunk the next tile pass reads.
      TilePrefetch pf =
          s + 1 < blocks
              ? chunkPrefetch(w, r + (s + 1) * mr, rowsOf(s + 1), k0, kc, l1)
          : !last ? chunkPrefetch(w, r, rowsOf(0), k0 + kKc,
                                  std::min(kKc, k - k0 - kKc), l1)
                  : firstOfNext(s);
      TileStore out = store(s);
      blockChunk(ks, x, w, r + s * mr, rowsOf(s), k0, kc, pf, ctile + s * each,
                 last ? &out : nullptr);
    }
  }
}

void dsrt::cpu::gemmRange(const KernelSet &ks, const PackedX &x,
                          const WeightMatrix &w, int64_t r0, int64_t n,
                          float *y, int64_t ldy) {
  const int mr = tileRows(ks, x.bf16 != nullptr);
  const int64_t step = groupBlocks(x, mr) * mr;
  for (int64_t j0 = 0; j0 < n; j0 += step) {
    int64_t m = std::min<int64_t>(step, n - j0);
    int64_t nextM = std::min<int64_t>(mr, std::max<int64_t>(0, n - j0 - step));
    gemmBlock(ks, x, w, r0 + j0, m, r0 + j0 + step, nextM, y + j0, ldy);
  }
}
