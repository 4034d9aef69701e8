//===- ShardPatterns.cpp - shard collectives as communicator calls --------===//
//
// ds-partition-model leaves upstream `shard` collectives on tensors; they
// become calls of the runtime's communicator (runtime/src/abi/CommCalls.cpp,
// dsrt_comm: MPI on CPUs, NCCL on GPUs), not MLIR's MPI-to-LLVM lowering
// (LLVM 22 lowers only all_reduce through it, against OpenMPI's ABI).
// Only the one grid axis ds-shard-model builds is supported: the whole job.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

/// The size of the job's 1-D grid `name` (ds-shard-model builds one).
int64_t gridSize(Operation *op, StringRef name) {
  auto grid = SymbolTable::lookupNearestSymbolFrom<shard::GridOp>(
      op, StringAttr::get(op->getContext(), name));
  return grid ? grid.getShape()[0] : 1;
}

/// The shard collectives here each move one [T, N] f32 tensor: the match
/// and the operand are shared. `supported` narrows the match (`unsupported`
/// says to what); `lower` emits the call and returns the result's buffer.
template <typename Op> struct CollectiveLowering : KernelPattern<Op> {
  using KernelPattern<Op>::KernelPattern;
  using OpAdaptor = typename KernelPattern<Op>::OpAdaptor;

  LogicalResult
  matchAndRewrite(Op op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const final {
    auto t = dyn_cast<RankedTensorType>(op.getInput().getType());
    if (!t || t.getRank() != 2 || !t.getElementType().isF32() || !supported(op))
      return rewriter.notifyMatchFailure(op, unsupported());
    KernelEmitter k = this->emitter(rewriter, op);
    Value in = this->use(k, op, op.getInput(), adaptor.getInput());
    rewriter.replaceOp(op, lower(op, k, in));
    return success();
  }

  virtual bool supported(Op op) const = 0;
  virtual const char *unsupported() const = 0;
  virtual Value lower(Op op, KernelEmitter &k, Value in) const = 0;
};

/// `shard.all_reduce %x ... reduction = sum` on a [T, N] f32 tensor.
struct AllReduceLowering : CollectiveLowering<shard::AllReduceOp> {
  using CollectiveLowering::CollectiveLowering;
  bool supported(shard::AllReduceOp op) const override {
    return op.getReduction() == shard::ReductionKind::Sum;
  }
  const char *unsupported() const override { return "only sums of [T, N] f32"; }
  Value lower(shard::AllReduceOp op, KernelEmitter &k,
              Value in) const override {
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.allReduceSum(contextOf(op), in, out);
    return out;
  }
};

/// `shard.all_gather %x ... gather_axis = 1` of [T, N/W] f32 pieces into
/// [T, N], rank r's piece at columns [r N/W, (r + 1) N/W).
struct AllGatherLowering : CollectiveLowering<shard::AllGatherOp> {
  using CollectiveLowering::CollectiveLowering;
  bool supported(shard::AllGatherOp op) const override {
    return op.getGatherAxis().getZExtValue() <= 1;
  }
  const char *unsupported() const override { return "only [T, N] f32"; }
  Value lower(shard::AllGatherOp op, KernelEmitter &k,
              Value in) const override {
    // Rows: every rank's share of the tokens (see AllSliceLowering), any
    // number each.
    if (op.getGatherAxis().getZExtValue() == 0)
      return k.gatherRows(contextOf(op), in,
                          cast<RankedTensorType>(op.getResult().getType()),
                          gridSize(op, op.getGrid()));
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.allGatherCols(contextOf(op), in, out);
    return out;
  }
};

/// `shard.all_slice %x ... slice_axis = 0` of [T, N] f32: this rank's
/// rows. Expert parallelism splits a step's tokens so (ExpertParallel.cpp):
/// T is dynamic and need not divide evenly, so the shares are ceil(T/W)-row
/// blocks in rank order, the last ones shorter or empty.
struct AllSliceLowering : CollectiveLowering<shard::AllSliceOp> {
  using CollectiveLowering::CollectiveLowering;
  bool supported(shard::AllSliceOp op) const override {
    return op.getSliceAxis().getZExtValue() == 0;
  }
  const char *unsupported() const override { return "only rows of [T, N] f32"; }
  Value lower(shard::AllSliceOp op, KernelEmitter &k, Value in) const override {
    return k.sliceRows(contextOf(op), in,
                       cast<RankedTensorType>(op.getResult().getType()));
  }
};

/// ds.moe_dispatch / ds.moe_collect: the all-to-alls of expert
/// parallelism, with their data-dependent counts.
struct MoEDispatchLowering : KernelPattern<MoEDispatchOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(MoEDispatchOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    rewriter.replaceOp(
        op, k.moeDispatch(contextOf(op),
                          use(k, op, op.getPermuted(), adaptor.getPermuted()),
                          use(k, op, op.getOffsets(), adaptor.getOffsets()),
                          op->getResultTypes()));
    return success();
  }
};

struct MoECollectLowering : KernelPattern<MoECollectOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(MoECollectOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    rewriter.replaceOp(
        op, k.moeCollect(contextOf(op),
                         use(k, op, op.getExpertOut(), adaptor.getExpertOut()),
                         use(k, op, op.getCounts(), adaptor.getCounts()),
                         use(k, op, op.getOffsets(), adaptor.getOffsets()),
                         cast<RankedTensorType>(op.getResult().getType())));
    return success();
  }
};

/// `tensor.cast` between static and dynamic token counts around the
/// collectives above (their upstream verifiers want dynamic uneven dims).
struct TensorCastLowering : KernelPattern<tensor::CastOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(tensor::CastOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getSource(), adaptor.getSource());
    Type to = getTypeConverter()->convertType(op.getType());
    if (!to)
      return rewriter.notifyMatchFailure(op, "unconvertible type");
    rewriter.replaceOpWithNewOp<memref::CastOp>(op, to, in);
    return success();
  }
};

/// `shard.process_linear_index`: this process's rank in the job.
struct ProcessIndexLowering : KernelPattern<shard::ProcessLinearIndexOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(shard::ProcessLinearIndexOp op, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value r = k.commRank(contextOf(op));
    rewriter.replaceOpWithNewOp<arith::IndexCastOp>(op, rewriter.getIndexType(),
                                                    r);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateShardPatterns(const TypeConverter &converter,
                                            LoweringState &state,
                                            RewritePatternSet &patterns) {
  patterns.add<AllReduceLowering, AllGatherLowering, AllSliceLowering,
               MoEDispatchLowering, MoECollectLowering, TensorCastLowering,
               ProcessIndexLowering>(converter, patterns.getContext(), state);
}
