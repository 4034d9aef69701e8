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
