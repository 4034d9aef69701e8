//===- StopStringsTest.cpp - stop sequences over streamed text ------------===//

#include "StopStrings.h"

#include <gtest/gtest.h>

using dsserve::StopStrings;

namespace {

/// Feeds `pieces` and returns everything emitted (flushing at the end).
std::string feed(StopStrings &s, const std::vector<std::string> &pieces) {
  std::string out;
  for (const std::string &p : pieces)
    out += s.push(p);
  return out + s.flush();
}

TEST(StopStrings, NoStopsPassesThrough) {
  StopStrings s({});
  EXPECT_EQ(s.push("abc"), "abc");
  EXPECT_FALSE(s.stopped());
}

TEST(StopStrings, MatchAcrossPiecesReturnsTextBefore) {
  StopStrings s({"STOP"});
  EXPECT_EQ(s.push("hello S"), "hello ");
  EXPECT_EQ(s.push("T"), "");
  EXPECT_EQ(s.push("OP and more"), "");
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.matched(), "STOP");
  EXPECT_EQ(s.push("later"), "");
  EXPECT_EQ(s.flush(), "");
}

TEST(StopStrings, FalseStartIsReleased) {
  StopStrings s({"STOP"});
  EXPECT_EQ(feed(s, {"ST", "OX", "!"}), "STOX!");
  EXPECT_FALSE(s.stopped());
}

TEST(StopStrings, EarliestOfSeveralWins) {
  StopStrings s({"world", "lo w"});
  EXPECT_EQ(feed(s, {"hello world"}), "hel");
  EXPECT_EQ(s.matched(), "lo w");
}

TEST(StopStrings, HeldTailAtTheEndIsFlushed) {
  StopStrings s({"abc"});
  EXPECT_EQ(s.push("xxab"), "xx");
  EXPECT_EQ(s.flush(), "ab");
}

TEST(StopStrings, NeverCutsAMultibyteCharacter) {
  // "ü" is C3 BC; a stop starting with the same lead byte must not make
  // the writer emit half of it.
  StopStrings s({"\xC3\xA4"}); // "ä"
  std::string out = s.push("gr\xC3\xBC\xC3");
  EXPECT_EQ(out, "gr\xC3\xBC");
  EXPECT_EQ(s.push("\xA4x"), "");
  EXPECT_TRUE(s.stopped());
}

TEST(StopStrings, StopAtTheVeryStart) {
  StopStrings s({"<"});
  EXPECT_EQ(feed(s, {"<end>"}), "");
  EXPECT_TRUE(s.stopped());
}

} // namespace
