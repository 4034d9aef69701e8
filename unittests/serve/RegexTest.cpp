//===- RegexTest.cpp - regular expressions as automata over code points ---===//
//
// The automaton against std::regex (ECMAScript, the same syntax) on random
// strings, and what the token walk relies on: every prefix of a match is
// live, a dead prefix has no match after it, UTF-8 read byte by byte.
//
//===----------------------------------------------------------------------===//

#include "Regex.h"

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <regex>

using namespace dsserve;

namespace {

std::shared_ptr<const Regex> compile(const std::string &p,
                                     Regex::Mode m = Regex::Mode::Whole) {
  std::string error;
  auto rx = Regex::compile(p, m, error);
  EXPECT_TRUE(rx) << p << ": " << error;
  return rx;
}

/// The state after `text`'s bytes, kDead once no match can go on.
int32_t run(const Regex &rx, const std::string &text) {
  int32_t state = rx.start(), cp = 0, owed = 0;
  for (char c : text)
    if (!regexTakeByte(rx, state, cp, owed, uint8_t(c)))
      return Regex::kDead;
  return owed ? Regex::kDead : state;
}

bool matches(const Regex &rx, const std::string &text) {
  int32_t s = run(rx, text);
  return s != Regex::kDead && rx.accepting(s);
}

std::string refused(const std::string &p, Regex::Mode m = Regex::Mode::Whole) {
  std::string error;
  EXPECT_FALSE(Regex::compile(p, m, error)) << p;
  return error;
}

} // namespace

TEST(Regex, WholeMatches) {
  auto phone = compile(R"(\d{3}-\d{4})");
  EXPECT_TRUE(matches(*phone, "555-1234"));
  EXPECT_FALSE(matches(*phone, "55-1234"));
  EXPECT_FALSE(matches(*phone, "555-12345"));
  EXPECT_NE(run(*phone, "555-"), Regex::kDead);
  EXPECT_EQ(run(*phone, "5a"), Regex::kDead);

  auto ident = compile("[A-Za-z_][A-Za-z0-9_]*");
  EXPECT_TRUE(matches(*ident, "_x9"));
  EXPECT_FALSE(matches(*ident, "9x"));

  auto pets = compile("(?:cat|dog)s?|(?<n>ab)+|x{2,}");
  for (const char *yes : {"cat", "dogs", "abab", "xx", "xxxx"})
    EXPECT_TRUE(matches(*pets, yes)) << yes;
  for (const char *no : {"cats!", "aba", "x", ""})
    EXPECT_FALSE(matches(*pets, no)) << no;

  // Lazy forms match the same strings; braces that are no quantifier are
  // literal, as ECMAScript reads them.
  EXPECT_TRUE(matches(*compile("a+?b??"), "aaa"));
  EXPECT_TRUE(matches(*compile("a{"), "a{"));
  EXPECT_TRUE(matches(*compile("x{1,a}"), "x{1,a}"));
  EXPECT_TRUE(matches(*compile(R"(\{"a"\})"), R"({"a"})"));
  // Anchors at the ends of a whole match change nothing.
  EXPECT_TRUE(matches(*compile("^ab$"), "ab"));
  EXPECT_TRUE(matches(*compile("^$"), ""));
}

TEST(Regex, SearchLikeJsonSchemaPattern) {
  auto S = Regex::Mode::Search;
  auto abc = compile("abc", S);
  EXPECT_TRUE(matches(*abc, "xxabcxx"));
  EXPECT_FALSE(matches(*abc, "xxabxcx"));
  EXPECT_TRUE(matches(*compile("^abc", S), "abcx"));
  EXPECT_FALSE(matches(*compile("^abc", S), "xabc"));
  EXPECT_TRUE(matches(*compile("abc$", S), "xabc"));
  EXPECT_FALSE(matches(*compile("abc$", S), "abcx"));
  auto either = compile("^a|b$", S);
  EXPECT_TRUE(matches(*either, "ax"));
  EXPECT_TRUE(matches(*either, "xb"));
  EXPECT_FALSE(matches(*either, "xa"));
  // Unanchored, anything goes around the match, newlines included.
  EXPECT_TRUE(matches(*compile("b", S), "a\nb\n"));
  EXPECT_TRUE(matches(*compile("", S), "anything"));
}

TEST(Regex, UnicodeByteByByte) {
  auto greek = compile("[α-ω]+");
  EXPECT_TRUE(matches(*greek, "αβγ"));
  EXPECT_FALSE(matches(*greek, "αbγ"));
  EXPECT_TRUE(matches(*compile(R"(\u00e9\u{1F600}\x41)"), "é😀A"));
  // `.` is any code point but line terminators.
  auto dot = compile(".");
  EXPECT_TRUE(matches(*dot, "😀"));
  EXPECT_FALSE(matches(*dot, "\n"));
  EXPECT_FALSE(matches(*dot, "\xE2\x80\xA8")); // U+2028
  // A lead byte is taken only where some character it begins can come.
  int32_t state = greek->start(), cp = 0, owed = 0;
  EXPECT_TRUE(regexTakeByte(*greek, state, cp, owed, 0xCE)); // α..ο
  EXPECT_FALSE(regexTakeByte(*greek, state, cp, owed, 'x'));
  state = greek->start(), cp = 0, owed = 0;
  EXPECT_FALSE(regexTakeByte(*greek, state, cp, owed, 0xE2)); // U+2000..
  EXPECT_FALSE(regexTakeByte(*greek, state, cp, owed, 0x80)); // no lead
  auto punct = compile("[\\u2000-\\u2fff]");
  state = punct->start(), cp = 0, owed = 0;
  EXPECT_TRUE(regexTakeByte(*punct, state, cp, owed, 0xE2));
  // Negated classes and \s, \w, \d over all of Unicode.
  auto email = compile(R"([^@\s]+@[^@\s]+\.[a-z]{2,})");
  EXPECT_TRUE(matches(*email, "jörg@例え.com"));
  EXPECT_FALSE(matches(*email, "a b@c.com"));
  EXPECT_FALSE(matches(*compile(R"(\S+)"), "a\u3000b")); // ideographic space
}

TEST(Regex, RoomToEndAMatch) {
  // {2,4}: two to four more characters from the start, then none.
  auto rx = compile("a{2,4}");
  EXPECT_TRUE(rx->canEnd(rx->start(), 2, 4));
  EXPECT_TRUE(rx->canEnd(rx->start(), 4, 9));
  EXPECT_FALSE(rx->canEnd(rx->start(), 0, 1));
  EXPECT_FALSE(rx->canEnd(rx->start(), 5, 9));
  int32_t s = run(*rx, "aaaa");
  EXPECT_TRUE(rx->canEnd(s, 0, 0));
  EXPECT_FALSE(rx->canEnd(s, 1, 9));
  // A loop on the way: as long as wanted.
  auto loop = compile("ab*c");
  EXPECT_TRUE(loop->canEnd(loop->start(), 1000, INT64_MAX));
  EXPECT_FALSE(loop->canEnd(loop->start(), 0, 1));
  // Byte by byte: a lead byte is refused where no character it starts
  // leaves a match that fits.
  auto two = compile("é|éé");
  int32_t st = two->start(), cp = 0, owed = 0;
  EXPECT_FALSE(regexTakeByte(*two, st, cp, owed, 0xC3, 2, 9));
  st = two->start(), cp = 0, owed = 0;
  EXPECT_TRUE(regexTakeByte(*two, st, cp, owed, 0xC3, 1, 9));
  EXPECT_FALSE(regexTakeByte(*two, st, cp, owed, 0xA9, 2, 9));
}

TEST(Regex, RefusedWithTheConstructNamed) {
  EXPECT_NE(refused("(a").find("missing ')'"), std::string::npos);
  EXPECT_NE(refused("a)").find("unmatched ')'"), std::string::npos);
  EXPECT_NE(refused("*a").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(refused("a**").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(refused("{2}").find("nothing to repeat"), std::string::npos);
  EXPECT_NE(refused(R"((a)\1)").find("backreferences"), std::string::npos);
  EXPECT_NE(refused("(?=a)a").find("lookaround"), std::string::npos);
  EXPECT_NE(refused("(?<!a)b").find("lookaround"), std::string::npos);
  EXPECT_NE(refused("(?i)a").find("inline flags"), std::string::npos);
  EXPECT_NE(refused(R"(\bx)").find("word boundaries"), std::string::npos);
  EXPECT_NE(refused(R"(\p{L})").find("property"), std::string::npos);
  EXPECT_NE(refused("[z-a]").find("out of order"), std::string::npos);
  EXPECT_NE(refused(R"([\d-z])").find("range"), std::string::npos);
  EXPECT_NE(refused("[ab").find("']'"), std::string::npos);
  EXPECT_NE(refused("a{3,2}").find("below"), std::string::npos);
  EXPECT_NE(refused("a{1001}").find("above"), std::string::npos);
  EXPECT_NE(refused(R"(\q)").find("unknown escape"), std::string::npos);
  EXPECT_NE(refused(R"(\x4)").find("escape"), std::string::npos);
  EXPECT_NE(refused("(^a)", Regex::Mode::Search).find("'^'"),
            std::string::npos);
  EXPECT_NE(refused("a^b").find("'^'"), std::string::npos);
  EXPECT_NE(refused("[]").find("matches no string"), std::string::npos);
  EXPECT_NE(refused("a[^\\s\\S]").find("matches no string"), std::string::npos);
  // 2^21 states in a deterministic automaton: refused, not built.
  EXPECT_NE(refused("(a|b)*a(a|b){20}").find("automaton states"),
            std::string::npos);
  EXPECT_NE(refused("((a{1000}){1000}){10}").find("too large"),
            std::string::npos);
  EXPECT_NE(refused("\xff").find("UTF-8"), std::string::npos);
}

// Against std::regex's ECMAScript grammar on random ASCII strings: whole
// matches, searches, and the liveness the token walk relies on.
TEST(Regex, AgreesWithStdRegexOnRandomStrings) {
  const char *patterns[] = {
      R"(a*b+c?)",
      R"((ab|a)(bc|c)*)",
      R"([a-c]{2,3}d?)",
      R"([^b]+b)",
      R"(\d+(\.\d{1,2})?)",
      R"(a.c|\s+)",
      R"((?:a|b){3})",
      R"(x{0,2}y{1,}z{2})",
      R"(\w\W\d\D)",
      R"([-a]+[b-]*)",
      R"(a|)",
      R"((a+)+b)",
      R"([.][\]\\]?)",
      R"(\x61\u0062c)",
      R"(^(ab)*$)",
      R"(a?b?c?d?)",
      R"([\s\d]+)",
      R"([ab]*a[ab]{3})",
  };
  std::mt19937 rng(7);
  const std::string alphabet = "abcdxyz0129. -]\\\n\t_";
  for (const char *p : patterns) {
    auto whole = compile(p), search = compile(p, Regex::Mode::Search);
    std::regex ref(p, std::regex::ECMAScript);
    for (int i = 0; i < 3000; ++i) {
      std::string s;
      for (int n = int(rng() % 9); n > 0; --n)
        s += alphabet[rng() % (i % 2 ? 4 : alphabet.size())];
      bool want = std::regex_match(s, ref);
      ASSERT_EQ(matches(*whole, s), want) << p << " on '" << s << "'";
      ASSERT_EQ(matches(*search, s), std::regex_search(s, ref))
          << p << " searching '" << s << "'";
      if (want) // every prefix of a match is live
        for (size_t k = 0; k <= s.size(); ++k)
          ASSERT_NE(run(*whole, s.substr(0, k)), Regex::kDead)
              << p << " prefix of '" << s << "'";
      if (run(*whole, s) == Regex::kDead) // nothing after it matches
        for (int j = 0; j < 20; ++j) {
          std::string t = s;
          for (int n = int(rng() % 6); n > 0; --n)
            t += alphabet[rng() % alphabet.size()];
          ASSERT_FALSE(std::regex_match(t, ref)) << p << " after '" << s << "'";
        }
    }
  }
}

// The integers' patterns against the ranges themselves: every integer in a
// window around the bounds is matched exactly when it lies in the range,
// and no other spelling ("007", "-0", "+1") is.
TEST(Regex, IntegerRangesMatchExactlyTheirIntegers) {
  std::mt19937 rng(3);
  std::vector<std::pair<std::optional<int64_t>, std::optional<int64_t>>>
      ranges = {{0, 150},
                {1, 1},
                {-20, -5},
                {-1, 1},
                {10, 2000},
                {0, 9},
                {0, 10},
                {99, 101},
                {std::nullopt, 5},
                {10, std::nullopt},
                {0, std::nullopt},
                {-7, std::nullopt},
                {std::nullopt, -12},
                {-123456, 654321},
                {std::nullopt, std::nullopt}};
  for (int i = 0; i < 60; ++i) {
    int64_t a = int64_t(rng() % 200000) - 100000, b = a + int64_t(rng() % 5000);
    ranges.push_back({a, b});
  }
  for (const auto &[lo, hi] : ranges) {
    std::string p = integerRangePattern(lo, hi);
    auto rx = compile(p);
    ASSERT_TRUE(rx) << p;
    int64_t from = (lo ? *lo : hi ? *hi : 0) - 1200;
    int64_t to = (hi ? *hi : lo ? *lo : 0) + 1200;
    for (int64_t v = from; v <= to; ++v) {
      bool in = (!lo || v >= *lo) && (!hi || v <= *hi);
      ASSERT_EQ(matches(*rx, std::to_string(v)), in) << p << " on " << v;
    }
    for (const char *bad : {"007", "-0", "+1", "", "-", "1.0", "1e3"})
      EXPECT_FALSE(matches(*rx, bad)) << p << " on '" << bad << "'";
  }
}

// A request's pattern is compiled on the server: whatever it is, it
// compiles or is refused with a message. Many empty alternatives make every
// subset's epsilon closure long, and a large automaton over many classes
// makes closures many: the fuzzer's pattern below ran past its 10 s limit
// under the fuzzer's instrumentation (0.3 s here) when closures were not
// counted against the work bound and each cleared a mark per NFA state.
// The time itself is the fuzzer's to check (a bound here would fail under
// the sanitizers first); this holds what compiles and what is refused.
TEST(Regex, HostilePatternsCompileOrAreRefused) {
  const std::string pipes(120, '|');
  const std::string fuzzed =
      std::string("0.5e5000e5000e0000010048|||||||\x01\x00\x00 ", 35) +
      std::string(41, '|') + ".5e5000e5000e0000010048|||||||" +
      std::string("\x01\x00\x00 ", 4) + std::string(50, '|') +
      " 06077`82151H||||||||| 06077`82151H5511s";
  const std::string wide = "(abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
                           "KLMNOPQRSTUVWXYZ){800}";
  for (Regex::Mode m : {Regex::Mode::Whole, Regex::Mode::Search}) {
    for (const std::string &p :
         {"(" + pipes + "a.b.c.d.e.f)", pipes + "x.y.z" + pipes + "q.r.s",
          "(" + pipes + ")*(a|b)*a(a|b){9}"}) {
      std::string error;
      EXPECT_TRUE(Regex::compile(p, m, error)) << error;
    }
    EXPECT_NE(refused(wide, m).find("automaton states"), std::string::npos);
  }
  EXPECT_TRUE(compile(fuzzed, Regex::Mode::Whole));
  EXPECT_NE(refused(fuzzed, Regex::Mode::Search).find("automaton states"),
            std::string::npos);
}
