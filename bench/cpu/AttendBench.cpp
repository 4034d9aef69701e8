//===- AttendBench.cpp - the naive MLA attend step against the GEMM -------===//
//
// The attend step multiplies small per-head tiles (dn + dr and dv wide) and
// exponentiates between them; the f32 GEMM of prefill is the rate its two
// products could reach at best, so the JSON gives both and their ratio.
//
//===----------------------------------------------------------------------===//
#include "AttendBench.h"
#include "BenchUtil.h"

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/NaiveAttend.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

int dsbench::attendBench(int64_t tokens, int64_t heads, int64_t dn, int64_t dr,
                         int64_t dv, int reps) {
  if (tokens <= 0 || heads <= 0 || dn <= 0 || dr < 0 || dv <= 0) {
    std::fprintf(stderr, "ds-cpu-bench attend: sizes must be positive\n");
    return 2;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  const int64_t w = dn + dr, group = dn + dv;
  std::vector<float> q(size_t(tokens * heads * w)),
      kv(size_t(tokens * heads * group)), rope(size_t(tokens * std::max<int64_t>(dr, 1))),
      out(size_t(tokens * heads * dv)), mx(size_t(tokens * heads)),
      sm(size_t(tokens * heads));
  for (std::vector<float> *v : {&q, &kv, &rope})
    for (float &x : *v)
      x = d(rng);
  std::vector<int32_t> pos(static_cast<size_t>(tokens));
  for (int64_t t = 0; t < tokens; ++t)
    pos[size_t(t)] = int32_t(t);
  MemRef<float, 3> qn{q.data(), q.data(), 0, {tokens, heads, dn},
                      {heads * w, w, 1}};
  MemRef<float, 3> qr{q.data(), q.data(), dn, {tokens, heads, dr},
                      {heads * w, w, 1}};
  // --attention-chunk's default: the rows one call attends.
  const int64_t kChunk = 256;
  int64_t kvSz[2] = {std::min(tokens, kChunk), heads * group},
          rSz[2] = {std::min(tokens, kChunk), dr},
          st[2] = {tokens, heads}, o3[3] = {tokens, heads, dv},
          p1[1] = {tokens};
  double flops = 2.0 * double(heads) * double(tokens) * double(tokens + 1) /
                 2.0 * double(w + dv);

  // The GEMM reference: prefill's f32 product at a 1024-wide shape.
  dsbench::F32GemmReference gemm(tokens, rng);

  std::string rows;
  for (Isa isa : dsbench::benchIsas()) {
    std::string error;
    double ta = dsbench::best(reps, [&] {
      std::fill(mx.begin(), mx.end(), -INFINITY);
      std::fill(sm.begin(), sm.end(), 0.0f);
      std::fill(out.begin(), out.end(), 0.0f);
      // Chunks of kChunk rows, as the generated driver calls it (kv and
      // rope of one chunk, rows relative to it).
      for (int64_t c0 = 0; c0 < tokens && error.empty(); c0 += kChunk) {
        int64_t m = std::min(kChunk, tokens - c0);
        error = naiveAttendChunk(
            isa, qn, qr, makeMemRef<int32_t, 1>(pos.data(), p1),
            makeMemRef<float, 2>(kv.data() + c0 * heads * group, kvSz),
            makeMemRef<float, 2>(rope.data() + c0 * dr, rSz),
            makeMemRef<float, 2>(mx.data(), st),
            makeMemRef<float, 2>(sm.data(), st),
            makeMemRef<float, 3>(out.data(), o3), 0, tokens, c0, m, 0.1f);
      }
    });
    if (!error.empty()) {
      std::fprintf(stderr, "ds-cpu-bench attend: %s\n", error.c_str());
      return 1;
    }
    double a = flops / ta / 1e9, g = gemm.gflops(kernelsFor(isa), reps);
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%s{\"isa\": \"%s\", \"attend_gflops\": %.2f, "
                  "\"f32_gemm_gflops\": %.2f, \"ratio\": %.3f}",
                  rows.empty() ? "" : ", ", isaName(isa), a, g, a / g);
    rows += buf;
  }
  std::printf("{\"tokens\": %lld, \"heads\": %lld, \"dn\": %lld, \"dr\": "
              "%lld, \"dv\": %lld, \"threads\": %d, \"paths\": [%s]}\n",
              (long long)tokens, (long long)heads, (long long)dn,
              (long long)dr, (long long)dv, numThreads(), rows.c_str());
  return 0;
}
