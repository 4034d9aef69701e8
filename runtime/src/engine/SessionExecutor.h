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
// pass, not as one batch through the grouped GEMMs. A prefix-cache hit
// (a request starting past position 0) fills its new session's context in
// one of two ways: from a live session holding the same leading pages (on
// the CPU, the cache rows are copied: the pages are shared, so the content
// is the same), or else by recomputing: the prefix's token ids come back
// through the pages and are prefilled (logits dropped), which saves the
// engine's token budget but not compute. Both go away with the compiled
// ragged step over a paged cache, which takes the same StepBatch.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_SESSIONEXECUTOR_H
#define DSRT_ENGINE_SESSIONEXECUTOR_H

#include "engine/Executor.h"

#include <memory>
#include <unordered_map>

namespace dsrt::engine {

/// Speculative decoding (`drafting`, an artifact with an MTP module, CPU):
/// every chunk runs through @prefill_hidden and the sequence keeps the
/// final hidden states of the positions its MTP cache has not consumed
/// yet. A draft question feeds those (h_i, t_{i+1}) pairs to @draft, whose
/// last row drafts the token after the sampled one; a further draft reuses
/// the module autoregressively at the next position, fed the module's own
/// output state at the previous draft and the token drafted from it (as
/// vLLM's and SGLang's MTP proposers chain), its cache entries dropped at
/// the next question. truncate() moves the session back; kept rows stay.
/// A prefix hit copies a donor's main and MTP cache rows before the last
/// prefix token and runs that token again for its hidden state (from a
/// donor that has not drafted past the prefix: recomputed).
/// Requests that never draft (forced, return_logits) keep their rows until
/// they finish: hidden_size x 4 bytes per token.
class SessionExecutor : public Executor {
public:
  /// `model` outlives the executor; sessions of `maxContext` tokens.
  SessionExecutor(dsrt_model *model, int64_t maxContext, int64_t numPages,
                  bool drafting = false);
  int64_t vocabSize() const override { return info.vocab_size; }
  int64_t maxContext() const override { return maxCtx; }
  int64_t cacheBytesPerToken() const override {
    return info.kv_cache_bytes_per_token;
  }
  dsrt_status run(const StepBatch &batch, float *logits) override;
  void release(int64_t seqId) override { sessions.erase(seqId); }
  bool canDraft() const override { return drafting; }
  dsrt_status draft(const std::vector<DraftQuery> &queries,
                    float *logits) override;
  void truncate(int64_t seqId, int64_t len) override;
  void addStats(dsrt_engine_stats &stats) const override {
    stats.prefix_copied_tokens = copiedTokens;
    stats.prefix_recomputed_tokens = recomputedTokens;
  }

private:
  using SessionPtr = std::unique_ptr<dsrt_session, void (*)(dsrt_session *)>;
  struct Sequence {
    SessionPtr session;
    /// Its pages as of its last step (they only grow while it runs).
    std::vector<int32_t> pages;
    /// Drafting: final hidden states of positions [hiddenStart, position),
    /// and the MTP cache positions computed from verified pairs.
    std::vector<float> hidden;
    int64_t hiddenStart = 0, mtpTrue = 0;
    /// The MTP module's output state at its last draft position (what the
    /// next chained draft is fed).
    std::vector<float> chained;
  };
  /// Runs `n` tokens on `seq` (with hidden states when drafting).
  dsrt_status feed(Sequence &seq, const int32_t *tokens, int64_t n,
                   float *logits);
  dsrt_status draftOne(const DraftQuery &q, float *row);
  dsrt_status runSequence(const StepBatch &b, int64_t s, float *logits,
                          size_t &nextRow);
  /// Fills `seq`'s context [0, start) for a prefix-cache hit.
  dsrt_status fillPrefix(const StepBatch &b, int64_t s, Sequence &seq,
                         int64_t start);
  /// A live CPU sequence whose first `start` tokens sit in the same pages
  /// (when drafting, one whose MTP cache holds the pairs before them).
  const Sequence *donorFor(const StepBatch &b, int64_t s, int64_t start,
                           int64_t self) const;

  int64_t copiedTokens = 0, recomputedTokens = 0;

  dsrt_model *model;
  dsrt_model_info info;
  int64_t maxCtx, hiddenSize = 0;
  bool drafting;
  PageTokens pages;
  std::unordered_map<int64_t, Sequence> sessions;
  std::vector<float> scratch, hiddenScratch, draftScratch;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_SESSIONEXECUTOR_H
