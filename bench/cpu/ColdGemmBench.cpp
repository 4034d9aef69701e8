//===- ColdGemmBench.cpp - ds-cpu-bench gemm-cold -------------------------===//
#include "ColdGemmBench.h"
#include "BenchUtil.h"

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"
#include "cpu/TileChoice.h"

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

constexpr int kSets = 8;
constexpr size_t kEvictBytes = size_t(256) << 20;

/// Reads `buf` whole: what was in the caches before is gone.
void evict(const std::vector<uint64_t> &buf) {
  uint64_t sum = 0;
  for (size_t i = 0; i < buf.size(); i += 8)
    sum += buf[i];
  volatile uint64_t keep = sum;
  (void)keep;
}

} // namespace

int dsbench::coldGemmBench(int64_t rows, int64_t n, int64_t k, int reps) {
  if (rows <= 0 || n <= 0 || k <= 0 || reps <= 0) {
    std::fprintf(stderr, "ds-cpu-bench gemm-cold: sizes must be positive\n");
    return 2;
  }
  std::mt19937 rng(1);
  std::vector<float> x = normal(size_t(rows * k), rng);
  std::vector<std::vector<float>> w32(kSets), y(kSets);
  std::vector<std::vector<uint16_t>> w16(kSets);
  std::vector<std::vector<uint8_t>> w8(kSets);
  std::vector<float> scales(size_t((n + 127) / 128 * ((k + 127) / 128)),
                            0.01f);
  for (int s = 0; s < kSets; ++s) {
    w32[size_t(s)] = normal(size_t(n * k), rng);
    w16[size_t(s)] = toBf16(w32[size_t(s)]);
    w8[size_t(s)] = randomFp8(size_t(n * k), rng);
    y[size_t(s)].assign(size_t(rows * n), 0.0f);
  }
  std::vector<uint64_t> flush(kEvictBytes / 8, 1);
  const KernelSet &ks = activeKernels();
  const double flops = 2.0 * double(rows) * double(n) * double(k);
  auto weight = [&](int format, int s) {
    if (format == 0)
      return WeightMatrix::single(WeightFormat::F32, w32[size_t(s)].data(), n,
                                  k, k);
    if (format == 1)
      return WeightMatrix::single(WeightFormat::BF16, w16[size_t(s)].data(),
                                  n, k, k);
    return WeightMatrix::single(WeightFormat::FP8, w8[size_t(s)].data(), n, k,
                                k, scales.data());
  };
  // Best wall time of reps calls; cold: set r % kSets, caches flushed and
  // x rewritten before each (untimed).
  auto rate = [&](int format, bool cold) {
    double best = 1e30;
    for (int r = 0; r < reps + 1; ++r) {
      int s = cold ? r % kSets : 0;
      if (cold) {
        evict(flush);
        for (float &v : x)
          v = v * 0.5f + 0.25f;
      }
      double t = now();
      matmul(ks, x.data(), k, rows, weight(format, s), 0, n,
             y[size_t(s)].data(), n);
      t = now() - t;
      if (r > 0) // the first call grows the kernels' buffers
        best = std::min(best, t);
    }
    return flops / best / 1e9;
  };
  const char *names[3] = {"f32", "bf16", "fp8"};
  std::printf("{\"rows\": %lld, \"n\": %lld, \"k\": %lld, \"threads\": %d, "
              "\"isa\": \"%s\"",
              (long long)rows, (long long)n, (long long)k, numThreads(),
              isaName(activeIsa()));
  for (int format = 0; format < 3; ++format) {
    double warm = rate(format, false), cold = rate(format, true);
    std::printf(", \"%s\": {\"warm_gflops\": %.1f, \"cold_gflops\": %.1f, "
                "\"cold_of_warm\": %.3f}",
                names[format], warm, cold, cold / warm);
  }
  std::printf("}\n");
  return 0;
}
