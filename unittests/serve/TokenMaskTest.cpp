//===- TokenMaskTest.cpp - structured outputs' token masks ----------------===//

#include "TokenMask.h"

#include <gtest/gtest.h>

#include <random>

using namespace dsserve;

namespace {

/// A vocabulary of given byte strings; token 0 is a special eos.
class ListTokenizer : public Tokenizer {
public:
  explicit ListTokenizer(std::vector<std::string> t) : toks(std::move(t)) {}
  bool encode(const std::string &, bool, std::vector<int32_t> &,
              std::string &) override {
    return false;
  }
  bool renderChat(const ChatPrompt &, std::vector<int32_t> &,
                  std::string &) override {
    return false;
  }
  std::unique_ptr<TextStream> newStream(bool) override { return nullptr; }
  std::string tokenBytes(int32_t t) override {
    return t >= 0 && size_t(t) < toks.size() ? toks[size_t(t)] : "";
  }
  bool isSpecial(int32_t t) override { return t == 0; }
  bool decode(const std::vector<int32_t> &, std::string &,
              std::string &) override {
    return false;
  }
  std::vector<std::string> toks;
};

/// Every token checked on its own: what the mask must equal.
std::vector<uint8_t> reference(const Matcher &m, const VocabTrie &v,
                               int64_t vocab) {
  std::vector<uint8_t> r(size_t(vocab), 0);
  for (int32_t t = 0; t < vocab; ++t) {
    Matcher copy = m;
    r[size_t(t)] = !v.bytes(t).empty() && copy.feed(v.bytes(t));
  }
  return r;
}

} // namespace

TEST(TokenMask, TrieWalkAndStringFastPathEqualEveryTokenAlone) {
  // Tokens that stress the string fast path: quotes, escapes, control
  // bytes, characters cut at either end, and ordinary pieces.
  std::vector<std::string> toks = {"<eos>",
                                   "{",
                                   "{\"code\": \"",
                                   "\", \"name\": \"",
                                   "}",
                                   "\"",
                                   "\",",
                                   "\":",
                                   "\"}",
                                   ":",
                                   ",",
                                   " ",
                                   "\n",
                                   "\\",
                                   "\\n",
                                   "\\\"",
                                   "\\u00",
                                   "e9",
                                   "a",
                                   "ab",
                                   "abc",
                                   "name",
                                   "\"name",
                                   "1",
                                   "12",
                                   "-",
                                   ".",
                                   "e",
                                   "true",
                                   "tr",
                                   "ue",
                                   "null",
                                   "[",
                                   "]",
                                   "é",
                                   "\xC3",
                                   "\xA9",
                                   "\xA9x",
                                   "\xF0\x9F",
                                   "\x9F\xA6\x8A",
                                   "🦊",
                                   "\t",
                                   "\x01",
                                   "x\"y",
                                   "ok\\",
                                   "[\"",
                                   "\"]",
                                   "\"}}",
                                   "}}",
                                   " \"",
                                   "\": \""};
  ListTokenizer tok(toks);
  auto vocab = std::make_shared<VocabTrie>(tok, int64_t(toks.size()));
  std::string error;
  auto grammar = Grammar::fromSchema(nlohmann::ordered_json::parse(R"({
      "type": "object", "properties": {
        "code": {"type": "string", "maxLength": 3},
        "name": {"type": "string"}, "n": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "any": {}},
      "required": ["code", "name"]})"),
                                     error);
  ASSERT_TRUE(grammar) << error;
  // Random walks through the grammar, comparing masks at every step.
  std::mt19937 rng(11);
  int strings = 0, steps = 0;
  for (int walk = 0; walk < 60; ++walk) {
    GrammarConstraint c(grammar, vocab, 0);
    Matcher m(grammar);
    std::vector<int32_t> out;
    for (int k = 0; k < 60; ++k) {
      std::vector<uint8_t> mask(toks.size(), 0);
      c.allowed(out.data(), int64_t(out.size()), mask.data(),
                int64_t(toks.size()));
      std::vector<uint8_t> want = reference(m, *vocab, int64_t(toks.size()));
      want[0] = m.accepting(); // eos: once the value is whole
      ASSERT_EQ(mask, want) << "walk " << walk << " step " << k;
      strings += m.plainStringRoom() >= 0;
      ++steps;
      std::vector<int32_t> allowed;
      for (size_t t = 1; t < mask.size(); ++t)
        if (mask[t])
          allowed.push_back(int32_t(t));
      if (allowed.empty())
        break;
      int32_t next = allowed[rng() % allowed.size()];
      out.push_back(next);
      ASSERT_TRUE(m.feed(vocab->bytes(next)));
    }
  }
  // The fast path ran often enough to mean something.
  EXPECT_GT(strings, steps / 10) << strings << " of " << steps;
}

TEST(TokenMask, AutoToolCallsFollowTheirParametersOnceOpened) {
  const std::string CB = "<｜tool▁calls▁begin｜>", B = "<｜tool▁call▁begin｜>",
                    S = "<｜tool▁sep｜>", E = "<｜tool▁call▁end｜>";
  std::vector<std::string> toks = {
      "<eos>", "hello",   CB,         B,           "function", S,
      "get\n", "other\n", "get\n```", "```json\n", "```",      "json\n",
      "{",     "}",       "\"city\"", ":",         " ",        "\"x\"",
      "\n```", E,         "{\"",      "1",         "\n"};
  auto id = [&](const std::string &t) {
    return int32_t(std::find(toks.begin(), toks.end(), t) - toks.begin());
  };
  ListTokenizer tok(toks);
  auto vocab = std::make_shared<VocabTrie>(tok, int64_t(toks.size()));
  std::string before, after, error;
  callBodyFrame(ToolCallFormat::DeepSeekV3, before, after);
  auto body = Grammar::framedValue(
      before, nlohmann::ordered_json::parse(R"({"type": "object", "properties":
          {"city": {"type": "string"}}, "required": ["city"]})"),
      after, error);
  ASSERT_TRUE(body) << error;
  auto maskAfter = [&](const std::vector<std::string> &out) {
    ToolCallConstraint c(ToolCallFormat::DeepSeekV3, {{"get", body}}, vocab, 0);
    std::vector<int32_t> ids;
    std::vector<uint8_t> mask(toks.size(), 0);
    // Asked before every token, as the engine asks.
    for (size_t k = 0; k <= out.size(); ++k) {
      std::fill(mask.begin(), mask.end(), 0);
      c.allowed(ids.data(), int64_t(ids.size()), mask.data(),
                int64_t(toks.size()));
      if (k < out.size())
        ids.push_back(id(out[k]));
    }
    return mask;
  };
  auto allowedSet = [&](const std::vector<uint8_t> &m) {
    std::vector<std::string> a;
    for (size_t t = 0; t < m.size(); ++t)
      if (m[t])
        a.push_back(toks[t]);
    return a;
  };
  std::vector<uint8_t> all(toks.size(), 1);
  EXPECT_EQ(maskAfter({}), all); // free text
  EXPECT_EQ(maskAfter({"hello", CB}), all);
  // The call of a listed function is open: its fence, then its arguments.
  EXPECT_EQ(allowedSet(maskAfter({"hello", CB, B, "function", S, "get\n"})),
            (std::vector<std::string>{"```json\n", "```"}));
  // A token holding the name's end and the fence's start.
  EXPECT_EQ(allowedSet(maskAfter({CB, B, "function", S, "get\n```"})),
            (std::vector<std::string>{"json\n"}));
  EXPECT_EQ(allowedSet(maskAfter({CB, B, "function", S, "get\n", "```json\n"})),
            (std::vector<std::string>{"{", " ", "{\"", "\n"}));
  // After the arguments, the closing; after it, free again.
  std::vector<std::string> call = {CB,      B,           "function", S,
                                   "get\n", "```json\n", "{",        "\"city\"",
                                   ":",     " ",         "\"x\"",    "}"};
  EXPECT_EQ(allowedSet(maskAfter(call)),
            (std::vector<std::string>{"\n```", "\n"}));
  call.push_back("\n```");
  EXPECT_EQ(allowedSet(maskAfter(call)), (std::vector<std::string>{E}));
  call.push_back(E);
  EXPECT_EQ(maskAfter(call), all);
  // A function the request did not list stays free.
  EXPECT_EQ(maskAfter({CB, B, "function", S, "other\n"}), all);
}

// Patterns, formats and guided_regex: the walk (which skips the string
// fast path there) against every token alone, and never a dead end: where
// no token may come, the answer is whole (eos). Every character the
// grammars use is a token of its own here, so a live parse can go on.
TEST(TokenMask, PatternsWalkLikeEveryTokenAloneAndNeverStrand) {
  std::vector<std::string> toks = {"<eos>"};
  for (char c : std::string("{}[]\":, -.0123456789abcdefilnotuxyzTZ@"))
    toks.push_back(std::string(1, c));
  for (const char *t : {"\"code\": \"",
                        "\", \"day\": \"",
                        "\"}",
                        "ab",
                        "a-",
                        "-1",
                        "12",
                        "2024-",
                        "01",
                        "\\u0061",
                        "\\u00",
                        "\\",
                        "\\u",
                        "\\u002d",
                        "\\n",
                        "\\\"",
                        "é",
                        "\xC3",
                        "\xA9",
                        "b\"",
                        "99",
                        "ZZ",
                        "T1",
                        "x@y"})
    toks.push_back(t);
  ListTokenizer tok(toks);
  auto vocab = std::make_shared<VocabTrie>(tok, int64_t(toks.size()));
  std::string error;
  std::vector<std::shared_ptr<const Grammar>> grammars = {
      Grammar::fromSchema(nlohmann::ordered_json::parse(R"({
          "type": "object", "properties": {
            "code": {"type": "string", "pattern": "^[a-c]+-\\d+$",
                     "maxLength": 5},
            "day": {"type": "string", "format": "date"},
            "note": {"type": "string", "pattern": "b", "maxLength": 3},
            "tail": {"type": "string", "pattern": "x"},
            "n": {"type": "integer", "minimum": -5, "maximum": 120}},
          "required": ["code", "day"]})"),
                          error),
      Grammar::regex(R"(\d{1,3}(\.\d+)?[a-c]*)", error),
      Grammar::regex(R"([xyz]+@[a-c]{2}|Z)", error)};
  for (const auto &g : grammars)
    ASSERT_TRUE(g) << error;
  std::mt19937 rng(5);
  int ended = 0;
  for (size_t gi = 0; gi < grammars.size(); ++gi)
    for (int walk = 0; walk < 80; ++walk) {
      GrammarConstraint c(grammars[gi], vocab, 0);
      Matcher m(grammars[gi]);
      std::vector<int32_t> out;
      for (int k = 0; k < 40; ++k) {
        std::vector<uint8_t> mask(toks.size(), 0);
        c.allowed(out.data(), int64_t(out.size()), mask.data(),
                  int64_t(toks.size()));
        std::vector<uint8_t> want = reference(m, *vocab, int64_t(toks.size()));
        want[0] = m.accepting();
        ASSERT_EQ(mask, want) << "grammar " << gi << " walk " << walk;
        std::vector<int32_t> allowed;
        for (size_t t = 0; t < mask.size(); ++t)
          if (mask[t])
            allowed.push_back(int32_t(t));
        ASSERT_FALSE(allowed.empty()) << "grammar " << gi << " walk " << walk
                                      << " stranded after \"" <<
            [&] {
              std::string s;
              for (int32_t t : out)
                s += vocab->bytes(t);
              return s;
            }() << "\"";
        int32_t next = allowed[rng() % allowed.size()];
        if (next == 0) {
          ++ended;
          break;
        }
        out.push_back(next);
        ASSERT_TRUE(m.feed(vocab->bytes(next)));
      }
    }
  EXPECT_GT(ended, 40); // walks reached whole answers and ended there
}

TEST(TokenMask, ReachCacheKeysAndBound) {
  ReachCache cache;
  auto reach = std::make_shared<RegexReach>();
  reach->tokens = {1, 2, 3};
  cache.insert("whole:a+", /*inString=*/false, 3, reach);
  EXPECT_EQ(cache.find("whole:a+", false, 3), reach);
  // In a JSON string the walk leaves quotes and escapes to the matcher: a
  // reach of raw text is not one of a string's, nor another state's.
  EXPECT_EQ(cache.find("whole:a+", true, 3), nullptr);
  EXPECT_EQ(cache.find("whole:a+", false, 4), nullptr);
  EXPECT_EQ(cache.find("search:a+", false, 3), nullptr);
  // Past its bound the cache starts again; the reaches handed out live on.
  auto big = std::make_shared<RegexReach>();
  big->tokens.assign(size_t(ReachCache::kMaxTokens), 7);
  cache.insert("whole:b", false, 0, big);
  EXPECT_EQ(cache.find("whole:a+", false, 3), nullptr);
  EXPECT_EQ(cache.find("whole:b", false, 0), big);
  EXPECT_EQ(reach->tokens.size(), 3u);
}
