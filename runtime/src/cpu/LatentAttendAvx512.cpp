//===- LatentAttendAvx512.cpp - decode attention's block steps, AVX-512 ---===//
//
// Compiled with AVX-512F (engine.cmake); called only on CPUs that have it
// (latentBlockKernelsFor). The AVX2 tiles' 8 lanes are half of what a core
// with full-width 512-bit units (Zen 5) multiplies per instruction, and
// there the AVX2 tiles ran the bench model's attention at ~97 GFLOP/s
// against the f32 GEMM's ~375 (ds-cpu-bench latent). Each value is summed
// as AVX2's tiles sum it (the same fused adds in the same order), so the
// two paths give the same bits: a decode step's 8 heads, half a vector,
// take two rows a vector.
//
//===----------------------------------------------------------------------===//
#include "cpu/LatentAttend.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

/// Columns of the rows a pass of the score tiles covers, as AVX2's: that
/// many of the block's rows and of a head tile's queries stay in L1 while
/// every tile passes over them.
constexpr int64_t kScoreColumns = 64;

/// Rows [i0, i0 + R) x heads [h0, h0 + 16 HV) over columns [k0, k1): per
/// column, HV loads of the transposed queries and R broadcasts of the
/// rows' values feed R x HV FMAs, the heads in the lanes. The sums carry
/// over passes in acc (row i's heads at acc + i * ldq), column after
/// column from k = 0: AVX2's tile's operations on each value, so its bits.
template <int R, int HV>
void scoreTile(const float *qT, int64_t ldq, const float *const *rows,
               int64_t i0, int64_t h0, int64_t k0, int64_t k1, float *acc) {
  __m512 a[R][HV];
  const float *row[R];
  for (int r = 0; r < R; ++r) {
    row[r] = rows[i0 + r];
    for (int v = 0; v < HV; ++v)
      a[r][v] = k0 ? _mm512_loadu_ps(acc + (i0 + r) * ldq + h0 + 16 * v)
                   : _mm512_setzero_ps();
  }
  for (int64_t k = k0; k < k1; ++k) {
    __m512 qv[HV];
    for (int v = 0; v < HV; ++v)
      qv[v] = _mm512_loadu_ps(qT + k * ldq + h0 + 16 * v);
    for (int r = 0; r < R; ++r) {
      __m512 x = _mm512_set1_ps(row[r][k]);
      for (int v = 0; v < HV; ++v)
        a[r][v] = _mm512_fmadd_ps(x, qv[v], a[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < HV; ++v)
      _mm512_storeu_ps(acc + (i0 + r) * ldq + h0 + 16 * v, a[r][v]);
}

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
      scoreTile<R, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
      feed.step();
    }
    for (; i < n; ++i)
      scoreTile<1, HV>(qT, ldq, rows, i, h0, k0, k1, acc);
  }
}

void scores(const float *qT, int64_t ldq, int64_t /*heads*/, int64_t width,
            const float *const *rows, int64_t n, float scale, float *s,
            const LatentPrefetch *next) {
  const int64_t passes = (width + kScoreColumns - 1) / kScoreColumns;
  LatentFeed feed(next,
                  passes * (ldq / 32 * (n / 6) + ldq % 32 / 16 * (n / 12) +
                            ldq % 16 / 8 * (n / 24)));
  for (int64_t k0 = 0; k0 < width; k0 += kScoreColumns) {
    int64_t k1 = width < k0 + kScoreColumns ? width : k0 + kScoreColumns;
    int64_t h = 0;
    for (; h + 32 <= ldq; h += 32)
      scoreHeads<2>(qT, ldq, rows, n, h, k0, k1, s, feed);
    for (; h + 16 <= ldq; h += 16)
      scoreHeads<1>(qT, ldq, rows, n, h, k0, k1, s, feed);
    if (h < ldq) // ldq is a multiple of 8
      scoreHeads<0>(qT, ldq, rows, n, h, k0, k1, s, feed);
  }
  feed.finish();
  __m512 sv = _mm512_set1_ps(scale);
  int64_t i = 0;
  for (; i + 16 <= n * ldq; i += 16)
    _mm512_storeu_ps(s + i, _mm512_mul_ps(_mm512_loadu_ps(s + i), sv));
  for (; i < n * ldq; i += 8)
    _mm256_storeu_ps(s + i, _mm256_mul_ps(_mm256_loadu_ps(s + i),
                                          _mm512_castps512_ps256(sv)));
}

/// Rows of a weighted tile per prefetch step: the next block's lines
/// requested a few dozen at once per 32 columns stalled the tile behind
/// them.
constexpr int64_t kFeedRows = 8;

/// H heads x 32 columns (16 on the last, masked, pieces) in registers
/// over the block's rows: per row two loads and H broadcasts feed 2 H
/// FMAs. Each output sums its rows from the first, as AVX2's tile does.
template <int H>
void weightedTile(const float *p, int64_t ldp, const float *const *rows,
                  int64_t n, int64_t dc, float *acc, int64_t h0,
                  LatentFeed &feed) {
  int64_t c = 0;
  for (; c + 32 <= dc; c += 32) {
    __m512 a0[H], a1[H];
    for (int h = 0; h < H; ++h)
      a0[h] = a1[h] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      if (i % kFeedRows == 0)
        feed.step();
      __m512 x0 = _mm512_loadu_ps(rows[i] + c);
      __m512 x1 = _mm512_loadu_ps(rows[i] + c + 16);
      for (int h = 0; h < H; ++h) {
        __m512 w = _mm512_set1_ps(p[i * ldp + h0 + h]);
        a0[h] = _mm512_fmadd_ps(w, x0, a0[h]);
        a1[h] = _mm512_fmadd_ps(w, x1, a1[h]);
      }
    }
    for (int h = 0; h < H; ++h) {
      _mm512_storeu_ps(acc + (h0 + h) * dc + c, a0[h]);
      _mm512_storeu_ps(acc + (h0 + h) * dc + c + 16, a1[h]);
    }
  }
  for (; c < dc; c += 16) {
    __mmask16 m =
        dc - c >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (dc - c)) - 1);
    __m512 a[H];
    for (int h = 0; h < H; ++h)
      a[h] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      __m512 x = _mm512_maskz_loadu_ps(m, rows[i] + c);
      for (int h = 0; h < H; ++h)
        a[h] = _mm512_fmadd_ps(_mm512_set1_ps(p[i * ldp + h0 + h]), x, a[h]);
    }
    for (int h = 0; h < H; ++h)
      _mm512_mask_storeu_ps(acc + (h0 + h) * dc + c, m, a[h]);
  }
}

void weightedRows(const float *p, int64_t ldp, int64_t heads,
                  const float *const *rows, int64_t n, int64_t dc, float *acc,
                  const LatentPrefetch *next) {
  LatentFeed feed(next, (heads / 8 + heads % 8 / 4 + heads % 4) * (dc / 32) *
                            ((n + kFeedRows - 1) / kFeedRows));
  int64_t h = 0;
  for (; h + 8 <= heads; h += 8)
    weightedTile<8>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h + 4 <= heads; h += 4)
    weightedTile<4>(p, ldp, rows, n, dc, acc, h, feed);
  for (; h < heads; ++h)
    weightedTile<1>(p, ldp, rows, n, dc, acc, h, feed);
  feed.finish();
}

} // namespace

const LatentBlockKernels &dsrt::cpu::avx512LatentBlockKernels() {
  static const LatentBlockKernels set{scores, weightedRows};
  return set;
}
#endif
