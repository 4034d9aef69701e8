//===- ReadStream.h - the memory's read rate: decode's roofline -----------===//
//
// The read roofline is the fastest read-only pass the machine shows over a
// buffer far larger than the caches: three loops over the same buffer,
// each split over the runtime pool's threads, best of REPS each, and the
// best of the three taken:
//   words        8-byte loads, four sums (the only loop before);
//   vector       the widest vector loads of the runtime's ISA path
//                (AVX-512 or AVX2; $DSRT_CPU_ISA picks another);
//   vector_ahead those, with a non-temporal prefetch 4 KiB ahead (what
//                decode's GEMVs issue).
// On the Zen 5 VM of the twenty-sixth session the word loop read 52-56
// GB/s where vector loads read 61-78 in the same process: a roofline from
// the word loop alone put decode a fifth to a third nearer its limit than
// it was (bench/RESULTS.md, "The read roofline from vector loads").
//
//===----------------------------------------------------------------------===//
#ifndef DS_BENCH_CPU_READSTREAM_H
#define DS_BENCH_CPU_READSTREAM_H

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace dsbench {

/// `bytes` bytes, uninitialised, 2 MiB-aligned with huge pages advised (as
/// the runtime maps a checkpoint's weights).
class HugeBytes {
public:
  explicit HugeBytes(size_t bytes);
  void *data() const { return bytes_.get(); }
  size_t size() const { return size_; }

private:
  struct Free {
    void operator()(void *p) const;
  };
  std::unique_ptr<void, Free> bytes_;
  size_t size_ = 0;
};

/// `words` 8-byte words in HugeBytes, word i holding i.
class ReadBuffer {
public:
  explicit ReadBuffer(size_t words);
  const uint64_t *data() const {
    return static_cast<const uint64_t *>(bytes_.data());
  }
  size_t size() const { return size_; }

private:
  HugeBytes bytes_;
  size_t size_ = 0;
};

/// `words` 8-byte words at `data`: any memory, a checkpoint's mapping too.
struct ReadSpan {
  const uint64_t *data = nullptr;
  int64_t words = 0;
};

/// GB/s of each loop (0 where the CPU has no vector loop) and the ISA of
/// the vector loops ("avx512f", "avx2" or "none").
struct ReadRates {
  double words = 0, vector = 0, vectorAhead = 0;
  const char *vectorIsa = "none";
  double best() const;
};

/// The three loops over `buf`, best of `reps` each. False (and `error`
/// set) when a loop's sum is not the buffer's: a loop that skipped words
/// would report a rate it did not read.
bool measureRead(const ReadBuffer &buf, int reps, ReadRates &rates,
                 const char *&error);

/// The same over `spans` read as one sequence (split over the threads
/// across span ends), each pass checked against their sum taken by an
/// untimed word pass first.
bool measureRead(const std::vector<ReadSpan> &spans, int reps, ReadRates &rates,
                 const char *&error);

} // namespace dsbench

#endif // DS_BENCH_CPU_READSTREAM_H
