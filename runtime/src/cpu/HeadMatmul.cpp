//===- HeadMatmul.cpp - per-head products with one weight's row blocks ----===//
//
// The pool splits the heads; within a head the work is one thread's:
//   transpose (o_h = u_h W_UV_h^T): the dot-product or tile kernels of
//     MatMul.cpp over the head's rows, which is what they compute;
//   otherwise (q_h W_UK_h, the weight's rows indexed by k), with
//     kHeadGemmRows or more (batched decode, a chunk's absorbed rows) a GEMM
//     through the f32 tile kernel, the head's block as its packed panel
//     (headProductNN); with fewer (decode) FP8 and bf16 rows are widened
//     in registers, 64 outputs at a time on AVX2, on AVX-512 FP8 128 at a
//     time through the e4m3 lookup and bf16 256 (headRowsFewTokens),
//     and f32 rows and any row below AVX2 are added, times x[t, h, k],
//     into every token's output row
//     (rows read once, contiguously; columns vectorise). All
//     three sum each output's terms from k = 0 upwards with fused adds, so a
//     token's output does not depend on how many tokens came with it.
//
//===----------------------------------------------------------------------===//
#include "cpu/HeadMatmul.h"
#include "cpu/Axpy.h"
#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"
#include "cpu/TileChoice.h"

#include <algorithm>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// y[t, j] = sum_kk x[t, kk] * w[r0 + kk, j] (t < rows, j < n, kk < k) on
/// this thread, as a GEMM through the ISA's f32 tile kernel with the roles
/// of its operands swapped: the tile's "weight rows" are x's rows (k
/// contiguous, as the kernel reads them) and its packed panel is kPanel
/// columns of the head's weight block, which in the weight's own row-major
/// layout is already panel order (panel[kk * kPanel + j] = w[r0 + kk, c0 +
/// j]): each weight row is decoded to f32 once and copied in 32-column
/// pieces, no transposition. Every output sums its terms from kk = 0
/// upwards, in f32.
void headProductNN(const KernelSet &ks, const float *x, int64_t ldx,
                   int64_t rows, const WeightMatrix &w, int64_t r0, int64_t k,
                   int64_t n, float *y, int64_t ldy) {
  int64_t panels = (n + kPanel - 1) / kPanel, mr = ks.mr;
  // Grow-only: steady-state calls allocate nothing.
  static thread_local std::vector<float> packed, row, xpad, ctile;
  if (packed.size() < size_t(panels * k * kPanel))
    packed.resize(size_t(panels * k * kPanel));
  if (row.size() < size_t(panels * kPanel))
    row.resize(size_t(panels * kPanel));
  if (xpad.size() < size_t(mr * k))
    xpad.resize(size_t(mr * k));
  if (ctile.size() < size_t(mr * kPanel))
    ctile.resize(size_t(mr * kPanel));
  // Columns past n stay zero: the last panel's padding adds nothing.
  std::fill(row.begin() + n, row.begin() + panels * kPanel, 0.0f);
  for (int64_t kk = 0; kk < k; ++kk) {
    decodeWeightRow(ks, w, r0 + kk, 0, n, row.data());
    for (int64_t p = 0; p < panels; ++p)
      std::copy(row.data() + p * kPanel, row.data() + (p + 1) * kPanel,
                packed.data() + (p * k + kk) * kPanel);
  }
  for (int64_t t0 = 0; t0 < rows; t0 += mr) {
    int64_t m = std::min(mr, rows - t0);
    // The tile computes mr rows: a short last block reads zero rows.
    const float *xr = x + t0 * ldx;
    int64_t ld = ldx;
    if (m < mr) {
      std::fill(xpad.begin(), xpad.begin() + mr * k, 0.0f);
      for (int64_t i = 0; i < m; ++i)
        std::copy(xr + i * ldx, xr + i * ldx + k, xpad.data() + i * k);
      xr = xpad.data();
      ld = k;
    }
    for (int64_t p = 0; p < panels; ++p) {
      std::fill(ctile.begin(), ctile.begin() + mr * kPanel, 0.0f);
      ks.tileF32(xr, ld, packed.data() + p * k * kPanel, k, ctile.data(),
                 nullptr);
      int64_t c0 = p * kPanel, nc = std::min<int64_t>(kPanel, n - c0);
      for (int64_t i = 0; i < m; ++i)
        std::copy(ctile.data() + i * kPanel, ctile.data() + i * kPanel + nc,
                  y + (t0 + i) * ldy + c0);
    }
  }
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
/// multiply-adds per task, so small products stay on the caller. Evened
/// over the threads: the bench model's FP8 heads of 16 KiB came out 3 per task,
/// 8 heads as 3 + 3 + 2, one thread reading 6.
int64_t headsPerTask(const WeightMatrix &w, int64_t heads, int64_t tokens,
                     int64_t n, int64_t k) {
  int64_t byWork = (int64_t(1) << 18) / (tokens * n * k + 1);
  int64_t headBytes = n * k * int64_t(w.elementSize());
  int64_t byBytes = (int64_t(1) << 16) / (headBytes + 1);
  return evenGrain(heads, std::max<int64_t>(1, std::min(byWork, byBytes)));
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
/// head, combineRowsAvx2 (or the set's combineFp8Rows, combineBf16Rows)
/// keeps 64 (128, 256) outputs at a time in registers and
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
  // (ds-cpu-bench heads). bf16 rows once went there too on AVX-512, added
  // into the output rows one at a time, until KernelSet::combineBf16Rows
  // (256 columns a pass) read a V3-shaped head's 3.6-4x faster on Zen 5
  // (bench/RESULTS.md).
  if (ks.isa < Isa::Avx2 || tokens >= kHeadGemmRows ||
      w.format == WeightFormat::F32)
    return false;
  parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
    // Grow-only: steady-state calls allocate nothing.
    static thread_local std::vector<const void *> rows;
    static thread_local std::vector<const float *> scales;
    // A head's k rows, then the next head's first (kCombineAhead), which
    // the kernel fetches during this head's last rows.
    const int64_t ahead = std::min<int64_t>(kCombineAhead, k);
    rows.resize(size_t(k + ahead));
    scales.resize(size_t(k));
    bool fp8 = w.format == WeightFormat::FP8;
    auto rowOf = [&](int64_t h, int64_t kk) {
      return w.row(h * group + offset + kk);
    };
    // The run's first head starts cold: its first rows (their first 512
    // bytes, a kernel's first pass or more) at once.
    int64_t firstBytes = std::min<int64_t>(n * int64_t(w.elementSize()), 512);
    for (int64_t kk = 0; kk < ahead; ++kk)
      for (int64_t l = 0; l < firstBytes; l += 64)
        __builtin_prefetch(rowOf(h0, kk) + l, 0, 3);
    for (int64_t h = h0; h < h1; ++h) {
      w.rowsFrom(h * group + offset, k, rows.data(),
                 fp8 ? scales.data() : nullptr);
      bool next = h + 1 < h1;
      if (next)
        w.rowsFrom((h + 1) * group + offset, ahead, rows.data() + k, nullptr);
      for (int64_t t = 0; t < tokens; ++t) {
        // The next call's rows: this head's again for the next token.
        int64_t fetch = t + 1 == tokens && next ? ahead : 0;
        if (fp8 && ks.combineFp8Rows)
          ks.combineFp8Rows(rows.data(), scales.data(), xp + t * xs0 + h * xs1,
                            k, n, fetch, op + t * os0 + h * os1);
        else if (!fp8 && ks.combineBf16Rows)
          ks.combineBf16Rows(rows.data(), xp + t * xs0 + h * xs1, k, n, fetch,
                             op + t * os0 + h * os1);
        else
          combineRowsAvx2(int(w.elementSize()), rows.data(),
                          fp8 ? scales.data() : nullptr, xp + t * xs0 + h * xs1,
                          k, n, op + t * os0 + h * os1);
      }
    }
  });
  return true;
}

} // namespace

std::string cpu::headMatmul(const MemRef<float, 3> &x, const WeightMatrix &w,
                            const MemRef<float, 3> &out, int64_t group,
                            int64_t offset, bool transpose) {
  return headMatmul(activeKernels(), x, w, out, group, offset, transpose);
}

std::string cpu::headMatmul(const KernelSet &ks, const MemRef<float, 3> &x,
                            const WeightMatrix &w, const MemRef<float, 3> &out,
                            int64_t group, int64_t offset, bool transpose) {
  if (std::string e = shapeError(x, w, out, group, offset, transpose);
      !e.empty())
    return e;
  int64_t tokens = x.sizes[0], heads = x.sizes[1], k = x.sizes[2],
          n = out.sizes[2];
  if (tokens == 0 || heads == 0 || n == 0)
    return "";
  const float *xp = x.data();
  float *op = out.data();
  int64_t grain = headsPerTask(w, heads, tokens, n, k);
  if (transpose) {
    parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h)
        matmulSerialF32(ks, xp + h * x.strides[1], x.strides[0], tokens, w,
                        h * group + offset, n, op + h * out.strides[1],
                        out.strides[0]);
    });
    return "";
  }
  if (tokens >= kHeadGemmRows) {
    parallelFor(heads, grain, [&](int64_t h0, int64_t h1) {
      for (int64_t h = h0; h < h1; ++h)
        headProductNN(ks, xp + h * x.strides[1], x.strides[0], tokens, w,
                      h * group + offset, k, n, op + h * out.strides[1],
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
        int64_t r = h * group + offset + kk;
        const float *wr = weightRowF32(ks, w, r, n, row.data());
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

namespace {

/// Rows [begin, end) of a [tokens, heads, n] buffer, as a view.
MemRef<float, 3> rowsOf(const MemRef<float, 3> &m, int64_t begin, int64_t end) {
  MemRef<float, 3> v = m;
  v.offset += begin * m.strides[0];
  v.sizes[0] = end - begin;
  return v;
}

} // namespace

std::string cpu::headMatmulSkip(const MemRef<float, 3> &x,
                                const WeightMatrix &w,
                                const MemRef<float, 3> &out,
                                const MemRef<int32_t, 1> &queryStart,
                                int64_t group, int64_t offset, bool transpose,
                                int64_t naiveMinTokens, int64_t *computedRows) {
  if (std::string e = shapeError(x, w, out, group, offset, transpose);
      !e.empty())
    return e;
  int64_t tokens = x.sizes[0], seqs = queryStart.sizes[0] - 1;
  auto qs = [&](int64_t s) {
    return int64_t(queryStart.data()[s * queryStart.strides[0]]);
  };
  if (seqs < 0)
    return "head_matmul: query_start is empty, expected [sequences + 1]";
  for (int64_t s = 0; s <= seqs; ++s)
    if (qs(s) < 0 || qs(s) > tokens || (s > 0 && qs(s) < qs(s - 1)))
      return "head_matmul: query_start[" + std::to_string(s) +
             "] = " + std::to_string(qs(s)) +
             " is not non-decreasing within [0, " + std::to_string(tokens) +
             "]";
  // The absorbed sequences' rows, adjacent ones merged into one range (a
  // batch of decodes is one product). The naive sequences' rows are not
  // written: ds.paged_naive_attention replaces them, and no other op reads
  // them (the op leaves them unspecified). Zeroing them wrote a prefill
  // chunk's whole q_latent, [tokens, heads, kv_lora_rank] floats a layer,
  // for nothing (~1% of a bf16 prefill, bench/RESULTS.md). Rows outside
  // every sequence (a padded step's) are zeroed.
  int64_t minTokens = std::max<int64_t>(naiveMinTokens, 1);
  std::vector<std::pair<int64_t, int64_t>> keep;
  for (int64_t s = 0; s < seqs; ++s) {
    int64_t t0 = qs(s), t1 = qs(s + 1);
    if (t1 - t0 >= minTokens || t1 == t0)
      continue;
    if (!keep.empty() && keep.back().second == t0)
      keep.back().second = t1;
    else
      keep.push_back({t0, t1});
  }
  int64_t heads = out.sizes[1], n = out.sizes[2];
  // Split like a GEMM's rows: a padded step's rows may be many.
  auto zero = [&](int64_t t0, int64_t t1) {
    if (t1 <= t0)
      return;
    int64_t grain = std::max<int64_t>(1, (int64_t(1) << 16) / (heads * n + 1));
    parallelFor(t1 - t0, grain, [&](int64_t b, int64_t e) {
      for (int64_t t = t0 + b; t < t0 + e; ++t)
        for (int64_t h = 0; h < heads; ++h) {
          float *row = out.data() + t * out.strides[0] + h * out.strides[1];
          std::fill(row, row + n, 0.0f);
        }
    });
  };
  int64_t computed = 0;
  for (auto [t0, t1] : keep) {
    if (std::string e = headMatmul(rowsOf(x, t0, t1), w, rowsOf(out, t0, t1),
                                   group, offset, transpose);
        !e.empty())
      return e;
    computed += t1 - t0;
  }
  zero(0, qs(0));
  zero(qs(seqs), tokens);
  if (computedRows)
    *computedRows += computed;
  return "";
}

std::string cpu::headMatmulSkip(const MemRef<float, 3> &x,
                                const MemRef<float, 2> &w,
                                const MemRef<float, 3> &out,
                                const MemRef<int32_t, 1> &queryStart,
                                int64_t group, int64_t offset, bool transpose,
                                int64_t naiveMinTokens, int64_t *computedRows) {
  if (w.sizes[1] > 1 && w.strides[1] != 1)
    return "head_matmul: the weight's columns are strided";
  return headMatmulSkip(
      x,
      WeightMatrix::single(WeightFormat::F32, w.data(), w.sizes[0], w.sizes[1],
                           w.strides[0]),
      out, queryStart, group, offset, transpose, naiveMinTokens, computedRows);
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
  // x packed once and the rows split in tiles: one range per thread, each
  // packing x for itself, left the earlier thread idle at the end (17% of
  // the kv_b expansion's time in a bf16 prefill, pool trace).
  matmulF32(activeKernels(), x.data(), x.strides[0], rows, w, 0, n, y.data(),
            y.strides[0]);
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
