//===- ResponsesApi.cpp - OpenAI's Responses API (POST /v1/responses) -----===//

#include "ResponsesApi.h"
#include "RequestFields.h"

#include <cstring>

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace dsserve {
namespace {

using translate::field;
using translate::str;

/// Text of a content given as a string or a list of text parts; false
/// (with `bad` naming the part) for other parts.
bool partsText(const ojson &content, std::string &out, std::string &bad) {
  if (content.is_string()) {
    out = content.get<std::string>();
    return true;
  }
  if (!content.is_array()) {
    bad = "must be a string or a list of text parts";
    return false;
  }
  for (size_t j = 0; j < content.size(); ++j) {
    const ojson &part = content[j];
    std::string type = str(part, "type");
    auto text = part.is_object() ? part.find("text") : part.end();
    if ((type != "input_text" && type != "output_text" && type != "text") ||
        text == part.end() || !text->is_string()) {
      bad = "[" + std::to_string(j) + "]: only text parts are supported" +
            (type.empty() ? "" : ", not '" + type + "'");
      return false;
    }
    out += text->get<std::string>();
  }
  return true;
}

/// `input` (and `instructions`) as chat messages; "" or what is wrong.
std::string inputMessages(const ojson &in, ojson &messages) {
  if (auto ins = in.find("instructions"); ins != in.end() && !ins->is_null()) {
    if (!ins->is_string())
      return "'instructions' must be a string";
    messages.push_back({{"role", "system"}, {"content", *ins}});
  }
  auto input = in.find("input");
  if (input == in.end() || input->is_null())
    return "'input' is required";
  if (input->is_string()) {
    messages.push_back({{"role", "user"}, {"content", *input}});
    return "";
  }
  if (!input->is_array())
    return "'input' must be a string or a list of items";
  for (size_t i = 0; i < input->size(); ++i) {
    const ojson &item = (*input)[i];
    std::string at = "input[" + std::to_string(i) + "]";
    if (!item.is_object())
      return "'" + at + "' must be an object";
    if (item.contains("type") && !item["type"].is_string())
      return "'" + at + ".type' must be a string";
    std::string type =
        str(item, "type", item.contains("role") ? "message" : "");
    if (type == "message") {
      std::string text, bad;
      if (!partsText(field(item, "content"), text, bad))
        return "'" + at + ".content' " + bad;
      messages.push_back({{"role", field(item, "role")}, {"content", text}});
    } else if (type == "function_call") {
      for (const char *k : {"call_id", "name", "arguments"})
        if (!item.contains(k) || !item[k].is_string())
          return "'" + at + "." + k + "' must be a string";
      ojson call = {
          {"id", item["call_id"]},
          {"type", "function"},
          {"function",
           {{"name", item["name"]}, {"arguments", item["arguments"]}}}};
      // Calls in a row are one assistant turn.
      if (!messages.empty() && messages.back()["role"] == "assistant" &&
          messages.back().contains("tool_calls"))
        messages.back()["tool_calls"].push_back(call);
      else
        messages.push_back({{"role", "assistant"},
                            {"content", nullptr},
                            {"tool_calls", ojson::array({call})}});
    } else if (type == "function_call_output") {
      std::string text, bad;
      if (!item.contains("call_id") || !item["call_id"].is_string())
        return "'" + at + ".call_id' must be a string";
      if (!partsText(field(item, "output"), text, bad))
        return "'" + at + ".output' " + bad;
      messages.push_back({{"role", "tool"},
                          {"tool_call_id", item["call_id"]},
                          {"content", text}});
    } else if (type != "reasoning") { // earlier thinking: DeepSeek drops it
      return "'" + at + "': items of type '" + type + "' are not supported";
    }
  }
  return "";
}

/// tools, tool_choice and text.format in their chat forms.
std::string chatTools(const ojson &in, ojson &chat) {
  if (auto tools = in.find("tools"); tools != in.end() && !tools->is_null()) {
    std::string why = translate::chatFunctionTools(
        *tools, [](const std::string &type) { return type == "function"; },
        "parameters", "function tools", chat["tools"]);
    if (!why.empty())
      return why;
  }
  if (auto tc = in.find("tool_choice"); tc != in.end() && !tc->is_null()) {
    if (str(*tc, "type") == "function")
      chat["tool_choice"] = {{"type", "function"},
                             {"function", {{"name", field(*tc, "name")}}}};
    else if (tc->is_string())
      chat["tool_choice"] = *tc;
    else
      return "'tool_choice' must be \"none\", \"auto\", \"required\" or "
             "{\"type\": \"function\", \"name\": ...}";
  }
  if (auto text = in.find("text"); text != in.end() && !text->is_null()) {
    auto format = text->is_object() ? text->find("format") : text->end();
    if (format != text->end() && format->is_object()) {
      std::string type = str(*format, "type");
      if (type == "json_schema")
        chat["response_format"] = {{"type", "json_schema"},
                                   {"json_schema",
                                    {{"name", str(*format, "name")},
                                     {"schema", field(*format, "schema")}}}};
      else
        chat["response_format"] = {{"type", type}};
    }
  }
  return "";
}

} // namespace

std::optional<ParsedRequest>
parseResponsesRequest(const std::string &body, ApiError &error, json &echo) {
  ojson in = ojson::parse(body, nullptr, false);
  if (in.is_discarded() || !in.is_object()) {
    // The chat parser words it (the position of a JSON error).
    return parseRequest(Endpoint::ChatCompletions, body, error);
  }
  auto fail = [&](const std::string &m, const char *param) {
    error = ApiError::invalid(m, param);
    return std::nullopt;
  };
  for (const char *k : {"previous_response_id", "conversation"})
    if (in.contains(k) && !in[k].is_null())
      return fail(std::string("'") + k +
                      "' is not supported: this server keeps no responses; "
                      "send the conversation as 'input'",
                  k);
  if (ojson b = field(in, "background"); !b.is_null() && b != false)
    return fail("'background' is not supported (false is)", "background");
  if (auto t = in.find("truncation");
      t != in.end() && !t->is_null() && *t != "disabled")
    return fail("'truncation' must be \"disabled\"", "truncation");
  if (auto lp = in.find("top_logprobs");
      lp != in.end() && lp->is_number() && lp->get<double>() > 0)
    return fail("'top_logprobs' is not supported on /v1/responses",
                "top_logprobs");
  ojson chat = ojson::object();
  ojson messages = ojson::array();
  std::string why = inputMessages(in, messages);
  if (!why.empty())
    return fail(why, why.find("instructions") != std::string::npos
                         ? "instructions"
                         : "input");
  chat["messages"] = messages;
  why = chatTools(in, chat);
  if (!why.empty())
    return fail(why, why.rfind("'text", 0) == 0     ? "text"
                     : why.rfind("'tool_c", 0) == 0 ? "tool_choice"
                                                    : "tools");
  if (in.contains("max_output_tokens"))
    chat["max_tokens"] = in["max_output_tokens"];
  for (const char *k :
       {"model", "temperature", "top_p", "parallel_tool_calls", "stream",
        "seed", "top_k", "min_p", "repetition_penalty", "presence_penalty",
        "frequency_penalty", "logit_bias"})
    if (in.contains(k))
      chat[k] = in[k];
  auto r = parseRequest(Endpoint::ChatCompletions, chat.dump(), error);
  if (!r) {
    // The chat field at fault, by its name here.
    if (error.param == "messages")
      error.param = "input";
    else if (error.param == "max_tokens")
      error.param = "max_output_tokens";
    else if (error.param == "response_format")
      error.param = "text";
    return std::nullopt;
  }
  echo = json::object();
  for (const char *k :
       {"instructions", "tools", "tool_choice", "text", "temperature", "top_p",
        "max_output_tokens", "parallel_tool_calls", "metadata"})
    echo[k] = in.contains(k) ? json::parse(in[k].dump()) : json(nullptr);
  if (echo["tools"].is_null())
    echo["tools"] = json::array();
  if (echo["tool_choice"].is_null())
    echo["tool_choice"] = "auto";
  if (echo["text"].is_null())
    echo["text"] = {{"format", {{"type", "text"}}}};
  if (echo["parallel_tool_calls"].is_null())
    echo["parallel_tool_calls"] = true;
  if (echo["metadata"].is_null())
    echo["metadata"] = json::object();
  return r;
}

//===----------------------------------------------------------------------===//
// ResponsesWriter
//===----------------------------------------------------------------------===//

ResponsesWriter::ResponsesWriter(ChoiceWriter &choice, std::string id,
                                 std::string model, int64_t created, json echo,
                                 int64_t promptTokens)
    : choice(choice), id(std::move(id)), model(std::move(model)),
      created(created), echo(std::move(echo)), promptTokens(promptTokens) {}

namespace {

json messageItem(const std::string &id, const std::string &text,
                 const char *status) {
  return {{"id", id},
          {"type", "message"},
          {"status", status},
          {"role", "assistant"},
          {"content", json::array({{{"type", "output_text"},
                                    {"text", text},
                                    {"annotations", json::array()},
                                    {"logprobs", json::array()}}})}};
}

json reasoningItem(const std::string &id, const std::string &text) {
  return {
      {"id", id},
      {"type", "reasoning"},
      {"summary", json::array()},
      {"content", json::array({{{"type", "reasoning_text"}, {"text", text}}})}};
}

json callItem(const ChoiceWriter::ToolCall &c, const char *status) {
  return {{"id", "fc_" + c.id.substr(c.id.rfind('-') + 1)},
          {"type", "function_call"},
          {"status", status},
          {"call_id", c.id},
          {"name", c.name},
          {"arguments", c.arguments}};
}

/// The response's status and why it is incomplete.
const char *statusOf(const ChoiceWriter &c, json &incomplete) {
  const char *f = c.finishReason() ? c.finishReason() : "abort";
  incomplete = nullptr;
  if (!strcmp(f, "error"))
    return "failed";
  if (!strcmp(f, "length")) {
    incomplete = {{"reason", "max_output_tokens"}};
    return "incomplete";
  }
  if (!strcmp(f, "abort")) {
    incomplete = {{"reason", "cancelled"}};
    return "incomplete";
  }
  return "completed";
}

} // namespace

json ResponsesWriter::envelope(const char *status) const {
  json incomplete = nullptr;
  if (strcmp(status, "in_progress") != 0)
    statusOf(choice, incomplete);
  json r = {{"id", id},
            {"object", "response"},
            {"created_at", created},
            {"status", status},
            {"error", nullptr},
            {"incomplete_details", incomplete},
            {"model", model},
            {"output", json::array()},
            {"previous_response_id", nullptr},
            {"reasoning", {{"effort", nullptr}, {"summary", nullptr}}},
            {"store", false},
            {"truncation", "disabled"},
            {"user", nullptr},
            {"usage", nullptr}};
  for (auto it = echo.begin(); it != echo.end(); ++it)
    r[it.key()] = it.value();
  if (strcmp(status, "in_progress") != 0) {
    int64_t out = choice.completionTokens();
    r["usage"] = {{"input_tokens", promptTokens},
                  {"input_tokens_details",
                   {{"cached_tokens", choice.cachedPromptTokens()}}},
                  {"output_tokens", out},
                  {"output_tokens_details",
                   {{"reasoning_tokens", choice.reasoningTokens()}}},
                  {"total_tokens", promptTokens + out}};
  }
  return r;
}

json ResponsesWriter::body() const {
  json incomplete;
  json r = envelope(statusOf(choice, incomplete));
  json output = json::array();
  if (!choice.reasoningContent().empty())
    output.push_back(
        reasoningItem("rs_" + randomHex(), choice.reasoningContent()));
  if (!choice.contentText().empty() || choice.toolCalls().empty())
    output.push_back(
        messageItem("msg_" + randomHex(), choice.contentText(), "completed"));
  for (const ChoiceWriter::ToolCall &c : choice.toolCalls())
    output.push_back(callItem(c, "completed"));
  r["output"] = std::move(output);
  return r;
}

std::string ResponsesWriter::event(const char *type, json fields) {
  fields["type"] = type;
  fields["sequence_number"] = sequence++;
  return std::string("event: ") + type + "\n" + sseEvent(fields);
}

std::string ResponsesWriter::openItem(Item kind, const ToolCallDelta *call) {
  std::string out;
  json index = int64_t(items.size());
  open = kind;
  openText.clear();
  if (kind == Item::Reasoning) {
    reasoningId = "rs_" + randomHex();
    json item = reasoningItem(reasoningId, "");
    item["content"] = json::array();
    out += event("response.output_item.added",
                 {{"output_index", index}, {"item", item}});
    out += event("response.content_part.added",
                 {{"item_id", reasoningId},
                  {"output_index", index},
                  {"content_index", 0},
                  {"part", {{"type", "reasoning_text"}, {"text", ""}}}});
  } else if (kind == Item::Message) {
    messageId = "msg_" + randomHex();
    json item = messageItem(messageId, "", "in_progress");
    item["content"] = json::array();
    out += event("response.output_item.added",
                 {{"output_index", index}, {"item", item}});
    out +=
        event("response.content_part.added", {{"item_id", messageId},
                                              {"output_index", index},
                                              {"content_index", 0},
                                              {"part",
                                               {{"type", "output_text"},
                                                {"text", ""},
                                                {"annotations", json::array()},
                                                {"logprobs", json::array()}}}});
  } else {
    openCall = call->index;
    ChoiceWriter::ToolCall c = choice.toolCalls()[size_t(call->index)];
    c.arguments.clear();
    out +=
        event("response.output_item.added",
              {{"output_index", index}, {"item", callItem(c, "in_progress")}});
  }
  return out;
}

std::string ResponsesWriter::closeItem() {
  std::string out;
  json index = int64_t(items.size());
  if (open == Item::Reasoning) {
    json part = {{"type", "reasoning_text"}, {"text", openText}};
    out += event("response.reasoning_text.done", {{"item_id", reasoningId},
                                                  {"output_index", index},
                                                  {"content_index", 0},
                                                  {"text", openText}});
    out += event("response.content_part.done", {{"item_id", reasoningId},
                                                {"output_index", index},
                                                {"content_index", 0},
                                                {"part", part}});
    items.push_back(reasoningItem(reasoningId, openText));
  } else if (open == Item::Message) {
    json item = messageItem(messageId, openText, "completed");
    out += event("response.output_text.done", {{"item_id", messageId},
                                               {"output_index", index},
                                               {"content_index", 0},
                                               {"text", openText},
                                               {"logprobs", json::array()}});
    out += event("response.content_part.done", {{"item_id", messageId},
                                                {"output_index", index},
                                                {"content_index", 0},
                                                {"part", item["content"][0]}});
    items.push_back(item);
  } else if (open == Item::Call) {
    json item = callItem(choice.toolCalls()[size_t(openCall)], "completed");
    out += event("response.function_call_arguments.done",
                 {{"item_id", item["id"]},
                  {"output_index", index},
                  {"arguments", item["arguments"]}});
    items.push_back(item);
  } else {
    return out;
  }
  out += event("response.output_item.done",
               {{"output_index", index}, {"item", items.back()}});
  open = Item::None;
  openText.clear();
  return out;
}

std::string ResponsesWriter::textDelta(Item kind, const std::string &delta) {
  std::string out;
  if (delta.empty())
    return out;
  if (open != kind) {
    out += closeItem();
    out += openItem(kind);
  }
  json fields = {{"item_id", kind == Item::Reasoning ? reasoningId : messageId},
                 {"output_index", int64_t(items.size())},
                 {"content_index", 0},
                 {"delta", delta}};
  if (kind == Item::Message)
    fields["logprobs"] = json::array();
  out += event(kind == Item::Reasoning ? "response.reasoning_text.delta"
                                       : "response.output_text.delta",
               std::move(fields));
  openText += delta;
  return out;
}

std::string ResponsesWriter::errorEvent(const std::string &message) {
  json e =
      json::parse(ApiError{500, message, "internal_error", "", ""}.toJson());
  e = e["error"];
  e["type"] = "error";
  return "event: error\n" + sseEvent(e);
}

std::string ResponsesWriter::takeStreamEvents() {
  std::string out;
  if (endSent)
    return out;
  if (!startSent) {
    startSent = true;
    out += event("response.created", {{"response", envelope("in_progress")}});
    out +=
        event("response.in_progress", {{"response", envelope("in_progress")}});
  }
  ChoiceWriter::Pieces p = choice.takePieces();
  out += textDelta(Item::Reasoning, p.reasoning);
  out += textDelta(Item::Message, p.content);
  for (const ToolCallDelta &d : p.calls) {
    if (d.opens) {
      out += closeItem();
      out += openItem(Item::Call, &d);
    }
    if (!d.arguments.empty())
      out += event(
          "response.function_call_arguments.delta",
          {{"item_id", callItem(choice.toolCalls()[size_t(d.index)], "")["id"]},
           {"output_index", int64_t(items.size())},
           {"delta", d.arguments}});
  }
  if (choice.finished()) {
    // An answer with nothing in it still has its (empty) message.
    if (items.empty() && open == Item::None)
      out += openItem(Item::Message);
    out += closeItem();
    endSent = true;
    json incomplete;
    const char *status = statusOf(choice, incomplete);
    json r = envelope(status);
    r["output"] = items;
    out += event(!strcmp(status, "completed") ? "response.completed"
                 : !strcmp(status, "failed")  ? "response.failed"
                                              : "response.incomplete",
                 {{"response", r}});
  }
  return out;
}

} // namespace dsserve
