//===- GpuStepExecutor.h - the compiled ragged step on the GPU --*- C++ -*-===//
//
// StepExecutor's GPU twin: one @ragged_step call per engine step over one
// device page pool [layers, pages, 64, width] (zeroed once), with the
// step's metadata (tokens, positions, query_start, context_lens, block
// tables, logits rows) packed on the host and uploaded in one copy, and
// only the logits rows copied back. The call runs through cuda::runStep,
// so a shape seen before is captured into a CUDA graph when the driver and
// the step allow it (DSRT_CUDA_GRAPHS=0 turns that off).
//
// A failed step leaves the caller's logits untouched: they are copied back
// into the executor's own host buffer and handed over only after the
// stream finished without an error.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_GPUSTEPEXECUTOR_H
#define DSRT_ENGINE_GPUSTEPEXECUTOR_H

#include "engine/Executor.h"

#include <memory>
#include <vector>

namespace dsrt::cuda {
struct DeviceSession;
}

namespace dsrt::engine {

class GpuStepExecutor : public Executor {
public:
  /// `model` (loaded for cuda, with @ragged_step) outlives the executor.
  GpuStepExecutor(dsrt_model *model, int64_t maxContext, int64_t numPages);
  ~GpuStepExecutor() override;
  /// Stream, cuBLAS and the zeroed page pool on the device; "" or why not.
  std::string allocate();
  /// A cuda model whose artifact has @ragged_step over an f32 or bf16 cache.
  static bool available(const dsrt_model *model);

  int64_t vocabSize() const override { return info.vocab_size; }
  int64_t maxContext() const override { return maxCtx; }
  int64_t cacheBytesPerToken() const override {
    return info.kv_cache_bytes_per_token;
  }
  dsrt_status run(const StepBatch &batch, float *logits) override;
  void addStats(dsrt_engine_stats &stats) const override {
    stats.step_calls = calls;
  }
  /// Host-to-device copies the last successful step made (tests: one).
  int64_t lastUploads() const { return uploads; }

private:
  std::string runOnDevice(const StepBatch &batch, float *logits);
  int64_t calls = 0, uploads = 0;
  dsrt_model *model;
  dsrt_model_info info;
  int64_t maxCtx, numPages;
  std::unique_ptr<cuda::DeviceSession> dev;
  std::vector<int32_t> meta;     // the packed metadata of one step
  std::vector<float> hostLogits; // logits rows before they are handed over
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_GPUSTEPEXECUTOR_H
