//===- FuseRoutePermute.cpp - routing top-k + permutation in one kernel ---===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-fuse-route-permute"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSEROUTEPERMUTEPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The permutation of `route`'s experts, when it is the only op reading
/// the ids and everything reading the weights comes after it.
MoEPermuteOp fusablePermute(MoERouteOp route) {
  MoEPermuteOp permute;
  for (Operation *user : route.getExpertIds().getUsers()) {
    auto p = dyn_cast<MoEPermuteOp>(user);
    if (!p || permute || p.getExpertIds() != route.getExpertIds())
      return {};
    permute = p;
  }
  if (!permute || permute->getBlock() != route->getBlock() ||
      permute.getNumExperts() != route.getConfig().getNumExperts())
    return {};
  for (Operation *user : route.getWeights().getUsers())
    if (user->getBlock() != permute->getBlock() ||
        user->isBeforeInBlock(permute))
      return {};
  return permute;
}

/// moe_route + the moe_permute of its ids -> moe_route_permute.
struct FuseRoutePermutePattern : OpRewritePattern<MoERouteOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MoERouteOp route,
                                PatternRewriter &rewriter) const override {
    MoEPermuteOp permute = fusablePermute(route);
    if (!permute)
      return rewriter.notifyMatchFailure(route, "no fusable permutation");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] fusing " << route << "\n");
    // At the permutation: its input and the router's operands are
    // defined by then.
    rewriter.setInsertionPoint(permute);
    auto fused = MoERoutePermuteOp::create(
        rewriter, permute.getLoc(), route.getExpertIds().getType(),
        route.getWeights().getType(), permute.getPermuted().getType(),
        permute.getOffsets().getType(), permute.getRowOfSlot().getType(),
        route.getLogits(), permute.getInput(), route.getBias(),
        route.getConfigAttr());
    rewriter.replaceOp(permute,
                       ValueRange{fused.getPermuted(), fused.getOffsets(),
                                  fused.getRowOfSlot()});
    rewriter.replaceOp(route,
                       ValueRange{fused.getExpertIds(), fused.getWeights()});
    return success();
  }
};

struct DSFuseRoutePermutePass
    : mlir::ds::impl::DSFuseRoutePermutePassBase<DSFuseRoutePermutePass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFuseRoutePermutePatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateFuseRoutePermutePatterns(RewritePatternSet &patterns) {
  patterns.add<FuseRoutePermutePattern>(patterns.getContext());
}
