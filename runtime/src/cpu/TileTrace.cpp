//===- TileTrace.cpp - per-shape time of prefill's tile chunks ------------===//
#include "cpu/TileTrace.h"
#include "cpu/Kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <vector>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

using namespace dsrt::cpu;

namespace {

const char *pathName(ChunkPath p) {
  switch (p) {
  case ChunkPath::InPlace:
    return "in-place";
  case ChunkPath::Copied:
    return "copied";
  case ChunkPath::Converted:
    return "converted";
  }
  return "?";
}

/// A line's key: (K, format, tiles, path, panels, the last panel's rows
/// rounded up to a quarter of a panel).
using Key =
    std::tuple<int64_t, std::string, std::string, int, int64_t, int64_t>;
struct Totals {
  int64_t chunks = 0;
  double seconds = 0, flops = 0;
};

/// One thread's lines: its own lock, taken by the report only, so two
/// threads' records do not contend (a shared lock and map cost the
/// traced experts' one-panel chunks a fifth of their rate end to end).
struct Shard {
  std::mutex mutex;
  std::map<Key, Totals> shapes;
  /// The last line recorded, found again without the map: consecutive
  /// chunks mostly share a shape.
  ChunkShape lastShape;
  int64_t lastQuarters = -1;
  Totals *last = nullptr;
};

struct Trace {
  std::mutex mutex;
  std::vector<std::unique_ptr<Shard>> shards;
  ~Trace() {
    if (!tileTraceOn())
      return;
    std::string r = tileTraceReport();
    std::fputs(r.c_str(), stderr);
  }
};

Trace &trace() {
  // Constructed at the first record; destroyed (and printed) at exit,
  // when the pool's threads record nothing any more.
  static Trace t;
  return t;
}

Shard &shard() {
  static thread_local Shard *mine = nullptr;
  if (!mine) {
    Trace &t = trace();
    std::lock_guard<std::mutex> lock(t.mutex);
    t.shards.push_back(std::make_unique<Shard>());
    mine = t.shards.back().get();
  }
  return *mine;
}

} // namespace

bool dsrt::cpu::tileTraceOn() {
  static const bool on = [] {
    const char *v = std::getenv("DSRT_TILE_TRACE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

#if defined(__x86_64__)
uint64_t dsrt::cpu::traceTicks() { return __rdtsc(); }

namespace {
/// TSC ticks a second, against steady_clock over 2 ms at the first use (a
/// VM's guest may not be told the TSC's rate).
double ticksPerSecond() {
  static const double rate = [] {
    using Clock = std::chrono::steady_clock;
    Clock::time_point t0 = Clock::now(), t1;
    uint64_t c0 = __rdtsc();
    while ((t1 = Clock::now()) - t0 < std::chrono::milliseconds(2))
      ;
    uint64_t c1 = __rdtsc();
    return double(c1 - c0) / std::chrono::duration<double>(t1 - t0).count();
  }();
  return rate;
}
} // namespace

double dsrt::cpu::traceSeconds(uint64_t begin, uint64_t end) {
  return end > begin ? double(end - begin) / ticksPerSecond() : 0.0;
}
#else
uint64_t dsrt::cpu::traceTicks() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count());
}

double dsrt::cpu::traceSeconds(uint64_t begin, uint64_t end) {
  return end > begin ? double(end - begin) * 1e-9 : 0.0;
}
#endif

void dsrt::cpu::recordChunk(const ChunkShape &c, double seconds) {
  int64_t last = c.xRows - (c.panels - 1) * kPanel;
  int64_t quarter = kPanel / 4;
  int64_t quarters = (last + quarter - 1) / quarter * quarter;
  Shard &sh = shard();
  std::lock_guard<std::mutex> lock(sh.mutex);
  const ChunkShape &p = sh.lastShape;
  if (!sh.last || p.k != c.k || p.path != c.path || p.panels != c.panels ||
      sh.lastQuarters != quarters || std::strcmp(p.format, c.format) != 0 ||
      std::strcmp(p.tiles, c.tiles) != 0) {
    sh.last = &sh.shapes[Key{c.k, c.format, c.tiles, int(c.path), c.panels,
                             quarters}];
    sh.lastShape = c;
    sh.lastQuarters = quarters;
  }
  Totals &s = *sh.last;
  ++s.chunks;
  s.seconds += seconds;
  s.flops += 2.0 * double(c.rows) * double(c.kc) * double(c.xRows);
}

std::string dsrt::cpu::tileTraceReport() {
  Trace &t = trace();
  std::lock_guard<std::mutex> lock(t.mutex);
  std::map<Key, Totals> merged;
  for (const std::unique_ptr<Shard> &sh : t.shards) {
    std::lock_guard<std::mutex> shardLock(sh->mutex);
    for (const auto &[key, s] : sh->shapes) {
      Totals &m = merged[key];
      m.chunks += s.chunks;
      m.seconds += s.seconds;
      m.flops += s.flops;
    }
  }
  std::vector<std::pair<Key, Totals>> lines(merged.begin(), merged.end());
  std::sort(lines.begin(), lines.end(), [](auto &a, auto &b) {
    if (a.second.seconds != b.second.seconds)
      return a.second.seconds > b.second.seconds;
    return a.first < b.first;
  });
  std::string out;
  char buf[256];
  for (const auto &[key, s] : lines) {
    const auto &[k, format, tiles, path, panels, last] = key;
    std::snprintf(buf, sizeof buf,
                  "dsrt-tiles k=%lld weights=%s tiles=%s path=%s panels=%lld "
                  "last_rows=%lld chunks=%lld seconds=%.6f gflops=%.1f\n",
                  (long long)k, format.c_str(), tiles.c_str(),
                  pathName(ChunkPath(path)), (long long)panels, (long long)last,
                  (long long)s.chunks, s.seconds,
                  s.seconds > 0 ? s.flops / s.seconds * 1e-9 : 0.0);
    out += buf;
  }
  return out;
}

void dsrt::cpu::tileTraceReset() {
  Trace &t = trace();
  std::lock_guard<std::mutex> lock(t.mutex);
  for (const std::unique_ptr<Shard> &sh : t.shards) {
    std::lock_guard<std::mutex> shardLock(sh->mutex);
    sh->shapes.clear();
    sh->last = nullptr;
  }
}
