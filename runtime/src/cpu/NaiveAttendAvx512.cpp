//===- NaiveAttendAvx512.cpp - the attend step's softmax, AVX-512 ---------===//
//
// Compiled with AVX-512F (engine.cmake); called only on CPUs that have it
// (attendKernelsFor). 16 lanes: a token block is two vectors per row.
//
//===----------------------------------------------------------------------===//
#include "cpu/LanesAvx512.h"
#include "cpu/NaiveAttendInline.h"

#if defined(__x86_64__)
#include <immintrin.h>

using namespace dsrt::cpu;

const AttendKernels &dsrt::cpu::avx512AttendKernels() {
  static const AttendKernels set{Isa::Avx512, softmaxTileT<V16>,
                                 expInPlaceT<V16>};
  return set;
}
#endif
