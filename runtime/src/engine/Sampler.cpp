//===- Sampler.cpp - request parameters and the next token ----------------===//
#include "engine/Sampler.h"

#include <algorithm>
#include <cmath>

using namespace dsrt::engine;

namespace {
std::string badIds(const int32_t *ids, int64_t n, int64_t vocab,
                   const char *what) {
  for (int64_t i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      return std::string(what) + " " + std::to_string(ids[i]) + " at index " +
             std::to_string(i) + " is out of range [0, " +
             std::to_string(vocab) + ")";
  return "";
}
} // namespace

std::string dsrt::engine::readParams(const dsrt_request_params &p,
                                     int64_t vocab, SamplingParams &out) {
  if (p.max_tokens < 0)
    return "max_tokens must be >= 0, got " + std::to_string(p.max_tokens);
  if (!(p.temperature >= 0) || std::isinf(p.temperature))
    return "temperature must be a finite number >= 0, got " +
           std::to_string(p.temperature);
  if (!(p.top_p > 0 && p.top_p <= 1))
    return "top_p must be in (0, 1], got " + std::to_string(p.top_p);
  if (p.top_k < 0)
    return "top_k must be >= 0 (0: off), got " + std::to_string(p.top_k);
  if (p.num_stop_token_ids < 0 || (p.num_stop_token_ids && !p.stop_token_ids))
    return "stop_token_ids: no buffer for " +
           std::to_string(p.num_stop_token_ids) + " ids";
  if (p.num_force_tokens < 0 || (p.num_force_tokens && !p.force_tokens))
    return "force_tokens: no buffer for " + std::to_string(p.num_force_tokens) +
           " ids";
  std::string problem =
      badIds(p.stop_token_ids, p.num_stop_token_ids, vocab, "stop token id");
  if (!problem.empty())
    return problem;
  if (p.force_tokens) {
    if (p.num_force_tokens < p.max_tokens)
      return "max_tokens (" + std::to_string(p.max_tokens) +
             ") exceeds the number of forced tokens (" +
             std::to_string(p.num_force_tokens) + ")";
    problem = badIds(p.force_tokens, p.max_tokens, vocab, "forced token id");
    if (!problem.empty())
      return problem;
  }
  out.maxTokens = p.max_tokens;
  out.temperature = p.temperature;
  out.topP = p.top_p;
  out.topK = p.top_k;
  out.seed = p.seed;
  out.stop.assign(p.stop_token_ids, p.stop_token_ids + p.num_stop_token_ids);
  out.ignoreEos = p.ignore_eos != 0;
  out.forced = p.force_tokens != nullptr;
  if (out.forced)
    out.force.assign(p.force_tokens, p.force_tokens + p.max_tokens);
  out.returnLogits = p.return_logits != 0;
  out.promptLogits = p.prompt_logits != 0;
  return "";
}

uint64_t dsrt::engine::initialRngState(uint64_t seed) {
  return seed * 0x9E3779B97F4A7C15ULL + 1; // as api/Generate.cpp
}

int32_t dsrt::engine::chooseToken(Request &r, const float *row, int64_t vocab) {
  if (r.params.forced)
    return r.params.force[size_t(r.numFed())];
  return dsrt_sample_top_k(row, vocab, r.params.temperature, r.params.topP,
                           r.params.topK, &r.rng);
}

dsrt_finish_reason dsrt::engine::finishAfter(const Request &r, int32_t token,
                                             int64_t eosTokenId) {
  // Teacher forcing feeds every forced token, as dsrt_generate does.
  if (!r.params.forced && ((token == eosTokenId && !r.params.ignoreEos) ||
                           std::find(r.params.stop.begin(), r.params.stop.end(),
                                     token) != r.params.stop.end()))
    return DSRT_FINISH_STOP;
  return r.numFed() >= r.maxTokens ? DSRT_FINISH_LENGTH : DSRT_FINISH_NONE;
}
