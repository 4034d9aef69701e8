//===- CudaGraphTest.cpp - decode steps as CUDA graphs, against stand-ins -===//
//
// runStep (runtime/src/cuda/Graph.h) over the stand-in driver and cuBLAS
// of test/tools/fake-cuda, which record the work of a capture and run it
// at each graph launch. A step here is what a decode step is made of on
// the runtime's side (bf16 staging kernel, cublasGemmEx, the per-row
// expert GEMM with its pointer kernel), with inputs that change every step
// and outputs that alternate between two buffers, so a replay that kept
// the first capture's arguments, or ran at capture time, gives wrong rows.
// Its own binary: unlike CudaGlueTest it runs without DSRT_CUDA_SYNC=1
// (which turns graphs off), and the driver is chosen once per process.
//
//===----------------------------------------------------------------------===//
#include "cpu/Gemm.h"
#include "cpu/MemRef.h"
#include "cuda/Device.h"
#include "cuda/Gemm.h"
#include "cuda/Graph.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <random>

using namespace dsrt;
using namespace dsrt::cuda;

namespace {

const bool environmentSet = [] {
  setenv("DSRT_CUDA_DRIVER", DS_FAKE_CUDA, 1);
  setenv("DSRT_CUBLAS", DS_FAKE_CUBLAS, 1);
  setenv("FAKE_CUDA_CC", "90", 1);
  setenv("FAKE_CUDA_LOAD", "1", 1);
  unsetenv("DSRT_CUDA_SYNC");
  unsetenv("DSRT_CUDA_GRAPHS");
  return true;
}();

long count(const char *kind) {
  void *h = dlopen(DS_FAKE_CUDA, RTLD_NOW | RTLD_NOLOAD);
  auto fn = reinterpret_cast<long (*)(const char *)>(dlsym(h, "fakeCudaCount"));
  return fn(kind);
}

MemRef<float, 2> view(float *p, int64_t rows, int64_t cols) {
  int64_t shape[2] = {rows, cols};
  return makeMemRef<float, 2>(p, shape);
}

/// A session on the stand-in device (of `g`, possibly a copy without the
/// graph entry points) and device buffers for one MoE-like step.
struct Step {
  static constexpr int64_t E = 6, T = 3, K = 16, N = 5;
  explicit Step(const Gpu &g) : g(g), s(g) {
    std::string error;
    s.cublasApi = cublas(error);
    EXPECT_NE(s.cublasApi, nullptr) << error;
    EXPECT_EQ(g.drv.cuStreamCreate(&s.stream, 0), CUDA_SUCCESS);
    EXPECT_EQ(s.cublasApi->create(&s.blas), 0);
    EXPECT_EQ(s.cublasApi->setStream(s.blas, s.stream), 0);
    for (DeviceBuffer *b : {&x, &w, &dense, &ya, &yb, &za, &zb, &off})
      EXPECT_EQ(b->allocate(g, 4096), "");
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> d(-1, 1);
    for (int64_t i = 0; i < E * N * K; ++i)
      w.as<float>()[i] = d(rng);
    for (int64_t i = 0; i < N * K; ++i)
      dense.as<float>()[i] = d(rng);
    // Rows 0 and 1 on expert 1, row 2 on expert 4.
    int32_t offsets[E + 1] = {0, 0, 2, 2, 2, 2, 3};
    std::memcpy(off.as<int32_t>(), offsets, sizeof(offsets));
  }
  /// Step `i`: new activations (copied before the step, as the runtime
  /// uploads tokens), outputs in buffer set i % 2.
  void run(int i, int64_t rows = T) {
    std::vector<float> host(size_t(rows * K));
    for (size_t j = 0; j < host.size(); ++j)
      host[j] = float((j * 7 + size_t(i) * 13) % 17) / 8.0f - 1.0f;
    ASSERT_EQ(g.drv.cuMemcpyHtoDAsync(x.ptr(), host.data(),
                                      host.size() * 4, s.stream),
              CUDA_SUCCESS);
    float *y = (i % 2 ? yb : ya).as<float>(), *z = (i % 2 ? zb : za).as<float>();
    int64_t wShape[3] = {E, N, K}, oShape[1] = {E + 1};
    auto W = makeMemRef<float, 3>(w.as<float>(), wShape);
    auto O = makeMemRef<int32_t, 1>(off.as<int32_t>(), oShape);
    auto X = view(x.as<float>(), rows, K), Y = view(y, rows, N),
         Z = view(z, rows, N), D = view(dense.as<float>(), N, K);
    Execution ex;
    ex.session = &s;
    Execution::current() = &ex;
    runStep(s, ex, this, rows, [&] {
      std::string e = groupedLinear(W, X, O, Y);
      if (e.empty())
        e = linear(X, D, Z);
      if (!e.empty())
        ex.fail(e);
    });
    Execution::current() = nullptr;
    ASSERT_EQ(ex.error, "");
    ASSERT_EQ(g.drv.cuStreamSynchronize(s.stream), CUDA_SUCCESS);
    // What the step must have written, from the CPU GEMMs.
    std::vector<float> wantY(size_t(rows * N)), wantZ(size_t(rows * N));
    auto HX = view(host.data(), rows, K);
    ASSERT_EQ(cpu::groupedLinear(HX, W, O, view(wantY.data(), rows, N)), "");
    ASSERT_EQ(cpu::linear(HX, D, view(wantZ.data(), rows, N)), "");
    for (int64_t j = 0; j < rows * N; ++j) {
      EXPECT_NEAR(y[j], wantY[size_t(j)], 1e-5) << "step " << i << " y " << j;
      EXPECT_NEAR(z[j], wantZ[size_t(j)], 1e-5) << "step " << i << " z " << j;
    }
  }
  const Gpu &g;
  DeviceSession s;
  DeviceBuffer x, w, dense, ya, yb, za, zb, off;
};

const Gpu &theGpu() {
  std::string error;
  const Gpu *g = gpu(error);
  EXPECT_NE(g, nullptr) << error;
  return *g;
}

// The first step of a shape runs plainly; every later one is captured and
// launched as a graph, its changed arguments (other output buffers) taken
// by the update, its new inputs read at the launch.
TEST(CudaGraphs, StepsReplayWithTheirOwnArguments) {
  Step st(theGpu());
  long launches = count("graphlaunch");
  for (int i = 0; i < 5; ++i)
    st.run(i);
  EXPECT_EQ(st.s.graphLaunches, 4);
  EXPECT_EQ(st.s.graphFallbacks, 0);
  EXPECT_EQ(count("graphlaunch"), launches + 4);
}

// More rows than experts: the grouped GEMM reads the offsets back (a host
// wait), which a capture cannot answer; the step runs again plainly with
// the same result, and that shape is not captured again.
TEST(CudaGraphs, HostWaitFallsBackToPlainLaunches) {
  Step st(theGpu());
  for (int i = 0; i < 4; ++i)
    st.run(i); // decode-sized (rows <= experts): captured
  int64_t captured = st.s.graphLaunches;
  EXPECT_EQ(captured, 3);
  // Rows > experts: offsets [0..7) must cover them; widen the last expert.
  int32_t offsets[Step::E + 1] = {0, 0, 2, 2, 2, 2, 7};
  std::memcpy(st.off.as<int32_t>(), offsets, sizeof(offsets));
  for (int i = 0; i < 3; ++i)
    st.run(i, 7);
  EXPECT_EQ(st.s.graphLaunches, captured);
  EXPECT_EQ(st.s.graphFallbacks, 1);
  EXPECT_NE(st.s.graphNote.find("reading the expert offsets waits on the host"),
            std::string::npos)
      << st.s.graphNote;
}

// A driver without the graph entry points (one of them missing is enough):
// plain launches, same results.
TEST(CudaGraphs, MissingEntryPointMeansPlainLaunches) {
  Gpu old = theGpu();
  old.drv.cuGraphExecUpdate = nullptr;
  EXPECT_FALSE(old.drv.hasGraphs());
  EXPECT_TRUE(theGpu().drv.hasGraphs());
  Step st(old);
  for (int i = 0; i < 4; ++i)
    st.run(i);
  EXPECT_EQ(st.s.graphLaunches, 0);
}

// DSRT_CUDA_GRAPHS=0 turns them off; another value is a one-line error.
TEST(CudaGraphs, EnvironmentSwitch) {
  Step st(theGpu());
  setenv("DSRT_CUDA_GRAPHS", "0", 1);
  for (int i = 0; i < 3; ++i)
    st.run(i);
  EXPECT_EQ(st.s.graphLaunches, 0);
  setenv("DSRT_CUDA_GRAPHS", "sometimes", 1);
  Execution ex;
  ex.session = &st.s;
  bool ran = false;
  runStep(st.s, ex, &st, 3, [&] { ran = true; });
  EXPECT_FALSE(ran);
  EXPECT_EQ(ex.error, "DSRT_CUDA_GRAPHS must be 0 or 1, got 'sometimes'");
  unsetenv("DSRT_CUDA_GRAPHS");
}

} // namespace
