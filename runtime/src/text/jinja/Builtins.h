//===- Builtins.h - filters, tests, methods and globals ---------*- C++ -*-===//
//
// What templates call by name: Jinja's filters and tests, the Python str and
// dict methods the sandbox allows, and the globals Hugging Face provides
// (namespace, range, raise_exception). Python's meanings throughout; a name
// not here is refused at parse time (filters, tests) or when called.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_JINJA_BUILTINS_H
#define DSRT_TEXT_JINJA_BUILTINS_H

#include "text/jinja/Value.h"

#include <string>
#include <vector>

namespace dsrt::text::jinja {

// Longest string or list a template may build (a runaway `'x' * n` fails
// instead of exhausting memory).
constexpr size_t kMaxValueBytes = size_t(64) << 20;
// Jinja's sandbox caps range() at this many items.
constexpr int64_t kMaxRange = 100000;

bool hasFilter(const std::string &name);
bool hasTest(const std::string &name);

Value applyFilter(const std::string &name, const Value &operand,
                  const CallArgs &args, int line);
bool applyTest(const std::string &name, const Value &operand,
               const CallArgs &args, int line);

// Calls object.name(args) when the object's type has that method; returns
// false when it has none.
bool callMethod(const Value &object, const std::string &name,
                const CallArgs &args, int line, Value &out);

// The global functions: namespace, range, raise_exception, dict. Each
// namespace() object is also appended to *roots (see Interpreter).
std::vector<std::pair<std::string, Value>>
globalFunctions(std::vector<std::shared_ptr<Dict>> *roots);

// Shared helpers.
void checkSize(size_t bytes, int line);
// Python's str.strip/lstrip/rstrip: chars == nullptr strips Unicode
// whitespace, else any code point of *chars.
std::string stripString(const std::string &s, const std::string *chars,
                        bool left, bool right);
// Items a `for` loop or list() sees: list items, dict keys, code points.
std::vector<Value> iterate(const Value &v, int line, const char *what);
// An argument by position or keyword; Value() (undefined) when absent.
Value argument(const CallArgs &args, size_t index, const char *keyword);

} // namespace dsrt::text::jinja

#endif // DSRT_TEXT_JINJA_BUILTINS_H
