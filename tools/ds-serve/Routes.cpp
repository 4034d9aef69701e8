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
#include "Generation.h"
#include "MessagesApi.h"
#include "OpenAIRequest.h"
#include "Responses.h"
#include "ResponsesApi.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <random>
#include <thread>

using nlohmann::json;

namespace dsserve {
namespace {

/// max_tokens of a /v1/completions request that names none.
constexpr int64_t kDefaultCompletionTokens = 16;

/// DeepSeek's fill-in-the-middle prompt (DeepSeek-Coder's and V3's
/// tokenizers, prefix-suffix-middle order): BOS, begin, the text before the
/// hole, hole, the text after it, end; the model writes the middle. The
/// markers are added tokens, matched in the text as Hugging Face's
/// tokenizer matches them; a tokenizer without them cannot do this.
bool fillInMiddle(Tokenizer &tok, const std::string &prefix,
                  const std::string &suffix, std::vector<int32_t> &out,
                  std::string &error) {
  static const char *const kMarkers[] = {"<｜fim▁begin｜>", "<｜fim▁hole｜>",
                                         "<｜fim▁end｜>"};
  for (const char *m : kMarkers) {
    std::vector<int32_t> ids;
    if (!tok.encode(m, /*addSpecialTokens=*/false, ids, error))
      return false;
    if (ids.size() != 1) {
      error = std::string("this model's tokenizer has no fill-in-the-middle "
                          "token ") +
              m + " (DeepSeek-Coder's and V3's have them)";
      return false;
    }
  }
  return tok.encode(std::string(kMarkers[0]) + prefix + kMarkers[1] + suffix +
                        kMarkers[2],
                    /*addSpecialTokens=*/true, out, error);
}

} // namespace

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
  // Anthropic's clients send the key as x-api-key.
  std::string xKey = req.get_header_value("x-api-key");
  if (!xKey.empty() && apiKeyAccepted(config.apiKey, "Bearer " + xKey))
    return true;
  ApiError e{401,
             "invalid or missing API key (send 'Authorization: Bearer "
             "<key>' or 'x-api-key: <key>')",
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
    json data = json::array();
    std::vector<std::string> names{config.modelName};
    names.insert(names.end(), config.modelAliases.begin(),
                 config.modelAliases.end());
    for (const std::string &name : names)
      data.push_back({{"id", name},
                      {"object", "model"},
                      {"created", int64_t(time(nullptr))},
                      {"owned_by", "ds"},
                      {"root", config.modelName},
                      {"max_model_len", info.maxContext}});
    reply(res, 200, dumpJson({{"object", "list"}, {"data", data}}));
  });
  http->Post("/v1/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               generate(req, res, Api::Completions);
             });
  http->Post("/v1/chat/completions",
             [this](const httplib::Request &req, httplib::Response &res) {
               generate(req, res, Api::Chat);
             });
  http->Post("/v1/responses",
             [this](const httplib::Request &req, httplib::Response &res) {
               generate(req, res, Api::Responses);
             });
  // Anthropic's Messages API: its errors in its own shape.
  auto anthropic = [](auto handle) {
    return [handle](const httplib::Request &req, httplib::Response &res) {
      handle(req, res);
      if (res.status >= 400)
        res.set_content(anthropicError(res.status, res.body),
                        "application/json");
    };
  };
  http->Post("/v1/messages", anthropic([this](const httplib::Request &req,
                                              httplib::Response &res) {
               generate(req, res, Api::Messages);
             }));
  http->Post(
      "/v1/messages/count_tokens",
      anthropic([this](const httplib::Request &req, httplib::Response &res) {
        countTokens(req, res);
      }));
  http->Post("/tokenize",
             [this](const httplib::Request &req, httplib::Response &res) {
               tokenize(req, res);
             });
  http->Post("/detokenize",
             [this](const httplib::Request &req, httplib::Response &res) {
               detokenize(req, res);
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

bool Server::promptTokens(const ParsedRequest &r, size_t i,
                          std::vector<int32_t> &out, httplib::Response &res) {
  Tokenizer *tok = backend.tokenizer();
  std::string err;
  // Which prompt of a batch is at fault.
  std::string which = r.prompts.size() > 1
                          ? "prompt " + std::to_string(i) + ": "
                          : std::string();
  const PromptInput *in =
      r.endpoint == Endpoint::Completions ? &r.prompts[i] : nullptr;
  if (in && in->tokens) {
    out = *in->tokens;
  } else if (!tok) {
    reply(res, 400,
          ApiError::invalid("this server has no tokenizer (start it with "
                            "--tokenizer DIR): send the prompt as token ids",
                            in ? "prompt" : "messages")
              .toJson());
    return false;
  } else if (!in) {
    ChatPrompt chat{r.chat.messagesJson, r.chat.contextJson, "",
                    r.chat.addGenerationPrompt,
                    r.chat.continueFinal ? r.chat.finalContent : ""};
    // A forced call: the prompt opens it, the model goes on from there.
    if (r.toolFormat && r.chat.toolChoice == ToolChoice::Required)
      chat.assistantPrefix = forcedCallPrefix(*r.toolFormat, nullptr);
    else if (r.toolFormat && r.chat.toolChoice == ToolChoice::Named)
      chat.assistantPrefix = forcedCallPrefix(*r.toolFormat, &r.chat.toolName);
    if (!tok->renderChat(chat, out, err)) {
      reply(res, 400, ApiError::invalid(err, "messages").toJson());
      return false;
    }
  } else if (!r.suffix.empty()) {
    if (!fillInMiddle(*tok, *in->text, r.suffix, out, err)) {
      reply(res, 400, ApiError::invalid(which + err, "suffix").toJson());
      return false;
    }
  } else if (!tok->encode(*in->text, /*addSpecialTokens=*/true, out, err)) {
    reply(res, 400, ApiError::invalid(which + err, "prompt").toJson());
    return false;
  }
  if (out.empty()) {
    reply(res, 400,
          ApiError::invalid(which + "the prompt is empty", "prompt").toJson());
    return false;
  }
  for (int32_t t : out)
    if (!inVocabulary(t, which + "token id ", "prompt", res))
      return false;
  return true;
}

bool Server::toolCalls(ParsedRequest &r, httplib::Response &res) {
  ToolChoice choice = r.chat.toolChoice;
  if (choice == ToolChoice::None)
    return true;
  const char *why = nullptr;
  if (!config.toolFormat)
    why = "tool calls need a parser: start ds-serve with --tool-call-parser "
          "deepseek_v3 (V3, R1) or deepseek_v31 (V3.1)";
  else if (choice == ToolChoice::Auto && !config.autoToolChoice)
    why = "\"auto\" tool choice requires --enable-auto-tool-choice and "
          "--tool-call-parser to be set";
  if (why) {
    reply(res, 400, ApiError::invalid(why, "tool_choice").toJson());
    return false;
  }
  r.toolFormat = config.toolFormat;
  if (choice == ToolChoice::Required) {
    // The model writes one call: a function's name, then arguments that
    // follow its parameters.
    std::vector<std::pair<std::string, nlohmann::ordered_json>> alts;
    for (const auto &[name, params] : r.toolParameters)
      alts.push_back({callArgumentsOpening(*r.toolFormat, name), params});
    std::string error;
    r.grammar = Grammar::textThenValue(alts, error);
    if (!r.grammar) {
      reply(res, 400, ApiError::invalid(error, "tools").toJson());
      return false;
    }
  } else if (choice == ToolChoice::Auto && !r.grammar) {
    // The calls the model opens follow their functions' parameters; a
    // function whose schema the matcher cannot enforce stays free.
    std::string before, after, error;
    callBodyFrame(*r.toolFormat, before, after);
    for (const auto &[name, params] : r.toolParameters)
      if (auto g = Grammar::framedValue(before, params, after, error))
        r.callBodies.push_back({name, g});
  }
  return true;
}

bool Server::closesThinking(const ParsedRequest &r,
                            const std::vector<int32_t> &prompt) {
  if (r.chat.continueFinal) {
    const std::string &c = r.chat.finalContent;
    size_t open = c.rfind("<think>"), close = c.rfind("</think>");
    return open == std::string::npos ||
           (close != std::string::npos && close > open);
  }
  Tokenizer *tok = backend.tokenizer();
  if (!tok || prompt.empty())
    return false;
  // The prompt's last few tokens hold its tail.
  std::vector<int32_t> tail(
      prompt.end() - std::min<ptrdiff_t>(8, ptrdiff_t(prompt.size())),
      prompt.end());
  std::string text, error;
  if (!tok->decode(tail, text, error))
    return false;
  while (!text.empty() && isspace((unsigned char)text.back()))
    text.pop_back();
  const std::string close = "</think>";
  return text.size() >= close.size() &&
         text.compare(text.size() - close.size(), close.size(), close) == 0;
}

bool Server::constrain(const ParsedRequest &r, std::vector<GenerateRequest> &gs,
                       httplib::Response &res) {
  if (!r.grammar && r.callBodies.empty())
    return true;
  Tokenizer *tok = backend.tokenizer();
  if (!tok && !r.grammar)
    return true; // (tool calls are read from text: none without one)
  if (!tok) {
    reply(res, 400,
          ApiError::invalid("structured outputs need the model's tokenizer "
                            "(start the server with --tokenizer DIR)",
                            "response_format")
              .toJson());
    return false;
  }
  std::shared_ptr<const VocabTrie> v;
  {
    std::lock_guard<std::mutex> lock(vocabMutex);
    if (!vocab)
      vocab = std::make_shared<VocabTrie>(*tok, backend.info().vocabSize);
    v = vocab;
  }
  for (GenerateRequest &g : gs)
    if (r.grammar)
      g.params.constraint = std::make_shared<GrammarConstraint>(
          r.grammar, v, backend.info().eosToken);
    else
      g.params.constraint = std::make_shared<ToolCallConstraint>(
          *r.toolFormat, r.callBodies, v, backend.info().eosToken);
  return true;
}

bool Server::inVocabulary(int32_t token, const std::string &what,
                          const char *param, httplib::Response &res) {
  int64_t vocab = backend.info().vocabSize;
  if (token >= 0 && token < vocab)
    return true;
  reply(res, 400,
        ApiError::invalid(what + std::to_string(token) +
                              " is outside the vocabulary [0, " +
                              std::to_string(vocab) + ")",
                          param)
            .toJson());
  return false;
}

bool Server::servesModel(const std::string &model, httplib::Response &res) {
  if (model.empty() || model == config.modelName ||
      std::find(config.modelAliases.begin(), config.modelAliases.end(),
                model) != config.modelAliases.end())
    return true;
  ApiError e{404,
             "the model '" + model +
                 "' does not exist (this server "
                 "serves '" +
                 config.modelName + "')",
             "invalid_request_error", "model", "model_not_found"};
  reply(res, 404, e.toJson());
  return false;
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

bool Server::sampling(const ParsedRequest &r, SamplingParams &p,
                      httplib::Response &res) {
  for (int32_t t : r.stopTokenIds)
    if (!inVocabulary(t, "stop token id ", "stop_token_ids", res))
      return false;
  for (const auto &[t, bias] : r.logitBias)
    if (!inVocabulary(t, "logit_bias token id ", "logit_bias", res))
      return false;
  if (r.priority != 0 && !config.priorityScheduling) {
    // As vLLM: a priority the scheduler would ignore is an error.
    reply(res, 400,
          ApiError::invalid("'priority' needs priority scheduling (start the "
                            "server with --scheduling-policy priority)",
                            "priority")
              .toJson());
    return false;
  }
  p.temperature = r.temperature;
  p.topP = r.topP;
  p.topK = r.topK;
  p.stopTokenIds = r.stopTokenIds;
  p.seed = r.seed ? *r.seed : std::random_device{}();
  p.ignoreEos = r.ignoreEos;
  p.topLogprobs = r.logprobs ? r.topLogprobs : -1;
  p.promptLogprobs = r.echo && r.logprobs;
  p.presencePenalty = r.presencePenalty;
  p.frequencyPenalty = r.frequencyPenalty;
  p.repetitionPenalty = r.repetitionPenalty;
  p.minP = r.minP;
  p.minTokens = r.minTokens;
  p.priority = r.priority;
  p.logitBias = r.logitBias;
  return true;
}

bool Server::prepare(const ParsedRequest &r, std::vector<GenerateRequest> &out,
                     std::vector<std::vector<int32_t>> &prompts,
                     httplib::Response &res) {
  if (!servesModel(r.model, res))
    return false;
  SamplingParams params;
  if (!sampling(r, params, res))
    return false;
  ModelInfo info = backend.info();
  size_t count = r.endpoint == Endpoint::Completions ? r.prompts.size() : 1;
  for (size_t i = 0; i < count; ++i) {
    GenerateRequest g;
    if (!promptTokens(r, i, g.prompt, res))
      return false;
    int64_t p = int64_t(g.prompt.size());
    int64_t room = info.maxContext - p;
    // max_tokens 0 (echo) needs no room past the prompt.
    int64_t least = r.maxTokens && *r.maxTokens == 0 ? 0 : 1;
    if (room < least || (r.maxTokens && *r.maxTokens > room)) {
      std::string msg =
          std::string(count > 1 ? "prompt " + std::to_string(i) + ": " : "") +
          "this model's maximum context length is " +
          std::to_string(info.maxContext) + " tokens; the prompt has " +
          std::to_string(p) +
          (r.maxTokens
               ? " and max_tokens asks for " + std::to_string(*r.maxTokens)
               : std::string(""));
      reply(res, 400,
            ApiError{400, msg, "invalid_request_error",
                     r.maxTokens && room >= least ? "max_tokens" : "prompt",
                     "context_length_exceeded"}
                .toJson());
      return false;
    }
    g.params = params;
    // Absent max_tokens: 16 on /v1/completions (OpenAI's and vLLM's
    // default there), the rest of the context on chat.
    g.params.maxTokens = r.maxTokens ? *r.maxTokens
                         : r.endpoint == Endpoint::Completions
                             ? std::min<int64_t>(kDefaultCompletionTokens, room)
                             : room;
    prompts.push_back(g.prompt);
    // n samples of the prompt: seeds seed, seed + 1, ... (so a seeded
    // request repeats, and its first choice is the n = 1 answer).
    for (int64_t j = 0; j < r.n; ++j) {
      out.push_back(g);
      out.back().params.seed = params.seed + uint64_t(j);
    }
  }
  return true;
}

void Server::generate(const httplib::Request &req, httplib::Response &res,
                      Api api) {
  bool chat = api != Api::Completions;
  double arrival = steadySeconds();
  if (!admit(req, res))
    return metrics.httpResponse(res.status);
  auto st = std::make_shared<StreamState>(*this);
  st->guard = std::make_unique<InFlightGuard>(*this, 1);
  st->arrival = arrival;

  ApiError err;
  nlohmann::json echo; // what a Responses API response repeats
  auto parsed =
      api == Api::Responses  ? parseResponsesRequest(req.body, err, echo)
      : api == Api::Messages ? parseMessagesRequest(req.body, err)
                             : parseRequest(chat ? Endpoint::ChatCompletions
                                                 : Endpoint::Completions,
                                            req.body, err);
  if (!parsed) {
    reply(res, err.status, err.toJson());
    return metrics.httpResponse(err.status);
  }
  parsed->splitReasoning = chat && config.splitReasoning;
  if (chat && !toolCalls(*parsed, res))
    return metrics.httpResponse(res.status);
  const ParsedRequest &r = *parsed;
  std::vector<GenerateRequest> gs;
  std::vector<std::vector<int32_t>> prompts;
  if (!prepare(r, gs, prompts, res) || !constrain(r, gs, res) ||
      !admitChoices(*st, gs.size(), res))
    return metrics.httpResponse(res.status);

  if (r.splitReasoning)
    parsed->thinkingClosed = closesThinking(r, prompts[0]);
  std::string id = (chat ? "chatcmpl-" : "cmpl-") + randomHex();
  int64_t created = int64_t(time(nullptr));
  st->writer = std::make_unique<CompletionWriter>(
      r, backend.tokenizer(), id, config.modelName, created, prompts);
  if (api == Api::Responses)
    st->answer = std::make_unique<ResponsesWriter>(
        st->writer->choice(0), "resp_" + randomHex(), config.modelName, created,
        std::move(echo), int64_t(prompts[0].size()));
  else if (api == Api::Messages)
    st->answer = std::make_unique<MessagesWriter>(
        st->writer->choice(0), "msg_" + randomHex(), config.modelName,
        int64_t(prompts[0].size()));
  st->channel = std::make_shared<Channel>();
  st->runs.resize(gs.size());
  st->deferred.resize(gs.size());
  st->perPrompt = size_t(r.n);
  // A prompt's further samples wait for its first's prefill where the
  // backend caches prefixes and the prompt fills a cached unit (not with
  // echo + logprobs: those requests read no cache).
  bool share =
      config.sharedPrefixTokens > 0 && r.n > 1 && !(r.echo && r.logprobs);
  for (size_t c = 0; c < gs.size(); ++c) {
    if (share && c % size_t(r.n) != 0 &&
        int64_t(prompts[c / size_t(r.n)].size()) > config.sharedPrefixTokens) {
      st->deferred[c] = std::move(gs[c]);
      continue;
    }
    std::string submitError;
    st->runs[c].backendId = backend.submit(
        std::move(gs[c]), std::make_shared<ChoiceSink>(st->channel, c),
        submitError);
    if (!st->runs[c].backendId) {
      st->abortAll(); // the choices already queued
      reply(res, 503,
            ApiError{503, "the engine refused the request: " + submitError,
                     "service_unavailable", "", ""}
                .toJson());
      return metrics.httpResponse(503);
    }
  }
  st->serverId = nextId++;
  {
    std::lock_guard<std::mutex> lock(liveMutex);
    for (const StreamState::Run &run : st->runs)
      if (run.backendId) // deferred ones register when submitted
        live[st->serverId].push_back(run.backendId);
  }

  if (!r.stream) {
    while (!st->allDone())
      st->pump(1.0);
    st->finish();
    if (st->failed()) {
      reply(res, 500,
            ApiError{500, "generation failed: " + st->error, "internal_error",
                     "", ""}
                .toJson());
      return metrics.httpResponse(500);
    }
    reply(res, 200,
          dumpJson(st->answer ? st->answer->body() : st->writer->body()));
    return metrics.httpResponse(200);
  }

  metrics.httpResponse(200);
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [st](size_t, httplib::DataSink &sink) { return st->send(sink); },
      [st](bool) { st->finish(); });
}

bool Server::admitChoices(StreamState &st, size_t choices,
                          httplib::Response &res) {
  int64_t k = int64_t(choices);
  if (k <= 1)
    return true;
  // Every choice is an engine request: a request of more choices than the
  // server ever holds could never run.
  if (k > config.maxInFlight) {
    reply(res, 400,
          ApiError::invalid("this request asks for " + std::to_string(k) +
                                " choices (prompts x n); the server takes at "
                                "most " +
                                std::to_string(config.maxInFlight) +
                                " at once (--max-num-seqs + --max-waiting)",
                            "n")
              .toJson());
    return false;
  }
  inFlight += k - 1;
  st.guard->weight = k;
  if (inFlight > config.maxInFlight) {
    reply(res, 429,
          ApiError{429,
                   "too many requests in flight (" +
                       std::to_string(config.maxInFlight) + "); retry later",
                   "rate_limit_exceeded", "", "rate_limit_exceeded"}
              .toJson());
    return false;
  }
  return true;
}

bool Server::tokenizerRequest(httplib::Response &res,
                              const std::string &model) {
  if (!servesModel(model, res))
    return false;
  if (!backend.tokenizer()) {
    reply(res, 400,
          ApiError::invalid("this server has no tokenizer (start it with "
                            "--tokenizer DIR)")
              .toJson());
    return false;
  }
  return true;
}

void Server::tokenize(const httplib::Request &req, httplib::Response &res) {
  if (!authorized(req, res))
    return metrics.httpResponse(res.status);
  ApiError err;
  auto r = parseTokenizeRequest(req.body, err);
  if (!r) {
    reply(res, err.status, err.toJson());
    return metrics.httpResponse(err.status);
  }
  if (!tokenizerRequest(res, r->model))
    return metrics.httpResponse(res.status);
  Tokenizer *tok = backend.tokenizer();
  std::vector<int32_t> ids;
  std::string why;
  bool ok =
      r->prompt
          ? tok->encode(*r->prompt, r->addSpecialTokens, ids, why)
          : tok->renderChat({r->chat.messagesJson, r->chat.contextJson, "",
                             r->chat.addGenerationPrompt,
                             r->chat.continueFinal ? r->chat.finalContent : ""},
                            ids, why);
  if (!ok) {
    reply(res, 400,
          ApiError::invalid(why, r->prompt ? "prompt" : "messages").toJson());
    return metrics.httpResponse(400);
  }
  reply(res, 200,
        dumpJson({{"count", ids.size()},
                  {"max_model_len", backend.info().maxContext},
                  {"tokens", ids}}));
  metrics.httpResponse(200);
}

void Server::countTokens(const httplib::Request &req, httplib::Response &res) {
  if (!authorized(req, res))
    return metrics.httpResponse(res.status);
  ApiError err;
  auto r = parseMessagesRequest(req.body, err, /*countOnly=*/true);
  if (!r) {
    reply(res, err.status, err.toJson());
    return metrics.httpResponse(err.status);
  }
  std::vector<int32_t> ids;
  if (!tokenizerRequest(res, r->model) || !promptTokens(*r, 0, ids, res))
    return metrics.httpResponse(res.status);
  reply(res, 200, dumpJson({{"input_tokens", ids.size()}}));
  metrics.httpResponse(200);
}

void Server::detokenize(const httplib::Request &req, httplib::Response &res) {
  if (!authorized(req, res))
    return metrics.httpResponse(res.status);
  ApiError err;
  auto r = parseDetokenizeRequest(req.body, err);
  if (!r) {
    reply(res, err.status, err.toJson());
    return metrics.httpResponse(err.status);
  }
  if (!tokenizerRequest(res, r->model))
    return metrics.httpResponse(res.status);
  for (int32_t t : r->tokens)
    if (!inVocabulary(t, "token id ", "tokens", res))
      return metrics.httpResponse(400);
  std::string text, why;
  if (!backend.tokenizer()->decode(r->tokens, text, why)) {
    reply(res, 400, ApiError::invalid(why, "tokens").toJson());
    return metrics.httpResponse(400);
  }
  reply(res, 200, dumpJson({{"prompt", text}}));
  metrics.httpResponse(200);
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
      for (const auto &[sid, ids] : live)
        for (uint64_t bid : ids)
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
