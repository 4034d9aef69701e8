//===- OneLineCheck.h - what the fuzzers require of a refusal ---*- C++ -*-===//
//
// Every refusal is one line naming the culprit: not empty, no control
// character (a line break, or a carriage return that rewrites the line),
// no Unicode line break (U+0085, U+2028, U+2029).
//
//===----------------------------------------------------------------------===//
#ifndef DS_FUZZ_ONELINECHECK_H
#define DS_FUZZ_ONELINECHECK_H

#include <cstdint>
#include <string>

inline bool isOneLine(const std::string &message) {
  for (char c : message)
    if (uint8_t(c) < 0x20 || c == 0x7F)
      return false;
  return !message.empty() && message.find("\xC2\x85") == std::string::npos &&
         message.find("\xE2\x80\xA8") == std::string::npos &&
         message.find("\xE2\x80\xA9") == std::string::npos;
}

/// Traps (the fuzzer's crash) unless `message` is one line.
inline void requireOneLine(const std::string &message) {
  if (!isOneLine(message))
    __builtin_trap();
}

#endif // DS_FUZZ_ONELINECHECK_H
