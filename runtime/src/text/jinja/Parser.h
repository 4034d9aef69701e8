//===- Parser.h - Jinja tokens to statements --------------------*- C++ -*-===//
#ifndef DSRT_TEXT_JINJA_PARSER_H
#define DSRT_TEXT_JINJA_PARSER_H

#include "text/jinja/Ast.h"
#include "text/jinja/Lexer.h"

namespace dsrt::text::jinja {

// Parses a whole template. A tag or syntax outside the supported subset is a
// TemplateError naming the construct and its line (e.g. "line 3: unsupported
// tag 'macro'").
Body parseTemplate(const std::vector<Token> &tokens);

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_PARSER_H
