//===- FuseGateUp.cpp - gate and up projections as one matmul -------------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-fuse-gate-up"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSEGATEUPPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// `silu_mul(linear(x, gate), linear(x, up))` ->
/// `silu_mul_packed(linear(x, concat_weights(gate, up)))`.
struct FuseGateUpPattern : OpRewritePattern<SiluMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SiluMulOp op,
                                PatternRewriter &rewriter) const override {
    auto gate = op.getGate().getDefiningOp<LinearOp>();
    auto up = op.getUp().getDefiningOp<LinearOp>();
    if (!gate || !up || gate == up || gate.getInput() != up.getInput() ||
        !gate->hasOneUse() || !up->hasOneUse())
      return rewriter.notifyMatchFailure(op, "not two projections of one x");
    auto gw = cast<RankedTensorType>(gate.getWeight().getType());
    auto uw = cast<RankedTensorType>(up.getWeight().getType());
    if (gw != uw)
      return rewriter.notifyMatchFailure(op, "gate and up weights differ");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] packing " << gate << "\n");
    // The packed linear goes where the later projection was, so both
    // weights are defined before it.
    Operation *later = gate->isBeforeInBlock(up) ? up : gate;
    rewriter.setInsertionPoint(later);
    Location loc = op.getLoc();
    SmallVector<int64_t> packed(gw.getShape());
    packed[0] *= 2;
    Value w = ConcatWeightsOp::create(
        rewriter, loc, RankedTensorType::get(packed, gw.getElementType()),
        gate.getWeight(), up.getWeight());
    auto xt = cast<RankedTensorType>(gate.getInput().getType());
    Value gu = LinearOp::create(
        rewriter, loc,
        RankedTensorType::get({xt.getDimSize(0), packed[0]},
                              xt.getElementType()),
        gate.getInput(), w);
    rewriter.setInsertionPoint(op);
    Value h = SiluMulPackedOp::create(rewriter, loc, op.getType(), gu);
    rewriter.replaceOp(op, h);
    rewriter.eraseOp(gate);
    rewriter.eraseOp(up);
    return success();
  }
};

struct DSFuseGateUpPass
    : mlir::ds::impl::DSFuseGateUpPassBase<DSFuseGateUpPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseGateUpPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateFuseGateUpPatterns(RewritePatternSet &patterns) {
  patterns.add<FuseGateUpPattern>(patterns.getContext());
}
