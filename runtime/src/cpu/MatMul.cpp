//===- MatMul.cpp - y = x w^T over weights in their stored format ---------===//
#include "cpu/MatMul.h"
#include "cpu/Gemm.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// K per tile pass: a 12-row f32 weight chunk (12 KiB) stays in L1 while
/// every panel of x goes by; a multiple of the FP8 block (128).
constexpr int64_t kKc = 256;
/// Row stride of the decoded weight tile: not a power of two, so its rows
/// do not all fall into one L1 set (in-place rows K apart often do: a
/// 2048-wide f32 row is 8 KiB, and 12 of them thrash an 8-way L1 set,
/// which is why f32 rows are copied into the tile too).
constexpr int64_t kTileLd = kKc + 16;
/// Weight rows per silu-mul block (gate and up results of one block).
constexpr int64_t kSiluBlock = 96;

/// A grow-only, 64-byte aligned buffer: steady-state calls allocate nothing.
template <typename T> class Buffer {
public:
  ~Buffer() { std::free(data); }
  T *get(size_t count) {
    if (count > size) {
      std::free(data);
      size_t bytes = (std::max<size_t>(count, 1) * sizeof(T) + 63) / 64 * 64;
      data = static_cast<T *>(std::aligned_alloc(64, bytes));
      if (!data)
        std::abort(); // like operator new without exceptions
      size = count;
    }
    return data;
  }

private:
  T *data = nullptr;
  size_t size = 0;
};

struct ThreadBuffers {
  Buffer<float> packed;      // x panels (f32), the calling thread's
  Buffer<uint16_t> packed16; // x panels (bf16 pairs)
  Buffer<float> ctile, wtile, gate, up;
  Buffer<uint16_t> wtile16;
  Buffer<float> roundedX;    // decode rows rounded to bf16 values
  Buffer<uint16_t> packedX16; // decode rows as bf16
  Buffer<uint16_t> rowBf16;   // one row being packed
};
ThreadBuffers &buffers() {
  static thread_local ThreadBuffers b;
  return b;
}

/// The kernel set's bf16 rounding (every set rounds alike).
void roundRow(const KernelSet &ks, const float *src, int64_t n,
              uint16_t *dst) {
  (ks.roundBf16 ? ks.roundBf16 : scalarKernels().roundBf16)(src, n, dst);
}

/// x packed once per call (see Kernels.h for the layouts).
struct PackedX {
  const float *f32 = nullptr;
  const uint16_t *bf16 = nullptr;
  int64_t rows = 0, k = 0, panels = 0;
  int64_t pairs() const { return (k + 1) / 2; }
};

PackedX pack(const KernelSet &ks, const float *x, int64_t ldx, int64_t rows,
             int64_t k, bool bf16) {
  PackedX p;
  p.rows = rows;
  p.k = k;
  p.panels = (rows + kPanel - 1) / kPanel;
  if (bf16) {
    int64_t kp = p.pairs(), panelSize = kp * kPanel * 2;
    uint16_t *out = buffers().packed16.get(size_t(p.panels * panelSize));
    if (rows % kPanel)
      std::memset(out + (p.panels - 1) * panelSize, 0, size_t(panelSize) * 2);
    // Each row rounded with the vector kernel, then its pairs moved as
    // 32-bit units to their places in the panel (a stride of kPanel).
    uint16_t *row = buffers().rowBf16.get(size_t(kp * 2));
    row[kp * 2 - 1] = 0; // an odd K's last pair
    for (int64_t t = 0; t < rows; ++t) {
      roundRow(ks, x + t * ldx, k, row);
      uint16_t *panel = out + (t / kPanel) * panelSize + (t % kPanel) * 2;
      for (int64_t j = 0; j < kp; ++j)
        std::memcpy(panel + j * kPanel * 2, row + j * 2, 4);
    }
    p.bf16 = out;
    return p;
  }
  float *out = buffers().packed.get(size_t(p.panels * k * kPanel));
  if (rows % kPanel)
    std::memset(out + (p.panels - 1) * k * kPanel, 0,
                size_t(k * kPanel) * sizeof(float));
  for (int64_t t = 0; t < rows; ++t) {
    float *panel = out + (t / kPanel) * k * kPanel + (t % kPanel);
    const float *src = x + t * ldx;
    for (int64_t c = 0; c < k; ++c)
      panel[c * kPanel] = src[c];
  }
  p.f32 = out;
  return p;
}

/// Row r of w, elements [k0, k0 + n), as f32 into dst.
void decodeRow(const KernelSet &ks, const WeightMatrix &w, int64_t r,
               int64_t k0, int64_t n, float *dst) {
  const uint8_t *row = w.row(r);
  switch (w.format) {
  case WeightFormat::F32:
    std::memcpy(dst, reinterpret_cast<const float *>(row) + k0,
                size_t(n) * sizeof(float));
    return;
  case WeightFormat::BF16:
    ks.decodeBf16(reinterpret_cast<const uint16_t *>(row) + k0, n, dst);
    return;
  case WeightFormat::FP8: {
    const float *scales = w.scaleRow(r);
    for (int64_t k = k0; k < k0 + n;) {
      int64_t len = std::min(k0 + n, (k / kScaleBlock + 1) * kScaleBlock) - k;
      ks.decodeFp8(row + k, len, scales[k / kScaleBlock], dst + (k - k0));
      k += len;
    }
    return;
  }
  }
}

/// Prefill over weight rows [r0, r0 + n), single-threaded.
void gemmRange(const KernelSet &ks, const PackedX &x, const WeightMatrix &w,
               int64_t r0, int64_t n, float *y, int64_t ldy) {
  const int mr = ks.mr;
  const int64_t k = x.k;
  ThreadBuffers &b = buffers();
  float *ctile = b.ctile.get(size_t(x.panels * mr * kPanel));
  for (int64_t j0 = 0; j0 < n; j0 += mr) {
    int64_t m = std::min<int64_t>(mr, n - j0), r = r0 + j0;
    std::memset(ctile, 0, size_t(x.panels * mr * kPanel) * sizeof(float));
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      int64_t kc = std::min(kKc, k - k0);
      if (x.bf16) {
        // The rows' chunk, zero-padded to mr rows and an even K.
        int64_t kp = (kc + 1) / 2;
        uint16_t *t = b.wtile16.get(size_t(mr * kTileLd));
        if (m < mr || kc % 2)
          std::memset(t, 0, size_t(mr * kTileLd) * 2);
        for (int64_t i = 0; i < m; ++i)
          std::memcpy(t + i * kTileLd,
                      reinterpret_cast<const uint16_t *>(w.row(r + i)) + k0,
                      size_t(kc) * 2);
        for (int64_t p = 0; p < x.panels; ++p)
          ks.tileBf16(t, kTileLd,
                      x.bf16 + (p * x.pairs() + k0 / 2) * kPanel * 2, kp,
                      ctile + p * mr * kPanel);
        continue;
      }
      // The rows' chunk as f32 (FP8 scaled per block), zero-padded to mr.
      float *t = b.wtile.get(size_t(mr * kTileLd));
      for (int64_t i = 0; i < m; ++i)
        decodeRow(ks, w, r + i, k0, kc, t + i * kTileLd);
      if (m < mr)
        std::memset(t + m * kTileLd, 0,
                    size_t((mr - m) * kTileLd) * sizeof(float));
      for (int64_t p = 0; p < x.panels; ++p)
        ks.tileF32(t, kTileLd, x.f32 + (p * k + k0) * kPanel, kc,
                   ctile + p * mr * kPanel);
    }
    for (int64_t t = 0; t < x.rows; ++t) {
      const float *c = ctile + (t / kPanel) * mr * kPanel + t % kPanel;
      for (int64_t i = 0; i < m; ++i)
        y[t * ldy + j0 + i] = c[i * kPanel];
    }
  }
}

/// Decode's x as the dot-product kernels read it: f32 rows, or rows
/// rounded to bf16 (see gemvInput).
struct GemvX {
  const float *x = nullptr;
  int64_t ldx = 0;
  const uint16_t *xb = nullptr; // for ks.dotBf16Pairs
  int64_t ldxb = 0;
};

/// Bytes of weight rows a block of x rows passes over before the next
/// block does: small enough to be read again from L1/L2, not from memory,
/// when there are more x rows than one kernel call takes.
constexpr int64_t kGemvBlockBytes = 16384;

/// Decode over weight rows [r0, r0 + n), single-threaded. Each row's dot
/// products are its own (no sum crosses x rows), so a row's result does
/// not depend on how many rows came with it.
void gemvRange(const KernelSet &ks, const GemvX &x, int64_t rows,
               const WeightMatrix &w, int64_t r0, int64_t n, float *y,
               int64_t ldy) {
  float out[kMaxDotRows];
  int64_t rowBytes = std::max<int64_t>(1, w.cols * int64_t(w.elementSize()));
  int64_t block =
      rows <= kMaxDotRows ? n : std::max<int64_t>(1, kGemvBlockBytes / rowBytes);
  for (int64_t j0 = 0; j0 < n; j0 += block) {
    int64_t j1 = std::min(n, j0 + block);
    for (int64_t t0 = 0; t0 < rows; t0 += kMaxDotRows) {
      int nt = int(std::min<int64_t>(kMaxDotRows, rows - t0));
      const float *xt = x.x ? x.x + t0 * x.ldx : nullptr;
      const uint16_t *xbt = x.xb ? x.xb + t0 * x.ldxb : nullptr;
      for (int64_t j = j0; j < j1; ++j) {
        const uint8_t *row = w.row(r0 + j);
        switch (w.format) {
        case WeightFormat::F32:
          ks.dotF32(reinterpret_cast<const float *>(row), xt, x.ldx, nt,
                    w.cols, out);
          break;
        case WeightFormat::BF16:
          if (xbt)
            ks.dotBf16Pairs(reinterpret_cast<const uint16_t *>(row), xbt,
                            x.ldxb, nt, w.cols, out);
          else
            ks.dotBf16(reinterpret_cast<const uint16_t *>(row), xt, x.ldx, nt,
                       w.cols, out);
          break;
        case WeightFormat::FP8:
          ks.dotFp8(row, w.scaleRow(r0 + j), xt, x.ldx, nt, w.cols, out);
          break;
        }
        for (int t = 0; t < nt; ++t)
          y[(t0 + t) * ldy + j] = out[t];
      }
    }
  }
}

bool bf16Arithmetic(const KernelSet &ks, const WeightMatrix &w) {
  return ks.tileBf16 && w.format == WeightFormat::BF16;
}

/// Decode's rows of x as prefill sees them. Where prefill multiplies bf16
/// weights in bf16 (activations rounded, products exact, sums in f32), the
/// dot-product path must round x the same way, or a token's logits would
/// depend on whether it ran in a decode step or a prefill chunk (batch
/// invariance, decode-vs-prefill parity). Rounded once per call, before
/// the rows are split over threads: as bf16 for the ISA's bf16 dot product
/// (zero-padded rows), else as f32 values. x itself where no rounding
/// applies.
GemvX gemvInput(const KernelSet &ks, const WeightMatrix &w, const float *x,
                int64_t ldx, int64_t rows,
                const std::vector<MatmulGroup> *only = nullptr) {
  GemvX g;
  if (!bf16Arithmetic(ks, w)) {
    g.x = x;
    g.ldx = ldx;
    return g;
  }
  // Rows [b, e) rounded into `round(src, n, dst)`'s output rows.
  auto forRows = [&](auto round) {
    if (!only)
      return round(int64_t(0), rows);
    for (const MatmulGroup &grp : *only)
      round(grp.begin, grp.end);
  };
  if (ks.dotBf16Pairs) {
    int64_t ld = (w.cols + kPairsAlign - 1) / kPairsAlign * kPairsAlign;
    uint16_t *out = buffers().packedX16.get(size_t(rows * ld));
    forRows([&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        roundRow(ks, x + t * ldx, w.cols, out + t * ld);
        std::fill(out + t * ld + w.cols, out + (t + 1) * ld, uint16_t(0));
      }
    });
    g.xb = out;
    g.ldxb = ld;
    return g;
  }
  float *out = buffers().roundedX.get(size_t(rows * w.cols));
  forRows([&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      for (int64_t c = 0; c < w.cols; ++c) {
        uint32_t u = uint32_t(roundToBf16(x[t * ldx + c])) << 16;
        std::memcpy(&out[t * w.cols + c], &u, 4);
      }
  });
  g.x = out;
  g.ldx = w.cols;
  return g;
}

/// Rows of w per thread's share: ~64 KiB of weights per grain in decode
/// (enough work to be worth waking a thread); whole tiles in prefill, and
/// one thread for products too small to split.
int64_t grainRows(const KernelSet &ks, const WeightMatrix &w, int64_t rows,
                  int64_t n) {
  int64_t bytes = std::max<int64_t>(1, w.cols * int64_t(w.elementSize()));
  if (rows <= kGemvRows)
    return std::max<int64_t>(1, 65536 / bytes);
  if (rows * n * w.cols < (int64_t(1) << 18))
    return std::max<int64_t>(n, 1);
  return ks.mr;
}

} // namespace

void dsrt::cpu::matmul(const KernelSet &ks, const float *x, int64_t ldx,
                       int64_t rows, const WeightMatrix &w, int64_t r0,
                       int64_t n, float *y, int64_t ldy) {
  if (rows <= 0 || n <= 0)
    return;
  int64_t grain = grainRows(ks, w, rows, n);
  if (rows <= kGemvRows) {
    GemvX gx = gemvInput(ks, w, x, ldx, rows);
    parallelFor(n, grain, [&](int64_t b, int64_t e) {
      gemvRange(ks, gx, rows, w, r0 + b, e - b, y + b, ldy);
    });
    return;
  }
  PackedX px = pack(ks, x, ldx, rows, w.cols, bf16Arithmetic(ks, w));
  parallelFor(n, grain, [&](int64_t b, int64_t e) {
    gemmRange(ks, px, w, r0 + b, e - b, y + b, ldy);
  });
}

void dsrt::cpu::matmulGroups(const KernelSet &ks, const float *x,
                             int64_t ldx, int64_t rows, const WeightMatrix &w,
                             int64_t n, const std::vector<MatmulGroup> &groups,
                             float *y, int64_t ldy) {
  // Reused: no steady-state allocation. Workers reach it through this
  // reference (a thread_local named in the lambda would be their own).
  static thread_local std::vector<MatmulGroup> buffer;
  std::vector<MatmulGroup> &small = buffer;
  small.clear();
  for (const MatmulGroup &g : groups) {
    if (g.end <= g.begin)
      continue;
    if (g.end - g.begin > kGemvRows)
      matmul(ks, x + g.begin * ldx, ldx, g.end - g.begin, w, g.r0, n,
             y + g.begin * ldy, ldy);
    else
      small.push_back(g);
  }
  if (small.empty() || n <= 0)
    return;
  GemvX gx = gemvInput(ks, w, x, ldx, rows, &small);
  // Work item i is weight row i % n of group i / n: a thread's share
  // crosses groups, so the pool splits the whole step's experts at once.
  int64_t grain = grainRows(ks, w, kGemvRows, n);
  parallelFor(int64_t(small.size()) * n, grain, [&](int64_t b, int64_t e) {
    while (b < e) {
      const MatmulGroup &g = small[size_t(b / n)];
      int64_t j = b % n, m = std::min(n - j, e - b);
      GemvX gt = gx;
      if (gt.x)
        gt.x += g.begin * gt.ldx;
      if (gt.xb)
        gt.xb += g.begin * gt.ldxb;
      gemvRange(ks, gt, g.end - g.begin, w, g.r0 + j, m, y + g.begin * ldy + j,
                ldy);
      b += m;
    }
  });
}

void dsrt::cpu::gatherRows(const KernelSet &ks, const WeightMatrix &w,
                           const int32_t *ids, int64_t idStride, int64_t n,
                           float *out, int64_t ldo) {
  // A row is a few KiB: split only prompts long enough to be worth a wake.
  int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(w.cols, 1));
  parallelFor(n, grain, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t)
      decodeRow(ks, w, ids[t * idStride], 0, w.cols, out + t * ldo);
  });
}

void dsrt::cpu::matmulSiluMul(const KernelSet &ks, const float *x, int64_t ldx,
                              int64_t rows, const WeightMatrix &w, int64_t g0,
                              int64_t u0, int64_t n, float *y, int64_t ldy) {
  if (rows <= 0 || n <= 0)
    return;
  bool gemv = rows <= kGemvRows;
  PackedX px;
  GemvX gx;
  if (!gemv)
    px = pack(ks, x, ldx, rows, w.cols, bf16Arithmetic(ks, w));
  else
    gx = gemvInput(ks, w, x, ldx, rows);
  int64_t grain = gemv ? grainRows(ks, w, rows, n)
                       : std::max<int64_t>(grainRows(ks, w, rows, n), 1);
  parallelFor(n, grain, [&](int64_t begin, int64_t end) {
    ThreadBuffers &b = buffers();
    float *g = b.gate.get(size_t(rows * kSiluBlock));
    float *u = b.up.get(size_t(rows * kSiluBlock));
    for (int64_t j0 = begin; j0 < end; j0 += kSiluBlock) {
      int64_t m = std::min(kSiluBlock, end - j0);
      if (gemv) {
        gemvRange(ks, gx, rows, w, g0 + j0, m, g, m);
        gemvRange(ks, gx, rows, w, u0 + j0, m, u, m);
      } else {
        gemmRange(ks, px, w, g0 + j0, m, g, m);
        gemmRange(ks, px, w, u0 + j0, m, u, m);
      }
      for (int64_t t = 0; t < rows; ++t)
        for (int64_t j = 0; j < m; ++j)
          y[t * ldy + j0 + j] = siluMul(g[t * m + j], u[t * m + j]);
    }
  });
}

void dsrt::cpu::matmulSerialF32(const KernelSet &ks, const float *x,
                                int64_t ldx, int64_t rows,
                                const WeightMatrix &w, int64_t r0, int64_t n,
                                float *y, int64_t ldy) {
  if (rows <= 0 || n <= 0)
    return;
  if (rows <= kGemvRows) {
    GemvX gx;
    gx.x = x;
    gx.ldx = ldx;
    gemvRange(ks, gx, rows, w, r0, n, y, ldy);
    return;
  }
  gemmRange(ks, pack(ks, x, ldx, rows, w.cols, /*bf16=*/false), w, r0, n, y,
            ldy);
}

void dsrt::cpu::decodeWeightRow(const KernelSet &ks, const WeightMatrix &w,
                                int64_t r, int64_t k0, int64_t n, float *dst) {
  decodeRow(ks, w, r, k0, n, dst);
}
