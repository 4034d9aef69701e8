//===- PreTokenizer.h - regex splits before BPE -----------------*- C++ -*-===//
//
// Hugging Face's `Split` pre-tokenizers (behavior Isolated) applied in
// sequence: each regex splits every piece the previous one produced into
// its matches and the text between them. PCRE2 (UTF + UCP, JIT) runs the
// patterns as the tokenizer.json writes them, lookahead included.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_PRETOKENIZER_H
#define DSRT_TEXT_PRETOKENIZER_H

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsrt::text {

/// A piece of the input: [begin, end) byte offsets.
struct Piece {
  uint32_t begin, end;
};

class PreTokenizer {
public:
  PreTokenizer();
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer &) = delete;
  PreTokenizer &operator=(const PreTokenizer &) = delete;

  /// Appends a split by `pattern` (a regex, or a literal string when
  /// `literal`); on failure `error` holds PCRE2's reason and offset.
  bool addSplit(const std::string &pattern, bool literal, std::string &error);
  size_t numSplits() const;

  /// Splits text[begin, end) (well-formed UTF-8) into pieces appended to
  /// `out`. Fails only when the regex engine does (resource limits).
  bool split(std::string_view text, Piece whole, std::vector<Piece> &out,
             std::string &error) const;

private:
  struct Regex;
  std::vector<std::unique_ptr<Regex>> regexes;
};

} // namespace dsrt::text

#endif // DSRT_TEXT_PRETOKENIZER_H
