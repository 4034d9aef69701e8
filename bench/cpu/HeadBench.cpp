//===- HeadBench.cpp - the absorbed MLA's per-head products ---------------===//
//
// ds-cpu-bench heads, in two forms (HeadBench.h):
//
// Decode (H DN DV DC LAYERS REPS): one token's products over LAYERS
// kv_b_proj weights read in turn, larger together than the caches as a
// model's are, so the rate is the weight stream's.
//
// Many rows (ROWS H DN DV DC DTYPE REPS): GFLOP/s of the two head products
// of the absorbed MLA (cpu::headMatmul) for ROWS tokens: q_nope [ROWS, H,
// DN] through each head's W_UK block (DN x DC, the NN product) and u
// [ROWS, H, DC] through W_UV (DV x DC, NT), over one kv_b_proj [H x (DN +
// DV), DC] stored as DTYPE (f32, bf16, fp8) and read in place, on the
// runtime pool's threads. Beside them in the same run:
//   - the NN product as the per-row path computes it (rows in slices of
//     kHeadGemmRows - 1, each below the GEMM threshold: one axpy per
//     (token, weight row)), what every row count ran before the GEMM path;
//   - the reference: cpu::linearExact (the runtime's GEMM in f32
//     arithmetic) with the same multiply-adds, x [ROWS, DC] times a
//     [H x DV, DC] weight of the same format.
// *_vs_gemm are rates over the reference's.
//
//===----------------------------------------------------------------------===//
#include "HeadBench.h"
#include "BenchUtil.h"
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
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
    std::fprintf(stderr, "ds-cpu-bench heads: %s\n", e.c_str());
    std::exit(1);
  }
}

/// Whether every size and REPS is positive; says so when not.
bool positive(std::initializer_list<int64_t> sizes) {
  for (int64_t s : sizes)
    if (s < 1) {
      std::fprintf(stderr,
                   "ds-cpu-bench heads: sizes and REPS must be positive\n");
      return false;
    }
  return true;
}

} // namespace

int dsbench::headsDecodeBench(int64_t h, int64_t dn, int64_t dv, int64_t dc,
                              int64_t layers, int reps) {
  if (!positive({h, dn, dv, dc, layers, reps}))
    return 2;
  std::mt19937 rng(1);
  int64_t rows = h * (dn + dv);
  size_t each = size_t(rows * dc);
  std::vector<float> w = dsbench::normal(each * size_t(layers), rng),
                     q = dsbench::normal(size_t(h * dn), rng),
                     u = dsbench::normal(size_t(h * dc), rng),
                     ql(size_t(h * dc)), o(size_t(h * dv));
  dsbench::LowPrecision lp = dsbench::lowPrecision(w, rows * layers, dc, rng);
  auto qm = view3(q, 1, h, dn), um = view3(u, 1, h, dc),
       qlm = view3(ql, 1, h, dc), om = view3(o, 1, h, dv);
  // Microseconds per layer of the two products together (both) or of one
  // alone: q_h W_UK_h (the combine kernels) or u_h W_UV_h^T (dot products).
  enum class Half { Both, UK, UV };
  auto run = [&](WeightFormat f, const void *base, size_t elem, Half half) {
    double t = dsbench::best(reps, [&] {
      for (int64_t l = 0; l < layers; ++l) {
        // One part per layer: the FP8 scales of layer l start at its rows.
        WeightMatrix m = WeightMatrix::single(
            f, static_cast<const uint8_t *>(base) + size_t(l) * each * elem,
            rows, dc, dc,
            lp.scales.data() + size_t(l * rows / 128 * ((dc + 127) / 128)));
        if (half != Half::UV)
          fail(headMatmul(qm, m, qlm, dn + dv, 0, false));
        if (half != Half::UK)
          fail(headMatmul(um, m, om, dn + dv, dn, true));
      }
    });
    return t / double(layers) * 1e6;
  };
  struct Format {
    const char *name;
    WeightFormat f;
    const void *base;
    size_t elem;
  };
  const Format formats[] = {{"f32", WeightFormat::F32, w.data(), 4},
                            {"bf16", WeightFormat::BF16, lp.bf16.data(), 2},
                            {"fp8", WeightFormat::FP8, lp.fp8.data(), 1}};
  std::string rates, times;
  char buf[160];
  for (const Format &fm : formats) {
    double both = run(fm.f, fm.base, fm.elem, Half::Both);
    double uk = run(fm.f, fm.base, fm.elem, Half::UK);
    double uv = run(fm.f, fm.base, fm.elem, Half::UV);
    // W_UK and W_UV are h * dn and h * dv of each layer's rows.
    auto gbps = [&](int64_t r, double us) {
      return double(r * dc * int64_t(fm.elem)) / us / 1e3;
    };
    std::snprintf(buf, sizeof(buf),
                  ", \"%s_gbps\": %.2f, \"%s_uk_gbps\": %.2f, "
                  "\"%s_uv_gbps\": %.2f",
                  fm.name, gbps(rows, both), fm.name, gbps(h * dn, uk), fm.name,
                  gbps(h * dv, uv));
    rates += buf;
    std::snprintf(buf, sizeof(buf),
                  ", \"%s_us_per_layer\": %.2f, \"%s_uk_us\": %.2f, "
                  "\"%s_uv_us\": %.2f",
                  fm.name, both, fm.name, uk, fm.name, uv);
    times += buf;
  }
  std::printf("{\"heads\": %lld, \"dn\": %lld, \"dv\": %lld, \"dc\": %lld, "
              "\"layers\": %lld, \"threads\": %d, \"isa\": \"%s\"%s%s}\n",
              (long long)h, (long long)dn, (long long)dv, (long long)dc,
              (long long)layers, numThreads(), isaName(activeIsa()),
              rates.c_str(), times.c_str());
  return 0;
}

int dsbench::headsRowsBench(int64_t rows, int64_t heads, int64_t dn, int64_t dv,
                            int64_t dc, const std::string &dtype, int reps) {
  if (!positive({rows, heads, dn, dv, dc, reps}))
    return 2;
  if (dtype != "f32" && dtype != "bf16" && dtype != "fp8") {
    std::fprintf(stderr,
                 "ds-cpu-bench heads: DTYPE must be f32, bf16 or "
                 "fp8, got '%s'\n",
                 dtype.c_str());
    return 2;
  }
  std::mt19937 rng(1);
  int64_t group = dn + dv;
  dsbench::RandomWeight kvb(dtype, heads * group, dc, rng);
  dsbench::RandomWeight ref(dtype, heads * dv, dc, rng);
  std::vector<float> q = dsbench::normal(size_t(rows * heads * dn), rng),
                     u = dsbench::normal(size_t(rows * heads * dc), rng),
                     xr = dsbench::normal(size_t(rows * dc), rng),
                     ql(size_t(rows * heads * dc)),
                     o(size_t(rows * heads * dv)),
                     yr(size_t(rows * heads * dv));
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
