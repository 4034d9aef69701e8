//===- Gemm.cpp - the GEMMs generated CPU code delegates to BLAS ----------===//
#include "cpu/Gemm.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cblas.h>
#include <climits>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// A row-major matrix view: element (i, j) at data[i * rowStride + j *
/// colStride].
struct Matrix {
  const float *data;
  int64_t rows, cols, rowStride, colStride;
};

Matrix view(const MemRef<float, 2> &m) {
  return {m.data(), m.sizes[0], m.sizes[1], m.strides[0], m.strides[1]};
}

bool fitsInt(int64_t v) { return v >= 0 && v <= INT_MAX; }

/// The leading dimension BLAS may use for `m`, or -1 when the layout is
/// not one BLAS reads (non-unit column stride, overlapping rows, sizes past
/// BLAS's 32-bit int). A single row may have any row stride: BLAS never
/// steps over it, but it still insists on ld >= cols.
int64_t leadingDim(const Matrix &m) {
  if (m.cols > 1 && m.colStride != 1)
    return -1;
  int64_t ld = m.rows <= 1 ? std::max<int64_t>(m.cols, 1) : m.rowStride;
  if (ld < std::max<int64_t>(m.cols, 1) || !fitsInt(ld) || !fitsInt(m.rows) ||
      !fitsInt(m.cols))
    return -1;
  return ld;
}

/// The same product as BLAS, for layouts BLAS cannot take.
void naiveNT(const Matrix &x, const Matrix &w, float *y, int64_t yRowStride,
             int64_t yColStride) {
  for (int64_t t = 0; t < x.rows; ++t)
    for (int64_t n = 0; n < w.rows; ++n) {
      float acc = 0;
      for (int64_t k = 0; k < x.cols; ++k)
        acc += x.data[t * x.rowStride + k * x.colStride] *
               w.data[n * w.rowStride + k * w.colStride];
      y[t * yRowStride + n * yColStride] = acc;
    }
}

/// One slice of y = x * w^T (rows of w [n0, n0 + n)), single-threaded BLAS.
void gemmSlice(const Matrix &x, const Matrix &w, float *y, int64_t yRowStride,
               int64_t yColStride) {
  int64_t rows = x.rows, n = w.rows, k = x.cols;
  if (rows == 0 || n == 0)
    return;
  Matrix yv{y, rows, n, yRowStride, yColStride};
  int64_t ldx = leadingDim(x), ldw = leadingDim(w), ldy = leadingDim(yv);
  if (k == 0 || ldx < 0 || ldw < 0 || ldy < 0) {
    naiveNT(x, w, y, yRowStride, yColStride);
    return;
  }
  // Decode is one row: a matrix-vector product, which this OpenBLAS
  // (0.3.21) does not route to its faster gemv kernels by itself.
  if (rows == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(k), 1.0f, w.data,
                int(ldw), x.data, 1, 0.0f, y, int(yColStride));
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n),
              int(k), 1.0f, x.data, int(ldx), w.data, int(ldw), 0.0f, y,
              int(ldy));
}

/// y = x * w^T for views whose shapes were checked. The runtime's pool
/// splits the rows of w (OpenBLAS runs single-threaded: two thread pools
/// spinning on the same cores slow both down).
void gemmNT(const Matrix &x, const Matrix &w, float *y, int64_t yRowStride,
            int64_t yColStride) {
  singleThreadedBlas();
  // ~128 KiB of weights per grain: worth a thread, fine enough to balance.
  int64_t grain =
      std::max<int64_t>(16, 32768 / std::max<int64_t>(x.cols, 1)) & ~int64_t(15);
  parallelFor(w.rows, grain, [&](int64_t begin, int64_t end) {
    Matrix ws{w.data + begin * w.rowStride, end - begin, w.cols, w.rowStride,
              w.colStride};
    gemmSlice(x, ws, y + begin * yColStride, yRowStride, yColStride);
  });
}

std::string shapeMismatch(const char *what, int64_t a, int64_t b) {
  return std::string(what) + " (" + std::to_string(a) + " vs " +
         std::to_string(b) + ")";
}

} // namespace

std::string cpu::linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                        const MemRef<float, 2> &y) {
  if (x.sizes[1] != w.sizes[1])
    return shapeMismatch("linear: x and w disagree on K", x.sizes[1],
                         w.sizes[1]);
  if (y.sizes[0] != x.sizes[0] || y.sizes[1] != w.sizes[0])
    return "linear: y is [" + std::to_string(y.sizes[0]) + ", " +
           std::to_string(y.sizes[1]) + "], expected [" +
           std::to_string(x.sizes[0]) + ", " + std::to_string(w.sizes[0]) + "]";
  gemmNT(view(x), view(w), y.data(), y.strides[0], y.strides[1]);
  return "";
}

std::string cpu::linearSiluMul(const MemRef<float, 2> &x,
                               const MemRef<float, 2> &w,
                               const MemRef<float, 2> &y) {
  int64_t rows = x.sizes[0], k = x.sizes[1], f = w.sizes[0] / 2;
  if (w.sizes[1] != k)
    return shapeMismatch("linear_silu_mul: x and w disagree on K", k,
                         w.sizes[1]);
  if (w.sizes[0] % 2 != 0 || y.sizes[0] != rows || y.sizes[1] != f)
    return "linear_silu_mul: y is [" + std::to_string(y.sizes[0]) + ", " +
           std::to_string(y.sizes[1]) + "], expected [" +
           std::to_string(rows) + ", " + std::to_string(f) + "]";
  if (rows == 0 || f == 0)
    return "";
  singleThreadedBlas();
  Matrix xv = view(x), wv = view(w);
  int64_t grain =
      std::max<int64_t>(16, 16384 / std::max<int64_t>(k, 1)) & ~int64_t(15);
  parallelFor(f, grain, [&](int64_t begin, int64_t end) {
    int64_t n = end - begin;
    std::vector<float> g(size_t(rows * n)), u(size_t(rows * n));
    Matrix wg{wv.data + begin * wv.rowStride, n, k, wv.rowStride,
              wv.colStride};
    Matrix wu{wv.data + (f + begin) * wv.rowStride, n, k, wv.rowStride,
              wv.colStride};
    gemmSlice(xv, wg, g.data(), n, 1);
    gemmSlice(xv, wu, u.data(), n, 1);
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t j = 0; j < n; ++j)
        y.data()[t * y.strides[0] + (begin + j) * y.strides[1]] =
            siluMul(g[size_t(t * n + j)], u[size_t(t * n + j)]);
  });
  return "";
}

std::string cpu::groupedLinear(const MemRef<float, 2> &x,
                               const MemRef<float, 3> &w,
                               const MemRef<int32_t, 1> &offsets,
                               const MemRef<float, 2> &y) {
  int64_t experts = w.sizes[0], n = w.sizes[1], k = w.sizes[2];
  int64_t rows = x.sizes[0];
  if (x.sizes[1] != k)
    return shapeMismatch("grouped_linear: x and w disagree on K", x.sizes[1],
                         k);
  if (y.sizes[0] != rows || y.sizes[1] != n)
    return "grouped_linear: y is [" + std::to_string(y.sizes[0]) + ", " +
           std::to_string(y.sizes[1]) + "], expected [" + std::to_string(rows) +
           ", " + std::to_string(n) + "]";
  if (offsets.sizes[0] < experts + 1)
    return shapeMismatch("grouped_linear: fewer offsets than experts + 1",
                         offsets.sizes[0], experts + 1);
  // Offsets come from the routing kernel: check them all before writing,
  // so a bad one cannot send BLAS outside the buffers.
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
      continue; // most experts get no token in a decode step
    Matrix xe{x.data() + begin * x.strides[0], end - begin, k, x.strides[0],
              x.strides[1]};
    Matrix we{w.data() + e * w.strides[0], n, k, w.strides[1], w.strides[2]};
    gemmNT(xe, we, y.data() + begin * y.strides[0], y.strides[0], y.strides[1]);
  }
  return "";
}
