//===- ThreadPoolTest.cpp - parallelFor's completion and its statistics ---===//
#include "cpu/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <random>
#include <thread>
#include <vector>

using namespace dsrt::cpu;

namespace {

void spinFor(std::chrono::microseconds d) {
  auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
  }
}

/// parallelFor returns only once every chunk has run, whoever ran it: the
/// caller waits for chunks a worker holds (here slow ones, of random
/// lengths, in regions back to back, as prefill issues them), and every
/// write of a chunk is visible after the return.
TEST(ThreadPool, ReturnsAfterEveryChunkRanAndItsWritesAreVisible) {
  std::mt19937 rng(11);
  for (int region = 0; region < 300; ++region) {
    int64_t n = 1 + int64_t(rng() % 40);
    std::vector<int> out(static_cast<size_t>(n), 0);
    std::vector<int> delay(static_cast<size_t>(n));
    for (int &d : delay)
      d = int(rng() % 4 == 0 ? rng() % 300 : 0);
    parallelFor(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        spinFor(std::chrono::microseconds(delay[size_t(i)]));
        out[size_t(i)] = int(i) + 1; // plain writes: the return publishes
      }
    });
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(out[size_t(i)], i + 1)
          << "index " << i << " of region " << region;
  }
}

/// The pool's busy time counts the threads' time in chunks: at least the
/// work the chunks did, at most threads x the regions' wall time.
TEST(ThreadPool, BusySecondsCountTheChunksWork) {
  if (numThreads() < 2)
    GTEST_SKIP() << "one thread: nothing is split (DSRT_NUM_THREADS=1)";
  PoolStats before = poolStats();
  const int64_t chunks = 8;
  const auto each = std::chrono::microseconds(2000);
  for (int r = 0; r < 5; ++r)
    parallelFor(chunks, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        spinFor(each);
    });
  PoolStats after = poolStats();
  double busy = after.busySeconds - before.busySeconds;
  double wall = after.seconds - before.seconds;
  EXPECT_EQ(after.regions - before.regions, 5);
  EXPECT_GE(busy, 5 * chunks * 2e-3);
  EXPECT_LE(busy, numThreads() * wall * 1.001);
}

} // namespace

/// evenGrain never grows the grain, and no smaller grain leaves fewer
/// items on the busiest thread: the 8 heads of 3 per task that ran as
/// 6 + 2 on two threads.
TEST(ThreadPool, EvenGrainLeavesTheFewestItemsOnTheBusiestThread) {
  int64_t threads = numThreads();
  auto busiest = [&](int64_t n, int64_t g) {
    return ((n + g - 1) / g + threads - 1) / threads * g;
  };
  for (int64_t n = 1; n <= 70; ++n)
    for (int64_t grain = 1; grain <= n + 1; ++grain) {
      int64_t g = evenGrain(n, grain);
      ASSERT_GE(g, 1);
      ASSERT_LE(g, grain);
      if (n <= grain || threads == 1) {
        EXPECT_EQ(g, grain); // one task stays one task
        continue;
      }
      for (int64_t other = 1; other <= grain; ++other)
        EXPECT_LE(busiest(n, g), busiest(n, other))
            << "n " << n << " grain " << grain << " other " << other;
    }
  if (threads == 2) {
    EXPECT_EQ(evenGrain(8, 3), 2);
    EXPECT_EQ(evenGrain(5, 2), 1);
    EXPECT_EQ(evenGrain(128, 1), 1);
  }
}

// The pool entry the generated code calls (ds-parallelize-kernels).
extern "C" void dsrt_parallel_for(void (*task)(void *, int64_t, int64_t),
                                  void *packed, int64_t n, int64_t grain);

namespace {

TEST(ThreadPool, GeneratedCodeEntryCoversEveryIterationOnce) {
  for (int64_t n : {0, 1, 5, 1000}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    dsrt_parallel_for(
        [](void *p, int64_t b, int64_t e) {
          auto &h = *static_cast<std::vector<std::atomic<int>> *>(p);
          for (int64_t i = b; i < e; ++i)
            h[size_t(i)]++;
        },
        &hits, n, 1);
    for (auto &h : hits)
      EXPECT_EQ(h.load(), 1);
  }
  dsrt_parallel_for(nullptr, nullptr, 10, 1); // no task: nothing happens
}

TEST(ThreadPool, EveryIndexOnceAndNestedCallsRunInline) {
  for (int64_t n : {0, 1, 7, 1000, 4097}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    parallelFor(n, 16, [&](int64_t b, int64_t e) {
      EXPECT_LE(b, e);
      for (int64_t i = b; i < e; ++i)
        hits[size_t(i)]++;
      // A nested region runs on the caller, entirely.
      std::atomic<int64_t> inner{0};
      parallelFor(10, 1, [&](int64_t ib, int64_t ie) { inner += ie - ib; });
      EXPECT_EQ(inner.load(), 10);
    });
    for (auto &h : hits)
      EXPECT_EQ(h.load(), 1);
  }
  EXPECT_GE(numThreads(), 1);
}

} // namespace
