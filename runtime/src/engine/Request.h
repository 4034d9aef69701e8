//===- Request.h - one request's state in the engine ------------*- C++ -*-===//
#ifndef DSRT_ENGINE_REQUEST_H
#define DSRT_ENGINE_REQUEST_H

#include "dsrt/dsrt_engine.h"

#include <cstdint>
#include <utility>
#include <vector>

namespace dsrt::engine {

struct SamplingParams {
  int64_t maxTokens = 16;
  float temperature = 0, topP = 1;
  int32_t topK = 0;
  uint64_t seed = 0;
  std::vector<int32_t> stop;
  bool ignoreEos = false;
  bool forced = false;
  std::vector<int32_t> force;
  bool returnLogits = false;
  bool promptLogits = false;
  // Logits processing (dsrt_request_params): neutral values are off.
  float presencePenalty = 0, frequencyPenalty = 0, repetitionPenalty = 1;
  float minP = 0;
  int64_t minTokens = 0;
  std::vector<std::pair<int32_t, float>> logitBias;
  /// Constrained decoding (dsrt_request_params::allowed_tokens).
  dsrt_allowed_tokens_fn allowedTokens = nullptr;
  void *allowedTokensUser = nullptr;
  int32_t priority = 0; // priority scheduling: lower first
  /// Any of the above is on: the row is processed before sampling.
  bool processed() const {
    return presencePenalty != 0 || frequencyPenalty != 0 ||
           repetitionPenalty != 1 || minP > 0 || minTokens > 0 ||
           !logitBias.empty() || allowedTokens;
  }
};

enum class RequestState { Waiting, Running, Finished };

struct Request {
  int64_t id = 0;
  /// Prompt, then every fed token (sampled or forced).
  std::vector<int32_t> tokens;
  int64_t promptLen = 0;
  /// max_tokens capped by the room max_model_len leaves.
  int64_t maxTokens = 0;
  SamplingParams params;
  dsrt_engine_callback callback = nullptr;
  void *userData = nullptr;
  uint64_t rng = 0;

  RequestState state = RequestState::Waiting;
  /// Tokens whose cache entries exist in `pages`.
  int64_t numComputed = 0;
  std::vector<int32_t> pages;
  /// Names of the full pages of `tokens` computed so far (they depend on
  /// the tokens only, so they survive preemption).
  std::vector<uint64_t> pageHashes;
  /// Leading pages already offered to the prefix cache.
  int64_t numPagesOffered = 0;
  /// Decided but waiting for the last fed token's logits row
  /// (return_logits wants it).
  dsrt_finish_reason pendingFinish = DSRT_FINISH_NONE;
  int64_t prefixHitTokens = 0;
  /// prompt_logits: prompt rows [0, promptRowsSent) were emitted (a
  /// preempted request computes them again, and does not resend them).
  int64_t promptRowsSent = 0;
  /// Speculative decoding: the last numDrafts entries of `tokens` are
  /// drafts proposed this step (not accepted yet), and draftProbs holds
  /// the distribution each was drawn from (numDrafts x vocab; empty when
  /// greedy).
  int64_t numDrafts = 0;
  std::vector<double> draftProbs;
  /// [tokens, vocab] when return_logits.
  std::vector<float> logits;

  int64_t numTokens() const { return int64_t(tokens.size()); }
  int64_t numFed() const { return numTokens() - promptLen; }
  /// A step that computes from `numComputed` on needs every row of its
  /// chunk, not only the last.
  bool wantsAllRows(int64_t numComputed) const {
    return params.returnLogits ||
           (params.promptLogits && numComputed < promptLen - 1);
  }
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_REQUEST_H
