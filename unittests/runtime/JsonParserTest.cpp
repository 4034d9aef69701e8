#include "support/JsonParser.h"

#include <gtest/gtest.h>

using namespace dsrt::json;

namespace {

std::string parseError(const std::string &text) {
  Value v;
  std::string err;
  EXPECT_FALSE(parse(text, v, err)) << "accepted: " << text;
  return err;
}

} // namespace

TEST(JsonParser, ParsesNestedValuesInOrder) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(
      R"( {"b": [1, 2.5, -3e2, false], "a": {"x": null, "y": true}, "s": ""} )",
      v, err))
      << err;
  ASSERT_EQ(v.kind, Value::Object);
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.members[0].first, "b"); // document order, not sorted
  EXPECT_EQ(v.members[1].first, "a");
  const Value *b = v.get("b");
  ASSERT_EQ(b->items.size(), 4u);
  EXPECT_TRUE(b->items[0].isInteger);
  EXPECT_EQ(b->items[0].integer, 1);
  EXPECT_FALSE(b->items[1].isInteger);
  EXPECT_DOUBLE_EQ(b->items[1].number, 2.5);
  EXPECT_DOUBLE_EQ(b->items[2].number, -300.0);
  EXPECT_EQ(b->items[3].kind, Value::Bool);
  EXPECT_FALSE(b->items[3].boolean);
  EXPECT_TRUE(v.get("a")->get("x")->isNull());
  EXPECT_TRUE(v.get("a")->get("y")->boolean);
  EXPECT_EQ(v.get("s")->kind, Value::String);
  EXPECT_EQ(v.get("missing"), nullptr);
  EXPECT_EQ(b->get("x"), nullptr); // not an object
}

TEST(JsonParser, DuplicateKeysAreKeptAndFound) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(R"({"k": 1, "j": 2, "k": 3})", v, err));
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.get("k")->integer, 1); // the first one
  const std::string *dup = findDuplicateKey(v);
  ASSERT_NE(dup, nullptr);
  EXPECT_EQ(*dup, "k");
  EXPECT_EQ(dup, &v.members[2].first); // the repetition, not the original
  ASSERT_TRUE(parse(R"({"k": 1, "K": 2, "k2": {"k": 1}})", v, err));
  EXPECT_EQ(findDuplicateKey(v), nullptr);
  ASSERT_TRUE(parse("[1, 1]", v, err));
  EXPECT_EQ(findDuplicateKey(v), nullptr);
}

TEST(JsonParser, IntegersAreExactWithinInt64) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse("9007199254740993", v, err)); // 2^53 + 1
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, 9007199254740993LL);
  ASSERT_TRUE(parse("9223372036854775807", v, err));
  EXPECT_EQ(v.integer, INT64_MAX);
  ASSERT_TRUE(parse("-9223372036854775808", v, err));
  EXPECT_EQ(v.integer, INT64_MIN);
  ASSERT_TRUE(parse("9223372036854775808", v, err)); // a number, not an int64
  EXPECT_FALSE(v.isInteger);
  EXPECT_DOUBLE_EQ(v.number, 9223372036854775808.0);
  ASSERT_TRUE(parse("1.0", v, err));
  EXPECT_FALSE(v.isInteger);
  ASSERT_TRUE(parse("1e2", v, err));
  EXPECT_FALSE(v.isInteger);
  EXPECT_DOUBLE_EQ(v.number, 100.0);
  ASSERT_TRUE(parse("-0", v, err));
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, 0);
  ASSERT_TRUE(parse("0.5E-3", v, err));
  EXPECT_DOUBLE_EQ(v.number, 0.0005);
  ASSERT_TRUE(parse("1e-999", v, err)) << err; // underflow rounds to zero
  EXPECT_EQ(v.number, 0.0);
  EXPECT_EQ(parseError("1e999"), "1:1: number out of range");
}

TEST(JsonParser, StringEscapesAndUnicode) {
  Value v;
  std::string err;
  ASSERT_TRUE(
      parse(R"("q\"\\\/\b\f\n\r\t|\u0041\u00e9\u20ac\ud83d\ude00")", v, err))
      << err;
  EXPECT_EQ(v.string, "q\"\\/\b\f\n\r\t|A\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  ASSERT_TRUE(parse("\"\\u0000x\"", v, err));
  EXPECT_EQ(v.string, std::string("\0x", 2));
  // Raw UTF-8 passes through unchanged.
  ASSERT_TRUE(parse("\"\xc3\xa9\xf0\x9f\x98\x80\"", v, err)) << err;
  EXPECT_EQ(v.string, "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(JsonParser, RefusesBrokenUnicode) {
  EXPECT_EQ(parseError(R"("ab\ud83d")"),
            "1:4: high surrogate not followed by a low one");
  EXPECT_EQ(parseError(R"("\ud83d\u0041")"),
            "1:2: high surrogate not followed by a low one");
  EXPECT_EQ(parseError(R"("\ude00")"), "1:2: lone low surrogate in \\u escape");
  EXPECT_EQ(parseError("\"a\xff\""), "1:3: invalid UTF-8 in string");
  EXPECT_EQ(parseError("\"\xc0\x80\""),
            "1:2: invalid UTF-8 in string"); // overlong
  EXPECT_EQ(parseError("\"\xe0\x80\xaf\""),
            "1:2: invalid UTF-8 in string"); // overlong '/'
  EXPECT_EQ(parseError("\"\xf4\x90\x80\x80\""),
            "1:2: invalid UTF-8 in string"); // > U+10FFFF
  EXPECT_EQ(parseError("\"\xed\xa0\x80\""),
            "1:2: invalid UTF-8 in string"); // surrogate
  EXPECT_EQ(parseError("\"\xe2\x82\""),
            "1:2: invalid UTF-8 in string"); // truncated
  EXPECT_EQ(parseError("\xc3\xa9"), "1:1: unexpected byte 0xc3");
}

TEST(JsonParser, StructureErrorsReportLineAndColumn) {
  EXPECT_EQ(parseError("{\n  \"a\": 1,,\n}"),
            "2:10: expected a string key in object");
  EXPECT_EQ(parseError(R"({"a": 1,})"), "1:9: expected a string key in object");
  EXPECT_EQ(parseError(R"({"a" 1})"), "1:6: expected ':' after object key");
  EXPECT_EQ(parseError(R"({"a": 1 "b": 2})"),
            "1:9: expected ',' or '}' in object");
  EXPECT_EQ(parseError("[1 2]"), "1:4: expected ',' or ']' in array");
  EXPECT_EQ(parseError("[1,]"), "1:4: unexpected character ']'");
  EXPECT_EQ(parseError("\n\n  [1, 2"), "3:3: unterminated array");
  EXPECT_EQ(parseError(R"({"a": 1)"), "1:1: unterminated object");
  EXPECT_EQ(parseError("{"), "1:1: unterminated object");
  EXPECT_EQ(parseError("{} x"),
            "1:4: trailing characters after the JSON value");
  EXPECT_EQ(parseError("\"\xc3\xa9\" x"),
            "1:5: trailing characters after the JSON value");
  EXPECT_EQ(parseError(""), "1:1: unexpected end of input");
  EXPECT_EQ(parseError("  \n"), "2:1: unexpected end of input");
  EXPECT_EQ(parseError("@"), "1:1: unexpected character '@'");
  EXPECT_EQ(parseError("[tru]"), "1:2: invalid literal");
  EXPECT_EQ(parseError("nul"), "1:1: invalid literal");
}

TEST(JsonParser, ScalarErrorsReportLineAndColumn) {
  EXPECT_EQ(parseError("01"), "1:1: leading zeros are not allowed");
  EXPECT_EQ(parseError("-01"), "1:2: leading zeros are not allowed");
  EXPECT_EQ(parseError("-"), "1:2: invalid number");
  EXPECT_EQ(parseError("[1.]"), "1:4: invalid number");
  EXPECT_EQ(parseError("1e+"), "1:4: invalid number");
  EXPECT_EQ(parseError("+1"), "1:1: unexpected character '+'");
  EXPECT_EQ(parseError("\"abc"), "1:1: unterminated string");
  EXPECT_EQ(parseError("[\"a\\"), "1:2: unterminated string");
  EXPECT_EQ(parseError("\"a\tb\""), "1:3: control character in string");
  EXPECT_EQ(parseError(R"("a\x")"), "1:3: invalid escape '\\x'");
  EXPECT_EQ(parseError(R"("\u12G4")"), "1:6: invalid \\u escape");
  EXPECT_EQ(parseError(R"("\u12)"), "1:6: truncated \\u escape");
}

TEST(JsonParser, BoundsNestingDepth) {
  Value v;
  std::string err;
  std::string ok = std::string(kMaxDepth, '[') + std::string(kMaxDepth, ']');
  EXPECT_TRUE(parse(ok, v, err)) << err;
  std::string over =
      std::string(kMaxDepth + 1, '[') + std::string(kMaxDepth + 1, ']');
  EXPECT_EQ(parseError(over), "1:65: nesting deeper than 64 levels");
  // Far deeper input fails the same way instead of overflowing the stack.
  EXPECT_EQ(parseError(std::string(1000000, '[')),
            "1:65: nesting deeper than 64 levels");
  std::string objects;
  for (int i = 0; i <= kMaxDepth; ++i)
    objects += "{\"k\":";
  EXPECT_EQ(parseError(objects), "1:321: nesting deeper than 64 levels");
}
