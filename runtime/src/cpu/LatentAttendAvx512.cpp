//===- LatentAttendAvx512.cpp - decode attention's block steps, AVX-512 ---===//
//
// Compiled with AVX-512F (engine.cmake); called only on CPUs that have it
// (latentBlockKernelsFor). The AVX2 tiles' 8 lanes are half of what a core
// with full-width 512-bit units (Zen 5) multiplies per instruction, and
// there the AVX2 tiles ran the bench model's attention at ~97 GFLOP/s
// against the f32 GEMM's ~375 (ds-cpu-bench latent). Each value is summed
// as AVX2's tiles sum it (the same fused adds in the same order), so the
// two paths give the same bits. A decode step's 8 heads, half a vector,
// put 16 rows in the lanes (the rows transposed, scoreRows16); a block's
// last rows, two rows a vector.
//
//===----------------------------------------------------------------------===//
#include "cpu/LanesAvx512.h"
#include "cpu/LatentAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

/// lo in lanes 0-7, hi in 8-15 (AVX512F only: no f32x8 inserts).
inline __m512 halves(__m256 lo, __m256 hi) {
  return _mm512_castpd_ps(_mm512_insertf64x4(
      _mm512_castpd256_pd512(_mm256_castps_pd(lo)), _mm256_castps_pd(hi), 1));
}

inline __m256 upperHalf(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/// The same for 8 heads [h0, h0 + 8) (a decode step's 8, or what 16-head
/// tiles leave), two rows a vector: lanes 0-7 row i's heads, 8-15 row i +
/// 1's, the queries' 8 values in both halves. Per column, P pairs of row
/// values broadcast into the halves (a plain and a merge-masked broadcast
/// load) feed P FMAs of 16 lanes, where AVX2's tile fills 8.
template <int P>
void scorePairTile(const float *qT, int64_t ldq, const float *const *rows,
                   int64_t i0, int64_t h0, int64_t k0, int64_t k1, float *acc) {
  __m512 a[P];
  const float *row[2 * P];
  for (int p = 0; p < P; ++p) {
    row[2 * p] = rows[i0 + 2 * p];
    row[2 * p + 1] = rows[i0 + 2 * p + 1];
    float *lo = acc + (i0 + 2 * p) * ldq + h0;
    a[p] = k0 ? halves(_mm256_loadu_ps(lo), _mm256_loadu_ps(lo + ldq))
              : _mm512_setzero_ps();
  }
  for (int64_t k = k0; k < k1; ++k) {
    __m512 q = halves(_mm256_loadu_ps(qT + k * ldq + h0),
                      _mm256_loadu_ps(qT + k * ldq + h0));
    for (int p = 0; p < P; ++p) {
      __m512 x = _mm512_mask_broadcastss_ps(_mm512_set1_ps(row[2 * p][k]),
                                            __mmask16(0xFF00),
                                            _mm_load_ss(row[2 * p + 1] + k));
      a[p] = _mm512_fmadd_ps(x, q, a[p]);
    }
  }
  for (int p = 0; p < P; ++p) {
    float *lo = acc + (i0 + 2 * p) * ldq + h0;
    _mm256_storeu_ps(lo, _mm512_castps512_ps256(a[p]));
    _mm256_storeu_ps(lo + ldq, upperHalf(a[p]));
  }
}

/// One row x 8 heads: a block's odd last row.
void scoreRow8(const float *qT, int64_t ldq, const float *row, int64_t i,
               int64_t h0, int64_t k0, int64_t k1, float *acc) {
  float *out = acc + i * ldq + h0;
  __m256 a = k0 ? _mm256_loadu_ps(out) : _mm256_setzero_ps();
  for (int64_t k = k0; k < k1; ++k)
    a = _mm256_fmadd_ps(_mm256_set1_ps(row[k]),
                        _mm256_loadu_ps(qT + k * ldq + h0), a);
  _mm256_storeu_ps(out, a);
}

/// Rows [i0, i0 + 16) x the 8 heads from h0 over every column, the rows
/// in the lanes: 16 columns of the 16 rows are loaded and transposed, and
/// each (column, head) is one FMA of 16 rows with the query's value
/// broadcast from memory. scorePairTile spends three loads (two row
/// broadcasts and the queries) per FMA; this one, and 4 shuffles per 16
/// FMAs. Each sum is scorePairTile's: one fused add per column, in order
/// from zero (s holds nothing of it before), so the bits are the same.
void scoreRows16(const float *qT, int64_t ldq, const float *const *rows,
                 int64_t i0, int64_t h0, int64_t width, float *s,
                 LatentFeed &feed) {
  __m512 a[8];
  for (int h = 0; h < 8; ++h)
    a[h] = _mm512_setzero_ps();
  auto column = [&](__m512i t, const float *q) {
#pragma unroll
    for (int h = 0; h < 8; ++h)
      a[h] = _mm512_fmadd_ps(_mm512_castsi512_ps(t), _mm512_set1_ps(q[h0 + h]),
                             a[h]);
  };
  for (int64_t k = 0; k < width; k += 16) {
    feed.step();
    int64_t left = width - k;
    __mmask16 m = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1);
    __m512i t[16];
    for (int r = 0; r < 16; ++r)
      t[r] = _mm512_castps_si512(_mm512_maskz_loadu_ps(m, rows[i0 + r] + k));
    transpose16(t);
    const float *q = qT + k * ldq;
    if (left >= 16) {
      // Unrolled, so that t stays in registers (a loop indexed it in
      // memory).
#pragma unroll
      for (int c = 0; c < 16; ++c)
        column(t[c], q + c * ldq);
    } else {
      for (int64_t c = 0; c < left; ++c)
        column(t[c], q + c * ldq);
    }
  }
  alignas(64) float lanes[8][16];
  for (int h = 0; h < 8; ++h)
    _mm512_store_ps(lanes[h], a[h]);
  for (int r = 0; r < 16; ++r)
    for (int h = 0; h < 8; ++h)
      s[(i0 + r) * ldq + h0 + h] = lanes[h][r];
}

/// Every row of the block for the heads from h0 (16 HV of them; HV 0: the
/// 8 of scorePairTile), 12 accumulators a full tile (enough independent
/// chains for the FMA's latency at two a cycle), the rest a row at a time.
template <int HV>
void scoreHeads(const float *qT, int64_t ldq, const float *const *rows,
                int64_t n, int64_t h0, int64_t k0, int64_t k1, float *acc,
                LatentFeed &feed) {
  int64_t i = 0;
  if constexpr (HV == 0) {
    for (; i + 24 <= n; i += 24) {
      scorePairTile<12>(qT, ldq, rows, i, h0, k0, k1, acc);
      feed.step();
    }
    for (; i + 2 <= n; i += 2)
      scorePairTile<1>(qT, ldq, rows, i, h0, k0, k1, acc);
    for (; i < n; ++i)
      scoreRow8(qT, ldq, rows[i], i, h0, k0, k1, acc);
  } else {
    constexpr int R = 12 / HV;
    for (; i + R <= n; i += R) {
      scoreTileT<V16, R, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
      feed.step();
    }
    for (; i < n; ++i)
      scoreTileT<V16, 1, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
  }
}

void scores(const float *qT, int64_t ldq, int64_t /*heads*/, int64_t width,
            const float *const *rows, int64_t n, float scale, float *s,
            const LatentPrefetch *next) {
  const int64_t passes = (width + kScoreColumns - 1) / kScoreColumns;
  // ldq is a multiple of 8: the heads from h8 are 8 (or none), whose whole
  // 16-row groups take scoreRows16, over every column at once (those
  // heads' queries, 8 x width floats, stay in L1).
  const int64_t h8 = ldq / 16 * 16, n16 = h8 < ldq ? n / 16 * 16 : 0;
  LatentFeed feed(next,
                  passes * (ldq / 32 * (n / 6) + ldq % 32 / 16 * (n / 12) +
                            ldq % 16 / 8 * ((n - n16) / 24)) +
                      n16 / 16 * ((width + 15) / 16));
  for (int64_t i = 0; i < n16; i += 16)
    scoreRows16(qT, ldq, rows, i, h8, width, s, feed);
  for (int64_t k0 = 0; k0 < width; k0 += kScoreColumns) {
    int64_t k1 = width < k0 + kScoreColumns ? width : k0 + kScoreColumns;
    int64_t h = 0;
    for (; h + 32 <= ldq; h += 32)
      scoreHeads<2>(qT, ldq, rows, n, h, k0, k1, s, feed);
    for (; h + 16 <= ldq; h += 16)
      scoreHeads<1>(qT, ldq, rows, n, h, k0, k1, s, feed);
    if (h < ldq)
      scoreHeads<0>(qT, ldq, rows + n16, n - n16, h, k0, k1, s + n16 * ldq,
                    feed);
  }
  feed.finish();
  scaleScoresT<V16>(s, n * ldq, scale);
}

/// Rows of a weighted strip per prefetch step: the next block's lines
/// requested a few dozen at once per 32 columns stalled the strip behind
/// them.
constexpr int kFeedRows = 8;

void weightedRows(const float *p, int64_t ldp, int64_t heads,
                  const float *const *rows, int64_t n, int64_t dc, float *acc,
                  const LatentPrefetch *next) {
  LatentFeed feed(next, (heads / 8 + heads % 8 / 4 + heads % 4) * (dc / 32) *
                            ((n + kFeedRows - 1) / kFeedRows));
  int64_t h = 0;
  for (; h + 8 <= heads; h += 8)
    weightedTileT<V16, 8, kFeedRows>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h + 4 <= heads; h += 4)
    weightedTileT<V16, 4, kFeedRows>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h < heads; ++h)
    weightedTileT<V16, 1, kFeedRows>(p, ldp, rows, n, dc, acc, h, feed);
  feed.finish();
}

} // namespace

const LatentBlockKernels &dsrt::cpu::avx512LatentBlockKernels() {
  static const LatentBlockKernels set{scores, weightedRows};
  return set;
}
#endif
