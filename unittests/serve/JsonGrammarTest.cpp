//===- JsonGrammarTest.cpp - JSON Schema matching byte by byte ------------===//

#include "JsonGrammar.h"

#include <gtest/gtest.h>

using namespace dsserve;
using ojson = nlohmann::ordered_json;

namespace {

std::shared_ptr<const Grammar> schema(const std::string &text) {
  std::string error;
  auto g = Grammar::fromSchema(ojson::parse(text), error);
  EXPECT_TRUE(g) << error;
  return g;
}

/// Whether `text` is a whole answer of the grammar (every byte taken, and
/// accepting at the end).
bool whole(const std::shared_ptr<const Grammar> &g, const std::string &text) {
  Matcher m(g);
  for (char c : text)
    if (!m.feed(uint8_t(c)))
      return false;
  return m.accepting();
}

/// Whether `text` can begin an answer.
bool prefix(const std::shared_ptr<const Grammar> &g, const std::string &text) {
  Matcher m(g);
  return m.feed(text);
}

} // namespace

TEST(JsonGrammar, AnyObject) {
  auto g = Grammar::anyObject();
  EXPECT_TRUE(whole(g, "{}"));
  EXPECT_TRUE(whole(g,
                    R"({"a": [1, 2.5e3, -0, 0.5E-2, true, null, "x\u00e9\n"],)"
                    "\n  \"b\" : {\"c\":{}}, \"\": false}"));
  EXPECT_TRUE(whole(g, "{\"é🦊\": \"ünï\"}"));
  EXPECT_FALSE(prefix(g, " {")); // the answer starts with its value
  EXPECT_FALSE(prefix(g, "["));
  EXPECT_FALSE(prefix(g, "\"x\""));
  EXPECT_FALSE(prefix(g, "```json"));
  EXPECT_FALSE(prefix(g, "{\"a\" 1"));
  EXPECT_FALSE(prefix(g, "{\"a\": 01"));
  EXPECT_FALSE(prefix(g, "{\"a\": tru "));
  EXPECT_FALSE(prefix(g, "{\"a\": \"raw\nnewline\"}"));
  EXPECT_FALSE(prefix(g, "{\"a\": \"\\x\"}"));
  // Strings are valid UTF-8.
  EXPECT_FALSE(prefix(g, "{\"a\": \"\xff"));
  EXPECT_FALSE(prefix(g, "{\"a\": \"\x80"));
  EXPECT_FALSE(prefix(g, "{\"a\": \"\xC3\""));      // a cut character
  EXPECT_TRUE(prefix(g, "{\"a\": \"\xF0\x9F\xA6")); // one to come
  EXPECT_FALSE(prefix(g, "{\"a\": [1,]}"));
  EXPECT_FALSE(prefix(g, "{,}"));
  EXPECT_FALSE(prefix(g, "{} ")); // nothing after the value
  EXPECT_FALSE(whole(g, "{\"a\": 1"));
  EXPECT_FALSE(whole(g, "{\"a\": 1."));
  // Whitespace runs and numbers are bounded.
  EXPECT_TRUE(prefix(g, "{" + std::string(kMaxWhitespace, ' ')));
  EXPECT_FALSE(prefix(g, "{" + std::string(kMaxWhitespace + 1, ' ')));
  EXPECT_FALSE(prefix(g, "{\"a\": " + std::string(kMaxNumber + 1, '1')));
  // Nesting past the bound is refused.
  EXPECT_TRUE(prefix(g, "{\"a\":" + std::string(kMaxDepth - 2, '[')));
  EXPECT_FALSE(prefix(g, "{\"a\":" + std::string(kMaxDepth + 1, '[')));
}

TEST(JsonGrammar, ObjectPropertiesInSchemaOrder) {
  auto g = schema(R"({"type": "object", "properties": {
      "name": {"type": "string"}, "age": {"type": "integer"},
      "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
      "nick": {"type": ["string", "null"]}},
    "required": ["name", "age"], "additionalProperties": false})");
  EXPECT_TRUE(whole(g, R"({"name": "Ada", "age": 36})"));
  EXPECT_TRUE(whole(
      g, R"({"name": "Ada", "age": -1, "tags": ["a", "b"], "nick": null})"));
  EXPECT_TRUE(whole(g, R"({"name":"Ada","age":0,"nick":"x"})"));
  EXPECT_FALSE(prefix(g, R"({"age")"));                      // out of order
  EXPECT_FALSE(whole(g, R"({"name": "Ada"})"));              // age is required
  EXPECT_FALSE(prefix(g, R"({"name": 3)"));                  // wrong type
  EXPECT_FALSE(prefix(g, R"({"name": "A", "age": 1.5)"));    // an integer
  EXPECT_FALSE(prefix(g, R"({"name": "A", "age": 1, "x")")); // unknown key
  EXPECT_FALSE(prefix(g, R"({"name": "A", "age": 1, "tags": ["a", "b", )"));
  EXPECT_FALSE(prefix(g, R"({"name": "A", "age": 1, "nick": 5)"));
}

TEST(JsonGrammar, EnumsConstsUnionsAndRefs) {
  auto g = schema(R"({"$defs": {
      "Node": {"type": "object", "properties": {
        "v": {"enum": [1, 12, "x", {"k": [true]}]},
        "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]}},
        "required": ["v", "next"]}},
    "$ref": "#/$defs/Node"})");
  EXPECT_TRUE(whole(g, R"({"v": 1, "next": null})"));
  EXPECT_TRUE(whole(
      g,
      R"({"v": 12, "next": {"v": "x", "next": {"v": {"k":[true]}, "next": null}}})"));
  EXPECT_FALSE(prefix(g, R"({"v": 13)"));
  EXPECT_FALSE(prefix(g, R"({"v": "y")"));
  EXPECT_FALSE(prefix(g, R"({"v": {"k": [true] })")); // the text exactly
  auto c = schema(R"({"const": "fixed"})");
  EXPECT_TRUE(whole(c, R"("fixed")"));
  EXPECT_FALSE(prefix(c, R"("fixe ")"));
  // A root number may end at the end of the text.
  auto n = schema(R"({"type": "number"})");
  EXPECT_TRUE(whole(n, "-12.5e+3"));
  EXPECT_FALSE(whole(n, "-"));
}

TEST(JsonGrammar, ChoicesAreRawText) {
  auto g = Grammar::choice({"positive", "negative", "neg"});
  EXPECT_TRUE(whole(g, "positive"));
  EXPECT_TRUE(whole(g, "neg"));
  EXPECT_TRUE(whole(g, "negative"));
  EXPECT_FALSE(whole(g, "nega"));
  EXPECT_FALSE(prefix(g, " positive"));
  EXPECT_FALSE(prefix(g, "\"positive\""));
}

TEST(JsonGrammar, RefusedSchemasNameTheKeyword) {
  auto refused = [](const std::string &text, const std::string &part) {
    std::string error;
    EXPECT_FALSE(Grammar::fromSchema(ojson::parse(text), error)) << text;
    EXPECT_NE(error.find(part), std::string::npos) << error;
  };
  refused(R"js({"type": "string", "pattern": "(?=a)"})js",
          "pattern: lookaround assertions are not supported");
  refused(R"({"pattern": "^a"})", "'pattern' is supported with");
  refused(R"({"type": "integer", "pattern": "^a"})",
          "'pattern' is supported with");
  refused(R"({"properties": {"a": {"not": {}}}})", "properties.a: 'not'");
  refused(R"({"$ref": "http://x/s.json"})", "not a local");
  refused(R"({"$ref": "#/$defs/Missing"})", "names nothing");
  refused(R"({"type": "object", "properties": {"a": {}}, "required": ["b"]})",
          "required names '\"b\"'");
  refused(R"({"type": "decimal"})", "unknown type 'decimal'");
  refused(R"(false)", "a false schema");
  refused(R"({"type": "array", "minItems": 3, "maxItems": 1})", "maxItems");
  refused(R"({"allOf": [{}, {}]})", "allOf of more than one");
}

TEST(JsonGrammar, TextThenValueForARequiredToolCall) {
  std::string error;
  auto g = Grammar::textThenValue(
      {{"get_weather\n```json\n",
        ojson::parse(R"({"type": "object", "properties": {"city":
            {"type": "string"}}, "required": ["city"]})")},
       {"now\n```json\n", ojson::parse(R"({"type": "object"})")}},
      error);
  ASSERT_TRUE(g) << error;
  EXPECT_TRUE(whole(g, "now\n```json\n{}"));
  EXPECT_TRUE(whole(g, "get_weather\n```json\n {\"city\": \"Oslo\"}"));
  EXPECT_FALSE(whole(g, "get_weather\n```json\n{}")); // city is required
  EXPECT_FALSE(prefix(g, "get_time"));
  EXPECT_FALSE(prefix(g, "now\n```json\n["));    // an object
  EXPECT_FALSE(prefix(g, "now\n```json\n{}\n")); // nothing after
  EXPECT_FALSE(Grammar::textThenValue(
      {{"f", ojson::parse(R"({"type": "string", "pattern": "\\1"})")}}, error));
  EXPECT_NE(error.find("pattern"), std::string::npos) << error;
}

TEST(JsonGrammar, StringLengthsInCharacters) {
  auto g = schema(R"({"type": "object", "properties": {
      "code": {"type": "string", "minLength": 2, "maxLength": 3}},
    "required": ["code"]})");
  EXPECT_TRUE(whole(g, R"({"code": "ab"})"));
  EXPECT_TRUE(whole(g, "{\"code\": \"é🦊\\n\"}")); // three characters
  EXPECT_FALSE(prefix(g, R"({"code": "a")"));         // too short to close
  EXPECT_FALSE(prefix(g, R"({"code": "abcd)"));       // too long
  EXPECT_FALSE(prefix(g, "{\"code\": \"ab\\u0041x"));
  std::string error;
  EXPECT_FALSE(Grammar::fromSchema(
      ojson::parse(R"({"type": "string", "minLength": 3, "maxLength": 2})"),
      error));
  EXPECT_NE(error.find("maxLength is below minLength"), std::string::npos);
}

TEST(JsonGrammar, PatternsMatchTheDecodedString) {
  auto zip = schema(R"({"type": "object", "properties": {
      "zip": {"type": "string", "pattern": "^\\d{5}$"}}, "required": ["zip"]})");
  EXPECT_TRUE(whole(zip, R"({"zip": "12345"})"));
  EXPECT_TRUE(prefix(zip, R"({"zip": "123)"));
  EXPECT_FALSE(prefix(zip, R"({"zip": "123a)"));
  EXPECT_FALSE(prefix(zip, R"({"zip": "1234")")); // cannot close yet
  EXPECT_FALSE(prefix(zip, R"({"zip": "123456)"));
  // The pattern reads characters, not their JSON escapes.
  auto quoted = schema(R"({"type": "string", "pattern": "^a\"b\\n\u00e9$"})");
  EXPECT_TRUE(whole(quoted, R"("a\"b\né")"));
  EXPECT_TRUE(whole(quoted, R"("\u0061\u0022b\u000A\u00E9")"));
  EXPECT_FALSE(prefix(quoted, R"("\u0062)"));
  EXPECT_FALSE(prefix(quoted, R"("a\u00)") && !prefix(quoted, R"("a\u002)"));
  EXPECT_FALSE(prefix(quoted, R"("a\u003)"));
  // Unanchored, as JSON Schema reads patterns: the string contains one.
  auto ab = schema(R"({"type": "string", "pattern": "ab", "maxLength": 4})");
  EXPECT_TRUE(whole(ab, R"("xaby")"));
  EXPECT_FALSE(prefix(ab, R"("xyz")"));
  EXPECT_FALSE(prefix(ab, R"("xyza)")); // no room left for the b
  // Lengths and the pattern together: no string that could not end.
  auto code = schema(R"({"type": "string", "pattern": "^[a-c]+-\\d+$",
                         "minLength": 4, "maxLength": 5})");
  EXPECT_TRUE(whole(code, R"("ab-12")"));
  EXPECT_TRUE(prefix(code, R"("abc-)"));   // "abc-1" fits
  EXPECT_FALSE(prefix(code, R"("abcc-)")); // no room for a digit
  EXPECT_TRUE(prefix(code, R"("ab-)"));
  EXPECT_FALSE(prefix(code, R"("a-1")")); // minLength 4
  EXPECT_FALSE(prefix(code, R"("abcd)"));
  std::string error;
  EXPECT_FALSE(Grammar::fromSchema(
      ojson::parse(
          R"({"type": "string", "pattern": "^a{3}$", "maxLength": 2})"),
      error));
  EXPECT_NE(error.find("no string of minLength..maxLength"), std::string::npos)
      << error;
  // Surrogate escapes are no characters on their own: refused there.
  auto any = schema(R"({"type": "string", "pattern": "."})");
  EXPECT_FALSE(prefix(any, R"("\ud83d)"));
  EXPECT_TRUE(whole(any, "\"🦊\""));
  // Beside other types: the pattern applies to the string alone.
  auto either = schema(R"({"type": ["string", "integer"], "pattern": "^x+$"})");
  EXPECT_TRUE(whole(either, "12"));
  EXPECT_TRUE(whole(either, R"("xx")"));
  EXPECT_FALSE(prefix(either, R"("y)"));
}

TEST(JsonGrammar, StringFormats) {
  struct Case {
    const char *format, *good, *bad;
  };
  for (const Case &c : {
           Case{"date", "2024-02-29", "2024-13-01"},
           Case{"time", "23:59:60.5+01:00", "24:00:00Z"},
           Case{"date-time", "2024-02-29T08:30:00Z", "2024-02-29 08:30:00Z"},
           Case{"email", "first.last+tag@mail.example.org", "a@b"},
           Case{"uuid", "123e4567-e89b-12d3-a456-426614174000",
                "123e4567-e89b-12d3-a456-42661417400"},
           Case{"ipv4", "192.168.0.255", "192.168.0.256"},
           Case{"hostname", "api-1.example.com", "-api.example.com"},
       }) {
    auto g = schema(std::string(R"({"type": "string", "format": ")") +
                    c.format + "\"}");
    EXPECT_TRUE(whole(g, std::string("\"") + c.good + "\"")) << c.format;
    EXPECT_FALSE(whole(g, std::string("\"") + c.bad + "\"")) << c.format;
  }
  // Formats not enforced leave the string free; a pattern wins over one.
  EXPECT_TRUE(whole(schema(R"({"type": "string", "format": "uri"})"),
                    R"("not a uri")"));
  EXPECT_TRUE(whole(schema(R"({"type": "string", "format": "date",
                              "pattern": "^x$"})"),
                    R"("x")"));
}

TEST(JsonGrammar, GuidedRegexIsRawText) {
  std::string error;
  auto g = Grammar::regex(R"(-?\d+(\.\d+)?)", error);
  ASSERT_TRUE(g) << error;
  EXPECT_TRUE(whole(g, "3.14"));
  EXPECT_TRUE(whole(g, "-7"));
  EXPECT_TRUE(prefix(g, "3."));
  EXPECT_FALSE(whole(g, "3."));
  EXPECT_FALSE(prefix(g, " 3")); // raw: no whitespace of JSON's
  EXPECT_FALSE(prefix(g, "3 "));
  Matcher m(g);
  EXPECT_FALSE(m.accepting());
  ASSERT_TRUE(m.feed(std::string("12")));
  EXPECT_TRUE(m.accepting()); // may end here, or go on
  EXPECT_TRUE(m.feed(uint8_t('3')));
  // Raw text takes any character the pattern does, newlines too.
  auto lines = Grammar::regex("(\\w+\n){2}", error);
  ASSERT_TRUE(lines) << error;
  EXPECT_TRUE(whole(lines, "ab\ncd\n"));
  // A pattern matching the empty text may end before its first byte.
  auto maybe = Grammar::regex("a*", error);
  ASSERT_TRUE(maybe);
  EXPECT_TRUE(Matcher(maybe).accepting());
  EXPECT_FALSE(Grammar::regex("(a", error));
  EXPECT_NE(error.find("missing ')'"), std::string::npos) << error;
}

TEST(JsonGrammar, IntegerRanges) {
  auto age = schema(R"({"type": "object", "properties": {
      "age": {"type": "integer", "minimum": 0, "maximum": 150},
      "delta": {"type": "integer", "exclusiveMinimum": -3, "exclusiveMaximum": 3}},
    "required": ["age", "delta"]})");
  EXPECT_TRUE(whole(age, R"({"age": 0, "delta": -2})"));
  EXPECT_TRUE(whole(age, R"({"age":150 ,"delta":2})"));
  EXPECT_FALSE(prefix(age, R"({"age": 151)"));
  EXPECT_FALSE(prefix(age, R"({"age": -)"));
  EXPECT_FALSE(prefix(age, R"({"age": 07)"));
  EXPECT_FALSE(prefix(age, R"({"age": 1.5)"));
  EXPECT_TRUE(prefix(age, R"({"age": 15)")); // 150 may still come
  EXPECT_FALSE(prefix(age, R"({"age": 3, "delta": 3)"));
  EXPECT_FALSE(prefix(age, R"({"age": 3, "delta": -3)"));
  // One bound; a root integer; draft 4's boolean exclusive flags.
  auto big = schema(R"({"type": "integer", "minimum": 10})");
  EXPECT_TRUE(whole(big, "10"));
  EXPECT_TRUE(whole(big, "98765432109"));
  EXPECT_TRUE(prefix(big, "9"));
  EXPECT_FALSE(whole(big, "9"));
  auto neg =
      schema(R"({"type": "integer", "maximum": 0, "exclusiveMaximum": true})");
  EXPECT_TRUE(whole(neg, "-1"));
  EXPECT_FALSE(whole(neg, "0"));
  // Numbers keep their syntax only (ranges not enforced on them).
  EXPECT_TRUE(whole(schema(R"({"type": "number", "maximum": 1})"), "2.5"));
  std::string error;
  EXPECT_FALSE(Grammar::fromSchema(
      ojson::parse(R"({"type": "integer", "minimum": 2.5, "maximum": 2.9})"),
      error));
  EXPECT_NE(error.find("no integer lies between"), std::string::npos) << error;
  EXPECT_FALSE(Grammar::fromSchema(
      ojson::parse(R"({"type": "integer", "minimum": "1"})"), error));
  EXPECT_NE(error.find("minimum must be a number"), std::string::npos) << error;
}
