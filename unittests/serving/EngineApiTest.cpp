//===- EngineApiTest.cpp - the C API over SessionExecutor -----------------===//
//
// The stand-in kernels of unittests/engine (FakeKernels.cpp) loaded as a
// real artifact: requests served together through dsrt_engine_* give the
// logits dsrt_generate gives for each alone.
//
//===----------------------------------------------------------------------===//
#include "EngineTestUtil.h"
#include "TestUtil.h"
#include "dsrt/dsrt_engine.h"

using namespace dstest;

namespace {

constexpr int64_t kVocab = 12;

struct Model {
  TempDir dir;
  dsrt_model *m = nullptr;
  Model() {
    std::string path = dir.file("m.dsa");
    writeFile(path, artifact(fakeManifest(), readFile(DS_FAKE_KERNELS_1)));
    writeFakeCheckpoint(dir.path);
    EXPECT_EQ(dsrt_model_load(path.c_str(), dir.path.c_str(), "cpu", &m),
              DSRT_OK)
        << dsrt_last_error();
  }
  ~Model() { dsrt_model_free(m); }
};

struct EnginePtr {
  dsrt_engine *e = nullptr;
  ~EnginePtr() { dsrt_engine_free(e); }
};

/// dsrt_generate's tokens and logits for one request alone.
std::vector<float> generateAlone(dsrt_model *m,
                                 const std::vector<int32_t> &prompt,
                                 const std::vector<int32_t> &forced) {
  dsrt_session *s = nullptr;
  EXPECT_EQ(dsrt_session_create(m, 16, &s), DSRT_OK);
  dsrt_generate_options o{};
  o.max_new_tokens = int64_t(forced.size());
  o.force_tokens = forced.data();
  o.num_force_tokens = int64_t(forced.size());
  o.top_p = 1;
  std::vector<int32_t> out(forced.size());
  int64_t count = 0;
  std::vector<float> logits((prompt.size() + forced.size()) * kVocab);
  EXPECT_EQ(dsrt_generate(s, prompt.data(), int64_t(prompt.size()), &o,
                          out.data(), &count, logits.data(), nullptr),
            DSRT_OK)
      << dsrt_last_error();
  dsrt_session_free(s);
  return logits;
}

TEST(EngineApi, RequestsTogetherGiveTheirSoloLogits) {
  Model model;
  dsrt_engine_options o;
  dsrt_engine_options_default(&o);
  o.num_pages = 3;
  EnginePtr e;
  ASSERT_EQ(dsrt_engine_create(model.m, &o, &e.e), DSRT_OK)
      << dsrt_last_error();
  std::vector<std::vector<int32_t>> prompts = {
      {5, 9, 2}, {7}, {1, 2, 3, 4, 5, 6}};
  std::vector<std::vector<int32_t>> forced = {{4, 4, 8}, {2, 3, 11, 0}, {9}};
  Collector c;
  std::vector<int64_t> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    dsrt_request_params p = params(int64_t(forced[i].size()));
    p.force_tokens = forced[i].data();
    p.num_force_tokens = int64_t(forced[i].size());
    p.return_logits = 1;
    int64_t id = -1;
    ASSERT_EQ(dsrt_engine_add_request(e.e, prompts[i].data(),
                                      int64_t(prompts[i].size()), &p,
                                      Collector::callback, &c, &id),
              DSRT_OK)
        << dsrt_last_error();
    ids.push_back(id);
  }
  int hasWork = 1;
  for (int i = 0; i < 100 && hasWork; ++i)
    ASSERT_EQ(dsrt_engine_step(e.e, &hasWork), DSRT_OK) << dsrt_last_error();
  ASSERT_FALSE(hasWork);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const Outcome &got = c.out[ids[i]];
    EXPECT_EQ(got.tokens, forced[i]);
    EXPECT_EQ(got.reason, DSRT_FINISH_LENGTH);
    EXPECT_EQ(got.logits, generateAlone(model.m, prompts[i], forced[i]))
        << "request " << i;
  }
  dsrt_engine_stats st;
  ASSERT_EQ(dsrt_engine_stats_get(e.e, &st), DSRT_OK);
  EXPECT_EQ(st.pages_total, 3);
  EXPECT_EQ(st.pages_used, 0);
  EXPECT_EQ(st.finished_requests, 3);
  EXPECT_EQ(st.max_model_len, 16);
}

TEST(EngineApi, PoolFromBytesAndItsErrors) {
  Model model;
  dsrt_engine_options o;
  dsrt_engine_options_default(&o);
  EnginePtr e;
  EXPECT_EQ(dsrt_engine_create(model.m, &o, &e.e), DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(),
               "dsrt_engine_create: give kv_cache_bytes or num_pages");
  // 2 layers x 3 values x 4 bytes = 24 bytes a token, 1536 a page.
  o.kv_cache_bytes = 1535;
  EXPECT_EQ(dsrt_engine_create(model.m, &o, &e.e), DSRT_ERROR_OUT_OF_MEMORY);
  EXPECT_STREQ(dsrt_last_error(),
               "the KV cache pool of 0 pages (64 tokens x 24 bytes each) "
               "cannot hold one request of max_model_len 16 tokens (1 pages, "
               "1536 bytes)");
  o.kv_cache_bytes = 1536 * 5 + 100;
  ASSERT_EQ(dsrt_engine_create(model.m, &o, &e.e), DSRT_OK);
  dsrt_engine_stats st;
  ASSERT_EQ(dsrt_engine_stats_get(e.e, &st), DSRT_OK);
  EXPECT_EQ(st.pages_total, 5);
  dsrt_engine *none = e.e;
  EXPECT_EQ(dsrt_engine_create(nullptr, &o, &none), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(none, nullptr);
}

TEST(EngineApi, BadRequestsFailAtAddAndTheEngineServesOn) {
  Model model;
  dsrt_engine_options o;
  dsrt_engine_options_default(&o);
  o.num_pages = 2;
  EnginePtr e;
  ASSERT_EQ(dsrt_engine_create(model.m, &o, &e.e), DSRT_OK);
  dsrt_request_params p = params(2);
  std::vector<int32_t> longPrompt(17, 1), bad = {1, 12}, good = {1, 2};
  int64_t id = 7;
  EXPECT_EQ(dsrt_engine_add_request(e.e, longPrompt.data(), 17, &p, nullptr,
                                    nullptr, &id),
            DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(),
               "prompt of 17 tokens exceeds max_model_len (16)");
  EXPECT_EQ(id, -1);
  EXPECT_EQ(
      dsrt_engine_add_request(e.e, bad.data(), 2, &p, nullptr, nullptr, &id),
      DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(),
               "token id 12 at index 1 is out of range [0, 12)");
  p.top_p = 2;
  EXPECT_EQ(
      dsrt_engine_add_request(e.e, good.data(), 2, &p, nullptr, nullptr, &id),
      DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_engine_add_request(e.e, good.data(), 2, nullptr, nullptr,
                                    nullptr, &id),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_engine_abort(e.e, 42), DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(), "dsrt_engine_abort: no request 42");
  p.top_p = 1;
  Collector c;
  ASSERT_EQ(dsrt_engine_add_request(e.e, good.data(), 2, &p,
                                    Collector::callback, &c, &id),
            DSRT_OK);
  // Served by the engine's own thread this time.
  ASSERT_EQ(dsrt_engine_start(e.e), DSRT_OK);
  int hasWork;
  EXPECT_EQ(dsrt_engine_step(e.e, &hasWork), DSRT_ERROR_ARGUMENT);
  ASSERT_EQ(dsrt_engine_wait_idle(e.e), DSRT_OK) << dsrt_last_error();
  ASSERT_EQ(dsrt_engine_stop(e.e), DSRT_OK);
  EXPECT_EQ(c.out[id].finishes, 1);
  EXPECT_EQ(c.out[id].tokens.size(), 2u);
  EXPECT_EQ(dsrt_engine_step(nullptr, &hasWork), DSRT_ERROR_ARGUMENT);
  dsrt_engine_free(nullptr);
}

TEST(Sampling, TopKKeepsTheKBest) {
  std::vector<float> l = {1.0f, 3.0f, 2.9f, 2.8f, 0.5f};
  uint64_t rng = 5;
  for (int i = 0; i < 200; ++i) {
    int32_t t = dsrt_sample_top_k(l.data(), 5, 1.0f, 1.0f, 2, &rng);
    EXPECT_TRUE(t == 1 || t == 2) << t;
  }
  EXPECT_EQ(dsrt_sample_top_k(l.data(), 5, 5.0f, 1.0f, 1, &rng), 1);
  // top_k 0 is off: over many draws every token appears.
  std::vector<int> seen(5, 0);
  for (int i = 0; i < 2000; ++i)
    ++seen[size_t(dsrt_sample_top_k(l.data(), 5, 2.0f, 1.0f, 0, &rng))];
  for (int s : seen)
    EXPECT_GT(s, 0);
}

} // namespace
