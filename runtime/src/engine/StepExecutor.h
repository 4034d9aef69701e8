//===- StepExecutor.h - the compiled ragged step over one page pool -*- C++
//-*-===//
//
// Runs a StepBatch through the artifact's @ragged_step entry point: all T
// tokens of the S sequences in one call, so every layer's MoE routes, permutes
// and multiplies the whole batch at once, and attention reads each sequence's
// latent rows through its block table from one shared page pool of
// [layers, pages, 64, width] (sized by the engine's BlockPool). A prefix-cache
// hit needs no work here: the shared pages already hold the latents.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_STEPEXECUTOR_H
#define DSRT_ENGINE_STEPEXECUTOR_H

#include "cpu/ZeroedPages.h"
#include "engine/Executor.h"

#include <cstdlib>
#include <memory>

namespace dsrt::engine {

class StepExecutor : public Executor {
public:
  /// `model` (with @ragged_step) outlives the executor. The pool is allocated
  /// by create(); numPages pages of kPageTokens tokens for every layer.
  StepExecutor(dsrt_model *model, int64_t maxContext, int64_t numPages);
  /// Allocates the page pool; "" or why it cannot be.
  std::string allocate();
  /// True when the artifact has the entry point this executor calls.
  static bool available(const dsrt_model *model);

  int64_t vocabSize() const override { return info.vocab_size; }
  int64_t maxContext() const override { return maxCtx; }
  int64_t cacheBytesPerToken() const override {
    return info.kv_cache_bytes_per_token;
  }
  /// What run() would refuse in `batch` (sizes, pages outside the pool);
  /// "" when it runs.
  std::string check(const StepBatch &batch) const;
  dsrt_status run(const StepBatch &batch, float *logits) override;
  void addStats(dsrt_engine_stats &stats) const override {
    stats.step_calls = calls;
    stats.step_segments = segments;
    stats.step_naive_segments = naiveSegments;
    stats.step_tokens = tokens;
    stats.step_naive_tokens = naiveTokens;
    stats.step_head_matmul_rows = headMatmulRows;
  }

private:
  int64_t calls = 0, segments = 0, naiveSegments = 0;
  int64_t tokens = 0, naiveTokens = 0, headMatmulRows = 0;
  dsrt_model *model;
  dsrt_model_info info;
  int64_t maxCtx, numPages;
  /// [layers, numPages, kPageTokens, cache_width] of cache_dtype, zero
  /// until written (ZeroedPages.h).
  cpu::ZeroedPages pool;
  std::vector<int32_t> tables; // block tables with unused entries as page 0
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_STEPEXECUTOR_H
