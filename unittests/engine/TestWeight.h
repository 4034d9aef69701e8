//===- TestWeight.h - weights in every stored format, for kernel tests ---===//
//
// A weight in f32, bf16 or FP8 (e4m3 with 128x128 block scales) laid out
// as the runtime reads it in place, in parts with padded rows (padding is
// NaN or a NaN code, so a kernel that reads it fails), with the float64
// values a reference product uses; and the activations kernel tests draw.
//
//===----------------------------------------------------------------------===//
#ifndef DS_UNITTESTS_ENGINE_TESTWEIGHT_H
#define DS_UNITTESTS_ENGINE_TESTWEIGHT_H

#include "cpu/Kernels.h"
#include "cpu/MemRef.h"
#include "cpu/WeightMatrix.h"
#include "weights/DType.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace dsrt::cpu::testing {

/// The kernel sets a product may run on here: each supported ISA's, then
/// the widened-tile variant of each set that has bf16 or FP8 tiles
/// (TileChoice.h takes it where the CPU's f32 FMA outruns its bf16 dot
/// product), so both are checked whichever this CPU would take.
inline std::vector<const KernelSet *> testedSets() {
  std::vector<const KernelSet *> out;
  for (Isa isa : supportedIsas())
    out.push_back(&kernelsFor(isa));
  for (Isa isa : supportedIsas())
    if (&widenedTileKernels(isa) != &kernelsFor(isa))
      out.push_back(&widenedTileKernels(isa));
  // The AMX tiles' layouts through their C++ emulation: what CPUs without
  // AMX test, tested beside the hardware's where it has AMX.
  if (isaSupported(Isa::Avx512Vbmi))
    out.push_back(&amxEmulatedKernels());
  return out;
}

/// "avx512vbmi", "avx512vbmi (widened tiles)" or "amx (emulated)".
inline std::string setName(const KernelSet &ks) {
  return std::string(isaName(ks.isa)) +
         (ks.widenedTiles ? " (widened tiles)" : "") +
         (ks.emulatedAmx ? " (emulated)" : "");
}

/// `count` values drawn from a standard normal distribution.
inline std::vector<float> normalValues(std::mt19937 &rng, size_t count) {
  std::normal_distribution<float> d;
  std::vector<float> v(count);
  for (float &f : v)
    f = d(rng);
  return v;
}

/// [tokens, heads, width] over p, tokens `ld` floats apart and each head's
/// `width` values contiguous (the head products' x and out).
inline MemRef<float, 3> headsView(float *p, int64_t tokens, int64_t heads,
                                  int64_t width, int64_t ld) {
  MemRef<float, 3> m;
  m.allocated = m.aligned = p;
  m.offset = 0;
  m.sizes[0] = tokens;
  m.sizes[1] = heads;
  m.sizes[2] = width;
  m.strides[0] = ld;
  m.strides[1] = width;
  m.strides[2] = 1;
  return m;
}

/// Round to nearest even, as the bf16 paths round activations.
inline float roundBf16(float f) { return bf16ToF32(f32ToBF16(f)); }

/// A weight of `parts` parts of [partRows, cols] (ld = cols + pad) in one
/// format, with its f32 values for the reference.
struct TestWeight {
  WeightFormat format;
  int64_t rows, cols, ld, partRows;
  std::vector<std::vector<uint8_t>> bytes;
  std::vector<std::vector<float>> scales;
  std::vector<double> values; // [rows, cols]
  WeightMatrix matrix;

  TestWeight(WeightFormat format, int64_t parts, int64_t partRows, int64_t cols,
             int64_t pad, std::mt19937 &rng)
      : format(format), rows(parts * partRows), cols(cols), ld(cols + pad),
        partRows(partRows) {
    std::normal_distribution<float> d;
    std::uniform_int_distribution<int> byte(0, 255);
    std::uniform_real_distribution<float> sc(0.001f, 0.02f);
    values.assign(size_t(rows * cols), 0);
    int64_t bc = (cols + 127) / 128, br = (partRows + 127) / 128;
    matrix.format = format;
    matrix.rows = rows;
    matrix.cols = cols;
    matrix.ld = ld;
    matrix.partRows = partRows;
    size_t esize = format == WeightFormat::F32    ? 4
                   : format == WeightFormat::BF16 ? 2
                                                  : 1;
    for (int64_t p = 0; p < parts; ++p) {
      bytes.emplace_back(size_t(partRows * ld) * esize + 64);
      uint8_t *base = bytes.back().data() + 1 * 0; // aligned start
      scales.emplace_back(size_t(br * bc));
      for (float &s : scales.back())
        s = sc(rng);
      for (int64_t r = 0; r < partRows; ++r)
        for (int64_t c = 0; c < ld; ++c) {
          size_t at = size_t(r * ld + c);
          double v = 0;
          if (format == WeightFormat::F32) {
            float f = c < cols ? d(rng) : NAN; // padding must never be read
            std::memcpy(base + at * 4, &f, 4);
            v = f;
          } else if (format == WeightFormat::BF16) {
            uint16_t h = c < cols ? f32ToBF16(d(rng)) : 0x7fc0;
            std::memcpy(base + at * 2, &h, 2);
            v = bf16ToF32(h);
          } else {
            uint8_t b;
            do
              b = uint8_t(byte(rng));
            while ((b & 0x7f) == 0x7f); // e4m3 NaN
            base[at] = c < cols ? b : 0x7f;
            // Padding past the last scale block has no scale of its own.
            if (c < cols)
              v = double(e4m3ToF32(b)) *
                  scales.back()[size_t((r / 128) * bc + c / 128)];
          }
          if (c < cols)
            values[size_t((p * partRows + r) * cols + c)] = v;
        }
      matrix.parts.push_back(base);
      if (format == WeightFormat::FP8)
        matrix.scales.push_back(scales.back().data());
    }
  }
};

inline const char *formatName(WeightFormat f) {
  return f == WeightFormat::F32    ? "f32"
         : f == WeightFormat::BF16 ? "bf16"
                                   : "fp8";
}

} // namespace dsrt::cpu::testing

#endif // DS_UNITTESTS_ENGINE_TESTWEIGHT_H
