//===- LatentAttendInline.h - the latent attention's tiles ------*- C++ -*-===//
//
// The latent attention's register tiles written once over a vector type V
// (LanesAvx2.h's V8, LanesAvx512.h's V16: W lanes, load, store, set1,
// mul, fmadd), included by each ISA's file: internal linkage, so every
// file keeps its own copy built with its flags (Kernels.h's rule). Each
// value is the same chain of fused adds at every width, so the ISAs give
// the same bits.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_LATENTATTENDINLINE_H
#define DSRT_CPU_LATENTATTENDINLINE_H

#include "cpu/LatentAttend.h"

namespace dsrt::cpu {
namespace {

/// Columns of the rows a pass of the score tiles covers: that many of the
/// block's rows (8 KiB) and of a head tile's queries (4 KiB) stay in L1
/// while every tile passes over them.
constexpr int64_t kScoreColumns = 64;

/// Rows [i0, i0 + R) x heads [h0, h0 + W HV) over columns [k0, k1): per
/// column, HV loads of the transposed queries and R broadcasts of the
/// rows' values feed R x HV FMAs, the heads in the lanes (no horizontal
/// sums). The sums carry over passes in acc (row i's heads at acc + i *
/// ldq), column after column from k = 0, so the pass boundaries do not
/// change them.
template <class V, int R, int HV>
void scoreTileT(const float *qT, int64_t ldq, const float *const *rows,
                int64_t i0, int64_t h0, int64_t k0, int64_t k1, float *acc) {
  typename V::T a[R][HV];
  const float *row[R];
  for (int r = 0; r < R; ++r) {
    row[r] = rows[i0 + r];
    for (int v = 0; v < HV; ++v)
      a[r][v] =
          k0 ? V::load(acc + (i0 + r) * ldq + h0 + V::W * v) : V::set1(0.0f);
  }
  for (int64_t k = k0; k < k1; ++k) {
    typename V::T qv[HV];
    for (int v = 0; v < HV; ++v)
      qv[v] = V::load(qT + k * ldq + h0 + V::W * v);
    for (int r = 0; r < R; ++r) {
      typename V::T x = V::set1(row[r][k]);
      for (int v = 0; v < HV; ++v)
        a[r][v] = V::fmadd(x, qv[v], a[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < HV; ++v)
      V::store(acc + (i0 + r) * ldq + h0 + V::W * v, a[r][v]);
}

/// s[i] *= scale, i < count.
template <class V> void scaleScoresT(float *s, int64_t count, float scale) {
  typename V::T sv = V::set1(scale);
  int64_t i = 0;
  for (; i + V::W <= count; i += V::W)
    V::store(s + i, V::mul(V::load(s + i), sv));
  for (; i < count; ++i)
    s[i] *= scale;
}

/// H heads x C vectors of columns in registers over the block's rows
/// [0, n): per row C loads and H broadcasts feed C H FMAs; acc[h * dc +
/// c] for the columns [c0, c0 + C W). A step of `feed` every FeedRows
/// rows (0: once, before the rows).
template <class V, int H, int C, int FeedRows>
void weightedStripT(const float *p, int64_t ldp, const float *const *rows,
                    int64_t n, int64_t dc, int64_t c0, float *acc, int64_t h0,
                    LatentFeed &feed) {
  if constexpr (FeedRows == 0)
    feed.step();
  typename V::T a[C][H];
  for (int j = 0; j < C; ++j)
    for (int h = 0; h < H; ++h)
      a[j][h] = V::set1(0.0f);
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (FeedRows > 0)
      if (i % FeedRows == 0)
        feed.step();
    typename V::T x[C];
    for (int j = 0; j < C; ++j)
      x[j] = V::load(rows[i] + c0 + V::W * j);
    for (int h = 0; h < H; ++h) {
      typename V::T w = V::set1(p[i * ldp + h0 + h]);
      for (int j = 0; j < C; ++j)
        a[j][h] = V::fmadd(w, x[j], a[j][h]);
    }
  }
  for (int h = 0; h < H; ++h)
    for (int j = 0; j < C; ++j)
      V::store(acc + (h0 + h) * dc + c0 + V::W * j, a[j][h]);
}

/// The weighted sum of H heads from h0 over every column: strips of 2 W
/// columns, one of W, then the last columns one at a time. Each output
/// sums its rows from the first with fused adds at every width.
template <class V, int H, int FeedRows>
void weightedTileT(const float *p, int64_t ldp, const float *const *rows,
                   int64_t n, int64_t dc, float *acc, int64_t h0,
                   LatentFeed &feed) {
  int64_t c = 0;
  for (; c + 2 * V::W <= dc; c += 2 * V::W)
    weightedStripT<V, H, 2, FeedRows>(p, ldp, rows, n, dc, c, acc, h0, feed);
  for (; c + V::W <= dc; c += V::W)
    weightedStripT<V, H, 1, FeedRows>(p, ldp, rows, n, dc, c, acc, h0, feed);
  for (; c < dc; ++c)
    for (int h = 0; h < H; ++h) {
      float v = 0;
      for (int64_t i = 0; i < n; ++i)
        v = __builtin_fmaf(p[i * ldp + h0 + h], rows[i][c], v);
      acc[(h0 + h) * dc + c] = v;
    }
}

} // namespace
} // namespace dsrt::cpu

#endif // DSRT_CPU_LATENTATTENDINLINE_H
