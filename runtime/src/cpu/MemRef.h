//===- MemRef.h - MLIR memref descriptors as C structs ----------*- C++ -*-===//
//
// Generated code passes buffers to the runtime as pointers to these
// descriptors (the `llvm.emit_c_interface` ABI).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_MEMREF_H
#define DSRT_CPU_MEMREF_H

#include <cstdint>

namespace dsrt {

template <typename T, int N> struct MemRef {
  T *allocated;
  T *aligned;
  int64_t offset;
  int64_t sizes[N];
  int64_t strides[N];

  T *data() const { return aligned + offset; }
};

/// A contiguous row-major view of `data` with `shape`.
template <typename T, int N>
MemRef<T, N> makeMemRef(T *data, const int64_t *shape) {
  MemRef<T, N> m;
  m.allocated = m.aligned = data;
  m.offset = 0;
  int64_t stride = 1;
  for (int i = N - 1; i >= 0; --i) {
    m.sizes[i] = shape[i];
    m.strides[i] = stride;
    stride *= shape[i];
  }
  return m;
}

} // namespace dsrt

#endif // DSRT_CPU_MEMREF_H
