//===- TileTrace.cpp - per-shape time of prefill's tile chunks ------------===//
#include "cpu/TileTrace.h"
#include "cpu/Kernels.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

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

struct Trace {
  std::mutex mutex;
  std::map<Key, Totals> shapes;
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

} // namespace

bool dsrt::cpu::tileTraceOn() {
  static const bool on = [] {
    const char *v = std::getenv("DSRT_TILE_TRACE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void dsrt::cpu::recordChunk(const ChunkShape &c, double seconds) {
  int64_t last = c.xRows - (c.panels - 1) * kPanel;
  int64_t quarter = kPanel / 4;
  Key key{c.k,         c.format, c.tiles,
          int(c.path), c.panels, (last + quarter - 1) / quarter * quarter};
  Trace &t = trace();
  std::lock_guard<std::mutex> lock(t.mutex);
  Totals &s = t.shapes[key];
  ++s.chunks;
  s.seconds += seconds;
  s.flops += 2.0 * double(c.rows) * double(c.kc) * double(c.xRows);
}

std::string dsrt::cpu::tileTraceReport() {
  Trace &t = trace();
  std::lock_guard<std::mutex> lock(t.mutex);
  std::vector<std::pair<Key, Totals>> lines(t.shapes.begin(), t.shapes.end());
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
