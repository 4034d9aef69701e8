//===- PartitionModel.cpp - per-rank IR from shard annotations ------------===//
//
// Why a ds pass and not upstream shard-partition: see Passes.td. Every
// split weight becomes this rank's piece, every op with split operands is
// checked against the rule that ds-shard-model applies to it and rebuilt on
// the pieces, and the collective the rule implies follows it.
//
//===----------------------------------------------------------------------===//
#include "ExpertParallel.h"
#include "SplitRules.h"
#include "ds/Transforms/Passes.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-partition-model"

namespace mlir::ds {
#define GEN_PASS_DEF_DSPARTITIONMODELPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The tensor dim a sharding splits over grid axis 0, -1 when replicated,
/// nullopt for a sharding this pass has no rule for (several split dims,
/// other axes, halos, uneven offsets).
std::optional<int64_t> splitDim(shard::ShardingOp s) {
  if (!s.getStaticHaloSizes().empty() ||
      !s.getStaticShardedDimsOffsets().empty() ||
      !s.getDynamicHaloSizes().empty() ||
      !s.getDynamicShardedDimsOffsets().empty())
    return std::nullopt;
  int64_t found = -1;
  for (auto [dim, axes] : llvm::enumerate(s.getSplitAxes().getAxes())) {
    ArrayRef<int16_t> a = axes.asArrayRef();
    if (a.empty())
      continue;
    if (found >= 0 || a.size() != 1 || a[0] != 0)
      return std::nullopt;
    found = int64_t(dim);
  }
  return found;
}

RankedTensorType pieceType(RankedTensorType t, int64_t dim, int64_t parts) {
  SmallVector<int64_t> shape(t.getShape());
  shape[dim] /= parts;
  return RankedTensorType::get(shape, t.getElementType());
}

struct Partitioner {
  ModuleOp module;
  int64_t world;
  StringRef grid;
  OpBuilder b;

  Partitioner(ModuleOp m, int64_t world, StringRef grid)
      : module(m), world(world), grid(grid), b(m.getContext()) {}

  /// This rank's piece of a checkpoint weight, split along `dim`.
  FailureOr<Value> splitWeight(Operation *user, Value w, int64_t dim) {
    auto t = cast<RankedTensorType>(w.getType());
    if (t.getDimSize(dim) % world != 0) {
      StringRef name = "(computed)";
      if (auto op = w.getDefiningOp<WeightOp>())
        name = op.getName();
      else if (auto op = w.getDefiningOp<StackedWeightOp>())
        name = op.getPattern();
      return user->emitError()
             << "ds-partition-model: weight '" << name << "': dim " << dim
             << " (" << t.getDimSize(dim) << ") is not a multiple of " << world
             << " ranks";
    }
    b.setInsertionPointAfterValue(w);
    auto split = b.getDenseI64ArrayAttr({dim, world});
    if (auto op = w.getDefiningOp<WeightOp>())
      return WeightOp::create(b, op.getLoc(), pieceType(t, dim, world),
                              op.getNameAttr(), split)
          .getResult();
    if (auto op = w.getDefiningOp<StackedWeightOp>())
      return StackedWeightOp::create(b, op.getLoc(), pieceType(t, dim, world),
                                     op.getPatternAttr(), split)
          .getResult();
    if (auto dq = w.getDefiningOp<DequantizeOp>()) {
      // FP8: the weight and its 128x128 block scales split alike, whole
      // blocks per rank.
      int64_t block = dq.getBlockSize();
      int64_t scaleDim = dim;
      int64_t rank = t.getRank();
      if (dim >= rank - 2 && (t.getDimSize(dim) / world) % block != 0)
        return user->emitError()
               << "ds-partition-model: FP8 weight " << t << " split over "
               << world << " ranks along dim " << dim << " would cut its "
               << block << "-wide scale blocks";
      FailureOr<Value> q = splitWeight(user, dq.getWeight(), dim);
      if (failed(q))
        return failure();
      FailureOr<Value> s = splitWeight(user, dq.getScaleInv(), scaleDim);
      if (failed(s))
        return failure();
      b.setInsertionPoint(dq);
      return DequantizeOp::create(b, dq.getLoc(), pieceType(t, dim, world), *q,
                                  *s, dq.getBlockSizeAttr())
          .getResult();
    }
    return user->emitError()
           << "ds-partition-model: a split operand must be a checkpoint "
              "weight (ds.weight, ds.stacked_weight, ds.dequantize)";
  }

  Value allReduce(Value v) {
    return shard::AllReduceOp::create(b, v.getLoc(), v.getType(), grid,
                                      ArrayRef<int16_t>{0}, v,
                                      shard::ReductionKind::Sum)
        .getResult();
  }

  /// Replaces every use of `v` but `except` with `by`.
  static void replaceOthers(Value v, Value by) {
    v.replaceAllUsesExcept(by, by.getDefiningOp());
  }

  LogicalResult partition(Operation *op, DenseMap<unsigned, int64_t> &dims);
};

/// Whether the split dims found on `op`'s operands, by operand index, are
/// those its rule expects.
LogicalResult checkRule(Operation *op, const DenseMap<unsigned, int64_t> &got,
                        const SplitRule &want) {
  DenseMap<unsigned, int64_t> expected;
  for (auto [v, dim] : want)
    if (v)
      for (OpOperand &o : op->getOpOperands())
        if (o.get() == v)
          expected[o.getOperandNumber()] = dim;
  for (auto [index, dim] : got) {
    auto it = expected.find(index);
    if (it == expected.end() || it->second != dim)
      return op->emitError()
             << "ds-partition-model: no rule for operand #" << index
             << " split along dim " << dim << " (see ds-shard-model)";
  }
  for (auto [index, dim] : expected)
    if (!got.count(index))
      return op->emitError()
             << "ds-partition-model: operand #" << index
             << " must be split along dim " << dim << " with the others";
  return success();
}

LogicalResult Partitioner::partition(Operation *op,
                                     DenseMap<unsigned, int64_t> &dims) {
  MLIRContext *ctx = op->getContext();
  std::optional<SplitRule> rule = tensorParallelSplits(op);
  if (auto moe = dyn_cast<MoEOp>(op)) {
    bool ep = llvm::any_of(dims, [&](auto &p) {
      return op->getOperand(p.first) == moe.getExpertsGate() && p.second == 0;
    });
    // Expert parallelism: whole experts per rank (dim 0), tokens dispatched
    // to them all-to-all (ExpertParallel.cpp). Under data-parallel
    // attention the input's tokens are this rank's own (split along dim 0).
    rule = moeSplits(moe, ep, /*dataParallel=*/ep && dims.count(0));
  }
  if (!rule)
    return op->emitError() << "ds-partition-model: no rule for split "
                              "operands of this op";
  if (failed(checkRule(op, dims, *rule)))
    return failure();

  // An activation split along its tokens is not a weight to cut.
  bool localTokens = isa<MoEOp>(op) && dims.erase(0);
  bool sharedSplit = false;
  if (auto moe = dyn_cast<MoEOp>(op); moe && moe.getSharedGate())
    sharedSplit = dims.count(moe.getSharedGateMutable()[0].getOperandNumber());
  for (auto [index, dim] : dims) {
    FailureOr<Value> piece = splitWeight(op, op->getOperand(index), dim);
    if (failed(piece))
      return failure();
    op->setOperand(index, *piece);
  }
  b.setInsertionPointAfter(op);
  if (auto mla = dyn_cast<MLAOp>(op)) {
    MLAConfigAttr c = mla.getConfig();
    mla.setConfigAttr(MLAConfigAttr::get(
        ctx, c.getNumHeads() / world, c.getQLoraRank(), c.getKvLoraRank(),
        c.getQkNopeHeadDim(), c.getQkRopeHeadDim(), c.getVHeadDim(),
        c.getSoftmaxScale(), c.getRopeTheta(), c.getRopeScaling()));
    replaceOthers(mla.getResult(), allReduce(mla.getResult()));
  } else if (auto mlp = dyn_cast<MLPOp>(op)) {
    replaceOthers(mlp.getResult(), allReduce(mlp.getResult()));
  } else if (auto moe = dyn_cast<MoEOp>(op)) {
    MoEConfigAttr c = moe.getConfig();
    if (moe.getExpertsGate().getType().getDimSize(0) < c.getNumExperts()) {
      expandExpertParallelMoE(b, moe, module.lookupSymbol<shard::GridOp>(grid),
                              localTokens, sharedSplit);
      return success();
    }
    int64_t f = c.getIntermediateSize() / world;
    moe.setConfigAttr(MoEConfigAttr::get(
        ctx, c.getNumExperts(), c.getTopK(), c.getNGroup(), c.getTopkGroup(),
        c.getScoringFunc(), c.getTopkMethod(), c.getNormTopkProb(),
        c.getRoutedScalingFactor(), c.getNormRule(), f,
        c.getNSharedExperts()));
    replaceOthers(moe.getResult(), allReduce(moe.getResult()));
  } else if (auto head = dyn_cast<LMHeadOp>(op)) {
    auto full = cast<RankedTensorType>(head.getResult().getType());
    head.getResult().setType(pieceType(full, 1, world));
    Value gathered = shard::AllGatherOp::create(
                         b, head.getLoc(), full, grid, ArrayRef<int16_t>{0},
                         head.getResult(), llvm::APInt(64, 1))
                         .getResult();
    replaceOthers(head.getResult(), gathered);
  } else if (auto emb = dyn_cast<EmbeddingOp>(op)) {
    // Each rank looks up the ids in its rows [rank * V/W, (rank + 1) * V/W)
    // and zeros the others: the all-reduce assembles the embedding.
    b.setInsertionPoint(emb);
    auto gridOp = module.lookupSymbol<shard::GridOp>(grid);
    Value rank = shard::ProcessLinearIndexOp::create(b, emb.getLoc(), gridOp);
    int64_t rows = emb.getTable().getType().getDimSize(0);
    Value offset = arith::MulIOp::create(
        b, emb.getLoc(), rank,
        arith::ConstantIndexOp::create(b, emb.getLoc(), rows));
    emb.getRowOffsetMutable().assign(offset);
    b.setInsertionPointAfter(emb);
    replaceOthers(emb.getResult(), allReduce(emb.getResult()));
  }
  return success();
}

struct DSPartitionModelPass
    : mlir::ds::impl::DSPartitionModelPassBase<DSPartitionModelPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<shard::ShardOp> annotations;
    module.walk([&](shard::ShardOp s) { annotations.push_back(s); });
    if (annotations.empty())
      return;
    auto grids = llvm::to_vector(module.getOps<shard::GridOp>());
    if (grids.size() != 1 || grids[0].getShape().size() != 1 ||
        ShapedType::isDynamic(grids[0].getShape()[0])) {
      module.emitError() << "ds-partition-model: expects one 1-D shard.grid "
                            "of static size, found "
                         << grids.size() << " grids";
      return signalPassFailure();
    }
    shard::GridOp grid = grids[0];
    Partitioner p(module, grid.getShape()[0], grid.getSymName());

    // Per user op, the split dim of each annotated operand.
    llvm::MapVector<Operation *, DenseMap<unsigned, int64_t>> splits;
    for (shard::ShardOp s : annotations) {
      auto sharding = s.getSharding().getDefiningOp<shard::ShardingOp>();
      std::optional<int64_t> dim = sharding ? splitDim(sharding) : std::nullopt;
      if (!s.getAnnotateForUsers() || !dim ||
          sharding.getGrid() != grid.getSymName()) {
        s.emitError() << "ds-partition-model: only operand annotations "
                         "(annotate_for_users) splitting one dim over axis 0 "
                         "of @"
                      << grid.getSymName() << " are partitioned";
        return signalPassFailure();
      }
      for (OpOperand &use :
           llvm::make_early_inc_range(s.getResult().getUses())) {
        if (*dim >= 0)
          splits[use.getOwner()][use.getOperandNumber()] = *dim;
        use.set(s.getSrc());
      }
    }
    for (auto &[op, dims] : splits)
      if (failed(p.partition(op, dims)))
        return signalPassFailure();
    // The annotations and the whole weights they replaced are dead now.
    for (shard::ShardOp s : annotations) {
      Operation *sharding = s.getSharding().getDefiningOp();
      s.erase();
      if (sharding && sharding->use_empty())
        sharding->erase();
    }
    // Twice: a dead ds.dequantize holds its weight and scales.
    for (int round = 0; round < 2; ++round) {
      SmallVector<Operation *> dead;
      module.walk([&](Operation *op) {
        if (isa<WeightOp, StackedWeightOp, DequantizeOp>(op) && op->use_empty())
          dead.push_back(op);
      });
      for (Operation *op : dead)
        op->erase();
    }
    LLVM_DEBUG(llvm::dbgs()
               << DEBUG_TYPE ": " << splits.size() << " ops partitioned over "
               << p.world << " ranks\n");
  }
};

} // namespace
