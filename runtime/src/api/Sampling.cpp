//===- Sampling.cpp - greedy, temperature, top-k and top-p sampling -------===//
//
// Deterministic for a given rng state, so a seed reproduces a run. NaN
// logits never win and never get probability: a broken model yields a
// token id, not undefined behaviour in std::sort.
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt.h"
#include "dsrt/dsrt_engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace {

/// xorshift64*: tiny, deterministic for a seed, good enough for sampling.
double nextUniform(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return double((x * 2685821657736338717ULL) >> 11) *
         (1.0 / 9007199254740992.0);
}

/// The first index of the largest logit, NaNs skipped (0 if all are NaN).
int64_t argmax(const float *logits, int64_t vocab) {
  int64_t best = -1;
  for (int64_t i = 0; i < vocab; ++i)
    if (!std::isnan(logits[i]) && (best < 0 || logits[i] > logits[best]))
      best = i;
  return best < 0 ? 0 : best;
}

} // namespace

extern "C" int32_t dsrt_sample(const float *logits, int64_t vocab,
                               float temperature, float topP, uint64_t *rng) {
  return dsrt_sample_top_k(logits, vocab, temperature, topP, 0, rng);
}

extern "C" int32_t dsrt_sample_top_k(const float *logits, int64_t vocab,
                                     float temperature, float topP,
                                     int32_t topK, uint64_t *rng) {
  if (!logits || vocab <= 0)
    return -1;
  int64_t best = argmax(logits, vocab);
  // NaN options count as "off", like <= 0. A non-finite maximum (all -inf,
  // or a +inf logit) leaves nothing to sample from but the argmax.
  if (!(temperature > 0) || !(topP > 0) || !std::isfinite(logits[best]))
    return int32_t(best);
  uint64_t localState = 0;
  if (!rng)
    rng = &localState;
  std::vector<double> p(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    double l = std::isnan(logits[i]) ? -INFINITY : double(logits[i]);
    total += p[size_t(i)] = std::exp((l - double(logits[best])) / temperature);
  }
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  // Among equal probabilities the lower id comes first, as in argmax, so
  // a nucleus of one token is exactly the greedy choice.
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return p[a] > p[b] || (p[a] == p[b] && a < b);
  });
  // Top-k, then the nucleus: the smallest prefix whose mass reaches top_p
  // of what top-k kept (renormalized, as vLLM applies them in turn). Zero
  // probabilities stay out even when rounding leaves kept / total just
  // below 1, so the fallback below never returns an impossible token.
  double kept = 0;
  size_t n = 0;
  size_t limit = topK > 0 ? std::min(order.size(), size_t(topK)) : order.size();
  if (limit < order.size()) {
    total = 0;
    for (size_t i = 0; i < limit; ++i)
      total += p[order[i]];
  }
  while (n < limit && p[order[n]] > 0 && (n == 0 || kept / total < topP))
    kept += p[order[n++]];
  double r = nextUniform(rng) * kept;
  for (size_t i = 0; i < n; ++i) {
    r -= p[order[i]];
    if (r <= 0)
      return order[i];
  }
  return order[n - 1];
}
