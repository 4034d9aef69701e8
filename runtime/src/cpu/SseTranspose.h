//===- SseTranspose.h - the tiles' layouts through SSE registers -*- C++ -*-===//
#ifndef DSRT_CPU_SSETRANSPOSE_H
#define DSRT_CPU_SSETRANSPOSE_H

#include "cpu/Kernels.h"

#include <cstdint>

namespace dsrt::cpu {

/// panel[c * kPanel + t] = src[t * ldx + c] for t < rows (<= kPanel),
/// c < k (the f32 panel layout; bf16 pairs moved as 32-bit units).
void transposePanel(const float *src, int64_t ldx, int64_t rows, int64_t k,
                    float *panel);

/// dst[c * ldDst + r] = src[r * ldSrc + c] for r < rows, c < cols.
void transposeStrided(const float *src, int64_t ldSrc, int64_t rows,
                      int64_t cols, float *dst, int64_t ldDst);

/// y[t * ldy + i] = c[i * kPanel + t] for i < m, t < rows: one panel's
/// accumulators into y's rows.
void storeTile(const float *c, int64_t m, int64_t rows, float *y, int64_t ldy);

} // namespace dsrt::cpu

#endif // DSRT_CPU_SSETRANSPOSE_H
