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
/// The logits-processing fields of `p` into `out`; "" or the problem.
std::string readProcessing(const dsrt_request_params &p, int64_t vocab,
                           SamplingParams &out) {
  auto within = [](float v, float lo, float hi) { return v >= lo && v <= hi; };
  if (!within(p.presence_penalty, -2, 2))
    return "presence_penalty must be in [-2, 2], got " +
           std::to_string(p.presence_penalty);
  if (!within(p.frequency_penalty, -2, 2))
    return "frequency_penalty must be in [-2, 2], got " +
           std::to_string(p.frequency_penalty);
  if (!(p.repetition_penalty >= 0) || std::isinf(p.repetition_penalty))
    return "repetition_penalty must be a finite number > 0 (0: off), got " +
           std::to_string(p.repetition_penalty);
  if (!within(p.min_p, 0, 1))
    return "min_p must be in [0, 1], got " + std::to_string(p.min_p);
  if (p.min_tokens < 0)
    return "min_tokens must be >= 0, got " + std::to_string(p.min_tokens);
  if (p.num_logit_bias < 0 ||
      (p.num_logit_bias && (!p.logit_bias_ids || !p.logit_bias_values)))
    return "logit_bias: no buffers for " + std::to_string(p.num_logit_bias) +
           " entries";
  std::string problem =
      badIds(p.logit_bias_ids, p.num_logit_bias, vocab, "logit_bias token id");
  if (!problem.empty())
    return problem;
  out.presencePenalty = p.presence_penalty;
  out.frequencyPenalty = p.frequency_penalty;
  out.repetitionPenalty = p.repetition_penalty > 0 ? p.repetition_penalty : 1;
  out.minP = p.min_p;
  out.minTokens = p.min_tokens;
  out.allowedTokens = p.allowed_tokens;
  out.allowedTokensUser = p.allowed_tokens_user;
  out.priority = p.priority;
  out.logitBias.clear();
  for (int64_t i = 0; i < p.num_logit_bias; ++i) {
    float v = p.logit_bias_values[i];
    if (!std::isfinite(v))
      return "logit_bias value at index " + std::to_string(i) +
             " is not a finite number";
    out.logitBias.push_back({p.logit_bias_ids[i], v});
  }
  return "";
}

/// `row` with r's logits processing applied, in `buf` (vLLM's order).
const float *processRow(const Request &r, const float *row, int64_t vocab,
                        int64_t eosTokenId, std::vector<float> &buf) {
  const SamplingParams &p = r.params;
  buf.assign(row, row + vocab);
  if (p.allowedTokens) {
    static thread_local std::vector<uint8_t> allowed;
    allowed.assign(size_t(vocab), 0);
    p.allowedTokens(p.allowedTokensUser, r.tokens.data() + r.promptLen,
                    r.numFed(), allowed.data(), vocab);
    for (int64_t t = 0; t < vocab; ++t)
      if (!allowed[size_t(t)])
        buf[size_t(t)] = -INFINITY;
  }
  if (r.numFed() < p.minTokens) {
    for (int32_t t : p.stop)
      buf[size_t(t)] = -INFINITY;
    if (!p.ignoreEos && eosTokenId >= 0 && eosTokenId < vocab)
      buf[size_t(eosTokenId)] = -INFINITY;
  }
  for (const auto &[t, bias] : p.logitBias)
    buf[size_t(t)] += bias;
  if (p.repetitionPenalty != 1 || p.presencePenalty != 0 ||
      p.frequencyPenalty != 0) {
    // Counts of the output's tokens; `seen` marks prompt or output tokens.
    static thread_local std::vector<int32_t> count;
    static thread_local std::vector<uint8_t> seen;
    count.resize(size_t(vocab));
    seen.resize(size_t(vocab));
    for (int64_t i = 0; i < r.numTokens(); ++i) {
      int32_t t = r.tokens[size_t(i)];
      seen[size_t(t)] = 1;
      if (i >= r.promptLen)
        ++count[size_t(t)];
    }
    for (int64_t i = 0; i < r.numTokens(); ++i) {
      size_t t = size_t(r.tokens[size_t(i)]);
      if (!seen[t])
        continue; // done (a repeated token)
      float &l = buf[t];
      if (p.repetitionPenalty != 1)
        l = l > 0 ? l / p.repetitionPenalty : l * p.repetitionPenalty;
      l -= p.frequencyPenalty * float(count[t]) +
           p.presencePenalty * (count[t] > 0 ? 1.0f : 0.0f);
      seen[t] = 0;
      count[t] = 0;
    }
  }
  if (p.minP > 0 && p.temperature > 0) {
    // p_i < min_p * p_max  <=>  l_i < l_max + T ln(min_p).
    float best = -INFINITY;
    for (float l : buf)
      if (l > best)
        best = l;
    float floor = best + p.temperature * std::log(p.minP);
    for (float &l : buf)
      if (l < floor)
        l = -INFINITY;
  }
  // Nothing left (a constraint that allows no token, or only the eos that
  // min_tokens holds off): eos ends the request rather than a random pick.
  if (eosTokenId >= 0 && eosTokenId < vocab &&
      std::none_of(buf.begin(), buf.end(),
                   [](float l) { return l > -INFINITY; }))
    buf[size_t(eosTokenId)] = 0;
  return buf.data();
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
  return readProcessing(p, vocab, out);
}

uint64_t dsrt::engine::initialRngState(uint64_t seed) {
  return seed * 0x9E3779B97F4A7C15ULL + 1; // as api/Generate.cpp
}

int32_t dsrt::engine::chooseToken(Request &r, const float *row, int64_t vocab,
                                  int64_t eosTokenId) {
  if (r.params.forced)
    return r.params.force[size_t(r.numFed())];
  static thread_local std::vector<float> processed;
  if (r.params.processed())
    row = processRow(r, row, vocab, eosTokenId, processed);
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
