//===- RegexSyntax.h - regular expressions' text as a tree -------*- C++
//-*-===//
//
// The first step of Regex::compile (Regex.h has the syntax): the pattern's
// text parsed into a tree whose leaves are sets of code points, with the
// anchors checked and, when searching, "anything" put where they are not.
// Internal to Regex.cpp and RegexSyntax.cpp.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_REGEXSYNTAX_H
#define DS_SERVE_REGEXSYNTAX_H

#include "Regex.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dsserve::regex {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;

/// A set of code points: sorted, disjoint, non-adjacent inclusive ranges.
using CharSet = std::vector<std::pair<uint32_t, uint32_t>>;

struct Tree {
  enum Kind { Set, Concat, Alt, Repeat, Start, End } kind;
  int set = -1;          // Set: index into ParsedPattern::sets
  std::vector<int> kids; // Concat, Alt: parts; Repeat: one
  int64_t min = 0, max = -1;
};

struct ParsedPattern {
  std::vector<Tree> nodes;
  std::vector<CharSet> sets;
  int root = -1;
};

/// False with `error` (one line, the construct and its offset) where the
/// pattern is malformed or not regular.
bool parsePattern(const std::string &pattern, Regex::Mode mode,
                  ParsedPattern &out, std::string &error);

} // namespace dsserve::regex

#endif // DS_SERVE_REGEXSYNTAX_H
