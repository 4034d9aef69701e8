//===- Parser.cpp - Jinja tokens to statements ----------------------------===//
//
// A recursive-descent parser with Jinja2's precedence (parser.py): ternary,
// or, and, not, comparisons (chained), + -, ~, * / // %, **, unary - +,
// then primaries with postfix [] . () and the `|` filter / `is` test chain.
//
//===----------------------------------------------------------------------===//
#include "text/jinja/Parser.h"

#include "text/jinja/Builtins.h"

#include <initializer_list>

using namespace dsrt::text::jinja;

namespace {

// Deep nesting would exhaust the stack before anything useful happens.
constexpr int kMaxDepth = 200;

class Parser {
public:
  explicit Parser(const std::vector<Token> &tokens) : toks_(tokens) {}

  Body parseAll();

private:
  const Token &peek(size_t ahead = 0) const {
    size_t i = pos_ + ahead;
    return i < toks_.size() ? toks_[i] : toks_.back();
  }
  const Token &next() {
    const Token &t = peek();
    if (pos_ < toks_.size() - 1)
      ++pos_;
    return t;
  }
  bool isOp(const char *op, size_t ahead = 0) const {
    const Token &t = peek(ahead);
    return t.kind == TokenKind::Operator && t.text == op;
  }
  bool isName(const char *name, size_t ahead = 0) const {
    const Token &t = peek(ahead);
    return t.kind == TokenKind::Name && t.text == name;
  }
  static std::string describe(const Token &t);
  [[noreturn]] void fail(const Token &t, const std::string &what) const {
    throw TemplateError(t.line, what);
  }
  void expectOp(const char *op);
  std::string expectName(const char *what);
  void expectBlockEnd(const char *tag);

  struct DepthGuard {
    DepthGuard(Parser &p, int line) : p(p) {
      if (++p.depth_ > kMaxDepth)
        throw TemplateError(line, "template nested too deeply");
    }
    ~DepthGuard() { --p.depth_; }
    Parser &p;
  };

  // Statements. parseBody stops before a `{%` whose tag is in `ends` and
  // returns that tag; at the end of input it fails naming `opener`.
  Body parseBody(std::initializer_list<const char *> ends, std::string &endTag,
                 const char *opener, int openerLine);
  StmtPtr parseStatement();
  StmtPtr parseIf(int line);
  StmtPtr parseFor(int line);
  StmtPtr parseSet(int line);

  // Expressions.
  ExprPtr parseExpression(bool withCondition = true);
  ExprPtr parseOr();
  ExprPtr parseAnd();
  ExprPtr parseNot();
  ExprPtr parseCompare();
  ExprPtr parseMath1();
  ExprPtr parseConcat();
  ExprPtr parseMath2();
  ExprPtr parsePow();
  ExprPtr parseUnary(bool withFilter);
  ExprPtr parsePrimary();
  ExprPtr parsePostfix(ExprPtr node);
  ExprPtr parseFilterChain(ExprPtr node);
  ExprPtr parseSubscript(ExprPtr node, int line);
  void parseCallArgs(Expr &call);
  ExprPtr binary(const std::string &op, ExprPtr lhs, ExprPtr rhs, int line);

  const std::vector<Token> &toks_;
  size_t pos_ = 0;
  int depth_ = 0;
};

std::string Parser::describe(const Token &t) {
  switch (t.kind) {
  case TokenKind::Text:
    return "text";
  case TokenKind::BlockBegin:
    return "'{%'";
  case TokenKind::BlockEnd:
    return "'%}'";
  case TokenKind::VarBegin:
    return "'{{'";
  case TokenKind::VarEnd:
    return "'}}'";
  case TokenKind::Name:
    return "'" + t.text + "'";
  case TokenKind::String:
    return "a string";
  case TokenKind::Integer:
  case TokenKind::Float:
    return "a number";
  case TokenKind::Operator:
    return "'" + t.text + "'";
  case TokenKind::End:
    return "the end of the template";
  }
  return "?";
}

void Parser::expectOp(const char *op) {
  if (!isOp(op))
    fail(peek(), std::string("expected '") + op + "', got " + describe(peek()));
  next();
}

std::string Parser::expectName(const char *what) {
  if (peek().kind != TokenKind::Name)
    fail(peek(), std::string("expected ") + what + ", got " + describe(peek()));
  return next().text;
}

void Parser::expectBlockEnd(const char *tag) {
  if (peek().kind != TokenKind::BlockEnd)
    fail(peek(), std::string("expected '%}' to end '") + tag + "', got " +
                     describe(peek()));
  next();
}

Body Parser::parseAll() {
  std::string endTag;
  Body body = parseBody({}, endTag, nullptr, 0);
  return body;
}

Body Parser::parseBody(std::initializer_list<const char *> ends,
                       std::string &endTag, const char *opener,
                       int openerLine) {
  Body body;
  while (true) {
    const Token &t = peek();
    switch (t.kind) {
    case TokenKind::End:
      if (opener)
        throw TemplateError(openerLine, std::string("'") + opener +
                                            "' is never closed");
      return body;
    case TokenKind::Text: {
      auto s = std::make_unique<Stmt>(Stmt::Kind::Text, t.line);
      s->text = t.text;
      body.push_back(std::move(s));
      next();
      break;
    }
    case TokenKind::VarBegin: {
      next();
      auto s = std::make_unique<Stmt>(Stmt::Kind::Output, t.line);
      s->expr = parseExpression();
      if (peek().kind != TokenKind::VarEnd)
        fail(peek(), "expected '}}', got " + describe(peek()));
      next();
      body.push_back(std::move(s));
      break;
    }
    case TokenKind::BlockBegin: {
      const Token &tag = peek(1);
      if (tag.kind == TokenKind::Name)
        for (const char *end : ends)
          if (tag.text == end) {
            endTag = end;
            next();
            next();
            return body;
          }
      body.push_back(parseStatement());
      break;
    }
    default:
      fail(t, "unexpected " + describe(t));
    }
  }
}

StmtPtr Parser::parseStatement() {
  const Token &open = next(); // {%
  const Token &tag = peek();
  if (tag.kind != TokenKind::Name)
    fail(tag, "expected a tag name after '{%', got " + describe(tag));
  DepthGuard guard(*this, tag.line);
  std::string name = next().text;
  if (name == "if")
    return parseIf(open.line);
  if (name == "for")
    return parseFor(open.line);
  if (name == "set")
    return parseSet(open.line);
  if (name == "break" || name == "continue") {
    expectBlockEnd(name.c_str());
    return std::make_unique<Stmt>(name == "break" ? Stmt::Kind::Break
                                                  : Stmt::Kind::Continue,
                                  open.line);
  }
  if (name == "elif" || name == "else" || name == "endif" ||
      name == "endfor" || name == "endset")
    fail(tag, "'" + name + "' without a matching opening tag");
  fail(tag, "unsupported tag '" + name + "'");
}

StmtPtr Parser::parseIf(int line) {
  auto s = std::make_unique<Stmt>(Stmt::Kind::If, line);
  ExprPtr cond = parseExpression();
  expectBlockEnd("if");
  while (true) {
    std::string endTag;
    Body body = parseBody({"elif", "else", "endif"}, endTag, "if", line);
    s->branches.emplace_back(std::move(cond), std::move(body));
    if (endTag == "elif") {
      cond = parseExpression();
      expectBlockEnd("elif");
      continue;
    }
    if (endTag == "else") {
      expectBlockEnd("else");
      s->elseBody = parseBody({"endif"}, endTag, "if", line);
    }
    expectBlockEnd("endif");
    return s;
  }
}

StmtPtr Parser::parseFor(int line) {
  auto s = std::make_unique<Stmt>(Stmt::Kind::For, line);
  s->targets.push_back(expectName("a loop variable"));
  while (isOp(",")) {
    next();
    s->targets.push_back(expectName("a loop variable"));
  }
  if (!isName("in"))
    fail(peek(), "expected 'in' in 'for', got " + describe(peek()));
  next();
  s->expr = parseExpression(/*withCondition=*/false);
  if (isName("if")) {
    next();
    s->filter = parseExpression(/*withCondition=*/false);
  }
  if (isName("recursive"))
    fail(peek(), "unsupported construct 'recursive' loop");
  expectBlockEnd("for");
  std::string endTag;
  s->body = parseBody({"else", "endfor"}, endTag, "for", line);
  if (endTag == "else") {
    expectBlockEnd("else");
    s->elseBody = parseBody({"endfor"}, endTag, "for", line);
  }
  expectBlockEnd("endfor");
  return s;
}

StmtPtr Parser::parseSet(int line) {
  std::vector<std::string> targets{expectName("a variable name after 'set'")};
  std::string attribute;
  if (isOp(".")) {
    next();
    attribute = expectName("an attribute name");
  } else {
    while (isOp(",")) {
      next();
      targets.push_back(expectName("a variable name"));
    }
  }
  if (peek().kind == TokenKind::BlockEnd && attribute.empty() &&
      targets.size() == 1) {
    next();
    auto s = std::make_unique<Stmt>(Stmt::Kind::SetBlock, line);
    s->targets = std::move(targets);
    std::string endTag;
    s->body = parseBody({"endset"}, endTag, "set", line);
    expectBlockEnd("endset");
    return s;
  }
  if (isOp("|"))
    fail(peek(), "unsupported construct 'set' block with a filter");
  expectOp("=");
  auto s = std::make_unique<Stmt>(Stmt::Kind::Set, line);
  s->targets = std::move(targets);
  s->attribute = std::move(attribute);
  s->expr = parseExpression();
  if (isOp(",")) { // set a, b = 1, 2
    auto tuple = std::make_unique<Expr>(Expr::Kind::Tuple, s->expr->line);
    tuple->args.push_back(std::move(s->expr));
    while (isOp(",")) {
      next();
      tuple->args.push_back(parseExpression());
    }
    s->expr = std::move(tuple);
  }
  expectBlockEnd("set");
  return s;
}

ExprPtr Parser::binary(const std::string &op, ExprPtr lhs, ExprPtr rhs,
                       int line) {
  auto e = std::make_unique<Expr>(Expr::Kind::Binary, line);
  e->name = op;
  e->args.push_back(std::move(lhs));
  e->args.push_back(std::move(rhs));
  return e;
}

ExprPtr Parser::parseExpression(bool withCondition) {
  DepthGuard guard(*this, peek().line);
  ExprPtr expr = parseOr();
  if (!withCondition)
    return expr;
  while (isName("if")) {
    int line = next().line;
    auto cond = std::make_unique<Expr>(Expr::Kind::Cond, line);
    cond->args.push_back(std::move(expr));
    cond->args.push_back(parseOr());
    if (isName("else")) {
      next();
      cond->args.push_back(parseExpression());
    } else {
      cond->args.push_back(nullptr);
    }
    expr = std::move(cond);
  }
  return expr;
}

ExprPtr Parser::parseOr() {
  ExprPtr lhs = parseAnd();
  while (isName("or")) {
    int line = next().line;
    lhs = binary("or", std::move(lhs), parseAnd(), line);
  }
  return lhs;
}

ExprPtr Parser::parseAnd() {
  ExprPtr lhs = parseNot();
  while (isName("and")) {
    int line = next().line;
    lhs = binary("and", std::move(lhs), parseNot(), line);
  }
  return lhs;
}

ExprPtr Parser::parseNot() {
  if (isName("not")) {
    int line = next().line;
    DepthGuard guard(*this, line);
    auto e = std::make_unique<Expr>(Expr::Kind::Unary, line);
    e->name = "not";
    e->args.push_back(parseNot());
    return e;
  }
  return parseCompare();
}

ExprPtr Parser::parseCompare() {
  ExprPtr first = parseMath1();
  ExprPtr cmp;
  while (true) {
    std::string op;
    const Token &t = peek();
    if (t.kind == TokenKind::Operator &&
        (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" ||
         t.text == ">" || t.text == ">=")) {
      op = t.text;
      next();
    } else if (isName("in")) {
      op = "in";
      next();
    } else if (isName("not") && isName("in", 1)) {
      op = "not in";
      next();
      next();
    } else {
      break;
    }
    if (!cmp) {
      cmp = std::make_unique<Expr>(Expr::Kind::Compare, t.line);
      cmp->args.push_back(std::move(first));
    }
    cmp->ops.push_back(op);
    cmp->args.push_back(parseMath1());
  }
  return cmp ? std::move(cmp) : std::move(first);
}

ExprPtr Parser::parseMath1() {
  ExprPtr lhs = parseConcat();
  while (isOp("+") || isOp("-")) {
    const Token &t = next();
    lhs = binary(t.text, std::move(lhs), parseConcat(), t.line);
  }
  return lhs;
}

ExprPtr Parser::parseConcat() {
  ExprPtr lhs = parseMath2();
  while (isOp("~")) {
    int line = next().line;
    lhs = binary("~", std::move(lhs), parseMath2(), line);
  }
  return lhs;
}

ExprPtr Parser::parseMath2() {
  ExprPtr lhs = parsePow();
  while (isOp("*") || isOp("/") || isOp("//") || isOp("%")) {
    const Token &t = next();
    lhs = binary(t.text, std::move(lhs), parsePow(), t.line);
  }
  return lhs;
}

ExprPtr Parser::parsePow() {
  ExprPtr lhs = parseUnary(true);
  while (isOp("**")) {
    int line = next().line;
    lhs = binary("**", std::move(lhs), parseUnary(true), line);
  }
  return lhs;
}

ExprPtr Parser::parseUnary(bool withFilter) {
  DepthGuard guard(*this, peek().line);
  ExprPtr node;
  if (isOp("-") || isOp("+")) {
    const Token &t = next();
    node = std::make_unique<Expr>(Expr::Kind::Unary, t.line);
    node->name = t.text;
    node->args.push_back(parseUnary(false));
  } else {
    node = parsePrimary();
  }
  node = parsePostfix(std::move(node));
  return withFilter ? parseFilterChain(std::move(node)) : std::move(node);
}

ExprPtr Parser::parsePrimary() {
  const Token &t = peek();
  switch (t.kind) {
  case TokenKind::Name: {
    next();
    auto e = std::make_unique<Expr>(Expr::Kind::Literal, t.line);
    if (t.text == "true" || t.text == "True")
      e->literal = Value::boolean(true);
    else if (t.text == "false" || t.text == "False")
      e->literal = Value::boolean(false);
    else if (t.text == "none" || t.text == "None")
      e->literal = Value::none();
    else {
      e->kind = Expr::Kind::Name;
      e->name = t.text;
    }
    return e;
  }
  case TokenKind::String: {
    std::string s;
    while (peek().kind == TokenKind::String)
      s += next().text; // adjacent literals concatenate, as in Python
    auto e = std::make_unique<Expr>(Expr::Kind::Literal, t.line);
    e->literal = Value::string(std::move(s));
    return e;
  }
  case TokenKind::Integer:
  case TokenKind::Float: {
    next();
    auto e = std::make_unique<Expr>(Expr::Kind::Literal, t.line);
    e->literal = t.kind == TokenKind::Integer ? Value::integer(t.intValue)
                                              : Value::number(t.floatValue);
    return e;
  }
  case TokenKind::Operator:
    if (t.text == "(") {
      next();
      if (isOp(")")) {
        next();
        return std::make_unique<Expr>(Expr::Kind::Tuple, t.line);
      }
      ExprPtr first = parseExpression();
      if (!isOp(",")) {
        expectOp(")");
        return first;
      }
      auto tuple = std::make_unique<Expr>(Expr::Kind::Tuple, t.line);
      tuple->args.push_back(std::move(first));
      while (isOp(",")) {
        next();
        if (isOp(")"))
          break;
        tuple->args.push_back(parseExpression());
      }
      expectOp(")");
      return tuple;
    }
    if (t.text == "[") {
      next();
      auto list = std::make_unique<Expr>(Expr::Kind::List, t.line);
      while (!isOp("]")) {
        if (!list->args.empty())
          expectOp(",");
        if (isOp("]"))
          break;
        list->args.push_back(parseExpression());
      }
      next();
      return list;
    }
    if (t.text == "{") {
      next();
      auto dict = std::make_unique<Expr>(Expr::Kind::Dict, t.line);
      while (!isOp("}")) {
        if (!dict->args.empty())
          expectOp(",");
        if (isOp("}"))
          break;
        dict->args.push_back(parseExpression());
        expectOp(":");
        dict->args.push_back(parseExpression());
      }
      next();
      return dict;
    }
    break;
  default:
    break;
  }
  fail(t, "expected an expression, got " + describe(t));
}

ExprPtr Parser::parseSubscript(ExprPtr node, int line) {
  ExprPtr parts[3];
  bool isSlice = false;
  for (int i = 0; i < 3; ++i) {
    if (!isOp(":") && !isOp("]"))
      parts[i] = parseExpression();
    if (i < 2 && isOp(":")) {
      next();
      isSlice = true;
      continue;
    }
    break;
  }
  expectOp("]");
  if (!isSlice) {
    if (!parts[0])
      fail(peek(), "empty subscript '[]'");
    auto e = std::make_unique<Expr>(Expr::Kind::Item, line);
    e->args.push_back(std::move(node));
    e->args.push_back(std::move(parts[0]));
    return e;
  }
  auto e = std::make_unique<Expr>(Expr::Kind::Slice, line);
  e->args.push_back(std::move(node));
  for (auto &p : parts)
    e->args.push_back(std::move(p));
  return e;
}

void Parser::parseCallArgs(Expr &call) {
  expectOp("(");
  bool first = true;
  while (!isOp(")")) {
    if (!first)
      expectOp(",");
    first = false;
    if (isOp(")"))
      break;
    if (isOp("*") || isOp("**"))
      fail(peek(), "unsupported construct '*' argument unpacking");
    if (peek().kind == TokenKind::Name && isOp("=", 1)) {
      std::string key = next().text;
      next();
      call.kwargs.emplace_back(key, parseExpression());
      continue;
    }
    if (!call.kwargs.empty())
      fail(peek(), "positional argument after a keyword argument");
    call.args.push_back(parseExpression());
  }
  next();
}

ExprPtr Parser::parsePostfix(ExprPtr node) {
  while (true) {
    const Token &t = peek();
    if (isOp(".")) {
      next();
      const Token &attr = next();
      if (attr.kind == TokenKind::Integer) { // x.0 is x[0]
        auto index = std::make_unique<Expr>(Expr::Kind::Literal, attr.line);
        index->literal = Value::integer(attr.intValue);
        auto e = std::make_unique<Expr>(Expr::Kind::Item, t.line);
        e->args.push_back(std::move(node));
        e->args.push_back(std::move(index));
        node = std::move(e);
        continue;
      }
      if (attr.kind != TokenKind::Name)
        fail(attr, "expected an attribute name after '.', got " +
                       describe(attr));
      auto e = std::make_unique<Expr>(Expr::Kind::Attribute, t.line);
      e->name = attr.text;
      e->args.push_back(std::move(node));
      node = std::move(e);
    } else if (isOp("[")) {
      next();
      node = parseSubscript(std::move(node), t.line);
    } else if (isOp("(")) {
      auto call = std::make_unique<Expr>(Expr::Kind::Call, t.line);
      call->args.push_back(std::move(node));
      parseCallArgs(*call);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

ExprPtr Parser::parseFilterChain(ExprPtr node) {
  while (true) {
    const Token &t = peek();
    if (isOp("|")) {
      next();
      auto f = std::make_unique<Expr>(Expr::Kind::Filter, t.line);
      const Token &nameTok = peek();
      f->name = expectName("a filter name after '|'");
      if (!hasFilter(f->name))
        fail(nameTok, "unsupported filter '" + f->name + "'");
      f->args.push_back(std::move(node));
      if (isOp("("))
        parseCallArgs(*f);
      node = std::move(f);
    } else if (isName("is")) {
      next();
      auto test = std::make_unique<Expr>(Expr::Kind::Test, t.line);
      if (isName("not")) {
        next();
        test->negated = true;
      }
      // `is none`, `is true`: the literal names are test names here.
      const Token &nameTok = peek();
      test->name = expectName("a test name after 'is'");
      if (!hasTest(test->name))
        fail(nameTok, "unsupported test '" + test->name + "'");
      test->args.push_back(std::move(node));
      const Token &a = peek();
      if (isOp("(")) {
        parseCallArgs(*test);
      } else if ((a.kind == TokenKind::Name || a.kind == TokenKind::String ||
                  a.kind == TokenKind::Integer || a.kind == TokenKind::Float ||
                  isOp("[") || isOp("{")) &&
                 !isName("else") && !isName("or") && !isName("and") &&
                 !isName("if") && !isName("in") && !isName("not") &&
                 !isName("is")) {
        test->args.push_back(parsePostfix(parsePrimary())); // is sameas x
      }
      node = std::move(test);
    } else if (isOp("(")) {
      auto call = std::make_unique<Expr>(Expr::Kind::Call, t.line);
      call->args.push_back(std::move(node));
      parseCallArgs(*call);
      node = std::move(call);
    } else {
      return node;
    }
  }
}

} // namespace

Body dsrt::text::jinja::parseTemplate(const std::vector<Token> &tokens) {
  return Parser(tokens).parseAll();
}
