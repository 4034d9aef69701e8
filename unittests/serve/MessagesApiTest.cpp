//===- MessagesApiTest.cpp - /v1/messages bodies as chat requests ---------===//

#include "MessagesApi.h"

#include <gtest/gtest.h>

using namespace dsserve;
using nlohmann::json;

TEST(MessagesApi, BlocksBecomeChatMessages) {
  ApiError e;
  auto r = parseMessagesRequest(R"({"model": "m", "max_tokens": 64,
    "system": [{"type": "text", "text": "be brief"},
               {"type": "text", "text": "use tools", "cache_control": {"type": "ephemeral"}}],
    "messages": [
      {"role": "user", "content": "weather?"},
      {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "text", "text": "Looking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get", "input": {"city": "Rome"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2",
         "content": [{"type": "text", "text": "rain"}], "is_error": false},
        {"type": "text", "text": "and tomorrow?"}]}],
    "tools": [{"name": "get", "description": "weather",
               "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
    "stop_sequences": ["END"], "temperature": 0.5, "top_k": 5,
    "thinking": {"type": "enabled", "budget_tokens": 1024}})",
                                e);
  ASSERT_TRUE(r) << e.message;
  json m = json::parse(r->chat.messagesJson);
  ASSERT_EQ(m.size(), 6u) << m;
  EXPECT_EQ(m[0],
            json({{"role", "system"}, {"content", "be brief\nuse tools"}}));
  EXPECT_EQ(m[1], json({{"role", "user"}, {"content", "weather?"}}));
  // Thinking dropped; text and calls one assistant turn.
  EXPECT_EQ(m[2]["content"], "Looking.");
  ASSERT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(
      json::parse(
          m[2]["tool_calls"][1]["function"]["arguments"].get<std::string>()),
      json({{"city", "Rome"}}));
  // Results first (they answer the calls), then the user's text.
  EXPECT_EQ(m[3], json({{"role", "tool"},
                        {"tool_call_id", "toolu_1"},
                        {"content", "sunny"}}));
  EXPECT_EQ(m[4]["content"], "rain");
  EXPECT_EQ(m[5], json({{"role", "user"}, {"content", "and tomorrow?"}}));
  EXPECT_EQ(r->chat.toolChoice, ToolChoice::Required);
  EXPECT_FALSE(r->chat.parallelToolCalls);
  EXPECT_EQ(r->stop, std::vector<std::string>{"END"});
  EXPECT_EQ(*r->maxTokens, 64);
  EXPECT_EQ(r->topK, 5);
  EXPECT_EQ(r->temperature, 0.5f);
  EXPECT_EQ(json::parse(r->chat.contextJson)["thinking"], true);
}

TEST(MessagesApi, FinalAssistantMessageIsContinued) {
  ApiError e;
  auto r = parseMessagesRequest(R"({"max_tokens": 8, "messages": [
    {"role": "user", "content": "Say hi as JSON"},
    {"role": "assistant", "content": "{\"greeting\": \""}]})",
                                e);
  ASSERT_TRUE(r) << e.message;
  EXPECT_TRUE(r->chat.continueFinal);
  EXPECT_FALSE(r->chat.addGenerationPrompt);
  EXPECT_EQ(r->chat.finalContent, "{\"greeting\": \"");
  // An empty final assistant turn asks for the answer as usual.
  auto empty = parseMessagesRequest(R"({"max_tokens": 8, "messages": [
    {"role": "user", "content": "hi"}, {"role": "assistant", "content": ""}]})",
                                    e);
  ASSERT_TRUE(empty) << e.message;
  EXPECT_FALSE(empty->chat.continueFinal);
  EXPECT_EQ(json::parse(empty->chat.messagesJson).size(), 1u);
}

TEST(MessagesApi, ToolChoicesMapToChat) {
  ApiError e;
  const std::string tools =
      R"("tools": [{"name": "get", "input_schema": {"type": "object"}}])";
  auto choice = [&](const std::string &tc) {
    auto r = parseMessagesRequest(
        R"({"max_tokens": 8, "messages": [{"role": "user", "content": "x"}], )" +
            tools + R"(, "tool_choice": )" + tc + "}",
        e);
    EXPECT_TRUE(r) << tc << ": " << e.message;
    return r ? r->chat.toolChoice : ToolChoice::None;
  };
  EXPECT_EQ(choice(R"({"type": "auto"})"), ToolChoice::Auto);
  EXPECT_EQ(choice(R"({"type": "any"})"), ToolChoice::Required);
  EXPECT_EQ(choice(R"({"type": "none"})"), ToolChoice::None);
  EXPECT_EQ(choice(R"({"type": "tool", "name": "get"})"), ToolChoice::Named);
}

TEST(MessagesApi, BadBodiesAre400sNamingTheField) {
  auto bad = [](const std::string &body, const std::string &param,
                const std::string &part, bool countOnly = false) {
    ApiError e;
    EXPECT_FALSE(parseMessagesRequest(body, e, countOnly)) << body;
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.message;
    EXPECT_NE(e.message.find(part), std::string::npos) << e.message;
  };
  const std::string user = R"("messages": [{"role": "user", "content": "x"}])";
  bad("{" + user + "}", "max_tokens", "'max_tokens' is required");
  bad(R"({"max_tokens": 8})", "messages", "non-empty list");
  bad(R"({"max_tokens": 8, "messages": [{"role": "system", "content": "x"}]})",
      "messages", "\"user\" or \"assistant\"");
  bad(R"({"max_tokens": 8, "messages": [{"role": "user", "content": [
      {"type": "image", "source": {}}]}]})",
      "messages", "'image' are not supported");
  bad(R"({"max_tokens": 8, "messages": [{"role": "user", "content": [
      {"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]})",
      "messages", "'tool_use' are not supported in user messages");
  bad(R"({"max_tokens": 8, "system": [{"type": "image"}], )" + user + "}",
      "system", "only text blocks");
  bad(R"({"max_tokens": 8, "tools": [{"type": "web_search_20250305", "name": "w"}], )" +
          user + "}",
      "tools", "not 'web_search_20250305'");
  bad(R"({"max_tokens": 8, "tool_choice": {"type": "tool"}, )" + user + "}",
      "tool_choice", "\"type\": \"tool\"");
  bad(R"({"max_tokens": 8, "thinking": {"type": "maybe"}, )" + user + "}",
      "thinking", "enabled");
  bad(R"({"max_tokens": 8, "stop_sequences": "END", )" + user + "}",
      "stop_sequences", "");
  bad(R"({"max_tokens": 0, )" + user + "}", "max_tokens", "");
  bad("{\"max_tokens\": 8, " + user, "", "JSON");
  // count_tokens needs no max_tokens.
  ApiError e;
  EXPECT_TRUE(parseMessagesRequest("{" + user + "}", e, /*countOnly=*/true))
      << e.message;
}

TEST(MessagesApi, ErrorsInAnthropicsShape) {
  json e =
      json::parse(anthropicError(404, ApiError{404, "model 'x' is not served",
                                               "not_found_error", "model", ""}
                                          .toJson()));
  EXPECT_EQ(e["type"], "error");
  EXPECT_EQ(e["error"]["type"], "not_found_error");
  EXPECT_EQ(e["error"]["message"], "model 'x' is not served");
  for (auto [status, type] :
       std::vector<std::pair<int, const char *>>{{400, "invalid_request_error"},
                                                 {401, "authentication_error"},
                                                 {429, "rate_limit_error"},
                                                 {503, "overloaded_error"},
                                                 {500, "api_error"}})
    EXPECT_EQ(json::parse(anthropicError(status, "{}"))["error"]["type"], type);
}
