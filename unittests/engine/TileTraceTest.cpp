//===- TileTraceTest.cpp - DSRT_TILE_TRACE's per-shape lines --------------===//
#include "cpu/TileTrace.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

using namespace dsrt::cpu;

namespace {

std::vector<std::string> lines(const std::string &s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);)
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
  std::vector<std::string> got;
  for (const std::string &l : lines(tileTraceReport()))
    if (l.find("k=7001 ") != std::string::npos)
      got.push_back(l);
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

} // namespace
