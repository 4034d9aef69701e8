//===- Interpreter.h - renders parsed Jinja templates -----------*- C++ -*-===//
//
// Runs a parsed template against a context with Jinja2's scoping: `if`
// shares its scope, each `for` iteration opens a fresh one (so `set` inside a
// loop is lost at the next iteration and after the loop; templates carry
// state across iterations in namespace() objects).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_JINJA_INTERPRETER_H
#define DSRT_TEXT_JINJA_INTERPRETER_H

#include "text/jinja/Ast.h"

#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace dsrt::text::jinja {

// Bounds the work one render may do: a template from a config file must not
// hang a server (Jinja's sandbox bounds range(), this bounds the rest).
constexpr uint64_t kMaxSteps = 5'000'000;

class Interpreter {
public:
  // Variables visible to the template, over the global functions.
  explicit Interpreter(std::vector<std::pair<std::string, Value>> context);
  ~Interpreter();
  Interpreter(const Interpreter &) = delete;
  Interpreter &operator=(const Interpreter &) = delete;

  // Throws TemplateError naming the line of the failing construct.
  std::string render(const Body &body);

private:
  enum class Flow { Normal, Break, Continue };

  Flow exec(const Body &body, std::string &out);
  Flow execStmt(const Stmt &s, std::string &out);
  Flow execStmtAt(const Stmt &s, std::string &out);
  Flow execFor(const Stmt &s, std::string &out);
  void execSet(const Stmt &s);
  void assign(const std::string &name, Value v);

  Value eval(const Expr &e);
  Value evalName(const Expr &e);
  Value evalAttribute(const Expr &e);
  Value evalItem(const Expr &e);
  Value evalSlice(const Expr &e);
  Value evalCall(const Expr &e);
  Value evalBinary(const Expr &e);
  Value evalCompare(const Expr &e);
  Value evalUnary(const Expr &e);
  CallArgs evalArgs(const Expr &e, size_t first);
  Value arithmetic(const std::string &op, const Value &a, const Value &b,
                   int line);
  bool contains(const Value &container, const Value &item, int line);
  void step(int line);

  std::vector<std::unordered_map<std::string, Value>> frames_;
  // The mutable containers made while rendering (namespaces, loop objects):
  // they may reference each other in cycles or long chains, so the
  // destructor empties them instead of letting shared_ptr recurse.
  std::vector<std::shared_ptr<Dict>> roots_;
  uint64_t steps_ = 0;
  int loopDepth_ = 0;
};

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_INTERPRETER_H
