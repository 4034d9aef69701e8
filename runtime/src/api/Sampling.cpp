//===- Sampling.cpp - greedy, temperature and top-p sampling --------------===//
#include "dsrt/dsrt.h"

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
  return double((x * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0);
}
} // namespace

extern "C" int32_t dsrt_sample(const float *logits, int64_t vocab,
                               float temperature, float topP,
                               uint64_t *rng) {
  int64_t best = 0;
  for (int64_t i = 1; i < vocab; ++i)
    if (logits[i] > logits[best])
      best = i;
  if (temperature <= 0 || topP <= 0)
    return int32_t(best);
  std::vector<double> p(static_cast<size_t>(vocab));
  double total = 0;
  for (int64_t i = 0; i < vocab; ++i)
    total += p[size_t(i)] = std::exp((logits[i] - logits[best]) / temperature);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  // Nucleus: the smallest prefix whose mass reaches top_p.
  double kept = 0;
  size_t n = 0;
  while (n < order.size() && (n == 0 || kept / total < topP))
    kept += p[order[n++]];
  double r = nextUniform(rng) * kept;
  for (size_t i = 0; i < n; ++i) {
    r -= p[order[i]];
    if (r <= 0)
      return order[i];
  }
  return order[n - 1];
}
