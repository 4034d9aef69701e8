//===- Scratch.h - the activations buffer of the CPU path -------*- C++ -*-===//
#ifndef DSRT_CPU_SCRATCH_H
#define DSRT_CPU_SCRATCH_H

#include <cstddef>
#include <cstdint>

namespace dsrt::cpu {

/// This thread's activations buffer of at least `bytes` (64-byte aligned),
/// grown only when a call needs more than any before; nullptr when memory
/// runs out. Contents are not preserved across growth.
uint8_t *scratch(size_t bytes);

struct ScratchStats {
  size_t bytes = 0;       // current size (the largest call so far)
  int64_t allocations = 0; // times it grew
};
ScratchStats scratchStats();

} // namespace dsrt::cpu

#endif // DSRT_CPU_SCRATCH_H
