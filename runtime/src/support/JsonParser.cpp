//===- JsonParser.cpp - a small strict JSON reader ------------------------===//
#include "support/JsonParser.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

using namespace dsrt::json;

const Value *Value::get(const std::string &key) const {
  if (kind != Object)
    return nullptr;
  for (const auto &m : members)
    if (m.first == key)
      return &m.second;
  return nullptr;
}

namespace {

constexpr int kMaxDepth = 64;

class Parser {
public:
  explicit Parser(const std::string &text) : s(text) {}

  bool run(Value &out, std::string &error) {
    skipSpace();
    bool ok = value(out, 0);
    if (ok) {
      skipSpace();
      if (pos != s.size())
        ok = fail("trailing characters after the JSON value");
    }
    if (!ok)
      error = where() + ": " + msg;
    return ok;
  }

private:
  bool fail(const std::string &m) {
    if (msg.empty())
      msg = m;
    return false;
  }

  std::string where() const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < s.size(); ++i) {
      if (s[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return std::to_string(line) + ":" + std::to_string(col);
  }

  void skipSpace() {
    while (pos < s.size() &&
           (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\n' || s[pos] == '\r'))
      ++pos;
  }

  bool literal(const char *word) {
    size_t n = std::strlen(word);
    if (s.compare(pos, n, word) != 0)
      return fail("invalid literal");
    pos += n;
    return true;
  }

  bool value(Value &v, int depth) {
    if (depth > kMaxDepth)
      return fail("nesting deeper than 64 levels");
    if (pos >= s.size())
      return fail("unexpected end of input");
    char c = s[pos];
    if (c == '{')
      return object(v, depth);
    if (c == '[')
      return array(v, depth);
    if (c == '"') {
      v.kind = Value::String;
      return string(v.string);
    }
    if (c == 't') {
      v.kind = Value::Bool;
      v.boolean = true;
      return literal("true");
    }
    if (c == 'f') {
      v.kind = Value::Bool;
      return literal("false");
    }
    if (c == 'n') {
      v.kind = Value::Null;
      return literal("null");
    }
    if (c == '-' || (c >= '0' && c <= '9'))
      return number(v);
    return fail(std::string("unexpected character '") + c + "'");
  }

  bool number(Value &v) {
    size_t start = pos;
    if (s[pos] == '-')
      ++pos;
    if (pos >= s.size() || !isdigit(static_cast<unsigned char>(s[pos])))
      return fail("invalid number");
    if (s[pos] == '0' && pos + 1 < s.size() &&
        isdigit(static_cast<unsigned char>(s[pos + 1])))
      return fail("leading zeros are not allowed");
    while (pos < s.size() && isdigit(static_cast<unsigned char>(s[pos])))
      ++pos;
    bool integral = true;
    if (pos < s.size() && s[pos] == '.') {
      integral = false;
      ++pos;
      if (pos >= s.size() || !isdigit(static_cast<unsigned char>(s[pos])))
        return fail("invalid number");
      while (pos < s.size() && isdigit(static_cast<unsigned char>(s[pos])))
        ++pos;
    }
    if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
      integral = false;
      ++pos;
      if (pos < s.size() && (s[pos] == '+' || s[pos] == '-'))
        ++pos;
      if (pos >= s.size() || !isdigit(static_cast<unsigned char>(s[pos])))
        return fail("invalid number");
      while (pos < s.size() && isdigit(static_cast<unsigned char>(s[pos])))
        ++pos;
    }
    std::string text = s.substr(start, pos - start);
    v.kind = Value::Number;
    v.number = std::strtod(text.c_str(), nullptr);
    // Integers beyond 2^53 keep their exact value (offsets of big files).
    if (integral && text.size() <= 19) {
      errno = 0;
      long long i = std::strtoll(text.c_str(), nullptr, 10);
      if (errno == 0) {
        v.isInteger = true;
        v.integer = i;
      }
    }
    return true;
  }

  static void appendUtf8(std::string &out, uint32_t cp) {
    if (cp < 0x80) {
      out += char(cp);
    } else if (cp < 0x800) {
      out += char(0xC0 | (cp >> 6));
      out += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += char(0xE0 | (cp >> 12));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    } else {
      out += char(0xF0 | (cp >> 18));
      out += char(0x80 | ((cp >> 12) & 0x3F));
      out += char(0x80 | ((cp >> 6) & 0x3F));
      out += char(0x80 | (cp & 0x3F));
    }
  }

  bool hex4(uint32_t &out) {
    if (pos + 4 > s.size())
      return fail("truncated \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      char c = s[pos++];
      out <<= 4;
      if (c >= '0' && c <= '9')
        out |= c - '0';
      else if (c >= 'a' && c <= 'f')
        out |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        out |= c - 'A' + 10;
      else
        return fail("invalid \\u escape");
    }
    return true;
  }

  bool string(std::string &out) {
    ++pos; // opening quote
    while (true) {
      if (pos >= s.size())
        return fail("unterminated string");
      char c = s[pos++];
      if (c == '"')
        return true;
      if (static_cast<unsigned char>(c) < 0x20)
        return fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos >= s.size())
        return fail("unterminated string");
      char e = s[pos++];
      switch (e) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp))
          return false;
        if (cp >= 0xD800 && cp < 0xDC00 && pos + 1 < s.size() &&
            s[pos] == '\\' && s[pos + 1] == 'u') {
          pos += 2;
          uint32_t lo;
          if (!hex4(lo))
            return false;
          if (lo < 0xDC00 || lo > 0xDFFF)
            return fail("invalid surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        appendUtf8(out, cp);
        break;
      }
      default:
        return fail(std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  bool array(Value &v, int depth) {
    v.kind = Value::Array;
    ++pos;
    skipSpace();
    if (pos < s.size() && s[pos] == ']') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      v.items.emplace_back();
      if (!value(v.items.back(), depth + 1))
        return false;
      skipSpace();
      if (pos >= s.size())
        return fail("unterminated array");
      if (s[pos] == ',') {
        ++pos;
        continue;
      }
      if (s[pos] == ']') {
        ++pos;
        return true;
      }
      return fail("expected ',' or ']' in array");
    }
  }

  bool object(Value &v, int depth) {
    v.kind = Value::Object;
    ++pos;
    skipSpace();
    if (pos < s.size() && s[pos] == '}') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      if (pos >= s.size() || s[pos] != '"')
        return fail("expected a string key in object");
      std::string key;
      if (!string(key))
        return false;
      skipSpace();
      if (pos >= s.size() || s[pos] != ':')
        return fail("expected ':' after object key");
      ++pos;
      skipSpace();
      v.members.emplace_back(std::move(key), Value());
      if (!value(v.members.back().second, depth + 1))
        return false;
      skipSpace();
      if (pos >= s.size())
        return fail("unterminated object");
      if (s[pos] == ',') {
        ++pos;
        continue;
      }
      if (s[pos] == '}') {
        ++pos;
        return true;
      }
      return fail("expected ',' or '}' in object");
    }
  }

  const std::string &s;
  size_t pos = 0;
  std::string msg;
};

} // namespace

bool dsrt::json::parse(const std::string &text, Value &out,
                       std::string &error) {
  out = Value();
  return Parser(text).run(out, error);
}

std::string dsrt::json::describe(const Value &v) {
  switch (v.kind) {
  case Value::Null:
    return "null";
  case Value::Bool:
    return v.boolean ? "true" : "false";
  case Value::Number:
    if (v.isInteger)
      return std::to_string(v.integer);
    return std::to_string(v.number);
  case Value::String:
    return "\"" + (v.string.size() > 32 ? v.string.substr(0, 29) + "..." : v.string) + "\"";
  case Value::Array:
    return "an array";
  case Value::Object:
    return "an object";
  }
  return "?";
}
