//===- NaiveAttendCall.cpp - the naive form's attend step as a call -------===//
//
// Part of KernelEmitter (KernelEmitter.h). On the CPU path (the drivers'
// exactExpansion, i.e. head-matmul-calls) one chunk's attend step is the
// runtime's dsrt_naive_attend_f32 (runtime/src/cpu/NaiveAttend.cpp): the
// score tile and P V through its GEMM tile kernels with a vector exp in
// between, per (head, block of tokens). The generated scalar loop
// (pagedNaiveAttendChunk) reassociates no reduction and calls expf once
// per (token, head, row); it stays the GPU's.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::naiveAttendCall(Value ctx, ValueRange a, double scale) {
  // a: pagedNaiveAttendChunk's operands (q_nope, q_rope, positions, kv,
  // rope, running max, running sum, out, first token, tokens, first row,
  // rows).
  attendCall("dsrt_naive_attend_f32", ctx, a.take_front(8), a.drop_front(8),
             scale);
}
