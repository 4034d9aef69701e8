//===- MessagesApi.cpp - Anthropic's Messages API (POST /v1/messages) -----===//

#include "MessagesApi.h"
#include "RequestFields.h"

#include <cstring>

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace dsserve {
namespace {

using translate::str;

/// A content given as a string or a list of text blocks (a system prompt,
/// a tool result's content); false with `bad` for other blocks.
bool blocksText(const ojson &content, std::string &out, std::string &bad) {
  if (content.is_string()) {
    out = content.get<std::string>();
    return true;
  }
  if (!content.is_array()) {
    bad = "must be a string or a list of text blocks";
    return false;
  }
  for (size_t j = 0; j < content.size(); ++j) {
    auto text =
        content[j].is_object() ? content[j].find("text") : content[j].end();
    if (str(content[j], "type") != "text" || text == content[j].end() ||
        !text->is_string()) {
      bad = "[" + std::to_string(j) + "]: only text blocks are supported here";
      return false;
    }
    if (!out.empty())
      out += "\n";
    out += text->get<std::string>();
  }
  return true;
}

/// One message's content blocks as chat messages (tool results first: they
/// answer the calls before them); "" or what is wrong.
std::string messageBlocks(const ojson &m, const std::string &at,
                          ojson &messages) {
  std::string role = str(m, "role");
  if (role != "user" && role != "assistant")
    return "'" + at + ".role' must be \"user\" or \"assistant\"";
  auto content = m.find("content");
  if (content == m.end() || content->is_null())
    return "'" + at + ".content' is required";
  if (content->is_string()) {
    messages.push_back({{"role", role}, {"content", *content}});
    return "";
  }
  if (!content->is_array())
    return "'" + at + ".content' must be a string or a list of blocks";
  std::string text;
  ojson calls = ojson::array();
  for (size_t j = 0; j < content->size(); ++j) {
    const ojson &b = (*content)[j];
    std::string where = at + ".content[" + std::to_string(j) + "]";
    std::string type = str(b, "type");
    if (type == "text" && b.contains("text") && b["text"].is_string()) {
      text += b["text"].get<std::string>();
    } else if (type == "tool_use" && role == "assistant") {
      if (str(b, "id").empty() || str(b, "name").empty())
        return "'" + where + "': a tool_use block needs an id and a name";
      ojson input = b.contains("input") ? b["input"] : ojson::object();
      calls.push_back(
          {{"id", b["id"]},
           {"type", "function"},
           {"function", {{"name", b["name"]}, {"arguments", input.dump()}}}});
    } else if (type == "tool_result" && role == "user") {
      std::string out, bad;
      if (str(b, "tool_use_id").empty())
        return "'" + where + ".tool_use_id' must be a string";
      if (b.contains("content") && !blocksText(b["content"], out, bad))
        return "'" + where + ".content' " + bad;
      messages.push_back({{"role", "tool"},
                          {"tool_call_id", b["tool_use_id"]},
                          {"content", out}});
    } else if ((type == "thinking" || type == "redacted_thinking") &&
               role == "assistant") {
      // Earlier thinking: DeepSeek's templates drop it.
    } else {
      return "'" + where + "': " +
             (type.empty()
                  ? std::string("a block needs a type")
                  : "blocks of type '" + type + "' are not supported in " +
                        role + " messages");
    }
  }
  if (!calls.empty())
    messages.push_back({{"role", "assistant"},
                        {"content", text.empty() ? ojson() : ojson(text)},
                        {"tool_calls", calls}});
  else if (!text.empty() || role == "assistant" ||
           (*content).empty()) // an empty user turn stays a turn
    messages.push_back({{"role", role}, {"content", text}});
  return "";
}

/// tools and tool_choice in their chat forms; "" or what is wrong.
std::string chatTools(const ojson &in, ojson &chat) {
  if (auto tools = in.find("tools"); tools != in.end() && !tools->is_null()) {
    std::string why = translate::chatFunctionTools(
        *tools,
        [](const std::string &type) {
          return type.empty() || type == "custom";
        },
        "input_schema", "custom tools (name, input_schema)", chat["tools"]);
    if (!why.empty())
      return why;
  }
  auto tc = in.find("tool_choice");
  if (tc == in.end() || tc->is_null())
    return "";
  std::string type = str(*tc, "type");
  if (type == "auto")
    chat["tool_choice"] = "auto";
  else if (type == "any")
    chat["tool_choice"] = "required";
  else if (type == "none")
    chat["tool_choice"] = "none";
  else if (type == "tool" && !str(*tc, "name").empty())
    chat["tool_choice"] = {{"type", "function"},
                           {"function", {{"name", (*tc)["name"]}}}};
  else
    return "'tool_choice' must be {\"type\": \"auto\" | \"any\" | \"none\"} "
           "or {\"type\": \"tool\", \"name\": ...}";
  if (auto p = tc->find("disable_parallel_tool_use");
      p != tc->end() && p->is_boolean())
    chat["parallel_tool_calls"] = !p->get<bool>();
  return "";
}

/// The Messages body as a chat body; "" or what is wrong (and `param`).
std::string chatBody(const ojson &in, bool countOnly, ojson &chat,
                     std::string &param) {
  ojson messages = ojson::array();
  if (auto sys = in.find("system"); sys != in.end() && !sys->is_null()) {
    std::string text, bad;
    param = "system";
    if (!blocksText(*sys, text, bad))
      return "'system' " + bad;
    messages.push_back({{"role", "system"}, {"content", text}});
  }
  param = "messages";
  auto ms = in.find("messages");
  if (ms == in.end() || !ms->is_array() || ms->empty())
    return "'messages' must be a non-empty list";
  for (size_t i = 0; i < ms->size(); ++i) {
    std::string at = "messages[" + std::to_string(i) + "]";
    if (!(*ms)[i].is_object())
      return "'" + at + "' must be an object";
    std::string why = messageBlocks((*ms)[i], at, messages);
    if (!why.empty())
      return why;
  }
  // A final assistant message is the start of the answer (Anthropic's
  // prefill): the model continues it; an empty one asks for the answer.
  if (str(ms->back(), "role") == "assistant" &&
      !messages.back().contains("tool_calls")) {
    if (messages.back()["content"] == "") {
      messages.erase(messages.size() - 1);
    } else {
      chat["continue_final_message"] = true;
      chat["add_generation_prompt"] = false;
    }
  }
  chat["messages"] = messages;
  param = "tools";
  std::string why = chatTools(in, chat);
  if (!why.empty()) {
    if (why.rfind("'tool_choice", 0) == 0)
      param = "tool_choice";
    return why;
  }
  if (auto t = in.find("thinking"); t != in.end() && !t->is_null()) {
    std::string type = str(*t, "type");
    param = "thinking";
    if (type != "enabled" && type != "disabled")
      return "'thinking' must be {\"type\": \"enabled\" | \"disabled\"}";
    // V3.1's template switches on it; the budget is not enforced.
    chat["chat_template_kwargs"] = {{"thinking", type == "enabled"}};
  }
  param = "max_tokens";
  if (in.contains("max_tokens"))
    chat["max_tokens"] = in["max_tokens"];
  else if (!countOnly)
    return "'max_tokens' is required";
  if (auto st = in.find("stop_sequences"); st != in.end() && !st->is_null()) {
    param = "stop_sequences";
    if (!st->is_array())
      return "'stop_sequences' must be a list of strings";
    chat["stop"] = *st;
  }
  for (const char *k : {"temperature", "top_p", "top_k", "stream"})
    if (in.contains(k) && !countOnly)
      chat[k] = in[k];
  if (in.contains("model"))
    chat["model"] = in["model"];
  param.clear();
  return "";
}

/// Anthropic's stop reason for a finished choice (null while running).
json stopReason(const ChoiceWriter &c) {
  const char *f = c.finishReason();
  if (!f)
    return nullptr;
  if (!c.toolCalls().empty())
    return "tool_use";
  if (c.matchedStop())
    return "stop_sequence";
  if (!strcmp(f, "length"))
    return "max_tokens";
  if (!strcmp(f, "stop"))
    return "end_turn";
  return nullptr; // aborted or failed
}

/// Tool-use ids in Anthropic's form (the chat writer's own suffix).
std::string toolUseId(const ChoiceWriter::ToolCall &c) {
  return "toolu_" + c.id.substr(c.id.rfind('-') + 1);
}

json toolUseInput(const std::string &arguments) {
  // The arguments as the object they should be; text the model left
  // unfinished or malformed stays the text it is.
  json input = json::parse(arguments, nullptr, false);
  return input.is_discarded() ? json(arguments) : input;
}

} // namespace

std::optional<ParsedRequest>
parseMessagesRequest(const std::string &body, ApiError &error, bool countOnly) {
  ojson in = ojson::parse(body, nullptr, false);
  if (in.is_discarded() || !in.is_object())
    return parseRequest(Endpoint::ChatCompletions, body, error);
  ojson chat = ojson::object();
  std::string param;
  std::string why = chatBody(in, countOnly, chat, param);
  if (!why.empty()) {
    error = ApiError::invalid(why, param);
    return std::nullopt;
  }
  auto r = parseRequest(Endpoint::ChatCompletions, chat.dump(), error);
  if (!r) {
    // The field at fault, by its name here.
    if (error.param == "stop")
      error.param = "stop_sequences";
    else if (error.param == "chat_template_kwargs")
      error.param = "thinking";
    return std::nullopt;
  }
  return r;
}

std::string anthropicError(int status, const std::string &openAiBody) {
  json in = json::parse(openAiBody, nullptr, false);
  std::string message = in.is_object() && in.contains("error") &&
                                in["error"].is_object() &&
                                in["error"].contains("message") &&
                                in["error"]["message"].is_string()
                            ? in["error"]["message"].get<std::string>()
                            : openAiBody;
  const char *type = status == 400   ? "invalid_request_error"
                     : status == 401 ? "authentication_error"
                     : status == 403 ? "permission_error"
                     : status == 404 ? "not_found_error"
                     : status == 413 ? "request_too_large"
                     : status == 429 ? "rate_limit_error"
                     : status == 503 ? "overloaded_error"
                                     : "api_error";
  return dumpJson(
      {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}});
}

//===----------------------------------------------------------------------===//
// MessagesWriter
//===----------------------------------------------------------------------===//

MessagesWriter::MessagesWriter(ChoiceWriter &choice, std::string id,
                               std::string model, int64_t promptTokens)
    : choice(choice), id(std::move(id)), model(std::move(model)),
      promptTokens(promptTokens) {}

json MessagesWriter::usage() const {
  // Anthropic counts cache reads apart from the input tokens.
  int64_t cached = choice.cachedPromptTokens();
  return {{"input_tokens", promptTokens - cached},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", cached},
          {"output_tokens", choice.completionTokens()}};
}

json MessagesWriter::body() const {
  json content = json::array();
  if (!choice.reasoningContent().empty())
    content.push_back({{"type", "thinking"},
                       {"thinking", choice.reasoningContent()},
                       {"signature", ""}});
  if (!choice.contentText().empty())
    content.push_back({{"type", "text"}, {"text", choice.contentText()}});
  for (const ChoiceWriter::ToolCall &c : choice.toolCalls())
    content.push_back({{"type", "tool_use"},
                       {"id", toolUseId(c)},
                       {"name", c.name},
                       {"input", toolUseInput(c.arguments)}});
  const std::string *stop = choice.matchedStop();
  return {{"id", id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", model},
          {"content", content},
          {"stop_reason", stopReason(choice)},
          {"stop_sequence", stop ? json(*stop) : json(nullptr)},
          {"usage", usage()}};
}

std::string MessagesWriter::event(const char *type, json fields) const {
  fields["type"] = type;
  return std::string("event: ") + type + "\n" + sseEvent(fields);
}

std::string MessagesWriter::openBlock(Block kind, const ToolCallDelta *call) {
  json block;
  if (kind == Block::Thinking) {
    block = {{"type", "thinking"}, {"thinking", ""}, {"signature", ""}};
  } else if (kind == Block::Text) {
    block = {{"type", "text"}, {"text", ""}};
  } else {
    const ChoiceWriter::ToolCall &c = choice.toolCalls()[size_t(call->index)];
    block = {{"type", "tool_use"},
             {"id", toolUseId(c)},
             {"name", c.name},
             {"input", json::object()}};
  }
  open = kind;
  return event("content_block_start",
               {{"index", blocks++}, {"content_block", block}});
}

std::string MessagesWriter::closeBlock() {
  if (open == Block::None)
    return "";
  open = Block::None;
  return event("content_block_stop", {{"index", blocks - 1}});
}

std::string MessagesWriter::textDelta(Block kind, const std::string &delta) {
  if (delta.empty())
    return "";
  std::string out;
  if (open != kind) {
    out += closeBlock();
    out += openBlock(kind);
  }
  json d = kind == Block::Thinking
               ? json{{"type", "thinking_delta"}, {"thinking", delta}}
               : json{{"type", "text_delta"}, {"text", delta}};
  return out +
         event("content_block_delta", {{"index", blocks - 1}, {"delta", d}});
}

std::string MessagesWriter::takeStreamEvents() {
  std::string out;
  if (endSent)
    return out;
  if (!startSent) {
    startSent = true;
    out +=
        event("message_start",
              {{"message",
                {{"id", id},
                 {"type", "message"},
                 {"role", "assistant"},
                 {"model", model},
                 {"content", json::array()},
                 {"stop_reason", nullptr},
                 {"stop_sequence", nullptr},
                 {"usage",
                  {{"input_tokens", promptTokens}, {"output_tokens", 0}}}}}});
  }
  ChoiceWriter::Pieces p = choice.takePieces();
  out += textDelta(Block::Thinking, p.reasoning);
  out += textDelta(Block::Text, p.content);
  for (const ToolCallDelta &d : p.calls) {
    if (d.opens) {
      out += closeBlock();
      out += openBlock(Block::ToolUse, &d);
    }
    if (!d.arguments.empty())
      out += event("content_block_delta", {{"index", blocks - 1},
                                           {"delta",
                                            {{"type", "input_json_delta"},
                                             {"partial_json", d.arguments}}}});
  }
  if (choice.finished()) {
    out += closeBlock();
    endSent = true;
    const std::string *stop = choice.matchedStop();
    out += event("message_delta",
                 {{"delta",
                   {{"stop_reason", stopReason(choice)},
                    {"stop_sequence", stop ? json(*stop) : json(nullptr)}}},
                  {"usage", usage()}});
    out += event("message_stop", json::object());
  }
  return out;
}

std::string MessagesWriter::errorEvent(const std::string &message) {
  endSent = true;
  return "event: error\n" +
         sseEvent(json::parse(anthropicError(
             500, ApiError{500, message, "internal_error", "", ""}.toJson())));
}

} // namespace dsserve
