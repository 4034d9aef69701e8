//===- HeadMatmul.cpp - per-head products with one weight's row blocks ----===//
//
// The pool splits the heads; within a head the work is one thread's:
//   transpose (o_h = u_h W_UV_h^T): the dot-product or tile kernels of
//     MatMul.cpp over the head's rows, which is what they compute;
//   otherwise (q_h W_UK_h, the weight's rows indexed by k): each weight row
//     is decoded once to f32 and added, times x[t, h, k], into every
//     token's output row (rows read once, contiguously; columns vectorise).
//
//===----------------------------------------------------------------------===//
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// y[i] += a * row[i], i < n.
void axpyPortable(float a, const float *row, int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * row[i];
}

#if defined(__x86_64__) && defined(__clang__)
/// The same loop compiled for AVX2 + FMA (8 lanes, fused): chosen only on
/// CPUs the active kernel set says have them.
__attribute__((target("avx2,fma"))) void axpyAvx2(float a, const float *row,
                                                  int64_t n, float *y) {
  for (int64_t i = 0; i < n; ++i)
    y[i] += a * row[i];
}
#endif

using Axpy = void (*)(float, const float *, int64_t, float *);
Axpy axpyFor(Isa isa) {
#if defined(__x86_64__) && defined(__clang__)
  if (isa >= Isa::Avx2)
    return axpyAvx2;
#endif
  (void)isa;
  return axpyPortable;
}

std::string shapeError(const MemRef<float, 3> &x, const WeightMatrix &w,
                       const MemRef<float, 3> &out, int64_t group,
                       int64_t offset, bool transpose) {
  auto str = [](int64_t v) { return std::to_string(v); };
  int64_t tokens = x.sizes[0], heads = x.sizes[1], k = x.sizes[2],
          n = out.sizes[2];
  if (out.sizes[0] != tokens || out.sizes[1] != heads)
    return "head_matmul: out is [" + str(out.sizes[0]) + ", " +
           str(out.sizes[1]) + ", _], expected [" + str(tokens) + ", " +
           str(heads) + ", _]";
  if ((k > 1 && x.strides[2] != 1) || (n > 1 && out.strides[2] != 1))
    return "head_matmul: strided columns";
  int64_t width = transpose ? k : n, rowsPerHead = transpose ? n : k;
  if (w.cols != width)
    return "head_matmul: the weight has " + str(w.cols) +
           " columns, expected " + str(width);
  if (group < 0 || offset < 0 ||
      (heads > 0 && (heads - 1) * group + offset + rowsPerHead > w.rows))
    return "head_matmul: head rows up to " +
           str((heads - 1) * group + offset + rowsPerHead) + " past the " +
           str(w.rows) + " rows of the weight";
  return "";
}

/// Heads per pool task. A product of a few tokens (decode) is bound by
/// reading the heads' weight rows, not by its multiply-adds: split it like
/// decode's GEMVs (MatMul.cpp's grainRows), ~64 KiB of weights per task,
/// or one thread would read every head's rows while the other spins (an
/// f32 decode step spent 9% of its time there). Otherwise ~2^18
/// multiply-adds per task, so small products stay on the caller.
int64_t headsPerTask(const WeightMatrix &w, int64_t tokens, int64_t n,
                     int64_t k) {
  int64_t byWork = (int64_t(1) << 18) / (tokens * n * k + 1);
  int64_t headBytes = n * k * int64_t(w.elementSize());
  int64_t byBytes = (int64_t(1) << 16) / (headBytes + 1);
  return std::max<int64_t>(1, std::min(byWork, byBytes));
}

/// Weight row r's n columns as f32: f32 rows where they lie (a copy would
/// cost a read and a write of every row), others decoded into `scratch`.
const float *weightRowF32(const KernelSet &ks, const WeightMatrix &w, int64_t r,
                          int64_t n, float *scratch) {
  if (w.format == WeightFormat::F32)
    return reinterpret_cast<const float *>(w.row(r));
  decodeWeightRow(ks, w, r, 0, n, scratch);
  return scratch;
}

/// q_h W_UK_h (rows indexed by k) for a few tokens (decode): per token and
/// head, combineRowsAvx2 keeps 64 outputs at a time in registers and
/// widens the weights in registers, where the many-token loop below
/// decodes every bf16 or FP8 row into a copy, then loads and stores the
/// output row for every weight row. Bit for bit that loop's result (fused adds,
/// the same order, the same decoding), so a token's output does not depend on
/// how many tokens came with it. False where it does not apply (then that loop
/// runs).
bool headRowsFewTokens(const KernelSet &ks, const float *xp, int64_t xs0,
                       int64_t xs1, const WeightMatrix &w, int64_t tokens,
                       int64_t heads, int64_t k, int64_t n, int64_t group,
                       int64_t offset, float *op, int64_t os0, int64_t os1,
                       int64_t grain) {
  // f32 rows are read in place by that loop, each in one forward pass,
  // which measured faster than this one's passes of 64 columns
  // (ds-cpu-bench heads).
  if (ks.isa < Isa::Avx2 || tokens > kGemvRows || w.format == WeightFormat::F32)
    return false;
  parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
    // Grow-only: steady-state calls allocate nothing.
    static thread_local std::vector<const void *> rows;
    static thread_local std::vector<const float *> scales;
    rows.resize(size_t(k));
    scales.resize(size_t(k));
    bool fp8 = w.format == WeightFormat::FP8;
    for (int64_t h = h0; h < h1; ++h) {
      for (int64_t kk = 0; kk < k; ++kk) {
        rows[size_t(kk)] = w.row(h * group + offset + kk);
        if (fp8)
          scales[size_t(kk)] = w.scaleRow(h * group + offset + kk);
      }
      for (int64_t t = 0; t < tokens; ++t)
        combineRowsAvx2(int(w.elementSize()), rows.data(),
                        fp8 ? scales.data() : nullptr, xp + t * xs0 + h * xs1,
                        k, n, op + t * os0 + h * os1);
    }
  });
  return true;
}

} // namespace

std::string cpu::headMatmul(const MemRef<float, 3> &x, const WeightMatrix &w,
                            const MemRef<float, 3> &out, int64_t group,
                            int64_t offset, bool transpose) {
  if (std::string e = shapeError(x, w, out, group, offset, transpose);
      !e.empty())
    return e;
  int64_t tokens = x.sizes[0], heads = x.sizes[1], k = x.sizes[2],
          n = out.sizes[2];
  if (tokens == 0 || heads == 0 || n == 0)
    return "";
  const KernelSet &ks = kernelsFor(activeIsa());
  const float *xp = x.data();
  float *op = out.data();
  int64_t grain = headsPerTask(w, tokens, n, k);
  if (transpose) {
    parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h)
        matmulSerialF32(ks, xp + h * x.strides[1], x.strides[0], tokens, w,
                        h * group + offset, n, op + h * out.strides[1],
                        out.strides[0]);
    });
    return "";
  }
  if (headRowsFewTokens(ks, xp, x.strides[0], x.strides[1], w, tokens, heads, k,
                        n, group, offset, op, out.strides[0], out.strides[1],
                        grain))
    return "";
  Axpy axpy = axpyFor(ks.isa);
  parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
    // Grow-only: steady-state calls allocate nothing.
    static thread_local std::vector<float> row;
    if (row.size() < size_t(n))
      row.resize(size_t(n));
    for (int64_t h = h0; h < h1; ++h) {
      float *oh = op + h * out.strides[1];
      for (int64_t t = 0; t < tokens; ++t)
        std::fill(oh + t * out.strides[0], oh + t * out.strides[0] + n, 0.0f);
      for (int64_t kk = 0; kk < k; ++kk) {
        const float *wr =
            weightRowF32(ks, w, h * group + offset + kk, n, row.data());
        for (int64_t t = 0; t < tokens; ++t)
          axpy(xp[t * x.strides[0] + h * x.strides[1] + kk], wr, n,
               oh + t * out.strides[0]);
      }
    }
  });
  return "";
}

std::string cpu::headMatmul(const MemRef<float, 3> &x,
                            const MemRef<float, 2> &w,
                            const MemRef<float, 3> &out, int64_t group,
                            int64_t offset, bool transpose) {
  if (w.sizes[1] > 1 && w.strides[1] != 1)
    return "head_matmul: the weight's columns are strided";
  return headMatmul(x,
                    WeightMatrix::single(WeightFormat::F32, w.data(),
                                         w.sizes[0], w.sizes[1], w.strides[0]),
                    out, group, offset, transpose);
}

std::string cpu::linearExact(const MemRef<float, 2> &x, const WeightMatrix &w,
                             const MemRef<float, 2> &y) {
  auto str = [](int64_t v) { return std::to_string(v); };
  if (x.sizes[1] != w.cols)
    return "linear_exact: x has " + str(x.sizes[1]) + " columns, the weight " +
           str(w.cols);
  if (y.sizes[0] != x.sizes[0] || y.sizes[1] != w.rows)
    return "linear_exact: y is [" + str(y.sizes[0]) + ", " + str(y.sizes[1]) +
           "], expected [" + str(x.sizes[0]) + ", " + str(w.rows) + "]";
  if ((x.sizes[1] > 1 && x.strides[1] != 1) ||
      (y.sizes[1] > 1 && y.strides[1] != 1))
    return "linear_exact: strided columns";
  int64_t rows = x.sizes[0], n = w.rows;
  if (rows == 0 || n == 0)
    return "";
  const KernelSet &ks = kernelsFor(activeIsa());
  // One range per thread: each packs x once for its rows of the weight.
  int64_t threads = rows * n * w.cols < (int64_t(1) << 18) ? 1 : numThreads();
  int64_t grain = (n + threads - 1) / threads;
  grain = (grain + ks.mr - 1) / ks.mr * ks.mr;
  parallelFor(n, grain, [&](int64_t b, int64_t e) {
    matmulSerialF32(ks, x.data(), x.strides[0], rows, w, b, e - b, y.data() + b,
                    y.strides[0]);
  });
  return "";
}

std::string cpu::linearExact(const MemRef<float, 2> &x,
                             const MemRef<float, 2> &w,
                             const MemRef<float, 2> &y) {
  if (w.sizes[1] > 1 && w.strides[1] != 1)
    return "linear_exact: the weight's columns are strided";
  return linearExact(x,
                     WeightMatrix::single(WeightFormat::F32, w.data(),
                                          w.sizes[0], w.sizes[1], w.strides[0]),
                     y);
}
