//===- FuseSiluEpilogue.cpp - SiLU-mul in the gate|up GEMM's epilogue -----===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-fuse-silu-epilogue"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSESILUEPILOGUEPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// `silu_mul_packed(linear(x, [gate; up]))` -> `linear_silu_mul(x, [gate; up])`.
struct FuseSiluEpiloguePattern : OpRewritePattern<SiluMulPackedOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SiluMulPackedOp op,
                                PatternRewriter &rewriter) const override {
    auto gu = op.getInput().getDefiningOp<LinearOp>();
    // The packed product must feed nothing else: it is never written.
    if (!gu || !gu->hasOneUse())
      return rewriter.notifyMatchFailure(op, "not the only user of a linear");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] fusing " << gu << "\n");
    Value h = LinearSiluMulOp::create(rewriter, op.getLoc(), op.getType(),
                                      gu.getInput(), gu.getWeight());
    rewriter.replaceOp(op, h);
    rewriter.eraseOp(gu);
    return success();
  }
};

/// `silu_mul(grouped_matmul(x, Wg, off), grouped_matmul(x, Wu, off))` ->
/// `grouped_matmul_silu_mul(x, Wg, Wu, off)`: the routed experts' gate and
/// up (ds-dispatch-experts, ds-fold-shared-experts).
struct FuseGroupedSiluPattern : OpRewritePattern<SiluMulOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(SiluMulOp op,
                                PatternRewriter &rewriter) const override {
    auto gate = op.getGate().getDefiningOp<GroupedMatmulOp>();
    auto up = op.getUp().getDefiningOp<GroupedMatmulOp>();
    if (!gate || !up || gate == up)
      return rewriter.notifyMatchFailure(op, "not two grouped matmuls");
    // Same rows, same experts; neither product may feed anything else (the
    // fused op never writes them).
    if (gate.getInput() != up.getInput() ||
        gate.getOffsets() != up.getOffsets() ||
        gate.getRowOfSlot() != up.getRowOfSlot() || !gate->hasOneUse() ||
        !up->hasOneUse() ||
        gate.getWeights().getType() != up.getWeights().getType())
      return rewriter.notifyMatchFailure(op, "gate and up differ in x, "
                                             "offsets or weight shape, or "
                                             "have other users");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] fusing " << gate << " and "
                            << up << "\n");
    Value h = GroupedMatmulSiluMulOp::create(
        rewriter, op.getLoc(), op.getType(), gate.getInput(), gate.getWeights(),
        up.getWeights(), gate.getOffsets(), gate.getRowOfSlot());
    rewriter.replaceOp(op, h);
    rewriter.eraseOp(gate);
    rewriter.eraseOp(up);
    return success();
  }
};

struct DSFuseSiluEpiloguePass
    : mlir::ds::impl::DSFuseSiluEpiloguePassBase<DSFuseSiluEpiloguePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseSiluEpiloguePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateFuseSiluEpiloguePatterns(RewritePatternSet &patterns) {
  patterns.add<FuseSiluEpiloguePattern, FuseGroupedSiluPattern>(
      patterns.getContext());
}
