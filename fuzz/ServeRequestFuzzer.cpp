//===- ServeRequestFuzzer.cpp - fuzz ds-serve's request parsing -----------===//
//
// Every body goes through both endpoints' validation; an accepted one is
// then answered by a CompletionWriter fed the body's bytes as tokens (with
// its stop strings and logprobs settings, dealt round its choices: prompts
// x n), so the response and SSE writers see whatever text the input
// carries. Parsing must never throw or crash. The input is also read as
// a model's answer by the tool-call parser of each format, whole and in
// pieces: both must give the same content and calls (the Responses and
// Messages APIs' bodies and writers too); a body with a
// schema has its grammar read the body. An input that is no JSON object
// has its first line compiled as a regular expression (guided_regex, a schema's
// pattern) and the rest read through it: a pattern compiles or is refused with
// a message, and every state the text reaches can still end a match.
//
//===----------------------------------------------------------------------===//
#include "JsonGrammar.h"
#include "MessagesApi.h"
#include "OpenAIRequest.h"
#include "Regex.h"
#include "Responses.h"
#include "ResponsesApi.h"
#include "ToolCalls.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

using namespace dsserve;

namespace {

/// The content and calls of `text` fed in pieces of `step` bytes (0: whole).
std::string parseAnswer(ToolCallFormat f, const std::string &text,
                        size_t step) {
  ToolCallParser p(f);
  std::string content;
  std::vector<ToolCallDelta> deltas;
  for (size_t at = 0; at < text.size(); at += step ? step : text.size())
    p.push(text.substr(at, step ? step : text.size()), content, deltas);
  p.finish(content, deltas);
  std::vector<std::string> calls;
  for (const ToolCallDelta &d : deltas) {
    if (d.opens)
      calls.push_back("name=" + d.name + " args=");
    if (d.index < 0 || size_t(d.index) >= calls.size())
      __builtin_trap(); // arguments of a call never opened
    calls[size_t(d.index)] += d.arguments;
  }
  std::string all = "content=" + content;
  for (const std::string &c : calls)
    all += "\n" + c;
  return all;
}

/// Another API's writer over one chat choice, fed the input's bytes as
/// tokens (reasoning split for half the inputs).
void answerWith(
    ParsedRequest &r, const uint8_t *data, size_t size,
    const std::function<std::unique_ptr<AnswerWriter>(ChoiceWriter &)> &make) {
  r.splitReasoning = size & 1;
  CompletionWriter w(r, nullptr, "id", "m", 0, std::vector<int64_t>{1});
  std::unique_ptr<AnswerWriter> answer = make(w.choice(0));
  for (size_t i = 0; i < size && i < 64; ++i) {
    TokenOutput t;
    t.token = data[i];
    if (!w.choice(0).onToken(t))
      break;
    (void)answer->takeStreamEvents();
  }
  w.choice(0).onFinish(FinishReason::Length);
  (void)answer->takeStreamEvents();
  (void)dumpJson(answer->body());
}

void readThroughRegex(const std::string &body) {
  size_t nl = body.find('\n');
  std::string pattern = body.substr(0, std::min<size_t>(nl, 200));
  std::string text = nl == std::string::npos ? "" : body.substr(nl + 1);
  for (Regex::Mode mode : {Regex::Mode::Whole, Regex::Mode::Search}) {
    std::string why;
    auto rx = Regex::compile(pattern, mode, why);
    if (!rx) {
      if (why.empty())
        __builtin_trap();
      continue;
    }
    int32_t state = rx->start(), cp = 0, owed = 0;
    if (!rx->canEnd(state, 0, INT64_MAX))
      __builtin_trap(); // a compiled pattern matches something
    for (char c : text) {
      if (!regexTakeByte(*rx, state, cp, owed, uint8_t(c)))
        break;
      if (owed == 0 && !rx->canEnd(state, 0, INT64_MAX))
        __builtin_trap(); // a live state leads to a match
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string body(reinterpret_cast<const char *>(data), size);
  if (!body.empty() && body[0] != '{') // JSON bodies: the requests' own
    readThroughRegex(body);
  for (ToolCallFormat f :
       {ToolCallFormat::DeepSeekV3, ToolCallFormat::DeepSeekV31})
    if (parseAnswer(f, body, 0) != parseAnswer(f, body, 1 + size % 7))
      __builtin_trap();
  for (Endpoint ep : {Endpoint::Completions, Endpoint::ChatCompletions}) {
    ApiError error;
    auto r = parseRequest(ep, body, error);
    if (!r) {
      if (error.status != 400 || error.message.empty())
        __builtin_trap();
      (void)error.toJson();
      continue;
    }
    // A structured-output grammar (from the body's schema) reads the body
    // itself as an answer, a byte at a time.
    if (r->grammar) {
      Matcher m(r->grammar);
      for (size_t i = 0; i < size && m.feed(data[i]); ++i)
        (void)m.accepting();
    }
    // --reasoning-parser on for half the chat inputs.
    r->splitReasoning = ep == Endpoint::ChatCompletions && (size & 1);
    // Tool calls parsed where the request asks for them (--tool-call-parser).
    if (r->chat.toolChoice != ToolChoice::None)
      r->toolFormat =
          size & 2 ? ToolCallFormat::DeepSeekV31 : ToolCallFormat::DeepSeekV3;
    // Every prompt of a batch, n choices each: the bytes dealt round.
    std::vector<int64_t> prompts(std::max<size_t>(1, r->prompts.size()), 1);
    CompletionWriter w(*r, nullptr, "id", "m", 0, prompts);
    for (size_t i = 0; i < size && i < 64; ++i) {
      TokenOutput t;
      t.token = data[i];
      t.top = {{data[i], -0.5f}};
      if (!w.choice(i % w.size()).onToken(t) && w.finished())
        break;
      (void)w.takeStreamEvents();
    }
    for (size_t c = 0; c < w.size(); ++c)
      w.choice(c).onFinish(FinishReason::Length);
    (void)w.takeStreamEvents();
    (void)dumpJson(w.body());
  }
  // The Responses API's body, and its writer over one chat choice.
  ApiError error;
  nlohmann::json echo;
  if (auto r = parseResponsesRequest(body, error, echo)) {
    answerWith(*r, data, size, [&](ChoiceWriter &c) {
      return std::make_unique<ResponsesWriter>(c, "resp", "m", 0, echo, 1);
    });
  } else if (error.status != 400 || error.message.empty()) {
    __builtin_trap();
  }
  // Anthropic's Messages API: the body, and its writer over one choice.
  if (auto r = parseMessagesRequest(body, error, size & 4)) {
    answerWith(*r, data, size, [](ChoiceWriter &c) {
      return std::make_unique<MessagesWriter>(c, "msg", "m", 1);
    });
  } else if (error.status != 400 || error.message.empty()) {
    __builtin_trap();
  } else if (anthropicError(error.status, error.toJson()).empty()) {
    __builtin_trap();
  }
  return 0;
}
