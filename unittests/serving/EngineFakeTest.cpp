//===- EngineFakeTest.cpp - batch invariance and errors, fake model -------===//
//
// The fake executor's logits are a pure function of the token history read
// back through the pages, so "the same logits as alone" is exact here, and
// also equals the history-only reference (fakeRow).
//
//===----------------------------------------------------------------------===//
#include "EngineTestUtil.h"

#include <algorithm>
#include <random>
#include <thread>

using namespace dstest;

namespace {

constexpr int64_t kVocab = 97;

std::vector<int32_t> randomTokens(std::mt19937 &g, int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto &x : t)
    x = int32_t(g() % kVocab);
  return t;
}

struct Spec {
  std::vector<int32_t> prompt;
  dsrt_request_params p;
};

/// Runs one request alone on a roomy engine.
Outcome solo(const Spec &s) {
  auto e = fakeEngine(kVocab, 512, 64, 8, 4096);
  Collector c;
  std::string error;
  int64_t id = e->add(s.prompt.data(), int64_t(s.prompt.size()), s.p,
                      Collector::callback, &c, error);
  EXPECT_GE(id, 0) << error;
  EXPECT_TRUE(drain(*e));
  return c.out[id];
}

TEST(EngineFake, MixedBatchGivesEveryRequestItsSoloLogits) {
  std::mt19937 g(7);
  std::vector<int32_t> shared = randomTokens(g, 140); // 2 full pages + more
  std::vector<Spec> specs;
  // Long prompts (chunked by the budget), short ones, page-crossing
  // decodes, sampling at temperature 1, return_logits, prompt_logits (a
  // long chunked prompt, a shared one), and three requests starting with
  // `shared` (prefix-cache hits once the first computed it).
  for (int i = 0; i < 10; ++i) {
    Spec s;
    int64_t len = i % 3 == 0 ? 150 + 20 * i : 5 + 13 * i;
    s.prompt = randomTokens(g, len);
    if (i == 2 || i == 5 || i == 8) {
      s.prompt = shared;
      auto tail = randomTokens(g, 3 + i);
      s.prompt.insert(s.prompt.end(), tail.begin(), tail.end());
    }
    s.p = params(40 + 7 * i, i % 2 ? 1.0f : 0.0f, 100 + i);
    s.p.return_logits = i == 3 || i == 6;
    s.p.prompt_logits = i == 8 || i == 9;
    specs.push_back(s);
  }
  // 12 pages of 64 tokens for 10 requests of up to 400 tokens: preemption.
  auto e = fakeEngine(kVocab, 512, 12, 6, 96);
  Collector c;
  std::vector<int64_t> ids;
  for (size_t i = 0; i < specs.size(); ++i) {
    std::string error;
    ids.push_back(e->add(specs[i].prompt.data(),
                         int64_t(specs[i].prompt.size()), specs[i].p,
                         Collector::callback, &c, error));
    ASSERT_GE(ids.back(), 0) << error;
    // Later arrivals join a running batch.
    for (int k = 0; k < 3; ++k) {
      bool hasWork;
      ASSERT_EQ(e->step(hasWork), DSRT_OK) << dsrt_last_error();
      ASSERT_EQ(e->checkInvariants(), "");
    }
  }
  ASSERT_TRUE(drain(*e));
  dsrt_engine_stats st = e->stats();
  EXPECT_GT(st.preemptions, 0);
  EXPECT_GT(st.prefix_hit_tokens, 0);
  EXPECT_EQ(st.pages_used, 0);
  EXPECT_EQ(st.running + st.waiting, 0);
  EXPECT_LE(st.last_step_tokens, 96);
  for (size_t i = 0; i < specs.size(); ++i) {
    SCOPED_TRACE("request " + std::to_string(i));
    const Outcome &got = c.out[ids[i]];
    Outcome want = solo(specs[i]);
    EXPECT_EQ(got.finishes, 1);
    EXPECT_EQ(got.reason, DSRT_FINISH_LENGTH);
    EXPECT_EQ(got.tokens, want.tokens);
    ASSERT_EQ(got.rows.size(), want.rows.size());
    std::vector<int32_t> history = specs[i].prompt;
    for (size_t t = 0; t < got.rows.size(); ++t) {
      EXPECT_EQ(got.rows[t], want.rows[t]) << "token " << t;
      EXPECT_EQ(got.rows[t], fakeRow(history, kVocab)) << "token " << t;
      history.push_back(got.tokens[t]);
    }
    // Every prompt row but the last, once each (a preempted request does
    // not resend them), each the history-only row.
    const std::vector<int32_t> &prompt = specs[i].prompt;
    if (specs[i].p.prompt_logits) {
      ASSERT_EQ(got.numPromptRows, int64_t(prompt.size()) - 1);
      EXPECT_EQ(got.promptRows, want.promptRows);
      for (size_t r = 0; r + 1 < prompt.size(); ++r) {
        std::vector<int32_t> h(prompt.begin(), prompt.begin() + r + 1);
        ASSERT_TRUE(std::equal(got.promptRows.begin() + r * kVocab,
                               got.promptRows.begin() + (r + 1) * kVocab,
                               fakeRow(h, kVocab).begin()))
            << "prompt row " << r;
      }
    } else {
      EXPECT_EQ(got.numPromptRows, 0);
    }
    if (specs[i].p.return_logits) {
      EXPECT_EQ(got.logitsRows, int64_t(history.size()));
      EXPECT_EQ(got.logits, want.logits);
      for (size_t r = 0; r < history.size(); ++r) {
        std::vector<int32_t> h(history.begin(), history.begin() + r + 1);
        ASSERT_TRUE(std::equal(got.logits.begin() + r * kVocab,
                               got.logits.begin() + (r + 1) * kVocab,
                               fakeRow(h, kVocab).begin()))
            << "row " << r;
      }
    }
  }
  EXPECT_GT(c.out[ids[5]].prefixHit, 0);
  EXPECT_EQ(c.out[ids[8]].prefixHit, 0); // prompt_logits computes every row
}

TEST(EngineFake, PrefixHitComputesOnlyTheRest) {
  std::mt19937 g(3);
  auto e = fakeEngine(kVocab, 512, 20, 4, 4096);
  std::vector<int32_t> a = randomTokens(g, 200);
  std::vector<int32_t> b(a.begin(), a.begin() + 150);
  b.push_back(5);
  Collector c;
  std::string error;
  int64_t ia = e->add(a.data(), 200, params(1), Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  int64_t before = e->stats().scheduled_tokens;
  int64_t ib = e->add(b.data(), 151, params(1), Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  // Two full pages (128 tokens) come from the cache: 23 tokens computed.
  EXPECT_EQ(c.out[ib].prefixHit, 128);
  EXPECT_EQ(e->stats().scheduled_tokens - before, 151 - 128);
  EXPECT_EQ(c.out[ib].rows[0], fakeRow(b, kVocab));
  EXPECT_EQ(c.out[ia].prefixHit, 0);
  EXPECT_EQ(e->stats().prefix_hit_tokens, 128);
  EXPECT_GT(e->stats().pages_cached, 0);
}

TEST(EngineFake, NoPrefixCacheWhenDisabled) {
  std::mt19937 g(3);
  auto e = fakeEngine(kVocab, 512, 20, 4, 4096, /*prefixCaching=*/false);
  std::vector<int32_t> a = randomTokens(g, 200);
  Collector c;
  std::string error;
  e->add(a.data(), 200, params(1), Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  e->add(a.data(), 200, params(1), Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(e->stats().prefix_hit_tokens, 0);
  EXPECT_EQ(e->stats().pages_cached, 0);
}

TEST(EngineFake, StopsOnEosAndStopTokensUnlessForcedOrIgnored) {
  // eos = the greedy choice after the prompt: the first token stops.
  std::vector<int32_t> prompt = {1, 2, 3};
  std::vector<float> row = fakeRow(prompt, kVocab);
  int32_t first =
      int32_t(std::max_element(row.begin(), row.end()) - row.begin());
  auto e = fakeEngine(kVocab, 256, 8, 4, 256, true, first);
  Collector c;
  std::string error;
  int64_t stop =
      e->add(prompt.data(), 3, params(5), Collector::callback, &c, error);
  dsrt_request_params ign = params(5);
  ign.ignore_eos = 1;
  int64_t ignored =
      e->add(prompt.data(), 3, ign, Collector::callback, &c, error);
  dsrt_request_params st = params(5);
  st.ignore_eos = 1;
  std::vector<int32_t> stopIds = {first};
  st.stop_token_ids = stopIds.data();
  st.num_stop_token_ids = 1;
  int64_t stopped =
      e->add(prompt.data(), 3, st, Collector::callback, &c, error);
  dsrt_request_params f = params(4);
  std::vector<int32_t> forced = {first, first, 7, 8};
  f.force_tokens = forced.data();
  f.num_force_tokens = 4;
  int64_t forcedId =
      e->add(prompt.data(), 3, f, Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(c.out[stop].reason, DSRT_FINISH_STOP);
  EXPECT_EQ(c.out[stop].tokens, std::vector<int32_t>{first});
  EXPECT_EQ(c.out[ignored].reason, DSRT_FINISH_LENGTH);
  EXPECT_EQ(c.out[ignored].tokens.size(), 5u);
  EXPECT_EQ(c.out[stopped].reason, DSRT_FINISH_STOP);
  EXPECT_EQ(c.out[forcedId].tokens, forced);
  EXPECT_EQ(c.out[forcedId].reason, DSRT_FINISH_LENGTH);
}

/// The greedy tokens of vLLM's logits processing over the fake model,
/// written out here independently of the engine's Sampler.cpp.
std::vector<int32_t>
processedGreedy(std::vector<int32_t> history, int steps, float rep, float freq,
                float pres, const std::vector<std::pair<int32_t, float>> &bias,
                int minTokens, int32_t eos) {
  size_t promptLen = history.size();
  std::vector<int32_t> out;
  for (int s = 0; s < steps; ++s) {
    std::vector<float> row = fakeRow(history, kVocab);
    if (s < minTokens)
      row[size_t(eos)] = -INFINITY;
    for (auto [t, b] : bias)
      row[size_t(t)] += b;
    for (int32_t t = 0; t < kVocab; ++t) {
      int inOutput =
          int(std::count(history.begin() + promptLen, history.end(), t));
      bool anywhere =
          std::find(history.begin(), history.end(), t) != history.end();
      float &l = row[size_t(t)];
      if (anywhere)
        l = l > 0 ? l / rep : l * rep;
      l -= freq * float(inOutput) + pres * (inOutput > 0 ? 1.0f : 0.0f);
    }
    int32_t next =
        int32_t(std::max_element(row.begin(), row.end()) - row.begin());
    out.push_back(next);
    history.push_back(next);
    if (next == eos)
      break;
  }
  return out;
}

TEST(EngineFake, LogitsProcessingAsVllmOrdersIt) {
  std::vector<int32_t> prompt = {5, 9, 5, 2, 40};
  std::vector<float> row = fakeRow(prompt, kVocab);
  // eos is the greedy first token, so min_tokens has something to hold.
  int32_t eos = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
  auto e = fakeEngine(kVocab, 256, 16, 8, 512, true, eos);
  // Token 7 just ahead of the best first token: greedy repeats it, which
  // the output penalties (frequency, presence) then act on.
  float lift = *std::max_element(row.begin(), row.end()) - row[7] + 0.5f;
  std::vector<int32_t> biasIds = {7, 11};
  std::vector<float> biasValues = {lift, -100.0f};
  std::vector<std::pair<int32_t, float>> bias = {{7, lift}, {11, -100.0f}};
  struct Case {
    const char *name;
    float rep, freq, pres;
    bool withBias;
    int minTokens;
  };
  // Each effect alone (each must change the tokens, or the case proves
  // nothing; the output penalties on top of the bias), then all together.
  const Case cases[] = {
      {"repetition", 3.0f, 0, 0, false, 0}, {"frequency", 1, 1.0f, 0, true, 0},
      {"presence", 1, 0, 1.0f, true, 0},    {"logit_bias", 1, 0, 0, true, 0},
      {"min_tokens", 1, 0, 0, false, 1},    {"all", 1.6f, 0.7f, 0.4f, true, 3}};
  // Greedy stopping at eos (one token), and without stopping.
  std::vector<int32_t> greedy =
      processedGreedy(prompt, 12, 1, 0, 0, {}, 0, eos);
  std::vector<int32_t> greedyAll =
      processedGreedy(prompt, 12, 1, 0, 0, {}, 0, -1);
  Collector c;
  std::vector<int64_t> ids;
  for (const Case &k : cases) {
    dsrt_request_params p = params(12);
    p.repetition_penalty = k.rep;
    p.frequency_penalty = k.freq;
    p.presence_penalty = k.pres;
    p.min_tokens = k.minTokens;
    // Without min_tokens, eos (the greedy first token) would end at once.
    p.ignore_eos = k.minTokens == 0;
    if (k.withBias) {
      p.logit_bias_ids = biasIds.data();
      p.logit_bias_values = biasValues.data();
      p.num_logit_bias = 2;
    }
    std::string error;
    ids.push_back(e->add(prompt.data(), 5, p, Collector::callback, &c, error));
    ASSERT_GE(ids.back(), 0) << error;
  }
  // min_p 1 keeps only the best token: sampling at any temperature is
  // greedy (ignore_eos: the whole 12 tokens).
  dsrt_request_params hot = params(12, 1.5f, 9), plainHot = hot;
  hot.min_p = 1.0f;
  hot.ignore_eos = plainHot.ignore_eos = 1;
  std::string error;
  int64_t b = e->add(prompt.data(), 5, hot, Collector::callback, &c, error);
  int64_t d =
      e->add(prompt.data(), 5, plainHot, Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case &k = cases[i];
    SCOPED_TRACE(k.name);
    int32_t stopAt = k.minTokens ? eos : -1;
    std::vector<int32_t> want = processedGreedy(
        prompt, 12, k.rep, k.freq, k.pres, k.withBias ? bias : decltype(bias){},
        k.minTokens, stopAt);
    bool outputPenalty = k.freq != 0 || k.pres != 0;
    EXPECT_NE(want, k.minTokens ? greedy
                    : outputPenalty
                        ? processedGreedy(prompt, 12, 1, 0, 0, bias, 0, -1)
                        : greedyAll);
    EXPECT_EQ(c.out[ids[i]].tokens, want);
    // Token events carry the model's own row, not the processed one.
    EXPECT_EQ(c.out[ids[i]].rows[0], row);
  }
  EXPECT_EQ(c.out[b].tokens, greedyAll);
  EXPECT_NE(c.out[d].tokens, greedyAll); // this seed samples off it
}

namespace {

/// A constraint for the tests: the next token must be congruent to the
/// number of tokens so far modulo 3, and the output it is shown must be
/// what the engine fed (recorded to compare).
struct ModThree {
  std::vector<std::vector<int32_t>> seen;
  static void allowed(void *user, const int32_t *out, int64_t n, uint8_t *mask,
                      int64_t vocab) {
    auto *self = static_cast<ModThree *>(user);
    self->seen.emplace_back(out, out + n);
    for (int64_t t = 0; t < vocab; ++t)
      mask[t] = uint8_t(t % 3 == n % 3);
  }
  static void none(void *, const int32_t *, int64_t, uint8_t *, int64_t) {}
};

} // namespace

TEST(EngineFake, AllowedTokensConstrainEveryChoice) {
  std::vector<int32_t> prompt = {5, 9, 5, 2, 40};
  auto e = fakeEngine(kVocab, 256, 16, 8, 512, true, 3);
  ModThree greedyRule, sampledRule;
  ModThree *rules[] = {&greedyRule, &sampledRule};
  Collector c;
  std::vector<int64_t> ids;
  for (int i = 0; i < 2; ++i) {
    dsrt_request_params p = i == 0 ? params(10) : params(10, 1.3f, 5);
    p.ignore_eos = 1;
    p.allowed_tokens = &ModThree::allowed;
    p.allowed_tokens_user = rules[i];
    std::string error;
    ids.push_back(e->add(prompt.data(), 5, p, Collector::callback, &c, error));
    ASSERT_GE(ids.back(), 0) << error;
  }
  // Nothing allowed: eos ends the request.
  dsrt_request_params stuck = params(10);
  stuck.allowed_tokens = &ModThree::none;
  std::string error;
  int64_t s = e->add(prompt.data(), 5, stuck, Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  for (int i = 0; i < 2; ++i) {
    const std::vector<int32_t> &toks = c.out[ids[size_t(i)]].tokens;
    ASSERT_EQ(toks.size(), 10u);
    for (size_t k = 0; k < toks.size(); ++k)
      EXPECT_EQ(toks[k] % 3, int32_t(k % 3)) << "token " << k;
    // The callback saw each output prefix, in order.
    ASSERT_EQ(rules[i]->seen.size(), toks.size());
    for (size_t k = 0; k < toks.size(); ++k)
      EXPECT_EQ(rules[i]->seen[k],
                std::vector<int32_t>(toks.begin(), toks.begin() + long(k)));
  }
  // Greedy under the rule is the best allowed token of the model's row.
  std::vector<int32_t> history = prompt;
  for (size_t k = 0; k < 10; ++k) {
    std::vector<float> row = fakeRow(history, kVocab);
    int32_t best = -1;
    for (int32_t t = 0; t < kVocab; ++t)
      if (t % 3 == int32_t(k % 3) &&
          (best < 0 || row[size_t(t)] > row[size_t(best)]))
        best = t;
    EXPECT_EQ(c.out[ids[0]].tokens[k], best) << k;
    history.push_back(best);
  }
  EXPECT_EQ(c.out[s].tokens, std::vector<int32_t>{3});
  EXPECT_EQ(c.out[s].reason, DSRT_FINISH_STOP);
}

TEST(EngineFake, LogitsProcessingRefusesBadValues) {
  auto e = fakeEngine(kVocab, 256, 8, 4, 256);
  std::vector<int32_t> prompt = {1, 2};
  std::vector<int32_t> ids = {kVocab};
  std::vector<float> values = {1.0f}, nan = {NAN};
  std::vector<int32_t> okId = {3};
  auto refused = [&](dsrt_request_params p, const std::string &part) {
    std::string error;
    int64_t id = e->add(prompt.data(), 2, p, nullptr, nullptr, error);
    EXPECT_LT(id, 0);
    EXPECT_NE(error.find(part), std::string::npos) << error;
  };
  dsrt_request_params p = params(2);
  p.presence_penalty = 2.5f;
  refused(p, "presence_penalty must be in [-2, 2]");
  p = params(2);
  p.frequency_penalty = NAN;
  refused(p, "frequency_penalty");
  p = params(2);
  p.repetition_penalty = -1;
  refused(p, "repetition_penalty must be a finite number > 0");
  p = params(2);
  p.min_p = 1.5f;
  refused(p, "min_p must be in [0, 1]");
  p = params(2);
  p.min_tokens = -1;
  refused(p, "min_tokens must be >= 0");
  p = params(2);
  p.logit_bias_ids = ids.data();
  p.logit_bias_values = values.data();
  p.num_logit_bias = 1;
  refused(p, "logit_bias token id 97 at index 0 is out of range");
  p.logit_bias_ids = okId.data();
  p.logit_bias_values = nan.data();
  refused(p, "logit_bias value at index 0 is not a finite number");
  p = params(2);
  p.num_logit_bias = 2;
  refused(p, "logit_bias: no buffers");
}

TEST(EngineFake, MaxModelLenCapsGeneration) {
  auto e = fakeEngine(kVocab, 70, 2, 4, 256);
  std::vector<int32_t> prompt(60, 4);
  Collector c;
  std::string error;
  dsrt_request_params p = params(100);
  p.return_logits = 1;
  int64_t id = e->add(prompt.data(), 60, p, Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(c.out[id].tokens.size(), 10u);
  EXPECT_EQ(c.out[id].reason, DSRT_FINISH_LENGTH);
  EXPECT_EQ(c.out[id].logitsRows, 70);
}

TEST(EngineFake, ZeroMaxTokensReturnsPromptRows) {
  auto e = fakeEngine(kVocab, 256, 8, 4, 256);
  std::vector<int32_t> prompt = {3, 1, 4, 1, 5};
  Collector c;
  std::string error;
  dsrt_request_params p = params(0);
  p.return_logits = 1;
  int64_t id = e->add(prompt.data(), 5, p, Collector::callback, &c, error);
  ASSERT_TRUE(drain(*e));
  EXPECT_TRUE(c.out[id].tokens.empty());
  EXPECT_EQ(c.out[id].logitsRows, 5);
  std::vector<float> last(c.out[id].logits.end() - kVocab,
                          c.out[id].logits.end());
  EXPECT_EQ(last, fakeRow(prompt, kVocab));
}

TEST(EngineFake, BadRequestsAreRefusedAndTheOthersServed) {
  auto e = fakeEngine(kVocab, 100, 2, 4, 256);
  Collector c;
  std::string error;
  std::vector<int32_t> good = {1, 2, 3};
  int64_t ok =
      e->add(good.data(), 3, params(4), Collector::callback, &c, error);
  ASSERT_GE(ok, 0);
  auto refused = [&](std::vector<int32_t> prompt, dsrt_request_params p) {
    error.clear();
    int64_t id = e->add(prompt.data(), int64_t(prompt.size()), p,
                        Collector::callback, &c, error);
    EXPECT_EQ(id, -1);
    return error;
  };
  EXPECT_EQ(refused(std::vector<int32_t>(101, 1), params(1)),
            "prompt of 101 tokens exceeds max_model_len (100)");
  EXPECT_EQ(refused({1, 97, 2}, params(1)),
            "token id 97 at index 1 is out of range [0, 97)");
  EXPECT_EQ(refused({1, -1}, params(1)),
            "token id -1 at index 1 is out of range [0, 97)");
  EXPECT_EQ(refused({}, params(1)),
            "empty prompt: at least one token is needed");
  dsrt_request_params p = params(1);
  p.temperature = -1;
  EXPECT_EQ(refused(good, p).rfind("temperature must be", 0), 0u);
  p = params(1);
  p.top_p = 0;
  EXPECT_EQ(refused(good, p).rfind("top_p must be in (0, 1]", 0), 0u);
  p.top_p = 1.5f;
  EXPECT_EQ(refused(good, p).rfind("top_p must be in (0, 1]", 0), 0u);
  p = params(1);
  p.top_k = -2;
  EXPECT_EQ(refused(good, p), "top_k must be >= 0 (0: off), got -2");
  p = params(-1);
  EXPECT_EQ(refused(good, p), "max_tokens must be >= 0, got -1");
  p = params(3);
  std::vector<int32_t> forced = {1, 2};
  p.force_tokens = forced.data();
  p.num_force_tokens = 2;
  EXPECT_EQ(refused(good, p),
            "max_tokens (3) exceeds the number of forced tokens (2)");
  forced = {1, 200, 3};
  p.force_tokens = forced.data();
  p.num_force_tokens = 3;
  EXPECT_EQ(refused(good, p),
            "forced token id 200 at index 1 is out of range [0, 97)");
  p = params(1);
  std::vector<int32_t> stop = {98};
  p.stop_token_ids = stop.data();
  p.num_stop_token_ids = 1;
  EXPECT_EQ(refused(good, p),
            "stop token id 98 at index 0 is out of range [0, 97)");
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(c.out.size(), 1u);
  EXPECT_EQ(c.out[ok].tokens.size(), 4u);
  EXPECT_FALSE(e->abort(999));
}

TEST(EngineFake, PoolSmallerThanOneRequestIsRefused) {
  EngineConfig c;
  c.maxModelLen = 200;
  c.scheduler.numPages = 3;
  FakeExecutor ex(kVocab, 512, 3);
  EXPECT_EQ(Engine::check(c, ex),
            "the KV cache pool of 3 pages (64 tokens x 64 bytes each) cannot "
            "hold one request of max_model_len 200 tokens (4 pages, 16384 "
            "bytes)");
  c.maxModelLen = 600;
  EXPECT_EQ(Engine::check(c, ex).rfind("max_model_len must be in [1, 512]", 0),
            0u);
}

TEST(EngineFake, AbortEndsWaitingAndRunningRequests) {
  auto e = fakeEngine(kVocab, 256, 8, 1, 256);
  Collector c;
  std::string error;
  std::vector<int32_t> prompt = {1, 2, 3};
  int64_t a =
      e->add(prompt.data(), 3, params(50), Collector::callback, &c, error);
  int64_t b =
      e->add(prompt.data(), 3, params(50), Collector::callback, &c, error);
  bool hasWork;
  ASSERT_EQ(e->step(hasWork), DSRT_OK);
  ASSERT_EQ(e->step(hasWork), DSRT_OK);
  EXPECT_TRUE(e->abort(a)); // running
  EXPECT_TRUE(e->abort(b)); // waiting (max_num_seqs 1)
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(c.out[a].reason, DSRT_FINISH_ABORT);
  EXPECT_EQ(c.out[a].tokens.size(), 2u);
  EXPECT_EQ(c.out[b].reason, DSRT_FINISH_ABORT);
  EXPECT_TRUE(c.out[b].tokens.empty());
  EXPECT_TRUE(e->abort(a)); // already finished: a no-op
  ASSERT_TRUE(drain(*e));
  EXPECT_EQ(c.out[a].finishes, 1);
  EXPECT_EQ(e->stats().pages_used, 0);
}

/// Adds and aborts from several threads while the loop steps on its own.
TEST(EngineFake, LoopThreadWithConcurrentAddsAndAborts) {
  auto e = fakeEngine(kVocab, 256, 10, 8, 128);
  Collector c;
  ASSERT_EQ(e->start(), DSRT_OK);
  std::vector<std::thread> threads;
  std::mutex idsMutex;
  std::vector<std::pair<std::vector<int32_t>, int64_t>> added;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937 g(static_cast<uint32_t>(t));
      for (int i = 0; i < 25; ++i) {
        std::vector<int32_t> prompt = randomTokens(g, 1 + g() % 150);
        std::string error;
        int64_t id = e->add(prompt.data(), int64_t(prompt.size()),
                            params(1 + g() % 30, 1.0f, g()),
                            Collector::callback, &c, error);
        EXPECT_GE(id, 0) << error;
        if (g() % 4 == 0)
          EXPECT_TRUE(e->abort(id));
        {
          std::lock_guard<std::mutex> lock(idsMutex);
          added.emplace_back(prompt, id);
        }
        dsrt_engine_stats s = e->stats();
        EXPECT_LE(s.running, 8);
      }
    });
  for (auto &t : threads)
    t.join();
  ASSERT_EQ(e->waitIdle(), DSRT_OK) << dsrt_last_error();
  ASSERT_EQ(e->stop(), DSRT_OK);
  EXPECT_EQ(c.out.size(), 100u);
  for (auto &[prompt, id] : added) {
    const Outcome &o = c.out[id];
    EXPECT_EQ(o.finishes, 1);
    std::vector<int32_t> h = prompt;
    for (size_t t = 0; t < o.tokens.size(); ++t) {
      EXPECT_EQ(o.rows[t], fakeRow(h, kVocab));
      h.push_back(o.tokens[t]);
    }
  }
  bool hasWork = true;
  ASSERT_EQ(e->step(hasWork), DSRT_OK);
  EXPECT_FALSE(hasWork);
  EXPECT_EQ(e->checkInvariants(), "");
  EXPECT_EQ(e->stats().pages_used, 0);
}

/// A callback may add requests (e.g. a follow-up turn) and abort others.
TEST(EngineFake, CallbacksMayAddAndAbort) {
  auto e = fakeEngine(kVocab, 256, 8, 4, 256);
  struct Ctx {
    Engine *e;
    Collector c;
    int64_t followUp = -1;
  } ctx{e.get(), {}, -1};
  auto cb = [](void *user, const dsrt_engine_event *ev) {
    auto *x = static_cast<Ctx *>(user);
    Collector::callback(&x->c, ev);
    if (ev->finish_reason != DSRT_FINISH_NONE && x->followUp < 0) {
      std::vector<int32_t> p = {9, 9};
      std::string error;
      x->followUp =
          x->e->add(p.data(), 2, params(2), Collector::callback, &x->c, error);
    }
  };
  std::vector<int32_t> prompt = {1};
  std::string error;
  e->add(prompt.data(), 1, params(3), cb, &ctx, error);
  ASSERT_TRUE(drain(*e));
  ASSERT_GE(ctx.followUp, 0);
  EXPECT_EQ(ctx.c.out[ctx.followUp].tokens.size(), 2u);
}

} // namespace

namespace {

TEST(PrefixCache, NamesFollowTheirParents) {
  PrefixCache cache(4);
  std::vector<int32_t> a(64, 1), b(64, 2);
  uint64_t ha = PrefixCache::pageHash(0, a.data());
  uint64_t hb = PrefixCache::pageHash(ha, b.data());
  // No name under an unnamed parent.
  EXPECT_FALSE(cache.insert(1, 0, hb, b.data()));
  EXPECT_TRUE(cache.insert(0, -1, ha, a.data()));
  EXPECT_TRUE(cache.insert(1, 0, hb, b.data()));
  EXPECT_FALSE(cache.insert(2, -1, ha, a.data())); // the name is taken
  std::vector<int32_t> tokens = a;
  tokens.insert(tokens.end(), b.begin(), b.end());
  EXPECT_EQ(cache.lookup({ha, hb}, tokens), (std::vector<int32_t>{0, 1}));
  // Same names, other tokens (a collision): no hit past the first page.
  std::vector<int32_t> other = tokens;
  other[100] = 3;
  EXPECT_EQ(cache.lookup({ha, hb}, other), (std::vector<int32_t>{0}));
  // Losing the parent's name takes the child's.
  cache.evict(0);
  EXPECT_FALSE(cache.isCached(1));
  EXPECT_EQ(cache.numCached(), 0);
  EXPECT_TRUE(cache.consistent());
  EXPECT_TRUE(cache.lookup({ha, hb}, tokens).empty());
}

} // namespace

namespace {

/// An engine scheduling by priority (or FCFS) over the fake model.
std::unique_ptr<Engine> policyEngine(int64_t maxModelLen, int64_t numPages,
                                     int64_t maxSeqs, bool priority) {
  EngineConfig c;
  c.maxModelLen = maxModelLen;
  c.scheduler.numPages = numPages;
  c.scheduler.maxNumSeqs = maxSeqs;
  c.scheduler.maxNumBatchedTokens = 4096;
  c.scheduler.priority = priority;
  auto ex = std::make_unique<FakeExecutor>(kVocab, maxModelLen, numPages);
  EXPECT_EQ(Engine::check(c, *ex), "");
  return std::make_unique<Engine>(std::move(ex), c);
}

/// The order requests produced their first token and finished in.
struct Order {
  std::vector<int64_t> started, finished;
  Collector tokens;
  static void callback(void *user, const dsrt_engine_event *e) {
    auto *o = static_cast<Order *>(user);
    if (e->token >= 0 && std::find(o->started.begin(), o->started.end(),
                                   e->request_id) == o->started.end())
      o->started.push_back(e->request_id);
    if (e->finish_reason != DSRT_FINISH_NONE)
      o->finished.push_back(e->request_id);
    Collector::callback(&o->tokens, e);
  }
};

} // namespace

TEST(EngineFake, PriorityOrdersTheWaitingQueue) {
  std::vector<int32_t> prompt = {4, 5, 6};
  for (bool priority : {false, true}) {
    auto e = policyEngine(256, 16, /*maxSeqs=*/1, priority);
    Order o;
    std::string error;
    std::vector<int64_t> ids;
    for (int32_t prio : {3, 1, 1, 0}) {
      dsrt_request_params p = params(2);
      p.priority = priority ? prio : 0;
      ids.push_back(e->add(prompt.data(), 3, p, Order::callback, &o, error));
      ASSERT_GE(ids.back(), 0) << error;
    }
    ASSERT_TRUE(drain(*e));
    // One at a time: FCFS in arrival order; by priority, lower first and
    // arrival among equals.
    std::vector<int64_t> want =
        priority ? std::vector<int64_t>{ids[3], ids[1], ids[2], ids[0]} : ids;
    EXPECT_EQ(o.started, want) << (priority ? "priority" : "fcfs");
    for (int64_t id : ids) // each answer its own, whatever the order
      EXPECT_EQ(o.tokens.out[id].rows[0],
                fakeRow(std::vector<int32_t>(prompt), kVocab));
  }
}

TEST(EngineFake, PriorityPreemptsTheLeastImportantRunningRequest) {
  // Three pages for two requests that each grow to two: one must give way
  // once both cross into their second page. FCFS preempts the newest (b);
  // by priority the one of the larger priority value (a, the older).
  std::mt19937 g(9);
  std::vector<int32_t> prompt = randomTokens(g, 60);
  for (bool priority : {false, true}) {
    auto e = policyEngine(128, 3, /*maxSeqs=*/2, priority);
    Order o;
    std::string error;
    dsrt_request_params pa = params(40), pb = params(40);
    pa.priority = priority ? 5 : 0;
    // a runs before b arrives: a is the older running request either way.
    int64_t a = e->add(prompt.data(), 60, pa, Order::callback, &o, error);
    ASSERT_GE(a, 0);
    bool hasWork;
    ASSERT_EQ(e->step(hasWork), DSRT_OK);
    int64_t b = e->add(prompt.data(), 60, pb, Order::callback, &o, error);
    ASSERT_GE(b, 0) << error;
    ASSERT_TRUE(drain(*e));
    EXPECT_GT(e->stats().preemptions, 0);
    ASSERT_EQ(o.finished.size(), 2u);
    EXPECT_EQ(o.finished[0], priority ? b : a)
        << (priority ? "priority" : "fcfs");
    // The preempted one recomputed: the same greedy answer.
    EXPECT_EQ(o.tokens.out[a].tokens, o.tokens.out[b].tokens);
    EXPECT_EQ(o.tokens.out[a].tokens.size(), 40u);
  }
}

TEST(EngineFake, PriorityNeedsPriorityScheduling) {
  auto e = policyEngine(256, 16, 2, /*priority=*/false);
  Collector c;
  std::string error;
  std::vector<int32_t> prompt = {1, 2};
  dsrt_request_params p = params(2);
  p.priority = -1;
  EXPECT_EQ(e->add(prompt.data(), 2, p, Collector::callback, &c, error), -1);
  EXPECT_NE(error.find("needs priority scheduling"), std::string::npos)
      << error;
  p.priority = 0;
  EXPECT_GE(e->add(prompt.data(), 2, p, Collector::callback, &c, error), 0);
  ASSERT_TRUE(drain(*e));
}
