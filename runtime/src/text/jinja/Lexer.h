//===- Lexer.h - Jinja template source to tokens ----------------*- C++ -*-===//
//
// Splits a template into text and tag tokens, applying Jinja's whitespace
// control as Hugging Face configures it (trim_blocks and lstrip_blocks on,
// keep_trailing_newline off) plus the `-`/`+` tag modifiers. Comments are
// dropped here. Every token carries its 1-based source line.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_JINJA_LEXER_H
#define DSRT_TEXT_JINJA_LEXER_H

#include <cstdint>
#include <string>
#include <vector>

namespace dsrt::text::jinja {

enum class TokenKind {
  Text,       // literal output between tags
  BlockBegin, // {%
  BlockEnd,   // %}
  VarBegin,   // {{
  VarEnd,     // }}
  Name,
  String,
  Integer,
  Float,
  Operator, // text holds the operator: "+", "//", "(", "|", ...
  End,
};

struct Token {
  TokenKind kind;
  std::string text; // Text and String: the (unescaped) content
  int64_t intValue = 0;
  double floatValue = 0;
  int line = 0;
};

struct LexOptions {
  bool trimBlocks = true;   // drop the first newline after a block tag
  bool lstripBlocks = true; // drop spaces/tabs before a block tag on its line
  bool keepTrailingNewline = false;
};

// Throws TemplateError (with the line) on an unterminated tag, comment or
// string, or a character no token starts with.
std::vector<Token> lex(const std::string &source,
                       const LexOptions &options = LexOptions());

// Appends code point cp to out as UTF-8.
void appendUtf8(uint32_t cp, std::string &out);

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_LEXER_H
