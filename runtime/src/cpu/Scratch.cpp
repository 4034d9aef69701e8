//===- Scratch.cpp - the activations buffer of the CPU path ---------------===//
//
// The buffer is ZeroedPages' (2 MiB pages for its whole 2 MiB ranges where
// the system allows them, allocateTight):
// a prefill's activations at V3's widths are a quarter of a GB, which
// malloc serves in 4 KiB pages, each faulted on first touch and each a TLB
// entry while the GEMMs write and read them. Under AddressSanitizer it is
// malloc's, whose redzones catch a kernel that writes past its buffer.
//
//===----------------------------------------------------------------------===//
#include "cpu/Scratch.h"
#include "cpu/ZeroedPages.h"
#include "support/HugePages.h"

#include <cstdlib>
#include <memory>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

struct Buffer {
  std::unique_ptr<uint8_t, decltype(&std::free)> heap{nullptr, &std::free};
  ZeroedPages pages;
  uint8_t *get() const { return kAddressSanitizer ? heap.get() : pages.get(); }
  bool allocate(size_t bytes) {
    if (!kAddressSanitizer)
      return pages.allocateTight(bytes);
    heap.reset(static_cast<uint8_t *>(std::aligned_alloc(64, bytes)));
    return heap != nullptr;
  }
  ScratchStats stats;
};

Buffer &mine() {
  static thread_local Buffer b;
  return b;
}

} // namespace

uint8_t *dsrt::cpu::scratch(size_t bytes) {
  Buffer &b = mine();
  if (b.get() && bytes <= b.stats.bytes)
    return b.get();
  size_t rounded = (bytes + 63) / 64 * 64;
  if (!b.allocate(rounded ? rounded : 64)) {
    b.stats.bytes = 0;
    return nullptr;
  }
  b.stats.bytes = rounded;
  ++b.stats.allocations;
  return b.get();
}

ScratchStats dsrt::cpu::scratchStats() { return mine().stats; }
