//===- OpenAIRequest.cpp - parsing and validating OpenAI request bodies ---===//

#include "OpenAIRequest.h"
#include "ChatRequest.h"
#include "JsonGrammar.h"
#include "RequestFields.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

using nlohmann::json;

namespace dsserve {

std::string ApiError::toJson() const {
  json e = {{"message", message},
            {"type", type},
            {"param", param.empty() ? json(nullptr) : json(param)},
            {"code", code.empty() ? json(nullptr) : json(code)}};
  return json{{"error", e}}.dump(-1, ' ', false,
                                 json::error_handler_t::replace);
}

namespace {

/// t as a token id: an integer in [0, INT32_MAX] (the vocabulary is the
/// server's to check).
std::optional<int32_t> tokenId(const json &t) {
  if (!t.is_number_integer() ||
      (t.is_number_unsigned()
           ? t.get<uint64_t>() > uint64_t(INT32_MAX)
           : (t.get<int64_t>() < 0 || t.get<int64_t>() > INT32_MAX)))
    return std::nullopt;
  return static_cast<int32_t>(t.get<int64_t>());
}

bool tokenIds(const json &arr, std::vector<int32_t> &out, Fields &f) {
  for (const json &t : arr) {
    if (!t.is_number_integer())
      return f.fail("'prompt' token ids must be integers", "prompt");
    std::optional<int32_t> id = tokenId(t);
    if (!id)
      return f.fail("'prompt' token id " + t.dump() + " is out of range",
                    "prompt");
    out.push_back(*id);
  }
  if (out.empty())
    return f.fail("'prompt' must not be empty", "prompt");
  return true;
}

void parsePrompt(Fields &f, ParsedRequest &r) {
  const json *p = f.get("prompt");
  if (!p) {
    f.fail("'prompt' is required", "prompt");
    return;
  }
  if (p->is_string()) {
    r.prompts.push_back({p->get<std::string>(), std::nullopt});
    return;
  }
  if (!p->is_array()) {
    f.wrongType("prompt",
                "a string, an array of token ids or a list of "
                "those",
                *p);
    return;
  }
  // [id, ...] is one prompt; [string, ...] or [[id, ...], ...] a batch.
  if (!p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    if (int64_t(p->size()) > kMaxChoices) {
      f.fail("'prompt' may hold at most " + std::to_string(kMaxChoices) +
                 " prompts, got " + std::to_string(p->size()),
             "prompt");
      return;
    }
    for (size_t i = 0; i < p->size(); ++i) {
      const json &one = (*p)[i];
      if (one.is_string()) {
        r.prompts.push_back({one.get<std::string>(), std::nullopt});
        continue;
      }
      std::vector<int32_t> ids;
      if (!one.is_array()) {
        f.fail("'prompt[" + std::to_string(i) +
                   "]' must be a string or an "
                   "array of token ids, not " +
                   typeName(one),
               "prompt");
        return;
      }
      if (!tokenIds(one, ids, f))
        return;
      r.prompts.push_back({std::nullopt, std::move(ids)});
    }
    return;
  }
  std::vector<int32_t> ids;
  if (tokenIds(*p, ids, f))
    r.prompts.push_back({std::nullopt, std::move(ids)});
}

void parseStop(Fields &f, ParsedRequest &r) {
  const json *s = f.get("stop");
  if (!s)
    return;
  if (s->is_string()) {
    r.stop.push_back(s->get<std::string>());
  } else if (s->is_array()) {
    for (const json &e : *s) {
      if (!e.is_string()) {
        f.fail("'stop' must be a string or an array of strings", "stop");
        return;
      }
      r.stop.push_back(e.get<std::string>());
    }
  } else {
    f.wrongType("stop", "a string or an array of strings", *s);
    return;
  }
  if (r.stop.size() > 16) {
    f.fail("'stop' may hold at most 16 strings", "stop");
    return;
  }
  for (const std::string &s : r.stop)
    if (s.empty()) {
      f.fail("'stop' strings must not be empty", "stop");
      return;
    }
}

/// vLLM's stop_token_ids: integers, checked against the vocabulary later
/// (the server knows it).
void parseStopTokenIds(Fields &f, ParsedRequest &r) {
  const json *s = f.get("stop_token_ids");
  if (!s)
    return;
  if (!s->is_array()) {
    f.wrongType("stop_token_ids", "an array of token ids", *s);
    return;
  }
  for (const json &t : *s) {
    std::optional<int32_t> id = tokenId(t);
    if (!id) {
      f.fail("'stop_token_ids' must hold token ids (integers >= 0), got " +
                 t.dump(),
             "stop_token_ids");
      return;
    }
    r.stopTokenIds.push_back(*id);
  }
}

/// OpenAI's logit_bias: {"token id": bias in [-100, 100], ...}; ids are
/// checked against the vocabulary later (the server knows it).
void parseLogitBias(Fields &f, ParsedRequest &r) {
  const json *lb = f.get("logit_bias");
  if (!lb)
    return;
  if (!lb->is_object()) {
    f.wrongType("logit_bias", "an object of token id: bias", *lb);
    return;
  }
  for (const auto &[key, value] : lb->items()) {
    char *end = nullptr;
    errno = 0;
    long long id = std::strtoll(key.c_str(), &end, 10);
    if (key.empty() || *end || errno || id < 0 || id > INT32_MAX) {
      f.fail("'logit_bias' keys must be token ids, got '" + key + "'",
             "logit_bias");
      return;
    }
    if (!value.is_number() || !(value.get<double>() >= -100) ||
        !(value.get<double>() <= 100)) {
      f.fail("'logit_bias' values must be numbers in [-100, 100], got " +
                 value.dump() + " for " + key,
             "logit_bias");
      return;
    }
    r.logitBias.push_back({int32_t(id), value.get<float>()});
  }
}

/// A number field that only its neutral value may take here.
void onlyNeutral(Fields &f, const char *name, float neutral, double lo,
                 double hi) {
  float v = neutral;
  f.number(name, v, lo, hi);
  if (v != neutral) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%g", double(neutral));
    f.fail(std::string("'") + name + "' is not supported (only " + buf + ")",
           name);
  }
}

/// Fields OpenAI (or vLLM, whose clients send its sampling extensions)
/// defines that this server cannot honour: refusing them is better than
/// silently answering something else.
void refuseUnsupported(Fields &f) {
  if (auto b = f.integer("best_of", 1, 1 << 20); b && *b != 1)
    f.fail("'best_of' must be 1", "best_of");
  bool beam = false;
  f.boolean("use_beam_search", beam);
  if (beam)
    f.fail("'use_beam_search' is not supported", "use_beam_search");
}

/// Fill in the middle (OpenAI's legacy `suffix`, DeepSeek's FIM
/// completion): the prompt is the text before the hole, `suffix` the text
/// after it; the server builds the model's FIM prompt from the two.
void parseSuffix(Fields &f, const std::string &suffix, ParsedRequest &r) {
  if (r.endpoint != Endpoint::Completions) {
    f.fail("'suffix' is only supported on /v1/completions", "suffix");
    return;
  }
  for (const PromptInput &p : r.prompts)
    if (!p.text) {
      f.fail("'suffix' needs the prompt as text (the server writes the "
             "fill-in-the-middle prompt), not token ids",
             "suffix");
      return;
    }
  if (r.echo) {
    // The prompt the model reads is not the one sent: nothing to echo.
    f.fail("'echo' cannot be combined with 'suffix'", "echo");
    return;
  }
  r.suffix = suffix;
}

/// Structured outputs: OpenAI's response_format (json_object, json_schema)
/// and vLLM's guided_json / guided_regex / guided_choice and
/// structured_outputs, compiled into r.grammar. Schemas
/// are read from `ordered` (the body keeping its key order: properties come
/// in the order they were written).
void parseStructured(Fields &f, const nlohmann::ordered_json &ordered,
                     ParsedRequest &r) {
  auto compile = [&](const nlohmann::ordered_json &schema, const char *param) {
    std::string why;
    r.grammar = Grammar::fromSchema(schema, why);
    if (!r.grammar)
      f.fail("'" + std::string(param) + "': " + why, param);
  };
  int given = 0;
  if (const json *rf = f.get("response_format")) {
    auto type = rf->is_object() ? rf->find("type") : rf->end();
    std::string t = type != rf->end() && type->is_string()
                        ? type->get<std::string>()
                        : std::string();
    if (t == "json_object") {
      r.grammar = Grammar::anyObject();
      ++given;
    } else if (t == "json_schema") {
      const auto js = ordered.at("response_format")
                          .value("json_schema", nlohmann::ordered_json());
      if (!js.is_object() || !js.contains("schema"))
        f.fail("'response_format' json_schema needs {\"json_schema\": "
               "{\"name\": ..., \"schema\": {...}}}",
               "response_format");
      else
        compile(js["schema"], "response_format");
      ++given;
    } else if (t != "text") {
      f.fail("'response_format' type must be text, json_object or "
             "json_schema",
             "response_format");
    }
  }
  // vLLM's guided_* fields, and the structured_outputs object that
  // replaces them (its json, regex, choice, json_object).
  auto schemaOf = [&](const nlohmann::ordered_json &g, const char *param) {
    // vLLM takes the schema as an object or as its JSON text.
    if (!g.is_string())
      return compile(g, param);
    auto parsed =
        nlohmann::ordered_json::parse(g.get<std::string>(), nullptr, false);
    if (parsed.is_discarded())
      f.fail(std::string("'") + param + "' is not a JSON schema", param);
    else
      compile(parsed, param);
  };
  auto choiceOf = [&](const json &c, const char *param) {
    std::vector<std::string> choices;
    if (c.is_array())
      for (const json &v : c)
        if (v.is_string() && !v.get<std::string>().empty())
          choices.push_back(v.get<std::string>());
    if (!c.is_array() || c.empty() || choices.size() != c.size())
      f.fail(std::string("'") + param +
                 "' must be a non-empty list of non-empty strings",
             param);
    else
      r.grammar = Grammar::choice(choices);
  };
  auto regexOf = [&](const json &p, const char *param) {
    std::string why;
    if (!p.is_string())
      f.wrongType(param, "a string (a regular expression)", p);
    else if (!(r.grammar = Grammar::regex(p.get<std::string>(), why)))
      f.fail(std::string("'") + param + "': " + why, param);
  };
  if (f.get("guided_json")) {
    schemaOf(ordered.at("guided_json"), "guided_json");
    ++given;
  }
  if (const json *c = f.get("guided_choice")) {
    choiceOf(*c, "guided_choice");
    ++given;
  }
  if (const json *p = f.get("guided_regex")) {
    regexOf(*p, "guided_regex");
    ++given;
  }
  if (f.get("guided_grammar"))
    f.fail("'guided_grammar' is not supported (guided_json, guided_regex, "
           "guided_choice and response_format are)",
           "guided_grammar");
  if (const json *so = f.get("structured_outputs"); so && !so->is_null()) {
    const char *param = "structured_outputs";
    if (!so->is_object()) {
      f.wrongType(param, "an object", *so);
    } else {
      const auto &oso = ordered.at(param);
      int kinds = 0;
      for (const char *k : {"json", "regex", "choice", "json_object"}) {
        auto it = so->find(k);
        if (it == so->end() || it->is_null() ||
            (std::string(k) == "json_object" && *it == false))
          continue;
        ++kinds;
        if (std::string(k) == "json")
          schemaOf(oso.at(k), param);
        else if (std::string(k) == "regex")
          regexOf(*it, param);
        else if (std::string(k) == "choice")
          choiceOf(*it, param);
        else
          r.grammar = Grammar::anyObject();
      }
      for (const char *k : {"grammar", "structural_tag", "whitespace_pattern"})
        if (auto it = so->find(k); it != so->end() && !it->is_null())
          f.fail(std::string("'structured_outputs.") + k +
                     "' is not supported (json, regex, choice and "
                     "json_object are)",
                 param);
      if (kinds != 1)
        f.fail("'structured_outputs' needs exactly one of json, regex, "
               "choice and json_object",
               param);
      given += kinds ? 1 : 0;
    }
  }
  if (given > 1)
    f.fail("more than one of response_format, structured_outputs, "
           "guided_json, guided_regex and guided_choice",
           "response_format");
}

/// Each tool's name and parameters (an object of any keys where it has
/// none), as the body wrote them.
std::vector<std::pair<std::string, nlohmann::ordered_json>>
toolParameters(const nlohmann::ordered_json &ordered) {
  std::vector<std::pair<std::string, nlohmann::ordered_json>> out;
  auto tools = ordered.find("tools");
  if (tools == ordered.end() || !tools->is_array())
    return out;
  for (const auto &tool : *tools) {
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object())
      continue;
    auto params = fn->find("parameters");
    out.push_back(
        {fn->value("name", ""), params == fn->end() || params->is_null()
                                    ? nlohmann::ordered_json{{"type", "object"}}
                                    : *params});
  }
  return out;
}

/// A named tool_choice: the call's arguments follow the function's
/// parameters.
void namedToolGrammar(Fields &f, const nlohmann::ordered_json &ordered,
                      ParsedRequest &r) {
  for (const auto &[name, params] : toolParameters(ordered)) {
    if (name != r.chat.toolName)
      continue;
    std::string why;
    r.grammar = Grammar::fromSchema(params, why);
    if (!r.grammar)
      f.fail("the parameters of '" + name + "': " + why, "tools");
    return;
  }
}

} // namespace

/// The body as a JSON object, or a 400 saying why not.
static std::optional<json> parseBody(const std::string &body, ApiError &error) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    // Parse again with exceptions only for the position in the message.
    std::string why = "malformed JSON";
    try {
      (void)json::parse(body);
    } catch (const json::exception &e) {
      // parse_error, or out_of_range for a number past a double (1e400).
      why = std::string("malformed JSON: ") + e.what();
    }
    error = ApiError::invalid(why);
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = ApiError::invalid("the request body must be a JSON object");
    return std::nullopt;
  }
  return j;
}

std::optional<ParsedRequest>
parseRequest(Endpoint endpoint, const std::string &body, ApiError &error) {
  std::optional<json> parsed = parseBody(body, error);
  if (!parsed)
    return std::nullopt;
  const json &j = *parsed;
  ParsedRequest r;
  r.endpoint = endpoint;
  Fields f(j, error);
  if (auto m = f.string("model"))
    r.model = *m;
  if (endpoint == Endpoint::Completions) {
    parsePrompt(f, r);
    if (const json *t = f.get("tools"); t && !(t->is_array() && t->empty()))
      f.fail("'tools' are only supported on /v1/chat/completions", "tools");
  } else {
    parseChatInput(f, r.chat);
  }

  const int64_t kMaxTokens = int64_t(1) << 40;
  f.boolean("echo", r.echo);
  if (r.echo && endpoint == Endpoint::ChatCompletions)
    f.fail("'echo' is only supported on /v1/completions", "echo");
  if (auto suffix = f.string("suffix"); suffix && !suffix->empty())
    parseSuffix(f, *suffix, r);
  // max_tokens 0 asks for the prompt alone: only with echo (scoring a
  // prompt's logprobs, as evaluation harnesses do).
  r.maxTokens = f.integer("max_tokens", r.echo ? 0 : 1, kMaxTokens);
  if (endpoint == Endpoint::ChatCompletions)
    if (auto m = f.integer("max_completion_tokens", 1, kMaxTokens))
      r.maxTokens = m;
  f.number("temperature", r.temperature, 0, 2);
  f.number("top_p", r.topP, 1e-9, 1);
  // vLLM's top_k: -1 and 0 both turn it off.
  if (auto k = f.integer("top_k", -1, INT32_MAX))
    r.topK = *k < 0 ? 0 : int32_t(*k);
  if (const json *s = f.get("seed")) {
    if (!s->is_number_integer())
      f.wrongType("seed", "an integer", *s);
    else
      r.seed = s->is_number_unsigned() ? s->get<uint64_t>()
                                       : uint64_t(s->get<int64_t>());
  }
  if (auto n = f.integer("n", 1, kMaxChoices))
    r.n = *n;
  if (int64_t k = std::max<int64_t>(1, int64_t(r.prompts.size())) * r.n;
      k > kMaxChoices)
    f.fail("n (" + std::to_string(r.n) + ") x prompts (" +
               std::to_string(r.prompts.size()) + ") asks for " +
               std::to_string(k) + " choices; at most " +
               std::to_string(kMaxChoices) + " per request",
           "n");
  parseStop(f, r);
  parseStopTokenIds(f, r);
  f.boolean("stream", r.stream);
  if (const json *so = f.get("stream_options")) {
    if (!so->is_object()) {
      f.wrongType("stream_options", "an object", *so);
    } else if (!r.stream) {
      f.fail("'stream_options' is only allowed when 'stream' is true",
             "stream_options");
    } else {
      Fields sf(*so, error);
      sf.boolean("include_usage", r.includeUsage);
      sf.boolean("continuous_usage_stats", r.continuousUsage);
      r.continuousUsage = r.continuousUsage && r.includeUsage;
      if (!sf.ok())
        f.fail(error.message, "stream_options");
    }
  }
  if (endpoint == Endpoint::Completions) {
    if (auto lp = f.integer("logprobs", 0, 20)) {
      r.logprobs = true;
      r.topLogprobs = int(*lp);
    }
  } else {
    f.boolean("logprobs", r.logprobs);
    if (auto t = f.integer("top_logprobs", 0, 20)) {
      if (!r.logprobs)
        f.fail("'top_logprobs' needs 'logprobs': true", "top_logprobs");
      r.topLogprobs = int(*t);
    }
  }
  f.boolean("ignore_eos", r.ignoreEos);
  f.boolean("return_token_ids", r.returnTokenIds);
  if (auto p = f.integer("priority", INT32_MIN, INT32_MAX))
    r.priority = int32_t(*p);
  f.boolean("skip_special_tokens", r.skipSpecialTokens);
  f.number("presence_penalty", r.presencePenalty, -2, 2);
  f.number("frequency_penalty", r.frequencyPenalty, -2, 2);
  f.number("repetition_penalty", r.repetitionPenalty, 1e-6, 1e6);
  f.number("min_p", r.minP, 0, 1);
  if (auto m = f.integer("min_tokens", 0, kMaxTokens)) {
    r.minTokens = *m;
    if (r.maxTokens && *m > *r.maxTokens)
      f.fail("'min_tokens' (" + std::to_string(*m) +
                 ") exceeds 'max_tokens' (" + std::to_string(*r.maxTokens) +
                 ")",
             "min_tokens");
  }
  parseLogitBias(f, r);
  f.boolean("include_stop_str_in_output", r.includeStopStr);
  refuseUnsupported(f);
  bool forcedCall = r.chat.toolChoice == ToolChoice::Named ||
                    r.chat.toolChoice == ToolChoice::Required;
  bool anyCall = forcedCall || r.chat.toolChoice == ToolChoice::Auto;
  if (f.ok() &&
      (f.get("response_format") || f.get("guided_json") ||
       f.get("guided_choice") || f.get("guided_regex") ||
       f.get("guided_grammar") || f.get("structured_outputs") || anyCall)) {
    // Parsed again keeping key order (schemas' properties).
    auto ordered = nlohmann::ordered_json::parse(body, nullptr, false);
    parseStructured(f, ordered, r);
    if (forcedCall && r.grammar && f.ok())
      f.fail("'tool_choice' forces a call, whose arguments cannot also "
             "follow a response_format or guided_json",
             "tool_choice");
    else if (r.chat.toolChoice == ToolChoice::Named && f.ok())
      namedToolGrammar(f, ordered, r);
    else if (anyCall && f.ok())
      r.toolParameters = toolParameters(ordered);
  }
  if (!f.ok())
    return std::nullopt;
  return r;
}

std::optional<TokenizeRequest> parseTokenizeRequest(const std::string &body,
                                                    ApiError &error) {
  std::optional<json> parsed = parseBody(body, error);
  if (!parsed)
    return std::nullopt;
  Fields f(*parsed, error);
  TokenizeRequest r;
  if (auto m = f.string("model"))
    r.model = *m;
  if (f.get("messages")) {
    parseChatInput(f, r.chat);
    r.addSpecialTokens = false; // the template writes BOS itself
  } else if (auto p = f.string("prompt")) {
    r.prompt = *p;
  } else if (f.ok()) {
    f.fail("'prompt' (a string) or 'messages' is required", "prompt");
  }
  f.boolean("add_special_tokens", r.addSpecialTokens);
  if (!f.ok())
    return std::nullopt;
  return r;
}

std::optional<DetokenizeRequest> parseDetokenizeRequest(const std::string &body,
                                                        ApiError &error) {
  std::optional<json> parsed = parseBody(body, error);
  if (!parsed)
    return std::nullopt;
  Fields f(*parsed, error);
  DetokenizeRequest r;
  if (auto m = f.string("model"))
    r.model = *m;
  const json *t = f.get("tokens");
  if (!t) {
    f.fail("'tokens' is required", "tokens");
  } else if (!t->is_array()) {
    f.wrongType("tokens", "an array of token ids", *t);
  } else {
    for (const json &v : *t) {
      std::optional<int32_t> id = tokenId(v);
      if (!id) {
        f.fail("'tokens' must hold token ids (integers >= 0), got " + v.dump(),
               "tokens");
        break;
      }
      r.tokens.push_back(*id);
    }
  }
  if (!f.ok())
    return std::nullopt;
  return r;
}

} // namespace dsserve
