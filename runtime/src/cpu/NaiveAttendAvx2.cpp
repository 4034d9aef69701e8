//===- NaiveAttendAvx2.cpp - the attend step's softmax, AVX2 --------------===//
//
// Compiled with AVX2 + FMA (engine.cmake); called only on CPUs that have
// them (attendKernelsFor). 8 lanes: a token block is four vectors per row.
//
//===----------------------------------------------------------------------===//
#include "cpu/LanesAvx2.h"
#include "cpu/NaiveAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

const AttendKernels &dsrt::cpu::avx2AttendKernels() {
  static const AttendKernels set{Isa::Avx2, softmaxTileT<V8>, expInPlaceT<V8>};
  return set;
}
#endif
