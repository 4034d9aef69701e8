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
#include "mlir/Dialect/Shard/IR/ShardOps.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

/// `shard.all_reduce %x ... reduction = sum` on a [T, N] f32 tensor.
struct AllReduceLowering : KernelPattern<shard::AllReduceOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(shard::AllReduceOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto t = dyn_cast<RankedTensorType>(op.getInput().getType());
    if (!t || t.getRank() != 2 || !t.getElementType().isF32() ||
        op.getReduction() != shard::ReductionKind::Sum)
      return rewriter.notifyMatchFailure(op, "only sums of [T, N] f32");
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.allReduceSum(contextOf(op), in, out);
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// `shard.all_gather %x ... gather_axis = 1` of [T, N/W] f32 pieces into
/// [T, N], rank r's piece at columns [r N/W, (r + 1) N/W).
struct AllGatherLowering : KernelPattern<shard::AllGatherOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(shard::AllGatherOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto t = dyn_cast<RankedTensorType>(op.getInput().getType());
    if (!t || t.getRank() != 2 || !t.getElementType().isF32() ||
        op.getGatherAxis().getZExtValue() != 1)
      return rewriter.notifyMatchFailure(op, "only columns of [T, N] f32");
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.allGatherCols(contextOf(op), in, out);
    rewriter.replaceOp(op, out);
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
  patterns.add<AllReduceLowering, AllGatherLowering, ProcessIndexLowering>(
      converter, patterns.getContext(), state);
}
