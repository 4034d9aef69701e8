//===- SseTranspose.cpp - the tiles' layouts through SSE registers -------===//
//
// The baseline (SSE2) transposes between row-major activations and the
// tiles' panels (Kernels.h), for kernel sets without their own packF32 /
// storeTile. Built for the baseline, like MatMul.cpp.
//
//===----------------------------------------------------------------------===//
#include "cpu/SseTranspose.h"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

using namespace dsrt::cpu;

/// panel[c * kPanel + t] = src[t * ldx + c] for t < rows (<= kPanel),
/// c < k: 4 x 4 blocks through SSE registers (every x86-64 has SSE2; this
/// file is built for the baseline), four columns of the panel at a time, so
/// its writes are sequential and the rows' lines are read from L1.
void dsrt::cpu::transposePanel(const float *src, int64_t ldx, int64_t rows, int64_t k,
                    float *panel) {
  int64_t t4 = rows / 4 * 4, c4 = 0;
#if defined(__SSE2__)
  c4 = k / 4 * 4;
  for (int64_t c = 0; c < c4; c += 4) {
    float *out = panel + c * kPanel;
    for (int64_t t = 0; t < t4; t += 4) {
      const float *in = src + t * ldx + c;
      __m128 r0 = _mm_loadu_ps(in), r1 = _mm_loadu_ps(in + ldx),
             r2 = _mm_loadu_ps(in + 2 * ldx), r3 = _mm_loadu_ps(in + 3 * ldx);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(out + t, r0);
      _mm_storeu_ps(out + kPanel + t, r1);
      _mm_storeu_ps(out + 2 * kPanel + t, r2);
      _mm_storeu_ps(out + 3 * kPanel + t, r3);
    }
    for (int64_t t = t4; t < rows; ++t)
      for (int64_t j = 0; j < 4; ++j)
        out[j * kPanel + t] = src[t * ldx + c + j];
  }
#endif
  for (int64_t c = c4; c < k; ++c)
    for (int64_t t = 0; t < rows; ++t)
      panel[c * kPanel + t] = src[t * ldx + c];
}

/// dst[c * ldDst + r] = src[r * ldSrc + c]: 4 x 4 blocks through SSE
/// registers, the edges one by one. The latent attention's queries (a
/// decode step's heads, each a row) become its transposed query rows;
/// one value at a time this took ~2 us a call for 8 heads of 288 values.
void dsrt::cpu::transposeStrided(const float *src, int64_t ldSrc, int64_t rows,
                                 int64_t cols, float *dst, int64_t ldDst) {
  int64_t r4 = 0, c4 = 0;
#if defined(__SSE2__)
  r4 = rows / 4 * 4;
  c4 = cols / 4 * 4;
  for (int64_t c = 0; c < c4; c += 4)
    for (int64_t r = 0; r < r4; r += 4) {
      const float *in = src + r * ldSrc + c;
      __m128 v0 = _mm_loadu_ps(in), v1 = _mm_loadu_ps(in + ldSrc),
             v2 = _mm_loadu_ps(in + 2 * ldSrc),
             v3 = _mm_loadu_ps(in + 3 * ldSrc);
      _MM_TRANSPOSE4_PS(v0, v1, v2, v3);
      float *out = dst + c * ldDst + r;
      _mm_storeu_ps(out, v0);
      _mm_storeu_ps(out + ldDst, v1);
      _mm_storeu_ps(out + 2 * ldDst, v2);
      _mm_storeu_ps(out + 3 * ldDst, v3);
    }
  for (int64_t c = 0; c < c4; ++c)
    for (int64_t r = r4; r < rows; ++r)
      dst[c * ldDst + r] = src[r * ldSrc + c];
#endif
  for (int64_t c = c4; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r)
      dst[c * ldDst + r] = src[r * ldSrc + c];
}

/// y[t * ldy + i] = c[i * kPanel + t] for i < m, t < rows: one panel's
/// accumulators (a row of c per weight row) into y's rows. 4 x 4 blocks
/// through SSE registers (as transposePanel), the rest one by one.
void dsrt::cpu::storeTile(const float *c, int64_t m, int64_t rows, float *y, int64_t ldy) {
  int64_t i4 = 0, t4 = 0;
#if defined(__SSE2__)
  i4 = m / 4 * 4;
  t4 = rows / 4 * 4;
  // Row-major over y: a row's strip is written in one go (y's rows are
  // often a multiple of 4 KiB apart, so all of them share an L1 set, and
  // a line left for the next 4 columns would be evicted in between).
  for (int64_t t = 0; t < t4; t += 4)
    for (int64_t i = 0; i < i4; i += 4) {
      const float *in = c + i * kPanel + t;
      __m128 r0 = _mm_loadu_ps(in), r1 = _mm_loadu_ps(in + kPanel),
             r2 = _mm_loadu_ps(in + 2 * kPanel),
             r3 = _mm_loadu_ps(in + 3 * kPanel);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      float *out = y + t * ldy + i;
      _mm_storeu_ps(out, r0);
      _mm_storeu_ps(out + ldy, r1);
      _mm_storeu_ps(out + 2 * ldy, r2);
      _mm_storeu_ps(out + 3 * ldy, r3);
    }
  for (int64_t t = t4; t < rows; ++t)
    for (int64_t i = 0; i < i4; ++i)
      y[t * ldy + i] = c[i * kPanel + t];
#endif
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t i = i4; i < m; ++i)
      y[t * ldy + i] = c[i * kPanel + t];
}

