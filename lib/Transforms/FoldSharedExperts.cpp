//===- FoldSharedExperts.cpp - shared experts as always-selected experts --===//
//
// A DeepSeek MoE layer adds a shared-expert MLP of the same input to the
// routed experts' combine. When the shared MLP has an expert's width (one
// shared expert: V3, R1), it becomes expert number num_experts of each
// stacked weight, every token is routed to it with weight 1, and the
// grouped matmuls run it with the routed experts: one GEMM per projection
// instead of two, and the combine does the addition.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-fold-shared-experts"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFOLDSHAREDEXPERTSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The routed side: combine(grouped(silu_mul(grouped(xp, Wg), grouped(xp,
/// Wu)), Wd)) over one ds.moe_route_permute.
struct Routed {
  MoECombineOp combine;
  GroupedMatmulOp gate, up, down;
  SiluMulOp act;
  MoERoutePermuteOp route;
};

/// The shared side: linear(silu_mul(linear(x, g), linear(x, u)), d).
struct Shared {
  LinearOp gate, up, down;
  SiluMulOp act;
};

std::optional<Routed> matchRouted(Value v) {
  Routed r;
  r.combine = v.getDefiningOp<MoECombineOp>();
  if (!r.combine)
    return std::nullopt;
  r.down = r.combine.getExpertOut().getDefiningOp<GroupedMatmulOp>();
  if (!r.down)
    return std::nullopt;
  r.act = r.down.getInput().getDefiningOp<SiluMulOp>();
  if (!r.act)
    return std::nullopt;
  r.gate = r.act.getGate().getDefiningOp<GroupedMatmulOp>();
  r.up = r.act.getUp().getDefiningOp<GroupedMatmulOp>();
  if (!r.gate || !r.up)
    return std::nullopt;
  r.route = r.gate.getInput().getDefiningOp<MoERoutePermuteOp>();
  // Under expert parallelism (weights hold a share of the experts) the
  // shared expert stays a dense MLP: the grouped matmuls index this rank's
  // experts by rank, which an appended expert would shift.
  // Products gathering their rows (ds-gather-expert-rows) are not this
  // chain: their input is the tokens' rows, not the permuted ones.
  if (!r.route || r.route.getSharedExperts() != 0 || r.gate.getRowOfSlot() ||
      r.up.getRowOfSlot() || r.down.getRowOfSlot() || !r.route.getPermuted() ||
      r.gate.getWeights().getType().getDimSize(0) !=
          r.route.getConfig().getNumExperts() ||
      r.up.getInput() != r.gate.getInput() ||
      r.gate.getOffsets() != r.route.getOffsets() ||
      r.up.getOffsets() != r.route.getOffsets() ||
      r.down.getOffsets() != r.route.getOffsets() ||
      r.combine.getRowOfSlot() != r.route.getRowOfSlot() ||
      r.combine.getWeights() != r.route.getWeights())
    return std::nullopt;
  return r;
}

std::optional<Shared> matchShared(Value v) {
  Shared s;
  s.down = v.getDefiningOp<LinearOp>();
  if (!s.down)
    return std::nullopt;
  s.act = s.down.getInput().getDefiningOp<SiluMulOp>();
  if (!s.act)
    return std::nullopt;
  s.gate = s.act.getGate().getDefiningOp<LinearOp>();
  s.up = s.act.getUp().getDefiningOp<LinearOp>();
  if (!s.gate || !s.up || s.gate.getInput() != s.up.getInput())
    return std::nullopt;
  return s;
}

/// A shared projection [out, in] that fits a routed stack [E, out, in].
bool fits(Value stack, Value single) {
  auto st = cast<RankedTensorType>(stack.getType());
  auto sg = cast<RankedTensorType>(single.getType());
  return st.getRank() == 3 && sg.getRank() == 2 &&
         st.getShape().drop_front() == sg.getShape() &&
         st.getElementType() == sg.getElementType();
}

RankedTensorType plusOne(Value stack) {
  auto st = cast<RankedTensorType>(stack.getType());
  SmallVector<int64_t> shape(st.getShape());
  ++shape[0];
  return RankedTensorType::get(shape, st.getElementType());
}

/// `combine(routed experts) + shared MLP(x)` -> the shared expert as
/// expert num_experts of the grouped matmuls.
struct FoldSharedExpertsPattern : OpRewritePattern<arith::AddFOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(arith::AddFOp add,
                                PatternRewriter &rewriter) const override {
    std::optional<Routed> r = matchRouted(add.getLhs());
    std::optional<Shared> s = matchShared(add.getRhs());
    if (!r || !s) {
      r = matchRouted(add.getRhs());
      s = matchShared(add.getLhs());
    }
    if (!r || !s || s->gate.getInput() != r->route.getInput() ||
        !fits(r->gate.getWeights(), s->gate.getWeight()) ||
        !fits(r->up.getWeights(), s->up.getWeight()) ||
        !fits(r->down.getWeights(), s->down.getWeight()) ||
        !r->combine->hasOneUse() || !s->down->hasOneUse())
      return rewriter.notifyMatchFailure(add, "not routed + one shared expert");
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] folding the shared expert at "
                            << add.getLoc() << "\n");
    fold(rewriter, add, *r, *s);
    return success();
  }

  static void fold(PatternRewriter &b, arith::AddFOp add, Routed &r,
                   Shared &s) {
    // Everything is rebuilt at the addition: all operands dominate it.
    b.setInsertionPoint(add);
    Location loc = r.route.getLoc();
    MoERoutePermuteOp old = r.route;
    auto widen = [](Type type, int64_t by, int64_t dim) {
      auto t = cast<RankedTensorType>(type);
      SmallVector<int64_t> shape(t.getShape());
      shape[dim] += by;
      return RankedTensorType::get(shape, t.getElementType());
    };
    // Rows per (token, slot): top_k + 1 slots now (a static count grows by
    // one row per token).
    int64_t k = old.getConfig().getTopK();
    auto perSlot = [&](Type type) {
      auto t = cast<RankedTensorType>(type);
      SmallVector<int64_t> shape(t.getShape());
      if (!ShapedType::isDynamic(shape[0]))
        shape[0] = shape[0] / k * (k + 1);
      return RankedTensorType::get(shape, t.getElementType());
    };
    auto route = MoERoutePermuteOp::create(
        b, loc, widen(old.getExpertIds().getType(), 1, 1),
        widen(old.getWeights().getType(), 1, 1),
        perSlot(old.getPermuted().getType()),
        widen(old.getOffsets().getType(), 1, 0),
        perSlot(old.getRowOfSlot().getType()), old.getLogits(),
        old.getInput(), old.getBias(), old.getConfigAttr(),
        b.getI64IntegerAttr(1));
    auto stack = [&](Value routed, Value shared) {
      return ConcatWeightsOp::create(b, loc, plusOne(routed), routed, shared)
          .getResult();
    };
    Value wg = stack(r.gate.getWeights(), s.gate.getWeight());
    Value wu = stack(r.up.getWeights(), s.up.getWeight());
    Value wd = stack(r.down.getWeights(), s.down.getWeight());
    auto grouped = [&](Value in, Value w, Type t) {
      return GroupedMatmulOp::create(b, loc, t, in, w, route.getOffsets(),
                                     Value())
          .getResult();
    };
    Value g = grouped(route.getPermuted(), wg, perSlot(r.gate.getType()));
    Value u = grouped(route.getPermuted(), wu, perSlot(r.up.getType()));
    Value h = SiluMulOp::create(b, loc, perSlot(r.act.getType()), g, u);
    Value d = grouped(h, wd, perSlot(r.down.getType()));
    Value out = MoECombineOp::create(b, loc, r.combine.getType(), d,
                                     route.getRowOfSlot(), route.getWeights());
    b.replaceOp(add, out);
    // The old chains, consumers first; the routing keeps its other users
    // (none after ds-fuse-route-permute) or goes too.
    for (Operation *op :
         {r.combine.getOperation(), r.down.getOperation(),
          r.act.getOperation(), r.gate.getOperation(), r.up.getOperation(),
          s.down.getOperation(), s.act.getOperation(), s.gate.getOperation(),
          s.up.getOperation()})
      if (op->use_empty())
        b.eraseOp(op);
    if (old->use_empty())
      b.eraseOp(old);
  }
};

} // namespace

namespace {

struct DSFoldSharedExpertsPass
    : mlir::ds::impl::DSFoldSharedExpertsPassBase<DSFoldSharedExpertsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateFoldSharedExpertsPatterns(patterns);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateFoldSharedExpertsPatterns(RewritePatternSet &patterns) {
  patterns.add<FoldSharedExpertsPattern>(patterns.getContext());
}
