//===- RegexSyntax.cpp - regular expressions' text as a tree --------------===//

#include "RegexSyntax.h"

#include <algorithm>

namespace dsserve::regex {
namespace {

constexpr int64_t kMaxRepeat = 1000;

CharSet normalize(CharSet s) {
  std::sort(s.begin(), s.end());
  CharSet out;
  for (const auto &r : s) {
    if (!out.empty() && r.first <= out.back().second + 1)
      out.back().second = std::max(out.back().second, r.second);
    else
      out.push_back(r);
  }
  return out;
}

/// The code points outside `s`, surrogates left out (no text holds them).
CharSet complement(const CharSet &in) {
  CharSet s = in;
  s.push_back({0xD800, 0xDFFF});
  s = normalize(std::move(s));
  CharSet out;
  uint32_t from = 0;
  for (const auto &[lo, hi] : s) {
    if (lo > from)
      out.push_back({from, lo - 1});
    from = hi + 1;
  }
  if (from <= kMaxCodePoint)
    out.push_back({from, kMaxCodePoint});
  return out;
}

CharSet digits() { return {{'0', '9'}}; }
CharSet wordChars() { return {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}}; }
CharSet spaces() { // ECMAScript's \s: white space and line terminators
  return normalize({{'\t', '\r'},
                    {' ', ' '},
                    {0xA0, 0xA0},
                    {0x1680, 0x1680},
                    {0x2000, 0x200A},
                    {0x2028, 0x2029},
                    {0x202F, 0x202F},
                    {0x205F, 0x205F},
                    {0x3000, 0x3000},
                    {0xFEFF, 0xFEFF}});
}
CharSet anyButLineEnds() {
  return complement(normalize({{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}}));
}

class Parser {
public:
  explicit Parser(const std::string &p) : p(p) {}
  std::vector<Tree> nodes;
  std::vector<CharSet> sets;
  std::string error;

  /// The whole pattern; -1 on error.
  int parse() {
    int root = alternation();
    if (error.empty() && at < p.size())
      fail("unmatched ')'");
    return error.empty() ? root : -1;
  }

private:
  const std::string &p;
  size_t at = 0;

  void fail(const std::string &why) {
    if (error.empty())
      error = why + " at offset " + std::to_string(at);
  }
  int add(Tree t) {
    nodes.push_back(std::move(t));
    return int(nodes.size()) - 1;
  }
  int addSet(CharSet s) {
    sets.push_back(normalize(std::move(s)));
    return add({Tree::Set, int(sets.size()) - 1});
  }
  bool more() const { return at < p.size() && error.empty(); }

  /// One UTF-8 character of the pattern.
  uint32_t codePoint() {
    unsigned char c = uint8_t(p[at++]);
    if (c < 0x80)
      return c;
    int n = c < 0xC2 || c > 0xF4 ? -1 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : 1;
    uint32_t cp = n < 0 ? 0 : c & (0x3F >> n);
    for (int i = 0; i < n; ++i) {
      if (at >= p.size() || (uint8_t(p[at]) & 0xC0) != 0x80) {
        n = -1;
        break;
      }
      cp = (cp << 6) | (uint8_t(p[at++]) & 0x3F);
    }
    if (n < 0 || cp > kMaxCodePoint) {
      fail("the pattern is not valid UTF-8");
      return 0;
    }
    return cp;
  }

  int alternation() {
    std::vector<int> alts{concatenation()};
    while (more() && p[at] == '|') {
      ++at;
      alts.push_back(concatenation());
    }
    return alts.size() == 1 ? alts[0] : add({Tree::Alt, -1, alts});
  }

  int concatenation() {
    std::vector<int> parts;
    while (more() && p[at] != '|' && p[at] != ')')
      parts.push_back(quantified());
    return add({Tree::Concat, -1, parts});
  }

  /// {n}, {n,}, {n,m} at `at` (just after '{'); false (at unchanged) where
  /// the brace is not a quantifier, as ECMAScript reads it then.
  bool braces(int64_t &min, int64_t &max) {
    size_t i = at;
    auto number = [&](int64_t &v) {
      size_t s = i;
      v = 0;
      while (i < p.size() && p[i] >= '0' && p[i] <= '9' && v <= kMaxRepeat)
        v = v * 10 + (p[i++] - '0');
      return i > s;
    };
    if (!number(min))
      return false;
    max = min;
    if (i < p.size() && p[i] == ',') {
      ++i;
      max = -1;
      if (i < p.size() && p[i] != '}' && !number(max))
        return false;
    }
    if (i >= p.size() || p[i] != '}')
      return false;
    at = i + 1;
    return true;
  }

  int quantified() {
    int atom = this->atom();
    while (more()) {
      int64_t min, max;
      char c = p[at];
      if (c == '*' || c == '+' || c == '?') {
        ++at;
        min = c == '+' ? 1 : 0;
        max = c == '?' ? 1 : -1;
      } else if (c == '{' && (++at, braces(min, max))) {
        if (min > kMaxRepeat || max > kMaxRepeat)
          fail("a repetition count above " + std::to_string(kMaxRepeat));
        else if (max >= 0 && max < min)
          fail("a repetition {n,m} with m below n");
      } else {
        if (c == '{')
          --at; // a literal brace: the atom loop reads it
        break;
      }
      Tree::Kind k = nodes[size_t(atom)].kind;
      if (k == Tree::Start || k == Tree::End)
        fail("nothing to repeat");
      if (more() && p[at] == '?') // lazy: the same strings
        ++at;
      atom = add({Tree::Repeat, -1, {atom}, min, max});
      if (more() && (p[at] == '*' || p[at] == '+' || p[at] == '?'))
        fail("nothing to repeat (possessive and doubled quantifiers are "
             "not supported)");
    }
    return atom;
  }

  int atom() {
    char c = p[at];
    switch (c) {
    case '(':
      return group();
    case '[':
      ++at;
      return addSet(charClass());
    case '.':
      ++at;
      return addSet(anyButLineEnds());
    case '^':
      ++at;
      return add({Tree::Start});
    case '$':
      ++at;
      return add({Tree::End});
    case '\\':
      ++at;
      return addSet(escape(false));
    case '*':
    case '+':
    case '?':
      fail("nothing to repeat");
      return add({Tree::Concat});
    case '{': {
      int64_t min, max;
      size_t save = ++at;
      if (braces(min, max)) {
        at = save - 1;
        fail("nothing to repeat");
      }
      return addSet({{'{', '{'}});
    }
    default: {
      uint32_t cp = codePoint();
      return addSet({{cp, cp}});
    }
    }
  }

  int group() {
    ++at; // '('
    if (at < p.size() && p[at] == '?') {
      std::string head = p.substr(at, 3);
      if (head.rfind("?:", 0) == 0) {
        at += 2;
      } else if (head.rfind("?<", 0) == 0 && head != "?<=" && head != "?<!") {
        skipName();
      } else if (head.rfind("?P<", 0) == 0) {
        skipName();
      } else if (head.rfind("?=", 0) == 0 || head.rfind("?!", 0) == 0 ||
                 head == "?<=" || head == "?<!") {
        fail("lookaround assertions are not supported");
      } else {
        fail("inline flags and other (?...) groups are not supported");
      }
    }
    int inner = alternation();
    if (!more() || p[at] != ')')
      fail("missing ')'");
    else
      ++at;
    return inner;
  }

  void skipName() {
    size_t close = p.find('>', at);
    if (close == std::string::npos)
      return fail("an unterminated group name");
    at = close + 1;
  }

  /// Hex digits: exactly n, or (n < 0) up to '}' of \u{...}.
  uint32_t hex(int n) {
    uint32_t v = 0;
    int got = 0;
    while (at < p.size() && (n < 0 ? p[at] != '}' : got < n)) {
      char c = p[at];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0 || v > kMaxCodePoint)
        break;
      v = v * 16 + uint32_t(d);
      ++at;
      ++got;
    }
    if ((n >= 0 && got != n) || (n < 0 && (got == 0 || at >= p.size())) ||
        v > kMaxCodePoint)
      fail("a malformed \\x or \\u escape");
    if (n < 0 && at < p.size())
      ++at; // '}'
    return v;
  }

  /// After '\': the set it stands for. In a class `\b` is backspace.
  CharSet escape(bool inClass) {
    if (at >= p.size()) {
      fail("a pattern ending in '\\'");
      return {};
    }
    char c = p[at++];
    auto one = [](uint32_t cp) { return CharSet{{cp, cp}}; };
    switch (c) {
    case 'd':
      return digits();
    case 'D':
      return complement(digits());
    case 'w':
      return wordChars();
    case 'W':
      return complement(normalize(wordChars()));
    case 's':
      return spaces();
    case 'S':
      return complement(spaces());
    case 't':
      return one('\t');
    case 'n':
      return one('\n');
    case 'r':
      return one('\r');
    case 'f':
      return one('\f');
    case 'v':
      return one('\v');
    case 'x':
      return one(hex(2));
    case 'u':
      if (at < p.size() && p[at] == '{') {
        ++at;
        return one(hex(-1));
      }
      return one(hex(4));
    case 'b':
      if (inClass)
        return one('\b');
      [[fallthrough]];
    case 'B':
      fail("word boundaries (\\b, \\B) are not supported");
      return {};
    case 'p':
    case 'P':
      fail("Unicode property classes (\\p{...}) are not supported");
      return {};
    case 'k':
      fail("backreferences are not supported");
      return {};
    case '0':
      if (at < p.size() && p[at] >= '0' && p[at] <= '9')
        fail("octal escapes are not supported");
      return one(0);
    default:
      break;
    }
    if (c >= '1' && c <= '9') {
      fail("backreferences are not supported");
      return {};
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      fail(std::string("an unknown escape \\") + c);
      return {};
    }
    --at; // any other character stands for itself
    return one(codePoint());
  }

  /// After '[': the class up to its ']'.
  CharSet charClass() {
    bool negate = at < p.size() && p[at] == '^';
    if (negate)
      ++at;
    CharSet s;
    while (true) {
      if (!more()) {
        fail("a class missing its ']'");
        return {};
      }
      if (p[at] == ']') {
        ++at;
        break;
      }
      CharSet lo = classAtom();
      bool range = at + 1 < p.size() && p[at] == '-' && p[at + 1] != ']';
      if (!range) {
        s.insert(s.end(), lo.begin(), lo.end());
        continue;
      }
      ++at; // '-'
      CharSet hi = classAtom();
      if (lo.size() != 1 || hi.size() != 1 || lo[0].first != lo[0].second ||
          hi[0].first != hi[0].second) {
        fail("a class range whose end is a class (\\d, \\w, ...)");
        return {};
      }
      if (hi[0].first < lo[0].first) {
        fail("a class range out of order");
        return {};
      }
      s.push_back({lo[0].first, hi[0].first});
    }
    s = normalize(std::move(s));
    return negate ? complement(s) : s;
  }

  CharSet classAtom() {
    if (p[at] == '\\') {
      ++at;
      return escape(true);
    }
    uint32_t cp = codePoint();
    return {{cp, cp}};
  }
};

/// Checks where `^` and `$` are (only first / last in a top-level
/// alternative) and, searching, puts "anything" where they are not.
bool placeAnchors(ParsedPattern &ps, int root, Regex::Mode mode,
                  std::string &error) {
  std::vector<int> alts = ps.nodes[size_t(root)].kind == Tree::Alt
                              ? ps.nodes[size_t(root)].kids
                              : std::vector<int>{root};
  // Anchors elsewhere (in groups, mid-pattern) would need assertions.
  std::vector<int> todo;
  for (int a : alts) {
    const Tree &t = ps.nodes[size_t(a)];
    for (size_t i = 0; i < t.kids.size(); ++i) {
      Tree::Kind k = ps.nodes[size_t(t.kids[i])].kind;
      bool ok = (k == Tree::Start && i == 0) ||
                (k == Tree::End && i + 1 == t.kids.size());
      if (!ok)
        todo.push_back(t.kids[i]);
    }
  }
  while (!todo.empty()) {
    const Tree &t = ps.nodes[size_t(todo.back())];
    todo.pop_back();
    if (t.kind == Tree::Start || t.kind == Tree::End) {
      error = "'^' and '$' are supported only at the pattern's start and "
              "end (or its top-level alternatives')";
      return false;
    }
    todo.insert(todo.end(), t.kids.begin(), t.kids.end());
  }
  if (mode == Regex::Mode::Whole)
    return true;
  ps.sets.push_back(complement({}));
  int anyChar = int(ps.sets.size()) - 1;
  auto anything = [&] {
    ps.nodes.push_back({Tree::Set, anyChar});
    int c = int(ps.nodes.size()) - 1;
    ps.nodes.push_back({Tree::Repeat, -1, {c}, 0, -1});
    return int(ps.nodes.size()) - 1;
  };
  for (int a : alts) { // each a Concat (Parser::alternation)
    std::vector<int> kids = ps.nodes[size_t(a)].kids;
    bool starts =
        !kids.empty() && ps.nodes[size_t(kids[0])].kind == Tree::Start;
    bool ends =
        !kids.empty() && ps.nodes[size_t(kids.back())].kind == Tree::End;
    if (!starts)
      kids.insert(kids.begin(), anything());
    if (!ends)
      kids.push_back(anything());
    ps.nodes[size_t(a)].kids = std::move(kids);
  }
  return true;
}

} // namespace

bool parsePattern(const std::string &pattern, Regex::Mode mode,
                  ParsedPattern &out, std::string &error) {
  Parser ps(pattern);
  int root = ps.parse();
  if (root < 0) {
    error = ps.error;
    return false;
  }
  out.nodes = std::move(ps.nodes);
  out.sets = std::move(ps.sets);
  out.root = root;
  return placeAnchors(out, root, mode, error);
}

} // namespace dsserve::regex

namespace dsserve {

namespace {

/// Digit strings of one length m from lo to hi (leading zeros allowed).
std::string fixedWidthRange(const std::string &lo, const std::string &hi) {
  size_t m = lo.size();
  if (m == 0 || lo == hi)
    return lo;
  if (lo[0] == hi[0])
    return std::string(1, lo[0]) + fixedWidthRange(lo.substr(1), hi.substr(1));
  std::string rest = m > 1 ? "\\d{" + std::to_string(m - 1) + "}" : "";
  bool lowFull = lo.find_first_not_of('0', 1) == std::string::npos;
  bool highFull = hi.find_first_not_of('9', 1) == std::string::npos;
  std::vector<std::string> alts;
  char from = lo[0], to = hi[0];
  if (!lowFull) { // lo[0] followed by lo's rest up to 99..9
    alts.push_back(std::string(1, lo[0]) +
                   fixedWidthRange(lo.substr(1), std::string(m - 1, '9')));
    ++from;
  }
  if (!highFull)
    --to;
  if (from <= to)
    alts.push_back("[" + std::string(1, from) + "-" + std::string(1, to) + "]" +
                   rest);
  if (!highFull) // hi[0] followed by 00..0 up to hi's rest
    alts.push_back(std::string(1, hi[0]) +
                   fixedWidthRange(std::string(m - 1, '0'), hi.substr(1)));
  std::string out = "(?:";
  for (size_t i = 0; i < alts.size(); ++i)
    out += (i ? "|" : "") + alts[i];
  return out + ")";
}

/// The non-negative integers in [lo, hi] (hi missing: unbounded), JSON's
/// decimal form.
std::string naturalRange(int64_t lo, std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  std::string a = std::to_string(lo);
  for (size_t digits = a.size();; ++digits) {
    // Numbers of `digits` digits within [lo, hi].
    std::string first =
        digits == a.size() ? a : "1" + std::string(digits - 1, '0');
    if (!hi) {
      if (digits > a.size() || (lo == 0 && digits == 1)) {
        // Every longer number: one loop covers them all.
        if (lo == 0 && digits == 1)
          alts.push_back("0");
        alts.push_back("[1-9]\\d{" + std::to_string(digits - 1) + ",}");
        break;
      }
      alts.push_back(fixedWidthRange(first, std::string(digits, '9')));
      continue;
    }
    std::string b = std::to_string(*hi);
    if (digits > b.size())
      break;
    std::string last = digits == b.size() ? b : std::string(digits, '9');
    alts.push_back(fixedWidthRange(first, last));
  }
  std::string out;
  for (size_t i = 0; i < alts.size(); ++i)
    out += (i ? "|" : "") + alts[i];
  return alts.size() > 1 ? "(?:" + out + ")" : out;
}

} // namespace

std::string integerRangePattern(std::optional<int64_t> lo,
                                std::optional<int64_t> hi) {
  std::vector<std::string> alts;
  if (!lo || *lo < 0) { // the negatives: "-" and their magnitudes
    int64_t nearest = hi && *hi < -1 ? -*hi : 1;
    std::optional<int64_t> furthest;
    if (lo)
      furthest = -*lo;
    alts.push_back("-" + naturalRange(nearest, furthest));
  }
  if (!hi || *hi >= 0)
    alts.push_back(naturalRange(lo && *lo > 0 ? *lo : 0, hi));
  std::string out;
  for (size_t i = 0; i < alts.size(); ++i)
    out += (i ? "|" : "") + alts[i];
  return out;
}

} // namespace dsserve
