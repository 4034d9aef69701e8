//===- NestingGuard.h - refuse absurdly nested IR text ----------*- C++ -*-===//
//
// MLIR's parser recurses once per nested bracket, so a file of a few
// hundred thousand '[' exhausts the stack (found by fuzz/IRFuzzer.cpp).
// ds IR nests a dozen levels deep; anything past the limit is refused with
// a message before the parser sees it.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SUPPORT_NESTINGGUARD_H
#define DS_SUPPORT_NESTINGGUARD_H

#include "llvm/ADT/StringRef.h"

#include <string>

namespace mlir::ds {

constexpr unsigned kMaxIRNesting = 256;

/// Returns "" when `text` nests (, [, { and < at most `limit` deep outside
/// string literals and comments, else a message with line and column.
inline std::string checkNesting(llvm::StringRef text,
                                unsigned limit = kMaxIRNesting) {
  unsigned depth = 0, line = 1, col = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    ++col;
    if (c == '\n') {
      ++line;
      col = 0;
    } else if (c == '"') {
      for (++i; i < text.size() && text[i] != '"' && text[i] != '\n'; ++i)
        if (text[i] == '\\')
          ++i;
    } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i + 1 < text.size() && text[i + 1] != '\n')
        ++i;
    } else if (c == '(' || c == '[' || c == '{' || c == '<') {
      if (++depth > limit)
        return "brackets nest more than " + std::to_string(limit) +
               " levels deep at " + std::to_string(line) + ":" +
               std::to_string(col);
    } else if ((c == ')' || c == ']' || c == '}' ||
                (c == '>' && (i == 0 || text[i - 1] != '-'))) &&
               depth > 0) {
      --depth;
    }
  }
  return "";
}

} // namespace mlir::ds

#endif // DS_SUPPORT_NESTINGGUARD_H
