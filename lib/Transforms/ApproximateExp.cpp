//===- ApproximateExp.cpp - math.exp as an inline polynomial (CPU) --------===//
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Math/Transforms/Passes.h"

#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-approximate-exp"

namespace mlir::ds {
#define GEN_PASS_DEF_DSAPPROXIMATEEXPPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

struct DSApproximateExpPass
    : mlir::ds::impl::DSApproximateExpPassBase<DSApproximateExpPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    populateApproximateExpPatterns(patterns);
    LLVM_DEBUG(getOperation()->walk([](math::ExpOp op) {
      llvm::dbgs() << "[" DEBUG_TYPE "] " << op << "\n";
    }));
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateApproximateExpPatterns(RewritePatternSet &patterns) {
  // Upstream's f32 exp (range reduction by ln 2, a degree-5 polynomial as
  // explicit math.fma, the exponent added by integer ops): a scalar remainder
  // and a vector lane compute the same bits, so decode (one row) and prefill
  // (vectorised rows) agree.
  populateMathPolynomialApproximationPatterns(
      patterns,
      [](StringRef name) { return name == math::ExpOp::getOperationName(); });
}
