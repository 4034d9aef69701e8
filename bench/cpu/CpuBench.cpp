//===- CpuBench.cpp - the CPU's own limits and a model against them -------===//
//
// ds-cpu-bench gemm  ROWS N K REPS   GFLOP/s of y = x w^T, threads = the
//                                    runtime pool's: ds f32, bf16, FP8,
//                                    then oneDNN, then OpenBLAS sgemm
//                                    (f32, its own threads, loaded last:
//                                    OpenBlasGemm.h)
// ds-cpu-bench gemm-cold ROWS N K REPS
//                                    the ds product warm and with its
//                                    weights and output cold, as in a
//                                    prefill (ColdGemmBench.h)
// ds-cpu-bench read  MIB REPS        GB/s of a read-only stream over MIB,
//                                    split over the pool's threads: the
//                                    best of three loops (ReadStream.h),
//                                    each beside it
// ds-cpu-bench gemv  N K CALLS REPS GB/s of one-row products (decode's
//                                    GEMVs) over CALLS distinct N x K
//                                    weights read in turn (f32, bf16, FP8),
//                                    beside a read-only stream over the
//                                    same bytes: small N x K shows the
//                                    per-call cost, large the kernels'
// ds-cpu-bench gemv-kernels N K ITERS REPS
//                                    one thread's GB/s (CPU time) of
//                                    one-row products over N x K weights:
//                                    dot kernels per row against one gemv
//                                    kernel call (Kernels.h), bit for bit
//                                    checked; and FP8 through f32 (dotFp8)
// ds-cpu-bench heads H DN DV DC LAYERS REPS
//                                    GB/s of one token's absorbed-MLA head
//                                    products (q_h W_UK_h, then
//                                    u_h W_UV_h^T) over LAYERS distinct
//                                    kv_b_proj weights of H (DN + DV) x DC
//                                    read in turn (f32, bf16, FP8), and
//                                    microseconds per layer; each product
//                                    alone too (_uk_, _uv_ fields)
// ds-cpu-bench heads ROWS H DN DV DC DTYPE REPS
//                                    GFLOP/s of the same products for
//                                    ROWS tokens over one DTYPE kv_b_proj
//                                    (f32, bf16, fp8), beside the per-row
//                                    path and the runtime's f32 GEMM
//                                    (HeadBench.h)
// ds-cpu-bench ports REPS            cycles of the instructions FP8's
//                                    kernels are made of, alone and
//                                    mixed, and GB/s of the runtime's
//                                    e4m3 -> bf16 conversion in L1
//                                    (PortBench.h)
// ds-cpu-bench experts E ROWS N K LAYERS REPS [uneven] [silu]
//                                    GFLOP/s of prefill's expert GEMMs:
//                                    E experts of N x K weights, ROWS x
//                                    rows each, over LAYERS distinct
//                                    weight sets read in turn (larger
//                                    than the caches, as a model's are),
//                                    f32, bf16, FP8. `uneven`: the same
//                                    ROWS * E rows sent to experts as a
//                                    random router sends them (each row
//                                    to an expert drawn by seeded,
//                                    log-normal odds), so group sizes
//                                    spread as a prefill's do (a few to
//                                    3x ROWS). `silu`: prefill's gate
//                                    and up products with their SiLU-mul
//                                    epilogue (matmulGroupsSiluMul), the
//                                    up weights the set LAYERS / 2 on
//                                    (use 4 or more: not in a cache)
// ds-cpu-bench attend TOKENS HEADS DN DR DV REPS
//                                    GFLOP/s of the naive MLA attend step
//                                    (AttendBench.h) per ISA, beside the
//                                    f32 GEMM's
// ds-cpu-bench latent CONTEXT HEADS DC DR LAYERS REPS [DTYPE]
//                                    GFLOP/s of decode's latent attention
//                                    (LatentBench.h) per ISA over an f32,
//                                    bf16 or fp8 cache, beside the f32
//                                    GEMM's
// ds-cpu-bench tile ROWS N K REPS  GFLOP per CPU-second of the GEMM tile
//                                    kernels in L1, over a streamed x, and
//                                    of the whole product (TileBench.h)
// ds-cpu-bench model ARTIFACT WEIGHTS PROMPT STEPS REPS
//                                    load seconds, the first prompt's
//                                    seconds (cold), prefill tok/s (every
//                                    row's logits, and the last row's as
//                                    generation needs), decode tok/s (best
//                                    of REPS, warm), peak RSS, and the read
//                                    stream over the checkpoint's own
//                                    pages decode reads (WeightSpans.h)
// Each prints one JSON object (bench/cpu_kernels.py reads them).
//
//===----------------------------------------------------------------------===//
#include "AttendBench.h"
#include "BenchUtil.h"
#include "ColdGemmBench.h"
#include "HeadBench.h"
#include "LatentBench.h"
#include "OneDnnGemm.h"
#include "OpenBlasGemm.h"
#include "PortBench.h"
#include "ReadStream.h"
#include "TileBench.h"
#include "WeightSpans.h"
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"
#include "cpu/ThreadPool.h"
#include "cpu/TileChoice.h"
#include "cpu/TileTrace.h"
#include "dsrt/dsrt.h"
#include "weights/DType.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using dsbench::best;
using dsbench::LowPrecision;
using dsbench::lowPrecision;
using dsbench::now;

namespace {

int gemm(int64_t rows, int64_t n, int64_t k, int reps) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> x(size_t(rows * k)), w(size_t(n * k)), y(size_t(rows * n));
  for (float &v : x)
    v = d(rng);
  for (float &v : w)
    v = d(rng);
  LowPrecision lp = lowPrecision(w, n, k, rng);
  const std::vector<uint16_t> &w16 = lp.bf16;
  const std::vector<uint8_t> &w8 = lp.fp8;
  const std::vector<float> &scales = lp.scales;
  double flops = 2.0 * double(rows) * double(n) * double(k);
  int threads = numThreads();

  const KernelSet &ks = activeKernels();
  const TileChoice &tc = activeTileChoice();
  auto run = [&](const WeightMatrix &m) {
    return best(reps,
                [&] { matmul(ks, x.data(), k, rows, m, 0, n, y.data(), n); });
  };
  double t32 = run(WeightMatrix::single(WeightFormat::F32, w.data(), n, k, k));
  double t16 =
      run(WeightMatrix::single(WeightFormat::BF16, w16.data(), n, k, k));
  double t8 = run(WeightMatrix::single(WeightFormat::FP8, w8.data(), n, k, k,
                                       scales.data()));
  // f32 arithmetic over the bf16 weights (matmulF32: the naive form's
  // kv_b expansion, dsrt_linear_exact_f32).
  double t16f = best(reps, [&] {
    matmulF32(ks, x.data(), k, rows,
              WeightMatrix::single(WeightFormat::BF16, w16.data(), n, k, k), 0,
              n, y.data(), n);
  });
  dsbench::OneDnnRates dnnl = dsbench::oneDnnGemm(rows, n, k, reps);
  std::string onednn = "null";
  if (dnnl.available) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "{\"f32_plain_gflops\": %.2f, \"f32_packed_gflops\": %.2f, "
                  "\"bf16_plain_gflops\": %.2f, \"bf16_packed_gflops\": %.2f}",
                  dnnl.f32Plain, dnnl.f32Packed, dnnl.bf16Plain,
                  dnnl.bf16Packed);
    onednn = buf;
  }
  // Last (OpenBlasGemm.h), once oneDNN's OpenMP threads have stopped
  // spinning too (libgomp's default spin is a few milliseconds).
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::string blasError;
  double blas = dsbench::openBlasSgemm(x.data(), w.data(), y.data(), rows, n, k,
                                       threads, reps, blasError);
  if (!blasError.empty())
    std::fprintf(stderr, "ds-cpu-bench gemm: no OpenBLAS rate: %s\n",
                 blasError.c_str());
  std::printf("{\"rows\": %lld, \"n\": %lld, \"k\": %lld, \"threads\": %d, "
              "\"isa\": \"%s\", \"openblas_sgemm_gflops\": %.2f, "
              "\"ds_f32_gflops\": %.2f, \"ds_bf16_gflops\": %.2f, "
              "\"ds_fp8_gflops\": %.2f, \"ds_f32_on_bf16_gflops\": %.2f, "
              "\"tiles\": \"%s\", \"tiles_by\": \"%s\", \"prefetch\": \"%s\", "
              "\"tile_l1_bf16_gflops\": %.2f, \"tile_l1_f32_gflops\": %.2f, "
              "\"onednn\": %s}\n",
              (long long)rows, (long long)n, (long long)k, threads,
              isaName(activeIsa()), blas, flops / t32 / 1e9, flops / t16 / 1e9,
              flops / t8 / 1e9, flops / t16f / 1e9, gemmTilesName(tc.tiles),
              tc.by, streamPrefetchName(activeStreamPrefetch()), tc.bf16Gflops,
              tc.f32Gflops, onednn.c_str());
  return 0;
}

int experts(int64_t e, int64_t rows, int64_t n, int64_t k, int64_t layers,
            int reps, bool uneven, bool silu) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  int64_t t = e * rows;
  size_t each = size_t(e * n * k);
  std::vector<float> x(size_t(t * k)), y(size_t(t * n)),
      w(each * size_t(layers));
  for (float &v : x)
    v = d(rng);
  for (float &v : w)
    v = d(rng);
  LowPrecision lp = lowPrecision(w, n, k, rng);
  std::vector<float> scales(size_t(e * layers) * size_t((n + 127) / 128) *
                                size_t((k + 127) / 128),
                            0.01f);
  std::vector<int64_t> sizes(size_t(e), rows);
  if (uneven && e > 0) {
    // A multinomial draw of the t rows over experts of unequal popularity
    // (log-normal, sigma 0.6): a 256-token prefill of the bench model
    // gives its 32 experts 2..88 rows (mean 30, coefficient of variation
    // 0.65, PREAMBLE); equal odds would give only 22..40.
    std::fill(sizes.begin(), sizes.end(), 0);
    std::mt19937 router(7);
    std::lognormal_distribution<double> popularity(0.0, 0.6);
    std::vector<double> odds(static_cast<size_t>(e));
    for (double &o : odds)
      o = popularity(router);
    std::discrete_distribution<int64_t> pick(odds.begin(), odds.end());
    for (int64_t i = 0; i < t; ++i)
      ++sizes[size_t(pick(router))];
  }
  std::vector<MatmulGroup> groups;
  int64_t begin = 0, smallest = t, largest = 0, panelRows = 0;
  for (int64_t g = 0; g < e; ++g) {
    int64_t size = sizes[size_t(g)];
    smallest = std::min(smallest, size);
    largest = std::max(largest, size);
    panelRows += (size + 31) / 32 * 32;
    groups.push_back({begin, begin + size, g * n});
    begin += size;
  }
  const KernelSet &ks = activeKernels();
  // Wall time, and the process's CPU time (all threads, spinning included):
  // on a shared machine the second is less moved by other processes.
  double cpuBest = 1e30;
  auto run = [&](WeightFormat f, const void *base, size_t elem) {
    cpuBest = 1e30;
    double s = best(reps, [&] {
      double c0 = dsbench::processCpuSeconds();
      auto layer = [&](int64_t l) {
        WeightMatrix m;
        m.format = f;
        m.rows = e * n;
        m.cols = k;
        m.ld = k;
        m.partRows = n;
        for (int64_t g = 0; g < e; ++g) {
          m.parts.push_back(static_cast<const uint8_t *>(base) +
                            (size_t(l) * each + size_t(g * n * k)) * elem);
          m.scales.push_back(scales.data() + size_t(l * e + g) *
                                                 size_t((n + 127) / 128) *
                                                 size_t((k + 127) / 128));
        }
        return m;
      };
      for (int64_t l = 0; l < layers; ++l) {
        if (silu)
          matmulGroupsSiluMul(ks, x.data(), k, t, layer(l),
                              layer((l + layers / 2) % layers), n, groups,
                              y.data(), n);
        else
          matmulGroups(ks, x.data(), k, t, layer(l), n, groups, y.data(), n);
      }
      cpuBest = std::min(cpuBest, dsbench::processCpuSeconds() - c0);
    });
    return (silu ? 4.0 : 2.0) * double(t * n * k) * double(layers) / s / 1e9;
  };
  double flops = (silu ? 4.0 : 2.0) * double(t * n * k) * double(layers);
  double g32 = run(WeightFormat::F32, w.data(), 4), c32 = flops / cpuBest / 1e9;
  double g16 = run(WeightFormat::BF16, lp.bf16.data(), 2),
         c16 = flops / cpuBest / 1e9;
  double g8 = run(WeightFormat::FP8, lp.fp8.data(), 1),
         c8 = flops / cpuBest / 1e9;
  std::printf("{\"experts\": %lld, \"rows\": %lld, \"n\": %lld, \"k\": %lld, "
              "\"uneven\": %s, \"silu\": %s, \"smallest_group\": %lld, "
              "\"largest_group\": %lld, \"rows_in_32_row_panels\": %lld, "
              "\"layers\": %lld, \"threads\": %d, \"isa\": \"%s\", "
              "\"f32_gflops\": %.2f, \"bf16_gflops\": %.2f, "
              "\"fp8_gflops\": %.2f, \"f32_gflops_per_cpu_second\": %.2f, "
              "\"bf16_gflops_per_cpu_second\": %.2f, "
              "\"fp8_gflops_per_cpu_second\": %.2f}\n",
              (long long)e, (long long)rows, (long long)n, (long long)k,
              uneven ? "true" : "false", silu ? "true" : "false",
              (long long)smallest, (long long)largest, (long long)panelRows,
              (long long)layers, numThreads(), isaName(activeIsa()), g32, g16,
              g8, c32, c16, c8);
  return 0;
}

int gemv(int64_t n, int64_t k, int64_t calls, int reps) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  size_t each = size_t(n * k);
  std::vector<float> x(static_cast<size_t>(k)), y(static_cast<size_t>(n)),
      w(each * static_cast<size_t>(calls));
  for (float &v : x)
    v = d(rng);
  for (float &v : w)
    v = d(rng);
  LowPrecision lp = lowPrecision(w, n, k, rng);
  const std::vector<uint16_t> &w16 = lp.bf16;
  const std::vector<uint8_t> &w8 = lp.fp8;
  const std::vector<float> &scales = lp.scales;
  const KernelSet &ks = activeKernels();
  auto run = [&](WeightFormat f, const void *base, size_t elem) {
    double t = best(reps, [&] {
      for (int64_t c = 0; c < calls; ++c)
        matmul(ks, x.data(), k, 1,
               WeightMatrix::single(f,
                                    static_cast<const uint8_t *>(base) +
                                        size_t(c) * each * elem,
                                    n, k, k, scales.data()),
               0, n, y.data(), n);
    });
    return double(each * size_t(calls) * elem) / t / 1e9;
  };
  // The weights in 2 MiB pages, as a mapped checkpoint's are: in 4 KiB
  // pages the same kernels stream slower (bench/RESULTS.md, "weights in
  // 2 MiB pages").
  auto huge = [](const void *src, size_t bytes) {
    dsbench::HugeBytes h(bytes);
    std::memcpy(h.data(), src, bytes);
    return h;
  };
  double g32 = run(WeightFormat::F32, huge(w.data(), w.size() * 4).data(), 4);
  double g16 =
      run(WeightFormat::BF16, huge(w16.data(), w16.size() * 2).data(), 2);
  double g8 = run(WeightFormat::FP8, huge(w8.data(), w8.size()).data(), 1);
  // The stream over the FP8 weights' bytes and over the f32 ones: the
  // smaller may partly fit the last-level cache, as the FP8 GEMVs may.
  dsbench::ReadRates rates8, rates32;
  const char *error = nullptr;
  if (!dsbench::measureRead(dsbench::ReadBuffer(each * size_t(calls) / 8), reps,
                            rates8, error) ||
      !dsbench::measureRead(dsbench::ReadBuffer(w.size() / 2), reps, rates32,
                            error)) {
    std::fprintf(stderr, "ds-cpu-bench gemv: %s\n", error);
    return 1;
  }
  double r8 = rates8.best(), r32 = rates32.best();
  std::printf("{\"n\": %lld, \"k\": %lld, \"calls\": %lld, \"threads\": %d, "
              "\"isa\": \"%s\", \"f32_gbps\": %.2f, \"bf16_gbps\": %.2f, "
              "\"fp8_gbps\": %.2f, \"read_gbps_fp8_bytes\": %.2f, "
              "\"read_gbps_f32_bytes\": %.2f}\n",
              (long long)n, (long long)k, (long long)calls, numThreads(),
              isaName(activeIsa()), g32, g16, g8, r8, r32);
  return 0;
}

/// One thread's one-row products over an N x K weight, ITERS times: the
/// dot kernels called per weight row as gemvRange called them before the
/// gemv kernels (the row's address and scales from the WeightMatrix, one
/// call per row), against one gemv kernel call over all rows; both bit for
/// bit the same (checked). CPU seconds of this thread, best of REPS, so
/// other processes on a shared machine move it less than wall time.
int gemvKernels(int64_t n, int64_t k, int64_t iters, int reps) {
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  size_t each = size_t(n * k);
  std::vector<float> x(static_cast<size_t>(k)), w(each),
      y1(static_cast<size_t>(n)), y2(static_cast<size_t>(n));
  for (float &v : x)
    v = d(rng);
  for (float &v : w)
    v = d(rng);
  LowPrecision lp = lowPrecision(w, n, k, rng);
  const KernelSet &ks = activeKernels();
  // gemvDotF32's choice (Gemv.cpp): the AVX2 loop on AVX-512 machines.
  const KernelSet &f32 =
      activeIsa() >= Isa::Avx512 ? kernelsFor(Isa::Avx2) : ks;
  int64_t ldxb = (k + kFp8PairsAlign - 1) / kFp8PairsAlign * kFp8PairsAlign;
  std::vector<uint16_t> xb(size_t(ldxb), 0);
  for (int64_t c = 0; c < k; ++c)
    xb[size_t(c)] = roundToBf16(x[size_t(c)]);
  // The FP8 kernels' own order of x (Gemv.cpp gemvInput).
  std::vector<uint16_t> xb8 = xb;
  if (ks.orderFp8Pairs)
    ks.orderFp8Pairs(xb8.data(), ldxb);
  auto time = [&](auto f) {
    return dsbench::best(
        reps,
        [&] {
          for (int64_t i = 0; i < iters; ++i)
            f();
        },
        false, dsbench::threadCpuSeconds);
  };
  bool same = true;
  std::string fields; // the JSON's per-format rates, in order
  // One format: its dot kernel called per weight row against its gemv
  // kernel called per run of `step` rows (FP8: one 128-row scale block, as
  // gemvRange makes them), both skipped (0 GB/s) where the set lacks them.
  auto measure = [&](const char *key, WeightFormat f, const void *base,
                     size_t elem, bool dots, bool gemvs, int64_t step, auto dot,
                     auto gemv) {
    WeightMatrix m = WeightMatrix::single(f, base, n, k, k, lp.scales.data());
    auto rate = [&](double s) {
      return double(each * elem) * double(iters) / s / 1e9;
    };
    double dotRate = 0, gemvRate = 0;
    if (dots)
      dotRate = rate(time([&] {
        for (int64_t r = 0; r < n; ++r)
          dot(m, r, &y1[size_t(r)]);
      }));
    if (gemvs) {
      gemvRate = rate(time([&] {
        for (int64_t r = 0; r < n; r += step)
          gemv(m, r, std::min(step, n - r), y2.data() + r);
      }));
      same = same && std::memcmp(y1.data(), y2.data(), size_t(n) * 4) == 0;
    }
    char buf[128];
    std::snprintf(buf, sizeof(buf),
                  ", \"%s_dot_gbps\": %.2f, \"%s_gemv_gbps\": %.2f", key,
                  dotRate, key, gemvRate);
    fields += buf;
  };
  using M = const WeightMatrix &;
  auto f32Row = [](M m, int64_t r) {
    return reinterpret_cast<const float *>(m.row(r));
  };
  auto bf16Row = [](M m, int64_t r) {
    return reinterpret_cast<const uint16_t *>(m.row(r));
  };
  bool hasF32 = f32.gemvF32, hasBf16 = ks.gemvBf16Pairs,
       hasFp8 = ks.gemvFp8Pairs;
  measure(
      "f32", WeightFormat::F32, w.data(), 4, hasF32, hasF32, n,
      [&](M m, int64_t r, float *o) {
        f32.dotF32(f32Row(m, r), x.data(), k, 1, k, o);
      },
      [&](M m, int64_t r, int64_t rows, float *o) {
        f32.gemvF32(f32Row(m, r), k, rows, x.data(), k, o);
      });
  measure(
      "bf16", WeightFormat::BF16, lp.bf16.data(), 2, hasBf16, hasBf16, n,
      [&](M m, int64_t r, float *o) {
        ks.dotBf16Pairs(bf16Row(m, r), xb.data(), ldxb, 1, k, o);
      },
      [&](M m, int64_t r, int64_t rows, float *o) {
        ks.gemvBf16Pairs(bf16Row(m, r), k, rows, xb.data(), k, o);
      });
  measure(
      "fp8", WeightFormat::FP8, lp.fp8.data(), 1, hasFp8, hasFp8, kScaleBlock,
      [&](M m, int64_t r, float *o) {
        ks.dotFp8Pairs(m.row(r), m.scaleRow(r), xb8.data(), ldxb, 1, k, o);
      },
      [&](M m, int64_t r, int64_t rows, float *o) {
        ks.gemvFp8Pairs(m.row(r), k, rows, m.scaleRow(r), xb8.data(), k, o);
      });
  // The bf16 path of the sets without AVX512-BF16 (AVX2 and plain
  // AVX-512): bf16 widened to f32, f32 FMAs.
  measure(
      "bf16_f32", WeightFormat::BF16, lp.bf16.data(), 2, true,
      ks.gemvBf16 != nullptr, n,
      [&](M m, int64_t r, float *o) {
        ks.dotBf16(bf16Row(m, r), x.data(), k, 1, k, o);
      },
      [&](M m, int64_t r, int64_t rows, float *o) {
        ks.gemvBf16(bf16Row(m, r), k, rows, x.data(), k, o);
      });
  // The FP8 path of the sets without VBMI (and of the exact f32 head
  // products): e4m3 widened to f32 through vcvtph2ps, f32 FMAs.
  measure(
      "fp8_f32", WeightFormat::FP8, lp.fp8.data(), 1, true,
      ks.gemvFp8 != nullptr, kScaleBlock,
      [&](M m, int64_t r, float *o) {
        ks.dotFp8(m.row(r), m.scaleRow(r), x.data(), k, 1, k, o);
      },
      [&](M m, int64_t r, int64_t rows, float *o) {
        ks.gemvFp8(m.row(r), k, rows, m.scaleRow(r), x.data(), k, o);
      });
  std::printf("{\"n\": %lld, \"k\": %lld, \"iters\": %lld, \"isa\": \"%s\", "
              "\"prefetch\": \"%s\"%s, \"bitwise_same\": %s}\n",
              (long long)n, (long long)k, (long long)iters,
              isaName(activeIsa()), streamPrefetchName(activeStreamPrefetch()),
              fields.c_str(), same ? "true" : "false");
  return same ? 0 : 1;
}

int heads(int64_t h, int64_t dn, int64_t dv, int64_t dc, int64_t layers,
          int reps) {
  // Both forms of the subcommand are in HeadBench.cpp, with what they share.
  return dsbench::headsDecodeBench(h, dn, dv, dc, layers, reps);
}

int readBandwidth(int64_t mib, int reps) {
  dsbench::ReadRates r;
  const char *error = nullptr;
  if (!dsbench::measureRead(dsbench::ReadBuffer(size_t(mib) << 17), reps, r,
                            error)) {
    std::fprintf(stderr, "ds-cpu-bench read: %s\n", error);
    return 1;
  }
  std::printf("{\"mib\": %lld, \"threads\": %d, \"read_gbps\": %.2f, "
              "\"read_gbps_words\": %.2f, \"read_gbps_vector\": %.2f, "
              "\"read_gbps_vector_ahead\": %.2f, \"vector_isa\": \"%s\"}\n",
              (long long)mib, numThreads(), r.best(), r.words, r.vector,
              r.vectorAhead, r.vectorIsa);
  return 0;
}

/// This process's peak resident set (VmHWM), in bytes. Not getrusage's
/// ru_maxrss: Linux carries that across exec, so a child of a large
/// parent (the Python that wrote the checkpoints) would report the
/// parent's peak.
long long peakRss() {
  FILE *f = std::fopen("/proc/self/status", "r");
  if (!f)
    return -1;
  char line[256];
  long long kb = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %lld kB", &kb) == 1)
      break;
  std::fclose(f);
  return kb < 0 ? -1 : kb * 1024;
}

/// acc += after - before.
void addPool(PoolStats &acc, const PoolStats &before, const PoolStats &after) {
  acc.regions += after.regions - before.regions;
  acc.serial += after.serial - before.serial;
  acc.chunks += after.chunks - before.chunks;
  acc.workerChunks += after.workerChunks - before.workerChunks;
  acc.seconds += after.seconds - before.seconds;
  acc.busySeconds += after.busySeconds - before.busySeconds;
}

/// The share of threads x wall seconds in which a thread had no work:
/// outside parallel regions all but the caller, inside them what the
/// threads did not spend running chunks (waking, waiting, imbalance).
double idleShare(const PoolStats &p, double wall) {
  double threads = numThreads();
  if (wall <= 0 || threads <= 1)
    return 0;
  double serial = std::max(wall - p.seconds, 0.0);
  return 1 - (serial + p.busySeconds) / (threads * wall);
}

/// The read stream over the checkpoint's pages a decode step reads, best
/// of three passes a loop (WeightSpans.h); false after printing why.
bool weightsOwnRead(const char *weights, long long &bytes, double &gbps) {
  dsbench::WeightSpans spans;
  std::string why;
  dsbench::ReadRates own;
  const char *readError = nullptr;
  if (!dsbench::decodeWeightSpans(weights, spans, why) ||
      !dsbench::measureRead(spans.spans, 3, own, readError)) {
    std::fprintf(stderr, "ds-cpu-bench: the weights' read: %s\n",
                 readError ? readError : why.c_str());
    return false;
  }
  bytes = spans.bytes;
  gbps = own.best();
  return true;
}

int model(const char *artifact, const char *weights, int64_t prompt,
          int64_t steps, int reps) {
  // What the process holds before the model (libraries, OpenBLAS): peak
  // RSS minus this is the model's.
  long long before = peakRss();
  dsrt_model *m = nullptr;
  double t0 = now();
  if (dsrt_model_load(artifact, weights, "cpu", &m) != DSRT_OK) {
    std::fprintf(stderr, "ds-cpu-bench: %s\n", dsrt_last_error());
    return 1;
  }
  double load = now() - t0;
  dsrt_model_info info;
  dsrt_model_info_get(m, &info);
  dsrt_session *s = nullptr;
  if (dsrt_session_create(m, prompt + steps + 1, &s) != DSRT_OK) {
    std::fprintf(stderr, "ds-cpu-bench: %s\n", dsrt_last_error());
    return 1;
  }
  std::vector<int32_t> tokens(static_cast<size_t>(prompt));
  for (int64_t i = 0; i < prompt; ++i)
    tokens[size_t(i)] = int32_t(2 + (i * 7919) % (info.vocab_size - 2));
  std::vector<float> logits(size_t(prompt * info.vocab_size));
  double first = 0, pre = 1e30, preLast = 1e30, dec = 1e30;
  dsrt_stats stats{};
  PoolStats pool, prefillPool;
  double decodeSeconds = 0, prefillSeconds = 0;
  // The prompt as generation runs it (logits of its last row only) from
  // an empty cache: its seconds, or -1 once it has printed why it failed.
  auto lastRowPrefill = [&] {
    dsrt_session_reset(s);
    dsrt_generate_options go{};
    int64_t count = 0;
    double t0 = now();
    if (dsrt_generate(s, tokens.data(), prompt, &go, nullptr, &count, nullptr,
                      &stats) != DSRT_OK) {
      std::fprintf(stderr, "ds-cpu-bench: %s\n", dsrt_last_error());
      return -1.0;
    }
    return now() - t0;
  };
  // The first prompt, as a first request runs it: it faults in the
  // weights' pages and the activations, so it is timed apart and every
  // repetition below is warm (with REPS 1 the last-row prefill was this
  // cold one, at half the warm rate at V3's widths).
  first = lastRowPrefill();
  if (first < 0)
    return 1;
  // DSRT_TILE_TRACE: the warm prefills only, which the tok/s below time.
  // The cold one's chunks also wait on the weights' page faults.
  tileTraceReset();
  for (int r = 0; r < reps; ++r) {
    double last = lastRowPrefill();
    if (last < 0)
      return 1;
    preLast = std::min(preLast, last);
    dsrt_session_reset(s);
    PoolStats before = poolStats();
    double t = now();
    if (dsrt_session_prefill(s, tokens.data(), prompt, logits.data()) !=
        DSRT_OK) {
      std::fprintf(stderr, "ds-cpu-bench: %s\n", dsrt_last_error());
      return 1;
    }
    double p = now() - t;
    pre = std::min(pre, p);
    // The first every-row prefill touches its logits buffer: steady state
    // only.
    if (r > 0 || reps == 1) {
      addPool(prefillPool, before, poolStats());
      prefillSeconds += p;
    }
    before = poolStats();
    t = now();
    for (int64_t i = 0; i < steps; ++i)
      if (dsrt_session_decode(s, 5, logits.data()) != DSRT_OK) {
        std::fprintf(stderr, "ds-cpu-bench: %s\n", dsrt_last_error());
        return 1;
      }
    double d = now() - t;
    dec = std::min(dec, d);
    decodeSeconds += d;
    addPool(pool, before, poolStats());
  }
  // Per decode step: parallel regions, calls run whole on the caller, the
  // share of the step's wall time inside regions and of their chunks run
  // by workers (whether the second thread works during each GEMV).
  double allSteps = double(std::max<int64_t>(steps * reps, 1));
  // Per prefill, the same figures over the warm prefills.
  double prefills = double(std::max(reps - 1, 1));
  // Where the weights were read from: decode streams large ones slower
  // from 4 KiB pages than from 2 MiB ones.
  dsrt_weight_pages pages{};
  dsrt_model_weight_pages(m, &pages);
  // Taken before the weights' read below maps the files a second time.
  long long peak = peakRss();
  long long ownBytes = 0;
  double ownGbps = 0;
  if (!weightsOwnRead(weights, ownBytes, ownGbps))
    return 1;
  std::printf("{\"isa\": \"%s\", \"load_seconds\": %.4f, "
              "\"first_prefill_seconds\": %.4f, \"prefill_tokens\": %lld, "
              "\"prefill_tokens_per_second\": %.2f, "
              "\"prefill_last_row_tokens_per_second\": %.2f, "
              "\"decode_steps\": %lld, "
              "\"decode_tokens_per_second\": %.2f, \"weights_bytes\": %lld, "
              "\"peak_rss_bytes\": %lld, \"baseline_rss_bytes\": %lld, "
              "\"activation_bytes\": %lld, \"cache_bytes\": %lld, "
              "\"logits_buffer_bytes\": %lld, "
              "\"decode_regions_per_step\": %.1f, "
              "\"decode_serial_calls_per_step\": %.1f, "
              "\"decode_region_time_share\": %.3f, "
              "\"decode_worker_chunk_share\": %.3f, "
              "\"prefill_regions\": %.1f, \"prefill_serial_calls\": %.1f, "
              "\"prefill_region_time_share\": %.3f, "
              "\"prefill_worker_chunk_share\": %.3f, "
              "\"prefill_idle_core_share\": %.3f, "
              "\"decode_idle_core_share\": %.3f, "
              "\"weights_resident_bytes\": %lld, "
              "\"weights_huge_page_bytes\": %lld, "
              "\"weights_read_bytes\": %lld, \"weights_read_gbps\": %.2f}\n",
              isaName(activeIsa()), load, first, (long long)prompt,
              double(prompt) / pre, double(prompt) / preLast, (long long)steps,
              double(steps) / dec, (long long)info.weights_bytes, peak, before,
              (long long)stats.activation_bytes,
              (long long)(info.kv_cache_bytes_per_token * (prompt + steps + 1)),
              (long long)(logits.size() * sizeof(float)),
              double(pool.regions) / allSteps, double(pool.serial) / allSteps,
              pool.seconds / std::max(decodeSeconds, 1e-9),
              double(pool.workerChunks) /
                  double(std::max<int64_t>(pool.chunks, 1)),
              double(prefillPool.regions) / prefills,
              double(prefillPool.serial) / prefills,
              prefillPool.seconds / std::max(prefillSeconds, 1e-9),
              double(prefillPool.workerChunks) /
                  double(std::max<int64_t>(prefillPool.chunks, 1)),
              idleShare(prefillPool, prefillSeconds),
              idleShare(pool, decodeSeconds), (long long)pages.resident_bytes,
              (long long)pages.huge_page_bytes, ownBytes, ownGbps);
  dsrt_session_free(s);
  dsrt_model_free(m);
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  // A benchmark of a path the environment names but the runtime refuses
  // would measure another one.
  for (const std::string &error : {configureIsa(), activeTileChoice().error})
    if (!error.empty()) {
      std::fprintf(stderr, "ds-cpu-bench: error: %s\n", error.c_str());
      return 2;
    }
  std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "gemm" && argc == 6)
    return gemm(std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
                std::atoi(argv[5]));
  if (cmd == "gemm-cold" && argc == 6)
    return dsbench::coldGemmBench(std::atoll(argv[2]), std::atoll(argv[3]),
                                  std::atoll(argv[4]), std::atoi(argv[5]));
  if (cmd == "ports" && argc == 3)
    return dsbench::portBench(std::atoi(argv[2]));
  if (cmd == "read" && argc == 4)
    return readBandwidth(std::atoll(argv[2]), std::atoi(argv[3]));
  if (cmd == "gemv" && argc == 6)
    return gemv(std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
                std::atoi(argv[5]));
  if (cmd == "gemv-kernels" && argc == 6)
    return gemvKernels(std::atoll(argv[2]), std::atoll(argv[3]),
                       std::atoll(argv[4]), std::atoi(argv[5]));
  if (cmd == "heads" && argc == 8)
    return heads(std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
                 std::atoll(argv[5]), std::atoll(argv[6]), std::atoi(argv[7]));
  if (cmd == "heads" && argc == 9)
    return dsbench::headsRowsBench(
        std::atoll(argv[2]), std::atoll(argv[3]), std::atoll(argv[4]),
        std::atoll(argv[5]), std::atoll(argv[6]), argv[7], std::atoi(argv[8]));
  if (cmd == "experts" && argc >= 8 && argc <= 10) {
    bool uneven = false, silu = false, known = true;
    for (int i = 8; i < argc; ++i) {
      std::string flag = argv[i];
      uneven |= flag == "uneven";
      silu |= flag == "silu";
      known &= flag == "uneven" || flag == "silu";
    }
    if (known)
      return experts(std::atoll(argv[2]), std::atoll(argv[3]),
                     std::atoll(argv[4]), std::atoll(argv[5]),
                     std::atoll(argv[6]), std::atoi(argv[7]), uneven, silu);
  }
  if (cmd == "attend" && argc == 8)
    return dsbench::attendBench(std::atoll(argv[2]), std::atoll(argv[3]),
                                std::atoll(argv[4]), std::atoll(argv[5]),
                                std::atoll(argv[6]), std::atoi(argv[7]));
  if (cmd == "latent" && (argc == 8 || argc == 9))
    return dsbench::latentBench(std::atoll(argv[2]), std::atoll(argv[3]),
                                std::atoll(argv[4]), std::atoll(argv[5]),
                                std::atoll(argv[6]), std::atoi(argv[7]),
                                argc == 9 ? argv[8] : "f32");
  if (cmd == "tile" && argc == 6)
    return dsbench::tileBench(std::atoll(argv[2]), std::atoll(argv[3]),
                              std::atoll(argv[4]), std::atoi(argv[5]));
  if (cmd == "model" && argc == 7)
    return model(argv[2], argv[3], std::atoll(argv[4]), std::atoll(argv[5]),
                 std::atoi(argv[6]));
  std::fprintf(
      stderr,
      "usage: ds-cpu-bench gemm ROWS N K REPS | gemm-cold ROWS N K "
      "REPS | read MIB REPS "
      "| gemv N K CALLS REPS | gemv-kernels N K ITERS REPS "
      "| heads H DN DV DC LAYERS REPS "
      "| experts E ROWS N K LAYERS REPS [uneven] [silu] "
      "| attend TOKENS HEADS DN DR DV REPS "
      "| latent CONTEXT HEADS DC DR LAYERS REPS [DTYPE] | tile ROWS N K REPS "
      "| heads ROWS H DN DV DC f32|bf16|fp8 REPS | ports REPS "
      "| model ARTIFACT WEIGHTS PROMPT STEPS "
      "REPS\n");
  return 2;
}
