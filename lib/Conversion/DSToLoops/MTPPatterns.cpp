//===- MTPPatterns.cpp - multi-token-prediction ds ops -> loop nests ------===//
//
// ds.mtp_concat, the one kernel op of its own the MTP module adds (the rest
// of the module is an ordinary decoder layer); its loop nest is in
// MTPKernels.cpp.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"
#include "MTPKernels.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

struct MTPConcatLowering : KernelPattern<MTPConcatOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(MTPConcatOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value e = use(k, op, op.getEmbedding(), adaptor.getEmbedding());
    Value out = alloc(k, op.getResult(), {k.dim(e, 0)});
    emitMTPConcat(k, e, use(k, op, op.getHidden(), adaptor.getHidden()),
                  use(k, op, op.getPositions(), adaptor.getPositions()), out);
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateMTPPatterns(const TypeConverter &converter,
                                          LoweringState &state,
                                          RewritePatternSet &patterns) {
  patterns.add<MTPConcatLowering>(converter, patterns.getContext(), state);
}
