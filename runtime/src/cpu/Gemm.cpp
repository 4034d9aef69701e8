//===- Gemm.cpp - the GEMMs generated CPU code delegates to ---------------===//
#include "cpu/Gemm.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"
#include "cpu/TileChoice.h"

#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

std::string shapeMismatch(const char *what, int64_t a, int64_t b) {
  return std::string(what) + " (" + std::to_string(a) + " vs " +
         std::to_string(b) + ")";
}

std::string shape2(const char *what, int64_t a, int64_t b, int64_t c,
                   int64_t d) {
  return std::string(what) + ": y is [" + std::to_string(a) + ", " +
         std::to_string(b) + "], expected [" + std::to_string(c) + ", " +
         std::to_string(d) + "]";
}

/// A view of an f32 memref as a weight; false when its columns are not
/// unit-stride (then the caller multiplies element by element).
bool asWeight(const MemRef<float, 2> &w, WeightMatrix &out) {
  if (w.sizes[1] > 1 && w.strides[1] != 1)
    return false;
  out = WeightMatrix::single(WeightFormat::F32, w.data(), w.sizes[0],
                             w.sizes[1], w.strides[0]);
  return true;
}

/// Runs `f(x, ldx, y, ldy)` on unit-column-stride views of x and y (copies
/// when the generated code hands strided columns, which it rarely does).
template <typename F>
void withUnitColumns(const MemRef<float, 2> &x, const MemRef<float, 2> &y,
                     F f) {
  int64_t rows = x.sizes[0], k = x.sizes[1], n = y.sizes[1], yRows = y.sizes[0];
  const float *xp = x.data();
  int64_t ldx = x.strides[0];
  std::vector<float> xc, yc;
  if (k > 1 && x.strides[1] != 1) {
    xc.resize(size_t(rows * k));
    for (int64_t t = 0; t < rows; ++t)
      for (int64_t c = 0; c < k; ++c)
        xc[size_t(t * k + c)] = xp[t * ldx + c * x.strides[1]];
    xp = xc.data();
    ldx = k;
  }
  if (n > 1 && y.strides[1] != 1) {
    yc.resize(size_t(yRows * n));
    f(xp, ldx, yc.data(), n);
    for (int64_t t = 0; t < yRows; ++t)
      for (int64_t j = 0; j < n; ++j)
        y.data()[t * y.strides[0] + j * y.strides[1]] = yc[size_t(t * n + j)];
    return;
  }
  f(xp, ldx, y.data(), y.strides[0]);
}

/// y = x w^T element by element, for a weight with strided columns.
void naive(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
           const MemRef<float, 2> &y) {
  for (int64_t t = 0; t < x.sizes[0]; ++t)
    for (int64_t n = 0; n < w.sizes[0]; ++n) {
      float acc = 0;
      for (int64_t k = 0; k < x.sizes[1]; ++k)
        acc += x.data()[t * x.strides[0] + k * x.strides[1]] *
               w.data()[n * w.strides[0] + k * w.strides[1]];
      y.data()[t * y.strides[0] + n * y.strides[1]] = acc;
    }
}

} // namespace

std::string cpu::linear(const MemRef<float, 2> &x, const WeightMatrix &w,
                        const MemRef<float, 2> &y) {
  if (x.sizes[1] != w.cols)
    return shapeMismatch("linear: x and w disagree on K", x.sizes[1], w.cols);
  if (y.sizes[0] != x.sizes[0] || y.sizes[1] != w.rows)
    return shape2("linear", y.sizes[0], y.sizes[1], x.sizes[0], w.rows);
  const KernelSet &ks = activeKernels();
  withUnitColumns(x, y,
                  [&](const float *xp, int64_t ldx, float *yp, int64_t ldy) {
                    matmul(ks, xp, ldx, x.sizes[0], w, 0, w.rows, yp, ldy);
                  });
  return "";
}

std::string cpu::linear(const MemRef<float, 2> &x, const MemRef<float, 2> &w,
                        const MemRef<float, 2> &y) {
  WeightMatrix m;
  if (asWeight(w, m))
    return linear(x, m, y);
  if (x.sizes[1] != w.sizes[1])
    return shapeMismatch("linear: x and w disagree on K", x.sizes[1],
                         w.sizes[1]);
  if (y.sizes[0] != x.sizes[0] || y.sizes[1] != w.sizes[0])
    return shape2("linear", y.sizes[0], y.sizes[1], x.sizes[0], w.sizes[0]);
  naive(x, w, y);
  return "";
}

std::string cpu::embedding(const WeightMatrix &table,
                           const MemRef<int32_t, 1> &ids,
                           const MemRef<float, 2> &out) {
  int64_t n = ids.sizes[0];
  if (out.sizes[0] != n || out.sizes[1] != table.cols)
    return shape2("embedding", out.sizes[0], out.sizes[1], n, table.cols);
  if (table.cols > 1 && out.strides[1] != 1)
    return "embedding: output columns are strided";
  const int32_t *id = ids.data();
  for (int64_t t = 0; t < n; ++t)
    if (id[t * ids.strides[0]] < 0 || id[t * ids.strides[0]] >= table.rows)
      return "embedding: token id " + std::to_string(id[t * ids.strides[0]]) +
             " at " + std::to_string(t) + " is outside [0, " +
             std::to_string(table.rows) + ")";
  gatherRows(activeKernels(), table, id, ids.strides[0], n, out.data(),
             out.strides[0]);
  return "";
}

std::string cpu::embedding(const MemRef<float, 2> &table,
                           const MemRef<int32_t, 1> &ids,
                           const MemRef<float, 2> &out) {
  WeightMatrix m;
  if (!asWeight(table, m))
    return "embedding: table columns are strided";
  return embedding(m, ids, out);
}

std::string cpu::linearSiluMul(const MemRef<float, 2> &x, const WeightMatrix &w,
                               const MemRef<float, 2> &y) {
  int64_t rows = x.sizes[0], k = x.sizes[1], f = w.rows / 2;
  if (w.cols != k)
    return shapeMismatch("linear_silu_mul: x and w disagree on K", k, w.cols);
  if (w.rows % 2 != 0 || y.sizes[0] != rows || y.sizes[1] != f)
    return shape2("linear_silu_mul", y.sizes[0], y.sizes[1], rows, f);
  const KernelSet &ks = activeKernels();
  withUnitColumns(x, y,
                  [&](const float *xp, int64_t ldx, float *yp, int64_t ldy) {
                    matmulSiluMul(ks, xp, ldx, rows, w, 0, f, f, yp, ldy);
                  });
  return "";
}

std::string cpu::linearSiluMul(const MemRef<float, 2> &x,
                               const MemRef<float, 2> &w,
                               const MemRef<float, 2> &y) {
  WeightMatrix m;
  if (!asWeight(w, m))
    return "linear_silu_mul: the weight's columns are not contiguous";
  return linearSiluMul(x, m, y);
}

namespace {

/// The gather form's index (ds.grouped_matmul gather(row_of_slot)): for
/// each of y's rows, the row of x (a token) it reads, where rowOfSlot maps
/// slot s (token s / k, k slots a token) to its row. Checks that
/// rowOfSlot is a permutation of y's rows and returns "" or the error.
std::string gatherIndex(const std::string &op, const MemRef<float, 2> &x,
                        const MemRef<float, 2> &y,
                        const MemRef<int32_t, 1> &rowOfSlot,
                        std::vector<int32_t> &index) {
  int64_t tokens = x.sizes[0], slots = rowOfSlot.sizes[0];
  if (slots != y.sizes[0])
    return op + ": row_of_slot has " + std::to_string(slots) +
           " slots but the result " + std::to_string(y.sizes[0]) + " rows";
  if (tokens == 0 ? slots != 0 : slots % tokens != 0)
    return op + ": " + std::to_string(slots) +
           " slots are not a whole number per token (" +
           std::to_string(tokens) + " tokens)";
  int64_t perToken = tokens > 0 ? slots / tokens : 1;
  index.assign(size_t(slots), -1);
  for (int64_t s = 0; s < slots; ++s) {
    int64_t r = rowOfSlot.data()[s * rowOfSlot.strides[0]];
    if (r < 0 || r >= slots || index[size_t(r)] >= 0)
      return op + ": row_of_slot[" + std::to_string(s) +
             "] = " + std::to_string(r) + " is outside [0, " +
             std::to_string(slots) + ") or repeats a row";
    index[size_t(r)] = int32_t(s / perToken);
  }
  return "";
}

/// The checks of a grouped product over `experts` experts of w (their
/// shapes and the routing's offsets, all checked before anything is
/// written, so a bad offset cannot send a kernel outside the buffers),
/// then f(groups, x, ldx, y, ldy, index) on unit-column views, index the
/// gather form's (null without rowOfSlot). `what` names the op in the
/// error.
template <typename F>
std::string
grouped(const char *what, const MemRef<float, 2> &x, const WeightMatrix &w,
        int64_t experts, const MemRef<int32_t, 1> &offsets,
        const MemRef<float, 2> &y, const MemRef<int32_t, 1> *rowOfSlot, F f) {
  std::string op = what;
  // The product's rows: y's (a slot's each) when gathered, else x's.
  int64_t k = w.cols, rows = rowOfSlot ? y.sizes[0] : x.sizes[0];
  int64_t n = experts > 0 ? w.rows / experts : 0;
  if (experts <= 0 || w.rows % experts != 0)
    return op + ": " + std::to_string(w.rows) +
           " weight rows do not split into " + std::to_string(experts) +
           " experts";
  if (x.sizes[1] != k)
    return shapeMismatch((op + ": x and w disagree on K").c_str(), x.sizes[1],
                         k);
  if (y.sizes[0] != rows || y.sizes[1] != n)
    return shape2(what, y.sizes[0], y.sizes[1], rows, n);
  if (offsets.sizes[0] < experts + 1)
    return shapeMismatch((op + ": fewer offsets than experts + 1").c_str(),
                         offsets.sizes[0], experts + 1);
  auto offset = [&](int64_t e) {
    return int64_t(offsets.data()[e * offsets.strides[0]]);
  };
  for (int64_t e = 0; e < experts; ++e)
    if (offset(e) < 0 || offset(e) > offset(e + 1) || offset(e + 1) > rows)
      return op + ": offsets of expert " + std::to_string(e) + " are [" +
             std::to_string(offset(e)) + ", " + std::to_string(offset(e + 1)) +
             "), outside [0, " + std::to_string(rows) + "] or decreasing";
  static thread_local std::vector<int32_t> index;
  if (rowOfSlot) {
    std::string error = gatherIndex(op, x, y, *rowOfSlot, index);
    if (!error.empty())
      return error;
  }
  withUnitColumns(x, y,
                  [&](const float *xp, int64_t ldx, float *yp, int64_t ldy) {
                    static thread_local std::vector<MatmulGroup> groups;
                    groups.clear();
                    for (int64_t e = 0; e < experts; ++e)
                      if (offset(e) < offset(e + 1)) // most get no token
                        groups.push_back({offset(e), offset(e + 1), e * n});
                    f(groups, xp, ldx, yp, ldy,
                      rowOfSlot ? index.data() : nullptr);
                  });
  return "";
}

/// A [experts, N, K] memref as one weight of experts * N rows (experts at
/// a uniform stride: parts of one matrix), or false.
bool asExperts(const MemRef<float, 3> &w, WeightMatrix &m) {
  int64_t experts = w.sizes[0], n = w.sizes[1], k = w.sizes[2];
  if ((k > 1 && w.strides[2] != 1) || (n > 1 && w.strides[1] < k))
    return false;
  m.format = WeightFormat::F32;
  m.rows = experts * n;
  m.cols = k;
  m.ld = w.strides[1];
  m.partRows = n > 0 ? n : 1;
  for (int64_t e = 0; e < experts; ++e)
    m.parts.push_back(w.data() + e * w.strides[0]);
  if (experts == 0)
    m.parts.push_back(w.data());
  return true;
}

} // namespace

std::string cpu::groupedLinear(const MemRef<float, 2> &x, const WeightMatrix &w,
                               int64_t experts,
                               const MemRef<int32_t, 1> &offsets,
                               const MemRef<float, 2> &y,
                               const MemRef<int32_t, 1> *rowOfSlot) {
  const KernelSet &ks = activeKernels();
  return grouped("grouped_linear", x, w, experts, offsets, y, rowOfSlot,
                 [&](const std::vector<MatmulGroup> &groups, const float *xp,
                     int64_t ldx, float *yp, int64_t ldy,
                     const int32_t *index) {
                   matmulGroups(ks, xp, ldx, y.sizes[0], w, w.rows / experts,
                                groups, yp, ldy, index);
                 });
}

std::string cpu::groupedLinearSiluMul(const MemRef<float, 2> &x,
                                      const WeightMatrix &gate,
                                      const WeightMatrix &up, int64_t experts,
                                      const MemRef<int32_t, 1> &offsets,
                                      const MemRef<float, 2> &y,
                                      const MemRef<int32_t, 1> *rowOfSlot) {
  if (gate.rows != up.rows || gate.cols != up.cols)
    return "grouped_linear_silu_mul: gate is [" + std::to_string(gate.rows) +
           ", " + std::to_string(gate.cols) + "], up [" +
           std::to_string(up.rows) + ", " + std::to_string(up.cols) + "]";
  // One format: x is rounded (or not) once for both products.
  if (gate.format != up.format)
    return "grouped_linear_silu_mul: gate and up are stored in different "
           "formats";
  const KernelSet &ks = activeKernels();
  return grouped(
      "grouped_linear_silu_mul", x, gate, experts, offsets, y, rowOfSlot,
      [&](const std::vector<MatmulGroup> &groups, const float *xp, int64_t ldx,
          float *yp, int64_t ldy, const int32_t *index) {
        matmulGroupsSiluMul(ks, xp, ldx, y.sizes[0], gate, up,
                            gate.rows / experts, groups, yp, ldy, index);
      });
}

std::string cpu::groupedLinear(const MemRef<float, 2> &x,
                               const MemRef<float, 3> &w,
                               const MemRef<int32_t, 1> &offsets,
                               const MemRef<float, 2> &y,
                               const MemRef<int32_t, 1> *rowOfSlot) {
  WeightMatrix m;
  if (!asExperts(w, m))
    return "grouped_linear: the weight's rows are not contiguous";
  return groupedLinear(x, m, w.sizes[0], offsets, y, rowOfSlot);
}

std::string cpu::groupedLinearSiluMul(const MemRef<float, 2> &x,
                                      const MemRef<float, 3> &gate,
                                      const MemRef<float, 3> &up,
                                      const MemRef<int32_t, 1> &offsets,
                                      const MemRef<float, 2> &y,
                                      const MemRef<int32_t, 1> *rowOfSlot) {
  WeightMatrix g, u;
  if (!asExperts(gate, g) || !asExperts(up, u))
    return "grouped_linear_silu_mul: the weights' rows are not contiguous";
  if (gate.sizes[0] != up.sizes[0])
    return shapeMismatch("grouped_linear_silu_mul: gate and up experts",
                         gate.sizes[0], up.sizes[0]);
  return groupedLinearSiluMul(x, g, u, gate.sizes[0], offsets, y, rowOfSlot);
}
