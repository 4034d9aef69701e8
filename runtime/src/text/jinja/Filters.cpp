//===- Filters.cpp - Jinja filters and tests ------------------------------===//
#include "text/jinja/Builtins.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>

using namespace dsrt::text::jinja;

namespace {

using FilterFn = Value (*)(const Value &, const CallArgs &, int);
using TestFn = bool (*)(const Value &, const CallArgs &, int);

[[noreturn]] void typeError(const char *filter, const Value &v, int line) {
  throw TemplateError(line, std::string("filter '") + filter +
                                "' cannot take a " + v.typeName() + " value");
}

std::string asciiTitle(const std::string &s, bool everyWord) {
  std::string r = s;
  bool start = true;
  for (char &c : r) {
    unsigned char u = static_cast<unsigned char>(c);
    bool alpha = u < 0x80 && std::isalpha(u);
    if (alpha)
      c = static_cast<char>(start ? std::toupper(u) : std::tolower(u));
    if (everyWord)
      start = !(alpha || (u < 0x80 && std::isdigit(u)) || u >= 0x80);
    else
      start = false;
  }
  return r;
}

Value fLength(const Value &v, const CallArgs &, int line) {
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return Value::integer(0);
  case Value::Kind::String:
    return Value::integer(static_cast<int64_t>(codePointCount(v.asString())));
  case Value::Kind::List:
    return Value::integer(static_cast<int64_t>(v.asList().size()));
  case Value::Kind::Dict:
  case Value::Kind::Namespace:
    return Value::integer(static_cast<int64_t>(v.asDict().items.size()));
  default:
    typeError("length", v, line);
  }
}

Value fTrim(const Value &v, const CallArgs &a, int) {
  Value chars = argument(a, 0, "chars");
  std::string set = chars.isString() ? chars.asString() : "";
  return Value::string(
      stripString(v.str(), chars.isString() ? &set : nullptr, true, true));
}

Value fToJson(const Value &v, const CallArgs &a, int line) {
  Value indent = argument(a, 0, "indent");
  return Value::string(
      toJson(v, indent.isNumber() ? static_cast<int>(indent.asInt()) : -1,
             line));
}

Value fString(const Value &v, const CallArgs &, int) {
  return Value::string(v.str());
}

Value fInt(const Value &v, const CallArgs &a, int) {
  if (v.isInt() || v.isBool())
    return Value::integer(v.asInt());
  if (v.isFloat() && std::isfinite(v.asDouble()) &&
      std::fabs(v.asDouble()) < 9.2e18)
    return Value::integer(static_cast<int64_t>(v.asDouble()));
  if (v.isString()) {
    std::string s = stripString(v.asString(), nullptr, true, true);
    char *end = nullptr;
    errno = 0;
    long long i = std::strtoll(s.c_str(), &end, 10);
    if (!s.empty() && *end == 0 && errno == 0)
      return Value::integer(i);
  }
  Value fallback = argument(a, 0, "default");
  return fallback.isUndefined() ? Value::integer(0) : fallback;
}

Value fFloat(const Value &v, const CallArgs &a, int) {
  if (v.isNumber())
    return Value::number(v.asDouble());
  if (v.isString()) {
    std::string s = stripString(v.asString(), nullptr, true, true);
    char *end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && *end == 0)
      return Value::number(d);
  }
  Value fallback = argument(a, 0, "default");
  return fallback.isUndefined() ? Value::number(0) : fallback;
}

Value fLower(const Value &v, const CallArgs &a, int line) {
  Value out;
  callMethod(Value::string(v.str()), "lower", a, line, out);
  return out;
}

Value fUpper(const Value &v, const CallArgs &a, int line) {
  Value out;
  callMethod(Value::string(v.str()), "upper", a, line, out);
  return out;
}

Value fTitle(const Value &v, const CallArgs &, int) {
  return Value::string(asciiTitle(v.str(), true));
}

Value fCapitalize(const Value &v, const CallArgs &, int) {
  return Value::string(asciiTitle(v.str(), false));
}

Value fDefault(const Value &v, const CallArgs &a, int) {
  Value fallback = argument(a, 0, "default_value");
  bool boolean = argument(a, 1, "boolean").truthy();
  if (v.isUndefined() || (boolean && !v.truthy()))
    return fallback.isUndefined() ? Value::string("") : fallback;
  return v;
}

Value attributeOf(const Value &item, const Value &attr) {
  if (!item.isMapping() || !attr.isString())
    return Value();
  const Value *hit = item.asDict().find(attr.asString());
  return hit ? *hit : Value();
}

Value fJoin(const Value &v, const CallArgs &a, int line) {
  Value sep = argument(a, 0, "d");
  Value attr = argument(a, 1, "attribute");
  std::string s = sep.isUndefined() ? "" : sep.str();
  std::string r;
  bool first = true;
  for (const Value &item : iterate(v, line, "join")) {
    if (!first)
      r += s;
    first = false;
    r += (attr.isUndefined() ? item : attributeOf(item, attr)).str();
    checkSize(r.size(), line);
  }
  return Value::string(std::move(r));
}

Value fFirst(const Value &v, const CallArgs &, int line) {
  std::vector<Value> items = iterate(v, line, "first");
  return items.empty() ? Value::undefined("first: empty sequence")
                       : items.front();
}

Value fLast(const Value &v, const CallArgs &, int line) {
  std::vector<Value> items = iterate(v, line, "last");
  return items.empty() ? Value::undefined("last: empty sequence")
                       : items.back();
}

Value fList(const Value &v, const CallArgs &, int line) {
  return Value::list(iterate(v, line, "list"));
}

Value fReverse(const Value &v, const CallArgs &, int line) {
  if (v.isString()) {
    std::vector<Value> chars = iterate(v, line, "reverse");
    std::string r;
    for (auto it = chars.rbegin(); it != chars.rend(); ++it)
      r += it->asString();
    return Value::string(std::move(r));
  }
  std::vector<Value> items = iterate(v, line, "reverse");
  std::reverse(items.begin(), items.end());
  return Value::list(std::move(items));
}

Value fItems(const Value &v, const CallArgs &a, int line) {
  if (v.isUndefined())
    return Value::list({});
  Value out;
  if (!v.isMapping() || !callMethod(v, "items", a, line, out))
    typeError("items", v, line);
  return out;
}

Value fAbs(const Value &v, const CallArgs &, int line) {
  if (v.isFloat())
    return Value::number(std::fabs(v.asDouble()));
  if (v.isNumber()) {
    if (v.asInt() == INT64_MIN)
      throw TemplateError(line, "abs: integer overflow");
    return Value::integer(std::llabs(v.asInt()));
  }
  typeError("abs", v, line);
}

Value fReplace(const Value &v, const CallArgs &a, int line) {
  Value out;
  callMethod(Value::string(v.str()), "replace", a, line, out);
  return out;
}

Value fSafe(const Value &v, const CallArgs &, int) { return v; }

Value fEscape(const Value &v, const CallArgs &, int) {
  std::string r;
  for (char c : v.str()) {
    switch (c) {
    case '&':
      r += "&amp;";
      break;
    case '<':
      r += "&lt;";
      break;
    case '>':
      r += "&gt;";
      break;
    case '"':
      r += "&#34;";
      break;
    case '\'':
      r += "&#39;";
      break;
    default:
      r += c;
    }
  }
  return Value::string(std::move(r));
}

// selectattr / rejectattr: items whose attribute passes the test (or is
// truthy when no test is named).
Value selectByAttribute(const Value &v, const CallArgs &a, int line,
                        bool keep) {
  if (a.positional.empty() || !a.positional[0].isString())
    throw TemplateError(line, "selectattr/rejectattr need an attribute name");
  CallArgs testArgs;
  for (size_t i = 2; i < a.positional.size(); ++i)
    testArgs.positional.push_back(a.positional[i]);
  std::string test;
  if (a.positional.size() > 1) {
    if (!a.positional[1].isString() || !hasTest(a.positional[1].asString()))
      throw TemplateError(line, "unsupported test '" + a.positional[1].str() +
                                    "' in selectattr/rejectattr");
    test = a.positional[1].asString();
  }
  List out;
  for (const Value &item : iterate(v, line, "selectattr")) {
    Value attr = attributeOf(item, a.positional[0]);
    bool pass = test.empty() ? attr.truthy()
                             : applyTest(test, attr, testArgs, line);
    if (pass == keep)
      out.push_back(item);
  }
  return Value::list(std::move(out));
}

Value fSelectAttr(const Value &v, const CallArgs &a, int line) {
  return selectByAttribute(v, a, line, true);
}

Value fRejectAttr(const Value &v, const CallArgs &a, int line) {
  return selectByAttribute(v, a, line, false);
}

Value fMap(const Value &v, const CallArgs &a, int line) {
  Value attr = argument(a, 99, "attribute");
  List out;
  if (!attr.isUndefined()) {
    Value fallback = argument(a, 99, "default");
    for (const Value &item : iterate(v, line, "map")) {
      Value x = attributeOf(item, attr);
      out.push_back(x.isUndefined() && !fallback.isUndefined() ? fallback : x);
    }
    return Value::list(std::move(out));
  }
  if (a.positional.empty() || !a.positional[0].isString() ||
      !hasFilter(a.positional[0].asString()))
    throw TemplateError(line, "map needs attribute= or a supported filter name");
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  for (const Value &item : iterate(v, line, "map"))
    out.push_back(applyFilter(a.positional[0].asString(), item, rest, line));
  return Value::list(std::move(out));
}

// sort, unique, min and max compare strings case-insensitively unless
// case_sensitive=true, and compare item.attribute when attribute= is given.
Value sortKey(const Value &item, const CallArgs &a, int line) {
  Value attr = argument(a, 99, "attribute");
  Value key = attr.isUndefined() ? item : attributeOf(item, attr);
  if (key.isString() && !argument(a, 99, "case_sensitive").truthy())
    return applyFilter("lower", key, CallArgs(), line);
  return key;
}

Value fSort(const Value &v, const CallArgs &a, int line) {
  std::vector<Value> items = iterate(v, line, "sort");
  std::vector<std::pair<Value, Value>> keyed;
  for (const Value &item : items)
    keyed.emplace_back(sortKey(item, a, line), item);
  bool reverse = argument(a, 0, "reverse").truthy();
  std::stable_sort(keyed.begin(), keyed.end(),
                   [&](const auto &x, const auto &y) {
                     return reverse ? lessThan(y.first, x.first, line)
                                    : lessThan(x.first, y.first, line);
                   });
  List out;
  for (auto &kv : keyed)
    out.push_back(kv.second);
  return Value::list(std::move(out));
}

Value fUnique(const Value &v, const CallArgs &a, int line) {
  List out;
  std::vector<Value> seen;
  for (const Value &item : iterate(v, line, "unique")) {
    Value key = sortKey(item, a, line);
    bool dup = false;
    for (const Value &k : seen)
      dup = dup || equals(k, key);
    if (!dup) {
      seen.push_back(key);
      out.push_back(item);
    }
  }
  return Value::list(std::move(out));
}

Value extreme(const Value &v, const CallArgs &a, int line, bool wantMax) {
  std::vector<Value> items = iterate(v, line, wantMax ? "max" : "min");
  if (items.empty())
    return Value::undefined(std::string(wantMax ? "max" : "min") +
                            " of an empty sequence");
  size_t best = 0;
  Value bestKey = sortKey(items[0], a, line);
  for (size_t i = 1; i < items.size(); ++i) {
    Value key = sortKey(items[i], a, line);
    if (wantMax ? lessThan(bestKey, key, line) : lessThan(key, bestKey, line)) {
      best = i;
      bestKey = key;
    }
  }
  return items[best];
}

Value fMin(const Value &v, const CallArgs &a, int line) {
  return extreme(v, a, line, false);
}

Value fMax(const Value &v, const CallArgs &a, int line) {
  return extreme(v, a, line, true);
}

Value fSum(const Value &v, const CallArgs &a, int line) {
  Value attr = argument(a, 0, "attribute");
  Value total = argument(a, 1, "start");
  if (total.isUndefined())
    total = Value::integer(0);
  for (const Value &item : iterate(v, line, "sum")) {
    Value x = attr.isUndefined() ? item : attributeOf(item, attr);
    if (!x.isNumber() || !total.isNumber())
      throw TemplateError(line, std::string("sum: cannot add ") +
                                    total.typeName() + " and " + x.typeName());
    if (x.isFloat() || total.isFloat()) {
      total = Value::number(total.asDouble() + x.asDouble());
    } else {
      int64_t r;
      if (__builtin_add_overflow(total.asInt(), x.asInt(), &r))
        throw TemplateError(line, "sum: integer overflow");
      total = Value::integer(r);
    }
  }
  return total;
}

const std::map<std::string, FilterFn> &filters() {
  static const std::map<std::string, FilterFn> table = {
      {"length", fLength},       {"count", fLength},
      {"trim", fTrim},           {"tojson", fToJson},
      {"string", fString},       {"int", fInt},
      {"float", fFloat},         {"lower", fLower},
      {"upper", fUpper},         {"title", fTitle},
      {"capitalize", fCapitalize}, {"default", fDefault},
      {"d", fDefault},           {"join", fJoin},
      {"first", fFirst},         {"last", fLast},
      {"list", fList},           {"reverse", fReverse},
      {"items", fItems},         {"abs", fAbs},
      {"replace", fReplace},     {"safe", fSafe},
      {"escape", fEscape},       {"e", fEscape},
      {"selectattr", fSelectAttr}, {"rejectattr", fRejectAttr},
      {"map", fMap},             {"sort", fSort},
      {"unique", fUnique},       {"min", fMin},
      {"max", fMax},             {"sum", fSum},
  };
  return table;
}

// Tests.

bool tDefined(const Value &v, const CallArgs &, int) {
  return !v.isUndefined();
}
bool tUndefined(const Value &v, const CallArgs &, int) {
  return v.isUndefined();
}
bool tNone(const Value &v, const CallArgs &, int) { return v.isNone(); }
bool tString(const Value &v, const CallArgs &, int) { return v.isString(); }
bool tNumber(const Value &v, const CallArgs &, int) { return v.isNumber(); }
bool tInteger(const Value &v, const CallArgs &, int) {
  return v.isInt(); // Jinja: bool is not an integer here
}
bool tFloat(const Value &v, const CallArgs &, int) { return v.isFloat(); }
bool tBoolean(const Value &v, const CallArgs &, int) { return v.isBool(); }
bool tTrue(const Value &v, const CallArgs &, int) {
  return v.isBool() && v.asBool();
}
bool tFalse(const Value &v, const CallArgs &, int) {
  return v.isBool() && !v.asBool();
}
bool tMapping(const Value &v, const CallArgs &, int) {
  return v.kind() == Value::Kind::Dict;
}
bool tIterable(const Value &v, const CallArgs &, int) {
  return v.isString() || v.isList() || v.isMapping() || v.isUndefined();
}
bool tSequence(const Value &v, const CallArgs &, int) {
  return v.isString() || v.isList() || v.isMapping();
}
bool tCallable(const Value &v, const CallArgs &, int) {
  return v.isFunction();
}

int64_t requireInt(const Value &v, const char *test, int line) {
  if (!v.isInt() && !v.isBool())
    throw TemplateError(line, std::string("test '") + test +
                                  "' needs an integer, got " + v.typeName());
  return v.asInt();
}

bool tOdd(const Value &v, const CallArgs &, int line) {
  return requireInt(v, "odd", line) % 2 != 0;
}
bool tEven(const Value &v, const CallArgs &, int line) {
  return requireInt(v, "even", line) % 2 == 0;
}
bool tDivisibleBy(const Value &v, const CallArgs &a, int line) {
  int64_t d = requireInt(argument(a, 0, "num"), "divisibleby", line);
  if (d == 0)
    throw TemplateError(line, "divisibleby(0)");
  return requireInt(v, "divisibleby", line) % d == 0;
}
bool tEq(const Value &v, const CallArgs &a, int) {
  return equals(v, argument(a, 0, "other"));
}
bool tNe(const Value &v, const CallArgs &a, int) {
  return !equals(v, argument(a, 0, "other"));
}
bool tLt(const Value &v, const CallArgs &a, int line) {
  return lessThan(v, argument(a, 0, "other"), line);
}
bool tGt(const Value &v, const CallArgs &a, int line) {
  return lessThan(argument(a, 0, "other"), v, line);
}
bool tLe(const Value &v, const CallArgs &a, int line) {
  return !lessThan(argument(a, 0, "other"), v, line);
}
bool tGe(const Value &v, const CallArgs &a, int line) {
  return !lessThan(v, argument(a, 0, "other"), line);
}
bool tIn(const Value &v, const CallArgs &a, int line) {
  Value seq = argument(a, 0, "seq");
  if (seq.isString())
    return v.isString() && seq.asString().find(v.asString()) !=
                               std::string::npos;
  for (const Value &item : iterate(seq, line, "in"))
    if (equals(item, v))
      return true;
  return false;
}
bool tLower(const Value &v, const CallArgs &, int line) {
  Value lowered = applyFilter("lower", v, CallArgs(), line);
  return v.isString() && lowered.asString() == v.asString();
}
bool tUpper(const Value &v, const CallArgs &, int line) {
  Value upper = applyFilter("upper", v, CallArgs(), line);
  return v.isString() && upper.asString() == v.asString();
}
bool tSameAs(const Value &v, const CallArgs &a, int) {
  Value o = argument(a, 0, "other");
  if (v.kind() != o.kind())
    return false;
  if (v.isList())
    return &v.asList() == &o.asList();
  if (v.isMapping())
    return &v.asDict() == &o.asDict();
  return equals(v, o); // None, bools, small values: identity as in CPython
}

const std::map<std::string, TestFn> &tests() {
  static const std::map<std::string, TestFn> table = {
      {"defined", tDefined},   {"undefined", tUndefined},
      {"none", tNone},         {"string", tString},
      {"number", tNumber},     {"integer", tInteger},
      {"float", tFloat},       {"boolean", tBoolean},
      {"true", tTrue},         {"false", tFalse},
      {"mapping", tMapping},   {"iterable", tIterable},
      {"sequence", tSequence}, {"callable", tCallable},
      {"odd", tOdd},           {"even", tEven},
      {"divisibleby", tDivisibleBy}, {"eq", tEq},
      {"equalto", tEq},        {"==", tEq},
      {"ne", tNe},             {"!=", tNe},
      {"lt", tLt},             {"lessthan", tLt},
      {"gt", tGt},             {"greaterthan", tGt},
      {"le", tLe},             {"ge", tGe},
      {"in", tIn},             {"lower", tLower},
      {"upper", tUpper},       {"sameas", tSameAs},
  };
  return table;
}

} // namespace

bool dsrt::text::jinja::hasFilter(const std::string &name) {
  return filters().count(name) != 0;
}

bool dsrt::text::jinja::hasTest(const std::string &name) {
  return tests().count(name) != 0;
}

Value dsrt::text::jinja::applyFilter(const std::string &name,
                                     const Value &operand, const CallArgs &args,
                                     int line) {
  auto it = filters().find(name);
  if (it == filters().end())
    throw TemplateError(line, "unsupported filter '" + name + "'");
  return it->second(operand, args, line);
}

bool dsrt::text::jinja::applyTest(const std::string &name, const Value &operand,
                                  const CallArgs &args, int line) {
  auto it = tests().find(name);
  if (it == tests().end())
    throw TemplateError(line, "unsupported test '" + name + "'");
  return it->second(operand, args, line);
}
