//===- WorkSlicesTest.cpp - the pool's split of a job over its threads ----===//
#include "cpu/WorkSlices.h"
#include "cpu/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

using namespace dsrt::cpu;

namespace {

/// Claims of `active` slots in a random order until none succeeds: every
/// chunk once, each slot's first claim at its slice's start and its own
/// later claims following on (one forward stream), steals from the back.
TEST(WorkSlices, EveryChunkOnceUnderOddSplitsAndLateThreads) {
  std::mt19937 rng(7);
  uint64_t g = 0;
  WorkSlices reused(3);
  for (int slots : {1, 2, 3, 5, 8})
    for (int64_t chunks : {0, 1, 2, 3, 7, 13, 64, 1000})
      for (int active = 1; active <= slots; ++active) {
        WorkSlices fresh(slots);
        WorkSlices &w = slots == 3 ? reused : fresh; // generations reused
        w.reset(++g, chunks);
        std::vector<int> hits(size_t(chunks), 0);
        std::vector<int64_t> next(size_t(slots), -1);
        std::vector<bool> done(size_t(active), false);
        int left = active;
        while (left > 0) {
          int s = int(rng() % unsigned(active));
          if (done[size_t(s)])
            continue;
          int64_t b = -1, e = -1;
          if (!w.claim(g, s, b, e)) {
            done[size_t(s)] = true;
            --left;
            continue;
          }
          ASSERT_LE(0, b);
          ASSERT_LT(b, e);
          ASSERT_LE(e, chunks);
          int64_t start = chunks * s / slots, end = chunks * (s + 1) / slots;
          if (b >= start && e <= end) { // from its own slice: in order
            EXPECT_EQ(b, next[size_t(s)] < 0 ? start : next[size_t(s)]);
            next[size_t(s)] = e;
          }
          for (int64_t c = b; c < e; ++c)
            hits[size_t(c)]++;
        }
        for (int64_t c = 0; c < chunks; ++c)
          ASSERT_EQ(hits[size_t(c)], 1)
              << "chunk " << c << " of " << chunks << ", " << slots
              << " slots, " << active << " claiming";
        // Claims of another generation fail, before and after the next.
        int64_t b, e;
        EXPECT_FALSE(w.claim(g - 1, 0, b, e));
        w.reset(++g, chunks);
        EXPECT_FALSE(w.claim(g - 1, 0, b, e));
        EXPECT_EQ(w.claim(g, 0, b, e), chunks > 0);
      }
}

TEST(WorkSlices, ThreadsClaimingAtOnceTakeEveryChunkOnce) {
  constexpr int kThreads = 4;
  WorkSlices w(kThreads);
  for (uint64_t g = 1; g <= 50; ++g) {
    int64_t chunks = int64_t(g * 37 % 301);
    std::vector<std::atomic<int>> hits(static_cast<size_t>(chunks));
    w.reset(g, chunks);
    std::vector<std::thread> threads;
    for (int s = 0; s < kThreads; ++s)
      threads.emplace_back([&, s] {
        int64_t b, e;
        while (w.claim(g, s, b, e))
          for (int64_t c = b; c < e; ++c)
            hits[size_t(c)]++;
      });
    for (std::thread &t : threads)
      t.join();
    for (int64_t c = 0; c < chunks; ++c)
      ASSERT_EQ(hits[size_t(c)].load(), 1) << "chunk " << c << " of " << chunks;
  }
}

/// parallelFor over the pool: every index once, ranges whole multiples of
/// the grain (but the last), for splits that do not divide evenly.
TEST(WorkSlices, ParallelForRangesAreGrainMultiples) {
  for (int64_t n : {1, 2, 3, 17, 1001, 4097})
    for (int64_t grain : {1, 3, 16, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> bad{0};
      parallelFor(n, grain, [&](int64_t b, int64_t e) {
        if (b >= e || b % grain != 0 || (e != n && e % grain != 0))
          bad++;
        for (int64_t i = b; i < e; ++i)
          hits[size_t(i)]++;
      });
      EXPECT_EQ(bad.load(), 0) << n << " / " << grain;
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[size_t(i)].load(), 1) << i << " of " << n;
    }
}

} // namespace
