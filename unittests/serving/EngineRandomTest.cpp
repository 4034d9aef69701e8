//===- EngineRandomTest.cpp - randomized add / abort / step sequences -----===//
//
// Thousands of operations on engines of random shape; after every step the
// page invariants hold (no page owned twice, reference counts match the
// holders, free queue = pages nobody holds, prefix names consistent), the
// budgets are respected, every streamed row is the fake model's row for
// the request's history, and in the end every request finished exactly
// once within a bounded number of steps and every page is free.
//
//===----------------------------------------------------------------------===//
#include "EngineTestUtil.h"

#include <random>

using namespace dstest;

namespace {

constexpr int64_t kVocab = 31;

void randomRun(uint32_t seed) {
  std::mt19937 g(seed);
  int64_t maxModelLen = 64 + g() % 200;
  int64_t minPages = (maxModelLen + 63) / 64;
  int64_t numPages = minPages + g() % 8;
  int64_t maxSeqs = 1 + g() % 6;
  int64_t budget = 1 + g() % 160;
  bool prefix = g() % 4 != 0;
  // Half the engines speculate, with drafters of any quality.
  int64_t speculative = g() % 2 ? 1 + g() % 4 : 0;
  double agreement = double(g() % 11) / 10;
  auto e = fakeEngine(kVocab, maxModelLen, numPages, maxSeqs, budget, prefix,
                      /*eos=*/int64_t(g() % kVocab), speculative, agreement);
  Collector c;
  // A few shared prefixes so prefix hits happen.
  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 3; ++i) {
    std::vector<int32_t> p(size_t(64 + g() % 100));
    for (auto &t : p)
      t = int32_t(g() % kVocab);
    prefixes.push_back(p);
  }
  std::map<int64_t, std::vector<int32_t>> prompts;
  std::map<int64_t, int64_t> addedAtStep, maxTokens;
  int64_t steps = 0;
  for (int op = 0; op < 400; ++op) {
    int kind = int(g() % 10);
    if (kind < 3) {
      int64_t len = 1 + g() % maxModelLen;
      std::vector<int32_t> prompt;
      if (g() % 2) {
        prompt = prefixes[g() % prefixes.size()];
        prompt.resize(std::min<size_t>(prompt.size(), size_t(len)));
      }
      while (int64_t(prompt.size()) < len)
        prompt.push_back(int32_t(g() % kVocab));
      dsrt_request_params p = params(g() % 40, g() % 2 ? 1.0f : 0.0f, g());
      p.top_k = int32_t(g() % 5);
      p.return_logits = g() % 5 == 0;
      std::string error;
      int64_t id =
          e->add(prompt.data(), len, p, Collector::callback, &c, error);
      ASSERT_GE(id, 0) << error;
      prompts[id] = prompt;
      maxTokens[id] = std::min<int64_t>(p.max_tokens, maxModelLen - len);
      addedAtStep[id] = steps;
    } else if (kind < 4 && !prompts.empty()) {
      auto it = prompts.begin();
      std::advance(it, g() % prompts.size());
      ASSERT_TRUE(e->abort(it->first));
    } else {
      bool hasWork;
      ASSERT_EQ(e->step(hasWork), DSRT_OK) << dsrt_last_error();
      ++steps;
      ASSERT_EQ(e->checkInvariants(), "") << "seed " << seed;
      dsrt_engine_stats s = e->stats();
      ASSERT_LE(s.last_step_tokens, budget);
      ASSERT_LE(s.running, maxSeqs);
      ASSERT_EQ(s.pages_used + s.pages_free, numPages);
    }
  }
  // Every request ends: no starvation even with preemption.
  ASSERT_TRUE(drain(*e, 20000)) << "seed " << seed;
  dsrt_engine_stats s = e->stats();
  EXPECT_EQ(s.pages_used, 0);
  EXPECT_EQ(s.pages_free, numPages);
  EXPECT_EQ(s.running + s.waiting, 0);
  EXPECT_LE(s.prefix_hit_tokens, s.prefix_query_tokens);
  EXPECT_LE(s.pages_cached, numPages);
  EXPECT_LE(s.spec_accepted_tokens, s.spec_draft_tokens);
  EXPECT_LE(s.spec_draft_tokens, s.spec_rounds * speculative);
  if (!speculative)
    EXPECT_EQ(s.spec_rounds, 0);
  ASSERT_EQ(c.out.size(), prompts.size());
  for (auto &[id, prompt] : prompts) {
    const Outcome &o = c.out[id];
    ASSERT_EQ(o.finishes, 1) << "request " << id;
    // Accepted drafts never run past max_tokens (or max_model_len).
    ASSERT_LE(int64_t(o.tokens.size()), maxTokens[id]) << "request " << id;
    if (o.reason == DSRT_FINISH_LENGTH)
      ASSERT_EQ(int64_t(o.tokens.size()), maxTokens[id]) << "request " << id;
    std::vector<int32_t> h = prompt;
    for (size_t t = 0; t < o.tokens.size(); ++t) {
      ASSERT_EQ(o.rows[t], fakeRow(h, kVocab))
          << "seed " << seed << " request " << id << " token " << t;
      h.push_back(o.tokens[t]);
    }
    if (o.reason != DSRT_FINISH_ABORT && o.logitsRows) {
      ASSERT_EQ(o.logitsRows, int64_t(h.size()));
      std::vector<float> last(o.logits.end() - kVocab, o.logits.end());
      ASSERT_EQ(last, fakeRow(h, kVocab));
    }
  }
}

TEST(EngineRandom, InvariantsHoldOverRandomOperations) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    randomRun(seed);
    if (HasFatalFailure())
      return;
  }
}

} // namespace
