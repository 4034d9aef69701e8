//===- ElementwisePatterns.cpp - row-wise ds ops -> loop nests ------------===//
//
// Embedding, residual adds, SiLU-mul, RMSNorm (alone or after the residual
// add) and the tensor slices and reshapes between kernels.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

struct EmbeddingLowering : KernelPattern<EmbeddingOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(EmbeddingOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value ids = use(k, op, op.getIds(), adaptor.getIds());
    Value out = alloc(k, op.getResult(), {k.dim(ids, 0)});
    Value table = use(k, op, op.getTable(), adaptor.getTable());
    // A vocabulary slice (tensor parallel) is gathered by generated code:
    // its table gets an f32 copy; the whole table is read in place.
    if (Value offset = adaptor.getRowOffset()) {
      k.outline("embedding_rows", "", {table, ids, offset, out},
                [&](ValueRange a) { k.embeddingRows(a[0], a[1], a[2], a[3]); });
      rewriter.replaceOp(op, out);
      return success();
    }
    if (state.runtimeEmbedding)
      k.embeddingCall(contextOf(op), table, ids, out);
    else
      k.outline("embedding", "", {table, ids, out},
                [&](ValueRange a) { k.embedding(a[0], a[1], a[2]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct RMSNormLowering : KernelPattern<RMSNormOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(RMSNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    double eps = op.getEps().convertToDouble();
    func::FuncOp kernel = k.outline(
        "rms_norm", std::to_string(eps),
        {in, use(k, op, op.getWeight(), adaptor.getWeight()), out},
        [&](ValueRange a) { k.rmsNorm(a[0], a[1], a[2], eps); });
    // The GPU path rebuilds norms as block-per-row kernels.
    kernel->setAttr("ds.eps", op.getEpsAttr());
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct AddRMSNormLowering : KernelPattern<AddRMSNormOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(AddRMSNormOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value lhs = use(k, op, op.getLhs(), adaptor.getLhs());
    Value sum = alloc(k, op.getSum(), {k.dim(lhs, 0)});
    Value out = alloc(k, op.getResult(), {k.dim(lhs, 0)});
    double eps = op.getEps().convertToDouble();
    func::FuncOp kernel = k.outline(
        "add_rms_norm", std::to_string(eps),
        {lhs, use(k, op, op.getRhs(), adaptor.getRhs()),
         use(k, op, op.getWeight(), adaptor.getWeight()), sum, out},
        [&](ValueRange a) {
          k.addRmsNorm(a[0], a[1], a[2], a[3], a[4], eps);
        });
    kernel->setAttr("ds.eps", op.getEpsAttr());
    rewriter.replaceOp(op, ValueRange{sum, out});
    return success();
  }
};

/// Residual adds (tensor arith.addf); scalar additions are legal glue.
struct AddLowering : KernelPattern<arith::AddFOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(arith::AddFOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    if (!isa<RankedTensorType>(op.getType()))
      return rewriter.notifyMatchFailure(op, "not a tensor addition");
    KernelEmitter k = emitter(rewriter, op);
    Value lhs = use(k, op, op.getLhs(), adaptor.getLhs());
    Value out = alloc(k, op.getResult(), {k.dim(lhs, 0)});
    k.outline("add", "", {lhs, use(k, op, op.getRhs(), adaptor.getRhs()), out},
              [&](ValueRange v) { k.add(v[0], v[1], v[2]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct SiluMulLowering : KernelPattern<SiluMulOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(SiluMulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value g = use(k, op, op.getGate(), adaptor.getGate());
    Value out = alloc(k, op.getResult(), {k.dim(g, 0)});
    k.outline("silu_mul", "",
              {g, use(k, op, op.getUp(), adaptor.getUp()), out},
              [&](ValueRange a) { k.siluMul(a[0], a[1], a[2]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct SiluMulPackedLowering : KernelPattern<SiluMulPackedOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(SiluMulPackedOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.outline("silu_mul_packed", "", {in, out},
              [&](ValueRange a) { k.siluMulPacked(a[0], a[1]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// A static-offset unit-stride slice is a copy into a buffer of its own.
struct ExtractSliceLowering : KernelPattern<tensor::ExtractSliceOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(tensor::ExtractSliceOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    SmallVector<int64_t> offsets(op.getStaticOffsets());
    if (llvm::any_of(offsets, ShapedType::isDynamic) ||
        !llvm::all_of(op.getStaticStrides(), [](int64_t v) { return v == 1; }))
      return op->emitError() << "only static-offset unit-stride slices";
    KernelEmitter k = emitter(rewriter, op);
    Value src = use(k, op, op.getSource(), adaptor.getSource());
    SmallVector<Value> dyn;
    for (int64_t i = 0; i < op.getType().getRank(); ++i)
      if (op.getType().isDynamicDim(i))
        dyn.push_back(k.dim(src, i));
    Value out = alloc(k, op.getResult(), dyn);
    std::string key;
    for (int64_t o : offsets)
      key += std::to_string(o) + ",";
    k.outline("slice", key, {src, out},
              [&](ValueRange a) { k.copySlice(a[0], a[1], offsets); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// Reshapes are views of the source buffer.
struct ExpandShapeLowering : KernelPattern<tensor::ExpandShapeOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(tensor::ExpandShapeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value src = use(k, op, op.getSrc(), adaptor.getSrc());
    rewriter.replaceOp(op, k.expand(src, op.getResultType(),
                                    op.getReassociationIndices()));
    return success();
  }
};

struct CollapseShapeLowering : KernelPattern<tensor::CollapseShapeOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(tensor::CollapseShapeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value src = use(k, op, op.getSrc(), adaptor.getSrc());
    rewriter.replaceOp(op, k.collapse(src, op.getResultType(),
                                      op.getReassociationIndices()));
    return success();
  }
};

struct DimLowering : KernelPattern<tensor::DimOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(tensor::DimOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value src = use(k, op, op.getSource(), adaptor.getSource());
    rewriter.replaceOpWithNewOp<memref::DimOp>(op, src, adaptor.getIndex());
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateElementwisePatterns(
    const TypeConverter &converter, LoweringState &state,
    RewritePatternSet &patterns) {
  patterns.add<EmbeddingLowering, RMSNormLowering, AddRMSNormLowering,
               AddLowering, SiluMulLowering, SiluMulPackedLowering,
               ExtractSliceLowering, ExpandShapeLowering,
               CollapseShapeLowering, DimLowering>(
      converter, patterns.getContext(), state);
}
