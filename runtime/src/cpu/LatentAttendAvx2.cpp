//===- LatentAttendAvx2.cpp - decode attention's block steps, AVX2 --------===//
//
// Compiled with AVX2 + FMA (engine.cmake); called only on CPUs that have
// them (latentBlockKernelsFor), the AVX-512 ones included: the block's rows
// and queries sit in L1, and these register tiles (not the vector width)
// are what the dot-product and axpy loops lacked: each loaded value feeds
// several FMAs instead of one.
//
//===----------------------------------------------------------------------===//
#include "cpu/LanesAvx2.h"
#include "cpu/LatentAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

/// 8 accumulators a tile (8 / HV rows): enough independent FMA chains to
/// cover the FMA's latency at two a cycle.
template <int HV>
void scoreHeads(const float *qT, int64_t ldq, const float *const *rows,
                int64_t n, int64_t h0, int64_t k0, int64_t k1, float *acc,
                LatentFeed &feed) {
  constexpr int R = 8 / HV;
  int64_t i = 0;
  for (; i + R <= n; i += R) {
    scoreTileT<V8, R, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
    feed.step();
  }
  for (; i < n; ++i)
    scoreTileT<V8, 1, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
}

void scores(const float *qT, int64_t ldq, int64_t /*heads*/, int64_t width,
            const float *const *rows, int64_t n, float scale, float *s,
            const LatentPrefetch *next) {
  // One step per full tile: 8 rows (or 4 of 16 heads) of 8 heads.
  const int64_t passes = (width + kScoreColumns - 1) / kScoreColumns;
  LatentFeed feed(next, passes * (ldq / 8) * (n / 8));
  for (int64_t k0 = 0; k0 < width; k0 += kScoreColumns) {
    int64_t k1 = width < k0 + kScoreColumns ? width : k0 + kScoreColumns;
    int64_t h = 0;
    for (; h + 16 <= ldq; h += 16)
      scoreHeads<2>(qT, ldq, rows, n, h, k0, k1, s, feed);
    for (; h < ldq; h += 8)
      scoreHeads<1>(qT, ldq, rows, n, h, k0, k1, s, feed);
  }
  // A block of fewer than 8 rows has no steps.
  feed.finish();
  scaleScoresT<V8>(s, n * ldq, scale);
}

void weightedRows(const float *p, int64_t ldp, int64_t heads,
                  const float *const *rows, int64_t n, int64_t dc, float *acc,
                  const LatentPrefetch *next) {
  LatentFeed feed(next, (heads / 4 + heads % 4) * (dc / 16));
  int64_t h = 0;
  for (; h + 4 <= heads; h += 4)
    weightedTileT<V8, 4, 0>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h < heads; ++h)
    weightedTileT<V8, 1, 0>(p, ldp, rows, n, dc, acc, h, feed);
  feed.finish();
}

} // namespace

const LatentBlockKernels &dsrt::cpu::avx2LatentBlockKernels() {
  static const LatentBlockKernels set{scores, weightedRows};
  return set;
}
#endif
