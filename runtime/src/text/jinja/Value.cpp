//===- Value.cpp - values of the Jinja interpreter ------------------------===//
#include "text/jinja/Value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

using namespace dsrt::text::jinja;

TemplateError::TemplateError(int line, const std::string &message)
    : std::runtime_error(line > 0 ? "line " + std::to_string(line) + ": " +
                                        message
                                  : message),
      line_(line), message_(message) {}

Value Value::undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}

Value Value::none() {
  Value v;
  v.kind_ = Kind::None;
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.b_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.kind_ = Kind::Int;
  v.i_ = i;
  return v;
}

Value Value::number(double d) {
  Value v;
  v.kind_ = Kind::Float;
  v.d_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

static uint32_t nestingOf(const List &items) {
  uint32_t d = 0;
  for (const Value &item : items)
    d = std::max(d, item.depth());
  if (d >= kMaxNesting)
    throw TemplateError(0, "value nested more than " +
                               std::to_string(kMaxNesting) + " levels");
  return d + 1;
}

Value Value::list(List items) {
  Value v;
  v.kind_ = Kind::List;
  v.depth_ = nestingOf(items);
  v.list_ = std::make_shared<const List>(std::move(items));
  return v;
}

Value Value::dict(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::Dict;
  uint32_t depth = 0;
  for (const auto &item : d->items)
    depth = std::max(depth, item.second.depth());
  if (depth >= kMaxNesting)
    throw TemplateError(0, "value nested more than " +
                               std::to_string(kMaxNesting) + " levels");
  v.depth_ = depth + 1;
  v.dict_ = std::move(d);
  return v;
}

Value Value::emptyDict() { return dict(std::make_shared<Dict>()); }

Value Value::namespaceObject(std::shared_ptr<Dict> d) {
  Value v;
  v.kind_ = Kind::Namespace;
  v.depth_ = 1;
  v.dict_ = std::move(d);
  return v;
}

Value Value::function(std::string name,
                      std::function<Value(const CallArgs &)> fn) {
  Value v;
  v.kind_ = Kind::Function;
  v.fn_ = std::make_shared<const Function>(
      Function{std::move(name), std::move(fn)});
  return v;
}

bool Value::truthy() const {
  switch (kind_) {
  case Kind::Undefined:
  case Kind::None:
    return false;
  case Kind::Bool:
    return b_;
  case Kind::Int:
    return i_ != 0;
  case Kind::Float:
    return d_ != 0;
  case Kind::String:
    return !s_->empty();
  case Kind::List:
    return !list_->empty();
  case Kind::Dict:
    return !dict_->items.empty();
  case Kind::Namespace:
  case Kind::Function:
    return true;
  }
  return false;
}

const char *Value::typeName() const {
  switch (kind_) {
  case Kind::Undefined:
    return "undefined";
  case Kind::None:
    return "NoneType";
  case Kind::Bool:
    return "bool";
  case Kind::Int:
    return "int";
  case Kind::Float:
    return "float";
  case Kind::String:
    return "str";
  case Kind::List:
    return "list";
  case Kind::Dict:
    return "dict";
  case Kind::Namespace:
    return "Namespace";
  case Kind::Function:
    return "function";
  }
  return "?";
}

std::string dsrt::text::jinja::formatFloat(double d) {
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d < 0 ? "-inf" : "inf";
  // The shortest %e text that reads back as d, as Python's repr picks.
  char buf[64];
  for (int prec = 0; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec, d);
    if (std::strtod(buf, nullptr) == d)
      break;
  }
  std::string text(buf);
  bool negative = text[0] == '-';
  if (negative)
    text.erase(0, 1);
  size_t e = text.find('e');
  int exponent = std::atoi(text.c_str() + e + 1);
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (text[i] != '.')
      digits += text[i];
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  std::string out = negative ? "-" : "";
  if (exponent < -4 || exponent >= 16) {
    out += digits.substr(0, 1);
    if (digits.size() > 1)
      out += "." + digits.substr(1);
    char exp[16];
    std::snprintf(exp, sizeof exp, "e%c%02d", exponent < 0 ? '-' : '+',
                  std::abs(exponent));
    return out + exp;
  }
  if (exponent < 0)
    return out + "0." + std::string(-exponent - 1, '0') + digits;
  size_t intDigits = static_cast<size_t>(exponent) + 1;
  if (digits.size() <= intDigits)
    return out + digits + std::string(intDigits - digits.size(), '0') + ".0";
  return out + digits.substr(0, intDigits) + "." + digits.substr(intDigits);
}

static std::string reprString(const std::string &s) {
  bool hasSingle = s.find('\'') != std::string::npos;
  bool hasDouble = s.find('"') != std::string::npos;
  char quote = hasSingle && !hasDouble ? '"' : '\'';
  std::string out(1, quote);
  for (unsigned char c : s) {
    if (c == quote || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + quote;
}

std::string Value::str() const {
  switch (kind_) {
  case Kind::Undefined:
    return "";
  case Kind::String:
    return *s_;
  default:
    return repr();
  }
}

// Printing, comparing and ordering follow references through mutable
// containers too (a loop object's previtem), so they bound their own depth.
static constexpr int kMaxRecursion = 2 * kMaxNesting;

static void checkRecursion(int depth) {
  if (depth > kMaxRecursion)
    throw TemplateError(0, "value nested too deeply to print or compare");
}

static std::string reprAt(const Value &v, int depth);

std::string Value::repr() const { return reprAt(*this, 0); }

static std::string reprAt(const Value &v, int depth) {
  checkRecursion(depth);
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return "";
  case Value::Kind::None:
    return "None";
  case Value::Kind::Bool:
    return v.asBool() ? "True" : "False";
  case Value::Kind::Int:
    return std::to_string(v.asInt());
  case Value::Kind::Float:
    return formatFloat(v.asDouble());
  case Value::Kind::String:
    return reprString(v.asString());
  case Value::Kind::List: {
    std::string out = "[";
    const List &l = v.asList();
    for (size_t i = 0; i < l.size(); ++i)
      out += (i ? ", " : "") + reprAt(l[i], depth + 1);
    return out + "]";
  }
  case Value::Kind::Dict: {
    std::string out = "{";
    const Dict &d = v.asDict();
    for (size_t i = 0; i < d.items.size(); ++i)
      out += (i ? ", " : "") + reprString(d.items[i].first) + ": " +
             reprAt(d.items[i].second, depth + 1);
    return out + "}";
  }
  case Value::Kind::Namespace:
    return "<Namespace>";
  case Value::Kind::Function:
    return "<function " + v.asFunction().name + ">";
  }
  return "";
}

const Value *Dict::find(const std::string &key) const {
  for (const auto &item : items)
    if (item.first == key)
      return &item.second;
  return nullptr;
}

void Dict::set(const std::string &key, Value value) {
  for (auto &item : items)
    if (item.first == key) {
      item.second = std::move(value);
      return;
    }
  items.emplace_back(key, std::move(value));
}

static bool equalsAt(const Value &a, const Value &b, int depth);

bool dsrt::text::jinja::equals(const Value &a, const Value &b) {
  return equalsAt(a, b, 0);
}

static bool equalsAt(const Value &a, const Value &b, int depth) {
  checkRecursion(depth);
  if (a.isNumber() && b.isNumber()) {
    if (a.isFloat() || b.isFloat())
      return a.asDouble() == b.asDouble();
    return a.asInt() == b.asInt();
  }
  if (a.kind() != b.kind())
    return false;
  switch (a.kind()) {
  case Value::Kind::Undefined:
  case Value::Kind::None:
    return true;
  case Value::Kind::String:
    return a.asString() == b.asString();
  case Value::Kind::List: {
    const List &x = a.asList(), &y = b.asList();
    if (x.size() != y.size())
      return false;
    for (size_t i = 0; i < x.size(); ++i)
      if (!equalsAt(x[i], y[i], depth + 1))
        return false;
    return true;
  }
  case Value::Kind::Dict: {
    const Dict &x = a.asDict(), &y = b.asDict();
    if (x.items.size() != y.items.size())
      return false;
    for (const auto &item : x.items) {
      const Value *other = y.find(item.first);
      if (!other || !equalsAt(item.second, *other, depth + 1))
        return false;
    }
    return true;
  }
  case Value::Kind::Namespace:
    return &a.asDict() == &b.asDict();
  case Value::Kind::Function:
    return &a.asFunction() == &b.asFunction();
  default:
    return false;
  }
}

static bool lessThanAt(const Value &a, const Value &b, int line, int depth);

bool dsrt::text::jinja::lessThan(const Value &a, const Value &b, int line) {
  return lessThanAt(a, b, line, 0);
}

static bool lessThanAt(const Value &a, const Value &b, int line, int depth) {
  checkRecursion(depth);
  if (a.isNumber() && b.isNumber()) {
    if (a.isFloat() || b.isFloat())
      return a.asDouble() < b.asDouble();
    return a.asInt() < b.asInt();
  }
  if (a.isString() && b.isString())
    return a.asString() < b.asString(); // UTF-8 bytes sort as code points
  if (a.isList() && b.isList()) {
    const List &x = a.asList(), &y = b.asList();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!equalsAt(x[i], y[i], depth + 1))
        return lessThanAt(x[i], y[i], line, depth + 1);
    }
    return x.size() < y.size();
  }
  throw TemplateError(line, std::string("cannot order ") + a.typeName() +
                                " and " + b.typeName());
}

static void jsonString(const std::string &s, std::string &out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    case '\b':
      out += "\\b";
      break;
    case '\f':
      out += "\\f";
      break;
    default:
      if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
  }
  out += '"';
}

// Python's json.dumps layout: ", " and ": " on one line; with an indent, one
// item a line and "," at line ends.
static void jsonValue(const Value &v, int indent, int depth, int line,
                      std::string &out) {
  if (depth > 512)
    throw TemplateError(line, "tojson: value nested too deeply");
  auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * d, ' ');
  };
  switch (v.kind()) {
  case Value::Kind::None:
    out += "null";
    return;
  case Value::Kind::Bool:
    out += v.asBool() ? "true" : "false";
    return;
  case Value::Kind::Int:
    out += std::to_string(v.asInt());
    return;
  case Value::Kind::Float: {
    double d = v.asDouble();
    out += std::isnan(d)   ? "NaN"
           : std::isinf(d) ? (d < 0 ? "-Infinity" : "Infinity")
                           : formatFloat(d);
    return;
  }
  case Value::Kind::String:
    jsonString(v.asString(), out);
    return;
  case Value::Kind::List: {
    const List &l = v.asList();
    if (l.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    for (size_t i = 0; i < l.size(); ++i) {
      if (i)
        out += indent >= 0 ? "," : ", ";
      if (indent >= 0)
        newline(depth + 1);
      jsonValue(l[i], indent, depth + 1, line, out);
    }
    if (indent >= 0)
      newline(depth);
    out += ']';
    return;
  }
  case Value::Kind::Dict: {
    const Dict &d = v.asDict();
    if (d.items.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    for (size_t i = 0; i < d.items.size(); ++i) {
      if (i)
        out += indent >= 0 ? "," : ", ";
      if (indent >= 0)
        newline(depth + 1);
      jsonString(d.items[i].first, out);
      out += ": ";
      jsonValue(d.items[i].second, indent, depth + 1, line, out);
    }
    if (indent >= 0)
      newline(depth);
    out += '}';
    return;
  }
  default:
    throw TemplateError(line, std::string("tojson: a ") + v.typeName() +
                                  " value is not JSON serializable");
  }
}

std::string dsrt::text::jinja::toJson(const Value &v, int indent, int line) {
  std::string out;
  jsonValue(v, indent, 0, line, out);
  return out;
}

size_t dsrt::text::jinja::codePointCount(const std::string &s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80;
  return n;
}

std::vector<size_t> dsrt::text::jinja::codePointOffsets(const std::string &s) {
  std::vector<size_t> offsets;
  for (size_t i = 0; i < s.size(); ++i)
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
      offsets.push_back(i);
  offsets.push_back(s.size());
  return offsets;
}
