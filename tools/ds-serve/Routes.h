//===- Routes.h - the HTTP server: routes, admission, shutdown ------------===//
#ifndef DS_SERVE_ROUTES_H
#define DS_SERVE_ROUTES_H

#include "Backend.h"
#include "Metrics.h"
#include "TokenMask.h"
#include "ToolCalls.h"

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
class Request;
class Response;
} // namespace httplib

namespace dsserve {

struct ServerConfig {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string apiKey;
  std::string modelName;
  /// Other names requests may give the model (responses say modelName).
  std::vector<std::string> modelAliases;
  /// Generation requests admitted at once (running + queued); past it, 429.
  int maxInFlight = 64;
  double shutdownTimeoutSeconds = 30;
  /// --reasoning-parser deepseek_r1: chat answers' reasoning_content.
  bool splitReasoning = false;
  /// --tool-call-parser: the format chat answers' tool calls are parsed in
  /// (unset: requests forcing a call are refused).
  std::optional<ToolCallFormat> toolFormat;
  /// --enable-auto-tool-choice: tool_choice "auto" is served.
  bool autoToolChoice = false;
  /// > 0: a prompt longer than this starts its further samples (n > 1)
  /// once the first has computed it, so they find it in the prefix cache
  /// (Backend::sharedPrefixTokens).
  int64_t sharedPrefixTokens = 0;
  /// --scheduling-policy priority: requests may carry a `priority`.
  bool priorityScheduling = false;
};

struct ParsedRequest;
struct StreamState;

class Server {
public:
  Server(Backend &backend, ServerConfig config);
  ~Server();
  /// Binds; false with a message when the address is taken or invalid.
  bool bind(std::string &error);
  int boundPort() const { return port; }
  /// Serves until stop(); returns after every in-flight request ended.
  void serve();
  /// Stops accepting at once; in-flight requests may finish until the
  /// shutdown timeout, then they are aborted. Safe from any thread.
  void stop();

private:
  void routes();
  /// The generation routes: /v1/completions, /v1/chat/completions,
  /// /v1/responses and /v1/messages (the last two read as the chat request
  /// they amount to).
  enum class Api { Completions, Chat, Responses, Messages };
  void generate(const httplib::Request &req, httplib::Response &res, Api api);
  bool authorized(const httplib::Request &req, httplib::Response &res);
  /// vLLM's POST /tokenize and /detokenize (behind the API key like /v1).
  void tokenize(const httplib::Request &req, httplib::Response &res);
  void detokenize(const httplib::Request &req, httplib::Response &res);
  /// Anthropic's POST /v1/messages/count_tokens: the prompt's tokens.
  void countTokens(const httplib::Request &req, httplib::Response &res);
  /// The served model and a tokenizer; otherwise the refusal is in `res`.
  bool tokenizerRequest(httplib::Response &res, const std::string &model);
  /// Authorized, not draining and within maxInFlight (counted in inFlight
  /// from here); otherwise the refusal is in `res`.
  bool admit(const httplib::Request &req, httplib::Response &res);
  /// The backend's requests for `r` (one per choice: prompts x n) and each
  /// prompt's tokens: the served model, prompts that fit the context with
  /// their max_tokens, the sampling parameters; otherwise the refusal is in
  /// `res`.
  bool prepare(const ParsedRequest &r, std::vector<GenerateRequest> &out,
               std::vector<std::vector<int32_t>> &prompts,
               httplib::Response &res);
  bool sampling(const ParsedRequest &r, SamplingParams &p,
                httplib::Response &res);
  /// Counts a request's further choices in inFlight (its guard's weight);
  /// otherwise the refusal (400: more than the server ever holds; 429) is
  /// in `res`.
  bool admitChoices(StreamState &st, size_t choices, httplib::Response &res);
  void reply(httplib::Response &res, int status, const std::string &body);
  /// True if `token` is in the model's vocabulary; otherwise a 400 naming
  /// `param` ("<what><token> is outside the vocabulary ...") is in `res`.
  bool inVocabulary(int32_t token, const std::string &what, const char *param,
                    httplib::Response &res);
  /// True if `model` is empty or the served one; otherwise a 404.
  bool servesModel(const std::string &model, httplib::Response &res);
  /// Prompt i of a completions request, or the chat's rendered messages.
  bool promptTokens(const ParsedRequest &r, size_t i, std::vector<int32_t> &out,
                    httplib::Response &res);
  /// Whether this server parses the tool calls `r` asks for (then sets
  /// r.toolFormat); otherwise the refusal is in `res`.
  bool toolCalls(ParsedRequest &r, httplib::Response &res);
  /// The reasoning parser reads the answer as content: the chat prompt
  /// ends with "</think>" (V3.1's non-thinking mode), or the final
  /// message it continues (prefix completion) is answer text, no thinking
  /// left open in it.
  bool closesThinking(const ParsedRequest &r,
                      const std::vector<int32_t> &prompt);
  /// Structured outputs: each choice its own constraint from r.grammar
  /// (they read their answers apart); otherwise the refusal is in `res`.
  bool constrain(const ParsedRequest &r, std::vector<GenerateRequest> &gs,
                 httplib::Response &res);

  Backend &backend;
  ServerConfig config;
  Metrics metrics;
  std::unique_ptr<httplib::Server> http;
  int port = 0;
  std::atomic<int64_t> inFlight{0};
  std::atomic<bool> draining{false};
  std::atomic<uint64_t> nextId{1};
  std::mutex liveMutex;
  std::map<uint64_t, std::vector<uint64_t>> live; // server id -> backend ids
  std::thread watchdog;              // enforces the shutdown timeout
  std::mutex vocabMutex;
  std::shared_ptr<const VocabTrie> vocab; // built by the first constraint
  friend struct InFlightGuard;
  friend struct StreamState;
};

} // namespace dsserve

#endif // DS_SERVE_ROUTES_H
