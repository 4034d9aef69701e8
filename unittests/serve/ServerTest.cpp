//===- ServerTest.cpp - the server in-process, under concurrent clients ---===//
//
// The whole HTTP path (httplib pool threads, the backend thread, SSE
// providers, aborts, drain) with many clients at once; built into the
// ThreadSanitizer tree by `make test-tsan`, where it is the race check of
// the server's threads.
//
//===----------------------------------------------------------------------===//

#include "FakeBackend.h"
#include "Routes.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <thread>

using namespace dsserve;
using nlohmann::json;

namespace {

struct Running {
  FakeBackend backend;
  Server server;
  std::thread thread;
  int port = 0;

  Running(FakeBackend::Config bc, ServerConfig sc)
      : backend(bc), server(backend, sc) {
    std::string error;
    EXPECT_TRUE(server.bind(error)) << error;
    port = server.boundPort();
    thread = std::thread([this] { server.serve(); });
  }
  ~Running() {
    server.stop();
    thread.join();
    backend.shutdown();
  }
  httplib::Client client() {
    httplib::Client c("127.0.0.1", port);
    c.set_read_timeout(30);
    return c;
  }
};

/// POSTs a streaming request, handing each received piece to `receive`
/// (false: hang up). Returns the status, 0 when there was no response.
int postStream(httplib::Client &c, const std::string &path,
               const std::string &body,
               std::function<bool(const char *, size_t)> receive) {
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [receive](const char *d, size_t n, uint64_t,
                                   uint64_t) { return receive(d, n); };
  auto res = c.send(req);
  return res ? res->status : 0;
}

ServerConfig config() {
  ServerConfig c;
  c.port = 0;
  c.modelName = "fake";
  c.maxInFlight = 64;
  c.shutdownTimeoutSeconds = 5;
  return c;
}

TEST(Server, ConcurrentClientsStreamsDisconnectsAndBadBodies) {
  FakeBackend::Config bc;
  bc.maxNumSeqs = 4;
  bc.tokenDelayMs = 1;
  Running r(bc, config());
  const std::string script = FakeBackend::script();
  std::atomic<int> failures{0};
  auto fail = [&](const std::string &what) {
    ++failures;
    ADD_FAILURE() << what;
  };
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&, t] {
      httplib::Client c = r.client();
      for (int i = 0; i < 6; ++i) {
        switch ((t + i) % 4) {
        case 0: { // whole completion, greedy
          auto res = c.Post("/v1/completions",
                            R"({"prompt":"hi","max_tokens":9,"temperature":0})",
                            "application/json");
          if (!res || res->status != 200 ||
              json::parse(res->body)["choices"][0]["text"] !=
                  script.substr(0, 9))
            fail("completion");
          break;
        }
        case 1: { // stream read to the end
          std::string body;
          int status = postStream(
              c, "/v1/completions",
              R"({"prompt":"hi","max_tokens":12,"temperature":0,"stream":true})",
              [&](const char *d, size_t n) {
                body.append(d, n);
                return true;
              });
          if (status != 200 || body.find("data: [DONE]") == std::string::npos)
            fail("stream");
          break;
        }
        case 2: { // stream dropped after the first bytes
          httplib::Client d = r.client();
          (void)postStream(d, "/v1/chat/completions",
                           R"({"messages":[{"role":"user","content":"x"}],)"
                           R"("max_tokens":200,"ignore_eos":true,)"
                           R"("stream":true})",
                           [](const char *, size_t) { return false; });
          break;
        }
        default: { // malformed
          auto res = c.Post("/v1/completions", "{\"prompt\": [1,",
                            "application/json");
          if (!res || res->status != 400)
            fail("malformed");
        }
        }
      }
    });
  for (std::thread &t : clients)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  // Dropped streams are aborted: nothing keeps running or holds pages.
  for (int i = 0; i < 500; ++i) {
    BackendStats s = r.backend.stats();
    if (s.running == 0 && s.waiting == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  BackendStats s = r.backend.stats();
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.pagesUsed, 0);
}

TEST(Server, StopDrainsInFlightStreams) {
  FakeBackend::Config bc;
  bc.tokenDelayMs = 5;
  auto r = std::make_unique<Running>(bc, config());
  std::string body;
  std::thread client([&] {
    httplib::Client c = r->client();
    (void)postStream(c, "/v1/completions",
                     R"({"prompt":"x","max_tokens":40,"ignore_eos":true,)"
                     R"("temperature":0,"stream":true})",
                     [&](const char *d, size_t n) {
                       body.append(d, n);
                       return true;
                     });
  });
  // Stop once the stream is being generated (bounded wait).
  for (int i = 0; i < 1000 && r->backend.stats().running == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(r->backend.stats().running, 1);
  r->server.stop();
  client.join();
  r.reset();
  EXPECT_NE(body.find("\"finish_reason\":\"length\""), std::string::npos)
      << body;
  EXPECT_NE(body.find("data: [DONE]"), std::string::npos);
}

} // namespace
