//===- JsonParser.h - a small strict JSON reader ----------------*- C++ -*-===//
//
// The runtime reads three JSON texts (safetensors headers, the shard index,
// the artifact manifest), all possibly hostile: the parser keeps keys in
// document order so duplicates can be reported, bounds nesting depth, and
// reports errors with line and column.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_SUPPORT_JSONPARSER_H
#define DSRT_SUPPORT_JSONPARSER_H

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dsrt::json {

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0;
  bool isInteger = false; // written without fraction or exponent
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;                            // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in order

  /// First member named `key` (objects), or nullptr.
  const Value *get(const std::string &key) const;
  bool isNull() const { return kind == Null; }
};

/// Parses `text`; on failure returns false and sets `error` to
/// "<line>:<col>: <reason>".
bool parse(const std::string &text, Value &out, std::string &error);

/// A short rendering of a value for messages.
std::string describe(const Value &v);

} // namespace dsrt::json

#endif // DSRT_SUPPORT_JSONPARSER_H
