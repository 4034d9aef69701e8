//===- Logprobs.cpp - log-softmax of a logits row for OpenAI logprobs -----===//

#include "Logprobs.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace dsserve {

void computeLogprobs(const float *row, int64_t vocab, int32_t chosen, int k,
                     TokenOutput &out) {
  float mx = -INFINITY;
  for (int64_t i = 0; i < vocab; ++i)
    if (row[i] > mx)
      mx = row[i];
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i)
    sum += std::exp(double(row[i]) - mx);
  double lse = mx + std::log(sum);
  out.logprob = float(row[chosen] - lse);
  if (k <= 0)
    return;
  std::vector<int32_t> idx(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    idx[size_t(i)] = int32_t(i);
  size_t kk = std::min<size_t>(size_t(k), idx.size());
  std::partial_sort(idx.begin(), idx.begin() + kk, idx.end(),
                    [&](int32_t a, int32_t b) {
                      return row[a] > row[b] || (row[a] == row[b] && a < b);
                    });
  for (size_t i = 0; i < kk; ++i)
    out.top.push_back({idx[i], float(row[idx[i]] - lse)});
}

} // namespace dsserve
