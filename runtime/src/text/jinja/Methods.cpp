//===- Methods.cpp - str and dict methods, globals, helpers ---------------===//
#include "text/jinja/Builtins.h"

#include "text/jinja/Lexer.h"

using namespace dsrt::text::jinja;

namespace {

// Decodes the code point starting at s[i]; malformed bytes stand for
// themselves (the messages were validated as JSON text already).
uint32_t decodeAt(const std::string &s, size_t i, size_t end) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (n == 0 || i + n >= end)
    return c;
  uint32_t cp = c & (0x3F >> n);
  for (int k = 1; k <= n; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  return cp;
}

// Python's str.isspace() code points.
bool isPyWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) ||
         cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

std::string requireString(const Value &v, const char *what, int line) {
  if (!v.isString())
    throw TemplateError(line, std::string(what) + " must be a string, not " +
                                  v.typeName());
  return v.asString();
}

std::string asciiMap(std::string s, int (*f)(int)) {
  for (char &c : s)
    if (static_cast<unsigned char>(c) < 0x80)
      c = static_cast<char>(f(c));
  return s;
}

Value splitString(const std::string &s, const Value &sepArg,
                  const Value &maxArg, bool fromRight, int line) {
  int64_t maxSplit = maxArg.isNumber() ? maxArg.asInt() : -1;
  List parts;
  if (sepArg.isUndefined() || sepArg.isNone()) {
    // Runs of whitespace, none at the ends.
    std::vector<size_t> offs = codePointOffsets(s);
    std::vector<std::pair<size_t, size_t>> words;
    size_t start = std::string::npos;
    for (size_t k = 0; k + 1 < offs.size(); ++k) {
      bool ws = isPyWhitespace(decodeAt(s, offs[k], s.size()));
      if (!ws && start == std::string::npos)
        start = offs[k];
      if (ws && start != std::string::npos) {
        words.emplace_back(start, offs[k]);
        start = std::string::npos;
      }
    }
    if (start != std::string::npos)
      words.emplace_back(start, s.size());
    if (maxSplit >= 0 && static_cast<int64_t>(words.size()) > maxSplit + 1) {
      // The unsplit remainder keeps its inner whitespace.
      size_t keep = static_cast<size_t>(maxSplit);
      if (!fromRight) {
        for (size_t k = 0; k < keep; ++k)
          parts.push_back(Value::string(
              s.substr(words[k].first, words[k].second - words[k].first)));
        // Python keeps the remainder's trailing whitespace.
        parts.push_back(Value::string(s.substr(words[keep].first)));
      } else {
        size_t firstKept = words.size() - keep;
        parts.push_back(Value::string(s.substr(0, words[firstKept - 1].second)));
        for (size_t k = firstKept; k < words.size(); ++k)
          parts.push_back(Value::string(
              s.substr(words[k].first, words[k].second - words[k].first)));
      }
      return Value::list(std::move(parts));
    }
    for (auto &w : words)
      parts.push_back(Value::string(s.substr(w.first, w.second - w.first)));
    return Value::list(std::move(parts));
  }
  std::string sep = requireString(sepArg, "split separator", line);
  if (sep.empty())
    throw TemplateError(line, "split: empty separator");
  std::vector<std::string> pieces;
  if (!fromRight) {
    size_t pos = 0;
    while (maxSplit < 0 || static_cast<int64_t>(pieces.size()) < maxSplit) {
      size_t hit = s.find(sep, pos);
      if (hit == std::string::npos)
        break;
      pieces.push_back(s.substr(pos, hit - pos));
      pos = hit + sep.size();
    }
    pieces.push_back(s.substr(pos));
  } else {
    size_t end = s.size();
    std::vector<std::string> rev;
    while (maxSplit < 0 || static_cast<int64_t>(rev.size()) < maxSplit) {
      if (end < sep.size())
        break;
      size_t hit = s.rfind(sep, end - sep.size());
      if (hit == std::string::npos)
        break;
      rev.push_back(s.substr(hit + sep.size(), end - hit - sep.size()));
      end = hit;
    }
    rev.push_back(s.substr(0, end));
    pieces.assign(rev.rbegin(), rev.rend());
  }
  for (auto &p : pieces)
    parts.push_back(Value::string(std::move(p)));
  return Value::list(std::move(parts));
}

bool affixMatch(const std::string &s, const Value &arg, bool prefix,
                int line) {
  auto one = [&](const Value &v) {
    std::string a = requireString(
        v, prefix ? "startswith argument" : "endswith argument", line);
    if (a.size() > s.size())
      return false;
    return prefix ? s.compare(0, a.size(), a) == 0
                  : s.compare(s.size() - a.size(), a.size(), a) == 0;
  };
  if (arg.isList()) {
    for (const Value &v : arg.asList())
      if (one(v))
        return true;
    return false;
  }
  return one(arg);
}

bool stringMethod(const std::string &s, const std::string &name,
                  const CallArgs &args, int line, Value &out) {
  if (name == "split" || name == "rsplit") {
    out = splitString(s, argument(args, 0, "sep"), argument(args, 1, "maxsplit"),
                      name == "rsplit", line);
  } else if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Value chars = argument(args, 0, "chars");
    std::string set;
    const std::string *setPtr = nullptr;
    if (!chars.isUndefined() && !chars.isNone()) {
      set = requireString(chars, name.c_str(), line);
      setPtr = &set;
    }
    out = Value::string(
        stripString(s, setPtr, name != "rstrip", name != "lstrip"));
  } else if (name == "startswith" || name == "endswith") {
    Value arg = argument(args, 0, "prefix");
    out = Value::boolean(affixMatch(s, arg, name == "startswith", line));
  } else if (name == "replace") {
    std::string from = requireString(argument(args, 0, "old"), "old", line);
    std::string to = requireString(argument(args, 1, "new"), "new", line);
    Value countArg = argument(args, 2, "count");
    int64_t count = countArg.isNumber() ? countArg.asInt() : -1;
    std::string r;
    size_t pos = 0;
    int64_t done = 0;
    if (from.empty()) {
      // Python inserts `to` around every code point.
      std::vector<size_t> offs = codePointOffsets(s);
      for (size_t k = 0; k + 1 < offs.size(); ++k) {
        if (count < 0 || done++ < count)
          r += to;
        r += s.substr(offs[k], offs[k + 1] - offs[k]);
      }
      if (count < 0 || done < count)
        r += to;
    } else {
      while (count < 0 || done < count) {
        size_t hit = s.find(from, pos);
        if (hit == std::string::npos)
          break;
        r.append(s, pos, hit - pos);
        r += to;
        checkSize(r.size(), line);
        pos = hit + from.size();
        ++done;
      }
      r.append(s, pos, std::string::npos);
    }
    checkSize(r.size(), line);
    out = Value::string(std::move(r));
  } else if (name == "upper") {
    out = Value::string(asciiMap(s, ::toupper));
  } else if (name == "lower") {
    out = Value::string(asciiMap(s, ::tolower));
  } else if (name == "title" || name == "capitalize") {
    out = applyFilter(name, Value::string(s), CallArgs(), line);
  } else if (name == "find" || name == "count") {
    std::string sub = requireString(argument(args, 0, "sub"), name.c_str(), line);
    if (name == "find") {
      size_t hit = s.find(sub);
      out = Value::integer(
          hit == std::string::npos
              ? -1
              : static_cast<int64_t>(codePointCount(s.substr(0, hit))));
    } else {
      int64_t n = 0;
      if (sub.empty()) {
        n = static_cast<int64_t>(codePointCount(s)) + 1;
      } else {
        for (size_t pos = s.find(sub); pos != std::string::npos;
             pos = s.find(sub, pos + sub.size()))
          ++n;
      }
      out = Value::integer(n);
    }
  } else if (name == "join") {
    std::string r;
    bool first = true;
    for (const Value &v : iterate(argument(args, 0, "iterable"), line, "join")) {
      if (!first)
        r += s;
      first = false;
      r += requireString(v, "join item", line);
      checkSize(r.size(), line);
    }
    out = Value::string(std::move(r));
  } else {
    return false;
  }
  return true;
}

bool mappingMethod(const Value &object, const std::string &name,
                   const CallArgs &args, int line, Value &out) {
  const Dict &d = object.asDict();
  if (name == "get") {
    Value key = argument(args, 0, "key");
    const Value *hit = key.isString() ? d.find(key.asString()) : nullptr;
    if (hit) {
      out = *hit;
    } else {
      Value fallback = argument(args, 1, "default");
      out = fallback.isUndefined() ? Value::none() : fallback;
    }
    return true;
  }
  if (name == "items" || name == "keys" || name == "values") {
    List items;
    for (const auto &kv : d.items) {
      if (name == "items")
        items.push_back(Value::list({Value::string(kv.first), kv.second}));
      else if (name == "keys")
        items.push_back(Value::string(kv.first));
      else
        items.push_back(kv.second);
    }
    out = Value::list(std::move(items));
    return true;
  }
  (void)line;
  return false;
}

} // namespace

void dsrt::text::jinja::checkSize(size_t bytes, int line) {
  if (bytes > kMaxValueBytes)
    throw TemplateError(line, "value larger than " +
                                  std::to_string(kMaxValueBytes >> 20) +
                                  " MiB");
}

std::string dsrt::text::jinja::stripString(const std::string &s,
                                           const std::string *chars, bool left,
                                           bool right) {
  std::vector<uint32_t> set;
  if (chars) {
    std::vector<size_t> offs = codePointOffsets(*chars);
    for (size_t k = 0; k + 1 < offs.size(); ++k)
      set.push_back(decodeAt(*chars, offs[k], chars->size()));
  }
  auto strip = [&](uint32_t cp) {
    if (!chars)
      return isPyWhitespace(cp);
    for (uint32_t c : set)
      if (c == cp)
        return true;
    return false;
  };
  std::vector<size_t> offs = codePointOffsets(s);
  size_t b = 0, e = offs.size() - 1; // code point indices [b, e)
  while (left && b < e && strip(decodeAt(s, offs[b], s.size())))
    ++b;
  while (right && e > b && strip(decodeAt(s, offs[e - 1], s.size())))
    --e;
  return s.substr(offs[b], offs[e] - offs[b]);
}

std::vector<Value> dsrt::text::jinja::iterate(const Value &v, int line,
                                              const char *what) {
  switch (v.kind()) {
  case Value::Kind::Undefined:
    return {}; // Jinja's Undefined iterates as empty
  case Value::Kind::List:
    return v.asList();
  case Value::Kind::Dict: {
    std::vector<Value> keys;
    for (const auto &kv : v.asDict().items)
      keys.push_back(Value::string(kv.first));
    return keys;
  }
  case Value::Kind::String: {
    std::vector<Value> chars;
    const std::string &s = v.asString();
    std::vector<size_t> offs = codePointOffsets(s);
    for (size_t k = 0; k + 1 < offs.size(); ++k)
      chars.push_back(Value::string(s.substr(offs[k], offs[k + 1] - offs[k])));
    return chars;
  }
  default:
    throw TemplateError(line, std::string(what) + ": a " + v.typeName() +
                                  " value is not iterable");
  }
}

Value dsrt::text::jinja::argument(const CallArgs &args, size_t index,
                                  const char *keyword) {
  if (index < args.positional.size())
    return args.positional[index];
  for (const auto &kv : args.keyword)
    if (kv.first == keyword)
      return kv.second;
  return Value();
}

bool dsrt::text::jinja::callMethod(const Value &object, const std::string &name,
                                   const CallArgs &args, int line, Value &out) {
  if (object.isString())
    return stringMethod(object.asString(), name, args, line, out);
  if (object.isMapping())
    return mappingMethod(object, name, args, line, out);
  return false;
}

std::vector<std::pair<std::string, Value>>
dsrt::text::jinja::globalFunctions(std::vector<std::shared_ptr<Dict>> *roots) {
  std::vector<std::pair<std::string, Value>> g;
  g.emplace_back("namespace", Value::function("namespace", [roots](
                                                             const CallArgs &a) {
    auto d = std::make_shared<Dict>();
    for (const Value &p : a.positional) {
      if (!p.isMapping())
        throw TemplateError(0, "namespace() takes a dict or keyword arguments");
      for (const auto &kv : p.asDict().items)
        d->set(kv.first, kv.second);
    }
    for (const auto &kv : a.keyword)
      d->set(kv.first, kv.second);
    roots->push_back(d);
    return Value::namespaceObject(d);
  }));
  g.emplace_back("dict", Value::function("dict", [](const CallArgs &a) {
    auto d = std::make_shared<Dict>();
    for (const Value &p : a.positional) {
      if (!p.isMapping())
        throw TemplateError(0, "dict() takes a dict or keyword arguments");
      for (const auto &kv : p.asDict().items)
        d->set(kv.first, kv.second);
    }
    for (const auto &kv : a.keyword)
      d->set(kv.first, kv.second);
    return Value::dict(d);
  }));
  g.emplace_back("range", Value::function("range", [](const CallArgs &a) {
    if (a.positional.empty() || a.positional.size() > 3 || !a.keyword.empty())
      throw TemplateError(0, "range() takes 1 to 3 integer arguments");
    for (const Value &v : a.positional)
      if (!v.isInt() && !v.isBool())
        throw TemplateError(0, std::string("range() argument must be an int, "
                                           "not ") +
                                   v.typeName());
    int64_t start = 0, stop, step = 1;
    if (a.positional.size() == 1) {
      stop = a.positional[0].asInt();
    } else {
      start = a.positional[0].asInt();
      stop = a.positional[1].asInt();
      if (a.positional.size() == 3)
        step = a.positional[2].asInt();
    }
    if (step == 0)
      throw TemplateError(0, "range() step must not be zero");
    List items;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
      if (static_cast<int64_t>(items.size()) >= kMaxRange)
        throw TemplateError(0, "range() is limited to " +
                                   std::to_string(kMaxRange) + " items");
      items.push_back(Value::integer(i));
      if ((step > 0 && i > INT64_MAX - step) ||
          (step < 0 && i < INT64_MIN - step))
        break;
    }
    return Value::list(std::move(items));
  }));
  g.emplace_back("raise_exception",
                 Value::function("raise_exception", [](const CallArgs &a) {
                   Value msg = argument(a, 0, "message");
                   throw TemplateError(0, "raise_exception: " + msg.str());
                   return Value();
                 }));
  return g;
}
