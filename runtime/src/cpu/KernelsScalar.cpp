//===- KernelsScalar.cpp - the portable kernels (the tests' yardstick) ----===//
#include "cpu/Kernels.h"

#include <cstring>
#include "weights/DType.h"

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

constexpr int kMr = 4;

float bf16(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

struct Fp8Table {
  float v[256];
  Fp8Table() {
    for (int i = 0; i < 256; ++i)
      v[i] = e4m3ToF32(uint8_t(i));
  }
};
const Fp8Table &fp8() {
  static const Fp8Table t;
  return t;
}

/// Panel rows [0, Rows) of the tile (Rows kPanel: tileF32; fewer: the
/// partial tiles' yardstick). Ignores the prefetch: the scalar path is the
/// reference, not the fast one.
template <int Rows>
void tileF32Rows(const float *w, int64_t ldw, const float *xp, int64_t kc,
                 float *c, const TilePrefetch *) {
  for (int64_t k = 0; k < kc; ++k)
    for (int i = 0; i < kMr; ++i) {
      float b = w[i * ldw + k];
      for (int t = 0; t < Rows; ++t)
        c[i * kPanel + t] += b * xp[k * kPanel + t];
    }
}

/// KernelSet::tileF32Scaled over panel rows [0, Rows): the tile's sums
/// from zero, then into c times scales[i].
template <int Rows>
void tileF32ScaledRows(const float *w, int64_t ldw, const float *scales,
                       const float *xp, int64_t kc, float *c,
                       const TilePrefetch *pf) {
  float sums[kMr * kPanel] = {};
  tileF32Rows<Rows>(w, ldw, xp, kc, sums, pf);
  for (int i = 0; i < kMr; ++i)
    for (int t = 0; t < Rows; ++t)
      c[i * kPanel + t] += scales[i] * sums[i * kPanel + t];
}

void decodeBf16(const uint16_t *src, int64_t n, float *dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = bf16(src[i]);
}

void decodeFp8(const uint8_t *src, int64_t n, float scale, float *dst) {
  const Fp8Table &t = fp8();
  for (int64_t i = 0; i < n; ++i)
    dst[i] = t.v[src[i]] * scale;
}

void dotF32(const float *w, const float *x, int64_t ldx, int rows, int64_t k,
            float *out) {
  for (int t = 0; t < rows; ++t) {
    float acc = 0;
    for (int64_t i = 0; i < k; ++i)
      acc += w[i] * x[t * ldx + i];
    out[t] = acc;
  }
}

void dotBf16(const uint16_t *w, const float *x, int64_t ldx, int rows,
             int64_t k, float *out) {
  for (int t = 0; t < rows; ++t) {
    float acc = 0;
    for (int64_t i = 0; i < k; ++i)
      acc += bf16(w[i]) * x[t * ldx + i];
    out[t] = acc;
  }
}

void dotFp8(const uint8_t *w, const float *scales, const float *x, int64_t ldx,
            int rows, int64_t k, float *out) {
  const Fp8Table &tab = fp8();
  for (int t = 0; t < rows; ++t) {
    float acc = 0;
    for (int64_t b = 0; b * kScaleBlock < k; ++b) {
      float block = 0;
      int64_t end = k < (b + 1) * kScaleBlock ? k : (b + 1) * kScaleBlock;
      for (int64_t i = b * kScaleBlock; i < end; ++i)
        block += tab.v[w[i]] * x[t * ldx + i];
      acc += block * scales[b];
    }
    out[t] = acc;
  }
}

} // namespace

uint16_t dsrt::cpu::roundToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) // Inf/NaN: keep, quiet NaN
    return uint16_t((u >> 16) | ((u & 0xffff) ? 0x40 : 0));
  u += 0x7fff + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

namespace {
void roundBf16(const float *src, int64_t n, uint16_t *dst) {
  for (int64_t i = 0; i < n; ++i)
    dst[i] = roundToBf16(src[i]);
}
} // namespace

const KernelSet &dsrt::cpu::scalarKernels() {
  static const KernelSet set = [] {
    KernelSet s{Isa::Scalar, kMr,        tileF32Rows<kPanel>,
                nullptr,     decodeBf16, decodeFp8,
                dotF32,      dotBf16,    dotFp8,
                nullptr,     roundBf16};
    s.tileF32Part[0] = tileF32Rows<kQuarterPanel>;
    s.tileF32Part[1] = tileF32Rows<2 * kQuarterPanel>;
    s.tileF32Part[2] = tileF32Rows<3 * kQuarterPanel>;
    s.tileF32Scaled = tileF32ScaledRows<kPanel>;
    s.tileF32ScaledPart[0] = tileF32ScaledRows<kQuarterPanel>;
    s.tileF32ScaledPart[1] = tileF32ScaledRows<2 * kQuarterPanel>;
    s.tileF32ScaledPart[2] = tileF32ScaledRows<3 * kQuarterPanel>;
    return s;
  }();
  return set;
}

const KernelSet &dsrt::cpu::kernelsFor(Isa isa) {
  switch (isa) {
  case Isa::Amx:
    return amxKernels();
  case Isa::Avx512Vbmi:
    return avx512VbmiKernels();
  case Isa::Avx512Bf16:
    return avx512Bf16Kernels();
  case Isa::Avx512:
    return avx512Kernels();
  case Isa::Avx2:
    return avx2Kernels();
  case Isa::Scalar:
    break;
  }
  return scalarKernels();
}

const KernelSet &dsrt::cpu::widenedTileKernels(Isa isa) {
  auto widened = [](const KernelSet &base) {
    KernelSet s = base;
    s.widenedTiles = true;
    return s;
  };
  static const KernelSet bf16 = widened(avx512Bf16Kernels());
  static const KernelSet vbmi = widened(avx512VbmiKernels());
  static const KernelSet amx = widened(amxKernels());
  const KernelSet &base = kernelsFor(isa);
  if (!base.tileBf16 && !base.tileFp8)
    return base;
  return isa == Isa::Amx ? amx : isa == Isa::Avx512Vbmi ? vbmi : bf16;
}
