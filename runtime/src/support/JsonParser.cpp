//===- JsonParser.cpp - a small strict JSON reader ------------------------===//
#include "support/JsonParser.h"
#include "support/Utf8Encode.h"

#include <charconv>
#include <cstring>
#include <unordered_set>

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

bool isDigit(char c) { return c >= '0' && c <= '9'; }

class Parser {
public:
  explicit Parser(std::string_view text) : s(text) {}

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
  /// Records the first failure only: callers unwind by returning false.
  bool fail(const std::string &m) { return failAt(pos, m); }
  bool failAt(size_t at, const std::string &m) {
    if (msg.empty()) {
      msg = m;
      errPos = at;
    }
    return false;
  }

  std::string where() const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < errPos && i < s.size(); ++i) {
      if (s[i] == '\n') {
        ++line;
        col = 1;
      } else if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
        ++col; // UTF-8 continuation bytes do not start a column
      }
    }
    return std::to_string(line) + ":" + std::to_string(col);
  }

  void skipSpace() {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t' ||
                              s[pos] == '\n' || s[pos] == '\r'))
      ++pos;
  }

  bool literal(std::string_view word) {
    if (s.substr(pos, word.size()) != word)
      return fail("invalid literal");
    pos += word.size();
    return true;
  }

  bool value(Value &v, int depth) {
    if (pos >= s.size())
      return fail("unexpected end of input");
    char c = s[pos];
    if ((c == '{' || c == '[') && depth >= kMaxDepth)
      return fail("nesting deeper than " + std::to_string(kMaxDepth) +
                  " levels");
    if (c == '{')
      return object(v, depth + 1);
    if (c == '[')
      return array(v, depth + 1);
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
    if (c == '-' || isDigit(c))
      return number(v);
    if (static_cast<unsigned char>(c) < 0x20 ||
        static_cast<unsigned char>(c) > 0x7E)
      return fail("unexpected byte 0x" + hexByte(c));
    return fail(std::string("unexpected character '") + c + "'");
  }

  static std::string hexByte(char c) {
    const char *digits = "0123456789abcdef";
    unsigned char u = static_cast<unsigned char>(c);
    return {digits[u >> 4], digits[u & 15]};
  }

  bool digits() {
    if (pos >= s.size() || !isDigit(s[pos]))
      return fail("invalid number");
    while (pos < s.size() && isDigit(s[pos]))
      ++pos;
    return true;
  }

  bool number(Value &v) {
    size_t start = pos;
    if (s[pos] == '-')
      ++pos;
    if (pos < s.size() && s[pos] == '0' && pos + 1 < s.size() &&
        isDigit(s[pos + 1]))
      return fail("leading zeros are not allowed");
    if (!digits())
      return false;
    bool integral = true;
    if (pos < s.size() && s[pos] == '.') {
      integral = false;
      ++pos;
      if (!digits())
        return false;
    }
    if (pos < s.size() && (s[pos] == 'e' || s[pos] == 'E')) {
      integral = false;
      ++pos;
      if (pos < s.size() && (s[pos] == '+' || s[pos] == '-'))
        ++pos;
      if (!digits())
        return false;
    }
    // from_chars, unlike strtod, ignores the C locale (a host process may
    // have set a decimal comma).
    const char *b = s.data() + start, *e = s.data() + pos;
    v.kind = Value::Number;
    auto r = std::from_chars(b, e, v.number);
    if (r.ec == std::errc::result_out_of_range) {
      // Too small to represent rounds to zero, as in every JSON library;
      // too large has no finite value.
      std::string_view text(b, size_t(e - b));
      size_t exp = text.find_first_of("eE");
      if (exp == std::string_view::npos || exp + 1 >= text.size() ||
          text[exp + 1] != '-')
        return failAt(start, "number out of range");
      v.number = text[0] == '-' ? -0.0 : 0.0;
    }
    if (integral) {
      int64_t i = 0;
      auto ri = std::from_chars(b, e, i);
      if (ri.ec == std::errc() && ri.ptr == e) {
        v.isInteger = true;
        v.integer = i;
      }
    }
    return true;
  }

  /// Four hex digits at `pos`.
  bool hex4(uint32_t &out) {
    out = 0;
    for (int i = 0; i < 4; ++i, ++pos) {
      if (pos >= s.size())
        return fail("truncated \\u escape");
      char c = s[pos];
      out <<= 4;
      if (isDigit(c))
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

  /// `pos` is just past a backslash and a 'u'.
  bool unicodeEscape(std::string &out) {
    size_t start = pos - 2;
    uint32_t cp;
    if (!hex4(cp))
      return false;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return failAt(start, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (s.substr(pos, 2) != "\\u")
        return failAt(start, "high surrogate not followed by a low one");
      pos += 2;
      uint32_t lo;
      if (!hex4(lo))
        return false;
      if (lo < 0xDC00 || lo > 0xDFFF)
        return failAt(start, "high surrogate not followed by a low one");
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    dsrt::appendUtf8(out, cp);
    return true;
  }

  /// Copies one raw UTF-8 sequence starting at `pos` (a byte >= 0x80);
  /// overlong forms, surrogates and code points past U+10FFFF are refused.
  bool utf8(std::string &out) {
    unsigned char c = static_cast<unsigned char>(s[pos]);
    size_t len;
    uint32_t cp, min;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return fail("invalid UTF-8 in string");
    }
    if (pos + len > s.size())
      return fail("invalid UTF-8 in string");
    for (size_t i = 1; i < len; ++i) {
      unsigned char k = static_cast<unsigned char>(s[pos + i]);
      if ((k & 0xC0) != 0x80)
        return fail("invalid UTF-8 in string");
      cp = (cp << 6) | (k & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return fail("invalid UTF-8 in string");
    out.append(s.data() + pos, len);
    pos += len;
    return true;
  }

  bool string(std::string &out) {
    size_t open = pos++;
    while (true) {
      if (pos >= s.size())
        return failAt(open, "unterminated string");
      unsigned char c = static_cast<unsigned char>(s[pos]);
      if (c == '"') {
        ++pos;
        return true;
      }
      if (c < 0x20)
        return fail("control character in string");
      if (c >= 0x80) {
        if (!utf8(out))
          return false;
        continue;
      }
      if (c != '\\') {
        out += char(c);
        ++pos;
        continue;
      }
      if (pos + 1 >= s.size())
        return failAt(open, "unterminated string");
      char e = s[pos + 1];
      pos += 2;
      static const char kEscapes[] = "\"\\/bfnrt";
      static const char kMeanings[] = "\"\\/\b\f\n\r\t";
      if (const char *k = e ? std::strchr(kEscapes, e) : nullptr) {
        out += kMeanings[k - kEscapes];
      } else if (e == 'u') {
        if (!unicodeEscape(out))
          return false;
      } else {
        return failAt(pos - 2, std::string("invalid escape '\\") + e + "'");
      }
    }
  }

  bool array(Value &v, int depth) {
    v.kind = Value::Array;
    size_t open = pos++;
    skipSpace();
    if (pos < s.size() && s[pos] == ']') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      v.items.emplace_back();
      if (!value(v.items.back(), depth))
        return false;
      skipSpace();
      if (pos >= s.size())
        return failAt(open, "unterminated array");
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
    size_t open = pos++;
    skipSpace();
    if (pos < s.size() && s[pos] == '}') {
      ++pos;
      return true;
    }
    while (true) {
      skipSpace();
      if (pos >= s.size())
        return failAt(open, "unterminated object");
      if (s[pos] != '"')
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
      if (!value(v.members.back().second, depth))
        return false;
      skipSpace();
      if (pos >= s.size())
        return failAt(open, "unterminated object");
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

  std::string_view s;
  size_t pos = 0;
  size_t errPos = 0;
  std::string msg;
};

} // namespace

bool dsrt::json::parse(std::string_view text, Value &out, std::string &error) {
  out = Value();
  return Parser(text).run(out, error);
}

const std::string *dsrt::json::findDuplicateKey(const Value &v) {
  if (v.kind != Value::Object)
    return nullptr;
  std::unordered_set<std::string_view> seen;
  seen.reserve(v.members.size());
  for (const auto &m : v.members)
    if (!seen.insert(m.first).second)
      return &m.first;
  return nullptr;
}

std::string dsrt::json::describe(const Value &v) {
  switch (v.kind) {
  case Value::Null:
    return "null";
  case Value::Bool:
    return v.boolean ? "true" : "false";
  case Value::Number: {
    if (v.isInteger)
      return std::to_string(v.integer);
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof(buf), v.number);
    return std::string(buf, r.ptr);
  }
  case Value::String:
    return "\"" +
           (v.string.size() > 32 ? v.string.substr(0, 29) + "..." : v.string) +
           "\"";
  case Value::Array:
    return "an array";
  case Value::Object:
    return "an object";
  }
  return "?";
}
