//===- ValidationTest.cpp - input checks and their messages ---------------===//
#include "api/Validation.h"

#include <gtest/gtest.h>

#include <climits>
#include <vector>

using namespace dsrt;

TEST(Validation, TokenIdsInRange) {
  std::vector<int32_t> ok = {0, 5, 63};
  EXPECT_EQ(checkTokens(ok.data(), 3, 64), "");
  std::vector<int32_t> high = {1, 2, 70};
  EXPECT_EQ(checkTokens(high.data(), 3, 64),
            "token id 70 at index 2 is out of range [0, 64)");
  std::vector<int32_t> edge = {64};
  EXPECT_EQ(checkTokens(edge.data(), 1, 64),
            "token id 64 at index 0 is out of range [0, 64)");
  std::vector<int32_t> low = {3, -1};
  EXPECT_EQ(checkTokens(low.data(), 2, 64),
            "token id -1 at index 1 is out of range [0, 64)");
  EXPECT_EQ(checkTokens(high.data(), 3, 64, "forced token id"),
            "forced token id 70 at index 2 is out of range [0, 64)");
  // Only the first n are looked at.
  EXPECT_EQ(checkTokens(high.data(), 2, 64), "");
}

TEST(Validation, EmptyPrompt) {
  std::vector<int32_t> t = {1};
  EXPECT_EQ(checkTokens(t.data(), 0, 64),
            "empty prompt: at least one token is needed");
  EXPECT_EQ(checkTokens(nullptr, 0, 64),
            "empty prompt: at least one token is needed");
  EXPECT_EQ(checkTokens(t.data(), -5, 64),
            "empty prompt: at least one token is needed");
  EXPECT_NE(checkTokens(nullptr, 2, 64), "");
}

TEST(Validation, ContextFitsTheCache) {
  EXPECT_EQ(checkContext(0, 64, 64), "");
  EXPECT_EQ(checkContext(60, 4, 64), "");
  EXPECT_EQ(checkContext(0, 70, 64),
            "context of 70 tokens exceeds the cache capacity (64)");
  EXPECT_EQ(checkContext(63, 2, 64),
            "context of 65 tokens exceeds the cache capacity (64)");
  // No overflow for absurd lengths.
  EXPECT_EQ(checkContext(10, INT64_MAX, 64),
            "context of more than 2^63 tokens exceeds the cache capacity (64)");
}
