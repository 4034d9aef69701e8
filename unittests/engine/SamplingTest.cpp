//===- SamplingTest.cpp - dsrt_sample
//--------------------------------------===//
#include "dsrt/dsrt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <vector>

namespace {

std::vector<float> randomLogits(int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 2.0f);
  std::vector<float> l(static_cast<size_t>(vocab));
  for (float &v : l)
    v = d(rng);
  return l;
}

int64_t argmax(const std::vector<float> &l) {
  return std::max_element(l.begin(), l.end()) - l.begin();
}

} // namespace

TEST(Sampling, GreedyIsTheFirstArgmax) {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 3.0f};
  uint64_t rng = 1;
  EXPECT_EQ(dsrt_sample(l.data(), 4, 0.0f, 1.0f, &rng), 1);
  EXPECT_EQ(dsrt_sample(l.data(), 4, -2.0f, 1.0f, &rng), 1);
  EXPECT_EQ(dsrt_sample(l.data(), 4, 1.0f, 0.0f, &rng), 1);
  EXPECT_EQ(rng, 1u); // greedy draws no random number
  for (uint32_t s = 0; s < 20; ++s) {
    std::vector<float> r = randomLogits(1000, s);
    EXPECT_EQ(dsrt_sample(r.data(), 1000, 0.0f, 0.9f, nullptr), argmax(r));
  }
}

TEST(Sampling, NaNNeverWins) {
  std::vector<float> l = {NAN, 1.0f, NAN, 2.0f, NAN};
  EXPECT_EQ(dsrt_sample(l.data(), 5, 0.0f, 1.0f, nullptr), 3);
  uint64_t rng = 5;
  for (int i = 0; i < 200; ++i) {
    int32_t t = dsrt_sample(l.data(), 5, 1.0f, 1.0f, &rng);
    EXPECT_TRUE(t == 1 || t == 3) << t;
  }
  // NaN options mean "off": greedy.
  EXPECT_EQ(dsrt_sample(l.data(), 5, NAN, 0.9f, &rng), 3);
  EXPECT_EQ(dsrt_sample(l.data(), 5, 1.0f, NAN, &rng), 3);
}

TEST(Sampling, BadArgumentsDoNotCrash) {
  std::vector<float> l = {1.0f, 2.0f};
  EXPECT_EQ(dsrt_sample(nullptr, 2, 1.0f, 1.0f, nullptr), -1);
  EXPECT_EQ(dsrt_sample(l.data(), 0, 1.0f, 1.0f, nullptr), -1);
  EXPECT_EQ(dsrt_sample(l.data(), -3, 0.0f, 1.0f, nullptr), -1);
  // No rng state: still a valid token.
  int32_t t = dsrt_sample(l.data(), 2, 1.0f, 1.0f, nullptr);
  EXPECT_TRUE(t == 0 || t == 1);
  // Infinite logits: the +inf one is the only choice.
  std::vector<float> inf = {1.0f, INFINITY, 2.0f};
  EXPECT_EQ(dsrt_sample(inf.data(), 3, 1.0f, 1.0f, nullptr), 1);
  std::vector<float> ninf = {-INFINITY, -INFINITY};
  EXPECT_EQ(dsrt_sample(ninf.data(), 2, 1.0f, 1.0f, nullptr), 0);
}

TEST(Sampling, DeterministicForASeed) {
  std::vector<float> l = randomLogits(50, 3);
  for (uint64_t seed : {1ull, 42ull, 1234567ull}) {
    uint64_t a = seed, b = seed;
    std::vector<int32_t> x, y;
    for (int i = 0; i < 50; ++i) {
      x.push_back(dsrt_sample(l.data(), 50, 1.3f, 0.95f, &a));
      y.push_back(dsrt_sample(l.data(), 50, 1.3f, 0.95f, &b));
    }
    EXPECT_EQ(x, y);
    EXPECT_EQ(a, b);
    // It does sample: 50 draws at temperature 1.3 are not all the same.
    EXPECT_GT(std::set<int32_t>(x.begin(), x.end()).size(), 3u);
  }
  // Another seed gives another sequence.
  uint64_t a = 1, b = 2;
  std::vector<int32_t> x, y;
  for (int i = 0; i < 50; ++i) {
    x.push_back(dsrt_sample(l.data(), 50, 1.3f, 0.95f, &a));
    y.push_back(dsrt_sample(l.data(), 50, 1.3f, 0.95f, &b));
  }
  EXPECT_NE(x, y);
}

TEST(Sampling, TopPKeepingOneTokenIsGreedy) {
  for (uint32_t s = 0; s < 50; ++s) {
    std::vector<float> l = randomLogits(300, s);
    uint64_t rng = s + 1;
    EXPECT_EQ(dsrt_sample(l.data(), 300, 0.7f, 1e-6f, &rng), argmax(l));
  }
  // Ties: the nucleus of one is the lower id, like greedy.
  std::vector<float> tie = {0.0f, 5.0f, 5.0f};
  uint64_t rng = 9;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(dsrt_sample(tie.data(), 3, 1.0f, 1e-6f, &rng), 1);
  // Many ties (past std::sort's insertion-sort cutoff).
  std::vector<float> many(200, 1.0f);
  for (int64_t i : {37, 80, 81, 150})
    many[size_t(i)] = 2.0f;
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(dsrt_sample(many.data(), 200, 1.0f, 1e-6f, &rng), 37);
}

TEST(Sampling, TopPExcludesTheTail) {
  // p = softmax([2, 1, 0, -1]) = [0.644, 0.237, 0.087, 0.032]: top_p 0.85
  // keeps {0, 1} (0.881); the others never come up.
  std::vector<float> l = {2.0f, 1.0f, 0.0f, -1.0f};
  uint64_t rng = 11;
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i)
    ++counts[dsrt_sample(l.data(), 4, 1.0f, 0.85f, &rng)];
  EXPECT_EQ(counts[2] + counts[3], 0);
  // Renormalised over the nucleus: 0.731 / 0.269.
  EXPECT_NEAR(counts[0] / 4000.0, 0.731, 0.03);
}

TEST(Sampling, FollowsTheSoftmaxAtTemperature) {
  std::vector<float> l = {1.0f, 0.0f, -1.0f};
  for (float temp : {0.5f, 1.0f, 2.0f}) {
    double z = 0, p[3];
    for (int i = 0; i < 3; ++i)
      z += p[i] = std::exp(l[size_t(i)] / temp);
    int counts[3] = {0, 0, 0};
    uint64_t rng = 77;
    const int draws = 20000;
    for (int i = 0; i < draws; ++i)
      ++counts[dsrt_sample(l.data(), 3, temp, 1.0f, &rng)];
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(counts[i] / double(draws), p[i] / z, 0.015)
          << "temperature " << temp << " token " << i;
  }
}
