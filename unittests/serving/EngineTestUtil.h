//===- EngineTestUtil.h - driving the engine in tests -----------*- C++ -*-===//
#ifndef DS_UNITTESTS_SERVING_ENGINETESTUTIL_H
#define DS_UNITTESTS_SERVING_ENGINETESTUTIL_H

#include "engine/Engine.h"
#include "engine/FakeExecutor.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>

namespace dstest {

using namespace dsrt::engine;

/// Everything one request streamed.
struct Outcome {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> rows; // the row each token came from
  std::vector<float> logits;            // the final event's rows
  int64_t logitsRows = 0;
  std::vector<float> promptRows; // prompt_logits' rows, in order
  int64_t numPromptRows = 0;
  dsrt_finish_reason reason = DSRT_FINISH_NONE;
  int finishes = 0;
  int64_t prefixHit = 0;
  std::vector<int32_t> prompt;
};

/// Collects the events of many requests (thread-safe).
struct Collector {
  std::mutex mutex;
  std::map<int64_t, Outcome> out;
  static void callback(void *user, const dsrt_engine_event *e) {
    auto *c = static_cast<Collector *>(user);
    std::lock_guard<std::mutex> lock(c->mutex);
    Outcome &o = c->out[e->request_id];
    if (e->token >= 0) {
      EXPECT_EQ(e->index, int64_t(o.tokens.size()));
      EXPECT_EQ(o.finishes, 0) << "token after the end";
      o.tokens.push_back(e->token);
      o.rows.emplace_back(e->logits, e->logits + e->vocab_size);
      return;
    }
    if (e->finish_reason == DSRT_FINISH_NONE) { // prompt rows
      EXPECT_EQ(e->index, o.numPromptRows) << "prompt rows out of order";
      EXPECT_TRUE(o.tokens.empty()) << "prompt rows after a token";
      EXPECT_GT(e->num_logits_rows, 0);
      o.numPromptRows += e->num_logits_rows;
      o.promptRows.insert(o.promptRows.end(), e->logits,
                          e->logits + e->num_logits_rows * e->vocab_size);
      return;
    }
    ++o.finishes;
    o.reason = e->finish_reason;
    o.prefixHit = e->prefix_hit_tokens;
    o.logitsRows = e->num_logits_rows;
    if (e->logits)
      o.logits.assign(e->logits,
                      e->logits + e->num_logits_rows * e->vocab_size);
  }
};

inline dsrt_request_params params(int64_t maxTokens, float temperature = 0,
                                  uint64_t seed = 0) {
  dsrt_request_params p;
  dsrt_request_params_default(&p);
  p.max_tokens = maxTokens;
  p.temperature = temperature;
  p.seed = seed;
  return p;
}

inline std::unique_ptr<Engine>
fakeEngine(int64_t vocab, int64_t maxModelLen, int64_t numPages,
           int64_t maxSeqs, int64_t budget, bool prefixCaching = true,
           int64_t eos = -1, int64_t speculative = 0, double agreement = 0) {
  EngineConfig c;
  c.maxModelLen = maxModelLen;
  c.eosTokenId = eos;
  c.scheduler.numPages = numPages;
  c.scheduler.maxNumSeqs = maxSeqs;
  c.scheduler.maxNumBatchedTokens = budget;
  c.scheduler.prefixCaching = prefixCaching;
  c.speculativeTokens = speculative;
  auto ex = std::make_unique<FakeExecutor>(vocab, maxModelLen, numPages);
  if (speculative)
    ex->enableDrafter(agreement);
  EXPECT_EQ(Engine::check(c, *ex), "");
  return std::make_unique<Engine>(std::move(ex), c);
}

/// Steps until no work is left (at most `maxSteps`); false if it did not
/// drain. Checks the page invariants after every step.
inline bool drain(Engine &e, int64_t maxSteps = 100000) {
  for (int64_t i = 0; i < maxSteps; ++i) {
    bool hasWork = false;
    EXPECT_EQ(e.step(hasWork), DSRT_OK) << dsrt_last_error();
    std::string broken = e.checkInvariants();
    EXPECT_EQ(broken, "");
    if (!broken.empty())
      return false;
    if (!hasWork)
      return true;
  }
  return false;
}

/// The fake model's row after `history`.
inline std::vector<float> fakeRow(const std::vector<int32_t> &history,
                                  int64_t vocab) {
  std::vector<float> row(static_cast<size_t>(vocab));
  FakeExecutor::logitsAfter(history, vocab, row.data());
  return row;
}

} // namespace dstest

#endif
