//===- Routes.cpp - the HTTP server: routes, admission, shutdown ----------===//
//
// cpp-httplib runs each connection on a pool thread. A generation request
// is admitted (bounded: past maxInFlight it is a 429, while draining a
// 503), parsed, tokenized and submitted; the backend pushes tokens into a
// Channel that the handler thread (whole response) or the SSE content
// provider (stream) drains. A failed write means the client left: the
// request is aborted, which frees its cache pages.
//
//===----------------------------------------------------------------------===//

#include "Routes.h"

#include "ApiError.h"
#include "ApiKey.h"
#include "OpenAIRequest.h"
#include "Responses.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <random>
#include <thread>

using nlohmann::json;

namespace dsserve {
namespace {

/// Where the backend's thread leaves tokens for the HTTP thread.
class Channel : public RequestSink {
public:
  void onToken(const TokenOutput &t) override {
    std::lock_guard<std::mutex> lock(mutex);
    tokens.push_back(t);
    cv.notify_all();
  }
  void onFinish(FinishReason r, const std::string &e) override {
    std::lock_guard<std::mutex> lock(mutex);
    done = true;
    reason = r;
    error = e;
    cv.notify_all();
  }
  /// Moves out what arrived, waiting up to `seconds` for something.
  /// Returns true once the request finished (and everything was taken).
  bool take(std::deque<TokenOutput> &out, double seconds, FinishReason &r,
            std::string &e) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::duration<double>(seconds),
                [&] { return done || !tokens.empty(); });
    out.swap(tokens);
    tokens.clear();
    r = reason;
    e = error;
    return done;
  }

private:
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<TokenOutput> tokens;
  bool done = false;
  FinishReason reason = FinishReason::Abort;
  std::string error;
};

std::string randomHex() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  snprintf(buf, sizeof(buf), "%016llx%08llx", (unsigned long long)rng(),
           (unsigned long long)(rng() & 0xffffffffu));
  return buf;
}

} // namespace

/// Counts an admitted request until its response is complete.
struct InFlightGuard {
  Server &s;
  explicit InFlightGuard(Server &s) : s(s) {}
  ~InFlightGuard() { --s.inFlight; }
};

/// One request's generation, shared by the handler and (for streams) the
/// content provider, which outlives the handler.
struct StreamState {
  Server &server;
  std::unique_ptr<InFlightGuard> guard;
  std::shared_ptr<Channel> channel = std::make_shared<Channel>();
  std::unique_ptr<CompletionWriter> writer;
  uint64_t serverId = 0, backendId = 0;
  double arrival = 0, lastToken = 0;
  bool channelDone = false;
  bool aborted = false;
  bool recorded = false;
  FinishReason reason = FinishReason::Abort;
  std::string error;

  explicit StreamState(Server &s) : server(s) {}

  void abort() {
    if (!aborted && !channelDone) {
      aborted = true;
      server.backend.abort(backendId);
    }
  }

  /// Takes what the backend produced (waiting up to `seconds`).
  void pump(double seconds) {
    std::deque<TokenOutput> toks;
    channelDone = channel->take(toks, seconds, reason, error);
    for (const TokenOutput &t : toks) {
      if (lastToken == 0)
        server.metrics.firstToken(t.time - arrival);
      else
        server.metrics.interToken(t.time - lastToken);
      lastToken = t.time;
      if (!writer->onToken(t))
        abort(); // a stop string matched
    }
    if (channelDone)
      writer->onFinish(reason);
  }

  /// The stream's next events to `sink` (SSE); false when the client left.
  bool send(httplib::DataSink &sink) {
    if (!writer->finished())
      pump(1.0);
    std::string events;
    if (reason == FinishReason::Error && channelDone && !error.empty()) {
      events = sseEvent(json::parse(ApiError{500, "generation failed: " + error,
                                             "internal_error", "", ""}
                                        .toJson())) +
               "data: [DONE]\n\n";
      error.clear();
      writer->takeStreamEvents(); // drop the normal ending
    } else {
      events = writer->takeStreamEvents();
    }
    // A comment while nothing comes: keeps proxies patient and finds
    // clients that left while the request waited.
    if (events.empty())
      events = ": keep-alive\n\n";
    if (!sink.write(events.data(), events.size())) {
      abort();
      return false;
    }
    if (writer->finished() && events.find("[DONE]") != std::string::npos)
      sink.done();
    return true;
  }

  /// Once, when the response is over (sent, failed or client gone).
  void finish() {
    if (recorded)
      return;
    recorded = true;
    if (!writer->finished())
      abort();
    server.metrics.requestFinished(
        writer->finished() ? writer->finishReason() : "abort",
        writer->promptTokens(), writer->completionTokens(),
        steadySeconds() - arrival);
    std::lock_guard<std::mutex> lock(server.liveMutex);
    server.live.erase(serverId);
  }
};

Server::Server(Backend &b, ServerConfig c)
    : backend(b), config(std::move(c)),
      http(std::make_unique<httplib::Server>()) {
  size_t threads = size_t(config.maxInFlight) + 16;
  http->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http->set_payload_max_length(8u << 20);
  http->set_keep_alive_timeout(2);
  http->set_read_timeout(30);
  http->set_write_timeout(30);
  routes();
}

Server::~Server() {
  if (watchdog.joinable())
    watchdog.join();
}

void Server::reply(httplib::Response &res, int status,
                   const std::string &body) {
  res.status = status;
  res.set_content(body, "application/json");
}

bool Server::authorized(const httplib::Request &req, httplib::Response &res) {
  if (apiKeyAccepted(config.apiKey, req.get_header_value("Authorization")))
    return true;
  ApiError e{401, "invalid or missing API key (send 'Authorization: Bearer "
                  "<key>')",
             "invalid_request_error", "", "invalid_api_key"};
  reply(res, 401, e.toJson());
  return false;
}

void Server::routes() {
  http->Get("/health", [this](const httplib::Request &,
                              httplib::Response &res) {
    if (draining)
      reply(res, 503, R"({"status":"shutting down"})");
    else
      reply(res, 200, R"({"status":"ok"})");
  });
  http->Get("/metrics", [this](const httplib::Request &,
                               httplib::Response &res) {
    res.set_content(metrics.render(backend.stats(), inFlight.load()),
                    "text/plain; version=0.0.4; charset=utf-8");
  });
  http->Get("/v1/models", [this](const httplib::Request &req,
                                 httplib::Response &res) {
    if (!authorized(req, res))
      return;
    ModelInfo info = backend.info();
    json m = {{"id", config.modelName},
              {"object", "model"},
              {"created", int64_t(time(nullptr))},
              {"owned_by", "ds"},
              {"max_model_len", info.maxContext}};
    reply(res, 200, dumpJson({{"object", "list"}, {"data", {m}}}));
  });
  http->Post("/v1/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               generate(req, res, /*chat=*/false);
             });
  http->Post("/v1/chat/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               generate(req, res, /*chat=*/true);
             });
  // Unknown routes and httplib's own refusals (413, 400) in OpenAI's shape.
  http->set_error_handler([](const httplib::Request &req,
                             httplib::Response &res) {
    if (!res.body.empty())
      return;
    ApiError e{res.status,
               res.status == 404 ? "no route " + req.method + " " + req.path
                                 : "request refused (" +
                                       std::to_string(res.status) + ")",
               "invalid_request_error", "", ""};
    res.set_content(e.toJson(), "application/json");
  });
  http->set_exception_handler([](const httplib::Request &,
                                 httplib::Response &res,
                                 std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception &e) {
      what = std::string("internal error: ") + e.what();
    } catch (...) {
    }
    ApiError e{500, what, "internal_error", "", ""};
    res.status = 500;
    res.set_content(e.toJson(), "application/json");
  });
}

bool Server::promptTokens(const ParsedRequest &r, std::vector<int32_t> &out,
                          httplib::Response &res) {
  Tokenizer *tok = backend.tokenizer();
  std::string err;
  if (r.promptTokens) {
    out = *r.promptTokens;
  } else if (!tok) {
    reply(res, 400,
          ApiError::invalid("this server has no tokenizer (start it with "
                            "--tokenizer DIR): send the prompt as token ids",
                            r.endpoint == Endpoint::Completions ? "prompt"
                                                                : "messages")
              .toJson());
    return false;
  } else if (r.endpoint == Endpoint::ChatCompletions) {
    if (!tok->renderChat(r.messagesJson, out, err)) {
      reply(res, 400, ApiError::invalid(err, "messages").toJson());
      return false;
    }
  } else if (!tok->encode(*r.promptText, out, err)) {
    reply(res, 400, ApiError::invalid(err, "prompt").toJson());
    return false;
  }
  ModelInfo info = backend.info();
  if (out.empty()) {
    reply(res, 400, ApiError::invalid("the prompt is empty", "prompt").toJson());
    return false;
  }
  for (int32_t t : out)
    if (t < 0 || t >= info.vocabSize) {
      reply(res, 400,
            ApiError::invalid("token id " + std::to_string(t) +
                                  " is outside the vocabulary [0, " +
                                  std::to_string(info.vocabSize) + ")",
                              "prompt")
                .toJson());
      return false;
    }
  return true;
}

bool Server::admit(const httplib::Request &req, httplib::Response &res) {
  if (!authorized(req, res))
    return false;
  if (draining) {
    reply(res, 503,
          ApiError{503, "the server is shutting down", "service_unavailable",
                   "", ""}
              .toJson());
    return false;
  }
  if (++inFlight > config.maxInFlight) {
    --inFlight;
    reply(res, 429,
          ApiError{429,
                   "too many requests in flight (" +
                       std::to_string(config.maxInFlight) +
                       "); retry later",
                   "rate_limit_exceeded", "", "rate_limit_exceeded"}
              .toJson());
    return false;
  }
  return true;
}

bool Server::prepare(const ParsedRequest &r, GenerateRequest &g,
                     httplib::Response &res) {
  if (!r.model.empty() && r.model != config.modelName) {
    ApiError e{404, "the model '" + r.model + "' does not exist (this server "
                    "serves '" + config.modelName + "')",
               "invalid_request_error", "model", "model_not_found"};
    reply(res, 404, e.toJson());
    return false;
  }
  if (!promptTokens(r, g.prompt, res))
    return false;
  ModelInfo info = backend.info();
  int64_t p = int64_t(g.prompt.size());
  int64_t room = info.maxContext - p;
  if (room < 1 || (r.maxTokens && *r.maxTokens > room)) {
    std::string msg =
        "this model's maximum context length is " +
        std::to_string(info.maxContext) + " tokens; the prompt has " +
        std::to_string(p) + (r.maxTokens ? " and max_tokens asks for " +
                                               std::to_string(*r.maxTokens)
                                         : std::string(""));
    reply(res, 400,
          ApiError{400, msg, "invalid_request_error",
                   r.maxTokens && room >= 1 ? "max_tokens" : "prompt",
                   "context_length_exceeded"}
              .toJson());
    return false;
  }
  g.params.maxTokens = r.maxTokens ? *r.maxTokens : room;
  g.params.temperature = r.temperature;
  g.params.topP = r.topP;
  g.params.topK = r.topK;
  for (int32_t t : r.stopTokenIds)
    if (t >= info.vocabSize) {
      reply(res, 400,
            ApiError::invalid("stop token id " + std::to_string(t) +
                                  " is outside the vocabulary [0, " +
                                  std::to_string(info.vocabSize) + ")",
                              "stop_token_ids")
                .toJson());
      return false;
    }
  g.params.stopTokenIds = r.stopTokenIds;
  g.params.seed = r.seed ? *r.seed : std::random_device{}();
  g.params.ignoreEos = r.ignoreEos;
  g.params.topLogprobs = r.logprobs ? r.topLogprobs : -1;
  return true;
}

void Server::generate(const httplib::Request &req, httplib::Response &res,
                      bool chat) {
  double arrival = steadySeconds();
  if (!admit(req, res))
    return metrics.httpResponse(res.status);
  auto st = std::make_shared<StreamState>(*this);
  st->guard = std::make_unique<InFlightGuard>(*this);
  st->arrival = arrival;

  ApiError err;
  auto parsed = parseRequest(
      chat ? Endpoint::ChatCompletions : Endpoint::Completions, req.body, err);
  if (!parsed) {
    reply(res, err.status, err.toJson());
    return metrics.httpResponse(err.status);
  }
  const ParsedRequest &r = *parsed;
  GenerateRequest g;
  if (!prepare(r, g, res))
    return metrics.httpResponse(res.status);
  int64_t p = int64_t(g.prompt.size());

  std::string id = (chat ? "chatcmpl-" : "cmpl-") + randomHex();
  st->writer = std::make_unique<CompletionWriter>(
      r, backend.tokenizer(), id, config.modelName, int64_t(time(nullptr)), p);
  std::string submitError;
  st->backendId = backend.submit(std::move(g), st->channel, submitError);
  if (!st->backendId) {
    reply(res, 503,
          ApiError{503, "the engine refused the request: " + submitError,
                   "service_unavailable", "", ""}
              .toJson());
    return metrics.httpResponse(503);
  }
  st->serverId = nextId++;
  {
    std::lock_guard<std::mutex> lock(liveMutex);
    live[st->serverId] = st->backendId;
  }

  if (!r.stream) {
    while (!st->channelDone)
      st->pump(1.0);
    st->finish();
    if (st->reason == FinishReason::Error) {
      reply(res, 500,
            ApiError{500, "generation failed: " + st->error, "internal_error",
                     "", ""}
                .toJson());
      return metrics.httpResponse(500);
    }
    reply(res, 200, dumpJson(st->writer->body()));
    return metrics.httpResponse(200);
  }

  metrics.httpResponse(200);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink &sink) { return st->send(sink); },
      [st](bool) { st->finish(); });
}

bool Server::bind(std::string &error) {
  if (config.port == 0) {
    port = http->bind_to_any_port(config.host);
    if (port < 0) {
      error = "cannot listen on " + config.host;
      return false;
    }
    return true;
  }
  if (!http->bind_to_port(config.host, config.port)) {
    error = "cannot listen on " + config.host + ":" +
            std::to_string(config.port) + " (address in use or invalid)";
    return false;
  }
  port = config.port;
  return true;
}

void Server::serve() { http->listen_after_bind(); }

void Server::stop() {
  if (draining.exchange(true))
    return;
  // New requests get 503 from here on (and /health says so). httplib ends
  // chunked responses the moment its listener closes, so it is closed only
  // once the in-flight requests are done, or aborted at the timeout.
  double timeout = config.shutdownTimeoutSeconds;
  watchdog = std::thread([this, timeout] {
    double end = steadySeconds() + timeout;
    while (inFlight.load() > 0 && steadySeconds() < end)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    {
      std::lock_guard<std::mutex> lock(liveMutex);
      for (const auto &[sid, bid] : live)
        backend.abort(bid);
    }
    // Aborted streams still send their last events.
    double grace = steadySeconds() + 5;
    while (inFlight.load() > 0 && steadySeconds() < grace)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    http->stop();
  });
}

} // namespace dsserve
