//===- LatentAttendAvx2.cpp - decode attention's block steps, AVX2 --------===//
//
// Compiled with AVX2 + FMA (engine.cmake); called only on CPUs that have
// them (latentBlockKernelsFor), the AVX-512 ones included: the block's rows
// and queries sit in L1, and these register tiles (not the vector width)
// are what the dot-product and axpy loops lacked: each loaded value feeds
// several FMAs instead of one.
//
//===----------------------------------------------------------------------===//
#include "cpu/KernelsInline.h"
#include "cpu/LatentAttend.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

namespace {

float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

/// R rows x H heads of scores: R + H loads feed R x H FMAs per 8 columns.
template <int R, int H>
void scoreTile(const float *q, int64_t width, const float *const *rows,
               float scale, float *s, int64_t i0, int64_t h0) {
  __m256 acc[R][H];
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h)
      acc[r][h] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= width; k += 8) {
    __m256 x[R];
    for (int r = 0; r < R; ++r)
      x[r] = _mm256_loadu_ps(rows[i0 + r] + k);
    for (int h = 0; h < H; ++h) {
      __m256 qv = _mm256_loadu_ps(q + (h0 + h) * width + k);
      for (int r = 0; r < R; ++r)
        acc[r][h] = _mm256_fmadd_ps(x[r], qv, acc[r][h]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int h = 0; h < H; ++h) {
      float v = sum8(acc[r][h]);
      for (int64_t j = k; j < width; ++j)
        v += rows[i0 + r][j] * q[(h0 + h) * width + j];
      s[(h0 + h) * kLatentBlock + i0 + r] = v * scale;
    }
}

template <int R>
void scoreRows(const float *q, int64_t heads, int64_t width,
               const float *const *rows, float scale, float *s, int64_t i0) {
  // The cache rows arrive from memory (a decode step's weights have
  // evicted them), row after row, and the hardware prefetchers restart at
  // every 4 KiB page: the GEMVs' look-ahead, one line per line read. A
  // decode step's attention calls took 29 -> 24 us (pool trace, FP8 bench
  // model; 2, 6, 8 and 12 KiB ahead measured no better).
  for (int r = 0; r < R; ++r)
    for (int64_t k = 0; k < width; k += 16)
      prefetchAhead(rows[i0 + r] + k);
  int64_t h = 0;
  for (; h + 4 <= heads; h += 4)
    scoreTile<R, 4>(q, width, rows, scale, s, i0, h);
  for (; h < heads; ++h)
    scoreTile<R, 1>(q, width, rows, scale, s, i0, h);
}

void scores(const float *q, int64_t heads, int64_t width,
            const float *const *rows, int64_t n, float scale, float *s) {
  int64_t i = 0;
  for (; i + 2 <= n; i += 2)
    scoreRows<2>(q, heads, width, rows, scale, s, i);
  if (i < n)
    scoreRows<1>(q, heads, width, rows, scale, s, i);
}

/// H heads x 16 columns in registers over the block's rows: per row two
/// loads and H broadcasts feed 2 H FMAs.
template <int H>
void weightedTile(const float *p, const float *const *rows, int64_t n,
                  int64_t dc, float *acc, int64_t h0) {
  int64_t c = 0;
  for (; c + 16 <= dc; c += 16) {
    __m256 a0[H], a1[H];
    for (int h = 0; h < H; ++h)
      a0[h] = a1[h] = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; ++i) {
      __m256 x0 = _mm256_loadu_ps(rows[i] + c);
      __m256 x1 = _mm256_loadu_ps(rows[i] + c + 8);
      for (int h = 0; h < H; ++h) {
        __m256 w = _mm256_broadcast_ss(p + (h0 + h) * kLatentBlock + i);
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
        v = __builtin_fmaf(p[(h0 + h) * kLatentBlock + i], rows[i][c], v);
      acc[(h0 + h) * dc + c] = v;
    }
}

void weightedRows(const float *p, int64_t heads, const float *const *rows,
                  int64_t n, int64_t dc, float *acc) {
  int64_t h = 0;
  for (; h + 4 <= heads; h += 4)
    weightedTile<4>(p, rows, n, dc, acc, h);
  for (; h < heads; ++h)
    weightedTile<1>(p, rows, n, dc, acc, h);
}

} // namespace

const LatentBlockKernels &dsrt::cpu::avx2LatentBlockKernels() {
  static const LatentBlockKernels set{scores, weightedRows};
  return set;
}
#endif
