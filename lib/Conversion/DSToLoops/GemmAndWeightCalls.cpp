//===- GemmAndWeightCalls.cpp - runtime calls: GEMMs, weight bindings ===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

static MemRefType dynamicLike(MemRefType t) {
  return MemRefType::get(SmallVector<int64_t>(t.getRank(), ShapedType::kDynamic),
                         t.getElementType());
}

//===----------------------------------------------------------------------===//
// Runtime calls
//===----------------------------------------------------------------------===//

void KernelEmitter::callOnMemrefs(StringRef name, Value ctx,
                                  ValueRange memrefs) {
  SmallVector<Type> types = {ctx.getType()};
  for (Value m : memrefs)
    types.push_back(dynamicLike(cast<MemRefType>(m.getType())));
  auto fn = runtimeFunction(name, types, {});
  SmallVector<Value> args = {ctx};
  for (auto [m, t] : llvm::zip(memrefs, ArrayRef<Type>(types).drop_front()))
    args.push_back(memref::CastOp::create(b, loc, t, m));
  func::CallOp::create(b, loc, fn, args);
}

Value KernelEmitter::weight(Value ctx, int64_t index, ArrayRef<int64_t> shape) {
  auto dyn = MemRefType::get(
      SmallVector<int64_t>(shape.size(), ShapedType::kDynamic), b.getF32Type());
  std::string name = "dsrt_weight_f32_r" + std::to_string(shape.size());
  auto fn = runtimeFunction(name, {ctx.getType(), b.getI64Type()}, {dyn});
  Value idx = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(index));
  Value w = func::CallOp::create(b, loc, fn, ValueRange{ctx, idx}).getResult(0);
  return memref::CastOp::create(b, loc, MemRefType::get(shape, b.getF32Type()),
                                w);
}

void KernelEmitter::linear(Value ctx, Value x, Value w, Value y) {
  callOnMemrefs("dsrt_linear_f32", ctx, {x, w, y});
}

void KernelEmitter::linearExact(Value ctx, Value x, Value w, Value y) {
  auto d2 = dynamicLike(cast<MemRefType>(x.getType()));
  auto fn =
      runtimeFunction("dsrt_linear_exact_f32", {ctx.getType(), d2, d2, d2}, {});
  auto cast = [&](Value v) { return memref::CastOp::create(b, loc, d2, v); };
  func::CallOp::create(b, loc, fn, ValueRange{ctx, cast(x), cast(w), cast(y)});
}

void KernelEmitter::linearSiluMul(Value ctx, Value x, Value w, Value y) {
  callOnMemrefs("dsrt_linear_silu_mul_f32", ctx, {x, w, y});
}

void KernelEmitter::groupedLinear(Value ctx, Value x, Value w, Value offsets,
                                  Value y, Value rowOfSlot) {
  if (rowOfSlot)
    return callOnMemrefs("dsrt_grouped_linear_gather_f32", ctx,
                         {x, w, offsets, rowOfSlot, y});
  callOnMemrefs("dsrt_grouped_linear_f32", ctx, {x, w, offsets, y});
}

void KernelEmitter::groupedLinearSiluMul(Value ctx, Value x, Value wg, Value wu,
                                         Value offsets, Value y,
                                         Value rowOfSlot) {
  if (rowOfSlot)
    return callOnMemrefs("dsrt_grouped_linear_silu_mul_gather_f32", ctx,
                         {x, wg, wu, offsets, rowOfSlot, y});
  callOnMemrefs("dsrt_grouped_linear_silu_mul_f32", ctx,
                {x, wg, wu, offsets, y});
}

void KernelEmitter::headMatmulCall(Value ctx, Value x, Value w, Value out,
                                   int64_t group, int64_t offset,
                                   bool transpose, Value queryStart,
                                   int64_t naiveMinTokens) {
  auto d3 = dynamicLike(cast<MemRefType>(x.getType()));
  auto d2 = dynamicLike(cast<MemRefType>(w.getType()));
  Type i64 = b.getI64Type();
  auto c = [&](Value v, MemRefType t) {
    return memref::CastOp::create(b, loc, t, v);
  };
  auto i = [&](int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
  };
  if (queryStart) {
    auto d1 = dynamicLike(cast<MemRefType>(queryStart.getType()));
    auto fn = runtimeFunction(
        "dsrt_head_matmul_skip_f32",
        {ctx.getType(), d3, d2, d3, d1, i64, i64, i64, i64}, {});
    func::CallOp::create(b, loc, fn,
                         ValueRange{ctx, c(x, d3), c(w, d2), c(out, d3),
                                    c(queryStart, d1), i(group), i(offset),
                                    i(transpose ? 1 : 0), i(naiveMinTokens)});
    return;
  }
  auto fn = runtimeFunction("dsrt_head_matmul_f32",
                            {ctx.getType(), d3, d2, d3, i64, i64, i64}, {});
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, c(x, d3), c(w, d2), c(out, d3), i(group),
                                  i(offset), i(transpose ? 1 : 0)});
}

void KernelEmitter::embeddingCall(Value ctx, Value table, Value ids,
                                  Value out) {
  callOnMemrefs("dsrt_embedding_f32", ctx, {table, ids, out});
}

void KernelEmitter::traceRouting(Value ctx, int64_t ordinal, Value ids) {
  // Any strides: the ids may be the leading columns of a wider buffer.
  auto d2 = MemRefType::get(
      {ShapedType::kDynamic, ShapedType::kDynamic}, b.getI32Type(),
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic,
                             {ShapedType::kDynamic, ShapedType::kDynamic}));
  auto fn = runtimeFunction("dsrt_trace_routing",
                            {ctx.getType(), b.getI64Type(), d2}, {});
  Value idx = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(ordinal));
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, idx,
                                  memref::CastOp::create(b, loc, d2, ids)});
}


void KernelEmitter::allReduceSum(Value ctx, Value in, Value out) {
  callOnMemrefs("dsrt_all_reduce_sum_f32", ctx, {in, out});
}

void KernelEmitter::allGatherCols(Value ctx, Value in, Value out) {
  callOnMemrefs("dsrt_all_gather_cols_f32", ctx, {in, out});
}

Value KernelEmitter::commRank(Value ctx) {
  auto fn = runtimeFunction("dsrt_comm_rank_index", {ctx.getType()},
                            {b.getI64Type()});
  return func::CallOp::create(b, loc, fn, ValueRange{ctx}).getResult(0);
}
