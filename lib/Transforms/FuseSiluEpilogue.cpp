//===- FuseSiluEpilogue.cpp - SiLU-mul in the gate|up GEMM's epilogue -----===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/PatternMatch.h"

namespace mlir::ds {
#define GEN_PASS_DEF_DSFUSESILUEPILOGUEPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

struct DSFuseSiluEpiloguePass
    : mlir::ds::impl::DSFuseSiluEpiloguePassBase<DSFuseSiluEpiloguePass> {
  void runOnOperation() override {
    IRRewriter b(&getContext());
    SmallVector<SiluMulPackedOp> ops;
    getOperation().walk([&](SiluMulPackedOp op) { ops.push_back(op); });
    for (SiluMulPackedOp op : ops) {
      auto gu = op.getInput().getDefiningOp<LinearOp>();
      // The packed product must feed nothing else: it is never written.
      if (!gu || !gu->hasOneUse())
        continue;
      b.setInsertionPoint(op);
      Value h = LinearSiluMulOp::create(b, op.getLoc(), op.getType(),
                                        gu.getInput(), gu.getWeight());
      b.replaceOp(op, h);
      b.eraseOp(gu);
    }
  }
};

} // namespace
