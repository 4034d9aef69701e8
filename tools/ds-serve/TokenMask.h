//===- TokenMask.h - which tokens a grammar lets come next ------*- C++ -*-===//
//
// Constrained decoding for structured outputs: the engine asks, before each
// token, which tokens may come (dsrt_request_params::allowed_tokens); a
// GrammarConstraint answers by walking the vocabulary's byte trie with the
// answer's Matcher (JsonGrammar.h), a branch ending where no parse can take
// its next byte. Special tokens are never text; eos is allowed once the
// answer is a whole value.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_TOKENMASK_H
#define DS_SERVE_TOKENMASK_H

#include "Backend.h"
#include "JsonGrammar.h"
#include "ToolCalls.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace dsserve {

/// What the token walk finds from one regex state (inside a JSON string
/// or raw text): the tokens the regex takes whole, and the trie nodes (with
/// their bytes) where a byte the regex leaves to the matcher ('"', '\\',
/// ...) was taken.
struct RegexReach {
  std::vector<int32_t> tokens;
  std::vector<std::pair<int32_t, std::string>> exits;
};

/// Reaches kept for every request over one vocabulary: a server's requests
/// send the same schemas again and again, and each regex state's reach is
/// the same each time. Keyed by the regex's source (Regex::key), so
/// requests that compiled it apart share it. Bounded by the token ids it
/// holds (emptied when full). Thread-safe.
class ReachCache {
public:
  std::shared_ptr<const RegexReach> find(const std::string &regex,
                                         bool inString, int32_t state);
  void insert(const std::string &regex, bool inString, int32_t state,
              std::shared_ptr<const RegexReach> reach);
  static constexpr int64_t kMaxTokens = int64_t(16) << 20;

private:
  std::mutex mutex;
  std::map<std::tuple<std::string, bool, int32_t>,
           std::shared_ptr<const RegexReach>>
      entries;
  int64_t held = 0; // token ids and exits in entries
};

/// The vocabulary's tokens by their bytes, shared by every request.
class VocabTrie {
public:
  /// Tokens [0, vocab) of `tok`, special ones and those without bytes
  /// (ids past the tokenizer's vocabulary) left out.
  VocabTrie(Tokenizer &tok, int64_t vocab);
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children; // by byte
    std::vector<int32_t> tokens;                       // ending here
  };
  const Node &node(int32_t i) const { return nodes[size_t(i)]; }
  /// A token's bytes ("" for those left out).
  const std::string &bytes(int32_t token) const {
    static const std::string none;
    return token >= 0 && size_t(token) < tokenBytes.size()
               ? tokenBytes[size_t(token)]
               : none;
  }
  int64_t vocabSize() const { return int64_t(tokenBytes.size()); }
  /// Tokens a JSON string's inside may take at a character boundary: no
  /// quote, backslash or control byte, UTF-8 that starts a character (it
  /// may end inside one). Most of a vocabulary; the mask sets them at once
  /// there and walks only the rest (Matcher::plainStringRoom).
  const std::vector<int32_t> &plainTokens() const { return plain; }
  /// The characters each plain token starts (its UTF-8 lead bytes).
  const std::vector<int32_t> &plainCharacters() const { return plainChars; }
  /// Every token at or below trie node i is plain.
  bool plainBelow(int32_t i) const { return plainSubtree[size_t(i)] != 0; }
  /// Regex states' reaches over this vocabulary, for every request.
  ReachCache &reaches() const { return reachCache; }

private:
  std::vector<Node> nodes; // 0 is the root
  std::vector<std::string> tokenBytes;
  std::vector<int32_t> plain, plainChars;
  std::vector<uint8_t> plainSubtree;
  mutable ReachCache reachCache;
};

class GrammarConstraint : public TokenConstraint {
public:
  GrammarConstraint(std::shared_ptr<const Grammar> grammar,
                    std::shared_ptr<const VocabTrie> vocab, int64_t eosToken);
  void allowed(const int32_t *output, int64_t n, uint8_t *mask,
               int64_t vocab) override;
  /// The pieces of allowed(), for constraints that read the text
  /// themselves (ToolCallConstraint): bytes taken (false: the grammar
  /// cannot take them, and masks then offer only eos), the tokens that may
  /// come (eos too once the value is whole, if `eosToo`).
  bool feed(const std::string &bytes);
  void mask(uint8_t *mask, int64_t vocab, bool eosToo);
  bool accepting() const { return !broken && matcher.accepting(); }

private:
  /// Marks the tokens below trie `node`, scratch[depth] holding the
  /// matcher after its bytes.
  void walk(int32_t node, size_t depth, uint8_t *mask, int64_t vocab,
            bool skipPlain);
  /// The walk inside a regex-read text (Matcher::regexCursor): the regex
  /// steps alone, recording into `reach`.
  void walkRegex(int32_t node, size_t depth, const Matcher::RegexCursor &at,
                 RegexReach &reach);
  /// Marks what `reach` allows from the matcher (its exits walked anew).
  void applyReach(const RegexReach &reach, uint8_t *mask, int64_t vocab);
  std::vector<Matcher> scratch;
  std::string path; // walkRegex: the bytes from the root to its node
  std::shared_ptr<const VocabTrie> vocab;
  Matcher matcher;
  int64_t eos;
  int64_t consumed = 0;
  bool broken = false; // a token the grammar did not allow (cannot happen
                       // through the mask; then only eos is offered)
};

/// tool_choice "auto": the answer is free until the model opens a call of
/// a listed function; that call's arguments then follow the function's
/// parameters and its closing is written as the format has it, then the
/// answer is free again. (Calls of unknown functions stay free.)
class ToolCallConstraint : public TokenConstraint {
public:
  /// `parameters`: each function's name and its parameters' grammar as
  /// Grammar::callBody builds it for `format`.
  ToolCallConstraint(
      ToolCallFormat format,
      std::vector<std::pair<std::string, std::shared_ptr<const Grammar>>>
          bodies,
      std::shared_ptr<const VocabTrie> vocab, int64_t eosToken);
  void allowed(const int32_t *output, int64_t n, uint8_t *mask,
               int64_t vocab) override;

private:
  ToolCallFormat format;
  std::vector<std::pair<std::string, std::shared_ptr<const Grammar>>> bodies;
  std::shared_ptr<const VocabTrie> vocab;
  int64_t eos;
  ToolCallParser parser;
  std::string text; // the answer so far (free parts and calls)
  int64_t consumed = 0;
  /// The open call's body (arguments and closing), while one is open.
  std::unique_ptr<GrammarConstraint> body;
};

} // namespace dsserve

#endif // DS_SERVE_TOKENMASK_H
