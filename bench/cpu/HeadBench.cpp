//===- HeadBench.cpp - the absorbed MLA's per-head products against a GEMM ===//
//
// ds-head-bench ROWS HEADS DN DV DC DTYPE REPS
//
// GFLOP/s of the two head products of the absorbed MLA (cpu::headMatmul)
// for ROWS tokens: q_nope [ROWS, HEADS, DN] through each head's W_UK block
// (DN x DC, the NN product) and u [ROWS, HEADS, DC] through W_UV (DV x DC,
// NT), over one kv_b_proj [HEADS x (DN + DV), DC] stored as DTYPE (f32,
// bf16, fp8) and read in place, on the runtime pool's threads. Beside them
// in the same run:
//   - the NN product as the per-row path computes it (rows in slices of
//     kHeadGemmRows - 1, each below the GEMM threshold: one axpy per
//     (token, weight row)), what every row count ran before the GEMM path;
//   - the reference: cpu::linearExact (the runtime's GEMM in f32
//     arithmetic) with the same multiply-adds, x [ROWS, DC] times a
//     [HEADS x DV, DC] weight of the same format.
// Prints one JSON object; *_vs_gemm are rates over the reference's.
//
//===----------------------------------------------------------------------===//
#include "BenchUtil.h"
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// The best of `reps` after a warm call (scratch grown, weight paged in).
template <typename F> double best(int reps, F &&f) {
  return dsbench::best(reps, f, /*warm=*/true);
}

MemRef<float, 3> view3(std::vector<float> &v, int64_t a, int64_t b, int64_t c) {
  int64_t shape[3] = {a, b, c};
  return makeMemRef<float, 3>(v.data(), shape);
}

void fail(const std::string &e) {
  if (!e.empty()) {
    std::fprintf(stderr, "ds-head-bench: %s\n", e.c_str());
    std::exit(1);
  }
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 8) {
    std::fprintf(
        stderr, "usage: ds-head-bench ROWS HEADS DN DV DC f32|bf16|fp8 REPS\n");
    return 2;
  }
  int64_t rows = std::atoll(argv[1]), heads = std::atoll(argv[2]),
          dn = std::atoll(argv[3]), dv = std::atoll(argv[4]),
          dc = std::atoll(argv[5]);
  std::string dtype = argv[6];
  int reps = std::atoi(argv[7]);
  if (rows < 1 || heads < 1 || dn < 1 || dv < 1 || dc < 1 || reps < 1 ||
      (dtype != "f32" && dtype != "bf16" && dtype != "fp8")) {
    std::fprintf(stderr, "ds-head-bench: sizes and REPS must be positive, "
                         "DTYPE f32, bf16 or fp8\n");
    return 2;
  }
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  int64_t group = dn + dv;
  dsbench::RandomWeight kvb(dtype, heads * group, dc, rng);
  dsbench::RandomWeight ref(dtype, heads * dv, dc, rng);
  std::vector<float> q(size_t(rows * heads * dn)), u(size_t(rows * heads * dc)),
      ql(size_t(rows * heads * dc)), o(size_t(rows * heads * dv)),
      xr(size_t(rows * dc)), yr(size_t(rows * heads * dv));
  for (auto *v : {&q, &u, &xr})
    for (float &f : *v)
      f = d(rng);
  auto qm = view3(q, rows, heads, dn), um = view3(u, rows, heads, dc),
       qlm = view3(ql, rows, heads, dc), om = view3(o, rows, heads, dv);

  double tNN =
      best(reps, [&] { fail(headMatmul(qm, kvb.m, qlm, group, 0, false)); });
  // The per-row path: slices below the GEMM threshold.
  int64_t slice = std::max<int64_t>(1, kHeadGemmRows - 1);
  double tRows = best(reps, [&] {
    for (int64_t t0 = 0; t0 < rows; t0 += slice) {
      int64_t t1 = std::min(rows, t0 + slice);
      MemRef<float, 3> a = qm, b = qlm;
      a.offset = t0 * qm.strides[0];
      b.offset = t0 * qlm.strides[0];
      a.sizes[0] = b.sizes[0] = t1 - t0;
      fail(headMatmul(a, kvb.m, b, group, 0, false));
    }
  });
  double tNT =
      best(reps, [&] { fail(headMatmul(um, kvb.m, om, group, dn, true)); });
  int64_t xs[2] = {rows, dc}, ys[2] = {rows, heads * dv};
  double tRef = best(reps, [&] {
    fail(linearExact(makeMemRef<float, 2>(xr.data(), xs), ref.m,
                     makeMemRef<float, 2>(yr.data(), ys)));
  });
  double fNN = 2.0 * rows * heads * dn * dc, fNT = 2.0 * rows * heads * dv * dc;
  double gNN = fNN / tNN * 1e-9, gRows = fNN / tRows * 1e-9,
         gNT = fNT / tNT * 1e-9, gRef = fNT / tRef * 1e-9;
  std::printf("{\"isa\": \"%s\", \"threads\": %d, \"dtype\": \"%s\", "
              "\"rows\": %lld, \"nn_gflops\": %.2f, "
              "\"nn_per_row_path_gflops\": %.2f, \"nt_gflops\": %.2f, "
              "\"gemm_gflops\": %.2f, \"nn_vs_gemm\": %.3f, "
              "\"nn_per_row_path_vs_gemm\": %.3f, \"nt_vs_gemm\": %.3f, "
              "\"nn_speedup_over_per_row_path\": %.2f}\n",
              isaName(activeIsa()), numThreads(), dtype.c_str(),
              (long long)rows, gNN, gRows, gNT, gRef, gNN / gRef, gRows / gRef,
              gNT / gRef, gNN / gRows);
  return 0;
}
