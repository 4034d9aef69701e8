//===- ShardModel.cpp - the parallel layout as shard annotations ----------===//
//
// Tensor parallelism (heads, MLP columns/rows, vocabulary) and expert
// parallelism (routed experts) written as upstream `shard` dialect
// annotations on the weight operands of the model-level ops. The rules are
// in Passes.td; ds-partition-model turns them into per-rank IR.
//
//===----------------------------------------------------------------------===//
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
      if (tp > 1) {
        if (auto mla = dyn_cast<MLAOp>(op)) {
          int64_t heads = mla.getConfig().getNumHeads();
          if (heads % tp != 0)
            return mla.emitError()
                   << "ds-shard-model: num_heads (" << heads
                   << ") is not a multiple of tp (" << tp << ")";
          annotate(b, op, mla.getQBProj(), 0);
          annotate(b, op, mla.getQProj(), 0);
          annotate(b, op, mla.getKvBProj(), 0);
          annotate(b, op, mla.getOProj(), 1);
          return WalkResult::advance();
        }
        if (auto mlp = dyn_cast<MLPOp>(op)) {
          int64_t f = mlp.getGate().getType().getDimSize(0);
          if (f % tp != 0)
            return mlp.emitError()
                   << "ds-shard-model: intermediate size (" << f
                   << ") is not a multiple of tp (" << tp << ")";
          annotate(b, op, mlp.getGate(), 0);
          annotate(b, op, mlp.getUp(), 0);
          annotate(b, op, mlp.getDown(), 1);
          return WalkResult::advance();
        }
        if (auto head = dyn_cast<LMHeadOp>(op)) {
          int64_t v = head.getHead().getType().getDimSize(0);
          if (v % tp != 0)
            return head.emitError()
                   << "ds-shard-model: vocab_size (" << v
                   << ") is not a multiple of tp (" << tp << ")";
          annotate(b, op, head.getHead(), 0);
          return WalkResult::advance();
        }
        if (auto emb = dyn_cast<EmbeddingOp>(op)) {
          int64_t v = emb.getTable().getType().getDimSize(0);
          if (v % tp != 0)
            return emb.emitError()
                   << "ds-shard-model: vocab_size (" << v
                   << ") is not a multiple of tp (" << tp << ")";
          annotate(b, op, emb.getTable(), 0);
          return WalkResult::advance();
        }
      }
      auto moe = dyn_cast<MoEOp>(op);
      if (!moe)
        return WalkResult::advance();
      MoEConfigAttr cfg = moe.getConfig();
      // Data-parallel attention: each rank's MoE input is its own
      // sequences' tokens (split along dim 0), and the shared experts stay
      // whole (their tokens differ by rank: nothing to reduce).
      if (dpAttention)
        annotate(b, op, moe.getInput(), 0);
      // Otherwise the shared experts are split like a dense MLP, over every
      // token, and their partial sums all-reduced.
      if (moe.getSharedGate() && !dpAttention) {
        int64_t fs = moe.getSharedGate().getType().getDimSize(0);
        if (fs % world != 0)
          return moe.emitError()
                 << "ds-shard-model: shared experts' width (" << fs
                 << ") is not a multiple of " << world << " ranks";
        annotate(b, op, moe.getSharedGate(), 0);
        annotate(b, op, moe.getSharedUp(), 0);
        annotate(b, op, moe.getSharedDown(), 1);
      }
      if (ep > 1) {
        if (cfg.getNumExperts() % ep != 0)
          return moe.emitError()
                 << "ds-shard-model: num_experts (" << cfg.getNumExperts()
                 << ") is not a multiple of ep (" << ep << ")";
        annotate(b, op, moe.getExpertsGate(), 0);
        annotate(b, op, moe.getExpertsUp(), 0);
        annotate(b, op, moe.getExpertsDown(), 0);
      } else {
        if (cfg.getIntermediateSize() % tp != 0)
          return moe.emitError() << "ds-shard-model: moe_intermediate_size ("
                                 << cfg.getIntermediateSize()
                                 << ") is not a multiple of tp (" << tp << ")";
        annotate(b, op, moe.getExpertsGate(), 1);
        annotate(b, op, moe.getExpertsUp(), 1);
        annotate(b, op, moe.getExpertsDown(), 2);
      }
      return WalkResult::advance();
    });
    if (r.wasInterrupted())
      return signalPassFailure();
    LLVM_DEBUG(llvm::dbgs() << DEBUG_TYPE ": " << world << " ranks, tp " << tp
                            << ", ep " << ep << "\n");
  }
};

} // namespace
