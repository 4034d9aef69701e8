//===- JsonGrammar.h - JSON Schema as a byte-level matcher ------*- C++ -*-===//
//
// Structured outputs: a JSON Schema (OpenAI's response_format json_schema,
// vLLM's guided_json), "any JSON object" (json_object) or a list of choices
// (vLLM's guided_choice) becomes a Grammar, and a Matcher reads a model's
// answer one byte at a time, saying whether each byte can continue it. The
// token masks of TokenMask.h are built on it.
//
// What a schema constrains (and what it does not):
// - types (one or a list), const, enum, anyOf / oneOf (as alternatives),
//   allOf of one schema, local $ref (#/$defs/..., #/definitions/...,
//   recursive ones included);
// - objects with `properties`: the keys in the schema's order, each
//   required one present, optional ones possibly left out, no others (as
//   OpenAI's strict mode); objects without `properties`: any keys, values
//   of `additionalProperties` (a schema) or anything;
// - arrays: `items`, minItems, maxItems; strings: minLength, maxLength (in
//   characters, an escape one), `pattern` (Regex.h: the decoded string
//   contains a match, ECMAScript's rule) and the formats date, time,
//   date-time, email, uuid, ipv4, hostname (JsonSchema.cpp);
// - integers: minimum, maximum, exclusiveMinimum, exclusiveMaximum (the
//   pattern of the integers between, integerRangePattern);
// - strings, numbers, integers, booleans, null by their JSON syntax.
// Not enforced (the value is still of the right type): other string
// formats, a format beside a pattern, ranges of numbers that are not
// integers, multipleOf, uniqueItems. Refused with a message: a pattern Regex.h
// cannot enforce, or without "type": "string", prefixItems, not, if/then/else,
// a false schema, remote $refs. Inside a constrained string, \u escapes of
// surrogates are refused (the character itself may be written).
//
// Whitespace between tokens is allowed, at most kMaxWhitespace bytes in a
// row (pretty-printed JSON fits; a model cannot stall in it forever), but
// not before or after the whole value: the answer starts with it and ends
// with it. A number is at most kMaxNumber bytes.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_JSONGRAMMAR_H
#define DS_SERVE_JSONGRAMMAR_H

#include "Regex.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace dsserve {

constexpr int kMaxWhitespace = 32;
constexpr int kMaxNumber = 32;
constexpr int kMaxDepth = 64; // nesting of free-form values

class Grammar {
public:
  /// A schema (ordered: its properties keep the order they were written
  /// in); null with `error` set (one line, naming the keyword and where it
  /// is) when it uses what the matcher cannot enforce.
  static std::shared_ptr<const Grammar>
  fromSchema(const nlohmann::ordered_json &schema, std::string &error);
  /// Any JSON object (response_format json_object).
  static std::shared_ptr<const Grammar> anyObject();
  /// Exactly one of `choices`, as raw text (vLLM's guided_choice).
  static std::shared_ptr<const Grammar>
  choice(const std::vector<std::string> &choices);
  /// One of: a raw text then a JSON value of a schema (a tool call's name
  /// and its arguments); null with `error` naming the schema at fault.
  /// Raw `prefix`, a JSON value of `schema`, raw `suffix` (a tool call's
  /// body: fence, arguments, closing); either text may be empty.
  static std::shared_ptr<const Grammar>
  framedValue(const std::string &prefix, const nlohmann::ordered_json &schema,
              const std::string &suffix, std::string &error);
  static std::shared_ptr<const Grammar> textThenValue(
      const std::vector<std::pair<std::string, nlohmann::ordered_json>> &alts,
      std::string &error);
  /// Raw text that is one match of `pattern` (vLLM's guided_regex); null
  /// with `error` where Regex.h refuses it.
  static std::shared_ptr<const Grammar> regex(const std::string &pattern,
                                              std::string &error);

  struct Node {
    enum class Kind {
      Any,
      Object, // with properties: keys in order
      Map,    // free-form object: any keys, values of `extra`
      Array,
      String,
      Number,
      Integer,
      Literals, // exact texts (const, enum, true/false/null, choices)
      Union,
      Sequence, // parts, one after the other
      Pattern,  // raw text, one match of `regex` (guided_regex)
    } kind = Kind::Any;
    // Object: values[i] is the schema of property i; keyTexts[i] the keys
    // that may come when property i is the next unwritten one (i and the
    // optional ones after it, up to the first required) as JSON text,
    // sorted, and keyProps[i] their property indices.
    std::vector<int> values;
    std::vector<bool> required;
    std::vector<std::vector<std::string>> keyTexts;
    std::vector<std::vector<int>> keyProps;
    int extra = -1; // Map: the values' schema (-1: anything)
    int items = -1; // Array: the items' schema (-1: anything)
    int64_t minItems = 0, maxItems = -1;
    int64_t minLength = 0, maxLength = -1; // String: characters
    int regex = -1; // String (its decoded text), Pattern: regexOf(regex)
    std::vector<std::string> literals; // sorted
    bool raw = false; // Literals of raw text: no whitespace before them
    std::vector<int> alternatives;     // Union
    std::vector<int> parts;            // Sequence
  };
  const Node &node(int i) const { return nodes[size_t(i)]; }
  const Regex &regexOf(int i) const { return *regexes[size_t(i)]; }
  int root() const { return rootNode; }
  /// Raw text (choices), not JSON: no whitespace around it.
  bool raw = false;

private:
  friend class SchemaCompiler;
  std::vector<Node> nodes;
  std::vector<std::shared_ptr<const Regex>> regexes;
  int rootNode = 0;
};

/// The characters a string of `chars` characters so far may still take for
/// its minLength and maxLength (-1: none): at least the first, at most the
/// second (what a pattern's match must end within).
inline std::pair<int64_t, int64_t>
charactersLeft(int64_t minLength, int64_t maxLength, int64_t chars) {
  return {std::max<int64_t>(0, minLength - chars),
          maxLength >= 0 ? maxLength - chars : INT64_MAX};
}

/// A reader of one answer: the grammar's possible parses so far.
class Matcher {
public:
  explicit Matcher(std::shared_ptr<const Grammar> grammar);
  /// Takes one byte; false (and the matcher unchanged) when no parse can
  /// continue with it.
  bool feed(uint8_t byte);
  bool feed(const std::string &bytes); // all or nothing
  /// feed() without keeping the state to go back to: on false the
  /// matcher is dead (for the token walk, which works on copies).
  bool advance(uint8_t byte);
  /// The text so far is a whole value (only whitespace may follow).
  bool accepting() const;
  bool dead() const { return threads.empty(); }
  /// Every parse is inside a JSON string at a character boundary (not in
  /// an escape): VocabTrie::plainTokens() of at most this many characters
  /// may come next (INT64_MAX: any; -1: not in such a string).
  int64_t plainStringRoom() const;
  /// One parse reading text through a regex (a pattern or format string
  /// at its cursor, or guided_regex's raw text): the token walk then steps
  /// the regex alone, leaving the bytes that end such a string ('"', '\\',
  /// control bytes) to the matcher.
  struct RegexCursor {
    const Regex *rx = nullptr;
    int32_t state = 0, cp = 0, owed = 0;
    int64_t chars = 0, minLength = 0, maxLength = -1;
    bool inString = false; // a JSON string's, not raw text
  };
  bool regexCursor(RegexCursor &cursor) const;

private:
  struct Frame {
    enum Kind : uint8_t {
      Value,
      Lit,
      Str,
      Num,
      Obj,
      Map,
      Arr,
      Seq,
      Rs, // a string whose node has a regex (Str's fields, and the regex's)
      Rx,
      Done
    } kind;
    uint8_t phase = 0;
    int32_t node = -1;                  // the grammar node (-1: any value)
    int32_t a = 0, b = 0, c = 0, d = 0; // per kind (JsonGrammar.cpp)
    bool operator==(const Frame &o) const {
      return kind == o.kind && phase == o.phase && node == o.node && a == o.a &&
             b == o.b && c == o.c && d == o.d;
    }
  };
  struct Thread {
    std::vector<Frame> stack;
    int ws = 0; // whitespace bytes in a row
    bool operator==(const Thread &o) const {
      return ws == o.ws && stack == o.stack;
    }
  };
  /// A value of `node` expected on t (unions: one thread per
  /// alternative), appended to `out`.
  void pushValue(Thread t, int node, std::vector<Thread> &out,
                 int depth = 0) const;
  /// One byte on one thread; its continuations appended to `out`.
  void step(Thread t, uint8_t byte, std::vector<Thread> &out) const;
  void startValue(Thread t, int node, uint8_t byte,
                  std::vector<Thread> &out) const;
  void stepLiteral(Thread t, uint8_t byte, std::vector<Thread> &out) const;
  void stepNumber(Thread t, uint8_t byte, std::vector<Thread> &out) const;
  /// A string whose text must match a regex (a schema's pattern, format).
  void stepPatternString(Thread t, uint8_t byte,
                         std::vector<Thread> &out) const;
  void stepStructure(Thread t, uint8_t byte, std::vector<Thread> &out) const;
  /// The literal texts a Lit frame matches against.
  const std::vector<std::string> &texts(const Frame &f) const;
  /// The top frame's value is complete: pops it and tells its parent.
  void valueDone(Thread &t) const;
  bool finishable(const Thread &t) const;

  std::shared_ptr<const Grammar> grammar;
  std::vector<Thread> threads;
  std::vector<Thread> spare; // advance()'s next threads, reused
};

} // namespace dsserve

#endif // DS_SERVE_JSONGRAMMAR_H
