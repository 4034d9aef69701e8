//===- FakeExecutor.cpp - a deterministic stand-in model ------------------===//
#include "engine/FakeExecutor.h"

#include "api/Error.h"

using namespace dsrt::engine;

namespace {
uint64_t mix(uint64_t x) { // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}
} // namespace

void FakeExecutor::logitsAfter(const std::vector<int32_t> &history,
                               int64_t vocab, float *row) {
  uint64_t h = 0x1234567;
  for (int32_t t : history)
    h = mix(h ^ uint64_t(uint32_t(t)));
  // Spread over [-4, 4) so sampling at temperature 1 has real choices.
  for (int64_t v = 0; v < vocab; ++v)
    row[v] =
        float(double(mix(h + uint64_t(v)) >> 40) / double(1 << 24) * 8.0 - 4.0);
}

dsrt_status FakeExecutor::run(const StepBatch &b, float *logits) {
  std::string problem = checkBatch(b, vocab, maxCtx);
  if (problem.empty())
    problem = pages.write(b);
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  ++steps;
  for (int64_t s = 0; s < b.numSeqs(); ++s)
    computedLen[b.seqIds[size_t(s)]] = b.contextLens[size_t(s)];
  size_t next = 0;
  for (int64_t s = 0; s < b.numSeqs() && next < b.logitsRows.size(); ++s) {
    int32_t q0 = b.queryStart[size_t(s)], q1 = b.queryStart[size_t(s + 1)];
    // Rows of this sequence: its history up to each wanted token.
    if (b.logitsRows[next] >= q1)
      continue;
    std::vector<int32_t> all = pages.history(b, s, b.contextLens[size_t(s)]);
    for (; next < b.logitsRows.size() && b.logitsRows[next] < q1; ++next) {
      int32_t t = b.logitsRows[next];
      if (t < q0)
        return fail(DSRT_ERROR_ARGUMENT, "step batch: bad logits row");
      std::vector<int32_t> prefix(all.begin(),
                                  all.begin() + b.positions[size_t(t)] + 1);
      logitsAfter(prefix, vocab, logits + int64_t(next) * vocab);
    }
  }
  return DSRT_OK;
}

void FakeExecutor::draftAfter(const std::vector<int32_t> &history,
                              int64_t vocab, double agreement, float *row) {
  std::vector<float> other(static_cast<size_t>(vocab));
  std::vector<int32_t> salted = history;
  salted.push_back(-7);
  logitsAfter(history, vocab, row);
  logitsAfter(salted, vocab, other.data());
  for (int64_t v = 0; v < vocab; ++v)
    row[v] = float(agreement * row[v] + (1 - agreement) * other[size_t(v)]);
}

dsrt_status FakeExecutor::draft(const std::vector<DraftQuery> &queries,
                                float *logits) {
  if (!drafter)
    return Executor::draft(queries, logits);
  for (size_t i = 0; i < queries.size(); ++i) {
    const DraftQuery &q = queries[i];
    auto it = computedLen.find(q.seqId);
    int64_t have = it == computedLen.end() ? -1 : it->second;
    if (have != q.numComputed || q.numTokens <= q.numComputed)
      return fail(DSRT_ERROR_ARGUMENT,
                  "draft: sequence " + std::to_string(q.seqId) + " has " +
                      std::to_string(have) +
                      " computed tokens, the engine says " +
                      std::to_string(q.numComputed));
    draftAfter(std::vector<int32_t>(q.tokens, q.tokens + q.numTokens), vocab,
               agreement, logits + int64_t(i) * vocab);
  }
  return DSRT_OK;
}

void FakeExecutor::truncate(int64_t seqId, int64_t len) {
  auto it = computedLen.find(seqId);
  if (it != computedLen.end() && len < it->second)
    it->second = len;
}
