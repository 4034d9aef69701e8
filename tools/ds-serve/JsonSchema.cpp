//===- JsonSchema.cpp - JSON Schema to a Grammar (JsonGrammar.h) ----------===//
//
// What a schema constrains and what it refuses is listed in JsonGrammar.h.
// $refs compile once each, through a placeholder union, so recursive
// schemas become cycles in the grammar.
//
//===----------------------------------------------------------------------===//

#include "JsonGrammar.h"

#include <algorithm>
#include <cmath>
#include <map>

using json = nlohmann::ordered_json;

namespace dsserve {

using Node = Grammar::Node;

//===----------------------------------------------------------------------===//

class SchemaCompiler {
public:
  SchemaCompiler(const json &root, Grammar &g) : root(root), g(g) {}
  /// The node of schema `s` at `path` (for messages), or -1 with `error`.
  int compile(const json &s, const std::string &path, int depth);
  std::string error;

private:
  int add(Node n) {
    g.nodes.push_back(std::move(n));
    return int(g.nodes.size()) - 1;
  }
  int fail(const std::string &path, const std::string &why) {
    if (error.empty())
      error = (path.empty() ? std::string("the schema") : path) + ": " + why;
    return -1;
  }
  int literals(std::vector<std::string> texts) {
    std::sort(texts.begin(), texts.end());
    texts.erase(std::unique(texts.begin(), texts.end()), texts.end());
    Node n;
    n.kind = Node::Kind::Literals;
    n.literals = std::move(texts);
    return add(std::move(n));
  }
  int ref(const std::string &target, const std::string &path, int depth);
  int typed(const json &s, const std::string &type, const std::string &path,
            int depth);
  int object(const json &s, const std::string &path, int depth);
  /// A string's pattern or enforced format into n.regex; false with
  /// `error` where the pattern cannot be enforced.
  bool stringRegex(const json &s, const std::string &path, Node &n);
  /// An integer's minimum / maximum (exclusive ones too) into n.regex, the
  /// pattern of the integers between; false with `error` where none is.
  bool integerRange(const json &s, const std::string &path, Node &n);

  const json &root;
  Grammar &g;
  std::map<std::string, int> refs; // compiled $ref targets
};

int SchemaCompiler::ref(const std::string &target, const std::string &path,
                        int depth) {
  if (auto it = refs.find(target); it != refs.end())
    return it->second;
  const json *at = &root;
  std::string rest;
  if (target.rfind("#/$defs/", 0) == 0)
    at = root.contains("$defs") ? &root["$defs"] : nullptr,
    rest = target.substr(8);
  else if (target.rfind("#/definitions/", 0) == 0)
    at = root.contains("definitions") ? &root["definitions"] : nullptr,
    rest = target.substr(14);
  else if (target == "#")
    rest.clear();
  else
    return fail(path, "$ref '" + target +
                          "' is not a local #/$defs/... or #/definitions/...");
  if (!at || (!rest.empty() && (!at->is_object() || !at->contains(rest))))
    return fail(path, "$ref '" + target + "' names nothing in the schema");
  const json &s = rest.empty() ? root : (*at)[rest];
  // A placeholder first: a recursive schema refers to itself.
  Node u;
  u.kind = Node::Kind::Union;
  int id = add(u);
  refs[target] = id;
  int body = compile(s, target, depth + 1);
  if (body < 0)
    return -1;
  g.nodes[size_t(id)].alternatives = {body};
  return id;
}

int SchemaCompiler::compile(const json &s, const std::string &path, int depth) {
  if (depth > 64)
    return fail(path, "nested more than 64 levels");
  if (s.is_boolean())
    return s.get<bool>() ? add(Node{}) : fail(path, "a false schema");
  if (!s.is_object())
    return fail(path, "a schema must be an object or a boolean");
  for (const char *k :
       {"patternProperties", "prefixItems", "not", "if", "then", "else",
        "contains", "dependentSchemas", "unevaluatedProperties"})
    if (s.contains(k))
      return fail(path, std::string("'") + k + "' is not supported");
  if (auto r = s.find("$ref"); r != s.end()) {
    if (!r->is_string())
      return fail(path, "$ref must be a string");
    return ref(r->get<std::string>(), path, depth);
  }
  if (auto c = s.find("const"); c != s.end())
    return literals({c->dump()});
  if (auto e = s.find("enum"); e != s.end()) {
    if (!e->is_array() || e->empty())
      return fail(path, "enum must be a non-empty array");
    std::vector<std::string> texts;
    for (const json &v : *e)
      texts.push_back(v.dump());
    return literals(std::move(texts));
  }
  for (const char *k : {"anyOf", "oneOf", "allOf"}) {
    auto it = s.find(k);
    if (it == s.end())
      continue;
    if (!it->is_array() || it->empty())
      return fail(path, std::string(k) + " must be a non-empty array");
    if (std::string(k) == "allOf") {
      if (it->size() != 1)
        return fail(path, "allOf of more than one schema is not supported");
      return compile((*it)[0], path + ".allOf[0]", depth + 1);
    }
    Node u;
    u.kind = Node::Kind::Union;
    for (size_t i = 0; i < it->size(); ++i) {
      int alt = compile(
          (*it)[i], path + "." + k + "[" + std::to_string(i) + "]", depth + 1);
      if (alt < 0)
        return -1;
      u.alternatives.push_back(alt);
    }
    return add(std::move(u));
  }
  auto t = s.find("type");
  if (s.contains("pattern") &&
      !(t != s.end() &&
        (*t == "string" || (t->is_array() && std::find(t->begin(), t->end(),
                                                       "string") != t->end()))))
    return fail(path, "'pattern' is supported with \"type\": \"string\"");
  if (t == s.end()) {
    if (s.contains("properties") || s.contains("additionalProperties"))
      return typed(s, "object", path, depth);
    if (s.contains("items"))
      return typed(s, "array", path, depth);
    return add(Node{}); // anything
  }
  if (t->is_string())
    return typed(s, t->get<std::string>(), path, depth);
  if (!t->is_array() || t->empty())
    return fail(path, "type must be a string or a non-empty array");
  Node u;
  u.kind = Node::Kind::Union;
  for (const json &one : *t) {
    if (!one.is_string())
      return fail(path, "type must list strings");
    int alt = typed(s, one.get<std::string>(), path, depth);
    if (alt < 0)
      return -1;
    u.alternatives.push_back(alt);
  }
  return add(std::move(u));
}

int SchemaCompiler::typed(const json &s, const std::string &type,
                          const std::string &path, int depth) {
  Node n;
  auto count = [&](const char *k, int64_t &out) {
    auto it = s.find(k);
    if (it == s.end())
      return true;
    if (!it->is_number_unsigned())
      return fail(path, std::string(k) + " must be an integer >= 0") >= 0;
    out = int64_t(std::min<uint64_t>(it->get<uint64_t>(), INT64_MAX));
    return true;
  };
  if (type == "string") {
    n.kind = Node::Kind::String;
    if (!count("minLength", n.minLength) || !count("maxLength", n.maxLength))
      return -1;
    if (n.maxLength >= 0 && n.maxLength < n.minLength)
      return fail(path, "maxLength is below minLength");
    if (!stringRegex(s, path, n))
      return -1;
  } else if (type == "number") {
    n.kind = Node::Kind::Number;
  } else if (type == "integer") {
    n.kind = Node::Kind::Integer;
    if (!integerRange(s, path, n))
      return -1;
  } else if (type == "boolean") {
    return literals({"false", "true"});
  } else if (type == "null") {
    return literals({"null"});
  } else if (type == "array") {
    n.kind = Node::Kind::Array;
    if (auto it = s.find("items"); it != s.end()) {
      n.items = compile(*it, path + ".items", depth + 1);
      if (n.items < 0)
        return -1;
    }
    if (!count("minItems", n.minItems) || !count("maxItems", n.maxItems))
      return -1;
    if (n.maxItems >= 0 && n.maxItems < n.minItems)
      return fail(path, "maxItems is below minItems");
  } else if (type == "object") {
    return object(s, path, depth);
  } else {
    return fail(path, "unknown type '" + type + "'");
  }
  return add(std::move(n));
}

/// The regexes of the string formats enforced (whole matches); others
/// are not enforced, as JSON Schema makes formats annotations by default.
static const char *formatRegex(const std::string &format) {
  static const std::map<std::string, const char *> formats = {
      {"date", R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))"},
      {"time", R"(([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?)"
               R"(([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))"},
      {"date-time", R"(\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01]))"
                    R"([Tt]([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?)"
                    R"(([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d))"},
      {"email",
       R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)"
       R"(@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)"
       R"((\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+)"},
      {"uuid", R"([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-)"
               R"([0-9a-fA-F]{4}-[0-9a-fA-F]{12})"},
      {"ipv4", R"(((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3})"
               R"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))"},
      {"hostname", R"([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
                   R"((\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)"},
  };
  auto it = formats.find(format);
  return it == formats.end() ? nullptr : it->second;
}

bool SchemaCompiler::stringRegex(const json &s, const std::string &path,
                                 Node &n) {
  std::string why;
  std::shared_ptr<const Regex> rx;
  if (auto p = s.find("pattern"); p != s.end()) {
    if (!p->is_string())
      return fail(path, "pattern must be a string") >= 0;
    rx = Regex::compile(p->get<std::string>(), Regex::Mode::Search, why);
    if (!rx)
      return fail(path, "pattern: " + why) >= 0;
  } else if (auto f = s.find("format"); f != s.end() && f->is_string()) {
    if (const char *re = formatRegex(f->get<std::string>()))
      rx = Regex::compile(re, Regex::Mode::Whole, why);
  }
  if (rx && !rx->canEnd(rx->start(), n.minLength,
                        n.maxLength < 0 ? INT64_MAX : n.maxLength))
    return fail(path, "no string of minLength..maxLength characters matches "
                      "its pattern or format") >= 0;
  if (rx) {
    g.regexes.push_back(std::move(rx));
    n.regex = int(g.regexes.size()) - 1;
  }
  return true;
}

bool SchemaCompiler::integerRange(const json &s, const std::string &path,
                                  Node &n) {
  // Bounds past 2^50 in magnitude are taken as none on that side (an
  // integer there is beyond what a double keeps exact anyway).
  const double kFar = double(int64_t(1) << 50);
  std::optional<int64_t> lo, hi;
  auto bound = [&](const char *k, bool lower, bool exclusive) {
    auto it = s.find(k);
    if (it == s.end() || it->is_boolean()) // draft 4's exclusive flags
      return true;
    if (!it->is_number())
      return fail(path, std::string(k) + " must be a number") >= 0;
    double v = it->get<double>();
    if (!std::isfinite(v))
      return fail(path, std::string(k) + " must be finite") >= 0;
    if (lower ? v <= -kFar : v >= kFar)
      return true;
    if (lower ? v >= kFar : v <= -kFar)
      return fail(path, std::string(k) + " is beyond 2^50") >= 0;
    bool excl =
        exclusive || s.value(lower ? "exclusiveMinimum" : "exclusiveMaximum",
                             json(false)) == json(true);
    int64_t b = lower ? int64_t(std::ceil(v)) : int64_t(std::floor(v));
    if (excl && double(b) == v)
      b += lower ? 1 : -1;
    auto &slot = lower ? lo : hi;
    slot = slot ? (lower ? std::max(*slot, b) : std::min(*slot, b)) : b;
    return true;
  };
  if (!bound("minimum", true, false) || !bound("maximum", false, false) ||
      !bound("exclusiveMinimum", true, true) ||
      !bound("exclusiveMaximum", false, true))
    return false;
  if (!lo && !hi)
    return true;
  if (lo && hi && *lo > *hi)
    return fail(path, "no integer lies between its minimum and maximum") >= 0;
  std::string why;
  auto rx =
      Regex::compile(integerRangePattern(lo, hi), Regex::Mode::Whole, why);
  if (!rx)
    return fail(path, "its range: " + why) >= 0;
  g.regexes.push_back(std::move(rx));
  n.regex = int(g.regexes.size()) - 1;
  return true;
}

int SchemaCompiler::object(const json &s, const std::string &path, int depth) {
  auto props = s.find("properties");
  if (props == s.end() || !props->is_object() || props->empty()) {
    if (props != s.end() && !props->is_object())
      return fail(path, "properties must be an object");
    Node m;
    m.kind = Node::Kind::Map;
    if (auto extra = s.find("additionalProperties");
        extra != s.end() && extra->is_object()) {
      m.extra = compile(*extra, path + ".additionalProperties", depth + 1);
      if (m.extra < 0)
        return -1;
    }
    return add(std::move(m));
  }
  Node o;
  o.kind = Node::Kind::Object;
  std::vector<std::string> names;
  for (auto it = props->begin(); it != props->end(); ++it)
    names.push_back(it.key());
  std::vector<bool> required(names.size(), false);
  if (auto r = s.find("required"); r != s.end()) {
    if (!r->is_array())
      return fail(path, "required must be an array");
    for (const json &k : *r) {
      auto at = k.is_string() ? std::find(names.begin(), names.end(),
                                          k.get<std::string>())
                              : names.end();
      if (at == names.end())
        return fail(path, "required names '" + k.dump() +
                              "', which properties does not define");
      required[size_t(at - names.begin())] = true;
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    int v = compile((*props)[names[i]], path + ".properties." + names[i],
                    depth + 1);
    if (v < 0)
      return -1;
    o.values.push_back(v);
  }
  o.required = required;
  // keyTexts[i]: property i and the optional ones after it, up to and
  // including the first required one.
  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<std::pair<std::string, int>> keys;
    for (size_t j = i; j < names.size(); ++j) {
      keys.push_back({json(names[j]).dump(), int(j)});
      if (required[j])
        break;
    }
    std::sort(keys.begin(), keys.end());
    o.keyTexts.emplace_back();
    o.keyProps.emplace_back();
    for (auto &[text, j] : keys) {
      o.keyTexts.back().push_back(text);
      o.keyProps.back().push_back(j);
    }
  }
  return add(std::move(o));
}

std::shared_ptr<const Grammar> Grammar::fromSchema(const json &schema,
                                                   std::string &error) {
  auto g = std::make_shared<Grammar>();
  SchemaCompiler c(schema, *g);
  g->rootNode = c.compile(schema, "", 0);
  if (g->rootNode < 0) {
    error = c.error;
    return nullptr;
  }
  return g;
}

std::shared_ptr<const Grammar> Grammar::regex(const std::string &pattern,
                                              std::string &error) {
  auto rx = Regex::compile(pattern, Regex::Mode::Whole, error);
  if (!rx)
    return nullptr;
  auto g = std::make_shared<Grammar>();
  g->regexes.push_back(std::move(rx));
  Node n;
  n.kind = Node::Kind::Pattern;
  n.regex = 0;
  g->nodes.push_back(n);
  g->rootNode = 0;
  g->raw = true;
  return g;
}

std::shared_ptr<const Grammar> Grammar::anyObject() {
  auto g = std::make_shared<Grammar>();
  Node m;
  m.kind = Node::Kind::Map;
  g->nodes.push_back(m);
  g->rootNode = 0;
  return g;
}

std::shared_ptr<const Grammar>
Grammar::choice(const std::vector<std::string> &choices) {
  auto g = std::make_shared<Grammar>();
  Node n;
  n.kind = Node::Kind::Literals;
  n.literals = choices;
  std::sort(n.literals.begin(), n.literals.end());
  n.literals.erase(std::unique(n.literals.begin(), n.literals.end()),
                   n.literals.end());
  g->nodes.push_back(n);
  g->rootNode = 0;
  g->raw = true;
  return g;
}

/// Adds raw `prefix`, a value of `schema`, raw `suffix` (either text may
/// be empty) as one Sequence node of g; its index, or -1 with `error`.
static int addFramed(Grammar &g, std::vector<Node> &nodes,
                     const std::string &prefix, const json &schema,
                     const std::string &suffix, std::string &error) {
  // Each schema on its own: its $refs point into itself.
  SchemaCompiler c(schema, g);
  int value = c.compile(schema, "", 0);
  if (value < 0) {
    error = c.error;
    return -1;
  }
  Node seq;
  seq.kind = Node::Kind::Sequence;
  for (const std::string *text :
       {&prefix, (const std::string *)nullptr, &suffix}) {
    if (!text) {
      seq.parts.push_back(value);
    } else if (!text->empty()) {
      Node lit;
      lit.kind = Node::Kind::Literals;
      lit.raw = true;
      lit.literals = {*text};
      nodes.push_back(lit);
      seq.parts.push_back(int(nodes.size()) - 1);
    }
  }
  nodes.push_back(seq);
  return int(nodes.size()) - 1;
}

std::shared_ptr<const Grammar>
Grammar::textThenValue(const std::vector<std::pair<std::string, json>> &alts,
                       std::string &error) {
  auto g = std::make_shared<Grammar>();
  Node u;
  u.kind = Node::Kind::Union;
  for (const auto &[text, schema] : alts) {
    int seq = addFramed(*g, g->nodes, text, schema, "", error);
    if (seq < 0)
      return nullptr;
    u.alternatives.push_back(seq);
  }
  g->nodes.push_back(u);
  g->rootNode = int(g->nodes.size()) - 1;
  return g;
}

std::shared_ptr<const Grammar> Grammar::framedValue(const std::string &prefix,
                                                    const json &schema,
                                                    const std::string &suffix,
                                                    std::string &error) {
  auto g = std::make_shared<Grammar>();
  g->rootNode = addFramed(*g, g->nodes, prefix, schema, suffix, error);
  return g->rootNode < 0 ? nullptr : g;
}

} // namespace dsserve
