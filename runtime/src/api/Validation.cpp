//===- Validation.cpp - checks before any call into generated code --------===//
#include "api/Validation.h"

#include <cstdint>

using namespace dsrt;

std::string dsrt::checkTokens(const int32_t *tokens, int64_t n, int64_t vocab,
                              const char *what) {
  if (n <= 0)
    return "empty prompt: at least one token is needed";
  if (!tokens)
    return "no token buffer given for " + std::to_string(n) + " tokens";
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= vocab)
      return std::string(what) + " " + std::to_string(tokens[i]) +
             " at index " + std::to_string(i) + " is out of range [0, " +
             std::to_string(vocab) + ")";
  return "";
}

std::string dsrt::checkContext(int64_t position, int64_t n, int64_t capacity) {
  // Written as a subtraction: position + n may overflow for absurd n.
  if (n > capacity - position)
    return "context of " +
           (n > INT64_MAX - position ? std::string("more than 2^63")
                                     : std::to_string(position + n)) +
           " tokens exceeds the cache capacity (" + std::to_string(capacity) +
           ")";
  return "";
}
