//===- EngineSpeculativeTest.cpp - drafts, verification, rollback ---------===//
//
// Speculative decoding on the fake executor and its fake drafter: greedy
// requests give exactly the plain engine's tokens whatever the drafter's
// quality, budget cuts and preemptions; sampled requests give tokens
// distributed as the main model's (a conditional chi-square test that the
// wrong acceptance rules fail at the same sample size).
//
//===----------------------------------------------------------------------===//
#include "EngineTestUtil.h"
#include "engine/Speculative.h"

#include <cmath>
#include <random>

using namespace dstest;

namespace {

std::vector<int32_t> randomTokens(std::mt19937 &g, int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto &x : t)
    x = int32_t(g() % vocab);
  return t;
}

struct Served {
  std::map<int64_t, Outcome> out;
  dsrt_engine_stats stats;
};

Served runAll(Engine &e, const std::vector<std::vector<int32_t>> &prompts,
              const std::vector<dsrt_request_params> &ps) {
  Collector c;
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::string error;
    EXPECT_GE(e.add(prompts[i].data(), int64_t(prompts[i].size()), ps[i],
                    Collector::callback, &c, error),
              0)
        << error;
  }
  EXPECT_TRUE(drain(e));
  return {c.out, e.stats()};
}

TEST(EngineSpeculative, GreedyTokensAreThePlainEnginesTokens) {
  constexpr int64_t kVocab = 97, kLen = 400;
  std::mt19937 g(11);
  std::vector<std::vector<int32_t>> prompts;
  std::vector<dsrt_request_params> ps;
  for (int i = 0; i < 6; ++i) {
    prompts.push_back(randomTokens(g, 3 + 37 * i, kVocab));
    ps.push_back(params(120 + 30 * i)); // long decodes crossing pages
  }
  // (pages, budget): roomy; a budget that cuts segments; a pool so small
  // that requests are preempted and recomputed.
  for (auto [pages, budget] :
       {std::pair<int64_t, int64_t>{64, 4096}, {64, 7}, {8, 96}}) {
    SCOPED_TRACE("pages " + std::to_string(pages) + " budget " +
                 std::to_string(budget));
    auto plain = fakeEngine(kVocab, kLen, pages, 4, budget, true, /*eos=*/5);
    Served want = runAll(*plain, prompts, ps);
    for (int64_t k : {1, 2, 4})
      for (double agreement : {0.0, 0.6, 1.0}) {
        SCOPED_TRACE("k " + std::to_string(k) + " agreement " +
                     std::to_string(agreement));
        auto e =
            fakeEngine(kVocab, kLen, pages, 4, budget, true, 5, k, agreement);
        Served got = runAll(*e, prompts, ps);
        ASSERT_EQ(got.out.size(), want.out.size());
        for (auto &[id, o] : want.out) {
          EXPECT_EQ(got.out[id].tokens, o.tokens) << "request " << id;
          EXPECT_EQ(got.out[id].rows, o.rows) << "request " << id;
          EXPECT_EQ(got.out[id].reason, o.reason) << "request " << id;
        }
        const dsrt_engine_stats &s = got.stats;
        EXPECT_GT(s.spec_rounds, 0);
        EXPECT_LE(s.spec_draft_tokens, k * s.spec_rounds);
        EXPECT_EQ(s.pages_used, 0);
        if (agreement == 1.0) {
          EXPECT_EQ(s.spec_accepted_tokens, s.spec_draft_tokens);
          EXPECT_LT(s.steps, want.stats.steps);
        } else if (agreement == 0.6) {
          EXPECT_GT(s.spec_accepted_tokens, 0);
          EXPECT_LT(s.spec_accepted_tokens, s.spec_draft_tokens);
        }
      }
  }
}

//===----------------------------------------------------------------------===//
// The distribution of sampled tokens.
//===----------------------------------------------------------------------===//

constexpr int64_t kSmallVocab = 5;
constexpr int64_t kSamples = 6000, kNew = 4, kDrafts = 2;
constexpr double kAgreement = 0.3;

SamplingParams toParams(const dsrt_request_params &p) {
  SamplingParams s;
  s.temperature = p.temperature;
  s.topP = p.top_p;
  s.topK = p.top_k;
  return s;
}

struct ChiSquare {
  double stat = 0;
  int64_t dof = 0;
  /// Far in the tail for a correct sampler (about 4 standard deviations
  /// of the chi-square with `dof` degrees of freedom).
  double threshold() const { return double(dof) + 4 * std::sqrt(2.0 * dof); }
};

/// Goodness of fit of every generated token to the model's distribution
/// given its history: tokens are tallied per history, each history seen
/// 25 times or more contributes sum (O - E)^2 / E over its tokens (cells
/// expecting fewer than 5 pooled), and dof = cells - 1 per history.
ChiSquare conditionalFit(const std::vector<int32_t> &prompt,
                         const std::vector<std::vector<int32_t>> &samples,
                         const SamplingParams &sp) {
  std::map<std::vector<int32_t>, std::vector<int64_t>> counts;
  for (const auto &seq : samples) {
    std::vector<int32_t> h = prompt;
    for (int32_t t : seq) {
      auto &c = counts[h];
      c.resize(size_t(kSmallVocab));
      ++c[size_t(t)];
      h.push_back(t);
    }
  }
  ChiSquare out;
  std::vector<double> p;
  for (auto &[h, c] : counts) {
    int64_t n = 0;
    for (int64_t x : c)
      n += x;
    if (n < 25)
      continue;
    samplingProbs(fakeRow(h, kSmallVocab).data(), kSmallVocab, sp, p);
    double pooledO = 0, pooledE = 0;
    int64_t cells = 0;
    for (int64_t v = 0; v < kSmallVocab; ++v) {
      double e = p[size_t(v)] * double(n), o = double(c[size_t(v)]);
      if (e < 5) {
        pooledO += o;
        pooledE += e;
        continue;
      }
      out.stat += (o - e) * (o - e) / e;
      ++cells;
    }
    if (pooledE > 0) {
      out.stat +=
          (pooledO - pooledE) * (pooledO - pooledE) / std::max(pooledE, 1e-3);
      ++cells;
    }
    out.dof += cells - 1;
  }
  return out;
}

std::vector<std::vector<int32_t>> engineSamples(const dsrt_request_params &p,
                                                const std::vector<int32_t> &pr,
                                                int64_t speculative,
                                                dsrt_engine_stats *stats) {
  auto e = fakeEngine(kSmallVocab, 64, 256, 256, 4096, true, -1, speculative,
                      kAgreement);
  std::vector<std::vector<int32_t>> prompts(size_t(kSamples), pr);
  std::vector<dsrt_request_params> ps(size_t(kSamples), p);
  for (int64_t i = 0; i < kSamples; ++i)
    ps[size_t(i)].seed = uint64_t(1000 + i);
  Served r = runAll(*e, prompts, ps);
  std::vector<std::vector<int32_t>> out;
  for (auto &[id, o] : r.out) {
    EXPECT_EQ(int64_t(o.tokens.size()), kNew);
    out.push_back(o.tokens);
  }
  if (stats)
    *stats = r.stats;
  return out;
}

enum class Rule { Correct, AcceptAlways, ResidualFromP };

/// The same speculative loop outside the engine with a chosen acceptance
/// rule, to show the test above tells the wrong rules apart.
std::vector<std::vector<int32_t>> simulate(const std::vector<int32_t> &prompt,
                                           const SamplingParams &sp,
                                           Rule rule) {
  std::vector<std::vector<int32_t>> out;
  uint64_t rng = 12345;
  std::vector<double> p, q;
  std::vector<float> row(static_cast<size_t>(kSmallVocab));
  for (int64_t i = 0; i < kSamples; ++i) {
    std::vector<int32_t> h = prompt, seq;
    auto emit = [&](int32_t t) {
      seq.push_back(t);
      h.push_back(t);
    };
    samplingProbs(fakeRow(h, kSmallVocab).data(), kSmallVocab, sp, p);
    emit(drawFrom(p.data(), kSmallVocab, &rng));
    while (int64_t(seq.size()) < kNew) {
      int64_t k = std::min<int64_t>(kDrafts, kNew - int64_t(seq.size()) - 1);
      std::vector<int32_t> drafts, ctx = h;
      std::vector<std::vector<double>> qs;
      for (int64_t j = 0; j < k; ++j) {
        FakeExecutor::draftAfter(ctx, kSmallVocab, kAgreement, row.data());
        samplingProbs(row.data(), kSmallVocab, sp, q);
        drafts.push_back(drawFrom(q.data(), kSmallVocab, &rng));
        qs.push_back(q);
        ctx.push_back(drafts.back());
      }
      bool rejected = false;
      for (int64_t j = 0; j < k && !rejected; ++j) {
        samplingProbs(fakeRow(h, kSmallVocab).data(), kSmallVocab, sp, p);
        int32_t d = drafts[size_t(j)];
        double u = uniform01(&rng);
        if (rule == Rule::AcceptAlways || u * qs[j][d] < p[size_t(d)]) {
          emit(d);
          continue;
        }
        rejected = true;
        std::vector<double> res(p);
        if (rule == Rule::Correct)
          for (int64_t v = 0; v < kSmallVocab; ++v)
            res[size_t(v)] = std::max(0.0, p[size_t(v)] - qs[j][size_t(v)]);
        emit(drawFrom(res.data(), kSmallVocab, &rng));
      }
      if (!rejected) {
        samplingProbs(fakeRow(h, kSmallVocab).data(), kSmallVocab, sp, p);
        emit(drawFrom(p.data(), kSmallVocab, &rng));
      }
    }
    out.push_back(seq);
  }
  return out;
}

void checkDistribution(const dsrt_request_params &p) {
  std::vector<int32_t> prompt = {1, 2, 3};
  SamplingParams sp = toParams(p);
  ChiSquare plain =
      conditionalFit(prompt, engineSamples(p, prompt, 0, nullptr), sp);
  dsrt_engine_stats stats;
  ChiSquare spec =
      conditionalFit(prompt, engineSamples(p, prompt, kDrafts, &stats), sp);
  ChiSquare always =
      conditionalFit(prompt, simulate(prompt, sp, Rule::AcceptAlways), sp);
  ChiSquare fromP =
      conditionalFit(prompt, simulate(prompt, sp, Rule::ResidualFromP), sp);
  ChiSquare correct =
      conditionalFit(prompt, simulate(prompt, sp, Rule::Correct), sp);
  std::printf("chi-square (dof, threshold): plain %.1f (%lld, %.1f), "
              "speculative %.1f (%lld, %.1f), simulated correct %.1f (%lld), "
              "accept-always %.1f (%lld), residual-from-p %.1f (%lld); "
              "accepted %lld of %lld drafts\n",
              plain.stat, (long long)plain.dof, plain.threshold(), spec.stat,
              (long long)spec.dof, spec.threshold(), correct.stat,
              (long long)correct.dof, always.stat, (long long)always.dof,
              fromP.stat, (long long)fromP.dof,
              (long long)stats.spec_accepted_tokens,
              (long long)stats.spec_draft_tokens);
  EXPECT_GT(plain.dof, 8); // histories with enough samples to judge
  EXPECT_LT(plain.stat, plain.threshold());
  EXPECT_LT(spec.stat, spec.threshold());
  EXPECT_LT(correct.stat, correct.threshold());
  EXPECT_GT(always.stat, always.threshold());
  EXPECT_GT(fromP.stat, fromP.threshold());
  // Drafts were both accepted and rejected: both branches were sampled.
  EXPECT_GT(stats.spec_accepted_tokens, stats.spec_draft_tokens / 10);
  EXPECT_LT(stats.spec_accepted_tokens, stats.spec_draft_tokens);
}

TEST(EngineSpeculative, SampledTokensHaveTheMainModelsDistribution) {
  checkDistribution(params(kNew, 1.0f));
}

TEST(EngineSpeculative, SamplingHonoursTemperatureTopKTopP) {
  dsrt_request_params p = params(kNew, 0.7f);
  p.top_k = 4;
  p.top_p = 0.9f;
  checkDistribution(p);
}

TEST(EngineSpeculative, BadSettingsAreRefused) {
  EngineConfig c;
  c.maxModelLen = 64;
  c.scheduler.numPages = 4;
  FakeExecutor noDrafter(8, 64, 4);
  c.speculativeTokens = 2;
  EXPECT_EQ(Engine::check(c, noDrafter),
            "speculative decoding needs a drafter, and this executor has none");
  FakeExecutor drafter(8, 64, 4);
  drafter.enableDrafter(0.5);
  c.speculativeTokens = 17;
  EXPECT_EQ(Engine::check(c, drafter),
            "speculative tokens must be in [0, 16], got 17");
  int64_t k = 0;
  EXPECT_EQ(parseSpeculative("mtp", k), "");
  EXPECT_EQ(k, 1);
  EXPECT_EQ(parseSpeculative("mtp:3", k), "");
  EXPECT_EQ(k, 3);
  for (const char *bad : {"", "mtp:", "mtp:0", "mtp:17", "mtp:x", "eagle",
                          "mtp:1:2", "mtp:-1", "mtp:99999"})
    EXPECT_NE(parseSpeculative(bad, k), "") << bad;
  EXPECT_EQ(parseSpeculative("mtp:0", k),
            "speculative: expected 'mtp' or 'mtp:K' with K in [1, 16], got "
            "'mtp:0'");
}

} // namespace
