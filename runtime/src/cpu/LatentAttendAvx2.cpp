//===- LatentAttendAvx2.cpp - decode attention's block steps, AVX2 --------===//
//
// Compiled with AVX2 + FMA (engine.cmake); called only on CPUs that have
// them (latentBlockKernelsFor), the AVX-512 ones included: the block's rows
// and queries sit in L1, and these register tiles (not the vector width)
// are what the dot-product and axpy loops lacked: each loaded value feeds
// several FMAs instead of one.
//
//===----------------------------------------------------------------------===//
#include "cpu/LatentAttend.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

/// Columns of the rows a pass of the score tiles covers: that many of the
/// block's rows (8 KiB) and of a head tile's queries (4 KiB) stay in L1
/// while every tile passes over them.
constexpr int64_t kScoreColumns = 64;

/// Rows [i0, i0 + R) x heads [h0, h0 + 8 HV) over columns [k0, k1): per
/// column, HV loads of the transposed queries and R broadcasts of the rows'
/// values feed R x HV FMAs, the heads in the lanes (no horizontal sums).
/// The sums carry over passes in acc (row i's heads at acc + i * ldq),
/// column after column from k = 0, so the pass boundaries do not change
/// them.
template <int R, int HV>
void scoreTile(const float *qT, int64_t ldq, const float *const *rows,
               int64_t i0, int64_t h0, int64_t k0, int64_t k1, float *acc) {
  __m256 a[R][HV];
  const float *row[R];
  for (int r = 0; r < R; ++r) {
    row[r] = rows[i0 + r];
    for (int v = 0; v < HV; ++v)
      a[r][v] = k0 ? _mm256_loadu_ps(acc + (i0 + r) * ldq + h0 + 8 * v)
                   : _mm256_setzero_ps();
  }
  for (int64_t k = k0; k < k1; ++k) {
    __m256 qv[HV];
    for (int v = 0; v < HV; ++v)
      qv[v] = _mm256_loadu_ps(qT + k * ldq + h0 + 8 * v);
    for (int r = 0; r < R; ++r) {
      __m256 x = _mm256_broadcast_ss(row[r] + k);
      for (int v = 0; v < HV; ++v)
        a[r][v] = _mm256_fmadd_ps(x, qv[v], a[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < HV; ++v)
      _mm256_storeu_ps(acc + (i0 + r) * ldq + h0 + 8 * v, a[r][v]);
}

/// 8 accumulators a tile (8 / HV rows): enough independent FMA chains to
/// cover the FMA's latency at two a cycle.
template <int HV>
void scoreHeads(const float *qT, int64_t ldq, const float *const *rows,
                int64_t n, int64_t h0, int64_t k0, int64_t k1, float *acc,
                LatentFeed &feed) {
  constexpr int R = 8 / HV;
  int64_t i = 0;
  for (; i + R <= n; i += R) {
    scoreTile<R, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
    feed.step();
  }
  for (; i < n; ++i)
    scoreTile<1, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
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
  __m256 sv = _mm256_set1_ps(scale);
  for (int64_t i = 0; i < n * ldq; i += 8)
    _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i), sv));
}

/// H heads x 16 columns in registers over the block's rows: per row two
/// loads and H broadcasts feed 2 H FMAs.
template <int H>
void weightedTile(const float *p, int64_t ldp, const float *const *rows,
                  int64_t n, int64_t dc, float *acc, int64_t h0,
                  LatentFeed &feed) {
  int64_t c = 0;
  for (; c + 16 <= dc; c += 16) {
    feed.step();
    __m256 a0[H], a1[H];
    for (int h = 0; h < H; ++h)
      a0[h] = a1[h] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      __m256 x0 = _mm256_loadu_ps(rows[i] + c);
      __m256 x1 = _mm256_loadu_ps(rows[i] + c + 8);
      for (int h = 0; h < H; ++h) {
        __m256 w = _mm256_broadcast_ss(p + i * ldp + h0 + h);
        a0[h] = _mm256_fmadd_ps(w, x0, a0[h]);
        a1[h] = _mm256_fmadd_ps(w, x1, a1[h]);
      }
    }
    for (int h = 0; h < H; ++h) {
      _mm256_storeu_ps(acc + (h0 + h) * dc + c, a0[h]);
      _mm256_storeu_ps(acc + (h0 + h) * dc + c + 8, a1[h]);
    }
  }
  for (; c < dc; ++c)
    for (int h = 0; h < H; ++h) {
      float v = 0;
      for (int64_t i = 0; i < n; ++i)
        v = __builtin_fmaf(p[i * ldp + h0 + h], rows[i][c], v);
      acc[(h0 + h) * dc + c] = v;
    }
}

void weightedRows(const float *p, int64_t ldp, int64_t heads,
                  const float *const *rows, int64_t n, int64_t dc, float *acc,
                  const LatentPrefetch *next) {
  LatentFeed feed(next, (heads / 4 + heads % 4) * (dc / 16));
  int64_t h = 0;
  for (; h + 4 <= heads; h += 4)
    weightedTile<4>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h < heads; ++h)
    weightedTile<1>(p, ldp, rows, n, dc, acc, h, feed);
  feed.finish();
}

} // namespace

const LatentBlockKernels &dsrt::cpu::avx2LatentBlockKernels() {
  static const LatentBlockKernels set{scores, weightedRows};
  return set;
}
#endif
