#include "support/JsonParser.h"

#include <gtest/gtest.h>

using namespace dsrt::json;

TEST(JsonParser, ParsesNestedValuesInOrder) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(R"({"b": [1, 2.5, -3e2], "a": {"x": null, "y": true}, "s": "q\"\u00e9"})", v, err)) << err;
  ASSERT_EQ(v.kind, Value::Object);
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.members[0].first, "b"); // document order, not sorted
  const Value *b = v.get("b");
  ASSERT_EQ(b->items.size(), 3u);
  EXPECT_TRUE(b->items[0].isInteger);
  EXPECT_EQ(b->items[0].integer, 1);
  EXPECT_FALSE(b->items[1].isInteger);
  EXPECT_DOUBLE_EQ(b->items[2].number, -300.0);
  EXPECT_TRUE(v.get("a")->get("x")->isNull());
  EXPECT_EQ(v.get("s")->string, "q\"\xc3\xa9");
}

TEST(JsonParser, KeepsDuplicateKeysForTheCallerToReport) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse(R"({"k": 1, "k": 2})", v, err));
  EXPECT_EQ(v.members.size(), 2u);
}

TEST(JsonParser, ExactLargeIntegers) {
  Value v;
  std::string err;
  ASSERT_TRUE(parse("9007199254740993", v, err));
  EXPECT_TRUE(v.isInteger);
  EXPECT_EQ(v.integer, 9007199254740993LL);
}

TEST(JsonParser, ReportsLineAndColumn) {
  Value v;
  std::string err;
  EXPECT_FALSE(parse("{\n  \"a\": 1,,\n}", v, err));
  EXPECT_EQ(err.substr(0, 4), "2:10") << err;
  EXPECT_FALSE(parse("[1, 2", v, err));
  EXPECT_NE(err.find("unterminated array"), std::string::npos) << err;
  EXPECT_FALSE(parse("\"abc", v, err));
  EXPECT_NE(err.find("unterminated string"), std::string::npos) << err;
  EXPECT_FALSE(parse("{} x", v, err));
  EXPECT_NE(err.find("trailing"), std::string::npos) << err;
  EXPECT_FALSE(parse("01", v, err));
  EXPECT_FALSE(parse("", v, err));
  EXPECT_FALSE(parse("tru", v, err));
}

TEST(JsonParser, BoundsNestingDepth) {
  Value v;
  std::string err;
  std::string deep(100000, '[');
  EXPECT_FALSE(parse(deep, v, err));
  EXPECT_NE(err.find("nesting deeper than 64"), std::string::npos) << err;
  std::string ok = std::string(60, '[') + std::string(60, ']');
  EXPECT_TRUE(parse(ok, v, err)) << err;
}
