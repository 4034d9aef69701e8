//===- ResponsesTest.cpp - response bodies and SSE chunks -----------------===//

#include "Responses.h"

#include <gtest/gtest.h>

using namespace dsserve;
using nlohmann::json;

namespace {

/// Tokens are bytes; the stream holds back an incomplete UTF-8 tail.
class Utf8Stream : public TextStream {
public:
  std::string push(int32_t t) override {
    if (t == kSpecial) // a special token, as "<s>"
      return skipSpecial ? "" : "<s>";
    buf.push_back(char(t));
    size_t keep = 0;
    for (size_t i = buf.size(); i > 0 && keep < 4; --i) {
      unsigned char c = buf[i - 1];
      ++keep;
      if ((c >> 6) != 2) { // lead byte: complete?
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
        if (n <= keep)
          keep = 0;
        break;
      }
    }
    std::string out = buf.substr(0, buf.size() - keep);
    buf.erase(0, buf.size() - keep);
    return out;
  }
  std::string flush() override { return std::exchange(buf, ""); }
  static constexpr int32_t kSpecial = 2;
  std::string buf;
  bool skipSpecial = true;
};

class ByteTok : public Tokenizer {
public:
  bool encode(const std::string &, bool, std::vector<int32_t> &,
              std::string &) override {
    return true;
  }
  bool renderChat(const ChatPrompt &, std::vector<int32_t> &,
                  std::string &) override {
    return true;
  }
  std::unique_ptr<TextStream> newStream(bool skipSpecial) override {
    auto s = std::make_unique<Utf8Stream>();
    s->skipSpecial = skipSpecial;
    return s;
  }
  std::string tokenBytes(int32_t t) override { return std::string(1, char(t)); }
  bool decode(const std::vector<int32_t> &tokens, std::string &text,
              std::string &) override {
    for (int32_t t : tokens)
      text += char(t);
    return true;
  }
};

std::vector<json> events(const std::string &sse) {
  std::vector<json> out;
  size_t at = 0;
  while (at < sse.size()) {
    size_t end = sse.find("\n\n", at);
    EXPECT_NE(end, std::string::npos);
    std::string e = sse.substr(at, end - at);
    EXPECT_EQ(e.rfind("data: ", 0), 0u) << e;
    std::string data = e.substr(6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data));
    at = end + 2;
  }
  return out;
}

template <class Writer>
void feedText(Writer &w, const std::string &s, int64_t cached = 0) {
  for (unsigned char c : s) {
    TokenOutput t;
    t.token = c;
    t.cachedPromptTokens = cached;
    if (!w.onToken(t))
      return;
  }
}

TEST(CompletionWriter, ChatStreamChunksAndUsage) {
  ParsedRequest r;
  r.endpoint = Endpoint::ChatCompletions;
  r.stream = r.includeUsage = true;
  ByteTok tok;
  CompletionWriter w(r, &tok, "chatcmpl-1", "m", 7, 3);
  feedText(w, "h\xC3");
  auto first = events(w.takeStreamEvents());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first[0]["choices"][0]["delta"]["content"], "h");
  EXPECT_TRUE(first[0]["usage"].is_null());
  feedText(w, "\xBC");
  w.onFinish(FinishReason::Length);
  auto rest = events(w.takeStreamEvents());
  ASSERT_EQ(rest.size(), 4u);
  EXPECT_EQ(rest[0]["choices"][0]["delta"]["content"], "\xC3\xBC");
  EXPECT_FALSE(rest[0]["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(rest[1]["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(rest[2]["choices"].empty());
  EXPECT_EQ(rest[2]["usage"],
            json({{"prompt_tokens", 3},
                  {"completion_tokens", 3},
                  {"total_tokens", 6},
                  {"prompt_tokens_details", {{"cached_tokens", 0}}},
                  {"completion_tokens_details", {{"reasoning_tokens", 0}}},
                  {"prompt_cache_hit_tokens", 0},
                  {"prompt_cache_miss_tokens", 3}}));
  EXPECT_EQ(rest[3], "[DONE]");
  EXPECT_EQ(w.takeStreamEvents(), "");
}

TEST(CompletionWriter, ContinuousUsageStats) {
  // vLLM's continuous_usage_stats: every chunk's usage so far.
  ApiError e;
  auto r =
      parseRequest(Endpoint::Completions,
                   R"({"prompt":"x","stream":true,"stream_options":)"
                   R"({"include_usage":true,"continuous_usage_stats":true}})",
                   e);
  ASSERT_TRUE(r && r->continuousUsage) << e.message;
  ByteTok tok;
  CompletionWriter w(*r, &tok, "cmpl-1", "m", 7, 2);
  int64_t seen = 0;
  for (char c : std::string("abc")) {
    feedText(w, std::string(1, c));
    for (const json &ev : events(w.takeStreamEvents())) {
      ASSERT_TRUE(ev.is_object()) << ev;
      EXPECT_EQ(ev["usage"]["completion_tokens"], ++seen);
      EXPECT_EQ(ev["usage"]["prompt_tokens"], 2);
    }
  }
  EXPECT_EQ(seen, 3);
  // Without include_usage it is off, as vLLM has it.
  auto off = parseRequest(Endpoint::Completions,
                          R"({"prompt":"x","stream":true,"stream_options":)"
                          R"({"continuous_usage_stats":true}})",
                          e);
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->continuousUsage);
}

TEST(CompletionWriter, StopStringEndsWithStopAndCountsTokens) {
  ParsedRequest r;
  r.stop = {"cd"};
  r.returnTokenIds = true;
  ByteTok tok;
  CompletionWriter w(r, &tok, "cmpl-1", "m", 7, 1);
  feedText(w, "abcdef");
  EXPECT_TRUE(w.finished());
  json b = w.body();
  EXPECT_EQ(b["choices"][0]["text"], "ab");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b["usage"]["completion_tokens"], 4);
  EXPECT_EQ(b["choices"][0]["token_ids"], json({97, 98, 99, 100}));
}

TEST(CompletionWriter, EosTextIsNotShownAndWithoutTokenizerIdsAre) {
  ParsedRequest r;
  CompletionWriter w(r, nullptr, "cmpl-1", "m", 7, 1);
  TokenOutput t;
  t.token = 12;
  w.onToken(t);
  t.token = 1;
  t.isEos = true;
  w.onToken(t);
  w.onFinish(FinishReason::Stop);
  json b = w.body();
  EXPECT_EQ(b["choices"][0]["text"], "token_id:12");
  EXPECT_EQ(b["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(b["usage"]["completion_tokens"], 2);
}

TEST(CompletionWriter, ChoicesOfABatchWithN) {
  // Two prompts (3 and 5 tokens), n = 2: choice c answers prompt c / 2.
  ParsedRequest r;
  r.n = 2;
  r.stream = r.includeUsage = true;
  r.stop = {"z"};
  ByteTok tok;
  CompletionWriter w(r, &tok, "cmpl-1", "m", 7, std::vector<int64_t>{3, 5});
  ASSERT_EQ(w.size(), 4u);
  EXPECT_EQ(w.promptTokensOf(1), 3);
  EXPECT_EQ(w.promptTokensOf(2), 5);
  // Prompt 1's first choice found 4 of its tokens in the prefix cache.
  feedText(w.choice(2), "ab", /*cached=*/4);
  feedText(w.choice(0), "c");
  auto first = events(w.takeStreamEvents());
  ASSERT_EQ(first.size(), 2u); // one choice a chunk, in choice order
  EXPECT_EQ(first[0]["choices"][0]["index"], 0);
  EXPECT_EQ(first[0]["choices"][0]["text"], "c");
  EXPECT_EQ(first[1]["choices"][0]["index"], 2);
  EXPECT_EQ(first[1]["choices"][0]["text"], "ab");
  // Each choice its own stop strings.
  feedText(w.choice(3), "xzy", /*cached=*/4);
  EXPECT_TRUE(w.choice(3).finished());
  w.choice(0).onFinish(FinishReason::Length);
  w.choice(1).onFinish(FinishReason::Stop);
  EXPECT_FALSE(w.finished());
  auto mid = events(w.takeStreamEvents());
  for (const json &e : mid) // no usage and no [DONE] while one runs
    ASSERT_TRUE(e.is_object() && e["choices"].size() == 1) << e.dump();
  w.choice(2).onFinish(FinishReason::Length);
  EXPECT_TRUE(w.finished());
  auto end = events(w.takeStreamEvents());
  ASSERT_GE(end.size(), 3u);
  EXPECT_EQ(end[end.size() - 3]["choices"][0]["index"], 2);
  EXPECT_EQ(end[end.size() - 3]["choices"][0]["finish_reason"], "length");
  // Prompts count once each (their cached tokens too), completions every
  // choice's tokens.
  EXPECT_EQ(end[end.size() - 2]["usage"],
            json({{"prompt_tokens", 8},
                  {"completion_tokens", 5},
                  {"total_tokens", 13},
                  {"prompt_tokens_details", {{"cached_tokens", 4}}},
                  {"completion_tokens_details", {{"reasoning_tokens", 0}}},
                  {"prompt_cache_hit_tokens", 4},
                  {"prompt_cache_miss_tokens", 4}}));
  EXPECT_EQ(end.back(), "[DONE]");
  json b = w.body();
  ASSERT_EQ(b["choices"].size(), 4u);
  for (int c = 0; c < 4; ++c)
    EXPECT_EQ(b["choices"][c]["index"], c);
  EXPECT_EQ(b["choices"][3]["text"], "x");
  EXPECT_EQ(b["choices"][3]["finish_reason"], "stop");
  EXPECT_EQ(b["choices"][1]["text"], "");
  EXPECT_EQ(b["usage"]["completion_tokens"], 5); // x, z; ab; c
}

TEST(CompletionWriter, ChatReasoningApartFromContent) {
  ParsedRequest r;
  r.endpoint = Endpoint::ChatCompletions;
  r.stream = true;
  r.splitReasoning = true;
  ByteTok tok;
  CompletionWriter w(r, &tok, "chatcmpl-1", "m", 7, 3);
  feedText(w, "<think>ab</th");
  auto first = events(w.takeStreamEvents());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(first[0]["choices"][0]["delta"]["reasoning_content"], "ab");
  EXPECT_FALSE(first[0]["choices"][0]["delta"].contains("content"));
  feedText(w, "ink>\n\nxy");
  w.onFinish(FinishReason::Length);
  auto rest = events(w.takeStreamEvents());
  ASSERT_GE(rest.size(), 2u);
  EXPECT_EQ(rest[0]["choices"][0]["delta"]["content"], "\n\nxy");
  EXPECT_FALSE(rest[0]["choices"][0]["delta"].contains("reasoning_content"));
  json m = w.body()["choices"][0]["message"];
  EXPECT_EQ(m["reasoning_content"], "ab");
  EXPECT_EQ(m["content"], "\n\nxy");
  // The byte tokens up to the one closing the thinking: "<think>ab</think>".
  EXPECT_EQ(w.body()["usage"]["completion_tokens_details"]["reasoning_tokens"],
            17);
  EXPECT_EQ(w.body()["usage"]["completion_tokens"], 21);
  // Never closed: all reasoning, content null (as vLLM's parser gives).
  CompletionWriter open(r, &tok, "chatcmpl-2", "m", 7, 3);
  feedText(open, "hmm");
  open.onFinish(FinishReason::Length);
  json o = open.body()["choices"][0]["message"];
  EXPECT_EQ(o["reasoning_content"], "hmm");
  EXPECT_TRUE(o["content"].is_null());
  // Without the parser the tags are text.
  r.splitReasoning = false;
  CompletionWriter plain(r, &tok, "chatcmpl-3", "m", 7, 3);
  feedText(plain, "<think>a</think>b");
  plain.onFinish(FinishReason::Length);
  json p = plain.body()["choices"][0]["message"];
  EXPECT_EQ(p["content"], "<think>a</think>b");
  EXPECT_FALSE(p.contains("reasoning_content"));
}

namespace {

const std::string kCB = "<｜tool▁calls▁begin｜>", kCE = "<｜tool▁calls▁end｜>",
                  kB = "<｜tool▁call▁begin｜>", kE = "<｜tool▁call▁end｜>",
                  kS = "<｜tool▁sep｜>";

std::string v3Call(const std::string &name, const std::string &args) {
  return kB + "function" + kS + name + "\n```json\n" + args + "\n```" + kE;
}

/// A streamed chat choice's deltas added up as the openai SDK does: content,
/// and each call (by index) from its id, type and name chunk on.
struct Accumulated {
  std::string content;
  json calls = json::array();
  std::string finish;
  bool roleFirst = false;
};
Accumulated accumulate(const std::vector<json> &chunks) {
  Accumulated a;
  bool first = true;
  for (const json &c : chunks) {
    if (c == "[DONE]" || c["choices"].empty())
      continue;
    const json &ch = c["choices"][0];
    const json &d = ch["delta"];
    if (first)
      a.roleFirst = d.value("role", "") == "assistant";
    first = false;
    if (d.contains("content") && d["content"].is_string())
      a.content += d["content"].get<std::string>();
    for (const json &tc : d.value("tool_calls", json::array())) {
      size_t i = tc["index"];
      if (i == a.calls.size()) { // a new call opens with id, type and name
        EXPECT_TRUE(tc.contains("id") && tc["type"] == "function" &&
                    tc["function"].contains("name"))
            << tc;
        a.calls.push_back(
            {{"id", tc["id"]},
             {"type", "function"},
             {"function",
              {{"name", tc["function"]["name"]}, {"arguments", ""}}}});
      }
      EXPECT_LT(i, a.calls.size()) << "arguments before the call opened";
      if (i < a.calls.size())
        a.calls[i]["function"]["arguments"] =
            a.calls[i]["function"]["arguments"].get<std::string>() +
            tc["function"].value("arguments", "");
    }
    if (!ch["finish_reason"].is_null())
      a.finish = ch["finish_reason"];
  }
  return a;
}

ParsedRequest toolRequest(ToolChoice choice) {
  ParsedRequest r;
  r.endpoint = Endpoint::ChatCompletions;
  r.stream = true;
  r.chat.toolChoice = choice;
  if (choice == ToolChoice::Named)
    r.chat.toolName = "get_weather";
  r.toolFormat = ToolCallFormat::DeepSeekV3;
  return r;
}

} // namespace

TEST(CompletionWriter, ToolCallsStreamedAndWhole) {
  ByteTok tok;
  std::string text = "Checking." + kCB +
                     v3Call("get_weather", "{\"city\": \"Zürich\"}") + "\n" +
                     v3Call("get_time", "{}") + kCE;
  for (bool streamed : {true, false}) {
    ParsedRequest r = toolRequest(ToolChoice::Auto);
    CompletionWriter w(r, &tok, "chatcmpl-1", "m", 7, 3);
    std::vector<json> chunks;
    // Streamed: events taken after every token, so deltas are small.
    for (unsigned char c : text) {
      TokenOutput t;
      t.token = c;
      ASSERT_TRUE(w.onToken(t));
      if (streamed)
        for (json &e : events(w.takeStreamEvents()))
          chunks.push_back(std::move(e));
    }
    w.onFinish(FinishReason::Stop);
    for (json &e : events(w.takeStreamEvents()))
      chunks.push_back(std::move(e));
    Accumulated a = accumulate(chunks);
    EXPECT_TRUE(a.roleFirst);
    EXPECT_EQ(a.content, "Checking.");
    EXPECT_EQ(a.finish, "tool_calls");
    json m = w.body()["choices"][0]["message"];
    EXPECT_EQ(w.body()["choices"][0]["finish_reason"], "tool_calls");
    EXPECT_EQ(m["content"], "Checking.");
    ASSERT_EQ(m["tool_calls"].size(), 2u);
    EXPECT_EQ(m["tool_calls"][0]["function"]["name"], "get_weather");
    EXPECT_EQ(m["tool_calls"][0]["function"]["arguments"],
              "{\"city\": \"Zürich\"}");
    EXPECT_EQ(m["tool_calls"][1]["function"]["name"], "get_time");
    EXPECT_EQ(m["tool_calls"][1]["function"]["arguments"], "{}");
    EXPECT_EQ(
        m["tool_calls"][0]["id"].get<std::string>().rfind("chatcmpl-tool-", 0),
        0u);
    EXPECT_NE(m["tool_calls"][0]["id"], m["tool_calls"][1]["id"]);
    // The stream adds up to the body, ids included.
    EXPECT_EQ(a.calls, m["tool_calls"]);
  }
}

TEST(CompletionWriter, ToolChoiceNamedAndParallelOff) {
  ByteTok tok;
  // Named: the prompt opened the call; one call is the answer, "stop".
  ParsedRequest r = toolRequest(ToolChoice::Named);
  CompletionWriter named(r, &tok, "chatcmpl-1", "m", 7, 3);
  std::string answer =
      "{\"city\": \"Oslo\"}\n```" + kE + "\n" + v3Call("other", "{}") + kCE;
  size_t fed = 0;
  for (unsigned char c : answer) {
    TokenOutput t;
    t.token = c;
    ++fed;
    if (!named.onToken(t))
      break; // the writer asks for the request to stop
  }
  EXPECT_EQ(fed, answer.find(kE) + kE.size());
  EXPECT_TRUE(named.finished());
  json b = named.body()["choices"][0];
  EXPECT_EQ(b["finish_reason"], "stop");
  EXPECT_TRUE(b["message"]["content"].is_null());
  ASSERT_EQ(b["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(b["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"city\": \"Oslo\"}");

  // parallel_tool_calls false: the first call ends the answer.
  ParsedRequest p = toolRequest(ToolChoice::Auto);
  p.chat.parallelToolCalls = false;
  CompletionWriter one(p, &tok, "chatcmpl-2", "m", 7, 3);
  feedText(one, kCB + v3Call("a", "[1]") + "\n" + v3Call("b", "[2]") + kCE);
  EXPECT_TRUE(one.finished());
  json o = one.body()["choices"][0];
  EXPECT_EQ(o["finish_reason"], "tool_calls");
  ASSERT_EQ(o["message"]["tool_calls"].size(), 1u);
  EXPECT_EQ(o["message"]["tool_calls"][0]["function"]["name"], "a");

  // Cut short by max_tokens: the call so far, "length".
  CompletionWriter cut(toolRequest(ToolChoice::Required), &tok, "c-3", "m", 7,
                       3);
  feedText(cut, "get_weather\n```json\n{\"ci");
  cut.onFinish(FinishReason::Length);
  json c = cut.body()["choices"][0];
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["arguments"], "{\"ci");

  // No call made: plain content, no tool_calls, "stop".
  CompletionWriter none(toolRequest(ToolChoice::Auto), &tok, "c-4", "m", 7, 3);
  feedText(none, "Just text.");
  none.onFinish(FinishReason::Stop);
  json n = none.body()["choices"][0];
  EXPECT_EQ(n["finish_reason"], "stop");
  EXPECT_EQ(n["message"]["content"], "Just text.");
  EXPECT_FALSE(n["message"].contains("tool_calls"));
}

TEST(CompletionWriter, VllmTextOptions) {
  ParsedRequest r;
  ByteTok tok;
  // Special tokens add no text unless skip_special_tokens is false.
  for (bool skip : {true, false}) {
    r.skipSpecialTokens = skip;
    CompletionWriter w(r, &tok, "cmpl-1", "m", 7, 1);
    feedText(w, std::string("a") + char(Utf8Stream::kSpecial) + "b");
    w.onFinish(FinishReason::Length);
    EXPECT_EQ(w.body()["choices"][0]["text"], skip ? "ab" : "a<s>b");
  }
  // include_stop_str_in_output keeps the matched stop string.
  r.skipSpecialTokens = true;
  r.stop = {"cd", "x"};
  for (bool include : {false, true}) {
    r.includeStopStr = include;
    CompletionWriter w(r, &tok, "cmpl-2", "m", 7, 1);
    feedText(w, "abcdef");
    json c = w.body()["choices"][0];
    EXPECT_EQ(c["text"], include ? "abcd" : "ab");
    EXPECT_EQ(c["finish_reason"], "stop");
  }
}

TEST(CompletionWriter, InvalidUtf8NeverBreaksTheJson) {
  ParsedRequest r;
  r.logprobs = true;
  ByteTok tok;
  CompletionWriter w(r, &tok, "cmpl-1", "m", 7, 1);
  TokenOutput t;
  t.token = 0xC3; // half a character, alone
  t.top = {{0xC3, -0.1f}, {0xFF, -3.0f}};
  w.onToken(t);
  w.onFinish(FinishReason::Length);
  std::string s = dumpJson(w.body());
  json back = json::parse(s);
  EXPECT_EQ(back["choices"][0]["logprobs"]["tokens"][0], "\xEF\xBF\xBD");
}

} // namespace
