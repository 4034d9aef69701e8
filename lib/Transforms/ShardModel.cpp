//===- ShardModel.cpp - the parallel layout as shard annotations ----------===//
//
// Tensor parallelism (heads, MLP columns/rows, vocabulary) and expert
// parallelism (routed experts) written as upstream `shard` dialect
// annotations on the weight operands of the model-level ops. The rules are
// in Passes.td; ds-partition-model turns them into per-rank IR.
//
//===----------------------------------------------------------------------===//
#include "SplitRules.h"
#include "ds/Transforms/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-shard-model"

namespace mlir::ds {
#define GEN_PASS_DEF_DSSHARDMODELPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

constexpr llvm::StringLiteral kGrid = "ranks";

/// Annotates operand `operand` of `op` as split along tensor dim `dim` over
/// grid axis 0 (for that use only: annotate_for_users).
void annotate(OpBuilder &b, Operation *op, Value operand, int64_t dim) {
  if (!operand)
    return;
  b.setInsertionPoint(op);
  SmallVector<shard::GridAxesAttr> axes;
  for (int64_t d = 0; d <= dim; ++d)
    axes.push_back(b.getDenseI16ArrayAttr(d == dim ? ArrayRef<int16_t>{0}
                                                   : ArrayRef<int16_t>{}));
  auto sharding = shard::ShardingOp::create(b, op->getLoc(), kGrid, axes);
  auto annotated = shard::ShardOp::create(b, op->getLoc(), operand, sharding,
                                          /*annotate_for_users=*/true);
  op->replaceUsesOfWith(operand, annotated);
}

void annotate(OpBuilder &b, Operation *op, const SplitRule &rule) {
  for (auto [operand, dim] : rule)
    annotate(b, op, operand, dim);
}

/// The size tensor parallelism divides on `op` (one of
/// tensorParallelSplits' ops), named as the diagnostic says it.
std::pair<StringRef, int64_t> tensorParallelSize(Operation *op) {
  if (auto mla = dyn_cast<MLAOp>(op))
    return {"num_heads", mla.getConfig().getNumHeads()};
  if (auto mlp = dyn_cast<MLPOp>(op))
    return {"intermediate size", mlp.getGate().getType().getDimSize(0)};
  if (auto head = dyn_cast<LMHeadOp>(op))
    return {"vocab_size", head.getHead().getType().getDimSize(0)};
  return {"vocab_size",
          cast<EmbeddingOp>(op).getTable().getType().getDimSize(0)};
}

/// Whether `moe`'s shared and routed experts divide over the ranks as
/// moeSplits(moe, ep > 1, dpAttention) splits them.
LogicalResult checkMoE(MoEOp moe, int64_t tp, int64_t ep, int64_t world,
                       bool dpAttention) {
  MoEConfigAttr cfg = moe.getConfig();
  if (moe.getSharedGate() && !dpAttention) {
    int64_t fs = moe.getSharedGate().getType().getDimSize(0);
    if (fs % world != 0)
      return moe.emitError() << "ds-shard-model: shared experts' width (" << fs
                             << ") is not a multiple of " << world << " ranks";
  }
  if (ep > 1 && cfg.getNumExperts() % ep != 0)
    return moe.emitError() << "ds-shard-model: num_experts ("
                           << cfg.getNumExperts()
                           << ") is not a multiple of ep (" << ep << ")";
  if (ep == 1 && cfg.getIntermediateSize() % tp != 0)
    return moe.emitError() << "ds-shard-model: moe_intermediate_size ("
                           << cfg.getIntermediateSize()
                           << ") is not a multiple of tp (" << tp << ")";
  return success();
}

struct DSShardModelPass
    : mlir::ds::impl::DSShardModelPassBase<DSShardModelPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    int64_t tp = this->tp, ep = this->ep; // plain values for diagnostics
    int64_t world = std::max(tp, ep);
    if (tp < 1 || ep < 1 || (tp != 1 && tp != world) ||
        (ep != 1 && ep != world)) {
      module.emitError() << "ds-shard-model: tp (" << tp << ") and ep (" << ep
                         << ") must be positive and each 1 or "
                            "max(tp, ep) (both layouts over the same ranks)";
      return signalPassFailure();
    }
    if (dpAttention && (tp != 1 || ep < 2)) {
      module.emitError() << "ds-shard-model: dp-attention needs ep above 1 "
                            "and tp 1 (attention whole on every rank), got tp "
                         << tp << ", ep " << ep;
      return signalPassFailure();
    }
    if (world == 1)
      return;
    if (module.lookupSymbol(kGrid)) {
      module.emitError() << "ds-shard-model: the module is already sharded "
                            "(it has @"
                         << kGrid << ")";
      return signalPassFailure();
    }
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToStart(module.getBody());
    shard::GridOp::create(b, module.getLoc(), kGrid, ArrayRef<int64_t>{world});

    WalkResult r = module.walk([&](Operation *op) -> WalkResult {
      if (std::optional<SplitRule> rule = tensorParallelSplits(op)) {
        if (tp == 1)
          return WalkResult::advance();
        auto [what, size] = tensorParallelSize(op);
        if (size % tp != 0)
          return op->emitError() << "ds-shard-model: " << what << " (" << size
                                 << ") is not a multiple of tp (" << tp << ")";
        annotate(b, op, *rule);
        return WalkResult::advance();
      }
      auto moe = dyn_cast<MoEOp>(op);
      if (!moe)
        return WalkResult::advance();
      if (failed(checkMoE(moe, tp, ep, world, dpAttention)))
        return WalkResult::interrupt();
      // Under data-parallel attention each rank's MoE input is its own
      // sequences' tokens and the shared experts stay whole (their tokens
      // differ by rank: nothing to reduce); otherwise the shared experts
      // are split like a dense MLP, over every token, and their partial
      // sums all-reduced.
      annotate(b, op, moeSplits(moe, ep > 1, dpAttention));
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      return signalPassFailure();
    LLVM_DEBUG(llvm::dbgs() << DEBUG_TYPE ": " << world << " ranks, tp " << tp
                            << ", ep " << ep << "\n");
  }
};

} // namespace
