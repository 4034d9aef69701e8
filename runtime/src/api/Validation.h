//===- Validation.h - checks before calling generated code --*- C++ -*-===//
//
// The generated kernels trust their inputs (a token id indexes the
// embedding table, a position indexes the cache), so every input is checked
// here first. Each function returns "" or the one-line message.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_API_VALIDATION_H
#define DSRT_API_VALIDATION_H

#include <cstdint>
#include <string>

namespace dsrt {

/// n >= 1 and every id in [0, vocab). `what` prefixes the message of a bad
/// id ("token id", "forced token id").
std::string checkTokens(const int32_t *tokens, int64_t n, int64_t vocab,
                        const char *what = "token id");

/// `n` more tokens after `position` fit a cache of `capacity` tokens.
std::string checkContext(int64_t position, int64_t n, int64_t capacity);

} // namespace dsrt

#endif // DSRT_API_VALIDATION_H
