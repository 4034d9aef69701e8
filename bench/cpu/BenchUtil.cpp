//===- BenchUtil.cpp - random weights shared by ds-cpu-bench --------------===//
#include "BenchUtil.h"

#include "weights/DType.h"

#include "cpu/MatMul.h"

#include <cmath>
#include <cstdlib>

using namespace dsrt;
using namespace dsrt::cpu;

std::vector<float> dsbench::normal(size_t n, std::mt19937 &rng, float stddev) {
  std::normal_distribution<float> d(0.0f, stddev);
  std::vector<float> v(n);
  for (float &f : v)
    f = d(rng);
  return v;
}

std::vector<uint16_t> dsbench::toBf16(const std::vector<float> &w) {
  std::vector<uint16_t> out(w.size());
  std::transform(w.begin(), w.end(), out.begin(), f32ToBF16);
  return out;
}

namespace {

/// The e4m3 magnitude code (0-126) nearest v >= 0, 448 past the largest.
uint8_t nearestE4m3(double v) {
  uint8_t best = 0;
  for (int c = 1; c < 0x7f; ++c)
    if (std::abs(double(e4m3ToF32(uint8_t(c))) - v) <
        std::abs(double(e4m3ToF32(best)) - v))
      best = uint8_t(c);
  return best;
}

/// Magnitude codes for 65536 equally likely slices of a half-normal
/// distribution, 4.5 standard deviations (about the largest of a 128x128
/// block's 16384 values) at 448: the codes a checkpoint quantized with
/// amax / 448 block scales holds, about 1 in 10^4 of them zero or
/// subnormal. Uniform random bytes made one in 16 so: a kernel that takes
/// a slower path for those (a GFNI widening tried in the thirty-fourth
/// session did, bench/RESULTS.md) took it in every 64-byte group.
const std::vector<uint8_t> &halfNormalCodes() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(65536);
    for (size_t i = 0; i < t.size(); ++i) {
      double p = (double(i) + 0.5) / double(t.size()), lo = 0, hi = 10;
      for (int it = 0; it < 60; ++it) { // P(|V| <= v) = erf(v / sqrt 2)
        double mid = 0.5 * (lo + hi);
        (std::erf(mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
      }
      t[i] = nearestE4m3(lo * 448.0 / 4.5);
    }
    return t;
  }();
  return table;
}

} // namespace

std::vector<uint8_t> dsbench::randomFp8(size_t n, std::mt19937 &rng) {
  const std::vector<uint8_t> &codes = halfNormalCodes();
  std::vector<uint8_t> v(n);
  for (uint8_t &c : v) {
    uint32_t u = uint32_t(rng());
    c = uint8_t(codes[u & 0xffff] | ((u >> 16) & 0x80));
  }
  return v;
}

std::vector<float> dsbench::fp8Scales(int64_t n, int64_t k) {
  return std::vector<float>(size_t((n + 127) / 128 * ((k + 127) / 128)), 0.01f);
}

dsbench::LowPrecision dsbench::lowPrecision(const std::vector<float> &w,
                                            int64_t n, int64_t k,
                                            std::mt19937 &rng) {
  return {toBf16(w), randomFp8(w.size(), rng), fp8Scales(n, k)};
}

dsbench::RandomWeight::RandomWeight(const std::string &dtype, int64_t rows,
                                    int64_t cols, std::mt19937 &rng) {
  size_t n = size_t(rows * cols);
  if (dtype == "f32") {
    f32 = normal(n, rng, 0.05f);
    m = WeightMatrix::single(WeightFormat::F32, f32.data(), rows, cols, cols);
  } else if (dtype == "bf16") {
    bf16 = toBf16(normal(n, rng, 0.05f));
    m = WeightMatrix::single(WeightFormat::BF16, bf16.data(), rows, cols, cols);
  } else {
    fp8 = randomFp8(n, rng);
    scales = fp8Scales(rows, cols);
    m = WeightMatrix::single(WeightFormat::FP8, fp8.data(), rows, cols, cols,
                             scales.data());
  }
}

std::vector<Isa> dsbench::benchIsas() {
  if (std::getenv("DSRT_CPU_ISA"))
    return {activeIsa()};
  return supportedIsas();
}

namespace {
constexpr int64_t kReferenceN = 1024, kReferenceK = 1024;
} // namespace

dsbench::F32GemmReference::F32GemmReference(int64_t rows, std::mt19937 &rng)
    : rows(rows), x(normal(size_t(rows * kReferenceK), rng)),
      w(normal(size_t(kReferenceN * kReferenceK), rng)),
      y(size_t(rows * kReferenceN)),
      m(WeightMatrix::single(WeightFormat::F32, w.data(), kReferenceN,
                             kReferenceK, kReferenceK)) {}

double dsbench::F32GemmReference::gflops(const KernelSet &ks, int reps) {
  double t = best(reps, [&] {
    matmul(ks, x.data(), kReferenceK, rows, m, 0, kReferenceN, y.data(),
           kReferenceN);
  });
  return 2.0 * double(rows) * kReferenceN * kReferenceK / t / 1e9;
}
