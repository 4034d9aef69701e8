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
