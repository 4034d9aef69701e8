//===- RowNormKernel.cpp - RMSNorm as one block per row -------------------===//
//
// The generic mapping gives RMSNorm one thread per token: at decode, one
// thread reads a whole 7168-wide row twice. Here a block of 256 threads
// takes the row: each thread a strided slice (coalesced), a warp-shuffle
// sum, the 8 warps' sums through shared memory, then every thread scales
// its slice. With a residual add (add_rms_norm) each thread writes the sum
// of its slice and rereads it itself, so no second barrier is needed.
//
//===----------------------------------------------------------------------===//
#include "RowNormKernel.h"
#include "GpuBuilder.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>
#include <tuple>

using namespace mlir;
using mlir::ds::gpu_kernels::Emit;

namespace {
constexpr int64_t kThreads = 256, kWarps = kThreads / 32;
} // namespace

FailureOr<bool> mlir::ds::gpu_kernels::emitRowNorm(func::FuncOp fn) {
  auto kind = fn->getAttrOfType<StringAttr>("ds.kernel");
  auto epsAttr = fn->getAttrOfType<FloatAttr>("ds.eps");
  bool withAdd = kind && kind.getValue() == "add_rms_norm";
  unsigned args = withAdd ? 5 : 3;
  if (!epsAttr || fn.getNumArguments() != args)
    return false;
  for (Type t : fn.getArgumentTypes()) {
    auto m = dyn_cast<MemRefType>(t);
    if (!m || !m.getElementType().isF32() || !m.getLayout().isIdentity())
      return false;
  }
  auto xt = cast<MemRefType>(fn.getArgumentTypes()[0]);
  if (xt.getRank() != 2 || xt.isDynamicDim(1))
    return false;
  int64_t width = xt.getDimSize(1);

  Block &body = fn.getBody().front();
  while (!body.empty())
    body.back().erase();
  OpBuilder b = OpBuilder::atBlockEnd(&body);
  Location loc = fn.getLoc();
  Emit e{b, loc};
  Value x = body.getArgument(0);
  Value y = withAdd ? body.getArgument(1) : Value();
  Value w = body.getArgument(withAdd ? 2 : 1);
  Value sum = withAdd ? body.getArgument(3) : Value();
  Value out = body.getArgument(withAdd ? 4 : 2);
  Type f32 = b.getF32Type();
  auto shared = gpu::AddressSpaceAttr::get(fn.getContext(),
                                           gpu::AddressSpace::Workgroup);
  auto partT = MemRefType::get({kWarps}, f32, nullptr, shared);

  Value rows = memref::DimOp::create(b, loc, x, int64_t(0));
  e.ifThen(e.ult(e.idx(0), rows), [&] {
    e.launch(rows, e.idx(1), kThreads, {partT}, [&](gpu::LaunchOp l) {
      Value part = l.getWorkgroupAttributions()[0];
      Value t = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value lane = arith::RemUIOp::create(b, loc, tid, e.idx(32));
      Value warp = arith::DivUIOp::create(b, loc, tid, e.idx(32));
      Value n = e.idx(width), step = e.idx(kThreads);
      // The row's value at i: x (+ y, written to `sum`).
      auto value = [&](Value i) -> Value {
        Value v = memref::LoadOp::create(b, loc, x, ValueRange{t, i});
        if (!withAdd)
          return v;
        v = e.fadd(v, memref::LoadOp::create(b, loc, y, ValueRange{t, i}));
        memref::StoreOp::create(b, loc, v, sum, ValueRange{t, i});
        return v;
      };
      Value ss = e.loop(tid, n, step, {e.f32(0.0)},
                        [&](Value i, ValueRange acc) -> SmallVector<Value> {
                          Value v = value(i);
                          return {e.fadd(acc[0], e.fmul(v, v))};
                        })[0];
      ss = e.warpSum(ss);
      e.ifThen(e.ult(lane, e.idx(1)), [&] {
        memref::StoreOp::create(b, loc, ss, part, ValueRange{warp});
      });
      gpu::BarrierOp::create(b, loc);
      Value total = e.f32(0.0);
      for (int64_t i = 0; i < kWarps; ++i)
        total = e.fadd(total, memref::LoadOp::create(b, loc, part,
                                                     ValueRange{e.idx(i)}));
      Value mean = arith::DivFOp::create(b, loc, total, e.f32(double(width)));
      Value inv = math::RsqrtOp::create(
          b, loc, e.fadd(mean, e.f32(epsAttr.getValueAsDouble())));
      e.loop(tid, n, step, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
        Value v = memref::LoadOp::create(b, loc, withAdd ? sum : x,
                                         ValueRange{t, i});
        Value scaled = e.fmul(e.fmul(v, inv),
                              memref::LoadOp::create(b, loc, w, ValueRange{i}));
        memref::StoreOp::create(b, loc, scaled, out, ValueRange{t, i});
        return {};
      });
    });
  });
  func::ReturnOp::create(b, loc);
  fn->setAttr("ds.block_per_row", UnitAttr::get(fn.getContext()));
  return true;
}

FailureOr<bool> mlir::ds::gpu_kernels::emitRowArgmax(func::FuncOp fn) {
  if (fn.getNumArguments() != 2)
    return false;
  auto lt = dyn_cast<MemRefType>(fn.getArgumentTypes()[0]);
  auto it = dyn_cast<MemRefType>(fn.getArgumentTypes()[1]);
  if (!lt || !it || lt.getRank() != 2 || lt.isDynamicDim(1) ||
      !lt.getElementType().isF32() || !it.getElementType().isInteger(32))
    return false;
  int64_t vocab = lt.getDimSize(1);
  Block &body = fn.getBody().front();
  while (!body.empty())
    body.back().erase();
  OpBuilder b = OpBuilder::atBlockEnd(&body);
  Location loc = fn.getLoc();
  Emit e{b, loc};
  Value logits = body.getArgument(0), ids = body.getArgument(1);
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto shared = gpu::AddressSpaceAttr::get(fn.getContext(),
                                           gpu::AddressSpace::Workgroup);
  auto valT = MemRefType::get({kWarps}, f32, nullptr, shared);
  auto idxT = MemRefType::get({kWarps}, i32, nullptr, shared);
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  Value none = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(
                                                     int32_t(vocab)));
  // (v, i) or (w, j), whichever is larger, the smaller index on ties.
  auto pick = [&](Value v, Value i, Value w, Value j) -> std::pair<Value, Value> {
    Value greater = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                          w, v);
    Value tie = arith::AndIOp::create(
        b, loc,
        arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, w, v),
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, j, i));
    Value take = arith::OrIOp::create(b, loc, greater, tie);
    return {e.select(take, w, v), e.select(take, j, i)};
  };
  Value rows = memref::DimOp::create(b, loc, logits, int64_t(0));
  e.ifThen(e.ult(e.idx(0), rows), [&] {
    e.launch(rows, e.idx(1), kThreads, {valT, idxT}, [&](gpu::LaunchOp l) {
      Value sv = l.getWorkgroupAttributions()[0];
      Value si = l.getWorkgroupAttributions()[1];
      Value t = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value lane = arith::RemUIOp::create(b, loc, tid, e.idx(32));
      Value warp = arith::DivUIOp::create(b, loc, tid, e.idx(32));
      SmallVector<Value> best = e.loop(
          tid, e.idx(vocab), e.idx(kThreads), {negInf, none},
          [&](Value c, ValueRange acc) -> SmallVector<Value> {
            Value v = memref::LoadOp::create(b, loc, logits, ValueRange{t, c});
            Value ci = arith::IndexCastOp::create(b, loc, i32, c);
            auto [bv, bi] = pick(acc[0], acc[1], v, ci);
            return {bv, bi};
          });
      Value v = best[0], i = best[1];
      for (int32_t off : {16, 8, 4, 2, 1}) {
        Value w = gpu::ShuffleOp::create(b, loc, v, off, 32,
                                         gpu::ShuffleMode::XOR)
                      .getShuffleResult();
        Value j = gpu::ShuffleOp::create(b, loc, i, off, 32,
                                         gpu::ShuffleMode::XOR)
                      .getShuffleResult();
        std::tie(v, i) = pick(v, i, w, j);
      }
      e.ifThen(e.ult(lane, e.idx(1)), [&] {
        memref::StoreOp::create(b, loc, v, sv, ValueRange{warp});
        memref::StoreOp::create(b, loc, i, si, ValueRange{warp});
      });
      gpu::BarrierOp::create(b, loc);
      e.ifThen(e.ult(tid, e.idx(1)), [&] {
        Value bv = negInf, bi = none;
        for (int64_t w = 0; w < kWarps; ++w)
          std::tie(bv, bi) =
              pick(bv, bi,
                   memref::LoadOp::create(b, loc, sv, ValueRange{e.idx(w)}),
                   memref::LoadOp::create(b, loc, si, ValueRange{e.idx(w)}));
        // No finite maximum (all NaN or -inf): column 0, as on the CPU.
        Value found = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                            bi, none);
        Value zero = arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(0));
        memref::StoreOp::create(b, loc, e.select(found, bi, zero), ids,
                                ValueRange{t});
      });
    });
  });
  func::ReturnOp::create(b, loc);
  fn->setAttr("ds.block_per_row", UnitAttr::get(fn.getContext()));
  return true;
}
