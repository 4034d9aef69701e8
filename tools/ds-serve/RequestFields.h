//===- RequestFields.h - typed reads of a request body's fields -*- C++ -*-===//
//
// Internal to the request parsers (OpenAIRequest.cpp, ChatRequest.cpp):
// optional fields of one JSON body read with their types and ranges
// checked, the first failure kept as the request's 400. The translators of
// other APIs' bodies (ResponsesApi.cpp, MessagesApi.cpp) share `translate`.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_REQUESTFIELDS_H
#define DS_SERVE_REQUESTFIELDS_H

#include "ApiError.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace dsserve {

inline const char *typeName(const nlohmann::json &v) {
  switch (v.type()) {
  case nlohmann::json::value_t::null:
    return "null";
  case nlohmann::json::value_t::boolean:
    return "a boolean";
  case nlohmann::json::value_t::string:
    return "a string";
  case nlohmann::json::value_t::array:
    return "an array";
  case nlohmann::json::value_t::object:
    return "an object";
  case nlohmann::json::value_t::number_float:
    return "a number";
  default:
    return "an integer";
  }
}

/// Reads optional fields of one body; the first failure wins.
class Fields {
public:
  Fields(const nlohmann::json &body, ApiError &error)
      : body(body), error(error) {}
  bool ok() const { return good; }

  /// The field, or null when absent or null (OpenAI treats both alike).
  const nlohmann::json *get(const char *name) {
    auto it = body.find(name);
    if (it == body.end() || it->is_null())
      return nullptr;
    return &*it;
  }
  bool fail(const std::string &message, const char *param) {
    if (good)
      error = ApiError::invalid(message, param);
    good = false;
    return false;
  }
  bool wrongType(const char *name, const char *expected,
                 const nlohmann::json &v) {
    return fail(std::string("'") + name + "' must be " + expected + ", not " +
                    typeName(v),
                name);
  }

  void boolean(const char *name, bool &out) {
    if (const nlohmann::json *v = get(name)) {
      if (!v->is_boolean())
        wrongType(name, "a boolean", *v);
      else
        out = v->get<bool>();
    }
  }
  void number(const char *name, float &out, double lo, double hi) {
    if (const nlohmann::json *v = get(name)) {
      if (!v->is_number()) {
        wrongType(name, "a number", *v);
        return;
      }
      double d = v->get<double>();
      if (!(d >= lo && d <= hi))
        fail(std::string("'") + name + "' must be in [" + fmt(lo) + ", " +
                 fmt(hi) + "], got " + fmt(d),
             name);
      else
        out = static_cast<float>(d);
    }
  }
  std::optional<int64_t> integer(const char *name, int64_t lo, int64_t hi) {
    const nlohmann::json *v = get(name);
    if (!v)
      return std::nullopt;
    if (!v->is_number_integer()) {
      wrongType(name, "an integer", *v);
      return std::nullopt;
    }
    // Unsigned values past int64 are out of range too.
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(INT64_MAX)) {
      fail(std::string("'") + name + "' is out of range", name);
      return std::nullopt;
    }
    int64_t i = v->get<int64_t>();
    if (i < lo || i > hi) {
      fail(std::string("'") + name + "' must be in [" + std::to_string(lo) +
               ", " + std::to_string(hi) + "], got " + std::to_string(i),
           name);
      return std::nullopt;
    }
    return i;
  }
  std::optional<std::string> string(const char *name) {
    const nlohmann::json *v = get(name);
    if (!v)
      return std::nullopt;
    if (!v->is_string()) {
      wrongType(name, "a string", *v);
      return std::nullopt;
    }
    return v->get<std::string>();
  }

private:
  static std::string fmt(double d) {
    char buf[32];
    snprintf(buf, sizeof(buf), "%g", d);
    return buf;
  }
  const nlohmann::json &body;
  ApiError &error;
  bool good = true;
};

/// Reads of another API's body (ResponsesApi.cpp, MessagesApi.cpp), which
/// is translated into a chat body that the chat parser then validates.
namespace translate {

using ojson = nlohmann::ordered_json;

/// o[k] where it is a string, else `otherwise` (never throws on the type).
inline std::string str(const ojson &o, const char *k,
                       const std::string &otherwise = "") {
  auto it = o.is_object() ? o.find(k) : o.end();
  return it != o.end() && it->is_string() ? it->get<std::string>() : otherwise;
}

/// o[k], or null (a default of another type would throw).
inline ojson field(const ojson &o, const char *k) {
  auto it = o.is_object() ? o.find(k) : o.end();
  return it != o.end() ? *it : ojson();
}

/// Another API's tool list as chat's function tools: each tool an object
/// whose type `accepted` takes, its name, description and the schema under
/// `schemaKey` kept. "" or the refusal of the first other one, saying
/// `what` are supported.
inline std::string chatFunctionTools(const ojson &tools,
                                     bool (*accepted)(const std::string &),
                                     const char *schemaKey, const char *what,
                                     ojson &out) {
  if (!tools.is_array())
    return "'tools' must be an array";
  out = ojson::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const ojson &t = tools[i];
    std::string type = str(t, "type");
    if (!t.is_object() || !accepted(type))
      return "'tools[" + std::to_string(i) + "]': only " + what +
             " are supported" + (type.empty() ? "" : ", not '" + type + "'");
    ojson fn = {{"name", field(t, "name")}};
    if (t.contains("description"))
      fn["description"] = t["description"];
    if (t.contains(schemaKey))
      fn["parameters"] = t[schemaKey];
    out.push_back({{"type", "function"}, {"function", fn}});
  }
  return "";
}

} // namespace translate

} // namespace dsserve

#endif // DS_SERVE_REQUESTFIELDS_H
