//===- ChatTemplate.cpp - Hugging Face chat templates ---------------------===//
#include "text/ChatTemplate.h"

#include "api/Error.h"
#include "dsrt/dsrt_chat.h"
#include "support/OneLine.h"
#include "text/jinja/Interpreter.h"
#include "text/jinja/Lexer.h"
#include "text/jinja/Parser.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

using namespace dsrt::text;
using namespace dsrt::text::jinja;
using Json = nlohmann::ordered_json; // key order matters to tojson and items()

namespace {

constexpr int kMaxJsonDepth = 256;

Value fromJson(const Json &j, int depth, const std::string &path) {
  if (depth > kMaxJsonDepth)
    throw TemplateError(0, path + ": nested more than " +
                               std::to_string(kMaxJsonDepth) + " levels");
  switch (j.type()) {
  case Json::value_t::null:
    return Value::none();
  case Json::value_t::boolean:
    return Value::boolean(j.get<bool>());
  case Json::value_t::number_integer:
    return Value::integer(j.get<int64_t>());
  case Json::value_t::number_unsigned: {
    uint64_t u = j.get<uint64_t>();
    return u <= static_cast<uint64_t>(INT64_MAX)
               ? Value::integer(static_cast<int64_t>(u))
               : Value::number(static_cast<double>(u));
  }
  case Json::value_t::number_float:
    return Value::number(j.get<double>());
  case Json::value_t::string:
    return Value::string(j.get<std::string>());
  case Json::value_t::array: {
    List items;
    items.reserve(j.size());
    for (size_t i = 0; i < j.size(); ++i)
      items.push_back(
          fromJson(j[i], depth + 1, path + "[" + std::to_string(i) + "]"));
    return Value::list(std::move(items));
  }
  case Json::value_t::object: {
    auto d = std::make_shared<Dict>();
    for (auto it = j.begin(); it != j.end(); ++it)
      d->set(it.key(), fromJson(it.value(), depth + 1, path + "." + it.key()));
    return Value::dict(d);
  }
  default:
    throw TemplateError(0, path + ": unsupported JSON value");
  }
}

// nlohmann's messages start with "[json.exception.parse_error.101] ".
std::string jsonError(const std::string &what, const char *message) {
  std::string m = message;
  size_t close = m.find("] ");
  if (m.rfind("[json.exception", 0) == 0 && close != std::string::npos)
    m.erase(0, close + 2);
  return what + ": invalid JSON: " + m;
}

bool parseJson(const std::string &text, const std::string &what, Json &out,
               std::string &error) {
  try {
    out = Json::parse(text);
    return true;
  } catch (const Json::exception &e) {
    error = jsonError(what, e.what());
    return false;
  }
}

} // namespace

struct ChatTemplate::Impl {
  Body body;
  std::vector<std::pair<std::string, Value>> defaults;
  std::string defaultsJson = "{}";
};

ChatTemplate::ChatTemplate() : impl_(std::make_unique<Impl>()) {}
ChatTemplate::~ChatTemplate() = default;

std::unique_ptr<ChatTemplate> ChatTemplate::parse(const std::string &source,
                                                  std::string &error) {
  try {
    std::unique_ptr<ChatTemplate> t(new ChatTemplate());
    t->impl_->body = parseTemplate(lex(source));
    return t;
  } catch (const TemplateError &e) {
    error = oneLine(e.what());
    return nullptr;
  }
}

/// The chat_template of a parsed tokenizer_config.json: a string, or the
/// "default" entry of a list of {name, template}.
static bool configTemplate(const Json &config, const std::string &path,
                           std::string &source, std::string &error) {
  auto tmpl = config.find("chat_template");
  if (tmpl == config.end() || tmpl->is_null()) {
    error = path + ": no chat_template";
    return false;
  }
  if (tmpl->is_string()) {
    source = tmpl->get<std::string>();
  } else if (tmpl->is_array()) {
    bool found = false;
    for (size_t i = 0; i < tmpl->size(); ++i) {
      const Json &entry = (*tmpl)[i];
      auto name = entry.is_object() ? entry.find("name") : entry.end();
      auto text = entry.is_object() ? entry.find("template") : entry.end();
      if (!entry.is_object() || name == entry.end() || !name->is_string() ||
          text == entry.end() || !text->is_string()) {
        error = path + ": chat_template[" + std::to_string(i) +
                "]: expected {\"name\": string, \"template\": string}";
        return false;
      }
      if (name->get<std::string>() == "default") {
        source = text->get<std::string>();
        found = true;
      }
    }
    if (!found) {
      error = path + ": chat_template has no entry named \"default\"";
      return false;
    }
  } else {
    error = path + ": chat_template: expected a string or a list of "
                   "{name, template}";
    return false;
  }
  return true;
}

std::unique_ptr<ChatTemplate>
ChatTemplate::fromTokenizerConfig(const std::string &path, std::string &error,
                                  const std::string *templateSource) {
  // The file's and the messages' strings may hold line breaks.
  auto made = [&]() -> std::unique_ptr<ChatTemplate> {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error = path + ": cannot read: " + std::strerror(errno);
      return nullptr;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    Json config;
    if (!parseJson(buffer.str(), path, config, error))
      return nullptr;
    if (!config.is_object()) {
      error = path + ": expected a JSON object";
      return nullptr;
    }
    std::string source;
    if (templateSource)
      source = *templateSource;
    else if (!configTemplate(config, path, source, error))
      return nullptr;
    std::unique_ptr<ChatTemplate> t = parse(source, error);
    if (!t) {
      error =
          (templateSource ? "chat template: " : path + ": chat_template: ") +
          error;
      return nullptr;
    }
    // transformers passes the special tokens map; an AddedToken is an object
    // whose "content" is the text.
    Json defaults = Json::object();
    for (const char *key : {"bos_token", "eos_token", "unk_token", "sep_token",
                            "pad_token", "cls_token", "mask_token"}) {
      auto it = config.find(key);
      if (it == config.end())
        continue;
      if (it->is_string()) {
        defaults[key] = *it;
      } else if (it->is_object() && it->contains("content") &&
                 (*it)["content"].is_string()) {
        defaults[key] = (*it)["content"];
      }
    }
    for (auto it = defaults.begin(); it != defaults.end(); ++it)
      t->impl_->defaults.emplace_back(
          it.key(), Value::string(it.value().get<std::string>()));
    t->impl_->defaultsJson = defaults.dump();
    return t;
  }();
  if (!made)
    error = oneLine(error);
  return made;
}

std::string ChatTemplate::defaultContextJson() const {
  return impl_->defaultsJson;
}

bool ChatTemplate::render(const std::string &messagesJson,
                          bool addGenerationPrompt,
                          const std::string &extraContextJson,
                          std::string &out, std::string &error) const {
  // The messages' strings may hold line breaks.
  bool ok = [&]() -> bool {
    Json messages, extra;
    if (!parseJson(messagesJson, "messages", messages, error))
      return false;
    if (!messages.is_array()) {
      error = std::string("messages: expected a JSON array, got ") +
              messages.type_name();
      return false;
    }
    for (size_t i = 0; i < messages.size(); ++i)
      if (!messages[i].is_object()) {
        error = "messages[" + std::to_string(i) +
                "]: expected an object, got " + messages[i].type_name();
        return false;
      }
    if (!extraContextJson.empty()) {
      if (!parseJson(extraContextJson, "extra context", extra, error))
        return false;
      if (!extra.is_object()) {
        error = "extra context: expected a JSON object";
        return false;
      }
    }
    try {
      // transformers always passes tools and documents (None when absent),
      // so `tools is defined` holds and `tools is none` tells.
      std::vector<std::pair<std::string, Value>> context = {
          {"tools", Value::none()}, {"documents", Value::none()}};
      context.insert(context.end(), impl_->defaults.begin(),
                     impl_->defaults.end());
      for (auto it = extra.begin(); !extra.is_null() && it != extra.end(); ++it)
        context.emplace_back(it.key(), fromJson(it.value(), 1, it.key()));
      context.emplace_back("messages", fromJson(messages, 0, "messages"));
      context.emplace_back("add_generation_prompt",
                           Value::boolean(addGenerationPrompt));
      Interpreter interpreter(std::move(context));
      out = interpreter.render(impl_->body);
      return true;
    } catch (const TemplateError &e) {
      error = e.what();
      return false;
    }
  }();
  if (!ok)
    error = oneLine(error);
  return ok;
}

//===----------------------------------------------------------------------===//
// C API
//===----------------------------------------------------------------------===//

struct dsrt_chat_template {
  std::unique_ptr<ChatTemplate> impl;
};

extern "C" dsrt_status
dsrt_chat_template_load(const char *tokenizer_config_path,
                        dsrt_chat_template **out) {
  if (!out || !tokenizer_config_path)
    return dsrt::fail(DSRT_ERROR_ARGUMENT,
                      "dsrt_chat_template_load: NULL argument");
  *out = nullptr;
  return dsrt::guarded("dsrt_chat_template_load", [&] {
    std::string error;
    auto t = ChatTemplate::fromTokenizerConfig(tokenizer_config_path, error);
    if (!t) {
      std::ifstream probe(tokenizer_config_path);
      return dsrt::fail(probe ? DSRT_ERROR_FORMAT : DSRT_ERROR_IO, error);
    }
    *out = new dsrt_chat_template{std::move(t)};
    return DSRT_OK;
  });
}

extern "C" dsrt_status
dsrt_chat_template_load_source(const char *tokenizer_config_path,
                               const char *source, dsrt_chat_template **out) {
  if (!out || !tokenizer_config_path || !source)
    return dsrt::fail(DSRT_ERROR_ARGUMENT,
                      "dsrt_chat_template_load_source: NULL argument");
  *out = nullptr;
  return dsrt::guarded("dsrt_chat_template_load_source", [&] {
    std::string error, text = source;
    auto t =
        ChatTemplate::fromTokenizerConfig(tokenizer_config_path, error, &text);
    if (!t) {
      std::ifstream probe(tokenizer_config_path);
      return dsrt::fail(probe ? DSRT_ERROR_FORMAT : DSRT_ERROR_IO, error);
    }
    *out = new dsrt_chat_template{std::move(t)};
    return DSRT_OK;
  });
}

extern "C" dsrt_status dsrt_chat_template_create(const char *source,
                                                 dsrt_chat_template **out) {
  if (!out || !source)
    return dsrt::fail(DSRT_ERROR_ARGUMENT,
                      "dsrt_chat_template_create: NULL argument");
  *out = nullptr;
  return dsrt::guarded("dsrt_chat_template_create", [&] {
    std::string error;
    auto t = ChatTemplate::parse(source, error);
    if (!t)
      return dsrt::fail(DSRT_ERROR_FORMAT, "chat_template: " + error);
    *out = new dsrt_chat_template{std::move(t)};
    return DSRT_OK;
  });
}

extern "C" void dsrt_chat_template_free(dsrt_chat_template *tmpl) {
  delete tmpl;
}

extern "C" dsrt_status dsrt_chat_template_render(
    const dsrt_chat_template *tmpl, const char *messages_json,
    int add_generation_prompt, const char *extra_context_json, char **out) {
  if (!tmpl || !messages_json || !out)
    return dsrt::fail(DSRT_ERROR_ARGUMENT,
                      "dsrt_chat_template_render: NULL argument");
  *out = nullptr;
  return dsrt::guarded("dsrt_chat_template_render", [&] {
    std::string text, error;
    if (!tmpl->impl->render(messages_json, add_generation_prompt != 0,
                            extra_context_json ? extra_context_json : "", text,
                            error))
      return dsrt::fail(DSRT_ERROR_ARGUMENT, error);
    char *buffer = static_cast<char *>(std::malloc(text.size() + 1));
    if (!buffer)
      return dsrt::fail(DSRT_ERROR_OUT_OF_MEMORY,
                        "dsrt_chat_template_render: out of memory");
    std::memcpy(buffer, text.c_str(), text.size() + 1);
    *out = buffer;
    return DSRT_OK;
  });
}

extern "C" void dsrt_chat_string_free(char *s) { std::free(s); }
