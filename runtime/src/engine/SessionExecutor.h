//===- SessionExecutor.h - today's artifacts behind the step interface -*-===//
//
// Runs a StepBatch with the artifact's single-sequence entry points: one
// dsrt_session (a contiguous latent cache of max_model_len tokens) per
// sequence the engine is running, fed that sequence's new tokens through
// dsrt_session_prefill (a prefill chunk) or the decode entry (one token).
// The logits are those of a solo run fed the same chunks: a request run
// alone through dsrt_generate gives the same rows, bit for bit when the
// prompt is not chunked, within the prefill/decode MLA forms' rounding
// (~1e-6) when it is.
//
// What this is not, said plainly: the block table is accounting only.
// Attention reads the session's contiguous cache, not the pages; the
// sequences of a step run one after another, each through its own MoE
// pass, not as one batch through the grouped GEMMs. A prefix-cache hit is
// recomputed: the session of a request that starts past position 0 reads
// the cached prefix's token ids back through its pages and prefills them
// (logits dropped) before its new tokens, so the hit saves the engine's
// token budget but not compute. Both go away with the compiled ragged step
// over a paged cache, which takes the same StepBatch.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_SESSIONEXECUTOR_H
#define DSRT_ENGINE_SESSIONEXECUTOR_H

#include "engine/Executor.h"

#include <memory>
#include <unordered_map>

namespace dsrt::engine {

class SessionExecutor : public Executor {
public:
  /// `model` outlives the executor; sessions of `maxContext` tokens.
  SessionExecutor(dsrt_model *model, int64_t maxContext, int64_t numPages);
  int64_t vocabSize() const override { return info.vocab_size; }
  int64_t maxContext() const override { return maxCtx; }
  int64_t cacheBytesPerToken() const override {
    return info.kv_cache_bytes_per_token;
  }
  dsrt_status run(const StepBatch &batch, float *logits) override;
  void release(int64_t seqId) override { sessions.erase(seqId); }

  /// Prefix tokens recomputed for prefix-cache hits (the hit's real cost
  /// with this executor).
  int64_t recomputedTokens = 0;

private:
  using SessionPtr = std::unique_ptr<dsrt_session, void (*)(dsrt_session *)>;
  dsrt_status runSequence(const StepBatch &b, int64_t s, float *logits,
                          size_t &nextRow);

  dsrt_model *model;
  dsrt_model_info info;
  int64_t maxCtx;
  PageTokens pages;
  std::unordered_map<int64_t, SessionPtr> sessions;
  std::vector<float> scratch;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_SESSIONEXECUTOR_H
