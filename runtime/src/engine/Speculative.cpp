//===- Speculative.cpp - drafting and verifying tokens --------------------===//
#include "engine/Speculative.h"

#include "dsrt/dsrt_engine.h"

#include <algorithm>
#include <cmath>
#include <numeric>

using namespace dsrt::engine;

bool dsrt::engine::samplesRandomly(const SamplingParams &p) {
  return p.temperature > 0 && p.topP > 0;
}

void dsrt::engine::samplingProbs(const float *row, int64_t vocab,
                                 const SamplingParams &params,
                                 std::vector<double> &probs) {
  probs.assign(size_t(vocab), 0.0);
  // dsrt_sample_top_k's choice when it does not draw: the first maximum.
  int32_t best = dsrt_sample_top_k(row, vocab, 0, 1, 0, nullptr);
  if (!samplesRandomly(params) || !std::isfinite(row[best])) {
    probs[size_t(best)] = 1;
    return;
  }
  // The same steps as dsrt_sample_top_k (api/Sampling.cpp): the order
  // breaks ties by id, top-k renormalises, the nucleus is the smallest
  // prefix reaching top_p, zero probabilities stay out.
  std::vector<double> e(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i) {
    double l = std::isnan(row[i]) ? -INFINITY : double(row[i]);
    total += e[size_t(i)] =
        std::exp((l - double(row[best])) / params.temperature);
  }
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return e[a] > e[b] || (e[a] == e[b] && a < b);
  });
  size_t limit = params.topK > 0 ? std::min(order.size(), size_t(params.topK))
                                 : order.size();
  if (limit < order.size()) {
    total = 0;
    for (size_t i = 0; i < limit; ++i)
      total += e[order[i]];
  }
  double kept = 0;
  size_t n = 0;
  while (n < limit && e[order[n]] > 0 && (n == 0 || kept / total < params.topP))
    kept += e[order[n++]];
  for (size_t i = 0; i < n; ++i)
    probs[size_t(order[i])] = e[order[i]] / kept;
}

double dsrt::engine::uniform01(uint64_t *state) {
  uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ULL;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return double((x * 2685821657736338717ULL) >> 11) *
         (1.0 / 9007199254740992.0);
}

int32_t dsrt::engine::drawFrom(const double *probs, int64_t vocab,
                               uint64_t *rng) {
  double total = 0;
  int32_t last = 0;
  for (int64_t i = 0; i < vocab; ++i)
    if (probs[i] > 0) {
      total += probs[i];
      last = int32_t(i);
    }
  double r = uniform01(rng) * total;
  for (int64_t i = 0; i < vocab; ++i)
    if (probs[i] > 0 && (r -= probs[i]) < 0)
      return int32_t(i);
  return last; // rounding left r at 0: the last possible token
}

Verdict dsrt::engine::verifyDrafts(Request &r, const int32_t *drafts, int64_t k,
                                   const float *mainRows,
                                   const double *draftProbs, int64_t vocab) {
  Verdict v;
  if (!samplesRandomly(r.params)) {
    for (; v.accepted < k; ++v.accepted) {
      int32_t want = dsrt_sample_top_k(mainRows + v.accepted * vocab, vocab, 0,
                                       1, 0, nullptr);
      if (drafts[v.accepted] != want) {
        v.next = want;
        return v;
      }
    }
    v.next = dsrt_sample_top_k(mainRows + k * vocab, vocab, 0, 1, 0, nullptr);
    return v;
  }
  std::vector<double> p;
  for (; v.accepted < k; ++v.accepted) {
    samplingProbs(mainRows + v.accepted * vocab, vocab, r.params, p);
    const double *q = draftProbs + v.accepted * vocab;
    int32_t d = drafts[v.accepted];
    // q[d] > 0: d was drawn from q.
    if (uniform01(&r.rng) * q[d] < p[size_t(d)])
      continue;
    std::vector<double> residual(static_cast<size_t>(vocab));
    double mass = 0;
    for (int64_t i = 0; i < vocab; ++i)
      mass += residual[size_t(i)] = std::max(0.0, p[size_t(i)] - q[i]);
    // A rejection has p(d) < q(d), so p exceeds q somewhere; only rounding
    // can leave no mass, and then p itself is the residual's limit.
    v.next = drawFrom(mass > 0 ? residual.data() : p.data(), vocab, &r.rng);
    return v;
  }
  // Every draft kept: the bonus token, as the plain sampler draws it.
  v.next = dsrt_sample_top_k(mainRows + k * vocab, vocab, r.params.temperature,
                             r.params.topP, r.params.topK, &r.rng);
  return v;
}

std::string dsrt::engine::parseSpeculative(const std::string &text,
                                           int64_t &k) {
  std::string problem =
      "speculative: expected 'mtp' or 'mtp:K' with K in [1, " +
      std::to_string(kMaxSpeculativeTokens) + "], got '" + text + "'";
  if (text == "mtp") {
    k = 1;
    return "";
  }
  if (text.rfind("mtp:", 0) != 0 || text.size() == 4 || text.size() > 7)
    return problem;
  int64_t v = 0;
  for (size_t i = 4; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9')
      return problem;
    v = v * 10 + (text[i] - '0');
  }
  if (v < 1 || v > kMaxSpeculativeTokens)
    return problem;
  k = v;
  return "";
}
