//===- Scratch.cpp - the activations buffer of the CPU path ---------------===//
#include "cpu/Scratch.h"

#include <cstdlib>
#include <memory>

using namespace dsrt::cpu;

namespace {

struct Buffer {
  std::unique_ptr<uint8_t, decltype(&std::free)> data{nullptr, &std::free};
  ScratchStats stats;
};

Buffer &mine() {
  static thread_local Buffer b;
  return b;
}

} // namespace

uint8_t *dsrt::cpu::scratch(size_t bytes) {
  Buffer &b = mine();
  if (b.data && bytes <= b.stats.bytes)
    return b.data.get();
  size_t rounded = (bytes + 63) / 64 * 64;
  b.data.reset(static_cast<uint8_t *>(std::aligned_alloc(64, rounded ? rounded : 64)));
  if (!b.data) {
    b.stats.bytes = 0;
    return nullptr;
  }
  b.stats.bytes = rounded;
  ++b.stats.allocations;
  return b.data.get();
}

ScratchStats dsrt::cpu::scratchStats() { return mine().stats; }
