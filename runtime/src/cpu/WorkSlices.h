//===- WorkSlices.h - one contiguous slice of a job per thread -*- C++ -*-===//
//
// How the pool splits a job's chunks [0, C) over T threads. Thread t owns
// the contiguous slice [t C / T, (t + 1) C / T) and takes it from the front
// in shrinking runs (a quarter of what is left, at least one chunk), so a
// thread reads its part of a weight as one forward stream and pays few
// claims, and what it has claimed but not run stays small. A
// thread whose slice is empty takes the back half of the fullest other
// slice, one that has not started (a worker the scheduler has not run yet)
// included: the caller never waits for a worker that has not started.
//
// One 64-bit word per slice: the job's generation (24 bits) | front (20) |
// back (20). The generation makes a claim by a thread still running an
// earlier job fail instead of taking a chunk of the next one.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_WORKSLICES_H
#define DSRT_CPU_WORKSLICES_H

#include <atomic>
#include <cstdint>
#include <memory>

namespace dsrt::cpu {

class WorkSlices {
public:
  /// Chunks per job must stay below this.
  static constexpr int64_t kMaxChunks = int64_t(1) << 20;

  explicit WorkSlices(int slots)
      : count(slots < 1 ? 1 : slots), words(new Slot[size_t(count)]) {}
  int slots() const { return count; }

  /// Publishes job g's chunks [0, chunks), chunks < kMaxChunks, split
  /// evenly over the slots; called by the job's owner while no claim for g
  /// can be made yet (claims of other generations fail on their own).
  void reset(uint64_t g, int64_t chunks) {
    for (int s = 0; s < count; ++s)
      words[s].v.store(pack(g, chunks * s / count, chunks * (s + 1) / count),
                       std::memory_order_release);
  }

  /// The next run of chunks [begin, end) of job g for the thread owning
  /// `slot`: from the front of its own slice, else the back half of the
  /// fullest other one. False when job g has no chunk left (or is over).
  bool claim(uint64_t g, int slot, int64_t &begin, int64_t &end) {
    if (takeFront(g, slot, begin, end))
      return true;
    for (;;) {
      int victim = -1;
      int64_t most = 0;
      for (int s = 0; s < count; ++s) {
        uint64_t v = words[s].v.load(std::memory_order_acquire);
        if (genOf(v) != (g & kGenMask))
          return false;
        if (backOf(v) - frontOf(v) > most) {
          most = backOf(v) - frontOf(v);
          victim = s;
        }
      }
      if (victim < 0)
        return false;
      if (takeBack(g, victim, begin, end))
        return true;
      // The victim emptied meanwhile: look again.
    }
  }

private:
  static constexpr uint64_t kGenMask = 0xFFFFFF;
  static uint64_t pack(uint64_t g, int64_t front, int64_t back) {
    return ((g & kGenMask) << 40) | (uint64_t(front) << 20) | uint64_t(back);
  }
  static uint64_t genOf(uint64_t v) { return v >> 40; }
  static int64_t frontOf(uint64_t v) { return int64_t((v >> 20) & 0xFFFFF); }
  static int64_t backOf(uint64_t v) { return int64_t(v & 0xFFFFF); }

  bool takeFront(uint64_t g, int slot, int64_t &begin, int64_t &end) {
    std::atomic<uint64_t> &w = words[slot % count].v;
    uint64_t v = w.load(std::memory_order_acquire);
    for (;;) {
      int64_t f = frontOf(v), b = backOf(v);
      if (genOf(v) != (g & kGenMask) || f >= b)
        return false;
      int64_t n = (b - f + 3) / 4;
      if (w.compare_exchange_weak(v, pack(g, f + n, b),
                                  std::memory_order_acq_rel)) {
        begin = f;
        end = f + n;
        return true;
      }
    }
  }

  bool takeBack(uint64_t g, int victim, int64_t &begin, int64_t &end) {
    std::atomic<uint64_t> &w = words[victim].v;
    uint64_t v = w.load(std::memory_order_acquire);
    for (;;) {
      int64_t f = frontOf(v), b = backOf(v);
      if (genOf(v) != (g & kGenMask) || f >= b)
        return false;
      int64_t n = (b - f + 1) / 2;
      if (w.compare_exchange_weak(v, pack(g, f, b - n),
                                  std::memory_order_acq_rel)) {
        begin = b - n;
        end = b;
        return true;
      }
    }
  }

  /// A cache line each: the owners' claims do not contend.
  struct alignas(64) Slot {
    std::atomic<uint64_t> v{0};
  };
  int count;
  std::unique_ptr<Slot[]> words;
};

} // namespace dsrt::cpu

#endif // DSRT_CPU_WORKSLICES_H
