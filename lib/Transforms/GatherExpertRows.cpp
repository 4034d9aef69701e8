//===- GatherExpertRows.cpp - grouped products read tokens' rows in place -===//
//
// The permutation's copy of every token's row once per expert it chose (a
// prefill's 8-9 copies of the hidden state, written to memory and read
// back by the experts' packing) is replaced by the row index: the grouped
// products gather their rows through row_of_slot while they pack them.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-gather-expert-rows"

namespace mlir::ds {
#define GEN_PASS_DEF_DSGATHEREXPERTROWSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The routing whose permuted rows `input` is, or null.
MoERoutePermuteOp permutedBy(Value input) {
  auto route = input.getDefiningOp<MoERoutePermuteOp>();
  return route && route.getPermuted() == input ? route : MoERoutePermuteOp();
}

/// `grouped_matmul(permuted, W, off)` -> `grouped_matmul(x, W, off)
/// gather(row_of_slot)`, and the same for grouped_matmul_silu_mul.
template <typename Op> struct GatherRowsPattern : OpRewritePattern<Op> {
  using OpRewritePattern<Op>::OpRewritePattern;

  LogicalResult matchAndRewrite(Op op,
                                PatternRewriter &rewriter) const override {
    MoERoutePermuteOp route;
    if (op.getRowOfSlot() || !(route = permutedBy(op.getInput())))
      return rewriter.notifyMatchFailure(op, "input not a routing's permuted "
                                             "rows");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] gathering " << op << "\n");
    rewriter.modifyOpInPlace(op, [&] {
      op.getInputMutable().assign(route.getInput());
      op.getRowOfSlotMutable().assign(route.getRowOfSlot());
    });
    return success();
  }
};

/// A routing whose permuted rows nobody reads any more stops writing them.
struct DropPermutedRowsPattern : OpRewritePattern<MoERoutePermuteOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MoERoutePermuteOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.getPermuted() || !op.getPermuted().use_empty())
      return rewriter.notifyMatchFailure(op, "permuted rows read or absent");
    auto route = MoERoutePermuteOp::create(
        rewriter, op.getLoc(), op.getExpertIds().getType(),
        op.getWeights().getType(), /*permuted=*/Type(),
        op.getOffsets().getType(), op.getRowOfSlot().getType(), op.getLogits(),
        op.getInput(), op.getBias(), op.getConfigAttr(),
        op.getSharedExpertsAttr());
    rewriter.replaceOp(op, ValueRange{route.getExpertIds(), route.getWeights(),
                                      Value(), route.getOffsets(),
                                      route.getRowOfSlot()});
    return success();
  }
};

struct DSGatherExpertRowsPass
    : mlir::ds::impl::DSGatherExpertRowsPassBase<DSGatherExpertRowsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateGatherExpertRowsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateGatherExpertRowsPatterns(RewritePatternSet &patterns) {
  patterns.add<GatherRowsPattern<GroupedMatmulOp>,
               GatherRowsPattern<GroupedMatmulSiluMulOp>,
               DropPermutedRowsPattern>(patterns.getContext());
}
