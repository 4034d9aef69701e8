//===- Utf8Test.cpp - validation and lossy decoding -----------------------===//
#include "text/Utf8.h"

#include <gtest/gtest.h>

using namespace dsrt::text;

namespace {

std::string lossy(std::string_view s) {
  std::string out;
  EXPECT_EQ(appendUtf8Lossy(s, true, out), s.size());
  return out;
}

const std::string kFFFD = "\xEF\xBF\xBD";

} // namespace

TEST(Utf8, FindsTheFirstIllFormedByte) {
  EXPECT_EQ(findInvalidUtf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(findInvalidUtf8("\xE4\xB8\xAD\xF0\x9F\x98\x80"),
            std::string_view::npos);
  EXPECT_EQ(findInvalidUtf8("ab\x80"), 2u);           // lone continuation
  EXPECT_EQ(findInvalidUtf8("a\xC0\xAF"), 1u);        // overlong
  EXPECT_EQ(findInvalidUtf8("\xED\xA0\x80"), 0u);     // surrogate
  EXPECT_EQ(findInvalidUtf8("\xF4\x90\x80\x80"), 0u); // past U+10FFFF
  EXPECT_EQ(findInvalidUtf8("xy\xE4\xB8"), 2u);       // truncated
  EXPECT_EQ(findInvalidUtf8(std::string_view("\0a", 2)),
            std::string_view::npos);
}

// Unicode's "maximal subpart" practice (Table 3-8 of the standard): each
// maximal ill-formed subpart becomes one U+FFFD.
TEST(Utf8, ReplacesMaximalSubparts) {
  EXPECT_EQ(lossy("a\x80"
                  "b"),
            "a" + kFFFD + "b");
  EXPECT_EQ(lossy("\xE4\xB8z"), kFFFD + "z");              // one for two bytes
  EXPECT_EQ(lossy("\xC0\xAF"), kFFFD + kFFFD);             // C0 starts nothing
  EXPECT_EQ(lossy("\xED\xA0\x80"), kFFFD + kFFFD + kFFFD); // surrogate
  EXPECT_EQ(lossy("\xF0\x9F\x98"), kFFFD);                 // truncated at end
  EXPECT_EQ(lossy("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64"),
            "a" + kFFFD + kFFFD + kFFFD + "b" + kFFFD + "c" + kFFFD + kFFFD +
                "d");
}

TEST(Utf8, KeepsAnUnfinishedCharacterUntilFinal) {
  std::string out;
  EXPECT_EQ(appendUtf8Lossy("ab\xF0\x9F", false, out), 2u);
  EXPECT_EQ(out, "ab");
  out.clear();
  EXPECT_EQ(appendUtf8Lossy("\xF0\x9F\x98\x80", false, out), 4u);
  EXPECT_EQ(out, "\xF0\x9F\x98\x80");
  out.clear();
  // Ill-formed already: replaced without waiting.
  EXPECT_EQ(appendUtf8Lossy("\xF0z", false, out), 2u);
  EXPECT_EQ(out, kFFFD + "z");
}

TEST(Utf8, ByteSymbolsRoundTrip) {
  EXPECT_EQ(byteToSymbol(' '), 0x120u);  // "Ġ"
  EXPECT_EQ(byteToSymbol('\n'), 0x10Au); // "Ċ"
  EXPECT_EQ(byteToSymbol('A'), uint32_t('A'));
  for (int b = 0; b < 256; ++b)
    EXPECT_EQ(symbolToByte(byteToSymbol(uint8_t(b))), b);
  EXPECT_EQ(symbolToByte(0x4E2D), -1);
}
