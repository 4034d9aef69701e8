//===- ExpertCalls.cpp - runtime calls: expert parallelism's exchanges ----===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family. Results
// whose row counts depend on other ranks (a token share, the rows other
// ranks route here) are sized by a first call that exchanges the counts
// and returns them; the buffer is then allocated and filled by a second.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

static MemRefType dynamicOf(Type element, int64_t rank) {
  return MemRefType::get(SmallVector<int64_t>(rank, ShapedType::kDynamic),
                         element);
}

Value KernelEmitter::sliceRows(Value ctx, Value in, RankedTensorType type) {
  Type i64 = b.getI64Type();
  auto d2 = dynamicOf(b.getF32Type(), 2);
  Value total = arith::IndexCastOp::create(b, loc, i64, dim(in, 0));
  auto count = runtimeFunction("dsrt_rows_share", {ctx.getType(), i64}, {i64});
  Value rows =
      func::CallOp::create(b, loc, count, ValueRange{ctx, total}).getResult(0);
  Value out =
      alloc(type, {arith::IndexCastOp::create(b, loc, b.getIndexType(), rows)});
  auto fn = runtimeFunction("dsrt_slice_rows_f32", {ctx.getType(), d2, d2}, {});
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, memref::CastOp::create(b, loc, d2, in),
                                  memref::CastOp::create(b, loc, d2, out)});
  return out;
}

Value KernelEmitter::gatherRows(Value ctx, Value in, RankedTensorType type,
                                int64_t ranks) {
  Type i64 = b.getI64Type();
  auto d2 = dynamicOf(b.getF32Type(), 2);
  auto c1 = dynamicOf(i64, 1);
  Value counts = memref::AllocOp::create(b, loc, MemRefType::get({ranks}, i64));
  Value mine = arith::IndexCastOp::create(b, loc, i64, dim(in, 0));
  auto count = runtimeFunction("dsrt_gather_rows_counts",
                               {ctx.getType(), i64, c1}, {i64});
  Value countsDyn = memref::CastOp::create(b, loc, c1, counts);
  Value total =
      func::CallOp::create(b, loc, count, ValueRange{ctx, mine, countsDyn})
          .getResult(0);
  Value out = alloc(
      type, {arith::IndexCastOp::create(b, loc, b.getIndexType(), total)});
  auto fn =
      runtimeFunction("dsrt_gather_rows_f32", {ctx.getType(), d2, c1, d2}, {});
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, memref::CastOp::create(b, loc, d2, in),
                                  countsDyn,
                                  memref::CastOp::create(b, loc, d2, out)});
  return out;
}

SmallVector<Value> KernelEmitter::moeDispatch(Value ctx, Value permuted,
                                              Value offsets, TypeRange types) {
  Type i64 = b.getI64Type();
  auto f2 = dynamicOf(b.getF32Type(), 2);
  auto i1 = dynamicOf(b.getI32Type(), 1), i2 = dynamicOf(b.getI32Type(), 2);
  auto receivedType = cast<RankedTensorType>(types[0]);
  Value counts = alloc(cast<RankedTensorType>(types[2]));
  Value receivedOffsets = alloc(cast<RankedTensorType>(types[1]));
  Value off = memref::CastOp::create(b, loc, i1, offsets);
  Value cnt = memref::CastOp::create(b, loc, i2, counts);
  auto count = runtimeFunction("dsrt_moe_dispatch_counts",
                               {ctx.getType(), i1, i2}, {i64});
  Value rows = func::CallOp::create(b, loc, count, ValueRange{ctx, off, cnt})
                   .getResult(0);
  Value received =
      alloc(receivedType,
            {arith::IndexCastOp::create(b, loc, b.getIndexType(), rows)});
  auto fn = runtimeFunction("dsrt_moe_dispatch_rows_f32",
                            {ctx.getType(), f2, i1, i2, f2, i1}, {});
  func::CallOp::create(
      b, loc, fn,
      ValueRange{ctx, memref::CastOp::create(b, loc, f2, permuted), off, cnt,
                 memref::CastOp::create(b, loc, f2, received),
                 memref::CastOp::create(b, loc, i1, receivedOffsets)});
  return {received, receivedOffsets, counts};
}

Value KernelEmitter::moeCollect(Value ctx, Value expertOut, Value counts,
                                Value offsets, RankedTensorType type) {
  auto f2 = dynamicOf(b.getF32Type(), 2);
  auto i1 = dynamicOf(b.getI32Type(), 1), i2 = dynamicOf(b.getI32Type(), 2);
  // As many rows as this rank permuted: offsets[num_experts].
  int64_t last = cast<MemRefType>(offsets.getType()).getDimSize(0) - 1;
  Value rows = arith::IndexCastOp::create(
      b, loc, b.getIndexType(),
      memref::LoadOp::create(b, loc, offsets, ValueRange{cIdx(last)}));
  Value out = alloc(type, {rows});
  auto fn = runtimeFunction("dsrt_moe_collect_rows_f32",
                            {ctx.getType(), f2, i2, i1, f2}, {});
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx,
                                  memref::CastOp::create(b, loc, f2, expertOut),
                                  memref::CastOp::create(b, loc, i2, counts),
                                  memref::CastOp::create(b, loc, i1, offsets),
                                  memref::CastOp::create(b, loc, f2, out)});
  return out;
}
