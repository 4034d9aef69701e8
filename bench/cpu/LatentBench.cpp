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

#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

int dsbench::latentBench(int64_t context, int64_t heads, int64_t dc, int64_t dr,
                         int64_t layers, int reps) {
  if (context <= 0 || heads <= 0 || dc <= 0 || dr < 0 || layers <= 0 ||
      reps <= 0) {
    std::fprintf(stderr, "ds-cpu-bench latent: sizes must be positive\n");
    return 2;
  }
  std::mt19937 rng(1);
  const int64_t width = dc + dr;
  std::vector<float> q = normal(size_t(heads * width), rng),
                     cache = normal(size_t(layers * context * width), rng),
                     out(size_t(heads * dc));
  int32_t position = int32_t(context - 1);
  int64_t qs[3] = {1, heads, dc}, qst[3] = {heads * width, width, 1};
  int64_t rs[3] = {1, heads, dr}, cs[3] = {layers, context, width},
          os[3] = {1, heads, dc}, ps[1] = {1};
  MemRef<float, 3> ql{
      q.data(), q.data(), 0, {qs[0], qs[1], qs[2]}, {qst[0], qst[1], qst[2]}};
  MemRef<float, 3> qr{
      q.data(), q.data(), dc, {rs[0], rs[1], rs[2]}, {qst[0], qst[1], qst[2]}};
  auto cm = makeMemRef<float, 3>(cache.data(), cs);
  auto om = makeMemRef<float, 3>(out.data(), os);
  auto pm = makeMemRef<int32_t, 1>(&position, ps);
  double flops = 2.0 * double(heads) * double(context) * double(2 * dc + dr) *
                 double(layers);
  double bytes = double(context * width * 4) * double(layers);

  dsbench::F32GemmReference gemm(256, rng);

  std::string paths;
  for (Isa isa : dsbench::benchIsas()) {
    std::string error;
    double ta = dsbench::best(reps, [&] {
      for (int64_t l = 0; l < layers && error.empty(); ++l)
        error = latentAttendDecode(isa, ql, qr, cm, pm, om, l, 0.1f);
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
              "%lld, \"layers\": %lld, \"threads\": %d, \"paths\": [%s]}\n",
              (long long)context, (long long)heads, (long long)dc,
              (long long)dr, (long long)layers, numThreads(), paths.c_str());
  return 0;
}
