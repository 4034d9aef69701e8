//===- FuseRoutePermute.cpp - routing top-k + permutation in one kernel ---===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

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

struct DSFuseRoutePermutePass
    : mlir::ds::impl::DSFuseRoutePermutePassBase<DSFuseRoutePermutePass> {
  void runOnOperation() override {
    IRRewriter b(&getContext());
    SmallVector<MoERouteOp> routes;
    getOperation().walk([&](MoERouteOp op) { routes.push_back(op); });
    for (MoERouteOp route : routes) {
      MoEPermuteOp permute = fusablePermute(route);
      if (!permute)
        continue;
      // At the permutation: its input and the router's operands are
      // defined by then.
      b.setInsertionPoint(permute);
      auto fused = MoERoutePermuteOp::create(
          b, permute.getLoc(), route.getExpertIds().getType(),
          route.getWeights().getType(), permute.getPermuted().getType(),
          permute.getOffsets().getType(), permute.getRowOfSlot().getType(),
          route.getLogits(), permute.getInput(), route.getBias(),
          route.getConfigAttr());
      b.replaceOp(permute, ValueRange{fused.getPermuted(), fused.getOffsets(),
                                      fused.getRowOfSlot()});
      b.replaceOp(route, ValueRange{fused.getExpertIds(), fused.getWeights()});
    }
  }
};

} // namespace
