//===- DecomposeDense.cpp - dense model-level ops -> kernel ops ----------===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "ds-decompose-dense"

namespace mlir::ds {
#define GEN_PASS_DEF_DSDECOMPOSEDENSEPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

Value linear(OpBuilder &b, Location loc, Value x, Value w) {
  auto xt = cast<RankedTensorType>(x.getType());
  auto wt = cast<RankedTensorType>(w.getType());
  return LinearOp::create(
      b, loc,
      RankedTensorType::get({xt.getDimSize(0), wt.getDimSize(0)},
                            xt.getElementType()),
      x, w);
}

struct DSDecomposeDensePass
    : mlir::ds::impl::DSDecomposeDensePassBase<DSDecomposeDensePass> {
  void runOnOperation() override {
    IRRewriter b(&getContext());
    SmallVector<Operation *> ops;
    getOperation().walk([&](Operation *op) {
      if (isa<MLPOp, LMHeadOp, MTPProjectOp>(op))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      b.setInsertionPoint(op);
      Location loc = op->getLoc();
      if (auto mlp = dyn_cast<MLPOp>(op)) {
        Value g = linear(b, loc, mlp.getInput(), mlp.getGate());
        Value u = linear(b, loc, mlp.getInput(), mlp.getUp());
        Value h = SiluMulOp::create(b, loc, g.getType(), g, u);
        b.replaceOp(op, linear(b, loc, h, mlp.getDown()));
        continue;
      }
      if (auto mtp = dyn_cast<MTPProjectOp>(op)) {
        // RMSNorm(0) = 0, so zeroing the first position's embedding after
        // enorm (in ds.mtp_concat) is the same as zeroing it before.
        auto t = mtp.getEmbedding().getType();
        Value e = RMSNormOp::create(b, loc, t, mtp.getEmbedding(),
                                    mtp.getEnorm(), mtp.getEpsAttr());
        Value h = RMSNormOp::create(b, loc, mtp.getHidden().getType(),
                                    mtp.getHidden(), mtp.getHnorm(),
                                    mtp.getEpsAttr());
        auto cat = RankedTensorType::get({t.getDimSize(0), 2 * t.getDimSize(1)},
                                         t.getElementType());
        Value eh = MTPConcatOp::create(b, loc, cat, e, h, mtp.getPositions());
        b.replaceOp(op, linear(b, loc, eh, mtp.getEhProj()));
        continue;
      }
      auto head = cast<LMHeadOp>(op);
      Value n = RMSNormOp::create(b, loc, head.getInput().getType(),
                                  head.getInput(), head.getNorm(),
                                  head.getEpsAttr());
      b.replaceOp(op, linear(b, loc, n, head.getHead()));
    }
  }
};

} // namespace
