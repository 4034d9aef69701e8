//===- GpuStepExecutorTest.cpp - the GPU step executor's host side --------===//
//
// GpuStepExecutor (runtime/src/engine/GpuStepExecutor.h) against the
// stand-in driver and cuBLAS of test/tools/fake-cuda, whose "device
// memory" is host memory. The model's @ragged_step is a stand-in too: like
// generated code it launches a kernel (which the stand-in counts and can
// fail) and then does its kernels' work on the device buffers it was
// given: it writes each token's id into its row of the page pool through
// the block table, and gives each logits row the sum of the ids cached at
// the token's earlier positions (read back through the block table), so a
// wrong upload, table, pool or row order shows in the logits. Its own
// binary: the process-wide driver is chosen from the environment before
// the first call.
//
//===----------------------------------------------------------------------===//
#include "engine/GpuStepExecutor.h"
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/MemRef.h"
#include "cuda/Device.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <dlfcn.h>

using namespace dsrt;
using namespace dsrt::engine;

extern "C" {
void *mgpuModuleLoad(void *data, size_t size);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gx, intptr_t gy, intptr_t gz,
                      intptr_t bx, intptr_t by, intptr_t bz, int32_t smem,
                      void *stream, void **params, void **extra, size_t n);
}

namespace {

const bool environmentSet = [] {
  setenv("DSRT_CUDA_DRIVER", DS_FAKE_CUDA, 1);
  setenv("DSRT_CUBLAS", DS_FAKE_CUBLAS, 1);
  setenv("FAKE_CUDA_CC", "90", 1);
  setenv("FAKE_CUDA_LOAD", "1", 1);
  // The stand-in step writes device memory from the host: a graph capture
  // would record nothing of it.
  setenv("DSRT_CUDA_GRAPHS", "0", 1);
  unsetenv("DSRT_CUDA_SYNC");
  return true;
}();

template <typename F> F fakeFn(const char *name) {
  std::string error;
  (void)cuda::gpu(error); // loads the stand-in driver once
  void *h = dlopen(DS_FAKE_CUDA, RTLD_NOW | RTLD_NOLOAD);
  return h ? reinterpret_cast<F>(dlsym(h, name)) : nullptr;
}
long count(const char *kind) {
  return fakeFn<long (*)(const char *)>("fakeCudaCount")(kind);
}

constexpr int64_t kVocab = 8, kLayers = 2, kWidth = 4, kPages = 6;

void *kernel = nullptr;
int64_t stepCalls = 0;

/// The stand-in @ragged_step (see the file comment).
void fakeStep(void *, MemRef<int32_t, 1> *tok, MemRef<int32_t, 1> *pos,
              MemRef<float, 4> *cache, MemRef<int32_t, 1> *qs,
              MemRef<int32_t, 1> *ctx, MemRef<int32_t, 2> *bt,
              MemRef<int32_t, 1> *rows, MemRef<float, 2> *logits) {
  ++stepCalls;
  mgpuLaunchKernel(kernel, 1, 1, 1, 32, 1, 1, 0, nullptr, nullptr, nullptr, 0);
  // Generated code skips its work after a failure (cuda::Execution).
  if (cuda::Execution::current()->failed())
    return;
  int64_t T = tok->sizes[0], S = ctx->sizes[0], P = bt->sizes[1];
  EXPECT_EQ(qs->sizes[0], S + 1);
  EXPECT_EQ(cache->sizes[0], kLayers);
  EXPECT_EQ(cache->sizes[1], kPages);
  EXPECT_EQ(cache->sizes[2], kPageTokens);
  EXPECT_EQ(cache->sizes[3], kWidth);
  auto seqOf = [&](int64_t t) {
    int64_t s = 0;
    while (s + 1 < S && qs->data()[s + 1] <= t)
      ++s;
    return s;
  };
  auto row = [&](int64_t s, int64_t p) {
    int64_t page = bt->data()[s * P + p / kPageTokens];
    return cache->data() +
           ((1 * kPages + page) * kPageTokens + p % kPageTokens) * kWidth;
  };
  for (int64_t t = 0; t < T; ++t)
    row(seqOf(t), pos->data()[t])[0] = float(tok->data()[t]);
  for (int64_t r = 0; r < rows->sizes[0]; ++r) {
    int64_t t = rows->data()[r], s = seqOf(t);
    float sum = 0;
    for (int64_t p = 0; p < pos->data()[t]; ++p)
      sum += row(s, p)[0];
    for (int64_t v = 0; v < kVocab; ++v)
      logits->data()[r * kVocab + v] = sum + float(v);
  }
}

/// A model on the stand-in device whose @ragged_step is fakeStep.
struct FakeModel {
  FakeModel() {
    std::string error;
    model.gpu = cuda::gpu(error);
    EXPECT_NE(model.gpu, nullptr) << error;
    model.manifest.vocabSize = kVocab;
    model.manifest.numLayers = kLayers;
    model.manifest.cacheWidth = kWidth;
    model.manifest.cacheDtype = "f32";
    model.step = &fakeStep;
    if (!kernel)
      kernel = mgpuModuleGetFunction(mgpuModuleLoad(nullptr, 0), "step");
  }
  dsrt_model model;
};

/// Two sequences: 0 prefills 70 tokens over pages 3 and 1 (crossing a
/// page), 1 decodes its 6th token on page 5; logits for each one's last.
StepBatch firstBatch() {
  StepBatch b;
  for (int32_t i = 0; i < 70; ++i) {
    b.tokens.push_back(i % 5 + 1);
    b.positions.push_back(i);
  }
  b.tokens.push_back(7);
  b.positions.push_back(5);
  b.seqIds = {10, 11};
  b.queryStart = {0, 70, 71};
  b.contextLens = {70, 6};
  b.maxPagesPerSeq = 2;
  b.blockTables = {3, 1, 5, -1};
  b.logitsRows = {69, 70};
  return b;
}

/// Sequence 0 decodes at position 70 (page 1).
StepBatch secondBatch() {
  StepBatch b;
  b.tokens = {2};
  b.positions = {70};
  b.seqIds = {10};
  b.queryStart = {0, 1};
  b.contextLens = {71};
  b.maxPagesPerSeq = 2;
  b.blockTables = {3, 1};
  b.logitsRows = {0};
  return b;
}

float idSum(int32_t n) { // ids of sequence 0's positions [0, n)
  float s = 0;
  for (int32_t i = 0; i < n; ++i)
    s += float(i % 5 + 1);
  return s;
}

struct GpuStep : ::testing::Test {
  void SetUp() override {
    unsetenv("FAKE_CUDA_FAIL");
    fakeFn<void (*)()>("fakeCudaReset")();
  }
  void TearDown() override { unsetenv("FAKE_CUDA_FAIL"); }
};

TEST_F(GpuStep, OneUploadPerStepAndTheRowsAsked) {
  FakeModel m;
  ASSERT_TRUE(GpuStepExecutor::available(&m.model));
  GpuStepExecutor ex(&m.model, 256, kPages);
  ASSERT_EQ(ex.allocate(), "");
  std::vector<float> logits(2 * kVocab, -1.0f);
  long copies = count("copy"), dtoh = count("dtoh");
  ASSERT_EQ(ex.run(firstBatch(), logits.data()), DSRT_OK) << dsrt_last_error();
  // The whole metadata in one upload, the two logits rows in one read.
  EXPECT_EQ(ex.lastUploads(), 1);
  EXPECT_EQ(count("copy") - copies, 2);
  EXPECT_EQ(count("dtoh") - dtoh, 1);
  for (int64_t v = 0; v < kVocab; ++v) {
    EXPECT_EQ(logits[size_t(v)], idSum(69) + float(v));
    // Sequence 1's first 5 rows were never written: the pool starts zeroed.
    EXPECT_EQ(logits[size_t(kVocab + v)], float(v));
  }
  // The pool persists: the decode reads the 70 rows the prefill cached.
  std::vector<float> one(kVocab, -1.0f);
  ASSERT_EQ(ex.run(secondBatch(), one.data()), DSRT_OK) << dsrt_last_error();
  EXPECT_EQ(one[3], idSum(70) + 3.0f);
  dsrt_engine_stats stats{};
  ex.addStats(stats);
  EXPECT_EQ(stats.step_calls, 2);
}

TEST_F(GpuStep, AFailedLaunchIsReportedAndLeavesTheLogits) {
  FakeModel m;
  GpuStepExecutor ex(&m.model, 256, kPages);
  ASSERT_EQ(ex.allocate(), "");
  fakeFn<void (*)()>("fakeCudaReset")();
  setenv("FAKE_CUDA_FAIL", "launch:1", 1);
  std::vector<float> logits(2 * kVocab, -1.0f);
  long dtoh = count("dtoh");
  EXPECT_EQ(ex.run(firstBatch(), logits.data()), DSRT_ERROR_DEVICE);
  EXPECT_NE(std::string(dsrt_last_error()).find("cuLaunchKernel"),
            std::string::npos)
      << dsrt_last_error();
  EXPECT_EQ(count("dtoh") - dtoh, 0);
  for (float v : logits)
    EXPECT_EQ(v, -1.0f);
  // The executor serves the next step.
  unsetenv("FAKE_CUDA_FAIL");
  ASSERT_EQ(ex.run(firstBatch(), logits.data()), DSRT_OK) << dsrt_last_error();
  EXPECT_EQ(logits[0], idSum(69));
  dsrt_engine_stats stats{};
  ex.addStats(stats);
  EXPECT_EQ(stats.step_calls, 1);
}

TEST_F(GpuStep, AnErrorAtTheEndOfTheStepLeavesTheLogits) {
  // The launch succeeds, the stream reports the failure when drained (as
  // a kernel fault does): the logits read back are not handed over.
  FakeModel m;
  GpuStepExecutor ex(&m.model, 256, kPages);
  ASSERT_EQ(ex.allocate(), "");
  fakeFn<void (*)()>("fakeCudaReset")();
  setenv("FAKE_CUDA_FAIL", "sync:1", 1);
  std::vector<float> logits(2 * kVocab, -1.0f);
  EXPECT_EQ(ex.run(firstBatch(), logits.data()), DSRT_ERROR_DEVICE);
  EXPECT_NE(std::string(dsrt_last_error()).find("running the step"),
            std::string::npos)
      << dsrt_last_error();
  for (float v : logits)
    EXPECT_EQ(v, -1.0f);
}

TEST_F(GpuStep, AFailedUploadRunsNothing) {
  FakeModel m;
  GpuStepExecutor ex(&m.model, 256, kPages);
  ASSERT_EQ(ex.allocate(), "");
  fakeFn<void (*)()>("fakeCudaReset")();
  setenv("FAKE_CUDA_FAIL", "copy:1", 1);
  int64_t before = stepCalls;
  std::vector<float> logits(2 * kVocab, -1.0f);
  EXPECT_EQ(ex.run(firstBatch(), logits.data()), DSRT_ERROR_DEVICE);
  EXPECT_NE(std::string(dsrt_last_error()).find("uploading the step metadata"),
            std::string::npos)
      << dsrt_last_error();
  EXPECT_EQ(stepCalls, before);
  EXPECT_EQ(count("launch"), 0);
  for (float v : logits)
    EXPECT_EQ(v, -1.0f);
}

TEST_F(GpuStep, BadBatchesAreRefusedBeforeTheDevice) {
  FakeModel m;
  GpuStepExecutor ex(&m.model, 256, kPages);
  std::vector<float> logits(2 * kVocab);
  // Not allocated yet.
  EXPECT_EQ(ex.run(firstBatch(), logits.data()), DSRT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(dsrt_last_error()).find("not allocated"),
            std::string::npos);
  ASSERT_EQ(ex.allocate(), "");
  long copies = count("copy");
  StepBatch b = firstBatch();
  b.blockTables[1] = kPages; // sequence 10's second page
  EXPECT_EQ(ex.run(b, logits.data()), DSRT_ERROR_ARGUMENT);
  EXPECT_NE(std::string(dsrt_last_error())
                .find("sequence 10 has page 6 for position 64, outside the "
                      "pool of 6"),
            std::string::npos)
      << dsrt_last_error();
  b = firstBatch();
  b.tokens[3] = int32_t(kVocab);
  EXPECT_EQ(ex.run(b, logits.data()), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(count("copy"), copies);
}

TEST_F(GpuStep, APoolThatDoesNotFitIsAnErrorLine) {
  FakeModel m;
  GpuStepExecutor ex(&m.model, 256, kPages);
  fakeFn<void (*)()>("fakeCudaReset")();
  setenv("FAKE_CUDA_FAIL", "alloc:1", 1);
  std::string error = ex.allocate();
  EXPECT_NE(error.find("the page pool of 6 pages does not fit on"),
            std::string::npos)
      << error;
  EXPECT_EQ(GpuStepExecutor(&m.model, 256, 0).allocate(),
            "page pool of 0 pages is out of range");
}

TEST_F(GpuStep, OnlyCudaModelsWithTheStep) {
  FakeModel m;
  m.model.manifest.cacheDtype = "fp8";
  EXPECT_FALSE(GpuStepExecutor::available(&m.model));
  m.model.manifest.cacheDtype = "bf16";
  EXPECT_TRUE(GpuStepExecutor::available(&m.model));
  m.model.step = nullptr;
  EXPECT_FALSE(GpuStepExecutor::available(&m.model));
  dsrt_model cpu;
  cpu.step = &fakeStep;
  EXPECT_FALSE(GpuStepExecutor::available(&cpu));
}

} // namespace
