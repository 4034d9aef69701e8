//===- DispatchExperts.cpp - ds.moe -> route/permute/grouped GEMM ---------===//
//
// Rewrites each ds.moe into the dispatch form: only the experts a token
// selected run on it, as one grouped matmul over rows sorted by expert.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-dispatch-experts"

namespace mlir::ds {
#define GEN_PASS_DEF_DSDISPATCHEXPERTSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

void dispatch(RewriterBase &b, MoEOp op) {
  Location loc = op.getLoc();
  MoEConfigAttr cfg = op.getConfig();
  Value x = op.getInput();
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t tokens = xt.getDimSize(0), d = xt.getDimSize(1);
  int64_t e = cfg.getNumExperts(), k = cfg.getTopK(),
          f = cfg.getIntermediateSize();
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  int64_t pairs =
      ShapedType::isDynamic(tokens) ? ShapedType::kDynamic : tokens * k;

  Value logits = LinearOp::create(
      b, loc, RankedTensorType::get({tokens, e}, f32), x, op.getRouter());
  auto route = MoERouteOp::create(
      b, loc, RankedTensorType::get({tokens, k}, i32),
      RankedTensorType::get({tokens, k}, f32), logits, op.getBias(), cfg);
  auto perm = MoEPermuteOp::create(
      b, loc, RankedTensorType::get({pairs, d}, f32),
      RankedTensorType::get({e + 1}, i32), RankedTensorType::get({pairs}, i32),
      x, route.getExpertIds(), b.getI64IntegerAttr(e));
  auto rowsF = RankedTensorType::get({pairs, f}, f32);
  Value gate =
      GroupedMatmulOp::create(b, loc, rowsF, perm.getPermuted(),
                              op.getExpertsGate(), perm.getOffsets(), Value());
  Value up =
      GroupedMatmulOp::create(b, loc, rowsF, perm.getPermuted(),
                              op.getExpertsUp(), perm.getOffsets(), Value());
  Value act = SiluMulOp::create(b, loc, rowsF, gate, up);
  Value down = GroupedMatmulOp::create(
      b, loc, RankedTensorType::get({pairs, d}, f32), act, op.getExpertsDown(),
      perm.getOffsets(), Value());
  Value y = MoECombineOp::create(b, loc, xt, down, perm.getRowOfSlot(),
                                 route.getWeights());
  if (op.getSharedGate()) {
    Value shared = MLPOp::create(b, loc, xt, x, op.getSharedGate(),
                                 op.getSharedUp(), op.getSharedDown());
    y = arith::AddFOp::create(b, loc, y, shared);
  }
  b.replaceOp(op, y);
}

/// ds.moe -> linear (router), moe_route, moe_permute, grouped_matmul x 3,
/// moe_combine (+ the shared MLP).
struct DispatchExpertsPattern : OpRewritePattern<MoEOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MoEOp op,
                                PatternRewriter &rewriter) const override {
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] dispatching " << op->getName()
                            << " at " << op.getLoc() << "\n");
    dispatch(rewriter, op);
    return success();
  }
};

struct DSDispatchExpertsPass
    : mlir::ds::impl::DSDispatchExpertsPassBase<DSDispatchExpertsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateDispatchExpertsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateDispatchExpertsPatterns(RewritePatternSet &patterns) {
  patterns.add<DispatchExpertsPattern>(patterns.getContext());
}
