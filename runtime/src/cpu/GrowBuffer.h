//===- GrowBuffer.h - per-thread buffers that only grow ---------*- C++ -*-===//
#ifndef DSRT_CPU_GROWBUFFER_H
#define DSRT_CPU_GROWBUFFER_H

#include <algorithm>
#include <cstddef>
#include <cstdlib>

namespace dsrt::cpu {

/// A grow-only, 64-byte aligned buffer: steady-state calls allocate nothing.
template <typename T> class GrowBuffer {
public:
  ~GrowBuffer() { std::free(data); }
  T *get(size_t count) {
    if (count > size) {
      std::free(data);
      size_t bytes = (std::max<size_t>(count, 1) * sizeof(T) + 63) / 64 * 64;
      data = static_cast<T *>(std::aligned_alloc(64, bytes));
      if (!data)
        std::abort(); // like operator new without exceptions
      size = count;
    }
    return data;
  }

private:
  T *data = nullptr;
  size_t size = 0;
};

} // namespace dsrt::cpu

#endif // DSRT_CPU_GROWBUFFER_H
