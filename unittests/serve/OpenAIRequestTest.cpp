//===- OpenAIRequestTest.cpp - request parsing and validation -------------===//

#include "OpenAIRequest.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace dsserve;

namespace {

std::optional<ParsedRequest> parse(const std::string &body, ApiError &e,
                                   Endpoint ep = Endpoint::Completions) {
  return parseRequest(ep, body, e);
}

void expectError(const std::string &body, const std::string &param,
                 const std::string &messagePart,
                 Endpoint ep = Endpoint::Completions) {
  ApiError e;
  auto r = parse(body, e, ep);
  ASSERT_FALSE(r) << body;
  EXPECT_EQ(e.status, 400) << body;
  EXPECT_EQ(e.param, param) << body;
  EXPECT_NE(e.message.find(messagePart), std::string::npos)
      << body << " -> " << e.message;
}

TEST(OpenAIRequest, CompletionDefaultsAndFields) {
  ApiError e;
  auto r = parse(R"({"model":"m","prompt":"hi","max_tokens":5,
    "temperature":0,"top_p":0.5,"seed":-3,"stop":"x","stream":true,
    "stream_options":{"include_usage":true},"logprobs":2,"ignore_eos":true,
    "unknown_field":{"ignored":1}})",
                 e);
  ASSERT_TRUE(r) << e.message;
  ASSERT_EQ(r->prompts.size(), 1u);
  EXPECT_EQ(*r->prompts[0].text, "hi");
  EXPECT_EQ(r->n, 1);
  EXPECT_EQ(*r->maxTokens, 5);
  EXPECT_EQ(r->temperature, 0.0f);
  EXPECT_EQ(r->topP, 0.5f);
  EXPECT_EQ(*r->seed, uint64_t(-3));
  EXPECT_EQ(r->stop, std::vector<std::string>{"x"});
  EXPECT_TRUE(r->stream && r->includeUsage && r->logprobs && r->ignoreEos);
  EXPECT_EQ(r->topLogprobs, 2);

  auto d = parse(R"({"prompt":"x"})", e);
  ASSERT_TRUE(d);
  EXPECT_FALSE(d->maxTokens);
  EXPECT_EQ(d->temperature, 1.0f);
  EXPECT_FALSE(d->stream);
  EXPECT_FALSE(d->logprobs);
}

TEST(OpenAIRequest, PromptForms) {
  ApiError e;
  auto one = [&](const std::string &body) {
    auto r = parse(body, e);
    EXPECT_TRUE(r && r->prompts.size() == 1) << body << ": " << e.message;
    return r ? r->prompts[0] : PromptInput{};
  };
  EXPECT_EQ(*one(R"({"prompt":[1,2,3]})").tokens,
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(*one(R"({"prompt":[[4,5]]})").tokens, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(*one(R"({"prompt":["text"]})").text, "text");
  EXPECT_FALSE(one(R"({"prompt":"t"})").tokens);
  expectError(R"({"prompt":[]})", "prompt", "must not be empty");
  expectError(R"({"prompt":[1,-2]})", "prompt", "out of range");
  expectError(R"({"prompt":[1,99999999999]})", "prompt", "out of range");
  expectError(R"({"prompt":[1,2.5]})", "prompt", "integers");
  expectError(R"({"prompt":{}})", "prompt", "must be a string");
  expectError(R"({"max_tokens":3})", "prompt", "required");
}

TEST(OpenAIRequest, BatchesAndChoices) {
  ApiError e;
  // A batch: strings and token-id arrays, in order.
  auto r = parse(R"({"prompt":["a",[7,8],"b"],"n":2})", e);
  ASSERT_TRUE(r) << e.message;
  ASSERT_EQ(r->prompts.size(), 3u);
  EXPECT_EQ(*r->prompts[0].text, "a");
  EXPECT_EQ(*r->prompts[1].tokens, (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(*r->prompts[2].text, "b");
  EXPECT_EQ(r->n, 2);
  EXPECT_EQ(parse(R"({"messages":[{"role":"user","content":"x"}],"n":5})", e,
                  Endpoint::ChatCompletions)
                ->n,
            5);
  expectError(R"({"prompt":["a",[]]})", "prompt", "must not be empty");
  expectError(R"({"prompt":["a",3]})", "prompt", "'prompt[1]' must be");
  expectError(R"({"prompt":[[1],[2,-1]]})", "prompt", "out of range");
  expectError(R"({"prompt":"x","n":0})", "n", "[1, 128]");
  expectError(R"({"prompt":"x","n":129})", "n", "[1, 128]");
  expectError(R"({"prompt":"x","n":2.0})", "n", "an integer");
  expectError(R"({"prompt":["a","b","c"],"n":50})", "n", "150 choices");
  std::string many = R"({"prompt":[)";
  for (int i = 0; i < 129; ++i)
    many += std::string(i ? "," : "") + "\"p\"";
  expectError(many + "]}", "prompt", "at most 128 prompts");
}

TEST(OpenAIRequest, WrongTypesAndRanges) {
  expectError(R"({"prompt":"x","max_tokens":"5"})", "max_tokens",
              "must be an integer, not a string");
  expectError(R"({"prompt":"x","max_tokens":0})", "max_tokens", "[1,");
  expectError(R"({"prompt":"x","max_tokens":1.5})", "max_tokens",
              "an integer");
  expectError(R"({"prompt":"x","temperature":3})", "temperature", "[0, 2]");
  expectError(R"({"prompt":"x","temperature":true})", "temperature",
              "a number");
  expectError(R"({"prompt":"x","top_p":0})", "top_p", "must be in");
  expectError(R"({"prompt":"x","stop":[1]})", "stop", "strings");
  expectError(R"({"prompt":"x","stop":[""]})", "stop", "empty");
  expectError(R"({"prompt":"x","stream":1})", "stream", "a boolean");
  expectError(R"({"prompt":"x","stream_options":{"include_usage":true}})",
              "stream_options", "only allowed when");
  expectError(R"({"prompt":"x","logprobs":21})", "logprobs", "[0, 20]");
  expectError(R"({"prompt":"x","seed":"1"})", "seed", "an integer");
  expectError(R"({"messages":[{"role":"user","content":"x"}],"echo":true})",
              "echo", "only supported on /v1/completions",
              Endpoint::ChatCompletions);
  expectError(R"({"prompt":"x","echo":1})", "echo", "a boolean");
  // max_tokens 0 only scores the prompt: with echo.
  ApiError ee;
  auto echo = parse(R"({"prompt":"x","echo":true,"max_tokens":0})", ee);
  ASSERT_TRUE(echo) << ee.message;
  EXPECT_TRUE(echo->echo);
  EXPECT_EQ(*echo->maxTokens, 0);
  expectError(R"({"prompt":"x","model":3})", "model", "a string");
  // null means absent, as in OpenAI's API.
  ApiError e;
  EXPECT_TRUE(parse(R"({"prompt":"x","max_tokens":null,"stop":null})", e));
}

TEST(OpenAIRequest, VllmSamplingExtensions) {
  ApiError e;
  auto r = parse(R"({"prompt":"x","top_k":5,"stop_token_ids":[7,0]})", e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->topK, 5);
  EXPECT_EQ(r->stopTokenIds, (std::vector<int32_t>{7, 0}));
  // -1 and 0 both turn top-k off, as in vLLM.
  EXPECT_EQ(parse(R"({"prompt":"x","top_k":-1})", e)->topK, 0);
  EXPECT_EQ(parse(R"({"prompt":"x"})", e)->topK, 0);
  expectError(R"({"prompt":"x","top_k":-2})", "top_k", "[-1,");
  expectError(R"({"prompt":"x","top_k":1.5})", "top_k", "an integer");
  expectError(R"({"prompt":"x","stop_token_ids":3})", "stop_token_ids",
              "an array");
  auto t = parse(R"({"prompt":"x","skip_special_tokens":false,)"
                 R"("include_stop_str_in_output":true})",
                 e);
  ASSERT_TRUE(t) << e.message;
  EXPECT_FALSE(t->skipSpecialTokens);
  EXPECT_TRUE(t->includeStopStr);
  EXPECT_TRUE(parse(R"({"prompt":"x"})", e)->skipSpecialTokens);
  expectError(R"({"prompt":"x","skip_special_tokens":1})",
              "skip_special_tokens", "a boolean");
  expectError(R"({"prompt":"x","include_stop_str_in_output":"yes"})",
              "include_stop_str_in_output", "a boolean");
  expectError(R"({"prompt":"x","stop_token_ids":[-1]})", "stop_token_ids",
              "token ids");
  expectError(R"({"prompt":"x","stop_token_ids":["a"]})", "stop_token_ids",
              "token ids");
  // Fields it cannot honour are refused, not ignored; their neutral
  // values pass.
  // suffix: fill in the middle, for text prompts on completions only.
  expectError(R"({"prompt":[1,2],"suffix":"end"})", "suffix", "as text");
  expectError(R"({"prompt":["a",[1,2]],"suffix":"end"})", "suffix", "as text");
  expectError(R"({"prompt":"x","suffix":"end","echo":true})", "echo", "suffix");
  expectError(R"({"prompt":"x","suffix":3})", "suffix", "a string");
  expectError(R"({"messages":[{"role":"user","content":"x"}],"suffix":"y"})",
              "suffix", "/v1/completions", Endpoint::ChatCompletions);
  auto fim = parse(R"({"prompt":["a","b"],"suffix":"end"})", e);
  ASSERT_TRUE(fim) << e.message;
  EXPECT_EQ(fim->suffix, "end");
  expectError(R"({"prompt":"x","use_beam_search":true})", "use_beam_search",
              "not supported");
  EXPECT_TRUE(parse(R"({"prompt":"x","min_p":0,"repetition_penalty":1,
    "min_tokens":0,"suffix":"","use_beam_search":false})",
                    e))
      << e.message;
}

TEST(OpenAIRequest, LogitsProcessingFields) {
  ApiError e;
  auto r = parse(R"({"prompt":"x","presence_penalty":0.5,
    "frequency_penalty":-1.5,"repetition_penalty":1.2,"min_p":0.05,
    "min_tokens":3,"max_tokens":9,"logit_bias":{"7":100,"12":-2.5}})",
                 e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(r->presencePenalty, 0.5f);
  EXPECT_EQ(r->frequencyPenalty, -1.5f);
  EXPECT_EQ(r->repetitionPenalty, 1.2f);
  EXPECT_EQ(r->minP, 0.05f);
  EXPECT_EQ(r->minTokens, 3);
  auto bias = r->logitBias;
  std::sort(bias.begin(), bias.end());
  EXPECT_EQ(bias,
            (std::vector<std::pair<int32_t, float>>{{7, 100.0f}, {12, -2.5f}}));
  auto d = parse(R"({"prompt":"x"})", e);
  EXPECT_EQ(d->repetitionPenalty, 1.0f);
  EXPECT_TRUE(d->logitBias.empty());
  expectError(R"({"prompt":"x","presence_penalty":2.5})", "presence_penalty",
              "[-2, 2]");
  expectError(R"({"prompt":"x","repetition_penalty":0})", "repetition_penalty",
              "must be in");
  expectError(R"({"prompt":"x","min_p":1.5})", "min_p", "[0, 1]");
  expectError(R"({"prompt":"x","min_tokens":-1})", "min_tokens", "[0,");
  expectError(R"({"prompt":"x","min_tokens":5,"max_tokens":4})", "min_tokens",
              "exceeds 'max_tokens' (4)");
  expectError(R"({"prompt":"x","logit_bias":[1]})", "logit_bias", "an object");
  expectError(R"({"prompt":"x","logit_bias":{"a":1}})", "logit_bias",
              "keys must be token ids, got 'a'");
  expectError(R"({"prompt":"x","logit_bias":{"-3":1}})", "logit_bias",
              "keys must be token ids");
  expectError(R"({"prompt":"x","logit_bias":{"3":101}})", "logit_bias",
              "[-100, 100]");
  expectError(R"({"prompt":"x","logit_bias":{"3":"up"}})", "logit_bias",
              "[-100, 100]");
}

TEST(OpenAIRequest, TokenizeAndDetokenizeBodies) {
  ApiError e;
  auto t = parseTokenizeRequest(R"({"prompt":"hi","model":"m"})", e);
  ASSERT_TRUE(t) << e.message;
  EXPECT_EQ(*t->prompt, "hi");
  EXPECT_EQ(t->model, "m");
  EXPECT_TRUE(t->addSpecialTokens);
  t = parseTokenizeRequest(R"({"prompt":"hi","add_special_tokens":false})", e);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->addSpecialTokens);
  // The chat form renders as chat requests do: no BOS added on top.
  t = parseTokenizeRequest(R"({"messages":[{"role":"user","content":"x"}]})",
                           e);
  ASSERT_TRUE(t) << e.message;
  EXPECT_FALSE(t->prompt);
  EXPECT_EQ(t->chat.messagesJson, R"([{"content":"x","role":"user"}])");
  EXPECT_FALSE(t->addSpecialTokens);
  auto bad = [&](const std::string &body, const std::string &param,
                 bool detok = false) {
    ApiError err;
    bool parsed = detok ? bool(parseDetokenizeRequest(body, err))
                        : bool(parseTokenizeRequest(body, err));
    EXPECT_FALSE(parsed) << body;
    EXPECT_EQ(err.status, 400) << body;
    EXPECT_EQ(err.param, param) << body << ": " << err.message;
  };
  bad("{}", "prompt");
  bad(R"({"prompt":5})", "prompt");
  bad(R"({"messages":[]})", "messages");
  // add_generation_prompt false is served (the chat's own fields).
  t = parseTokenizeRequest(R"({"messages":[{"role":"user","content":"x"}],)"
                           R"("add_generation_prompt":false})",
                           e);
  ASSERT_TRUE(t) << e.message;
  EXPECT_FALSE(t->chat.addGenerationPrompt);
  bad(R"({"messages":[{"role":"user","content":"x"}],)"
      R"("add_generation_prompt":1})",
      "add_generation_prompt");
  bad("{", "");
  auto d = parseDetokenizeRequest(R"({"tokens":[3,0,7]})", e);
  ASSERT_TRUE(d) << e.message;
  EXPECT_EQ(d->tokens, (std::vector<int32_t>{3, 0, 7}));
  bad("{}", "tokens", true);
  bad(R"({"tokens":"3"})", "tokens", true);
  bad(R"({"tokens":[1,-1]})", "tokens", true);
  bad(R"({"tokens":[1.5]})", "tokens", true);
  bad(R"({"tokens":[4294967296]})", "tokens", true);
}

TEST(OpenAIRequest, MalformedBodies) {
  expectError("{", "", "malformed JSON");
  expectError("", "", "malformed JSON");
  expectError("[1]", "", "JSON object");
  expectError("\"x\"", "", "JSON object");
  expectError(std::string("{\"prompt\":\"\xff\"}"), "", "malformed JSON");
  // A number past a double's range is nlohmann's out_of_range, not a
  // parse_error (found by ds-fuzz-serve-request).
  expectError("0.5e500000000016077", "", "malformed JSON");
  expectError(R"({"prompt":"x","max_tokens":1e400})", "", "number overflow");
}

TEST(OpenAIRequest, ChatMessages) {
  ApiError e;
  auto r = parse(R"({"messages":[{"role":"system","content":"s"},
    {"role":"user","content":[{"type":"text","text":"a"},
                              {"type":"text","text":"b"}]},
    {"role":"assistant","content":null}],"max_completion_tokens":7,
    "max_tokens":3,"logprobs":true,"top_logprobs":4})",
                 e, Endpoint::ChatCompletions);
  ASSERT_TRUE(r) << e.message;
  EXPECT_EQ(
      r->chat.messagesJson,
      R"([{"content":"s","role":"system"},{"content":"ab","role":"user"},)"
      R"({"content":"","role":"assistant"}])");
  EXPECT_EQ(*r->maxTokens, 7);
  EXPECT_EQ(r->topLogprobs, 4);
  const auto chat = Endpoint::ChatCompletions;
  expectError(R"({"messages":[]})", "messages", "non-empty", chat);
  expectError(R"({"messages":"hi"})", "messages", "non-empty", chat);
  expectError(R"({"messages":[{"role":"bot","content":"x"}]})", "messages",
              "got 'bot'", chat);
  expectError(R"({"messages":[{"content":"x"}]})", "messages",
              "messages[0].role", chat);
  expectError(R"({"messages":[{"role":"user"}]})", "messages", "required",
              chat);
  expectError(R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})",
              "messages", "parts", chat);
  expectError(R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})",
              "top_logprobs", "needs 'logprobs'", chat);
  expectError(R"({"messages":[{"role":"user","content":"x"}],"logprobs":2})",
              "logprobs", "a boolean", chat);
}

TEST(OpenAIRequest, ToolsAndToolChoice) {
  const auto chat = Endpoint::ChatCompletions;
  ApiError e;
  auto r = parse(R"({"messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"get_weather",
      "description":"d","parameters":{"type":"object"}}},
      {"function":{"name":"ns.lookup-2"}}]})",
                 e, chat);
  ASSERT_TRUE(r) << e.message;
  // Tools go to the template as sent (a missing type filled in).
  EXPECT_EQ(r->chat.contextJson,
            R"({"tools":[{"function":{"description":"d","name":"get_weather",)"
            R"("parameters":{"type":"object"}},"type":"function"},)"
            R"({"function":{"name":"ns.lookup-2"},"type":"function"}]})");
  EXPECT_EQ(r->chat.toolChoice, ToolChoice::Auto); // the default with tools
  EXPECT_TRUE(r->chat.parallelToolCalls);

  const std::string tools =
      R"("tools":[{"type":"function","function":{"name":"f"}}])";
  const std::string user = R"("messages":[{"role":"user","content":"x"}])";
  auto choice = [&](const std::string &extra) {
    ApiError err;
    auto p = parse("{" + user + "," + tools + "," + extra + "}", err, chat);
    EXPECT_TRUE(p) << err.message;
    return p ? *p : ParsedRequest();
  };
  EXPECT_EQ(choice(R"("tool_choice":"none")").chat.toolChoice,
            ToolChoice::None);
  EXPECT_EQ(choice(R"("tool_choice":"required")").chat.toolChoice,
            ToolChoice::Required);
  ParsedRequest named =
      choice(R"("tool_choice":{"type":"function","function":{"name":"f"}},)"
             R"("parallel_tool_calls":false)");
  EXPECT_EQ(named.chat.toolChoice, ToolChoice::Named);
  EXPECT_EQ(named.chat.toolName, "f");
  EXPECT_FALSE(named.chat.parallelToolCalls);
  // No tools: nothing to parse, and "auto" means none.
  auto plain = parse("{" + user + R"(,"tool_choice":"auto"})", e, chat);
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->chat.toolChoice, ToolChoice::None);
  EXPECT_EQ(plain->chat.contextJson, "");
  // chat_template_kwargs join the template's context.
  auto kw = parse("{" + user + R"(,"chat_template_kwargs":{"thinking":true}})",
                  e, chat);
  ASSERT_TRUE(kw);
  EXPECT_EQ(kw->chat.contextJson, R"({"thinking":true})");

  expectError("{" + user + R"(,"tools":{"a":1}})", "tools", "an array", chat);
  expectError("{" + user + R"(,"tools":[{"type":"code"}]})", "tools",
              "tools[0].type", chat);
  expectError("{" + user + R"(,"tools":[{"type":"function"}]})", "tools",
              "tools[0].function", chat);
  expectError(
      "{" + user +
          R"(,"tools":[{"type":"function","function":{"name":"a b"}}]})",
      "tools", "tools[0].function.name", chat);
  expectError("{" + user +
                  R"(,"tools":[{"function":{"name":"f",)"
                  R"("parameters":"x"}}]})",
              "tools", "JSON Schema", chat);
  expectError("{" + user +
                  R"(,"tools":[{"function":{"name":"f"}},)"
                  R"({"function":{"name":"f"}}]})",
              "tools", "twice", chat);
  expectError("{" + user + "," + tools + R"(,"tool_choice":"always"})",
              "tool_choice", "\"required\"", chat);
  expectError(
      "{" + user + "," + tools +
          R"(,"tool_choice":{"type":"function","function":{"name":"g"}}})",
      "tool_choice", "'g', which 'tools' does not define", chat);
  expectError("{" + user + R"(,"tool_choice":"required"})", "tool_choice",
              "'tools' is empty", chat);
  expectError("{" + user + R"(,"functions":[]})", "functions", "use 'tools'",
              chat);
  expectError("{" + user + R"(,"chat_template_kwargs":{"messages":[]}})",
              "chat_template_kwargs", "may not set 'messages'", chat);
  expectError(R"({"prompt":"x",)" + tools + "}", "tools",
              "only supported on /v1/chat/completions");
}

TEST(OpenAIRequest, ToolCallsInTheConversation) {
  ApiError e;
  auto r = parse(R"({"messages":[{"role":"user","content":"w?"},
    {"role":"assistant","tool_calls":[{"id":"call_1","type":"function",
      "function":{"name":"get","arguments":"{\"c\": 1}"}},
      {"function":{"name":"put","arguments":{"k":[1]}}}]},
    {"role":"tool","tool_call_id":"call_1","content":"sunny"},
    {"role":"assistant","content":"ok","tool_calls":null}]})",
                 e, Endpoint::ChatCompletions);
  ASSERT_TRUE(r) << e.message;
  // Content stays null beside calls (DeepSeek's templates test it); object
  // arguments become their JSON text.
  EXPECT_EQ(r->chat.messagesJson,
            R"([{"content":"w?","role":"user"},)"
            R"({"content":null,"role":"assistant","tool_calls":[)"
            R"({"function":{"arguments":"{\"c\": 1}","name":"get"},)"
            R"("id":"call_1","type":"function"},)"
            R"({"function":{"arguments":"{\"k\":[1]}","name":"put"},)"
            R"("type":"function"}]},)"
            R"({"content":"sunny","role":"tool","tool_call_id":"call_1"},)"
            R"({"content":"ok","role":"assistant"}])");
  const auto chat = Endpoint::ChatCompletions;
  expectError(R"({"messages":[{"role":"assistant","tool_calls":{}}]})",
              "messages", "messages[0].tool_calls' must be an array", chat);
  expectError(R"({"messages":[{"role":"assistant","tool_calls":[{}]}]})",
              "messages", "messages[0].tool_calls[0]", chat);
  expectError(R"({"messages":[{"role":"assistant","tool_calls":[)"
              R"({"function":{"name":"f","arguments":3}}]}]})",
              "messages", "arguments' must be a string", chat);
  expectError(
      R"({"messages":[{"role":"tool","content":"x","tool_call_id":3}]})",
      "messages", "tool_call_id' must be a string", chat);
}

TEST(OpenAIRequest, ContinuingTheFinalMessage) {
  const auto chat = Endpoint::ChatCompletions;
  ApiError e;
  // DeepSeek's prefix completion.
  auto r = parse(R"({"messages":[{"role":"user","content":"Write code."},
    {"role":"assistant","content":"```python\n","prefix":true}]})",
                 e, chat);
  ASSERT_TRUE(r) << e.message;
  EXPECT_TRUE(r->chat.continueFinal);
  EXPECT_FALSE(r->chat.addGenerationPrompt);
  EXPECT_EQ(r->chat.finalContent, "```python\n");
  EXPECT_NE(r->chat.messagesJson.find(R"("prefix":true)"), std::string::npos);
  // vLLM's form.
  r = parse(R"({"messages":[{"role":"user","content":"a"},
    {"role":"assistant","content":"b"}],"continue_final_message":true,
    "add_generation_prompt":false})",
            e, chat);
  ASSERT_TRUE(r) << e.message;
  EXPECT_TRUE(r->chat.continueFinal);
  EXPECT_EQ(r->chat.finalContent, "b");
  expectError(R"({"messages":[{"role":"user","content":"a"}],)"
              R"("continue_final_message":true})",
              "continue_final_message", "last message from the assistant",
              chat);
  expectError(R"({"messages":[{"role":"user","content":"a"},)"
              R"({"role":"assistant","content":"b"}],)"
              R"("continue_final_message":true,"add_generation_prompt":true})",
              "continue_final_message", "contradict", chat);
  expectError(
      R"({"messages":[{"role":"assistant","content":"b","prefix":true},)"
      R"({"role":"user","content":"a"}]})",
      "messages", "only allowed on the last message", chat);
  expectError(
      R"({"messages":[{"role":"user","content":"a"},)"
      R"({"role":"assistant","content":"b","prefix":true}],)"
      R"("tools":[{"function":{"name":"f"}}],"tool_choice":"required"})",
      "continue_final_message", "forced tool call", chat);
}

} // namespace

TEST(OpenAIRequest, StructuredOutputsFields) {
  ApiError e;
  auto matches = [&](const std::string &body, const std::string &text) {
    auto r = parse(body, e);
    EXPECT_TRUE(r && r->grammar) << body << ": " << e.message;
    if (!r || !r->grammar)
      return false;
    Matcher m(r->grammar);
    return m.feed(text) && m.accepting();
  };
  // vLLM's guided_regex and its structured_outputs object.
  EXPECT_TRUE(matches(R"({"prompt":"x","guided_regex":"\\d+-[a-c]"})", "12-b"));
  EXPECT_FALSE(
      matches(R"({"prompt":"x","guided_regex":"\\d+-[a-c]"})", "12-d"));
  EXPECT_TRUE(
      matches(R"({"prompt":"x","structured_outputs":{"regex":"a|bc"}})", "bc"));
  EXPECT_TRUE(matches(
      R"({"prompt":"x","structured_outputs":{"choice":["yes","no"]}})", "no"));
  EXPECT_TRUE(matches(
      R"({"prompt":"x","structured_outputs":{"json":{"type":"integer"}}})",
      "42"));
  EXPECT_TRUE(matches(
      R"({"prompt":"x","structured_outputs":{"json":"{\"type\":\"integer\"}"}})",
      "42"));
  EXPECT_TRUE(matches(
      R"({"prompt":"x","structured_outputs":{"json_object":true}})", "{}"));
  EXPECT_TRUE(matches(R"({"prompt":"x",
      "response_format":{"type":"json_schema","json_schema":{"name":"n",
      "schema":{"type":"string","format":"date"}}}})",
                      "\"2024-01-31\""));
  expectError(R"({"prompt":"x","guided_regex":"(a"})", "guided_regex",
              "missing ')'");
  expectError(R"({"prompt":"x","guided_regex":5})", "guided_regex", "a string");
  expectError(R"({"prompt":"x","guided_grammar":"root ::= x"})",
              "guided_grammar", "not supported");
  expectError(R"({"prompt":"x","structured_outputs":{}})", "structured_outputs",
              "exactly one");
  expectError(R"({"prompt":"x","structured_outputs":{"regex":"a",
      "choice":["b"]}})",
              "structured_outputs", "exactly one");
  expectError(R"({"prompt":"x","structured_outputs":{"grammar":"x"}})",
              "structured_outputs", "'structured_outputs.grammar'");
  expectError(R"({"prompt":"x","structured_outputs":3})", "structured_outputs",
              "an object");
  expectError(R"({"prompt":"x","structured_outputs":{"regex":"\\bx"}})",
              "structured_outputs", "word boundaries");
  expectError(R"({"prompt":"x","guided_regex":"a",
      "response_format":{"type":"json_object"}})",
              "response_format", "more than one");
  expectError(R"({"prompt":"x","guided_json":{"type":"string",
      "pattern":"(?<=a)b"}})",
              "guided_json", "pattern: lookaround");
}
