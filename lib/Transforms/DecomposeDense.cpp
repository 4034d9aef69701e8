//===- DecomposeDense.cpp - dense model-level ops -> kernel ops ----------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

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

/// ds.mlp -> linear, linear, silu_mul, linear.
struct DecomposeMLP : OpRewritePattern<MLPOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MLPOp mlp,
                                PatternRewriter &rewriter) const override {
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] " << mlp->getName() << " at "
                            << mlp.getLoc() << "\n");
    Location loc = mlp.getLoc();
    Value g = linear(rewriter, loc, mlp.getInput(), mlp.getGate());
    Value u = linear(rewriter, loc, mlp.getInput(), mlp.getUp());
    Value h = SiluMulOp::create(rewriter, loc, g.getType(), g, u);
    rewriter.replaceOp(mlp, linear(rewriter, loc, h, mlp.getDown()));
    return success();
  }
};

/// ds.lm_head -> rms_norm, linear.
struct DecomposeLMHead : OpRewritePattern<LMHeadOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(LMHeadOp head,
                                PatternRewriter &rewriter) const override {
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] " << head->getName()
                            << " at " << head.getLoc() << "\n");
    Location loc = head.getLoc();
    Value n = RMSNormOp::create(rewriter, loc, head.getInput().getType(),
                                head.getInput(), head.getNorm(),
                                head.getEpsAttr());
    rewriter.replaceOp(head, linear(rewriter, loc, n, head.getHead()));
    return success();
  }
};

/// ds.mtp_project -> rms_norm (enorm), rms_norm (hnorm), mtp_concat, linear
/// (eh_proj).
struct DecomposeMTPProject : OpRewritePattern<MTPProjectOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MTPProjectOp mtp,
                                PatternRewriter &rewriter) const override {
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] " << mtp->getName() << " at "
                            << mtp.getLoc() << "\n");
    Location loc = mtp.getLoc();
    // RMSNorm(0) = 0, so zeroing the first position's embedding after
    // enorm (in ds.mtp_concat) is the same as zeroing it before.
    auto t = mtp.getEmbedding().getType();
    Value e = RMSNormOp::create(rewriter, loc, t, mtp.getEmbedding(),
                                mtp.getEnorm(), mtp.getEpsAttr());
    Value h = RMSNormOp::create(rewriter, loc, mtp.getHidden().getType(),
                                mtp.getHidden(), mtp.getHnorm(),
                                mtp.getEpsAttr());
    auto cat = RankedTensorType::get({t.getDimSize(0), 2 * t.getDimSize(1)},
                                     t.getElementType());
    Value eh =
        MTPConcatOp::create(rewriter, loc, cat, e, h, mtp.getPositions());
    rewriter.replaceOp(mtp, linear(rewriter, loc, eh, mtp.getEhProj()));
    return success();
  }
};

struct DSDecomposeDensePass
    : mlir::ds::impl::DSDecomposeDensePassBase<DSDecomposeDensePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateDecomposeDensePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateDecomposeDensePatterns(RewritePatternSet &patterns) {
  patterns.add<DecomposeMLP, DecomposeLMHead, DecomposeMTPProject>(
      patterns.getContext());
}
