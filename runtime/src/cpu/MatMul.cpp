//===- MatMul.cpp - y = x w^T over weights in their stored format ---------===//
#include "cpu/MatMul.h"
#include "cpu/Gemm.h"
#include "cpu/Gemv.h"
#include "cpu/NaiveAttend.h"
#include "cpu/ThreadPool.h"
#include "cpu/TileGemm.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// Weight rows per silu-mul block (gate and up results of one block).
constexpr int64_t kSiluBlock = 96;

MatMulBuffers &buffers() { return matmulBuffers(); }

/// y[t * ldy + j] = g / (1 + exp(-g)) * u of g[t * m + j], u[t * m + j]
/// (t < rows, j < m), exp through the ISA's vector exp (the attention's:
/// within 2 ulp of expf), as the generated SiLU-mul it replaces takes a
/// polynomial exp: libm's expf one value at a time cost 4x the
/// epilogue's other work (perf, bf16 prefill).
void siluMulRows(const KernelSet &ks, const float *g, const float *u,
                 int64_t rows, int64_t m, float *y, int64_t ldy) {
  int64_t count = rows * m;
  float *e = buffers().expv.get(size_t(count));
  for (int64_t i = 0; i < count; ++i)
    e[i] = -g[i];
  attendKernelsFor(ks.isa).expInPlace(e, count);
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t j = 0; j < m; ++j)
      y[t * ldy + j] = g[t * m + j] / (1.0f + e[t * m + j]) * u[t * m + j];
}

/// Blocks of mr weight rows per work item of gemmGroups: each item's
/// gemmBlock call, zeroing and prefetch set-up are paid once for all of
/// them, and an expert's chunk of x stays in L1 across them. With the
/// output prefetch below, four cut the time around the tiles in
/// ds-cpu-bench experts' down shape (K 256: one tile call a block) from
/// 37-43% of the tile time to 28-29%, and gate/up's (K 1024) from 37-39%
/// to 31-34% (bench/RESULTS.md); with 86 and 22 blocks an expert, both
/// threads still get dozens of items.
constexpr int64_t kItemBlocks = 4;

/// Starts loading the y rows [begin, end), columns [j, j + m) into L2 for
/// an item that stores them later: y's rows are far apart (4 KiB in an
/// expert's down projection), each store of a block's 12 columns missed
/// (storeTile 14% of the tile time in that shape, 7% with this).
void prefetchRows(float *y, int64_t ldy, int64_t begin, int64_t end, int64_t j,
                  int64_t m) {
  for (int64_t t = begin; t < end; ++t) {
    const float *row = y + t * ldy + j;
    for (int64_t c = 0; c < m; c += 16)
      __builtin_prefetch(row + c, 0, 2);
    __builtin_prefetch(row + m - 1, 0, 2);
  }
}

/// Prefill's grouped products (experts of a few dozen rows each): each
/// group's x packed into its own panels, then one parallel region over
/// every group's items of up to kItemBlocks blocks of mr weight rows, so
/// that both threads stay busy across experts and no group waits for a
/// wake of the pool.
///
/// With `up`, w is the gate: each block's gate and up values go to the
/// thread's buffers and only silu(gate) * up is written, so the group's x
/// is packed once for both and the two products share the region.
void gemmGroups(const KernelSet &ks, const float *x, int64_t ldx,
                const int32_t *index, const WeightMatrix &w,
                const WeightMatrix *up, int64_t n,
                const std::vector<MatmulGroup> &groups, float *y, int64_t ldy) {
  const int64_t k = w.cols;
  const PackAs as = packAs(ks, w, false);
  const bool bf16 = as == PackAs::Bf16Pairs;
  const int mr = tileRows(ks, bf16);
  int64_t size = panelSize(k, bf16), blocksPer = (n + mr - 1) / mr;
  // Panels of group g start at panel first[g].
  static thread_local std::vector<int64_t> firstBuffer;
  std::vector<int64_t> &first = firstBuffer;
  first.assign(groups.size() + 1, 0);
  for (size_t g = 0; g < groups.size(); ++g)
    first[g + 1] =
        first[g] + (groups[g].end - groups[g].begin + kPanel - 1) / kPanel;
  size_t count = size_t(first.back() * size);
  void *packed = bf16 ? static_cast<void *>(buffers().packed16.get(count))
                      : static_cast<void *>(buffers().packed.get(count));
  auto packedOf = [&](size_t g) {
    PackedX p;
    p.rows = groups[g].end - groups[g].begin;
    p.k = k;
    p.panels = first[g + 1] - first[g];
    if (bf16)
      p.bf16 = static_cast<uint16_t *>(packed) + first[g] * size;
    else
      p.f32 = static_cast<float *>(packed) + first[g] * size;
    return p;
  };
  // Work item i packs panel i of all groups' panels.
  parallelFor(first.back(), 1, [&](int64_t b, int64_t e) {
    size_t g = size_t(std::upper_bound(first.begin(), first.end(), b) -
                      first.begin() - 1);
    for (int64_t i = b; i < e; ++i) {
      while (first[g + 1] <= i)
        ++g;
      const MatmulGroup &grp = groups[g];
      void *base = bf16 ? static_cast<void *>(static_cast<uint16_t *>(packed) +
                                              first[g] * size)
                        : static_cast<void *>(static_cast<float *>(packed) +
                                              first[g] * size);
      // Gathered: the group's rows through its part of the index.
      packPanel(ks, index ? x : x + grp.begin * ldx, ldx,
                index ? index + grp.begin : nullptr, grp.end - grp.begin, k, as,
                base, i - first[g]);
    }
  });
  // Work item i is up to kItemBlocks blocks of one group.
  const int64_t per = std::min(kItemBlocks, blocksPer), itemRows = per * mr;
  const int64_t itemsPer = (blocksPer + per - 1) / per;
  const int64_t items = int64_t(groups.size()) * itemsPer;
  parallelFor(items, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      size_t g = size_t(i / itemsPer);
      int64_t j0 = (i % itemsPer) * itemRows,
              m = std::min<int64_t>(itemRows, n - j0);
      const MatmulGroup &grp = groups[g];
      // The item after this one, whichever group it is in: the first
      // block of its weight rows (with `up`, the gate's, which it starts
      // with) is prefetched during this item's last chunk.
      const MatmulGroup *ng = nullptr;
      int64_t nj = 0, next = 0, nextM = 0;
      if (i + 1 < items) {
        ng = &groups[size_t((i + 1) / itemsPer)];
        nj = ((i + 1) % itemsPer) * itemRows;
        next = ng->r0 + nj;
        nextM = std::min<int64_t>(mr, n - nj);
      }
      float *out = y + grp.begin * ldy + j0;
      if (!up) {
        if (ng)
          prefetchRows(y, ldy, ng->begin, ng->end, nj,
                       std::min<int64_t>(itemRows, n - nj));
        gemmBlock(ks, packedOf(g), w, grp.r0 + j0, m, next, nextM, out, ldy);
        continue;
      }
      int64_t rows = grp.end - grp.begin;
      float *gv = buffers().gate.get(size_t(rows * itemRows));
      float *uv = buffers().up.get(size_t(rows * itemRows));
      // The gate's last chunk prefetches the up rows' first.
      gemmBlock(ks, packedOf(g), w, grp.r0 + j0, m, grp.r0 + j0,
                std::min<int64_t>(mr, m), gv, m, up);
      gemmBlock(ks, packedOf(g), *up, grp.r0 + j0, m, next, nextM, uv, m, &w);
      siluMulRows(ks, gv, uv, rows, m, out, ldy);
    }
  });
}

/// -1 until configureBatchInvariance or setBatchInvariant; then 0 or 1.
std::atomic<int> invariance{-1};

} // namespace

bool dsrt::cpu::parseBatchInvariance(const char *value, bool &on,
                                     std::string &error) {
  std::string v = value ? value : "";
  if (v == "1") {
    on = true;
    return true;
  }
  if (v.empty() || v == "0") {
    on = false;
    return true;
  }
  error = "DSRT_BATCH_INVARIANT='" + v + "' is unknown (expected 1 or 0)";
  return false;
}

std::string dsrt::cpu::configureBatchInvariance() {
  static const std::string error = [] {
    bool on = false;
    std::string e;
    parseBatchInvariance(std::getenv("DSRT_BATCH_INVARIANT"), on, e);
    int unset = -1;
    invariance.compare_exchange_strong(unset, on ? 1 : 0);
    return e;
  }();
  return error;
}

bool dsrt::cpu::batchInvariant() {
  if (invariance.load(std::memory_order_relaxed) < 0)
    configureBatchInvariance();
  return invariance.load(std::memory_order_relaxed) != 0;
}

void dsrt::cpu::setBatchInvariant(bool on) { invariance.store(on ? 1 : 0); }

int64_t dsrt::cpu::gemvRows(const KernelSet &ks, const WeightMatrix &w,
                            bool exact) {
  if (exact || batchInvariant() || ks.isa != Isa::Amx || ks.widenedTiles ||
      !bf16Arithmetic(ks, w))
    return kGemvRows;
  // ds-cpu-bench gemm R N K on AMX, tiles against dot products: bf16 ahead
  // from 6 rows in four shapes (1024 x 1024, 2048 x 7168, 7168 x 2048,
  // 7168 x 7168), FP8 from 7-8; at 16 rows bf16 3.0-3.7x, FP8 2.2-2.6x.
  return w.format == WeightFormat::FP8 ? 7 : 5;
}

namespace {

/// Rows of w per thread's share: ~64 KiB of weights per grain in decode
/// (enough work to be worth waking a thread); whole tiles in prefill, and
/// one thread for products too small to split.
int64_t grainRows(const KernelSet &ks, const WeightMatrix &w, int64_t rows,
                  int64_t n, bool exact = false) {
  int64_t bytes = std::max<int64_t>(1, w.cols * int64_t(w.elementSize()));
  if (rows <= gemvRows(ks, w, exact))
    return std::max<int64_t>(1, 65536 / bytes);
  if (rows * n * w.cols < (int64_t(1) << 18))
    return std::max<int64_t>(n, 1);
  return tileRows(ks, packsPairs(packAs(ks, w, exact)));
}

/// Rows of one expert group up to which matmulGroups takes the dot
/// products rather than a partial tile (one panel of <= 8 rows: a quarter
/// tile, <= 16: a half tile). With batch invariance on, kGemvRows on every
/// set: a batched decode step's expert groups (its routed experts' rows,
/// and the folded shared expert's all B) then give each row what it gives
/// alone, as the dense products do. Otherwise as measured per format on
/// AVX-512
/// (bench/RESULTS.md, "Experts' last panels"): the bf16 tiles are ahead
/// from 7 rows; f32's, since the quarter tile fills all 16 lanes
/// (PairAcc), from 5 (84 against 53 GFLOP/s at 5 rows, 139 against 70 at
/// 8, ds-cpu-bench experts on Zen 5; from 9 or 10 before). FP8's tile
/// converts each weight chunk to bf16 for a single panel, and is not ahead
/// of the dot products up to 16 rows while those rows of x stay in L1
/// (48 KiB on Zen 4 and 5): K 1024 (the bench model), 12 rows 365-392
/// GFLOP/s against the tile's 184-224, K 2048 (V3's down projection) 262
/// against 164-181. Wider rows of x do not stay, and there the tile is
/// ahead from 11 rows: V3's gate/up (K 7168) at 12 rows 220-248 against
/// 165-174, at 16 334-349 against 160-164; K 4096 at 12 rows 223-229
/// against 157-158 (ds-cpu-bench experts 8 ROWS 2048 K 4 3 silu, Zen 5,
/// interleaved; at 10 rows the two were level).
///
/// On AMX the FP8 tile is ahead from 8 rows at V3's gate/up width (K 7168:
/// 8 rows 164 GFLOP/s against the dot products' 154, 9 rows 186 against
/// 150, 10 rows 215 against 168; 7 rows 144 against 153; ds-cpu-bench
/// experts 16 R 2048 7168 2 3 silu, Emerald Rapids), and since its chunks
/// are converted in one call (TileGemm.cpp) at every K: 16 rows at K 256,
/// 1024 and 2048 ran 319, 347-407 and 292 GFLOP/s against the dot
/// products' 142, 151-152 and 159; 8 rows 192, 158-225 and 146 against
/// 133, 129-153 and 148 (ds-cpu-bench experts 32 R 1024 256 8 5, 32 R 256
/// 1024 8 5 silu, 16 R 7168 2048 2 3; bench/RESULTS.md, "forty-third
/// session"). At 6 rows K 2048 the dot products stay ahead (125 against
/// 96), so 7 holds at every K.
/// bf16's tiles on AMX are level with the dot products at 5 rows and ahead
/// at 8 (153 against 126), so 6 stays.
///
/// With widened tiles (FP8 decoded to f32 for the f32 tile), FP8's tile is
/// ahead from 12 rows (ds-cpu-bench experts 32 R 256 1024 8 5 silu on the
/// Xeon, R = 12-16: 124-144 against 105-124 GFLOP/s), but it stays on the
/// dot products up to 16 rows: they sum in the order a decode step's GEMV
/// does, and with bf16 activations the tile's order moved ragged_v3's
/// one-shot prefill 2.3e-5 from its decode through the cache (f32 sums
/// that differ in the last bit round some activation to the other bf16
/// neighbour), past isa-parity.test's 1e-5 (bench/RESULTS.md,
/// "thirty-fifth session").
constexpr int64_t kFp8DotRowBytes = 4096;
int64_t groupGemvRows(const KernelSet &ks, const WeightMatrix &w) {
  if (batchInvariant())
    return kGemvRows;
  if (w.format == WeightFormat::BF16 && ks.tileBf16Part[0] && !ks.widenedTiles)
    return 6;
  if (w.format == WeightFormat::F32 && ks.tileF32Part[0])
    return ks.isa >= Isa::Avx512 ? 4 : 8;
  if (w.format == WeightFormat::FP8 && ks.tileFp8Part[0] && !ks.widenedTiles) {
    if (ks.isa == Isa::Amx)
      return 7;
    if (w.cols * 2 > kFp8DotRowBytes)
      return 10;
  }
  return kGemvRows;
}

} // namespace

namespace {

/// matmul, or with `exact` matmulF32: x packed (or prepared for the GEMV)
/// once for all threads, the weight's rows split over the pool.
void matmulOverPool(const KernelSet &ks, const float *x, int64_t ldx,
                    int64_t rows, const WeightMatrix &w, int64_t r0, int64_t n,
                    float *y, int64_t ldy, bool exact) {
  if (rows <= 0 || n <= 0)
    return;
  int64_t grain = grainRows(ks, w, rows, n, exact);
  if (rows <= gemvRows(ks, w, exact)) {
    // Exact: x as it is (no bf16 pairs).
    GemvX gx = exact ? GemvX{x, ldx} : gemvInput(ks, w, x, ldx, rows);
    parallelFor(n, grain, [&](int64_t b, int64_t e) {
      gemvRange(ks, gx, rows, w, r0 + b, e - b, y + b, ldy);
    });
    return;
  }
  PackedX px = pack(ks, x, ldx, rows, w.cols, packAs(ks, w, exact));
  parallelFor(n, grain, [&](int64_t b, int64_t e) {
    gemmRange(ks, px, w, r0 + b, e - b, y + b, ldy);
  });
}

} // namespace

void dsrt::cpu::matmul(const KernelSet &ks, const float *x, int64_t ldx,
                       int64_t rows, const WeightMatrix &w, int64_t r0,
                       int64_t n, float *y, int64_t ldy) {
  matmulOverPool(ks, x, ldx, rows, w, r0, n, y, ldy, /*exact=*/false);
}

void dsrt::cpu::matmulF32(const KernelSet &ks, const float *x, int64_t ldx,
                          int64_t rows, const WeightMatrix &w, int64_t r0,
                          int64_t n, float *y, int64_t ldy) {
  matmulOverPool(ks, x, ldx, rows, w, r0, n, y, ldy, /*exact=*/true);
}

namespace {

/// matmulGroups, or with `up` matmulGroupsSiluMul (w the gate).
void groupsProduct(const KernelSet &ks, const float *x, int64_t ldx,
                   const int32_t *index, int64_t rows, const WeightMatrix &w,
                   const WeightMatrix *up, int64_t n,
                   const std::vector<MatmulGroup> &groups, float *y,
                   int64_t ldy) {
  // Reused: no steady-state allocation. Workers reach it through this
  // reference (a thread_local named in the lambda would be their own).
  static thread_local std::vector<MatmulGroup> buffer;
  std::vector<MatmulGroup> &small = buffer;
  static thread_local std::vector<MatmulGroup> largeBuffer;
  std::vector<MatmulGroup> &large = largeBuffer;
  small.clear();
  large.clear();
  int64_t gemvRows = groupGemvRows(ks, w);
  for (const MatmulGroup &g : groups) {
    if (g.end <= g.begin)
      continue;
    (g.end - g.begin > gemvRows ? large : small).push_back(g);
  }
  // Largest first: the pool gives each thread a contiguous slice of the
  // items and a thread that runs out takes half of another's rest, so
  // the items left at the end should be the small ones. A prefill's
  // shared expert (every token: 8x a routed group's panels) came last,
  // and one thread ran its items while the other idled (7-10% of the
  // experts' regions, pool trace).
  std::stable_sort(large.begin(), large.end(),
                   [](const MatmulGroup &a, const MatmulGroup &b) {
                     return a.end - a.begin > b.end - b.begin;
                   });
  if (!large.empty() && n > 0)
    gemmGroups(ks, x, ldx, index, w, up, n, large, y, ldy);
  if (small.empty() || n <= 0)
    return;
  GemvX gx = gemvInput(ks, w, x, ldx, rows, &small, index);
  // Work item i is weight row i % n of group i / n: a thread's share
  // crosses groups, so the pool splits the whole step's experts at once.
  // The dot products' grain (one row of x stands for any count of them).
  int64_t grain = grainRows(ks, w, 1, n);
  parallelFor(int64_t(small.size()) * n, grain, [&](int64_t b, int64_t e) {
    while (b < e) {
      const MatmulGroup &g = small[size_t(b / n)];
      int64_t j = b % n, m = std::min(n - j, e - b);
      GemvX gt = gx;
      if (gt.x)
        gt.x += g.begin * gt.ldx;
      if (gt.xb)
        gt.xb += g.begin * gt.ldxb;
      float *out = y + g.begin * ldy + j;
      if (up) {
        // Chunks of kSiluBlock weight rows through the thread's buffers.
        int64_t rows = g.end - g.begin;
        m = std::min(m, kSiluBlock);
        float *gv = buffers().gate.get(size_t(rows * kSiluBlock));
        float *uv = buffers().up.get(size_t(rows * kSiluBlock));
        gemvRange(ks, gt, rows, w, g.r0 + j, m, gv, m);
        gemvRange(ks, gt, rows, *up, g.r0 + j, m, uv, m);
        siluMulRows(ks, gv, uv, rows, m, out, ldy);
      } else {
        gemvRange(ks, gt, g.end - g.begin, w, g.r0 + j, m, out, ldy);
      }
      b += m;
    }
  });
}

} // namespace

void dsrt::cpu::matmulGroups(const KernelSet &ks, const float *x, int64_t ldx,
                             int64_t rows, const WeightMatrix &w, int64_t n,
                             const std::vector<MatmulGroup> &groups, float *y,
                             int64_t ldy, const int32_t *index) {
  groupsProduct(ks, x, ldx, index, rows, w, nullptr, n, groups, y, ldy);
}

void dsrt::cpu::matmulGroupsSiluMul(const KernelSet &ks, const float *x,
                                    int64_t ldx, int64_t rows,
                                    const WeightMatrix &gate,
                                    const WeightMatrix &up, int64_t n,
                                    const std::vector<MatmulGroup> &groups,
                                    float *y, int64_t ldy,
                                    const int32_t *index) {
  groupsProduct(ks, x, ldx, index, rows, gate, &up, n, groups, y, ldy);
}

void dsrt::cpu::gatherRows(const KernelSet &ks, const WeightMatrix &w,
                           const int32_t *ids, int64_t idStride, int64_t n,
                           float *out, int64_t ldo) {
  // A row is a few KiB: split only prompts long enough to be worth a wake.
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(w.cols, 1));
  parallelFor(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      decodeRow(ks, w, ids[t * idStride], 0, w.cols, out + t * ldo);
  });
}

void dsrt::cpu::matmulSiluMul(const KernelSet &ks, const float *x, int64_t ldx,
                              int64_t rows, const WeightMatrix &w, int64_t g0,
                              int64_t u0, int64_t n, float *y, int64_t ldy) {
  if (rows <= 0 || n <= 0)
    return;
  bool gemv = rows <= gemvRows(ks, w);
  PackedX px;
  GemvX gx;
  if (!gemv)
    px = pack(ks, x, ldx, rows, w.cols, packAs(ks, w, false));
  else
    gx = gemvInput(ks, w, x, ldx, rows);
  int64_t grain = gemv ? grainRows(ks, w, rows, n)
                       : std::max<int64_t>(grainRows(ks, w, rows, n), 1);
  parallelFor(n, grain, [&](int64_t begin, int64_t end) {
    MatMulBuffers &b = buffers();
    float *g = b.gate.get(size_t(rows * kSiluBlock));
    float *u = b.up.get(size_t(rows * kSiluBlock));
    for (int64_t j0 = begin; j0 < end; j0 += kSiluBlock) {
      int64_t m = std::min(kSiluBlock, end - j0);
      if (gemv) {
        gemvRange(ks, gx, rows, w, g0 + j0, m, g, m);
        gemvRange(ks, gx, rows, w, u0 + j0, m, u, m);
      } else {
        gemmRange(ks, px, w, g0 + j0, m, g, m);
        gemmRange(ks, px, w, u0 + j0, m, u, m);
      }
      for (int64_t t = 0; t < rows; ++t) {
        float *out = y + t * ldy + j0;
        if (ks.siluMulRow)
          ks.siluMulRow(g + t * m, u + t * m, m, out);
        else
          for (int64_t j = 0; j < m; ++j)
            out[j] = siluMul(g[t * m + j], u[t * m + j]);
      }
    }
  });
}

void dsrt::cpu::matmulSerialF32(const KernelSet &ks, const float *x,
                                int64_t ldx, int64_t rows,
                                const WeightMatrix &w, int64_t r0, int64_t n,
                                float *y, int64_t ldy) {
  if (rows <= 0 || n <= 0)
    return;
  if (rows <= kGemvRows) {
    gemvRange(ks, GemvX{x, ldx}, rows, w, r0, n, y, ldy);
    return;
  }
  gemmRange(ks, pack(ks, x, ldx, rows, w.cols, packAs(ks, w, /*exact=*/true)),
            w, r0, n, y, ldy);
}

void dsrt::cpu::decodeWeightRow(const KernelSet &ks, const WeightMatrix &w,
                                int64_t r, int64_t k0, int64_t n, float *dst) {
  decodeRow(ks, w, r, k0, n, dst);
}
