//===- LatentBench.cpp - decode's latent attention against the GEMM -------===//
//
// Per head and cache row, decode's absorbed attention does a (dc + dr)-wide
// dot product and a dc-wide axpy: with many heads (V3 has 128) it reuses
// each row it reads many times, so it can be bound by the FMAs rather than
// the row stream; the f32 GEMM is the rate those FMAs reach at best here.
//
//===----------------------------------------------------------------------===//
#include "LatentBench.h"
#include "BenchUtil.h"

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/LatentAttend.h"
#include "cpu/ThreadPool.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

uint16_t bf16Of(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  return uint16_t(bits >> 16);
}

/// The cache rows in `dtype`'s layout: f32 values, bf16 values, or
/// FlashMLA's FP8 rows (dc e4m3 bytes, dc / group f32 scales, dr bf16).
std::vector<uint8_t> encodeRows(const std::vector<float> &values, int64_t rows,
                                int64_t dc, int64_t dr, int64_t group,
                                const std::string &dtype, int64_t &rowBytes) {
  const int64_t width = dc + dr;
  rowBytes = dtype == "f32"    ? width * 4
             : dtype == "bf16" ? width * 2
                               : dc + 4 * (dc / group) + 2 * dr;
  std::vector<uint8_t> out(size_t(rows * rowBytes));
  for (int64_t r = 0; r < rows; ++r) {
    const float *v = values.data() + r * width;
    uint8_t *o = out.data() + r * rowBytes;
    if (dtype == "f32") {
      std::memcpy(o, v, size_t(rowBytes));
    } else if (dtype == "bf16") {
      for (int64_t i = 0; i < width; ++i) {
        uint16_t b = bf16Of(v[i]);
        std::memcpy(o + 2 * i, &b, 2);
      }
    } else {
      // Codes drawn straight (any non-NaN byte): the kernel's cost does not
      // depend on the values.
      for (int64_t i = 0; i < dc; ++i)
        o[i] = uint8_t(int(std::fabs(v[i]) * 97.0f) & 0x7E);
      for (int64_t g = 0; g < dc / group; ++g) {
        float scale = 0.01f;
        std::memcpy(o + dc + 4 * g, &scale, 4);
      }
      for (int64_t i = 0; i < dr; ++i) {
        uint16_t b = bf16Of(v[dc + i]);
        std::memcpy(o + dc + 4 * (dc / group) + 2 * i, &b, 2);
      }
    }
  }
  return out;
}

} // namespace

int dsbench::latentBench(int64_t context, int64_t heads, int64_t dc, int64_t dr,
                         int64_t layers, int reps, const char *dtypeArg) {
  const std::string dtype = dtypeArg;
  if (context <= 0 || heads <= 0 || dc <= 0 || dr < 0 || layers <= 0 ||
      reps <= 0) {
    std::fprintf(stderr, "ds-cpu-bench latent: sizes must be positive\n");
    return 2;
  }
  if (dtype != "f32" && dtype != "bf16" && dtype != "fp8") {
    std::fprintf(stderr,
                 "ds-cpu-bench latent: DTYPE is f32, bf16 or fp8, not %s\n",
                 dtype.c_str());
    return 2;
  }
  const int64_t group = dc < 128 ? dc : 128;
  if (dtype == "fp8" && dc % group) {
    std::fprintf(stderr,
                 "ds-cpu-bench latent: fp8 needs DC a multiple of 128\n");
    return 2;
  }
  std::mt19937 rng(1);
  const int64_t width = dc + dr;
  int64_t rowBytes = 0;
  std::vector<float> q = normal(size_t(heads * width), rng),
                     out(size_t(heads * dc));
  std::vector<uint8_t> cache =
      encodeRows(normal(size_t(layers * context * width), rng),
                 layers * context, dc, dr, group, dtype, rowBytes);
  int32_t position = int32_t(context - 1);
  int64_t qs[3] = {1, heads, dc}, qst[3] = {heads * width, width, 1};
  int64_t rs[3] = {1, heads, dr}, os[3] = {1, heads, dc}, ps[1] = {1};
  MemRef<float, 3> ql{
      q.data(), q.data(), 0, {qs[0], qs[1], qs[2]}, {qst[0], qst[1], qst[2]}};
  MemRef<float, 3> qr{
      q.data(), q.data(), dc, {rs[0], rs[1], rs[2]}, {qst[0], qst[1], qst[2]}};
  auto om = makeMemRef<float, 3>(out.data(), os);
  auto pm = makeMemRef<int32_t, 1>(&position, ps);
  auto attend = [&](Isa isa, int64_t l) {
    if (dtype == "f32") {
      int64_t cs[3] = {layers, context, width};
      return latentAttendDecode(
          isa, ql, qr,
          makeMemRef<float, 3>(reinterpret_cast<float *>(cache.data()), cs),
          pm, om, l, 0.1f);
    }
    if (dtype == "bf16") {
      int64_t cs[3] = {layers, context, width};
      return latentAttendDecode(
          isa, ql, qr,
          makeMemRef<uint16_t, 3>(reinterpret_cast<uint16_t *>(cache.data()),
                                  cs),
          pm, om, l, 0.1f);
    }
    int64_t cs[3] = {layers, context, rowBytes};
    return latentAttendDecodeFp8(isa, ql, qr,
                                 makeMemRef<uint8_t, 3>(cache.data(), cs),
                                 group, pm, om, l, 0.1f);
  };
  double flops = 2.0 * double(heads) * double(context) * double(2 * dc + dr) *
                 double(layers);
  double bytes = double(context * rowBytes) * double(layers);

  dsbench::F32GemmReference gemm(256, rng);

  std::string paths;
  for (Isa isa : dsbench::benchIsas()) {
    std::string error;
    double ta = dsbench::best(reps, [&] {
      for (int64_t l = 0; l < layers && error.empty(); ++l)
        error = attend(isa, l);
    });
    if (!error.empty()) {
      std::fprintf(stderr, "ds-cpu-bench latent: %s\n", error.c_str());
      return 1;
    }
    double a = flops / ta / 1e9, g = gemm.gflops(kernelsFor(isa), reps);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s{\"isa\": \"%s\", \"latent_gflops\": %.2f, "
                  "\"cache_gbps\": %.2f, \"f32_gemm_gflops\": %.2f, "
                  "\"ratio\": %.3f}",
                  paths.empty() ? "" : ", ", isaName(isa), a, bytes / ta / 1e9,
                  g, a / g);
    paths += buf;
  }
  std::printf("{\"context\": %lld, \"heads\": %lld, \"dc\": %lld, \"dr\": "
              "%lld, \"layers\": %lld, \"dtype\": \"%s\", \"threads\": %d, "
              "\"paths\": [%s]}\n",
              (long long)context, (long long)heads, (long long)dc,
              (long long)dr, (long long)layers, dtype.c_str(), numThreads(),
              paths.c_str());
  return 0;
}
