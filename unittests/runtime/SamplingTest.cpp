#include "dsrt/dsrt.h"

#include <gtest/gtest.h>
#include <vector>

TEST(Sampling, GreedyIsArgmax) {
  std::vector<float> l = {0.1f, 3.0f, -1.0f, 2.9f};
  uint64_t rng = 1;
  EXPECT_EQ(dsrt_sample(l.data(), 4, 0.0f, 1.0f, &rng), 1);
  EXPECT_EQ(dsrt_sample(l.data(), 4, 1.0f, 0.0f, &rng), 1);
}

TEST(Sampling, DeterministicForASeed) {
  std::vector<float> l(50);
  for (int i = 0; i < 50; ++i)
    l[i] = float(i % 7) * 0.3f;
  uint64_t a = 42, b = 42;
  std::vector<int> x, y;
  for (int i = 0; i < 20; ++i) {
    x.push_back(dsrt_sample(l.data(), 50, 1.0f, 0.95f, &a));
    y.push_back(dsrt_sample(l.data(), 50, 1.0f, 0.95f, &b));
  }
  EXPECT_EQ(x, y);
  // Not a constant: at temperature 1 over many near-equal logits, values vary.
  EXPECT_NE(std::count(x.begin(), x.end(), x[0]), 20);
}

TEST(Sampling, TinyTopPKeepsOnlyTheBest) {
  std::vector<float> l = {0.0f, 0.5f, 0.4f};
  uint64_t rng = 7;
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(dsrt_sample(l.data(), 3, 1.0f, 1e-6f, &rng), 1);
}

TEST(Sampling, TopPExcludesTheTail) {
  // p ~ [0.5, 0.5, ~0]: with top_p 0.9 the third token is never drawn.
  std::vector<float> l = {10.0f, 10.0f, -10.0f};
  uint64_t rng = 3;
  for (int i = 0; i < 200; ++i)
    EXPECT_NE(dsrt_sample(l.data(), 3, 1.0f, 0.9f, &rng), 2);
}
