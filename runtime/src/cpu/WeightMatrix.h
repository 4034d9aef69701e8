//===- WeightMatrix.h - a GEMM weight read where it lies -------*- C++ -*-===//
//
// The runtime's GEMMs read weights in the checkpoint's own format, inside
// the mmapped file: no f32 or bf16 copy. A binding the compiler built from
// several checkpoint tensors (a stack of experts, gate|up packed) is a list
// of parts, each `partRows` consecutive rows of the [rows, cols] matrix the
// generated code sees; the parts lie wherever the file put them.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_WEIGHTMATRIX_H
#define DSRT_CPU_WEIGHTMATRIX_H

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dsrt::cpu {

enum class WeightFormat {
  F32,
  BF16,
  FP8, // e4m3, one f32 scale per 128x128 block of each part (weight_scale_inv)
};

struct WeightMatrix {
  WeightFormat format = WeightFormat::F32;
  int64_t rows = 0, cols = 0;
  /// Elements from one row of a part to the next (>= cols).
  int64_t ld = 0;
  /// Rows of each part; rows is a multiple of it.
  int64_t partRows = 0;
  std::vector<const void *> parts;
  /// FP8: per part, its scales [ceil(partRows/128), ceil(cols/128)],
  /// row-major (f32, aligned: the runtime copies them, they are small).
  std::vector<const float *> scales;

  /// One matrix in one piece.
  static WeightMatrix single(WeightFormat format, const void *data,
                             int64_t rows, int64_t cols, int64_t ld,
                             const float *scales = nullptr) {
    WeightMatrix w;
    w.format = format;
    w.rows = rows;
    w.cols = cols;
    w.ld = ld;
    w.partRows = rows > 0 ? rows : 1;
    w.parts = {data};
    if (format == WeightFormat::FP8)
      w.scales = {scales};
    return w;
  }

  size_t elementSize() const {
    return format == WeightFormat::F32    ? 4
           : format == WeightFormat::BF16 ? 2
                                          : 1;
  }
  int64_t scaleCols() const { return (cols + 127) / 128; }
  const uint8_t *row(int64_t r) const {
    return static_cast<const uint8_t *>(parts[size_t(r / partRows)]) +
           size_t((r % partRows) * ld) * elementSize();
  }
  /// FP8: the scales of the block row holding row r.
  const float *scaleRow(int64_t r) const {
    return scales[size_t(r / partRows)] + ((r % partRows) / 128) * scaleCols();
  }
  /// rows[i] = row(r + i) and, FP8, scaleRows[i] = scaleRow(r + i) for i
  /// < n (either may be null), with one division for all of them: a
  /// tile's 32 rows a scale block each took 32 divisions, as long as the
  /// tiles themselves over an expert's one-panel group.
  template <typename Row>
  void rowsFrom(int64_t r, int64_t n, Row *rowsOut,
                const float **scaleRows) const {
    const int64_t rowBytes = ld * int64_t(elementSize()),
                  scaleStride = scaleCols();
    int64_t part = r / partRows, at = r % partRows;
    for (int64_t i = 0; i < n; ++i) {
      if (rowsOut)
        rowsOut[i] =
            static_cast<const uint8_t *>(parts[size_t(part)]) + at * rowBytes;
      if (scaleRows)
        scaleRows[i] = scales[size_t(part)] + (at / 128) * scaleStride;
      if (++at == partRows) {
        ++part;
        at = 0;
      }
    }
  }
  /// rowsFrom's scale rows alone.
  void scaleRowsFrom(int64_t r, int64_t n, const float **scaleRows) const {
    rowsFrom<const void *>(r, n, nullptr, scaleRows);
  }
  /// Rows [r, r + n) lie in one part (consecutive, stride ld).
  bool inOnePart(int64_t r, int64_t n) const {
    return r / partRows == (r + n - 1) / partRows;
  }
};

} // namespace dsrt::cpu

#endif // DSRT_CPU_WEIGHTMATRIX_H
