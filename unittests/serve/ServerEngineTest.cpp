//===- ServerEngineTest.cpp - the server on the real engine, in-process ---===//
//
// EngineBackend over dsrt_engine.h on the stand-in kernels of
// unittests/engine (a real artifact file and checkpoint): concurrent
// clients get the tokens each prompt gets alone, dropped streams are
// aborted and free their pages, stop() drains. Under `make test-tsan` this
// checks the engine thread's callbacks against the HTTP threads.
//
//===----------------------------------------------------------------------===//

#include "EngineBackend.h"
#include "Routes.h"
#include "TestUtil.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <thread>

using namespace dsserve;
using nlohmann::json;

namespace {

TEST(EngineParams, EverySamplingFieldReachesTheEngine) {
  SamplingParams s;
  s.maxTokens = 7;
  s.temperature = 0.5f;
  s.topP = 0.9f;
  s.topK = 4;
  s.seed = 11;
  s.ignoreEos = true;
  s.stopTokenIds = {3, 5};
  s.promptLogprobs = true;
  s.presencePenalty = 0.25f;
  s.frequencyPenalty = -0.5f;
  s.repetitionPenalty = 1.3f;
  s.minP = 0.1f;
  s.minTokens = 2;
  s.logitBias = {{9, 4.0f}, {1, -100.0f}};
  EngineParams ep(s);
  const dsrt_request_params &p = ep.params;
  EXPECT_EQ(p.max_tokens, 7);
  EXPECT_EQ(p.temperature, 0.5f);
  EXPECT_EQ(p.top_p, 0.9f);
  EXPECT_EQ(p.top_k, 4);
  EXPECT_EQ(p.seed, 11u);
  EXPECT_EQ(p.ignore_eos, 1);
  ASSERT_EQ(p.num_stop_token_ids, 2);
  EXPECT_EQ(p.stop_token_ids[1], 5);
  EXPECT_EQ(p.prompt_logits, 1);
  EXPECT_EQ(p.presence_penalty, 0.25f);
  EXPECT_EQ(p.frequency_penalty, -0.5f);
  EXPECT_EQ(p.repetition_penalty, 1.3f);
  EXPECT_EQ(p.min_p, 0.1f);
  EXPECT_EQ(p.min_tokens, 2);
  ASSERT_EQ(p.num_logit_bias, 2);
  EXPECT_EQ(p.logit_bias_ids[0], 9);
  EXPECT_EQ(p.logit_bias_values[1], -100.0f);
  // Neutral values: nothing for the engine to process.
  EngineParams plain{SamplingParams{}};
  EXPECT_EQ(plain.params.num_logit_bias, 0);
  EXPECT_EQ(plain.params.repetition_penalty, 1.0f);
  EXPECT_EQ(plain.params.min_tokens, 0);
}

struct Fixture {
  dstest::TempDir dir;
  std::unique_ptr<EngineBackend> backend;
  std::unique_ptr<Server> server;
  std::thread thread;

  Fixture() {
    std::string path = dir.file("m.dsa");
    dstest::writeFile(path, dstest::artifact(dstest::fakeManifest(),
                                             dstest::readFile(DS_FAKE_KERNELS_1)));
    dstest::writeFakeCheckpoint(dir.path);
    EngineBackend::Config c;
    c.artifact = path;
    c.weights = dir.path;
    c.name = "fake-kernels";
    c.maxNumSeqs = 3;
    std::string error;
    backend = EngineBackend::create(c, nullptr, error);
    EXPECT_TRUE(backend) << error;
    ServerConfig sc;
    sc.port = 0;
    sc.modelName = "fake-kernels";
    // Below the engine's page, so that n > 1 requests of this 16-token
    // model take the deferred path (their later samples start after the
    // first's prefill) without a cache hit to show for it.
    sc.sharedPrefixTokens = 2;
    server = std::make_unique<Server>(*backend, sc);
    EXPECT_TRUE(server->bind(error)) << error;
    thread = std::thread([this] { server->serve(); });
  }
  ~Fixture() {
    server->stop();
    thread.join();
    backend->shutdown();
  }
  json complete(const std::vector<int32_t> &prompt, int maxTokens, int n = 1) {
    httplib::Client c("127.0.0.1", server->boundPort());
    c.set_read_timeout(60);
    json body = {{"prompt", prompt},
                 {"max_tokens", maxTokens},
                 {"temperature", 0},
                 {"ignore_eos", true},
                 {"return_token_ids", true},
                 {"logprobs", 2},
                 {"n", n}};
    auto res = c.Post("/v1/completions", body.dump(), "application/json");
    if (!res || res->status != 200)
      return json();
    return json::parse(res->body);
  }
};

TEST(ServerEngine, ConcurrentRequestsEqualSoloAndDropsFreePages) {
  Fixture f;
  ASSERT_TRUE(f.backend);
  std::vector<std::vector<int32_t>> prompts = {
      {1, 2, 3}, {4, 5}, {6}, {7, 8, 9, 10}, {11, 1}, {2, 2, 2}};
  std::vector<json> solo;
  for (const auto &p : prompts)
    solo.push_back(f.complete(p, 6));
  for (const json &s : solo)
    ASSERT_EQ(s["choices"][0]["token_ids"].size(), 6u) << s.dump();

  std::vector<json> together(prompts.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < prompts.size(); ++i)
    clients.emplace_back([&, i] { together[i] = f.complete(prompts[i], 6); });
  // Greedy samples of one prompt, the later ones deferred behind the
  // first's prefill: each the solo answer.
  json samples;
  clients.emplace_back([&] { samples = f.complete(prompts[3], 6, 3); });
  // Meanwhile streams that hang up after their first bytes.
  for (int k = 0; k < 4; ++k)
    clients.emplace_back([&] {
      httplib::Client c("127.0.0.1", f.server->boundPort());
      httplib::Request req;
      req.method = "POST";
      req.path = "/v1/completions";
      req.body = R"({"prompt":[1,2],"max_tokens":12,"ignore_eos":true,)"
                 R"("stream":true})";
      req.set_header("Content-Type", "application/json");
      req.content_receiver = [](const char *, size_t, uint64_t, uint64_t) {
        return false;
      };
      (void)c.send(req);
    });
  for (std::thread &t : clients)
    t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(together[i]["choices"][0]["token_ids"],
              solo[i]["choices"][0]["token_ids"])
        << "prompt " << i;
    EXPECT_EQ(together[i]["choices"][0]["logprobs"]["token_logprobs"],
              solo[i]["choices"][0]["logprobs"]["token_logprobs"]);
    EXPECT_EQ(together[i]["usage"]["completion_tokens"], 6);
  }
  ASSERT_EQ(samples["choices"].size(), 3u) << samples.dump();
  for (int j = 0; j < 3; ++j)
    EXPECT_EQ(samples["choices"][j]["token_ids"],
              solo[3]["choices"][0]["token_ids"])
        << "choice " << j;
  for (int i = 0; i < 1000; ++i) {
    BackendStats s = f.backend->stats();
    if (s.running == 0 && s.waiting == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  BackendStats s = f.backend->stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.pagesUsed, 0);
}

} // namespace

// /metrics carries the model's account of its checkpoint's pages
// (dsrt_model_weight_pages; this stand-in model copies its few weights and
// maps none, so both are 0 here, and ds-run's and Python's tests see real
// mappings).
TEST(ServerEngine, MetricsCarryTheCheckpointsPages) {
  Fixture f;
  ASSERT_TRUE(f.backend);
  ASSERT_FALSE(f.complete({1, 2, 3}, 2).is_null());
  BackendStats s = f.backend->stats();
  EXPECT_LE(s.weightsHugePageBytes, s.weightsResidentBytes);
  httplib::Client c("127.0.0.1", f.server->boundPort());
  auto res = c.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_NE(res->body.find("\nds_weights_resident_bytes " +
                           std::to_string(s.weightsResidentBytes) + "\n"),
            std::string::npos)
      << res->body;
  EXPECT_NE(res->body.find("\nds_weights_huge_page_bytes " +
                           std::to_string(s.weightsHugePageBytes) + "\n"),
            std::string::npos);
}
