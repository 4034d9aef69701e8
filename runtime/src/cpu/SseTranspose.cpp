//===- SseTranspose.cpp - the tiles' layouts through SSE registers -------===//
//
// The baseline (SSE2) transposes between row-major activations and the
// tiles' panels (Kernels.h), for kernel sets without their own packF32 /
// storeTile, and the latent attention's queries. Built for the baseline,
// like MatMul.cpp and TileGemm.cpp.
//
//===----------------------------------------------------------------------===//
#include "cpu/SseTranspose.h"

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

using namespace dsrt::cpu;

/// dst[c * ldDst + r] = src[r * ldSrc + c]: 4 x 4 blocks through SSE
/// registers (every x86-64 has SSE2; this file is built for the baseline),
/// the edges one by one. Four rows of dst at a time, each written as one
/// strip: dst's rows are often a multiple of 4 KiB apart (a panel's, y's),
/// so all of them share an L1 set, and a line left for the next 4 columns
/// would be evicted in between; src's lines are read from L1. The latent
/// attention's queries (a decode step's heads, each a row) one value at a
/// time took ~2 us a call for 8 heads of 288 values.
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

/// panel[c * kPanel + t] = src[t * ldx + c] for t < rows (<= kPanel),
/// c < k: four columns of the panel at a time.
void dsrt::cpu::transposePanel(const float *src, int64_t ldx, int64_t rows,
                               int64_t k, float *panel) {
  transposeStrided(src, ldx, rows, k, panel, kPanel);
}

/// y[t * ldy + i] = c[i * kPanel + t] for i < m, t < rows: one panel's
/// accumulators (a row of c per weight row) into y's rows, four rows of y
/// at a time.
void dsrt::cpu::storeTile(const float *c, int64_t m, int64_t rows, float *y,
                          int64_t ldy) {
  transposeStrided(c, kPanel, m, rows, y, ldy);
}
