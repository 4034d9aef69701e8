//===- Bf16Gemm.cpp - GEMMs over weights kept in bf16 ---------------------===//
//
// One or a few rows (decode): a matrix-vector product per row, rows of w
// split across the pool's threads, AVX2 + FMA where the CPU has it (8 bf16
// widened to f32 by a shift). More rows (prefill): w is widened to f32 a
// tile of rows at a time and handed to OpenBLAS, so the widening costs one
// pass over w per call, not per token.
//
//===----------------------------------------------------------------------===//
#include "cpu/Bf16Gemm.h"
#include "cpu/Gemm.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cblas.h>
#include <climits>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// Rows handled by the matrix-vector path; above, tiles + sgemm.
constexpr int64_t kGemvRows = 4;
constexpr int64_t kTileRows = 128;

float dotScalar(const uint16_t *w, const float *x, int64_t k) {
  float acc = 0;
  for (int64_t i = 0; i < k; ++i)
    acc += bf16ToF32(w[i]) * x[i];
  return acc;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float dotAvx2(const uint16_t *w,
                                                 const float *x, int64_t k) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= k; i += 16) {
    __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(w + i));
    __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i *>(w + i + 8));
    __m256 w0 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(b0), 16));
    __m256 w1 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(b1), 16));
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + i), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + i + 8), a1);
  }
  __m256 a = _mm256_add_ps(a0, a1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float acc = _mm_cvtss_f32(s);
  for (; i < k; ++i)
    acc += bf16ToF32(w[i]) * x[i];
  return acc;
}

bool haveAvx2() {
  static const bool have =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return have;
}
#endif

float dot(const uint16_t *w, const float *x, int64_t k) {
#if defined(__x86_64__)
  if (haveAvx2())
    return dotAvx2(w, x, k);
#endif
  return dotScalar(w, x, k);
}

/// y[t, :] = w x[t, :] for a few rows t, with unit-stride x rows.
void gemvRows(const float *x, int64_t ldx, int64_t rows, const Bf16Matrix &w,
              float *y, int64_t ldy, int64_t ycol) {
  // ~64 KiB of weights per grain: enough work to be worth a thread.
  int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(w.cols, 1));
  parallelFor(w.rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t n = begin; n < end; ++n)
        y[t * ldy + n * ycol] = dot(w.data + n * w.ld, x + t * ldx, w.cols);
  });
}

/// Prefill: each thread widens tiles of its rows of w and runs one
/// single-threaded sgemm per tile.
void gemmTiles(const float *x, int64_t ldx, int64_t rows, const Bf16Matrix &w,
               float *y, int64_t ldy) {
  singleThreadedBlas();
  parallelFor(w.rows, kTileRows, [&](int64_t begin, int64_t end) {
    std::vector<float> tile(size_t(kTileRows * w.cols));
    for (int64_t n0 = begin; n0 < end; n0 += kTileRows) {
      int64_t nt = std::min(kTileRows, end - n0);
      for (int64_t r = 0; r < nt; ++r)
        for (int64_t c = 0; c < w.cols; ++c)
          tile[size_t(r * w.cols + c)] = bf16ToF32(w.data[(n0 + r) * w.ld + c]);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(nt),
                  int(w.cols), 1.0f, x, int(ldx), tile.data(), int(w.cols),
                  0.0f, y + n0, int(ldy));
    }
  });
}

bool fitsInt(int64_t v) { return v >= 0 && v <= INT_MAX; }

/// y rows [0, rows) = x rows * w^T, any layout the generated code gives
/// (unit column strides are the fast paths).
void product(const float *x, int64_t ldx, int64_t xcol, int64_t rows,
             const Bf16Matrix &w, float *y, int64_t ldy, int64_t ycol) {
  if (rows == 0 || w.rows == 0)
    return;
  bool unit = (xcol == 1 || w.cols <= 1) && (ycol == 1 || w.rows <= 1);
  if (unit && rows > kGemvRows && fitsInt(ldx) && fitsInt(ldy) &&
      fitsInt(rows) && fitsInt(w.cols) && ldx >= w.cols && ldy >= w.rows) {
    gemmTiles(x, ldx, rows, w, y, ldy);
    return;
  }
  if (xcol == 1 || w.cols <= 1) {
    gemvRows(x, ldx, rows, w, y, ldy, ycol);
    return;
  }
  std::vector<float> row(size_t(w.cols)); // strided x: gather each row
  for (int64_t t = 0; t < rows; ++t) {
    for (int64_t c = 0; c < w.cols; ++c)
      row[size_t(c)] = x[t * ldx + c * xcol];
    gemvRows(row.data(), 0, 1, w, y + t * ldy, 0, ycol);
  }
}

} // namespace

std::string cpu::linearBf16(const MemRef<float, 2> &x, const Bf16Matrix &w,
                            const MemRef<float, 2> &y) {
  if (x.sizes[1] != w.cols)
    return "linear: x has K = " + std::to_string(x.sizes[1]) +
           ", the bf16 weight " + std::to_string(w.cols);
  if (y.sizes[0] != x.sizes[0] || y.sizes[1] != w.rows)
    return "linear: y is [" + std::to_string(y.sizes[0]) + ", " +
           std::to_string(y.sizes[1]) + "], expected [" +
           std::to_string(x.sizes[0]) + ", " + std::to_string(w.rows) + "]";
  product(x.data(), x.strides[0], x.strides[1], x.sizes[0], w, y.data(),
          y.strides[0], y.strides[1]);
  return "";
}

std::string cpu::linearSiluMulBf16(const MemRef<float, 2> &x,
                                   const Bf16Matrix &w,
                                   const MemRef<float, 2> &y) {
  int64_t rows = x.sizes[0], f = w.rows / 2;
  if (x.sizes[1] != w.cols || w.rows % 2 != 0 || y.sizes[0] != rows ||
      y.sizes[1] != f)
    return "linear_silu_mul: shapes do not match the bf16 weights";
  if (rows == 0 || f == 0)
    return "";
  int64_t grain =
      std::max<int64_t>(16, 16384 / std::max<int64_t>(w.cols, 1)) & ~int64_t(15);
  parallelFor(f, grain, [&](int64_t begin, int64_t end) {
    int64_t n = end - begin;
    std::vector<float> g(size_t(rows * n)), u(size_t(rows * n));
    Bf16Matrix wg{w.data + begin * w.ld, n, w.cols, w.ld};
    Bf16Matrix wu{w.data + (f + begin) * w.ld, n, w.cols, w.ld};
    product(x.data(), x.strides[0], x.strides[1], rows, wg, g.data(), n, 1);
    product(x.data(), x.strides[0], x.strides[1], rows, wu, u.data(), n, 1);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t j = 0; j < n; ++j)
        y.data()[t * y.strides[0] + (begin + j) * y.strides[1]] =
            siluMul(g[size_t(t * n + j)], u[size_t(t * n + j)]);
  });
  return "";
}

std::string cpu::groupedLinearBf16(const MemRef<float, 2> &x,
                                   const uint16_t *base, int64_t experts,
                                   int64_t n, int64_t k, int64_t expertStride,
                                   const MemRef<int32_t, 1> &offsets,
                                   const MemRef<float, 2> &y) {
  int64_t rows = x.sizes[0];
  if (x.sizes[1] != k || y.sizes[0] != rows || y.sizes[1] != n ||
      offsets.sizes[0] < experts + 1)
    return "grouped_linear: shapes do not match the bf16 weights";
  auto offset = [&](int64_t e) {
    return int64_t(offsets.data()[e * offsets.strides[0]]);
  };
  for (int64_t e = 0; e < experts; ++e)
    if (offset(e) < 0 || offset(e) > offset(e + 1) || offset(e + 1) > rows)
      return "grouped_linear: offsets of expert " + std::to_string(e) +
             " are [" + std::to_string(offset(e)) + ", " +
             std::to_string(offset(e + 1)) + "), outside [0, " +
             std::to_string(rows) + "] or decreasing";
  for (int64_t e = 0; e < experts; ++e) {
    int64_t begin = offset(e), end = offset(e + 1);
    if (begin == end)
      continue;
    Bf16Matrix we{base + e * expertStride, n, k, k};
    product(x.data() + begin * x.strides[0], x.strides[0], x.strides[1],
            end - begin, we, y.data() + begin * y.strides[0], y.strides[0],
            y.strides[1]);
  }
  return "";
}
