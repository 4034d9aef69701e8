//===- GpuBuilder.h - builder helpers of the hand-mapped kernels -*- C++ -*-===//
#ifndef DS_CONVERSION_KERNELSTOGPU_GPUBUILDER_H
#define DS_CONVERSION_KERNELSTOGPU_GPUBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

namespace mlir::ds::gpu_kernels {

/// Small builder helpers over one OpBuilder and location.
struct Emit {
  OpBuilder &b;
  Location loc;

  Value idx(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value f32(double v) {
    return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(float(v)));
  }
  Value add(Value x, Value y) { return arith::AddIOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return arith::MulIOp::create(b, loc, x, y); }
  Value fadd(Value x, Value y) { return arith::AddFOp::create(b, loc, x, y); }
  Value fmul(Value x, Value y) { return arith::MulFOp::create(b, loc, x, y); }
  Value fsub(Value x, Value y) { return arith::SubFOp::create(b, loc, x, y); }
  Value fmax(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value exp(Value x) { return math::ExpOp::create(b, loc, x); }
  Value ult(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, x, y);
  }
  Value fgt(Value x, Value y) {
    return arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, x, y);
  }
  Value select(Value c, Value x, Value y) {
    return arith::SelectOp::create(b, loc, c, x, y);
  }
  Value minU(Value x, Value y) { return arith::MinUIOp::create(b, loc, x, y); }
  Value maxU(Value x, Value y) { return arith::MaxUIOp::create(b, loc, x, y); }
  Value ceilDiv(Value x, Value y) {
    return arith::CeilDivUIOp::create(b, loc, x, y);
  }
  Value splat(VectorType t, Value s) {
    return vector::BroadcastOp::create(b, loc, t, s);
  }
  Value zeros(VectorType t) {
    return arith::ConstantOp::create(b, loc, t,
                                     DenseElementsAttr::get(
                                         t, b.getFloatAttr(
                                                t.getElementType(), 0.0)));
  }
  /// if (cond) { then() yields values } else { zeros of the same types }.
  SmallVector<Value> ifElse(Value cond, TypeRange types,
                            function_ref<SmallVector<Value>()> then,
                            function_ref<SmallVector<Value>()> otherwise) {
    auto op = scf::IfOp::create(b, loc, types, cond, /*withElse=*/true);
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(&op.getThenRegion().front());
      scf::YieldOp::create(b, loc, then());
      b.setInsertionPointToStart(&op.getElseRegion().front());
      scf::YieldOp::create(b, loc, otherwise());
    }
    return SmallVector<Value>(op.getResults());
  }
  void ifThen(Value cond, function_ref<void()> then) {
    auto op = scf::IfOp::create(b, loc, cond, /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&op.getThenRegion().front());
    then();
  }
  /// for (i = lb; i < ub; i += step) with loop-carried `inits`.
  SmallVector<Value>
  loop(Value lb, Value ub, Value step, ValueRange inits,
       function_ref<SmallVector<Value>(Value, ValueRange)> body) {
    auto op = scf::ForOp::create(
        b, loc, lb, ub, step, inits,
        [&](OpBuilder &nb, Location, Value iv, ValueRange args) {
          OpBuilder::InsertionGuard g(b);
          b.setInsertionPoint(nb.getInsertionBlock(), nb.getInsertionPoint());
          scf::YieldOp::create(b, loc, body(iv, args));
        });
    return SmallVector<Value>(op.getResults());
  }
  /// Sum over the 32 lanes of a warp; every lane gets the total.
  Value warpSum(Value v) {
    for (int32_t off : {16, 8, 4, 2, 1})
      v = fadd(v, gpu::ShuffleOp::create(b, loc, v, off, 32,
                                         gpu::ShuffleMode::XOR)
                      .getShuffleResult());
    return v;
  }
  /// A launch of grid (gx, gy) x `threads` threads with shared buffers.
  gpu::LaunchOp launch(Value gx, Value gy, int64_t threads, TypeRange shared,
                       function_ref<void(gpu::LaunchOp)> body) {
    Value one = idx(1);
    auto l = gpu::LaunchOp::create(b, loc, gx, gy, one, idx(threads), one,
                                   one, /*dynamicSharedMemorySize=*/nullptr,
                                   /*asyncTokenType=*/nullptr,
                                   /*asyncDependencies=*/{}, shared);
    OpBuilder::InsertionGuard g(b);
    Block *entry = &l.getBody().front();
    b.setInsertionPointToStart(entry);
    body(l);
    b.setInsertionPointToEnd(entry);
    gpu::TerminatorOp::create(b, loc);
    return l;
  }
};

/// The runtime's answer to "how many tokens of context does this call
/// reach" (dsrt_gpu_context_tokens), declared once per module.
inline func::FuncOp contextTokensFn(func::FuncOp fn) {
  auto module = fn->getParentOfType<ModuleOp>();
  constexpr StringLiteral name = "dsrt_gpu_context_tokens";
  if (auto f = module.lookupSymbol<func::FuncOp>(name))
    return f;
  OpBuilder b = OpBuilder::atBlockBegin(module.getBody());
  Type i64 = b.getI64Type();
  auto f = func::FuncOp::create(b, fn.getLoc(), name,
                                b.getFunctionType({i64}, {i64}));
  f.setPrivate();
  return f;
}

} // namespace mlir::ds::gpu_kernels

#endif
