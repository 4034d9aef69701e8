//===- Value.h - values of the Jinja interpreter ----------------*- C++ -*-===//
//
// The values a chat template computes with, with Python's meanings (Hugging
// Face renders templates with Python's Jinja2): truthiness, equality across
// int/float/bool, str() and repr() for printing, insertion-ordered dicts.
// Lists and dicts are shared (copying a Value never copies a container), as
// Python shares references; templates only mutate namespaces.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_JINJA_VALUE_H
#define DSRT_TEXT_JINJA_VALUE_H

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace dsrt::text::jinja {

// Every failure while parsing or rendering: the template line (0 = not tied
// to one) and the message, joined by what() as "line N: message".
class TemplateError : public std::runtime_error {
public:
  TemplateError(int line, const std::string &message);
  int line() const { return line_; }
  const std::string &message() const { return message_; }

private:
  int line_;
  std::string message_;
};

// Deepest list/dict nesting a value may have: freeing or printing a deeper
// one would recurse past the stack (`set ns.x = [ns.x]` in a loop).
constexpr uint32_t kMaxNesting = 512;

class Value;
using List = std::vector<Value>;
struct Dict;
struct Function;

// Arguments of a call: positional then keyword, as Python passes them.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

class Value {
public:
  enum class Kind {
    Undefined,
    None,
    Bool,
    Int,
    Float,
    String,
    List,
    Dict,
    Namespace,
    Function
  };

  Value() = default; // undefined
  // An undefined value that remembers what was missing ("'x' is undefined"),
  // for the error raised when it is used.
  static Value undefined(std::string hint);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value number(double d);
  static Value string(std::string s);
  static Value list(List items);
  static Value dict(std::shared_ptr<Dict> d);
  static Value emptyDict();
  static Value namespaceObject(std::shared_ptr<Dict> d);
  static Value function(std::string name,
                        std::function<Value(const CallArgs &)> fn);

  Kind kind() const { return kind_; }
  bool isUndefined() const { return kind_ == Kind::Undefined; }
  bool isNone() const { return kind_ == Kind::None; }
  bool isBool() const { return kind_ == Kind::Bool; }
  bool isInt() const { return kind_ == Kind::Int; }
  bool isFloat() const { return kind_ == Kind::Float; }
  // Python's bool is an int: True + 1 == 2.
  bool isNumber() const { return isInt() || isFloat() || isBool(); }
  bool isString() const { return kind_ == Kind::String; }
  bool isList() const { return kind_ == Kind::List; }
  // Dicts and namespaces both map names to values.
  bool isMapping() const {
    return kind_ == Kind::Dict || kind_ == Kind::Namespace;
  }
  bool isFunction() const { return kind_ == Kind::Function; }

  bool asBool() const { return b_; }
  int64_t asInt() const { return isBool() ? (b_ ? 1 : 0) : i_; }
  double asDouble() const {
    return isFloat() ? d_ : static_cast<double>(asInt());
  }
  const std::string &asString() const { return *s_; }
  std::string undefinedHint() const {
    return s_ ? *s_ : std::string("value is undefined");
  }
  const List &asList() const { return *list_; }
  Dict &asDict() const { return *dict_; }
  const Function &asFunction() const { return *fn_; }

  // Nesting of immutable containers (0 for scalars). Namespaces and loop
  // objects are mutable: they count as 1 and the interpreter breaks their
  // links when a render ends.
  uint32_t depth() const { return depth_; }

  // Python's truth value.
  bool truthy() const;
  // Python's str(): what {{ value }} prints. Undefined prints nothing.
  std::string str() const;
  // Python's repr(): how values print inside lists and dicts.
  std::string repr() const;
  // The Python type name, for error messages ("str", "NoneType", ...).
  const char *typeName() const;

private:
  Kind kind_ = Kind::Undefined;
  uint32_t depth_ = 0;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::shared_ptr<const std::string> s_;
  std::shared_ptr<const List> list_;
  std::shared_ptr<Dict> dict_;
  std::shared_ptr<const Function> fn_;
};

struct Dict {
  std::vector<std::pair<std::string, Value>> items;
  const Value *find(const std::string &key) const;
  void set(const std::string &key, Value value);
};

struct Function {
  std::string name;
  std::function<Value(const CallArgs &)> call;
};

// Python's ==, with 1 == 1.0 == True and element-wise containers.
bool equals(const Value &a, const Value &b);
// Python's <, for numbers, strings (code point order) and lists; throws for
// other pairs, naming the types.
bool lessThan(const Value &a, const Value &b, int line);
// Python's repr() of a float (shortest text that reads back the same).
std::string formatFloat(double d);
// json.dumps as transformers' tojson filter calls it (ensure_ascii=False,
// key order kept; indent < 0 means none).
std::string toJson(const Value &v, int indent, int line);
// Number of code points of UTF-8 text (Python's len of a str).
size_t codePointCount(const std::string &s);
// Byte offsets of each code point's start, plus the end.
std::vector<size_t> codePointOffsets(const std::string &s);

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_VALUE_H
