//===- Interpreter.cpp - renders parsed Jinja templates -------------------===//
#include "text/jinja/Interpreter.h"

#include "text/jinja/Builtins.h"

#include <cmath>

using namespace dsrt::text::jinja;

Interpreter::Interpreter(std::vector<std::pair<std::string, Value>> context) {
  frames_.emplace_back();
  for (auto &kv : globalFunctions(&roots_))
    frames_.back()[kv.first] = kv.second;
  for (auto &kv : context)
    frames_.back()[kv.first] = std::move(kv.second);
}

Interpreter::~Interpreter() {
  frames_.clear();
  for (auto &root : roots_)
    root->items.clear(); // roots_ keeps every other root alive meanwhile
}

std::string Interpreter::render(const Body &body) {
  std::string out;
  Flow flow = exec(body, out);
  (void)flow; // break/continue outside loops are refused below
  return out;
}

void Interpreter::step(int line) {
  if (++steps_ > kMaxSteps)
    throw TemplateError(line, "template exceeded " +
                                  std::to_string(kMaxSteps) +
                                  " evaluation steps");
}

Interpreter::Flow Interpreter::exec(const Body &body, std::string &out) {
  for (const StmtPtr &s : body) {
    Flow f = execStmt(*s, out);
    if (f != Flow::Normal)
      return f;
  }
  return Flow::Normal;
}

// Errors raised below expressions without a line (value limits, global
// functions) get the statement's.
Interpreter::Flow Interpreter::execStmt(const Stmt &s, std::string &out) {
  try {
    return execStmtAt(s, out);
  } catch (const TemplateError &e) {
    if (e.line() == 0)
      throw TemplateError(s.line, e.message());
    throw;
  }
}

Interpreter::Flow Interpreter::execStmtAt(const Stmt &s, std::string &out) {
  step(s.line);
  switch (s.kind) {
  case Stmt::Kind::Text:
    out += s.text;
    checkSize(out.size(), s.line);
    return Flow::Normal;
  case Stmt::Kind::Output:
    out += eval(*s.expr).str();
    checkSize(out.size(), s.line);
    return Flow::Normal;
  case Stmt::Kind::If:
    for (const auto &branch : s.branches)
      if (eval(*branch.first).truthy())
        return exec(branch.second, out);
    return exec(s.elseBody, out);
  case Stmt::Kind::For:
    return execFor(s, out);
  case Stmt::Kind::Set:
    execSet(s);
    return Flow::Normal;
  case Stmt::Kind::SetBlock: {
    std::string captured;
    Flow f = exec(s.body, captured);
    assign(s.targets[0], Value::string(std::move(captured)));
    return f;
  }
  case Stmt::Kind::Break:
  case Stmt::Kind::Continue:
    if (loopDepth_ == 0)
      throw TemplateError(s.line, std::string("'") +
                                      (s.kind == Stmt::Kind::Break
                                           ? "break"
                                           : "continue") +
                                      "' outside a loop");
    return s.kind == Stmt::Kind::Break ? Flow::Break : Flow::Continue;
  }
  return Flow::Normal;
}

void Interpreter::assign(const std::string &name, Value v) {
  frames_.back()[name] = std::move(v);
}

void Interpreter::execSet(const Stmt &s) {
  Value v = eval(*s.expr);
  if (!s.attribute.empty()) {
    Expr target(Expr::Kind::Name, s.line);
    target.name = s.targets[0];
    Value ns = evalName(target);
    if (ns.kind() != Value::Kind::Namespace)
      throw TemplateError(s.line, "cannot set attribute '" + s.attribute +
                                      "' of '" + s.targets[0] +
                                      "': only namespace() objects allow it");
    ns.asDict().set(s.attribute, std::move(v));
    return;
  }
  if (s.targets.size() == 1) {
    assign(s.targets[0], std::move(v));
    return;
  }
  std::vector<Value> items = iterate(v, s.line, "set");
  if (items.size() != s.targets.size())
    throw TemplateError(s.line, "set: cannot unpack " +
                                    std::to_string(items.size()) +
                                    " values into " +
                                    std::to_string(s.targets.size()) +
                                    " names");
  for (size_t i = 0; i < items.size(); ++i)
    assign(s.targets[i], items[i]);
}

Interpreter::Flow Interpreter::execFor(const Stmt &s, std::string &out) {
  Value iterable = eval(*s.expr);
  if (iterable.isNone())
    throw TemplateError(s.line, "for: cannot iterate over none");
  std::vector<Value> items = iterate(iterable, s.line, "for");

  auto bind = [&](const Value &item) {
    if (s.targets.size() == 1) {
      frames_.back()[s.targets[0]] = item;
      return;
    }
    std::vector<Value> parts = iterate(item, s.line, "for");
    if (parts.size() != s.targets.size())
      throw TemplateError(s.line, "for: cannot unpack " +
                                      std::to_string(parts.size()) +
                                      " values into " +
                                      std::to_string(s.targets.size()) +
                                      " names");
    for (size_t i = 0; i < parts.size(); ++i)
      frames_.back()[s.targets[i]] = parts[i];
  };

  if (s.filter) {
    std::vector<Value> kept;
    for (const Value &item : items) {
      frames_.emplace_back();
      bind(item);
      bool pass = eval(*s.filter).truthy();
      frames_.pop_back();
      if (pass)
        kept.push_back(item);
    }
    items = std::move(kept);
  }

  if (items.empty()) {
    frames_.emplace_back();
    Flow f = exec(s.elseBody, out);
    frames_.pop_back();
    return f;
  }

  ++loopDepth_;
  int64_t n = static_cast<int64_t>(items.size());
  // One loop object advanced in place, as Jinja's LoopContext is.
  auto loop = std::make_shared<Dict>();
  for (const char *key : {"index", "index0", "revindex", "revindex0", "first",
                          "last", "length", "previtem", "nextitem"})
    loop->items.emplace_back(key, Value());
  Value loopValue = Value::dict(loop);
  roots_.push_back(loop);
  for (int64_t i = 0; i < n; ++i) {
    step(s.line);
    auto &slots = loop->items;
    slots[0].second = Value::integer(i + 1);
    slots[1].second = Value::integer(i);
    slots[2].second = Value::integer(n - i);
    slots[3].second = Value::integer(n - i - 1);
    slots[4].second = Value::boolean(i == 0);
    slots[5].second = Value::boolean(i == n - 1);
    slots[6].second = Value::integer(n);
    slots[7].second = i > 0 ? items[i - 1] : Value();
    slots[8].second = i + 1 < n ? items[i + 1] : Value();
    frames_.emplace_back();
    frames_.back()["loop"] = loopValue;
    bind(items[i]);
    Flow f = exec(s.body, out);
    frames_.pop_back();
    if (f == Flow::Break)
      break;
  }
  --loopDepth_;
  return Flow::Normal;
}

Value Interpreter::eval(const Expr &e) {
  step(e.line);
  switch (e.kind) {
  case Expr::Kind::Literal:
    return e.literal;
  case Expr::Kind::Name:
    return evalName(e);
  case Expr::Kind::List:
  case Expr::Kind::Tuple: {
    List items;
    for (const ExprPtr &a : e.args)
      items.push_back(eval(*a));
    return Value::list(std::move(items));
  }
  case Expr::Kind::Dict: {
    auto d = std::make_shared<Dict>();
    for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
      Value key = eval(*e.args[i]);
      if (!key.isString())
        throw TemplateError(e.args[i]->line,
                            std::string("dict keys must be strings, not ") +
                                key.typeName());
      d->set(key.asString(), eval(*e.args[i + 1]));
    }
    return Value::dict(d);
  }
  case Expr::Kind::Attribute:
    return evalAttribute(e);
  case Expr::Kind::Item:
    return evalItem(e);
  case Expr::Kind::Slice:
    return evalSlice(e);
  case Expr::Kind::Call:
    return evalCall(e);
  case Expr::Kind::Filter: {
    Value operand = eval(*e.args[0]);
    return applyFilter(e.name, operand, evalArgs(e, 1), e.line);
  }
  case Expr::Kind::Test: {
    Value operand = eval(*e.args[0]);
    bool r = applyTest(e.name, operand, evalArgs(e, 1), e.line);
    return Value::boolean(e.negated ? !r : r);
  }
  case Expr::Kind::Unary:
    return evalUnary(e);
  case Expr::Kind::Binary:
    return evalBinary(e);
  case Expr::Kind::Compare:
    return evalCompare(e);
  case Expr::Kind::Cond:
    if (eval(*e.args[1]).truthy())
      return eval(*e.args[0]);
    return e.args[2] ? eval(*e.args[2])
                     : Value::undefined("the conditional expression had no "
                                        "else branch");
  }
  return Value();
}

Value Interpreter::evalName(const Expr &e) {
  for (auto it = frames_.rbegin(); it != frames_.rend(); ++it) {
    auto hit = it->find(e.name);
    if (hit != it->end())
      return hit->second;
  }
  return Value::undefined("'" + e.name + "' is undefined");
}

static Value missingKey(const Value &obj, const std::string &key) {
  return Value::undefined("'" + std::string(obj.typeName()) +
                          " object' has no attribute '" + key + "'");
}

Value Interpreter::evalAttribute(const Expr &e) {
  Value obj = eval(*e.args[0]);
  if (obj.isUndefined())
    throw TemplateError(e.line, obj.undefinedHint() + " (reading '." + e.name +
                                    "')");
  if (obj.isMapping()) {
    const Value *hit = obj.asDict().find(e.name);
    return hit ? *hit : missingKey(obj, e.name);
  }
  return missingKey(obj, e.name);
}

Value Interpreter::evalItem(const Expr &e) {
  Value obj = eval(*e.args[0]);
  Value key = eval(*e.args[1]);
  if (obj.isUndefined())
    throw TemplateError(e.line, obj.undefinedHint() + " (reading [" +
                                    key.repr() + "])");
  if (obj.isMapping()) {
    if (!key.isString())
      return missingKey(obj, key.repr());
    const Value *hit = obj.asDict().find(key.asString());
    return hit ? *hit : missingKey(obj, key.asString());
  }
  if ((obj.isList() || obj.isString()) && (key.isInt() || key.isBool())) {
    std::vector<size_t> offs;
    int64_t n;
    if (obj.isList()) {
      n = static_cast<int64_t>(obj.asList().size());
    } else {
      offs = codePointOffsets(obj.asString());
      n = static_cast<int64_t>(offs.size()) - 1;
    }
    int64_t i = key.asInt();
    if (i < 0)
      i += n;
    if (i < 0 || i >= n)
      return Value::undefined(std::string(obj.typeName()) +
                              " index out of range");
    if (obj.isList())
      return obj.asList()[static_cast<size_t>(i)];
    size_t b = offs[static_cast<size_t>(i)], end = offs[static_cast<size_t>(i) + 1];
    return Value::string(obj.asString().substr(b, end - b));
  }
  return missingKey(obj, key.repr());
}

Value Interpreter::evalSlice(const Expr &e) {
  Value obj = eval(*e.args[0]);
  if (obj.isUndefined())
    throw TemplateError(e.line, obj.undefinedHint() + " (slicing)");
  if (!obj.isList() && !obj.isString())
    throw TemplateError(e.line, std::string("cannot slice a ") +
                                    obj.typeName() + " value");
  auto part = [&](int k, bool &present) -> int64_t {
    present = false;
    if (!e.args[k])
      return 0;
    Value v = eval(*e.args[k]);
    if (v.isNone())
      return 0;
    if (!v.isInt() && !v.isBool())
      throw TemplateError(e.line, std::string("slice indices must be "
                                              "integers, not ") +
                                      v.typeName());
    present = true;
    return v.asInt();
  };
  bool hasStart, hasStop, hasStep;
  int64_t start = part(1, hasStart), stop = part(2, hasStop),
          stepBy = part(3, hasStep);
  if (!hasStep)
    stepBy = 1;
  if (stepBy == 0)
    throw TemplateError(e.line, "slice step cannot be zero");
  std::vector<size_t> offs;
  int64_t n;
  if (obj.isList()) {
    n = static_cast<int64_t>(obj.asList().size());
  } else {
    offs = codePointOffsets(obj.asString());
    n = static_cast<int64_t>(offs.size()) - 1;
  }
  // Python's PySlice_AdjustIndices.
  auto adjust = [&](int64_t v, bool present, int64_t dflt) {
    if (!present)
      return dflt;
    if (v < 0) {
      v += n;
      if (v < 0)
        v = stepBy < 0 ? -1 : 0;
    } else if (v >= n) {
      v = stepBy < 0 ? n - 1 : n;
    }
    return v;
  };
  start = adjust(start, hasStart, stepBy < 0 ? n - 1 : 0);
  stop = adjust(stop, hasStop, stepBy < 0 ? -1 : n);
  List items;
  std::string text;
  for (int64_t i = start; stepBy > 0 ? i < stop : i > stop; i += stepBy) {
    if (obj.isList()) {
      items.push_back(obj.asList()[static_cast<size_t>(i)]);
    } else {
      size_t b = offs[static_cast<size_t>(i)];
      text.append(obj.asString(), b, offs[static_cast<size_t>(i) + 1] - b);
    }
  }
  return obj.isList() ? Value::list(std::move(items))
                      : Value::string(std::move(text));
}

CallArgs Interpreter::evalArgs(const Expr &e, size_t first) {
  CallArgs args;
  for (size_t i = first; i < e.args.size(); ++i)
    args.positional.push_back(eval(*e.args[i]));
  for (const auto &kv : e.kwargs)
    args.keyword.emplace_back(kv.first, eval(*kv.second));
  return args;
}

Value Interpreter::evalCall(const Expr &e) {
  const Expr &callee = *e.args[0];
  Value fn;
  if (callee.kind == Expr::Kind::Attribute) {
    Value obj = eval(*callee.args[0]);
    if (obj.isUndefined())
      throw TemplateError(e.line, obj.undefinedHint() + " (calling '." +
                                      callee.name + "()')");
    CallArgs args = evalArgs(e, 1);
    Value out;
    if (callMethod(obj, callee.name, args, e.line, out))
      return out;
    const Value *member =
        obj.isMapping() ? obj.asDict().find(callee.name) : nullptr;
    if (!member || !member->isFunction())
      throw TemplateError(e.line, "unsupported method '" + callee.name +
                                      "' of a " + obj.typeName() + " value");
    fn = *member;
  } else {
    fn = eval(callee);
  }
  if (!fn.isFunction()) {
    std::string what = callee.kind == Expr::Kind::Name
                           ? "'" + callee.name + "'"
                           : "the called expression";
    if (fn.isUndefined())
      throw TemplateError(e.line, "unsupported function " + what +
                                      " (undefined)");
    throw TemplateError(e.line, what + " is not callable (a " +
                                    fn.typeName() + ")");
  }
  CallArgs args = evalArgs(e, 1);
  try {
    return fn.asFunction().call(args);
  } catch (const TemplateError &err) {
    if (err.line() == 0)
      throw TemplateError(e.line, err.message());
    throw;
  }
}

Value Interpreter::evalUnary(const Expr &e) {
  Value v = eval(*e.args[0]);
  if (e.name == "not")
    return Value::boolean(!v.truthy());
  if (v.isUndefined())
    throw TemplateError(e.line, v.undefinedHint());
  if (!v.isNumber())
    throw TemplateError(e.line, "bad operand type for unary " + e.name +
                                    ": " + v.typeName());
  if (e.name == "+")
    return v.isFloat() ? v : Value::integer(v.asInt());
  if (v.isFloat())
    return Value::number(-v.asDouble());
  if (v.asInt() == INT64_MIN)
    throw TemplateError(e.line, "integer overflow");
  return Value::integer(-v.asInt());
}

Value Interpreter::evalBinary(const Expr &e) {
  if (e.name == "and") {
    Value a = eval(*e.args[0]);
    return a.truthy() ? eval(*e.args[1]) : a;
  }
  if (e.name == "or") {
    Value a = eval(*e.args[0]);
    return a.truthy() ? a : eval(*e.args[1]);
  }
  Value a = eval(*e.args[0]);
  Value b = eval(*e.args[1]);
  if (e.name == "~") {
    std::string s = a.str();
    s += b.str();
    checkSize(s.size(), e.line);
    return Value::string(std::move(s));
  }
  return arithmetic(e.name, a, b, e.line);
}

Value Interpreter::arithmetic(const std::string &op, const Value &a,
                              const Value &b, int line) {
  if (a.isUndefined() || b.isUndefined())
    throw TemplateError(line, (a.isUndefined() ? a : b).undefinedHint() +
                                  " (operator '" + op + "')");
  auto fail = [&]() -> Value {
    throw TemplateError(line, "unsupported operand types for " + op + ": '" +
                                  a.typeName() + "' and '" + b.typeName() +
                                  "'");
  };
  if (a.isNumber() && b.isNumber()) {
    bool fl = a.isFloat() || b.isFloat();
    double x = a.asDouble(), y = b.asDouble();
    int64_t i = a.asInt(), j = b.asInt(), r = 0;
    auto overflow = [&]() -> Value {
      throw TemplateError(line, "integer overflow in '" + op + "'");
    };
    if (op == "+")
      return fl ? Value::number(x + y)
                : (__builtin_add_overflow(i, j, &r) ? overflow()
                                                    : Value::integer(r));
    if (op == "-")
      return fl ? Value::number(x - y)
                : (__builtin_sub_overflow(i, j, &r) ? overflow()
                                                    : Value::integer(r));
    if (op == "*")
      return fl ? Value::number(x * y)
                : (__builtin_mul_overflow(i, j, &r) ? overflow()
                                                    : Value::integer(r));
    if (op == "/" || op == "//" || op == "%") {
      if (fl ? y == 0 : j == 0)
        throw TemplateError(line, "division by zero");
      if (op == "/")
        return Value::number(x / y);
      if (fl) {
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0)))
          m += y;
        if (op == "%")
          return Value::number(m);
        double div = (x - m) / y, floorDiv = std::floor(div);
        return Value::number(div - floorDiv > 0.5 ? floorDiv + 1 : floorDiv);
      }
      if (i == INT64_MIN && j == -1)
        return overflow();
      int64_t q = i / j, m = i % j;
      if (m != 0 && ((m < 0) != (j < 0))) {
        --q;
        m += j;
      }
      return Value::integer(op == "%" ? m : q);
    }
    if (op == "**") {
      if (!fl && j >= 0) {
        int64_t acc = 1;
        for (int64_t k = 0; k < j; ++k) {
          if (__builtin_mul_overflow(acc, i, &acc))
            return overflow();
          if (acc == 0 || acc == 1)
            break;
        }
        return Value::integer(acc);
      }
      return Value::number(std::pow(x, y));
    }
    return fail();
  }
  if (op == "+") {
    if (a.isString() && b.isString()) {
      checkSize(a.asString().size() + b.asString().size(), line);
      return Value::string(a.asString() + b.asString());
    }
    if (a.isList() && b.isList()) {
      List items = a.asList();
      items.insert(items.end(), b.asList().begin(), b.asList().end());
      return Value::list(std::move(items));
    }
    return fail();
  }
  if (op == "*") {
    const Value &seq = a.isNumber() ? b : a;
    const Value &count = a.isNumber() ? a : b;
    if (!count.isNumber() || count.isFloat() ||
        !(seq.isString() || seq.isList()))
      return fail();
    int64_t n = std::max<int64_t>(0, count.asInt());
    size_t unit = seq.isString() ? seq.asString().size()
                                 : seq.asList().size() * sizeof(Value);
    if (unit && static_cast<uint64_t>(n) > kMaxValueBytes / unit)
      checkSize(kMaxValueBytes + 1, line);
    if (seq.isString()) {
      std::string s;
      for (int64_t k = 0; k < n && unit; ++k)
        s += seq.asString();
      return Value::string(std::move(s));
    }
    List items;
    for (int64_t k = 0; k < n && unit; ++k)
      items.insert(items.end(), seq.asList().begin(), seq.asList().end());
    return Value::list(std::move(items));
  }
  if (op == "%" && a.isString())
    throw TemplateError(line, "unsupported construct: '%' string formatting");
  return fail();
}

bool Interpreter::contains(const Value &container, const Value &item,
                           int line) {
  if (container.isString()) {
    if (!item.isString())
      throw TemplateError(line, std::string("'in <string>' requires a string "
                                            "on the left, not ") +
                                    item.typeName());
    return container.asString().find(item.asString()) != std::string::npos;
  }
  if (container.isMapping())
    return item.isString() && container.asDict().find(item.asString());
  if (container.isList()) {
    for (const Value &v : container.asList())
      if (equals(v, item))
        return true;
    return false;
  }
  if (container.isUndefined())
    return false;
  throw TemplateError(line, std::string("argument of type '") +
                                container.typeName() + "' is not iterable");
}

Value Interpreter::evalCompare(const Expr &e) {
  Value lhs = eval(*e.args[0]);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value rhs = eval(*e.args[k + 1]);
    const std::string &op = e.ops[k];
    bool r;
    if (op == "==")
      r = equals(lhs, rhs);
    else if (op == "!=")
      r = !equals(lhs, rhs);
    else if (op == "in")
      r = contains(rhs, lhs, e.line);
    else if (op == "not in")
      r = !contains(rhs, lhs, e.line);
    else if (op == "<")
      r = lessThan(lhs, rhs, e.line);
    else if (op == ">")
      r = lessThan(rhs, lhs, e.line);
    else if (op == "<=")
      r = !lessThan(rhs, lhs, e.line);
    else
      r = !lessThan(lhs, rhs, e.line);
    if (!r)
      return Value::boolean(false);
    lhs = std::move(rhs);
  }
  return Value::boolean(true);
}
