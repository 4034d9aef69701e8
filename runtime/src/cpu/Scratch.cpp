//===- Scratch.cpp - the activations buffer of the CPU path ---------------===//
//
// The buffer is ZeroedPages' (2 MiB pages where the system allows them):
// a prefill's activations at V3's widths are a quarter of a GB, which
// malloc serves in 4 KiB pages, each faulted on first touch and each a TLB
// entry while the GEMMs write and read them. Under AddressSanitizer it is
// malloc's, whose redzones catch a kernel that writes past its buffer.
//
//===----------------------------------------------------------------------===//
#include "cpu/Scratch.h"
#include "cpu/ZeroedPages.h"

#include <cstdlib>
#include <memory>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DSRT_SCRATCH_MALLOC 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DSRT_SCRATCH_MALLOC 1
#endif

using namespace dsrt::cpu;

namespace {

struct Buffer {
#ifdef DSRT_SCRATCH_MALLOC
  std::unique_ptr<uint8_t, decltype(&std::free)> memory{nullptr, &std::free};
  uint8_t *get() const { return memory.get(); }
  bool allocate(size_t bytes) {
    memory.reset(static_cast<uint8_t *>(std::aligned_alloc(64, bytes)));
    return memory != nullptr;
  }
#else
  ZeroedPages memory;
  uint8_t *get() const { return memory.get(); }
  bool allocate(size_t bytes) { return memory.allocate(bytes); }
#endif
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
