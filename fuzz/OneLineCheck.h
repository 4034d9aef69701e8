//===- OneLineCheck.h - what the fuzzers require of a refusal ---*- C++ -*-===//
//
// Every refusal is one line naming the culprit: not empty, no control
// character (a line break, or a carriage return that rewrites the line),
// no Unicode line break (U+0085, U+2028, U+2029).
//
//===----------------------------------------------------------------------===//
#ifndef DS_FUZZ_ONELINECHECK_H
#define DS_FUZZ_ONELINECHECK_H

#include "support/OneLine.h"

#include <string>

/// Nothing in `message` that dsrt::oneLine would escape: the runtime's one
/// definition of what breaks a line.
inline bool isOneLine(const std::string &message) {
  return !message.empty() && dsrt::oneLine(message) == message;
}

/// Traps (the fuzzer's crash) unless `message` is one line.
inline void requireOneLine(const std::string &message) {
  if (!isOneLine(message))
    __builtin_trap();
}

#endif // DS_FUZZ_ONELINECHECK_H
