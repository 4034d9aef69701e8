//===- Gemv.cpp - decode's products, one dot per weight row -------------===//
//
// The path for up to kGemvRows rows of x (decode steps, and the small
// expert groups of a prefill): each weight row streamed once at memory
// speed through the ISA's dot or gemv kernels. Prefill's packed tiles are
// TileGemm.cpp's.
//
//===----------------------------------------------------------------------===//
#include "cpu/Gemv.h"
#include "cpu/GrowBuffer.h"

#include <algorithm>
#include <cstring>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

struct GemvBuffers {
  GrowBuffer<float> roundedX;     // decode rows rounded to bf16 values
  GrowBuffer<uint16_t> packedX16; // decode rows as bf16
};
GemvBuffers &buffers() {
  static thread_local GemvBuffers b;
  return b;
}

static_assert(kGemvRows <= kMaxManyRows,
              "gemvFp8PairsRows takes every row the GEMV path sees");

/// Bytes of weight rows a block of x rows passes over before the next
/// block does: small enough to be read again from L1/L2, not from memory,
/// when there are more x rows than one kernel call takes.
constexpr int64_t kGemvBlockBytes = 16384;

/// The f32 dot product of decode's GEMVs. They are bound by the memory
/// stream, not by the FMAs: on the AVX-512 machine these kernels were
/// measured on (AMD EPYC), the AVX2 loop streams a decode step's f32
/// weights 10-24% faster than the 512-bit one with one row of x, and as
/// fast with 4 or more (bench/RESULTS.md, "Decode at the read roofline"),
/// so the AVX-512 sets take it too. The same kernel for every row count:
/// a row's result stays independent of how many rows came with it. Every
/// AVX-512 set, avx512vbmi included (the set this EPYC runs by default).
auto gemvDotF32(const KernelSet &ks) -> decltype(ks.dotF32) {
  if (ks.isa >= Isa::Avx512)
    return avx2Kernels().dotF32;
  return ks.dotF32;
}

/// gemvDotF32's set's gemvF32 (the same arithmetic as that dotF32).
auto gemvRowsF32(const KernelSet &ks) -> decltype(ks.gemvF32) {
  if (ks.isa >= Isa::Avx512)
    return avx2Kernels().gemvF32;
  return ks.gemvF32;
}

/// How many of the `left` weight rows from row r one gemv kernel call
/// takes: within r's part and, for FP8, r's 128-row scale block (the
/// kernels take one row of scales).
int64_t runRows(const WeightMatrix &w, int64_t r, int64_t left) {
  int64_t inPart = r % w.partRows;
  int64_t m = std::min(left, w.partRows - inPart);
  if (w.format == WeightFormat::FP8)
    m = std::min(m, kScaleBlock - inPart % kScaleBlock);
  return m;
}

/// gemvRange for one row of x through the ISA's gemv kernels, which take
/// the weight rows a run at a time (runs within one part and, for FP8, one
/// 128-row scale block); bit for bit the dot kernels' results. False where
/// the ISA has none for w's format (then the dot kernels run).
bool gemvOneRow(const KernelSet &ks, const GemvX &x, const WeightMatrix &w,
                int64_t r0, int64_t n, float *y) {
  auto f32 = gemvRowsF32(ks);
  // Rounded x (xb) where gemvInput made one, else f32 x: the dot kernels'
  // choice in gemvRange.
  bool have =
      w.format == WeightFormat::F32 ? f32 != nullptr
      : w.format == WeightFormat::BF16
          ? (x.xb ? ks.gemvBf16Pairs != nullptr : ks.gemvBf16 != nullptr)
          : (x.xb ? ks.gemvFp8Pairs != nullptr : ks.gemvFp8 != nullptr);
  if (!have)
    return false;
  for (int64_t j = 0; j < n;) {
    int64_t r = r0 + j, m = runRows(w, r, n - j);
    const uint8_t *row = w.row(r);
    switch (w.format) {
    case WeightFormat::F32:
      f32(reinterpret_cast<const float *>(row), w.ld, m, x.x, w.cols, y + j);
      break;
    case WeightFormat::BF16:
      if (x.xb)
        ks.gemvBf16Pairs(reinterpret_cast<const uint16_t *>(row), w.ld, m, x.xb,
                         w.cols, y + j);
      else
        ks.gemvBf16(reinterpret_cast<const uint16_t *>(row), w.ld, m, x.x,
                    w.cols, y + j);
      break;
    case WeightFormat::FP8:
      if (x.xb)
        ks.gemvFp8Pairs(row, w.ld, m, w.scaleRow(r), x.xb, w.cols, y + j);
      else
        ks.gemvFp8(row, w.ld, m, w.scaleRow(r), x.x, w.cols, y + j);
      break;
    }
    j += m;
  }
  return true;
}

} // namespace

/// The kernel set's bf16 rounding (every set rounds alike).
void dsrt::cpu::roundRow(const KernelSet &ks, const float *src, int64_t n,
                         uint16_t *dst) {
  (ks.roundBf16 ? ks.roundBf16 : scalarKernels().roundBf16)(src, n, dst);
}

bool dsrt::cpu::bf16Arithmetic(const KernelSet &ks, const WeightMatrix &w) {
  return (ks.tileBf16 && w.format == WeightFormat::BF16) ||
         (ks.tileFp8 && w.format == WeightFormat::FP8);
}

/// Decode over weight rows [r0, r0 + n), single-threaded. Each row's dot
/// products are its own (no sum crosses x rows), so a row's result does
/// not depend on how many rows came with it.
void dsrt::cpu::gemvRange(const KernelSet &ks, const GemvX &x, int64_t rows,
                          const WeightMatrix &w, int64_t r0, int64_t n,
                          float *y, int64_t ldy) {
  if (rows == 1 && gemvOneRow(ks, x, w, r0, n, y))
    return;
  // A few FP8 rows of x a run of weight rows a call (within one part and
  // one 128-row scale block): the per-row costs once a run.
  if (x.xb && w.format == WeightFormat::FP8 && ks.gemvFp8PairsRows &&
      rows <= kMaxManyRows) {
    for (int64_t j = 0; j < n;) {
      int64_t r = r0 + j, m = runRows(w, r, n - j);
      ks.gemvFp8PairsRows(w.row(r), w.ld, m, w.scaleRow(r), x.xb, x.ldxb,
                          int(rows), w.cols, y + j, ldy);
      j += m;
    }
    return;
  }
  // A batch of decode rows (or a small expert group) through the set's
  // many-row kernel: each weight loaded once for all of them, not once
  // per kMaxDotRows.
  if (rows > kMaxDotRows && rows <= kMaxManyRows && x.xb) {
    auto manyRows = [&](auto dot) {
      float many[kMaxManyRows];
      for (int64_t j = 0; j < n; ++j) {
        dot(r0 + j, many);
        for (int64_t t = 0; t < rows; ++t)
          y[t * ldy + j] = many[t];
      }
    };
    if (w.format == WeightFormat::BF16 && ks.dotBf16PairsMany)
      return manyRows([&](int64_t r, float *many) {
        ks.dotBf16PairsMany(reinterpret_cast<const uint16_t *>(w.row(r)), x.xb,
                            x.ldxb, int(rows), w.cols, many);
      });
  }
  float out[kMaxDotRows];
  auto dotF32 = gemvDotF32(ks);
  int64_t rowBytes = std::max<int64_t>(1, w.cols * int64_t(w.elementSize()));
  int64_t block = rows <= kMaxDotRows
                      ? n
                      : std::max<int64_t>(1, kGemvBlockBytes / rowBytes);
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
          dotF32(reinterpret_cast<const float *>(row), xt, x.ldx, nt, w.cols,
                 out);
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
          if (xbt)
            ks.dotFp8Pairs(row, w.scaleRow(r0 + j), xbt, x.ldxb, nt, w.cols,
                           out);
          else
            ks.dotFp8(row, w.scaleRow(r0 + j), xt, x.ldx, nt, w.cols, out);
          break;
        }
        for (int t = 0; t < nt; ++t)
          y[(t0 + t) * ldy + j] = out[t];
      }
    }
  }
}

/// Decode's rows of x as prefill sees them. Where prefill multiplies bf16
/// weights (or FP8 ones looked up as bf16) in bf16 (activations rounded,
/// products exact, sums in f32), the dot-product path must round x the
/// same way, or a token's logits would depend on whether it ran in a
/// decode step or a prefill chunk (batch invariance, decode-vs-prefill
/// parity; the rounding of a value on a bf16 tie still follows its f32
/// sum's order). Rounded once per call, before
/// the rows are split over threads: as bf16 for the ISA's bf16 dot product
/// (zero-padded rows), else as f32 values. x itself where no rounding
/// applies (with `index`, x's rows gathered into f32 rows).
GemvX dsrt::cpu::gemvInput(const KernelSet &ks, const WeightMatrix &w,
                           const float *x, int64_t ldx, int64_t rows,
                           const std::vector<MatmulGroup> *only,
                           const int32_t *index) {
  GemvX g;
  // Rows [b, e) rounded into `round(src, n, dst)`'s output rows.
  auto forRows = [&](auto round) {
    if (!only)
      return round(int64_t(0), rows);
    for (const MatmulGroup &grp : *only)
      round(grp.begin, grp.end);
  };
  auto row = [&](int64_t t) {
    return x + (index ? int64_t(index[t]) : t) * ldx;
  };
  if (!bf16Arithmetic(ks, w)) {
    if (index) {
      float *out = buffers().roundedX.get(size_t(rows * w.cols));
      forRows([&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t)
          std::memcpy(out + t * w.cols, row(t), size_t(w.cols) * 4);
      });
      g.x = out;
      g.ldx = w.cols;
      return g;
    }
    g.x = x;
    g.ldx = ldx;
    return g;
  }
  if (ks.dotBf16Pairs) {
    auto order = w.format == WeightFormat::FP8 ? ks.orderFp8Pairs : nullptr;
    int64_t align = order ? kFp8PairsAlign : kPairsAlign;
    int64_t ld = (w.cols + align - 1) / align * align;
    uint16_t *out = buffers().packedX16.get(size_t(rows * ld));
    forRows([&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        roundRow(ks, row(t), w.cols, out + t * ld);
        std::fill(out + t * ld + w.cols, out + (t + 1) * ld, uint16_t(0));
        if (order)
          order(out + t * ld, ld);
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
        uint32_t u = uint32_t(roundToBf16(row(t)[c])) << 16;
        std::memcpy(&out[t * w.cols + c], &u, 4);
      }
  });
  g.x = out;
  g.ldx = w.cols;
  return g;
}
