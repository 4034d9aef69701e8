//===- ZeroedPages.h - zeroed memory for latent caches ----------*- C++ -*-===//
//
// A latent cache or page pool is written a row at a time as sequences
// grow, and calloc's 4 KiB pages then fault on first touch, one every few
// rows: the bench model's first 200 decode steps spent 10.6-12.4 ms in
// their 1206 cache writes (~10 us each on a Zen 5 VM), 0.3-0.4 ms here.
// The memory is the kernel's anonymous pages (zero, as calloc's), whole
// 2 MiB ranges from a 2 MiB aligned start, advised MADV_HUGEPAGE: a
// transparent huge page then serves each 2 MiB with one fault where the
// system allows it ("madvise" or "always" in
// /sys/kernel/mm/transparent_hugepage/enabled). Pages are still touched
// only as rows are written, 2 MiB at a time. DSRT_HUGE_PAGES=0 leaves out
// the advice (4 KiB pages, as calloc's): where THP's "defrag" setting lets
// a fault compact memory, a fragmented machine may stall a step on it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_ZEROEDPAGES_H
#define DSRT_CPU_ZEROEDPAGES_H

#include "support/HugePages.h"

#include <cstddef>
#include <cstdint>

namespace dsrt::cpu {

class ZeroedPages {
public:
  ZeroedPages() = default;
  ~ZeroedPages() { reset(); }
  ZeroedPages(const ZeroedPages &) = delete;
  ZeroedPages &operator=(const ZeroedPages &) = delete;
  ZeroedPages(ZeroedPages &&o) noexcept {
    *this = static_cast<ZeroedPages &&>(o);
  }
  ZeroedPages &operator=(ZeroedPages &&o) noexcept;

  /// Replaces the memory with `bytes` zero bytes (at least one); false,
  /// and empty, when the system has no memory for them.
  bool allocate(size_t bytes) { return map(bytes, true); }
  /// The same, but huge pages only for the whole 2 MiB ranges inside the
  /// buffer and 4 KiB ones for its tail: nothing past `bytes` is ever
  /// resident. For buffers touched whole at once (activations, kernels'
  /// buffers), where rounding up to whole huge pages would only add memory
  /// (2.2-3.3 MB buffers took 4 MiB each: +7 MB, 4% of the bench model's
  /// FP8 weights).
  bool allocateTight(size_t bytes) { return map(bytes, false); }
  /// The same for `count` items of `size` bytes, as calloc takes them:
  /// false where their product does not fit in a size_t.
  bool allocate(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
      reset();
      return false;
    }
    return allocate(count * size);
  }
  void reset();

  uint8_t *get() const { return data; }
  size_t size() const { return bytes; }
  explicit operator bool() const { return data != nullptr; }
  /// Whether huge pages were asked for (the memory spans one and the
  /// madvise call took it).
  bool hugePagesAdvised() const { return huge; }

private:
  bool map(size_t bytes, bool roundUp);

  uint8_t *data = nullptr;
  size_t bytes = 0;
  void *mapping = nullptr; // what munmap releases: data, aligned within it
  size_t mapped = 0;
  bool huge = false;
};

} // namespace dsrt::cpu

#endif // DSRT_CPU_ZEROEDPAGES_H
