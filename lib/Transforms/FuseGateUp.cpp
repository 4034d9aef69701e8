//===- FuseGateUp.cpp - gate and up projections as one matmul -------------===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "ds-fuse-gate-up"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSEGATEUPPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

struct DSFuseGateUpPass
    : mlir::ds::impl::DSFuseGateUpPassBase<DSFuseGateUpPass> {
  void runOnOperation() override {
    IRRewriter b(&getContext());
    SmallVector<SiluMulOp> ops;
    getOperation().walk([&](SiluMulOp op) { ops.push_back(op); });
    for (SiluMulOp op : ops) {
      auto gate = op.getGate().getDefiningOp<LinearOp>();
      auto up = op.getUp().getDefiningOp<LinearOp>();
      if (!gate || !up || gate == up || gate.getInput() != up.getInput() ||
          !gate->hasOneUse() || !up->hasOneUse())
        continue;
      auto gw = cast<RankedTensorType>(gate.getWeight().getType());
      auto uw = cast<RankedTensorType>(up.getWeight().getType());
      if (gw != uw)
        continue;
      // The packed linear goes where the later projection was, so both
      // weights are defined before it.
      Operation *later = gate->isBeforeInBlock(up) ? up : gate;
      b.setInsertionPoint(later);
      Location loc = op.getLoc();
      SmallVector<int64_t> packed(gw.getShape());
      packed[0] *= 2;
      Value w = ConcatWeightsOp::create(
          b, loc, RankedTensorType::get(packed, gw.getElementType()),
          gate.getWeight(), up.getWeight());
      auto xt = cast<RankedTensorType>(gate.getInput().getType());
      Value gu = LinearOp::create(
          b, loc,
          RankedTensorType::get({xt.getDimSize(0), packed[0]},
                                xt.getElementType()),
          gate.getInput(), w);
      b.setInsertionPoint(op);
      Value h = SiluMulPackedOp::create(b, loc, op.getType(), gu);
      b.replaceOp(op, h);
      b.eraseOp(gate);
      b.eraseOp(up);
    }
  }
};

} // namespace
