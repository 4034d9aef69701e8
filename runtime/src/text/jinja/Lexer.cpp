//===- Lexer.cpp - Jinja template source to tokens ------------------------===//
#include "text/jinja/Lexer.h"

#include "text/jinja/Value.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

using namespace dsrt::text::jinja;

void dsrt::text::jinja::appendUtf8(uint32_t cp, std::string &out) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
         c == '\v';
}

int hexDigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

class Lexer {
public:
  Lexer(std::string source, const LexOptions &options)
      : src_(std::move(source)), opts_(options) {}

  std::vector<Token> run();

private:
  void pushText(size_t begin, size_t end, int line, char nextModifier,
                bool nextIsBlockOrComment);
  void lexTag(TokenKind begin, TokenKind end, const char *close);
  void lexComment(int line);
  void afterTag(char modifier, bool isBlock);
  std::string lexString(char quote, int line);
  void lexNumber(int line);
  int lineAt(size_t pos);

  std::string src_;
  LexOptions opts_;
  size_t pos_ = 0;
  size_t lineScan_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
};

// Line of pos; positions are only asked for in increasing order.
int Lexer::lineAt(size_t pos) {
  for (; lineScan_ < pos && lineScan_ < src_.size(); ++lineScan_)
    if (src_[lineScan_] == '\n')
      ++line_;
  return line_;
}

void Lexer::pushText(size_t begin, size_t end, int line, char nextModifier,
                     bool nextIsBlockOrComment) {
  std::string text = src_.substr(begin, end - begin);
  if (nextModifier == '-') {
    while (!text.empty() && isSpace(text.back()))
      text.pop_back();
  } else if (nextModifier != '+' && nextIsBlockOrComment &&
             opts_.lstripBlocks) {
    // Only when the tag is the first thing on its line.
    size_t nl = text.rfind('\n');
    size_t lineStart = nl == std::string::npos ? 0 : nl + 1;
    bool atLineStart = nl != std::string::npos || begin == 0 ||
                       src_[begin - 1] == '\n';
    if (atLineStart &&
        text.find_first_not_of(" \t", lineStart) == std::string::npos)
      text.erase(lineStart);
  }
  if (!text.empty())
    tokens_.push_back(Token{TokenKind::Text, std::move(text), 0, 0, line});
}

// Whitespace control after a tag's end: `-` eats all whitespace, trim_blocks
// one newline after block tags and comments.
void Lexer::afterTag(char modifier, bool isBlock) {
  if (modifier == '-') {
    while (pos_ < src_.size() && isSpace(src_[pos_]))
      ++pos_;
  } else if (modifier != '+' && isBlock && opts_.trimBlocks &&
             pos_ < src_.size() && src_[pos_] == '\n') {
    ++pos_;
  }
}

void Lexer::lexComment(int line) {
  size_t close = src_.find("#}", pos_);
  if (close == std::string::npos)
    throw TemplateError(line, "unterminated comment '{#'");
  char modifier = 0;
  if (close > pos_ && (src_[close - 1] == '-' || src_[close - 1] == '+'))
    modifier = src_[close - 1];
  pos_ = close + 2;
  afterTag(modifier, /*isBlock=*/true);
}

std::string Lexer::lexString(char quote, int line) {
  std::string out;
  ++pos_;
  while (true) {
    if (pos_ >= src_.size())
      throw TemplateError(line, "unterminated string literal");
    char c = src_[pos_++];
    if (c == quote)
      return out;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (pos_ >= src_.size())
      throw TemplateError(line, "unterminated string literal");
    // Python's escapes (Jinja decodes literals with "unicode-escape").
    char e = src_[pos_++];
    switch (e) {
    case 'n':
      out += '\n';
      break;
    case 't':
      out += '\t';
      break;
    case 'r':
      out += '\r';
      break;
    case 'b':
      out += '\b';
      break;
    case 'f':
      out += '\f';
      break;
    case 'v':
      out += '\v';
      break;
    case 'a':
      out += '\a';
      break;
    case '\\':
    case '\'':
    case '"':
      out += e;
      break;
    case '\n':
      break;
    case 'x':
    case 'u':
    case 'U': {
      int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
      uint32_t cp = 0;
      for (int i = 0; i < n; ++i) {
        int d = pos_ < src_.size() ? hexDigit(src_[pos_]) : -1;
        if (d < 0)
          throw TemplateError(line, std::string("truncated \\") + e +
                                        " escape in string literal");
        cp = cp * 16 + static_cast<uint32_t>(d);
        ++pos_;
      }
      appendUtf8(cp, out);
      break;
    }
    default:
      if (e >= '0' && e <= '7') {
        uint32_t cp = static_cast<uint32_t>(e - '0');
        for (int i = 0; i < 2 && pos_ < src_.size() && src_[pos_] >= '0' &&
                        src_[pos_] <= '7';
             ++i)
          cp = cp * 8 + static_cast<uint32_t>(src_[pos_++] - '0');
        appendUtf8(cp, out);
      } else {
        out += '\\'; // Python keeps unknown escapes as written
        out += e;
      }
    }
  }
}

void Lexer::lexNumber(int line) {
  size_t start = pos_;
  auto digits = [&] {
    while (pos_ < src_.size() &&
           (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
            (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
             std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))))
      ++pos_;
  };
  digits();
  bool isFloat = false;
  if (pos_ + 1 < src_.size() && src_[pos_] == '.' &&
      std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
    isFloat = true;
    ++pos_;
    digits();
  }
  if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
    size_t save = pos_++;
    if (pos_ < src_.size() && (src_[pos_] == '+' || src_[pos_] == '-'))
      ++pos_;
    if (pos_ < src_.size() &&
        std::isdigit(static_cast<unsigned char>(src_[pos_]))) {
      isFloat = true;
      digits();
    } else {
      pos_ = save;
    }
  }
  std::string text;
  for (size_t i = start; i < pos_; ++i)
    if (src_[i] != '_')
      text += src_[i];
  Token t{isFloat ? TokenKind::Float : TokenKind::Integer, text, 0, 0, line};
  if (isFloat) {
    t.floatValue = std::strtod(text.c_str(), nullptr);
  } else {
    errno = 0;
    unsigned long long v = std::strtoull(text.c_str(), nullptr, 10);
    if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX))
      throw TemplateError(line, "integer literal " + text + " is too large");
    t.intValue = static_cast<int64_t>(v);
  }
  tokens_.push_back(std::move(t));
}

void Lexer::lexTag(TokenKind begin, TokenKind end, const char *close) {
  static const char *operators[] = {"//", "**", "==", "!=", "<=", ">=", "+",
                                    "-",  "*",  "/",  "%",  "~",  "<",  ">",
                                    "=",  "(",  ")",  "[",  "]",  "{",  "}",
                                    ",",  ".",  ":",  "|"};
  int tagLine = lineAt(pos_);
  tokens_.push_back(Token{begin, "", 0, 0, tagLine});
  pos_ += 2;
  if (pos_ < src_.size() && (src_[pos_] == '-' || src_[pos_] == '+'))
    ++pos_;
  int depth = 0; // brackets open: `}}` inside `{'a': {}}` closes nothing
  size_t closeLen = std::strlen(close);
  while (true) {
    while (pos_ < src_.size() && isSpace(src_[pos_]))
      ++pos_;
    if (pos_ >= src_.size())
      throw TemplateError(tagLine, std::string("unterminated tag, expected '") +
                                       close + "'");
    int line = lineAt(pos_);
    if (depth == 0) {
      char modifier = 0;
      size_t at = pos_;
      if ((src_[at] == '-' || src_[at] == '+') &&
          src_.compare(at + 1, closeLen, close) == 0)
        modifier = src_[at++];
      if (src_.compare(at, closeLen, close) == 0) {
        tokens_.push_back(Token{end, "", 0, 0, line});
        pos_ = at + closeLen;
        afterTag(modifier, begin == TokenKind::BlockBegin);
        return;
      }
    }
    char c = src_[pos_];
    if (c == '\'' || c == '"') {
      std::string s = lexString(c, line);
      tokens_.push_back(Token{TokenKind::String, std::move(s), 0, 0, line});
      continue;
    }
    if (std::isdigit(static_cast<unsigned char>(c))) {
      lexNumber(line);
      continue;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t start = pos_;
      while (pos_ < src_.size() &&
             (std::isalnum(static_cast<unsigned char>(src_[pos_])) ||
              src_[pos_] == '_'))
        ++pos_;
      tokens_.push_back(Token{TokenKind::Name,
                              src_.substr(start, pos_ - start), 0, 0, line});
      continue;
    }
    bool matched = false;
    for (const char *op : operators) {
      size_t n = std::strlen(op);
      if (src_.compare(pos_, n, op) == 0) {
        if (op[0] == '(' || op[0] == '[' || op[0] == '{')
          ++depth;
        else if ((op[0] == ')' || op[0] == ']' || op[0] == '}') && depth > 0)
          --depth;
        tokens_.push_back(Token{TokenKind::Operator, op, 0, 0, line});
        pos_ += n;
        matched = true;
        break;
      }
    }
    if (!matched) {
      unsigned char u = static_cast<unsigned char>(c);
      std::string shown = u >= 0x20 && u < 0x7f ? std::string(1, c)
                                                 : "byte " + std::to_string(u);
      throw TemplateError(line, "unexpected character '" + shown + "' in tag");
    }
  }
}

std::vector<Token> Lexer::run() {
  while (pos_ < src_.size()) {
    size_t open = pos_;
    while (true) {
      open = src_.find('{', open);
      if (open == std::string::npos || open + 1 >= src_.size()) {
        open = std::string::npos;
        break;
      }
      char c = src_[open + 1];
      if (c == '{' || c == '%' || c == '#')
        break;
      ++open;
    }
    int textLine = lineAt(pos_);
    if (open == std::string::npos) {
      pushText(pos_, src_.size(), textLine, 0, false);
      pos_ = src_.size();
      break;
    }
    char kind = src_[open + 1];
    char modifier = open + 2 < src_.size() ? src_[open + 2] : 0;
    pushText(pos_, open, textLine, modifier, kind != '{');
    pos_ = open;
    if (kind == '#') {
      int line = lineAt(pos_);
      pos_ += 2;
      lexComment(line);
    } else if (kind == '%') {
      lexTag(TokenKind::BlockBegin, TokenKind::BlockEnd, "%}");
    } else {
      lexTag(TokenKind::VarBegin, TokenKind::VarEnd, "}}");
    }
  }
  tokens_.push_back(Token{TokenKind::End, "", 0, 0, lineAt(src_.size())});
  return std::move(tokens_);
}

} // namespace

std::vector<Token> dsrt::text::jinja::lex(const std::string &source,
                                          const LexOptions &options) {
  // Jinja reads the source as lines: any newline sequence becomes "\n" and
  // one trailing newline is dropped.
  std::string normalized;
  normalized.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      normalized += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n')
        ++i;
    } else {
      normalized += source[i];
    }
  }
  if (!options.keepTrailingNewline && !normalized.empty() &&
      normalized.back() == '\n')
    normalized.pop_back();
  return Lexer(std::move(normalized), options).run();
}
