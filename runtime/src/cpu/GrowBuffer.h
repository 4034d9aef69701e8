//===- GrowBuffer.h - per-thread buffers that only grow ---------*- C++ -*-===//
//
// From 8 MiB up the memory is ZeroedPages' (huge pages where the system
// allows them for its whole 2 MiB ranges, as the activations buffer's): a
// V3-width prefill's packed x and the naive form's per-head keys and
// values are megabytes each, and malloc's 4 KiB pages faulted ~13 K times
// in a process's first prompt.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_GROWBUFFER_H
#define DSRT_CPU_GROWBUFFER_H

#include "cpu/ZeroedPages.h"
#include "support/HugePages.h"

#include <algorithm>
#include <cstddef>
#include <cstdlib>

namespace dsrt::cpu {

/// Size from which a GrowBuffer takes huge pages: its last, partly used
/// 2 MiB range is then a small share of it (from 2 MiB up, the bench
/// model's four 2.2-3.3 MB buffers added 4% of its FP8 weights' bytes to
/// the peak RSS).
constexpr size_t kGrowHugeBytes = 4 * kHugePageBytes;

/// A grow-only, 64-byte aligned buffer: steady-state calls allocate nothing.
/// Contents are not preserved across growth.
template <typename T> class GrowBuffer {
public:
  GrowBuffer() = default;
  GrowBuffer(const GrowBuffer &) = delete;
  GrowBuffer &operator=(const GrowBuffer &) = delete;
  ~GrowBuffer() { release(); }
  T *get(size_t count) {
    if (count > size) {
      release();
      size_t bytes = (std::max<size_t>(count, 1) * sizeof(T) + 63) / 64 * 64;
      if (!kAddressSanitizer && bytes >= kGrowHugeBytes) {
        if (!pages.allocateTight(bytes))
          std::abort(); // like operator new without exceptions
        data = reinterpret_cast<T *>(pages.get());
      } else {
        data = static_cast<T *>(std::aligned_alloc(64, bytes));
        if (!data)
          std::abort();
      }
      size = count;
    }
    return data;
  }

private:
  void release() {
    if (pages)
      pages.reset();
    else
      std::free(data);
    data = nullptr;
    size = 0;
  }

  T *data = nullptr;
  size_t size = 0;
  ZeroedPages pages;
};

} // namespace dsrt::cpu

#endif // DSRT_CPU_GROWBUFFER_H
