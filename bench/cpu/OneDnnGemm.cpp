//===- OneDnnGemm.cpp - oneDNN matmul timings for ds-cpu-bench ------------===//
#include "OneDnnGemm.h"

#ifdef DS_HAVE_ONEDNN
#include "BenchUtil.h"

#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

namespace {

/// One matmul primitive with its memories; `ok` false when oneDNN refused
/// any step (reported, and the rate left at 0).
struct MatMul {
  dnnl_primitive_t prim = nullptr;
  dnnl_primitive_desc_t pd = nullptr;
  dnnl_memory_t src = nullptr, wei = nullptr, dst = nullptr;
  dnnl_memory_t weiPlain = nullptr;
  bool ok = false;
  ~MatMul() {
    for (dnnl_memory_t m : {src, wei, dst, weiPlain})
      if (m)
        dnnl_memory_destroy(m);
    if (prim)
      dnnl_primitive_destroy(prim);
    if (pd)
      dnnl_primitive_desc_destroy(pd);
  }
};

bool check(dnnl_status_t s, const char *what) {
  if (s == dnnl_success)
    return true;
  std::fprintf(stderr, "ds-cpu-bench: oneDNN %s failed (status %d)\n", what,
               int(s));
  return false;
}

/// Builds y = x w^T with weights given as [n, k] row-major (oneDNN's `ba`
/// for a k x n operand). `packed`: the primitive chooses the weights'
/// layout and the plain weights are reordered into it once, outside the
/// timing.
bool build(MatMul &m, dnnl_engine_t eng, dnnl_stream_t stream,
           dnnl_data_type_t dt, int64_t rows, int64_t n, int64_t k,
           void *x, void *w, float *y, bool packed) {
  dnnl_memory_desc_t srcMd, weiMd, weiPlainMd, dstMd;
  dnnl_dims_t sd = {rows, k}, wd = {k, n}, dd = {rows, n};
  if (!check(dnnl_memory_desc_init_by_tag(&srcMd, 2, sd, dt, dnnl_ab), "src") ||
      !check(dnnl_memory_desc_init_by_tag(&weiPlainMd, 2, wd, dt, dnnl_ba),
             "weights") ||
      !check(dnnl_memory_desc_init_by_tag(&weiMd, 2, wd, dt,
                                          packed ? dnnl_format_tag_any
                                                 : dnnl_ba),
             "weights") ||
      !check(dnnl_memory_desc_init_by_tag(&dstMd, 2, dd, dnnl_f32, dnnl_ab),
             "dst"))
    return false;
  dnnl_matmul_desc_t desc;
  if (!check(dnnl_matmul_desc_init(&desc, &srcMd, &weiMd, nullptr, &dstMd),
             "matmul desc") ||
      !check(dnnl_primitive_desc_create(&m.pd, &desc, nullptr, eng, nullptr),
             "primitive desc") ||
      !check(dnnl_primitive_create(&m.prim, m.pd), "primitive"))
    return false;
  const dnnl_memory_desc_t *chosen =
      dnnl_primitive_desc_query_md(m.pd, dnnl_query_weights_md, 0);
  if (!check(dnnl_memory_create(&m.src, &srcMd, eng, x), "src memory") ||
      !check(dnnl_memory_create(&m.dst, &dstMd, eng, y), "dst memory") ||
      !check(dnnl_memory_create(&m.weiPlain, &weiPlainMd, eng, w),
             "weights memory"))
    return false;
  if (!packed) {
    m.wei = m.weiPlain;
    m.weiPlain = nullptr;
    return m.ok = true;
  }
  if (!check(dnnl_memory_create(&m.wei, chosen, eng, DNNL_MEMORY_ALLOCATE),
             "packed weights"))
    return false;
  dnnl_primitive_desc_t rpd = nullptr;
  dnnl_primitive_t reorder = nullptr;
  bool ok = check(dnnl_reorder_primitive_desc_create(&rpd, &weiPlainMd, eng,
                                                      chosen, eng, nullptr),
                  "reorder desc") &&
            check(dnnl_primitive_create(&reorder, rpd), "reorder");
  if (ok) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, m.weiPlain},
                               {DNNL_ARG_TO, m.wei}};
    ok = check(dnnl_primitive_execute(reorder, stream, 2, args), "reorder") &&
         check(dnnl_stream_wait(stream), "reorder wait");
  }
  if (reorder)
    dnnl_primitive_destroy(reorder);
  if (rpd)
    dnnl_primitive_desc_destroy(rpd);
  return m.ok = ok;
}

double time(MatMul &m, dnnl_stream_t stream, int reps, double flops) {
  if (!m.ok)
    return 0;
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, m.src},
                             {DNNL_ARG_WEIGHTS, m.wei},
                             {DNNL_ARG_DST, m.dst}};
  // After a failed call the rest are skipped and the rate is 0.
  bool ok = true;
  double t = dsbench::best(
      reps,
      [&] {
        ok = ok &&
             check(dnnl_primitive_execute(m.prim, stream, 3, args), "matmul") &&
             check(dnnl_stream_wait(stream), "matmul wait");
      },
      /*warm=*/true);
  return ok ? flops / t / 1e9 : 0;
}

} // namespace

dsbench::OneDnnRates dsbench::oneDnnGemm(int64_t rows, int64_t n, int64_t k,
                                         int reps) {
  OneDnnRates r;
  dnnl_engine_t eng = nullptr;
  dnnl_stream_t stream = nullptr;
  if (!check(dnnl_engine_create(&eng, dnnl_cpu, 0), "engine") ||
      !check(dnnl_stream_create(&stream, eng, dnnl_stream_default_flags),
             "stream")) {
    if (eng)
      dnnl_engine_destroy(eng);
    return r;
  }
  std::mt19937 rng(2);
  std::vector<float> x = dsbench::normal(size_t(rows * k), rng),
                     w = dsbench::normal(size_t(n * k), rng),
                     y(size_t(rows * n));
  std::vector<uint16_t> x16 = dsbench::toBf16(x), w16 = dsbench::toBf16(w);
  double flops = 2.0 * double(rows) * double(n) * double(k);
  {
    MatMul plain, packed, plain16, packed16;
    build(plain, eng, stream, dnnl_f32, rows, n, k, x.data(), w.data(),
          y.data(), false);
    build(packed, eng, stream, dnnl_f32, rows, n, k, x.data(), w.data(),
          y.data(), true);
    build(plain16, eng, stream, dnnl_bf16, rows, n, k, x16.data(), w16.data(),
          y.data(), false);
    build(packed16, eng, stream, dnnl_bf16, rows, n, k, x16.data(),
          w16.data(), y.data(), true);
    r.f32Plain = time(plain, stream, reps, flops);
    r.f32Packed = time(packed, stream, reps, flops);
    r.bf16Plain = time(plain16, stream, reps, flops);
    r.bf16Packed = time(packed16, stream, reps, flops);
    r.available = r.f32Plain > 0 || r.f32Packed > 0;
  }
  dnnl_stream_destroy(stream);
  dnnl_engine_destroy(eng);
  return r;
}

#else

dsbench::OneDnnRates dsbench::oneDnnGemm(int64_t, int64_t, int64_t, int) {
  return {};
}

#endif
