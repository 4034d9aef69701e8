//===- FuseResidualNorm.cpp - residual add + RMSNorm in one kernel --------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-fuse-residual-norm"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSERESIDUALNORMPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// `h = x + y; n = rms_norm(h)` -> `h, n = add_rms_norm(x, y)`.
struct FuseResidualNormPattern : OpRewritePattern<RMSNormOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(RMSNormOp norm,
                                PatternRewriter &rewriter) const override {
    auto add = norm.getInput().getDefiningOp<arith::AddFOp>();
    // Only the residual stream: [tokens, hidden] tensors.
    if (!add || !isa<RankedTensorType>(add.getType()))
      return rewriter.notifyMatchFailure(norm, "input is not a tensor add");
    // The fused op sits where the norm is: every other user of the sum
    // must come after it.
    if (llvm::any_of(add->getUsers(), [&](Operation *user) {
          return user != norm.getOperation() &&
                 (user->getBlock() != norm->getBlock() ||
                  user->isBeforeInBlock(norm));
        }))
      return rewriter.notifyMatchFailure(norm, "the sum is used before it");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] fusing " << add << "\n");
    auto fused = AddRMSNormOp::create(
        rewriter, norm.getLoc(), add.getType(), norm.getType(), add.getLhs(),
        add.getRhs(), norm.getWeight(), norm.getEpsAttr());
    rewriter.replaceOp(norm, fused.getResult());
    rewriter.replaceAllUsesWith(add.getResult(), fused.getSum());
    rewriter.eraseOp(add);
    return success();
  }
};

struct DSFuseResidualNormPass
    : mlir::ds::impl::DSFuseResidualNormPassBase<DSFuseResidualNormPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseResidualNormPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateFuseResidualNormPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseResidualNormPattern>(patterns.getContext());
}
