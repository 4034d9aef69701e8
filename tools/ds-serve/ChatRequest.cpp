//===- ChatRequest.cpp - a chat request's messages, tools and template input //

#include "ChatRequest.h"

#include <set>

using nlohmann::json;

namespace dsserve {
namespace {

/// A function name as tools and tool calls give it: what the model writes
/// between its call markers, so no whitespace or control characters.
bool validFunctionName(const std::string &name) {
  if (name.empty() || name.size() > 256)
    return false;
  for (unsigned char ch : name)
    if (ch <= ' ' || ch == 0x7f)
      return false;
  return true;
}

/// An assistant message's tool_calls (its content may then be null, which
/// DeepSeek's templates test), a tool message's tool_call_id and name.
bool toolFields(Fields &f, const json &msg, const std::string &where,
                json &out) {
  const std::string role = out["role"];
  if (role == "tool") {
    for (const char *key : {"tool_call_id", "name"}) {
      auto v = msg.find(key);
      if (v == msg.end() || v->is_null())
        continue;
      if (!v->is_string())
        return f.fail("'" + where + "." + key + "' must be a string",
                      "messages");
      out[key] = *v;
    }
    return true;
  }
  auto calls = msg.find("tool_calls");
  if (role != "assistant" || calls == msg.end() || calls->is_null())
    return true;
  if (!calls->is_array())
    return f.fail("'" + where + ".tool_calls' must be an array", "messages");
  json list = json::array();
  for (size_t i = 0; i < calls->size(); ++i) {
    const json &call = (*calls)[i];
    std::string at = where + ".tool_calls[" + std::to_string(i) + "]";
    auto fn = call.is_object() ? call.find("function") : call.end();
    if (fn == call.end() || !fn->is_object())
      return f.fail("'" + at + "' must be an object with a 'function'",
                    "messages");
    auto type = call.find("type");
    if (type != call.end() && !type->is_null() && *type != "function")
      return f.fail("'" + at + ".type' must be \"function\"", "messages");
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string() ||
        !validFunctionName(name->get<std::string>()))
      return f.fail("'" + at + ".function.name' must be a function name",
                    "messages");
    // OpenAI sends arguments as JSON text; an object is taken as its text.
    auto args = fn->find("arguments");
    std::string argText;
    if (args == fn->end() || args->is_null())
      argText = "{}";
    else if (args->is_string())
      argText = args->get<std::string>();
    else if (args->is_object())
      argText = args->dump();
    else
      return f.fail("'" + at + ".function.arguments' must be a string",
                    "messages");
    json one = {{"type", "function"},
                {"function", {{"name", *name}, {"arguments", argText}}}};
    if (auto id = call.find("id"); id != call.end() && id->is_string())
      one["id"] = *id;
    list.push_back(std::move(one));
  }
  out["tool_calls"] = std::move(list);
  // With calls and no text, content stays null: DeepSeek's templates write
  // the calls only for a message whose content is none.
  auto content = msg.find("content");
  if (content == msg.end() || content->is_null())
    out["content"] = nullptr;
  return true;
}

void parseMessages(Fields &f, ChatInput &c) {
  const json *m = f.get("messages");
  if (!m) {
    f.fail("'messages' is required", "messages");
    return;
  }
  if (!m->is_array() || m->empty()) {
    f.fail("'messages' must be a non-empty array", "messages");
    return;
  }
  json out = json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const json &msg = (*m)[i];
    std::string where = "messages[" + std::to_string(i) + "]";
    if (!msg.is_object()) {
      f.fail("'" + where + "' must be an object", "messages");
      return;
    }
    auto role = msg.find("role");
    if (role == msg.end() || !role->is_string()) {
      f.fail("'" + where + ".role' must be a string", "messages");
      return;
    }
    std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "developer" && rs != "user" &&
        rs != "assistant" && rs != "tool") {
      f.fail("'" + where +
                 ".role' must be system, developer, user, "
                 "assistant or tool, got '" +
                 rs + "'",
             "messages");
      return;
    }
    std::string text;
    auto content = msg.find("content");
    if (content == msg.end() || content->is_null()) {
      if (rs != "assistant") {
        f.fail("'" + where + ".content' is required", "messages");
        return;
      }
    } else if (content->is_string()) {
      text = content->get<std::string>();
    } else if (content->is_array()) {
      // Content parts: text only (no images or audio in this model).
      for (const json &part : *content) {
        auto type = part.is_object() ? part.find("type") : part.end();
        auto t = part.is_object() ? part.find("text") : part.end();
        if (type == part.end() || *type != "text" || t == part.end() ||
            !t->is_string()) {
          f.fail("'" + where +
                     ".content' parts must be "
                     "{\"type\": \"text\", \"text\": string}",
                 "messages");
          return;
        }
        text += t->get<std::string>();
      }
    } else {
      f.fail("'" + where +
                 ".content' must be a string or an array of text "
                 "parts",
             "messages");
      return;
    }
    json one = {{"role", rs}, {"content", text}};
    if (!toolFields(f, msg, where, one))
      return;
    // DeepSeek's prefix completion: the last assistant message is the
    // answer's beginning (V3.1's template reads the flag too).
    if (auto prefix = msg.find("prefix");
        prefix != msg.end() && prefix->is_boolean() && prefix->get<bool>()) {
      if (i + 1 != m->size() || rs != "assistant") {
        f.fail("'" + where +
                   ".prefix' is only allowed on the last message, "
                   "an assistant's",
               "messages");
        return;
      }
      one["prefix"] = true;
      c.continueFinal = true;
    }
    c.finalContent = text;
    out.push_back(std::move(one));
  }
  c.messagesJson = out.dump(-1, ' ', false, json::error_handler_t::replace);
}

/// tools: OpenAI's function tools, as the template will see them.
json parseTools(Fields &f, std::set<std::string> &names) {
  json tools = json::array();
  const json *t = f.get("tools");
  if (!t)
    return tools;
  if (!t->is_array()) {
    f.wrongType("tools", "an array", *t);
    return tools;
  }
  for (size_t i = 0; i < t->size(); ++i) {
    json tool = (*t)[i];
    std::string at = "tools[" + std::to_string(i) + "]";
    if (!tool.is_object()) {
      f.fail("'" + at + "' must be an object", "tools");
      return tools;
    }
    auto type = tool.find("type");
    if (type == tool.end() || type->is_null())
      tool["type"] = "function";
    else if (*type != "function") {
      f.fail("'" + at + ".type' must be \"function\"", "tools");
      return tools;
    }
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) {
      f.fail("'" + at + ".function' must be an object", "tools");
      return tools;
    }
    auto name = fn->find("name");
    if (name == fn->end() || !name->is_string() ||
        !validFunctionName(name->get<std::string>())) {
      f.fail("'" + at +
                 ".function.name' must be a non-empty name without "
                 "spaces",
             "tools");
      return tools;
    }
    auto desc = fn->find("description");
    auto params = fn->find("parameters");
    if (desc != fn->end() && !desc->is_null() && !desc->is_string()) {
      f.fail("'" + at + ".function.description' must be a string", "tools");
      return tools;
    }
    if (params != fn->end() && !params->is_null() && !params->is_object()) {
      f.fail("'" + at +
                 ".function.parameters' must be an object (a JSON "
                 "Schema)",
             "tools");
      return tools;
    }
    if (!names.insert(name->get<std::string>()).second) {
      f.fail("'tools' names function '" + name->get<std::string>() + "' twice",
             "tools");
      return tools;
    }
    tools.push_back(std::move(tool));
  }
  return tools;
}

void parseToolChoice(Fields &f, const std::set<std::string> &names,
                     ChatInput &c) {
  const json *tc = f.get("tool_choice");
  c.toolChoice = names.empty() ? ToolChoice::None : ToolChoice::Auto;
  if (!tc)
    return;
  const char *shapes = "'tool_choice' must be \"none\", \"auto\", "
                       "\"required\" or {\"type\": \"function\", "
                       "\"function\": {\"name\": ...}}";
  if (tc->is_string()) {
    std::string s = tc->get<std::string>();
    if (s == "none")
      c.toolChoice = ToolChoice::None;
    else if (s == "auto")
      c.toolChoice = names.empty() ? ToolChoice::None : ToolChoice::Auto;
    else if (s == "required")
      c.toolChoice = ToolChoice::Required;
    else
      f.fail(shapes, "tool_choice");
  } else if (tc->is_object()) {
    auto fn = tc->find("function");
    const json *name = nullptr;
    if (fn != tc->end() && fn->is_object())
      if (auto n = fn->find("name"); n != fn->end() && n->is_string())
        name = &*n;
    if (tc->value("type", json("function")) != "function" || !name) {
      f.fail(shapes, "tool_choice");
      return;
    }
    c.toolChoice = ToolChoice::Named;
    c.toolName = name->get<std::string>();
    if (!names.count(c.toolName))
      f.fail("'tool_choice' names function '" + c.toolName +
                 "', which 'tools' does not define",
             "tool_choice");
  } else {
    f.wrongType("tool_choice", "a string or an object", *tc);
  }
  if (names.empty() && (c.toolChoice == ToolChoice::Required ||
                        c.toolChoice == ToolChoice::Named))
    f.fail("'tool_choice' forces a tool call but 'tools' is empty",
           "tool_choice");
}

/// vLLM's add_generation_prompt and continue_final_message (DeepSeek's
/// prefix flag asks for the latter).
void parseContinuation(Fields &f, ChatInput &c) {
  bool explicitPrompt = f.get("add_generation_prompt") != nullptr;
  f.boolean("add_generation_prompt", c.addGenerationPrompt);
  bool cont = false;
  f.boolean("continue_final_message", cont);
  c.continueFinal = c.continueFinal || cont;
  if (!c.continueFinal)
    return;
  // Continuing a message is answering without a new one's opening.
  if (explicitPrompt && c.addGenerationPrompt)
    f.fail("'continue_final_message' (or a prefix message) and "
           "'add_generation_prompt' true contradict each other",
           "continue_final_message");
  c.addGenerationPrompt = false;
  json last = json::parse(c.messagesJson, nullptr, false);
  if (!last.is_array() || last.empty() || last.back()["role"] != "assistant" ||
      c.finalContent.empty())
    f.fail("'continue_final_message' needs a last message from the "
           "assistant with text to continue",
           "continue_final_message");
  if (c.toolChoice == ToolChoice::Required || c.toolChoice == ToolChoice::Named)
    f.fail("'continue_final_message' cannot go with a forced tool call",
           "continue_final_message");
}

} // namespace

void parseChatInput(Fields &f, ChatInput &c) {
  parseMessages(f, c);
  for (const char *legacy : {"functions", "function_call"})
    if (f.get(legacy))
      f.fail(std::string("'") + legacy +
                 "' (OpenAI's deprecated form) is not supported: use 'tools' "
                 "and 'tool_choice'",
             legacy);
  std::set<std::string> names;
  json context = json::object();
  json tools = parseTools(f, names);
  if (!tools.empty())
    context["tools"] = std::move(tools);
  parseToolChoice(f, names, c);
  f.boolean("parallel_tool_calls", c.parallelToolCalls);
  parseContinuation(f, c);
  // vLLM's chat_template_kwargs: more variables for the template (V3.1's
  // "thinking", say); the conversation itself is not one of them.
  if (const json *kw = f.get("chat_template_kwargs")) {
    if (!kw->is_object()) {
      f.wrongType("chat_template_kwargs", "an object", *kw);
    } else {
      for (auto it = kw->begin(); it != kw->end(); ++it) {
        if (it.key() == "messages" || it.key() == "add_generation_prompt" ||
            it.key() == "continue_final_message") {
          f.fail("'chat_template_kwargs' may not set '" + it.key() + "'",
                 "chat_template_kwargs");
          break;
        }
        context[it.key()] = it.value();
      }
    }
  }
  if (!context.empty())
    c.contextJson =
        context.dump(-1, ' ', false, json::error_handler_t::replace);
}

} // namespace dsserve
