//===- CudaBackendTest.cpp - the CUDA backend without a GPU ---------------===//
//
// The paths a machine without a GPU takes (no driver, no device, an older
// GPU) and the activation arena, against a stand-in driver
// (test/tools/fake-cuda) whose "device memory" is host memory.
//
//===----------------------------------------------------------------------===//
#include "cuda/Convert.h"
#include "cuda/Device.h"
#include "dsrt/dsrt.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <unistd.h>

using namespace dsrt::cuda;

namespace {

struct FakeDevice {
  explicit FakeDevice(const char *cc) { setenv("FAKE_CUDA_CC", cc, 1); }
  ~FakeDevice() { unsetenv("FAKE_CUDA_CC"); }
};

TEST(CudaDriver, MissingDriverIsAnErrorLine) {
  std::string error;
  EXPECT_EQ(loadGpu("/nonexistent/libcuda.so.1", error), nullptr);
  EXPECT_EQ(error.rfind("no CUDA driver: cannot load /nonexistent/libcuda.so.1",
                        0),
            0u)
      << error;
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST(CudaDriver, NoDeviceIsAnErrorLine) {
  unsetenv("FAKE_CUDA_CC");
  std::string error;
  EXPECT_EQ(loadGpu(DS_FAKE_CUDA, error), nullptr);
  EXPECT_EQ(error, "no CUDA device: cuInit: CUDA_ERROR_NO_DEVICE");
}

TEST(CudaDriver, DeviceFacts) {
  FakeDevice dev("90");
  std::string error;
  std::unique_ptr<Gpu> g = loadGpu(DS_FAKE_CUDA, error);
  ASSERT_NE(g, nullptr) << error;
  EXPECT_EQ(g->name, "Fake GPU");
  EXPECT_EQ(g->ccMajor, 9);
  EXPECT_EQ(g->ccMinor, 0);
  EXPECT_EQ(g->describe("cuModuleLoadData", 209),
            "cuModuleLoadData: CUDA_ERROR_NO_BINARY_FOR_GPU");
}

// The arena serves a call's buffers from one block; the first call that
// outgrows it falls back to the driver, the next call regrows the block to
// that peak, and from then on a call of the same shape allocates nothing.
TEST(CudaArena, SteadyStateMakesNoDriverAllocation) {
  FakeDevice dev("90");
  std::string error;
  std::unique_ptr<Gpu> g = loadGpu(DS_FAKE_CUDA, error);
  ASSERT_NE(g, nullptr) << error;
  Arena arena(*g);
  auto step = [&] {
    EXPECT_EQ(arena.reset(), "");
    std::set<uintptr_t> seen;
    for (size_t bytes : {100, 4096, 1, 70000}) {
      void *p = arena.allocate(bytes, error);
      EXPECT_NE(p, nullptr) << error;
      EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
      EXPECT_TRUE(seen.insert(reinterpret_cast<uintptr_t>(p)).second);
      std::memset(p, 0xab, bytes); // the fake's memory is host memory
    }
  };
  step();
  EXPECT_EQ(arena.driverAllocations, 4); // first call: all overflow
  step();
  EXPECT_EQ(arena.driverAllocations, 5); // regrown once to the peak
  for (int i = 0; i < 10; ++i)
    step();
  EXPECT_EQ(arena.driverAllocations, 5); // steady state: none
  EXPECT_EQ(arena.peakBytes(), size_t(256 + 4096 + 256 + 70144));
}

TEST(CudaArena, BuffersDoNotOverlap) {
  FakeDevice dev("80");
  std::string error;
  std::unique_ptr<Gpu> g = loadGpu(DS_FAKE_CUDA, error);
  ASSERT_NE(g, nullptr) << error;
  Arena arena(*g);
  for (int round = 0; round < 3; ++round) {
    ASSERT_EQ(arena.reset(), "");
    auto *a = static_cast<uint8_t *>(arena.allocate(1000, error));
    auto *b = static_cast<uint8_t *>(arena.allocate(1000, error));
    ASSERT_TRUE(a && b);
    EXPECT_TRUE(a + 1000 <= b || b + 1000 <= a);
  }
}

// The runtime's one hand-written kernel (f32 -> bf16 before cublasGemmEx)
// must assemble for the architectures the compiler targets.
TEST(CudaConvert, PtxAssemblesForSm80AndSm90) {
  const char *home = std::getenv("CUDA_HOME");
  std::string ptxas = std::string(home && *home ? home : "/usr/local/cuda") +
                      "/bin/ptxas";
  if (access(ptxas.c_str(), X_OK) != 0)
    GTEST_SKIP() << "no ptxas at " << ptxas;
  char path[] = "/tmp/ds-convert-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string ptx = conversionPtx();
  ASSERT_EQ(write(fd, ptx.data(), ptx.size()), ssize_t(ptx.size()));
  close(fd);
  for (const char *arch : {"sm_80", "sm_90"}) {
    std::string cmd = ptxas + " --gpu-name " + arch + " " + path +
                      " -o /dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  unlink(path);
  EXPECT_NE(ptx.find("cvt.rn.bf16.f32"), std::string::npos);
}

} // namespace
