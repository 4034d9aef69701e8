//===- DecomposeDense.cpp - ds.mlp / ds.lm_head -> kernel ops -------------===//
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
      if (isa<MLPOp, LMHeadOp>(op))
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
      auto head = cast<LMHeadOp>(op);
      Value n = RMSNormOp::create(b, loc, head.getInput().getType(),
                                  head.getInput(), head.getNorm(),
                                  head.getEpsAttr());
      b.replaceOp(op, linear(b, loc, n, head.getHead()));
    }
  }
};

} // namespace
