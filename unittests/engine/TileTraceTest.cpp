//===- TileTraceTest.cpp - DSRT_TILE_TRACE's per-shape lines --------------===//
#include "cpu/TileTrace.h"

#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace dsrt::cpu;

namespace {

/// The report's lines of shapes with weights of K `k` (each test records
/// its own K: the trace is one per process).
std::vector<std::string> reportLinesFor(int64_t k) {
  std::vector<std::string> out;
  std::istringstream in(tileTraceReport());
  std::string key = "k=" + std::to_string(k) + " ";
  for (std::string l; std::getline(in, l);)
    if (l.find(key) != std::string::npos)
      out.push_back(l);
  return out;
}

// Chunks of one shape add up on one line; a last panel's rows go up to a
// quarter panel (8); the longest total time comes first; the rate counts
// x's real rows only (2 * weight rows * K * x rows per chunk).
TEST(TileTrace, ShapesAddUpLongestFirst) {
  // 40 rows: two panels, the last of 8. 2 * 32 * 256 * 40 = 655360 flops.
  ChunkShape expert{7001, "bf16", "bf16", ChunkPath::Copied, 2, 40, 32, 256};
  recordChunk(expert, 1e-6);
  recordChunk(expert, 1e-6);
  // 37 rows read the same line (last 5 -> 8) and add their own flops.
  ChunkShape expert37 = expert;
  expert37.xRows = 37;
  recordChunk(expert37, 2e-6);
  ChunkShape dense{7001, "fp8", "bf16", ChunkPath::Converted, 8, 256, 32, 128};
  recordChunk(dense, 1e-6);
  std::vector<std::string> got = reportLinesFor(7001);
  ASSERT_EQ(got.size(), 2u);
  // (2 * 655360 + 2 * 32 * 256 * 37) / 4e-6 s = 479.2 GFLOP/s.
  EXPECT_EQ(got[0], "dsrt-tiles k=7001 weights=bf16 tiles=bf16 path=copied "
                    "panels=2 last_rows=8 chunks=3 seconds=0.000004 "
                    "gflops=479.2");
  // 2 * 32 * 128 * 256 / 1e-6 s = 2097.2 GFLOP/s.
  EXPECT_EQ(got[1], "dsrt-tiles k=7001 weights=fp8 tiles=bf16 path=converted "
                    "panels=8 last_rows=32 chunks=1 seconds=0.000001 "
                    "gflops=2097.2");
}

// Each thread records into its own lines, which the report merges: the
// same shape from two threads is one line, and a thread that alternates
// shapes (its last line found again without the map) keeps each apart.
TEST(TileTrace, ThreadsRecordApartAndAddUp) {
  ChunkShape a{7002, "bf16", "bf16", ChunkPath::InPlace, 1, 16, 32, 256};
  ChunkShape b = a;
  b.format = "fp8";
  b.path = ChunkPath::Converted;
  auto work = [&] {
    for (int i = 0; i < 1000; ++i) {
      recordChunk(a, 1e-6);
      recordChunk(b, 2e-6);
      recordChunk(b, 2e-6);
    }
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  std::vector<std::string> got = reportLinesFor(7002);
  ASSERT_EQ(got.size(), 2u);
  // 2 * 32 * 256 * 16 = 262144 flops a chunk: b's 4000 in 8 ms, 131.1
  // GFLOP/s; a's 2000 in 2 ms, 262.1.
  EXPECT_EQ(got[0], "dsrt-tiles k=7002 weights=fp8 tiles=bf16 path=converted "
                    "panels=1 last_rows=16 chunks=4000 seconds=0.008000 "
                    "gflops=131.1");
  EXPECT_EQ(got[1], "dsrt-tiles k=7002 weights=bf16 tiles=bf16 path=in-place "
                    "panels=1 last_rows=16 chunks=2000 seconds=0.002000 "
                    "gflops=262.1");
}

// The trace's clock (the TSC unordered on x86-64) reads seconds as
// steady_clock does over the same interval.
TEST(TileTrace, ClockReadsSeconds) {
  auto t0 = std::chrono::steady_clock::now();
  uint64_t c0 = traceTicks();
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  uint64_t c1 = traceTicks();
  double want =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
          .count();
  EXPECT_NEAR(traceSeconds(c0, c1), want, 0.05 * want);
  EXPECT_EQ(traceSeconds(c1, c0), 0.0);
}

// A reset forgets every line, and a thread's next record (whose last line
// was among them) starts a new one rather than adding to a forgotten one.
TEST(TileTrace, ResetForgetsEveryLine) {
  ChunkShape cold{7004, "bf16", "bf16", ChunkPath::InPlace, 1, 16, 32, 256};
  recordChunk(cold, 1e-3);
  recordChunk(cold, 1e-3);
  ASSERT_EQ(reportLinesFor(7004).size(), 1u);
  tileTraceReset();
  EXPECT_TRUE(reportLinesFor(7004).empty());
  recordChunk(cold, 1e-6);
  std::vector<std::string> got = reportLinesFor(7004);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_NE(got[0].find(" chunks=1 seconds=0.000001 "), std::string::npos)
      << got[0];
}

} // namespace
