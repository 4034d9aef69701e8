//===- ResponsesApiTest.cpp - /v1/responses bodies as chat requests -------===//

#include "ResponsesApi.h"

#include <gtest/gtest.h>

using namespace dsserve;
using nlohmann::json;

namespace {

std::optional<ParsedRequest> parse(const std::string &body, ApiError &e) {
  json echo;
  return parseResponsesRequest(body, e, echo);
}

} // namespace

TEST(ResponsesApi, InputItemsBecomeMessages) {
  ApiError e;
  json echo;
  auto r = parseResponsesRequest(R"({"instructions": "be brief",
    "input": [{"role": "user", "content": [{"type": "input_text", "text": "w?"}]},
              {"type": "reasoning", "summary": []},
              {"type": "function_call", "call_id": "c1", "name": "get", "arguments": "{}"},
              {"type": "function_call", "call_id": "c2", "name": "put", "arguments": "[]"},
              {"type": "function_call_output", "call_id": "c1", "output": "sunny"}],
    "tools": [{"type": "function", "name": "get", "parameters": {"type": "object"}}],
    "tool_choice": {"type": "function", "name": "get"}, "max_output_tokens": 7})",
                                 e, echo);
  ASSERT_TRUE(r) << e.message;
  json m = json::parse(r->chat.messagesJson);
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], json({{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(m[1]["content"], "w?");
  // Calls in a row are one assistant turn.
  EXPECT_EQ(m[2]["tool_calls"].size(), 2u);
  EXPECT_EQ(m[2]["tool_calls"][1]["function"]["name"], "put");
  EXPECT_EQ(
      m[3],
      json({{"role", "tool"}, {"tool_call_id", "c1"}, {"content", "sunny"}}));
  EXPECT_EQ(r->chat.toolChoice, ToolChoice::Named);
  EXPECT_EQ(*r->maxTokens, 7);
  EXPECT_TRUE(r->grammar); // the named call's parameters
  EXPECT_EQ(echo["instructions"], "be brief");
  EXPECT_EQ(echo["max_output_tokens"], 7);
  // text.format is the chat's response_format.
  r = parseResponsesRequest(
      R"({"input": "x", "text": {"format": {"type": "json_schema", "name": "n",
          "schema": {"type": "object", "properties": {"b": {"type": "integer"},
          "a": {"type": "string"}}, "required": ["b", "a"]}}}})",
      e, echo);
  ASSERT_TRUE(r) << e.message;
  ASSERT_TRUE(r->grammar);
  Matcher matcher(r->grammar);
  EXPECT_TRUE(matcher.feed(R"({"b": 1, "a": "x"})")); // the schema's order
  EXPECT_TRUE(matcher.accepting());
}

TEST(ResponsesApi, BadFieldsAre400sNamingThem) {
  auto bad = [](const std::string &body, const std::string &param) {
    ApiError e;
    EXPECT_FALSE(parse(body, e)) << body;
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, param) << body << ": " << e.message;
  };
  // Wrong types anywhere: a 400, never an exception.
  bad(R"({"input": [{"type": 5, "role": "user", "content": "x"}]})", "input");
  bad(R"({"input": [{"role": 3, "content": "x"}]})", "input");
  bad(R"({"input": [{"role": "user", "content": [{"type": 1}]}]})", "input");
  bad(R"({"input": [{"type": "function_call", "call_id": 1}]})", "input");
  bad(R"({"input": "x", "tools": [{"type": 3}]})", "tools");
  bad(R"({"input": "x", "tools": [{"type": "function", "name": 3}]})", "tools");
  bad(R"({"input": "x", "tool_choice": {"type": 2}})", "tool_choice");
  bad(R"({"input": "x", "text": {"format": {"type": 1}}})", "text");
  bad(R"({"input": "x", "text": {"format": {"type": "json_schema", "name": 1,
      "schema": {"type": "string", "not": {}}}}})",
      "text");
  bad(R"({"input": "x", "background": "yes"})", "background");
  bad(R"({"input": "x", "text": {"format": {"type": "json_object"}},
      "tools": [{"type": "function", "name": "f"}], "tool_choice": "required"})",
      "tool_choice");
  bad(R"({"input": "x", "max_output_tokens": "many"})", "max_output_tokens");
  bad(R"({"input": "x", "instructions": 4})", "instructions");
  bad(R"({"input": 4})", "input");
  bad(R"({"input": "x", "previous_response_id": "resp_1"})",
      "previous_response_id");
  bad(R"({"input": "x", "truncation": "auto"})", "truncation");
  bad("{", "");
}
