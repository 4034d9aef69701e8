//===- Regex.h - regular expressions as automata over code points -*- C++
//-*-===//
//
// Constrained decoding by a regular expression (vLLM's guided_regex, a JSON
// Schema's `pattern` and the string formats the server enforces): the
// pattern is compiled once into a deterministic automaton over Unicode code
// points, so the token walk can ask, byte by byte, whether a match can
// still go on (TokenMask.h walks the vocabulary with it through Matcher).
//
// The syntax is ECMAScript's (JSON Schema's), the part of it that is
// regular: literals, `.` (any code point but line terminators), classes
// `[...]` with ranges and negation, `\d \w \s` and their negations,
// `\t \n \r \f \v \0 \xHH \uHHHH \u{H...}`, escaped punctuation, groups
// `(...)`, `(?:...)`, named groups, `|`, `* + ? {n} {n,} {n,m}` (lazy
// forms too: they match the same strings), and `^` / `$` at the pattern's
// ends (or its top-level alternatives'). Refused with a message naming
// the construct: backreferences, lookaround, word boundaries, Unicode
// property classes, inline flags, and patterns whose automaton would pass
// kMaxStates states.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_REGEX_H
#define DS_SERVE_REGEX_H

#include <array>
#include <climits>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsserve {

class Regex {
public:
  /// Whole: the text is one match (guided_regex). Search: the text
  /// contains a match (JSON Schema's `pattern`, unanchored unless it
  /// starts with `^` / ends with `$`).
  enum class Mode { Whole, Search };
  static constexpr int32_t kMaxStates = 4096;
  static constexpr int32_t kDead = -1;

  /// Null with `error` set (one line) when the pattern is malformed, uses
  /// what is not regular, matches nothing, or is too large.
  static std::shared_ptr<const Regex> compile(const std::string &pattern,
                                              Mode mode, std::string &error);

  int32_t start() const { return startState; }
  /// The state after code point `cp`; kDead where no match can go on.
  int32_t step(int32_t state, uint32_t cp) const {
    return next[size_t(state) * size_t(classes) + size_t(classOf(cp))];
  }
  /// Some code point in [lo, hi] keeps a match possible (the bytes of a
  /// character read so far narrow it to such a range), one that can end
  /// after between minMore and maxMore further characters.
  bool anyIn(int32_t state, uint32_t lo, uint32_t hi, int64_t minMore = 0,
             int64_t maxMore = INT64_MAX) const;
  bool accepting(int32_t state) const { return accept[size_t(state)] != 0; }
  /// The mode and pattern it was compiled from: equal keys, equal
  /// automata (caches of what its states reach share on it).
  const std::string &key() const { return sourceKey; }
  /// A match can end after between minMore and maxMore more characters
  /// (a string's minLength and maxLength beside its pattern).
  bool canEnd(int32_t state, int64_t minMore, int64_t maxMore) const {
    return shortest[size_t(state)] <= maxMore &&
           longest[size_t(state)] >= minMore;
  }
  int32_t stateCount() const { return int32_t(accept.size()); }

private:
  friend class RegexBuilder;
  int32_t classOf(uint32_t cp) const;
  // The code points in classes: class i is [bounds[i], bounds[i + 1]);
  // every code point of a class leads every state to the same state.
  std::vector<uint32_t> bounds;
  std::array<int32_t, 128> asciiClass{};
  int32_t classes = 0;
  std::vector<int32_t> next; // state * classes + class
  std::vector<uint8_t> accept;
  // Characters from each state to the nearest and the furthest end of a
  // match (INT64_MAX: a loop on the way); kDead states have none.
  std::vector<int64_t> shortest, longest;
  int32_t startState = 0;
  std::string sourceKey;
};

/// A pattern (the syntax above) matching exactly the integers in [lo, hi]
/// as JSON writes them (no leading zeros, no "-0"); a missing bound is
/// unbounded on its side. lo <= hi.
std::string integerRangePattern(std::optional<int64_t> lo,
                                std::optional<int64_t> hi);

/// One byte of UTF-8 text through `rx`: `state` the automaton's, `cp` the
/// character's bits so far, `owed` its continuation bytes still to come.
/// False (the three unchanged or not: the caller drops them) where the
/// byte is not UTF-8 here or no match can go on with it, or none that ends
/// after between minMore and maxMore characters past this one.
bool regexTakeByte(const Regex &rx, int32_t &state, int32_t &cp, int32_t &owed,
                   uint8_t byte, int64_t minMore = 0,
                   int64_t maxMore = INT64_MAX);

} // namespace dsserve

#endif // DS_SERVE_REGEX_H
