//===- FuseResidualNorm.cpp - residual add + RMSNorm in one kernel --------===//
#include "ds/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/PatternMatch.h"

#define DEBUG_TYPE "ds-fuse-residual-norm"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSERESIDUALNORMPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

struct DSFuseResidualNormPass
    : mlir::ds::impl::DSFuseResidualNormPassBase<DSFuseResidualNormPass> {
  void runOnOperation() override {
    IRRewriter b(&getContext());
    SmallVector<RMSNormOp> norms;
    getOperation().walk([&](RMSNormOp op) { norms.push_back(op); });
    for (RMSNormOp norm : norms) {
      auto add = norm.getInput().getDefiningOp<arith::AddFOp>();
      // Only the residual stream: [tokens, hidden] tensors.
      if (!add || !isa<RankedTensorType>(add.getType()))
        continue;
      // The fused op sits where the norm is: every other user of the sum
      // must come after it.
      if (llvm::any_of(add->getUsers(), [&](Operation *user) {
            return user != norm.getOperation() &&
                   (user->getBlock() != norm->getBlock() ||
                    user->isBeforeInBlock(norm));
          }))
        continue;
      b.setInsertionPoint(norm);
      auto fused = AddRMSNormOp::create(
          b, norm.getLoc(), add.getType(), norm.getType(), add.getLhs(),
          add.getRhs(), norm.getWeight(), norm.getEpsAttr());
      b.replaceOp(norm, fused.getResult());
      b.replaceAllUsesWith(add.getResult(), fused.getSum());
      b.eraseOp(add);
    }
  }
};

} // namespace
