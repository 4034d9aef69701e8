//===- CudaGlueTest.cpp - the CUDA runtime glue against stand-ins ---------===//
//
// What generated CUDA host code calls (mgpu*, the cuBLAS GEMM wrappers,
// dsrt_scratch) run against the stand-in driver and cuBLAS of
// test/tools/fake-cuda, whose "device memory" is host memory: the GEMM
// glue (transposes, leading dimensions, grouped offsets, bf16 staging) is
// compared with the CPU GEMMs, and every failure path is driven by the
// stand-ins' failure injection. Its own binary: the process-wide driver is
// chosen from the environment before the first call.
//
//===----------------------------------------------------------------------===//
#include "api/Model.h"
#include "cpu/Gemm.h"
#include "cpu/MemRef.h"
#include "cuda/Device.h"
#include "cuda/Gemm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <random>

using namespace dsrt;
using namespace dsrt::cuda;

extern "C" {
void *mgpuModuleLoad(void *data, size_t size);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz,
                      intptr_t bx, intptr_t by, intptr_t bz, int32_t smem,
                      void *stream, void **params, void **extra, size_t n);
void *mgpuMemAlloc(uint64_t bytes, void *stream, bool hostShared);
void mgpuMemFree(void *p, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t bytes, void *stream);
void mgpuMemset32(void *dst, unsigned value, size_t count, void *stream);
int64_t dsrt_gpu_context_tokens(int64_t capacity);
void _mlir_ciface_dsrt_scratch(MemRef<uint8_t, 1> *r, void *ctx,
                               int64_t bytes);
void _mlir_ciface_dsrt_linear_f32(void *ctx, MemRef<float, 2> *x,
                                  MemRef<float, 2> *w, MemRef<float, 2> *y);
}

namespace {

// Before main: gpu() and cublas() read these once.
const bool environmentSet = [] {
  setenv("DSRT_CUDA_DRIVER", DS_FAKE_CUDA, 1);
  setenv("DSRT_CUBLAS", DS_FAKE_CUBLAS, 1);
  setenv("FAKE_CUDA_CC", "90", 1);
  setenv("FAKE_CUDA_LOAD", "1", 1);
  setenv("DSRT_CUDA_SYNC", "1", 1);
  return true;
}();

template <typename F> F fakeFn(const char *lib, const char *name) {
  void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
  return h ? reinterpret_cast<F>(dlsym(h, name)) : nullptr;
}
long count(const char *kind) {
  return fakeFn<long (*)(const char *)>(DS_FAKE_CUDA, "fakeCudaCount")(kind);
}
long gemms(const char *lib = DS_FAKE_CUBLAS) {
  return fakeFn<long (*)()>(lib, "fakeCublasGemms")();
}
long batchedCalls() {
  return fakeFn<long (*)()>(DS_FAKE_CUBLAS, "fakeCublasBatchedCalls")();
}
long groupedCalls() {
  return fakeFn<long (*)()>(DS_FAKE_CUBLAS, "fakeCublasGroupedCalls")();
}

/// A session on the stand-in device, current for the test's duration,
/// with failure injection from `fail` / `cublasFail`.
struct Call {
  explicit Call(const char *fail = nullptr, const char *cublasFail = nullptr) {
    std::string error;
    g = gpu(error);
    EXPECT_NE(g, nullptr) << error;
    api = cublas(error);
    EXPECT_NE(api, nullptr) << error;
    session = std::make_unique<DeviceSession>(*g);
    session->cublasApi = api;
    EXPECT_EQ(api->create(&session->blas), 0);
    fakeFn<void (*)()>(DS_FAKE_CUDA, "fakeCudaReset")();
    fakeFn<void (*)()>(DS_FAKE_CUBLAS, "fakeCublasReset")();
    fail ? setenv("FAKE_CUDA_FAIL", fail, 1) : unsetenv("FAKE_CUDA_FAIL");
    cublasFail ? setenv("FAKE_CUBLAS_FAIL", cublasFail, 1)
               : unsetenv("FAKE_CUBLAS_FAIL");
    ex.session = session.get();
    Execution::current() = &ex;
  }
  ~Call() {
    Execution::current() = nullptr;
    unsetenv("FAKE_CUDA_FAIL");
    unsetenv("FAKE_CUBLAS_FAIL");
  }
  /// n floats of "device" memory from the arena.
  float *device(size_t n) {
    std::string error;
    auto *p = static_cast<float *>(session->arena.allocate(n * 4, error));
    EXPECT_NE(p, nullptr) << error;
    return p;
  }
  const Gpu *g = nullptr;
  const Cublas *api = nullptr;
  std::unique_ptr<DeviceSession> session;
  Execution ex;
};

void fill(float *p, size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (size_t i = 0; i < n; ++i)
    p[i] = d(rng);
}

MemRef<float, 2> view(float *p, int64_t rows, int64_t cols, int64_t ld) {
  int64_t shape[2] = {rows, cols};
  MemRef<float, 2> m = makeMemRef<float, 2>(p, shape);
  m.strides[0] = ld;
  return m;
}

uint16_t toBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return uint16_t((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

// Rows with a leading dimension past their width (views into wider
// buffers), as the generated code passes slices of packed projections.
TEST(CudaGemmGlue, LinearMatchesCpuWithStridedRows) {
  Call c;
  const int64_t T = 5, K = 24, N = 7, ldx = 31, ldy = 10;
  float *x = c.device(T * ldx), *w = c.device(N * K), *y = c.device(T * ldy);
  fill(x, T * ldx, 1);
  fill(w, N * K, 2);
  std::vector<float> want(size_t(T * ldy), 0.0f);
  auto X = view(x, T, K, ldx), W = view(w, N, K, K), Y = view(y, T, N, ldy);
  auto R = view(want.data(), T, N, ldy);
  ASSERT_EQ(linear(X, W, Y), "");
  ASSERT_EQ(cpu::linear(X, W, R), "");
  EXPECT_EQ(gemms(), 1);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n)
      EXPECT_NEAR(y[t * ldy + n], want[size_t(t * ldy + n)], 1e-5)
          << t << "," << n;
}

// bf16 weights: activations staged as bf16 (the stand-in runs the
// runtime's conversion kernel), cublasGemmEx with f32 accumulation: equal
// to the product of the bf16-rounded operands in double.
TEST(CudaGemmGlue, Bf16LinearUsesRoundedActivations) {
  Call c;
  const int64_t T = 3, K = 40, N = 6;
  float *x = c.device(T * K), *y = c.device(T * N);
  fill(x, T * K, 3);
  std::vector<float> wf(size_t(N * K));
  fill(wf.data(), wf.size(), 4);
  auto *w = reinterpret_cast<uint16_t *>(c.device(N * K / 2 + 1));
  for (size_t i = 0; i < wf.size(); ++i)
    w[i] = toBf16(wf[i]);
  auto X = view(x, T, K, K), Y = view(y, T, N, N);
  auto W = view(reinterpret_cast<float *>(w), N, K, K);
  ASSERT_EQ(linear(X, W, Y, /*bf16Weights=*/true), "");
  auto widen = [](uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return double(f);
  };
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += widen(toBf16(x[t * K + k])) * widen(w[n * K + k]);
      EXPECT_NEAR(y[t * N + n], s, 1e-5) << t << "," << n;
    }
  // The staging buffer is the session's, not the arena's.
  EXPECT_GE(c.session->staging.size(), size_t(T * K * 2));
  EXPECT_FALSE(c.session->arena.contains(c.session->staging.as<void>()));
}

// Expert groups from device offsets, empty groups included.
TEST(CudaGemmGlue, GroupedLinearMatchesCpu) {
  Call c;
  const int64_t E = 4, T = 9, K = 8, N = 5;
  float *x = c.device(T * K), *w = c.device(E * N * K), *y = c.device(T * N);
  auto *off = reinterpret_cast<int32_t *>(c.device(E + 1));
  fill(x, T * K, 5);
  fill(w, E * N * K, 6);
  int32_t offsets[] = {0, 3, 3, 8, 9};
  std::memcpy(off, offsets, sizeof(offsets));
  int64_t wShape[3] = {E, N, K}, oShape[1] = {E + 1};
  auto W = makeMemRef<float, 3>(w, wShape);
  auto O = makeMemRef<int32_t, 1>(off, oShape);
  auto X = view(x, T, K, K), Y = view(y, T, N, N);
  std::vector<float> want(size_t(T * N));
  auto R = view(want.data(), T, N, N);
  ASSERT_EQ(groupedLinear(W, X, O, Y), "");
  ASSERT_EQ(cpu::groupedLinear(X, W, O, R), "");
  EXPECT_EQ(gemms(), 3); // the empty group is no problem of the call
  EXPECT_EQ(groupedCalls(), 1);
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(y[i], want[i], 1e-5) << i;
  // The gate and up GEMMs of a layer share one read of the offsets; a
  // launch (which may rewrite them) makes the next GEMM read them again.
  long reads = count("dtoh");
  ASSERT_EQ(groupedLinear(W, X, O, Y), "");
  ASSERT_EQ(groupedLinear(W, X, O, Y), "");
  EXPECT_EQ(count("dtoh"), reads);
  void *module = mgpuModuleLoad(nullptr, 0);
  mgpuLaunchKernel(mgpuModuleGetFunction(module, "permute"), 1, 1, 1, 32, 1,
                   1, 0, nullptr, nullptr, nullptr, 0);
  ASSERT_EQ(groupedLinear(W, X, O, Y), "");
  EXPECT_EQ(count("dtoh"), reads + 1);
  // Offsets out of order are an error, not an out-of-bounds GEMM.
  int32_t bad[] = {0, 5, 2, 8, 9};
  std::memcpy(off, bad, sizeof(bad));
  mgpuMemset32(y, 0, 1, nullptr); // a device write: the offsets are read again
  EXPECT_EQ(groupedLinear(W, X, O, Y),
            "dsrt_grouped_linear_f32: expert offsets out of order");
}

/// A MoE-shaped grouped GEMM: `E` experts of [N, K] weights, rows of x and
/// y strided (ldx, ldy past their widths), offsets on the "device".
struct Grouped {
  Grouped(Call &c, std::vector<int32_t> offsets, int64_t N, int64_t K,
          int64_t ldx, int64_t ldy)
      : E(int64_t(offsets.size()) - 1), T(offsets.back()), N(N), K(K),
        ldx(ldx), ldy(ldy), want(size_t(T * ldy), 0.0f) {
    x = c.device(size_t(T * ldx));
    w = c.device(size_t(E * N * K));
    y = c.device(size_t(T * ldy));
    off = reinterpret_cast<int32_t *>(c.device(offsets.size()));
    fill(x, size_t(T * ldx), 11);
    fill(w, size_t(E * N * K), 12);
    std::fill(y, y + T * ldy, 0.0f);
    std::memcpy(off, offsets.data(), offsets.size() * 4);
  }
  MemRef<float, 3> W() {
    int64_t shape[3] = {E, N, K};
    return makeMemRef<float, 3>(w, shape);
  }
  MemRef<int32_t, 1> O() {
    int64_t shape[1] = {E + 1};
    return makeMemRef<int32_t, 1>(off, shape);
  }
  MemRef<float, 2> X() { return view(x, T, K, ldx); }
  MemRef<float, 2> Y() { return view(y, T, N, ldy); }
  /// y against the CPU path's grouped GEMM on the same operands.
  void expectCpu() {
    auto R = view(want.data(), T, N, ldy);
    ASSERT_EQ(cpu::groupedLinear(X(), W(), O(), R), "");
    for (int64_t t = 0; t < T; ++t)
      for (int64_t n = 0; n < N; ++n)
        EXPECT_NEAR(y[t * ldy + n], want[size_t(t * ldy + n)], 1e-5)
            << t << "," << n;
  }
  int64_t E, T, N, K, ldx, ldy;
  float *x, *w, *y;
  int32_t *off;
  std::vector<float> want;
};

// Prefill shapes (more rows than experts): one cublasGemmGroupedBatchedEx
// per grouped matmul, every non-empty expert a problem of it (experts with
// equal row counts share a group), empty ones (first, middle, last) left
// out.
TEST(CudaGemmGlue, GroupedLinearIsOneGroupedCall) {
  Call c;
  Grouped p(c, {0, 0, 5, 6, 6, 13, 18, 18}, 9, 12, 20, 11);
  ASSERT_EQ(groupedLinear(p.W(), p.X(), p.O(), p.Y()), "");
  EXPECT_EQ(groupedCalls(), 1);
  EXPECT_EQ(gemms(), 4);
  p.expectCpu();
  // All experts empty: nothing to call.
  Grouped none(c, {0, 0, 0}, 3, 4, 4, 3);
  ASSERT_EQ(groupedLinear(none.W(), none.X(), none.O(), none.Y()), "");
  EXPECT_EQ(groupedCalls(), 1);
  EXPECT_EQ(c.ex.error, "");
}

// Prefill shapes: a MoE layer's gate, up and down GEMMs read the offsets
// back once (one wait per layer): the SiLU-mul launch between up and down
// keeps the host copy; the next layer's permutation (like any other launch)
// drops it, and its new offsets are the ones used.
TEST(CudaGemmGlue, PrefillMoELayerReadsOffsetsOnce) {
  Call c;
  Grouped p(c, {0, 4, 4, 9, 12}, 6, 8, 8, 6);
  void *module = mgpuModuleLoad(nullptr, 0);
  void *permute =
      mgpuModuleGetFunction(module, "__ds_moe_route_permute_0a1b_kernel");
  void *siluMul =
      mgpuModuleGetFunction(module, "__ds_silu_mul_packed_2c3d_kernel");
  auto launch = [](void *f) {
    mgpuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  };
  const std::vector<std::vector<int32_t>> layers = {
      {0, 4, 4, 9, 12}, {0, 1, 6, 6, 12}, {0, 0, 0, 12, 12}};
  long reads = count("dtoh");
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    // The permutation writes this layer's offsets where the last ones were.
    std::memcpy(p.off, layers[layer].data(), layers[layer].size() * 4);
    launch(permute);
    ASSERT_EQ(groupedLinear(p.W(), p.X(), p.O(), p.Y()), ""); // gate
    ASSERT_EQ(groupedLinear(p.W(), p.X(), p.O(), p.Y()), ""); // up
    launch(siluMul);
    ASSERT_EQ(groupedLinear(p.W(), p.X(), p.O(), p.Y()), ""); // down
    EXPECT_EQ(count("dtoh"), reads + long(layer) + 1) << "layer " << layer;
    p.expectCpu();
  }
  // A kernel of unknown effect drops the copy too.
  launch(mgpuModuleGetFunction(module, "some_kernel"));
  ASSERT_EQ(groupedLinear(p.W(), p.X(), p.O(), p.Y()), "");
  EXPECT_EQ(count("dtoh"), reads + long(layers.size()) + 1);
  EXPECT_EQ(c.ex.error, "");
}

// Decode shapes (no more rows than experts): each row is its own product,
// its expert found on the device (the runtime's dsrt_expert_rows kernel,
// emulated by the stand-in) and all rows one cublasGemmBatchedEx, so the
// host never reads the offsets back: no device-to-host copy, no wait.
TEST(CudaGemmGlue, DecodeGroupedLinearKeepsOffsetsOnDevice) {
  Call c;
  long reads = count("dtoh"), syncs = count("sync");
  // 8 of 12 experts routed one row each; strided rows.
  Grouped d(c, {0, 0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8}, 7, 16, 19, 9);
  ASSERT_EQ(groupedLinear(d.W(), d.X(), d.O(), d.Y()), "");
  d.expectCpu();
  // Two rows on one expert, the rest empty.
  Grouped two(c, {0, 0, 2, 2}, 5, 6, 6, 5);
  ASSERT_EQ(groupedLinear(two.W(), two.X(), two.O(), two.Y()), "");
  two.expectCpu();
  EXPECT_EQ(batchedCalls(), 2);
  EXPECT_EQ(groupedCalls(), 0);
  EXPECT_EQ(gemms(), 8 + 2);
  EXPECT_EQ(count("dtoh"), reads);
  // The pointer buffer grows once (after the stream drains); the other
  // waits are DSRT_CUDA_SYNC=1's, set for this test binary.
  EXPECT_EQ(count("sync"), syncs + 1 + 2);
  // Offsets out of order cannot send a row outside the weights: the row's
  // expert is clamped (the host path, which reads them, reports them).
  Grouped bad(c, {0, 9, 1, 2}, 3, 4, 4, 3);
  ASSERT_EQ(groupedLinear(bad.W(), bad.X(), bad.O(), bad.Y()), "");
  EXPECT_EQ(c.ex.error, "");
  // A failing batched call is the call's error.
  Call f(nullptr, "1");
  Grouped g(f, {0, 1, 1, 2}, 4, 8, 8, 4);
  EXPECT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()),
            "cublasGemmBatchedEx failed with status 13");
}

// bf16 weights on the decode path: the batched GEMM takes the staged bf16
// activations, equal to the rounded operands' products.
TEST(CudaGemmGlue, Bf16DecodeGroupedLinearIsBatched) {
  Call c;
  const int64_t E = 4, N = 5, K = 12;
  std::vector<int32_t> offsets = {0, 1, 1, 3, 3};
  const int64_t T = 3;
  float *x = c.device(T * K), *y = c.device(T * N);
  fill(x, T * K, 31);
  std::vector<float> wf(size_t(E * N * K));
  fill(wf.data(), wf.size(), 32);
  auto *w = reinterpret_cast<uint16_t *>(c.device(E * N * K / 2 + 1));
  for (size_t i = 0; i < wf.size(); ++i)
    w[i] = toBf16(wf[i]);
  auto *off = reinterpret_cast<int32_t *>(c.device(E + 1));
  std::memcpy(off, offsets.data(), offsets.size() * 4);
  int64_t wShape[3] = {E, N, K}, oShape[1] = {E + 1};
  auto W = makeMemRef<float, 3>(reinterpret_cast<float *>(w), wShape);
  auto O = makeMemRef<int32_t, 1>(off, oShape);
  auto X = view(x, T, K, K), Y = view(y, T, N, N);
  long reads = count("dtoh");
  ASSERT_EQ(groupedLinear(W, X, O, Y, /*bf16Weights=*/true), "");
  EXPECT_EQ(batchedCalls(), 1);
  EXPECT_EQ(count("dtoh"), reads);
  auto widen = [](uint16_t h) {
    uint32_t u = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return double(f);
  };
  for (int64_t e = 0; e < E; ++e)
    for (int64_t t = offsets[size_t(e)]; t < offsets[size_t(e + 1)]; ++t)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += widen(toBf16(x[t * K + k])) * widen(w[(e * N + n) * K + k]);
        EXPECT_NEAR(y[t * N + n], s, 1e-5) << e << "," << t << "," << n;
      }
}

// DSRT_CUDA_GROUPED_GEMM=0 (bring-up) goes expert by expert; another value
// is a one-line error naming the variable.
TEST(CudaGemmGlue, GroupedCallCanBeTurnedOff) {
  Call c;
  Grouped g(c, {0, 2, 2, 5}, 4, 8, 8, 4);
  setenv("DSRT_CUDA_GROUPED_GEMM", "0", 1);
  EXPECT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()), "");
  EXPECT_EQ(groupedCalls(), 0);
  EXPECT_EQ(gemms(), 2);
  g.expectCpu();
  setenv("DSRT_CUDA_GROUPED_GEMM", "no", 1);
  EXPECT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()),
            "DSRT_CUDA_GROUPED_GEMM must be 0 or 1, got 'no'");
  setenv("DSRT_CUDA_GROUPED_GEMM", "1", 1);
  EXPECT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()), "");
  EXPECT_EQ(groupedCalls(), 1);
  unsetenv("DSRT_CUDA_GROUPED_GEMM");
}

// A failing grouped call is the call's error (status named).
TEST(CudaGemmGlue, GroupedCallFailureIsReported) {
  Call c(nullptr, "2");
  Grouped g(c, {0, 1, 3}, 4, 8, 8, 4);
  EXPECT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()),
            "cublasGemmGroupedBatchedEx failed with status 13");
}

// A cuBLAS older than 12.5 (no cublasGemmGroupedBatchedEx) still loads and
// the grouped matmul runs expert by expert, with the same result.
TEST(CudaGemmGlue, GroupedLinearFallsBackWithoutTheEntryPoint) {
  std::string error;
  std::unique_ptr<Cublas> old = loadCublas(DS_FAKE_CUBLAS_OLD, error);
  ASSERT_NE(old, nullptr) << error;
  EXPECT_EQ(old->gemmGroupedBatchedEx, nullptr);
  ASSERT_NE(cublas(error)->gemmGroupedBatchedEx, nullptr);
  Call c;
  // The handle Call made belongs to the other library: released first, or
  // LeakSanitizer (make test-asan) reports it.
  ASSERT_EQ(c.session->cublasApi->destroy(c.session->blas), 0);
  c.session->cublasApi = old.get();
  ASSERT_EQ(old->create(&c.session->blas), 0);
  fakeFn<void (*)()>(DS_FAKE_CUBLAS_OLD, "fakeCublasReset")();
  Grouped g(c, {0, 2, 2, 7, 8, 8}, 6, 10, 13, 9);
  ASSERT_EQ(groupedLinear(g.W(), g.X(), g.O(), g.Y()), "");
  EXPECT_EQ(gemms(DS_FAKE_CUBLAS_OLD), 3);
  EXPECT_EQ(groupedCalls(), 0);
  g.expectCpu();
}

// bf16 weights: cuBLAS has no grouped form with bf16 inputs and an f32
// output (NOT_SUPPORTED); the session remembers and goes expert by expert
// (cublasGemmEx), equal to the rounded operands' products.
TEST(CudaGemmGlue, Bf16GroupedFallsBackWhenNotSupported) {
  Call c;
  const int64_t E = 3, N = 5, K = 12;
  std::vector<int32_t> offsets = {0, 2, 2, 4};
  const int64_t T = 4;
  float *x = c.device(T * K), *y = c.device(T * N);
  fill(x, T * K, 21);
  std::vector<float> wf(size_t(E * N * K));
  fill(wf.data(), wf.size(), 22);
  auto *w = reinterpret_cast<uint16_t *>(c.device(E * N * K / 2 + 1));
  for (size_t i = 0; i < wf.size(); ++i)
    w[i] = toBf16(wf[i]);
  auto *off = reinterpret_cast<int32_t *>(c.device(E + 1));
  std::memcpy(off, offsets.data(), offsets.size() * 4);
  int64_t wShape[3] = {E, N, K}, oShape[1] = {E + 1};
  auto W = makeMemRef<float, 3>(reinterpret_cast<float *>(w), wShape);
  auto O = makeMemRef<int32_t, 1>(off, oShape);
  auto X = view(x, T, K, K), Y = view(y, T, N, N);
  for (int round = 0; round < 2; ++round) {
    ASSERT_EQ(groupedLinear(W, X, O, Y, /*bf16Weights=*/true), "");
    EXPECT_TRUE(c.session->groupedBf16Unsupported);
    EXPECT_EQ(groupedCalls(), 0);
    EXPECT_EQ(gemms(), 2 * (round + 1));
    auto widen = [](uint16_t h) {
      uint32_t u = uint32_t(h) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return double(f);
    };
    for (int64_t e = 0; e < E; ++e)
      for (int64_t t = offsets[size_t(e)]; t < offsets[size_t(e + 1)]; ++t)
        for (int64_t n = 0; n < N; ++n) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k)
            s += widen(toBf16(x[t * K + k])) * widen(w[(e * N + n) * K + k]);
          EXPECT_NEAR(y[t * N + n], s, 1e-5) << e << "," << t << "," << n;
        }
    std::fill(y, y + T * N, 0.0f);
  }
}

// A failed allocation stops the call: later GEMMs, copies, memsets and
// launches reach neither the driver nor cuBLAS, host scalars read back
// are zero, and the error is the first one.
TEST(CudaFailure, FailedAllocationStopsTheCall) {
  Call c("alloc:2");
  void *module = mgpuModuleLoad(nullptr, 0);
  ASSERT_NE(module, nullptr);
  void *fn = mgpuModuleGetFunction(module, "kernel_a");
  void *a = mgpuMemAlloc(64, nullptr, false); // 1st driver allocation
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(mgpuMemAlloc(1 << 20, nullptr, false), nullptr); // 2nd: fails
  EXPECT_EQ(c.ex.error, "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (1048576 bytes "
                        "of activations)");
  long launches = count("launch"), copies = count("copy"),
       memsets = count("memset");
  mgpuLaunchKernel(fn, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  int32_t hostScalar = 12345;
  mgpuMemcpy(&hostScalar, a, sizeof(hostScalar), nullptr);
  mgpuMemset32(a, 7, 4, nullptr);
  EXPECT_EQ(hostScalar, 0);
  // The scratch of ds-plan-activations: no host stand-in any more.
  dsrt_model model;
  model.gpu = c.g;
  MemRef<uint8_t, 1> scratch{};
  _mlir_ciface_dsrt_scratch(&scratch, &model, 4096);
  EXPECT_EQ(scratch.aligned, nullptr);
  float x[4] = {1, 2, 3, 4};
  auto X = view(x, 1, 4, 4), W = view(x, 1, 4, 4), Y = view(x, 1, 1, 1);
  _mlir_ciface_dsrt_linear_f32(&model, &X, &W, &Y);
  EXPECT_EQ(count("launch"), launches);
  EXPECT_EQ(count("copy"), copies);
  EXPECT_EQ(count("memset"), memsets);
  EXPECT_EQ(gemms(), 0);
  EXPECT_EQ(c.ex.error, "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (1048576 bytes "
                        "of activations)");
}

// A failed cuBLAS call is the call's error, and the next GEMM is skipped.
TEST(CudaFailure, FailedGemmIsReportedAndStopsLaterGemms) {
  Call c(nullptr, "1");
  dsrt_model model;
  model.gpu = c.g;
  float *x = c.device(8), *y = c.device(4);
  auto X = view(x, 2, 4, 4), W = view(x, 1, 4, 4), Y = view(y, 2, 1, 1);
  _mlir_ciface_dsrt_linear_f32(&model, &X, &W, &Y);
  EXPECT_EQ(c.ex.error, "cublasSgemm failed with status 13");
  _mlir_ciface_dsrt_linear_f32(&model, &X, &W, &Y);
  EXPECT_EQ(gemms(), 1);
}

// A scalar whose copy back fails reads 0 (a loop bound, never garbage).
TEST(CudaFailure, FailedCopyZeroesTheHostScalar) {
  Call c("copy:1");
  auto *d = reinterpret_cast<int32_t *>(c.device(1));
  *d = 99; // the stand-in's device memory is host memory
  int32_t host = -1;
  mgpuMemcpy(&host, d, sizeof(host), nullptr);
  EXPECT_EQ(host, 0);
  EXPECT_EQ(c.ex.error, "cuMemcpyAsync: CUDA_ERROR_LAUNCH_FAILED");
  EXPECT_EQ(*d, 99); // device memory is never written by the zeroing
}

// Only a copy into host memory waits for the stream (the host reads it
// next); a copy between device buffers is ordered by the stream.
TEST(CudaCopies, OnlyCopiesToTheHostWait) {
  Call c;
  float *a = c.device(4), *b = c.device(4);
  a[0] = 1.5f;
  long syncs = count("sync");
  mgpuMemcpy(b, a, 4 * sizeof(float), nullptr);
  EXPECT_EQ(b[0], 1.5f);
  EXPECT_EQ(count("sync"), syncs);
  float host = 0;
  mgpuMemcpy(&host, a, sizeof(float), nullptr);
  EXPECT_EQ(host, 1.5f);
  EXPECT_EQ(count("sync"), syncs + 1);
  EXPECT_EQ(c.ex.error, "");
}

// DSRT_CUDA_SYNC=1 (set for this binary): the error names the kernel.
TEST(CudaFailure, SyncModeNamesTheKernel) {
  Call c("sync:2");
  void *module = mgpuModuleLoad(nullptr, 0);
  void *a = mgpuModuleGetFunction(module, "first_kernel");
  mgpuLaunchKernel(a, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(c.ex.error, "");
  void *b = mgpuModuleGetFunction(module, "second_kernel");
  mgpuLaunchKernel(b, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(c.ex.error,
            "kernel second_kernel: cuStreamSynchronize: CUDA_ERROR_LAUNCH_FAILED");
  EXPECT_EQ(count("launch"), 2);
}

TEST(CudaFailure, LaunchErrorNamesTheKernel) {
  Call c("launch:1");
  void *module = mgpuModuleLoad(nullptr, 0);
  void *a = mgpuModuleGetFunction(module, "the_kernel");
  mgpuLaunchKernel(a, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(c.ex.error,
            "kernel the_kernel: cuLaunchKernel: CUDA_ERROR_LAUNCH_FAILED");
  mgpuLaunchKernel(a, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  EXPECT_EQ(count("launch"), 1);
}

// The host code asks for the function before every launch with the launch
// site's name constant: the driver is asked once per site, and again after
// the module is unloaded (a handle of a dead module is never reused).
TEST(CudaFunctions, CachedPerLaunchSite) {
  Call c;
  void *module = mgpuModuleLoad(nullptr, 0);
  static const char site[] = "cached_kernel";
  void *f = mgpuModuleGetFunction(module, site);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(mgpuModuleGetFunction(module, site), f);
  EXPECT_EQ(count("getfunction"), 1);
  mgpuModuleUnload(module);
  EXPECT_EQ(count("unload"), 1);
  mgpuModuleGetFunction(module, site);
  EXPECT_EQ(count("getfunction"), 2);
  EXPECT_EQ(c.ex.error, "");
  mgpuModuleGetFunction(module, "missing_kernel");
  EXPECT_EQ(c.ex.error,
            "cuModuleGetFunction: CUDA_ERROR_NOT_FOUND (missing_kernel)");
}

// Frees come last-allocated-first: the memory goes back to the block, so
// the footprint is the peak of live buffers, not their sum.
TEST(CudaArena, FreedMemoryIsReused) {
  Call c;
  void *a = mgpuMemAlloc(1000, nullptr, false);
  void *b = mgpuMemAlloc(3000, nullptr, false);
  mgpuMemFree(b, nullptr);
  mgpuMemFree(a, nullptr);
  EXPECT_EQ(c.session->arena.liveBytes(), 0u);
  // Next call: the block is sized to the peak (1024 + 3072 bytes).
  ASSERT_EQ(c.session->arena.reset(), "");
  long allocs = count("alloc");
  for (int layer = 0; layer < 10; ++layer) {
    void *x = mgpuMemAlloc(1000, nullptr, false);
    void *y = mgpuMemAlloc(3000, nullptr, false);
    EXPECT_TRUE(c.session->arena.contains(x) && c.session->arena.contains(y));
    mgpuMemFree(y, nullptr);
    mgpuMemFree(x, nullptr);
  }
  EXPECT_EQ(count("alloc"), allocs);
  EXPECT_EQ(c.session->arena.peakBytes(), 1024u + 3072u);
  // Out of order: the lower buffer comes back once the upper one does.
  void *p = mgpuMemAlloc(1000, nullptr, false);
  void *q = mgpuMemAlloc(1000, nullptr, false);
  mgpuMemFree(p, nullptr);
  EXPECT_EQ(c.session->arena.liveBytes(), 2048u);
  mgpuMemFree(q, nullptr);
  EXPECT_EQ(c.session->arena.liveBytes(), 0u);
  EXPECT_EQ(mgpuMemAlloc(1000, nullptr, false), p);
}

TEST(CudaSplits, ContextTokensOfTheCall) {
  EXPECT_EQ(dsrt_gpu_context_tokens(4096), 4096); // outside a call
  Call c;
  c.ex.contextTokens = 300;
  EXPECT_EQ(dsrt_gpu_context_tokens(4096), 300);
  c.ex.contextTokens = 5000; // never past the cache
  EXPECT_EQ(dsrt_gpu_context_tokens(4096), 4096);
}

TEST(CudaLibraries, CublasSearchOrder) {
  std::vector<std::string> c =
      cublasCandidates("/x/libcublas.so", "/opt/cuda", {"/sp"});
  ASSERT_GE(c.size(), 6u);
  EXPECT_EQ(c[0], "/x/libcublas.so");
  EXPECT_EQ(c[1], "/opt/cuda/lib64/libcublas.so.13");
  EXPECT_EQ(c[4], "/usr/local/cuda/lib64/libcublas.so.13");
  EXPECT_NE(std::find(c.begin(), c.end(), "/sp/nvidia/cublas/lib/libcublas.so.12"),
            c.end());
  EXPECT_NE(std::find(c.begin(), c.end(), "/sp/nvidia/cu13/lib/libcublas.so.13"),
            c.end());
  EXPECT_EQ(c.back(), "libcublas.so");
}

// A cuBLAS in a pip wheel's folder loads by path, with its cublasLt.
TEST(CudaLibraries, LoadsFromAWheelFolder) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() /
                 ("ds-cublas-" + std::to_string(getpid())) / "nvidia" /
                 "cublas" / "lib";
  fs::create_directories(dir);
  fs::copy_file(DS_FAKE_CUBLAS, dir / "libcublas.so.12",
                fs::copy_options::overwrite_existing);
  std::string error;
  std::unique_ptr<Cublas> c =
      loadCublas((dir / "libcublas.so.12").string(), error);
  EXPECT_NE(c, nullptr) << error;
  EXPECT_NE(c->gemmEx, nullptr);
  EXPECT_EQ(loadCublas(DS_FAKE_CUDA, error), nullptr);
  EXPECT_NE(error.find("lacks cublasCreate_v2"), std::string::npos) << error;
  fs::remove_all(dir.parent_path().parent_path().parent_path());
}

} // namespace
