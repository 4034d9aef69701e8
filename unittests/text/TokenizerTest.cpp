//===- TokenizerTest.cpp - BPE, splits, added tokens, streaming -----------===//
#include "text/Tokenizer.h"
#include "text/Utf8.h"

#include <gtest/gtest.h>

using namespace dsrt::text;

namespace {

std::string quote(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string symbols(const std::string &bytes) {
  std::string out;
  for (char c : bytes)
    appendCodepoint(byteToSymbol(uint8_t(c)), out);
  return out;
}

/// A byte-level BPE tokenizer.json: ids 0..255 are the bytes, then one id
/// per merge (in order), then the added tokens.
std::string
tokenizerJson(const std::vector<std::pair<std::string, std::string>> &merges,
              const std::string &preTokenizers,
              const std::string &added = "[]") {
  std::string vocab;
  int id = 0;
  for (int b = 0; b < 256; ++b)
    vocab += (b ? "," : "") + quote(symbols(std::string(1, char(b)))) + ":" +
             std::to_string(id++);
  std::string mergeList;
  for (auto &[l, r] : merges) {
    vocab += "," + quote(symbols(l + r)) + ":" + std::to_string(id++);
    mergeList +=
        (mergeList.empty() ? "" : ",") + quote(symbols(l) + " " + symbols(r));
  }
  return "{\"added_tokens\":" + added +
         ",\"normalizer\":null,\"pre_tokenizer\":" + preTokenizers +
         ",\"post_processor\":null,\"decoder\":{\"type\":\"ByteLevel\"},"
         "\"model\":{\"type\":\"BPE\",\"vocab\":{" +
         vocab + "},\"merges\":[" + mergeList + "]}}";
}

const std::string kByteLevelOnly =
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}";

std::unique_ptr<Tokenizer> load(const std::string &json,
                                const std::string &config = "") {
  std::string error;
  auto t = Tokenizer::loadFromText(json, "tokenizer.json", config,
                                   "tokenizer_config.json", error);
  EXPECT_TRUE(t) << error;
  return t;
}

std::vector<int32_t> encode(const Tokenizer &t, const std::string &text) {
  std::vector<int32_t> ids;
  std::string error;
  EXPECT_TRUE(t.encode(text, false, ids, error)) << error;
  return ids;
}

} // namespace

TEST(Tokenizer, MergesByRankThenLeftmost) {
  // Ranks: "b c" (256) before "a b" (257): "abc" -> a, bc.
  auto t = load(tokenizerJson({{"b", "c"}, {"a", "b"}}, kByteLevelOnly));
  EXPECT_EQ(encode(*t, "abc"), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(encode(*t, "abab"), (std::vector<int32_t>{257, 257}));
  // Equal pairs merge leftmost first: "aaa" -> aa, a.
  auto u = load(tokenizerJson({{"a", "a"}}, kByteLevelOnly));
  EXPECT_EQ(encode(*u, "aaa"), (std::vector<int32_t>{256, 'a'}));
}

TEST(Tokenizer, LongRunsStayFast) {
  // 2^17 'a's through "a a" then "aa aa" ...: a heap, not a quadratic scan.
  std::vector<std::pair<std::string, std::string>> merges;
  std::string piece = "a";
  for (int k = 0; k < 6; ++k) {
    merges.push_back({piece, piece});
    piece += piece;
  }
  auto t = load(tokenizerJson(merges, kByteLevelOnly));
  std::vector<int32_t> ids = encode(*t, std::string(1 << 17, 'a'));
  ASSERT_EQ(ids.size(), size_t(1 << 17) / 64);
  EXPECT_EQ(ids.front(), 256 + 5);
  std::string text, error;
  ASSERT_TRUE(t->decode(ids.data(), ids.size(), false, text, error));
  EXPECT_EQ(text, std::string(1 << 17, 'a'));
}

TEST(Tokenizer, SplitsIsolateMatchesWithinEachPiece) {
  // Digits first, then words: "ab12cd" -> ab | 12 | cd, and the merge "b 1"
  // never applies across the split.
  std::string pre = "{\"type\":\"Sequence\",\"pretokenizers\":["
                    "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}+\"},"
                    "\"behavior\":\"Isolated\",\"invert\":false}," +
                    kByteLevelOnly + "]}";
  auto t = load(tokenizerJson({{"b", "1"}, {"a", "b"}}, pre));
  EXPECT_EQ(encode(*t, "ab12cd"),
            (std::vector<int32_t>{257, '1', '2', 'c', 'd'}));
  // A pattern that matches the empty string splits nothing there.
  std::string empty = "{\"type\":\"Sequence\",\"pretokenizers\":["
                      "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},"
                      "\"behavior\":\"Isolated\"}," +
                      kByteLevelOnly + "]}";
  auto u = load(tokenizerJson({{"a", "b"}}, empty));
  EXPECT_EQ(encode(*u, "abxxab"), (std::vector<int32_t>{256, 'x', 'x', 256}));
  // A literal String pattern is not a regex.
  std::string literal = "{\"type\":\"Sequence\",\"pretokenizers\":["
                        "{\"type\":\"Split\",\"pattern\":{\"String\":\".\"},"
                        "\"behavior\":\"Isolated\"}," +
                        kByteLevelOnly + "]}";
  auto v = load(tokenizerJson({{"a", "b"}, {"b", "."}}, literal));
  EXPECT_EQ(encode(*v, "ab.ab"), (std::vector<int32_t>{256, '.', 256}));
}

TEST(Tokenizer, AddedTokensLeftmostLongestAndDecodedVerbatim) {
  std::string added = "[{\"id\":300,\"content\":\"<a>\",\"special\":true},"
                      "{\"id\":301,\"content\":\"<a>b\",\"special\":false},"
                      "{\"id\":302,\"content\":\"\xEF\xBD\x9C"
                      "U\",\"special\":true}]";
  auto t = load(tokenizerJson({{"a", "b"}}, kByteLevelOnly, added));
  EXPECT_EQ(encode(*t, "ab<a>b<a>x<a"),
            (std::vector<int32_t>{256, 301, 300, 'x', '<', 'a'}));
  std::vector<int32_t> ids = {300, 'x', 302};
  std::string text, error;
  ASSERT_TRUE(t->decode(ids.data(), ids.size(), false, text, error));
  EXPECT_EQ(text, "<a>x\xEF\xBD\x9CU");
  text.clear();
  ASSERT_TRUE(t->decode(ids.data(), ids.size(), true, text, error));
  EXPECT_EQ(text, "x");
  EXPECT_EQ(t->vocabSize(), 303);
  EXPECT_TRUE(t->isSpecial(300));
  EXPECT_FALSE(t->isSpecial(301));
  ids = {299};
  EXPECT_FALSE(t->decode(ids.data(), ids.size(), false, text, error));
  EXPECT_EQ(error, "token id 299 at index 0 has no token in the vocabulary");
}

TEST(Tokenizer, BosAndEosFromTheConfig) {
  std::string added = "[{\"id\":300,\"content\":\"<s>\",\"special\":true},"
                      "{\"id\":301,\"content\":\"</s>\",\"special\":true}]";
  std::string json = tokenizerJson({}, kByteLevelOnly, added);
  auto t =
      load(json, "{\"bos_token\":{\"content\":\"<s>\"},\"eos_token\":\"</s>\","
                 "\"add_bos_token\":true,\"add_eos_token\":true}");
  std::vector<int32_t> ids;
  std::string error;
  ASSERT_TRUE(t->encode("hi", true, ids, error));
  EXPECT_EQ(ids, (std::vector<int32_t>{300, 'h', 'i', 301}));
  // A LlamaTokenizerFast adds BOS by default; another class does not.
  auto llama = load(
      json,
      "{\"bos_token\":\"<s>\",\"tokenizer_class\":\"LlamaTokenizerFast\"}");
  auto other = load(json, "{\"bos_token\":\"<s>\",\"tokenizer_class\":"
                          "\"PreTrainedTokenizerFast\"}");
  EXPECT_TRUE(llama->addsBos());
  EXPECT_FALSE(other->addsBos());
  EXPECT_EQ(llama->bosId(), 300);
}

TEST(Tokenizer, StreamEqualsOneShotDecode) {
  auto t = load(
      tokenizerJson({{"a", "b"}}, kByteLevelOnly,
                    "[{\"id\":300,\"content\":\"<s>\",\"special\":true}]"));
  // Byte ids cut characters anywhere; include ill-formed sequences.
  std::string text = "ab\xE4\xB8\xAD\xF0\x9F\x98\x80 \xC3";
  std::vector<int32_t> ids;
  for (char c : text)
    ids.push_back(uint8_t(c));
  ids.insert(ids.begin() + 3, 300);
  ids.push_back(0x80);
  ids.push_back(0xE4);
  for (bool skip : {false, true}) {
    std::string whole, error, streamed;
    ASSERT_TRUE(t->decode(ids.data(), ids.size(), skip, whole, error));
    StreamDecoder s(*t, skip);
    for (int32_t id : ids) {
      std::string piece;
      ASSERT_TRUE(s.push(id, piece, error));
      EXPECT_EQ(findInvalidUtf8(piece), std::string_view::npos);
      streamed += piece;
    }
    s.finish(streamed);
    EXPECT_EQ(streamed, whole);
  }
}

TEST(Tokenizer, RefusesWhatItCannotReproduce) {
  std::string error;
  auto bad = [&](const std::string &json) {
    error.clear();
    EXPECT_FALSE(Tokenizer::loadFromText(json, "t.json", "", "c.json", error));
    EXPECT_EQ(error.find('\n'), std::string::npos) << error;
    return error;
  };
  EXPECT_EQ(bad("{\"model\":"), "t.json:1:10: unexpected end of input");
  EXPECT_EQ(bad("{}"), "t.json: model: missing");
  std::string ok = tokenizerJson({}, kByteLevelOnly);
  std::string withUnk = ok;
  withUnk.replace(withUnk.find("\"type\":\"BPE\""), 12,
                  "\"type\":\"BPE\",\"unk_token\":\"<unk>\"");
  EXPECT_EQ(bad(withUnk),
            "t.json: model.unk_token: unsupported \"<unk>\" (must be null)");
  std::string noPre = ok;
  noPre.replace(noPre.find(kByteLevelOnly), kByteLevelOnly.size(), "null");
  EXPECT_EQ(bad(noPre), "t.json: pre_tokenizer: missing (a ByteLevel "
                        "pre-tokenizer is required)");
}
