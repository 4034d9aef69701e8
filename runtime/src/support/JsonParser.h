//===- JsonParser.h - a small strict JSON reader ----------------*- C++ -*-===//
//
// The runtime reads three JSON texts (safetensors headers, the shard index,
// the artifact manifest), all possibly hostile: the parser keeps keys in
// document order so duplicates can be reported, bounds nesting depth, checks
// UTF-8, and reports errors with line and column.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_SUPPORT_JSONPARSER_H
#define DSRT_SUPPORT_JSONPARSER_H

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dsrt::json {

/// Containers nested deeper than this are refused: the parser and the
/// destructor of Value recurse, and no file the runtime reads needs more.
constexpr int kMaxDepth = 64;

struct Value {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0;
  /// Written without fraction or exponent and within int64: `integer` then
  /// holds the exact value (byte offsets of large files exceed 2^53).
  bool isInteger = false;
  int64_t integer = 0;
  std::string string;
  std::vector<Value> items;                           // Array
  std::vector<std::pair<std::string, Value>> members; // Object, in order

  /// First member named `key` (objects), or nullptr.
  const Value *get(const std::string &key) const;
  bool isNull() const { return kind == Null; }
};

/// Parses `text`; on failure returns false and sets `error` to
/// "<line>:<col>: <reason>" (both 1-based, columns in code points).
bool parse(std::string_view text, Value &out, std::string &error);

/// The first key of object `v` that repeats an earlier one, or nullptr.
/// Duplicates are kept by the parser so each caller can name them.
const std::string *findDuplicateKey(const Value &v);

/// A short rendering of a value for messages.
std::string describe(const Value &v);

} // namespace dsrt::json

#endif // DSRT_SUPPORT_JSONPARSER_H
