//===- Ast.h - parsed Jinja templates ---------------------------*- C++ -*-===//
//
// Expressions and statements of the subset of Jinja the interpreter runs.
// Every node keeps its source line so that runtime errors can name it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_JINJA_AST_H
#define DSRT_TEXT_JINJA_AST_H

#include "text/jinja/Value.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dsrt::text::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    Literal,   // literal
    Name,      // name
    List,      // args: elements
    Tuple,     // args: elements (a list at runtime)
    Dict,      // args: key0, value0, key1, value1, ...
    Attribute, // args[0].name
    Item,      // args[0][args[1]]
    Slice,     // args[0][args[1]:args[2]:args[3]], missing parts null
    Call,      // args[0](args[1..], kwargs)
    Filter,    // args[0] | name(args[1..], kwargs)
    Test,      // args[0] is [not] name(args[1..]); negated
    Unary,     // name (not, -, +) args[0]
    Binary,    // args[0] name args[1]: + - * / // % ** ~ and or
    Compare,   // args[0] ops[0] args[1] ops[1] args[2] ...
    Cond,      // args[0] if args[1] else args[2] (null: undefined)
  };
  Kind kind;
  int line;
  std::string name;
  Value literal;
  bool negated = false;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;

  Expr(Kind k, int l) : kind(k), line(l) {}
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    Text,     // text
    Output,   // {{ expr }}
    If,       // branches (condition, body); elseBody
    For,      // for targets in expr [if filter]: body [else elseBody]
    Set,      // set targets = expr, or set targets[0].attribute = expr
    SetBlock, // {% set targets[0] %}body{% endset %}
    Break,
    Continue,
  };
  Kind kind;
  int line;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  std::vector<std::string> targets;
  std::string attribute; // Set on a namespace attribute: ns.attribute = ...
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body elseBody;

  Stmt(Kind k, int l) : kind(k), line(l) {}
};

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_AST_H
