//===- TileTrace.h - per-shape time of prefill's tile chunks ----*- C++ -*-===//
//
// $DSRT_TILE_TRACE=1: every chunk of weight rows gemmBlock runs through the
// tiles (blockChunk) is timed, and at exit stderr gets one line per shape
// (the weight's K and format, the tiles' arithmetic, how the weight's rows
// reached the tiles, x's panels and its last panel's rows): chunks,
// thread-seconds and the rate in useful GFLOP/s per thread (x's real rows
// only). What the pool trace is to parallel regions, this is to the products
// inside them: which shapes a prefill's GEMM time goes to and how far each runs
// from the large GEMM's rate. Off (one branch per chunk) unless set; on,
// two unordered TSC reads and a record into the thread's own lines a
// chunk.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_TILETRACE_H
#define DSRT_CPU_TILETRACE_H

#include <cstdint>
#include <string>

namespace dsrt::cpu {

/// How blockChunk brought a chunk's weight rows to the tiles.
enum class ChunkPath {
  InPlace,   // read where they lie
  Copied,    // copied into an L1 tile (bf16, f32)
  Converted, // FP8 to bf16 or f32, or bf16 widened to f32
};

/// One timed chunk: w's K and format, the tiles' arithmetic (x packed as
/// bf16 pairs, as three planes of them (bf16x3: exact f32 x) or f32), the
/// path, x's panels and rows, the chunk's weight
/// rows and K. `format` and `tiles` must outlive the trace (string
/// literals): a thread's last line keeps the pointers to find it again.
struct ChunkShape {
  int64_t k = 0;
  const char *format = "", *tiles = "";
  ChunkPath path = ChunkPath::InPlace;
  int64_t panels = 0, xRows = 0, rows = 0, kc = 0;
};

/// Whether DSRT_TILE_TRACE is set (read once).
bool tileTraceOn();

/// The trace's clock: a chunk's start or end in ticks, and the seconds
/// between two. On x86-64 the TSC read without ordering (no lfence): an
/// ordered read, as steady_clock's, waits for every instruction before
/// it, so the tiles' work at one chunk's end could no longer overlap the
/// next chunk's start as it does untraced. Elsewhere steady_clock's.
uint64_t traceTicks();
double traceSeconds(uint64_t begin, uint64_t end);

/// Adds a chunk's time to its shape's line (thread-safe).
void recordChunk(const ChunkShape &c, double seconds);

/// The trace's lines so far, longest total time first (what is printed at
/// exit); "" when nothing was recorded.
std::string tileTraceReport();

/// Forgets every line recorded so far: a benchmark's cold first run (its
/// weights faulted in from the page cache inside the chunks) left out of
/// the warm ones'. Not while a chunk is being recorded elsewhere (between
/// parallel regions).
void tileTraceReset();

} // namespace dsrt::cpu

#endif // DSRT_CPU_TILETRACE_H
