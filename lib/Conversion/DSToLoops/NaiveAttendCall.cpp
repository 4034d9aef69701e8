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

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

/// Any sizes, strides and offset: the queries are views of wider buffers.
static MemRefType anyLayout(Value v) {
  auto t = cast<MemRefType>(v.getType());
  int64_t rank = t.getRank();
  return MemRefType::get(
      SmallVector<int64_t>(rank, ShapedType::kDynamic), t.getElementType(),
      StridedLayoutAttr::get(t.getContext(), ShapedType::kDynamic,
                             SmallVector<int64_t>(rank, ShapedType::kDynamic)));
}

void KernelEmitter::naiveAttendCall(Value ctx, ValueRange a, double scale) {
  // a: pagedNaiveAttendChunk's operands (q_nope, q_rope, positions, kv,
  // rope, running max, running sum, out, first token, tokens, first row,
  // rows).
  SmallVector<Type> types{ctx.getType()};
  SmallVector<Value> args{ctx};
  for (Value v : a.take_front(8)) {
    MemRefType t = anyLayout(v);
    types.push_back(t);
    args.push_back(memref::CastOp::create(b, loc, t, v));
  }
  Type i64 = b.getI64Type(), f32 = b.getF32Type();
  for (Value v : a.drop_front(8)) {
    types.push_back(i64);
    args.push_back(arith::IndexCastOp::create(b, loc, i64, v));
  }
  types.push_back(f32);
  args.push_back(cF32(scale));
  auto fn = runtimeFunction("dsrt_naive_attend_f32", types, {});
  func::CallOp::create(b, loc, fn, args);
}
