//===- TestPermuteParallelLoops.cpp - ds-test-permute-parallel-loops ------===//
//
// Test only (see Passes.td): iteration k of every scf.parallel dimension
// runs as iteration reverse(k) = n - 1 - k or rotate(k) = (k + n/2) mod n,
// so kernels whose result depends on iteration order fail the CPU parity
// suite instead of racing on the GPU.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-test-permute-parallel-loops"

namespace mlir::ds {
#define GEN_PASS_DEF_DSTESTPERMUTEPARALLELLOOPSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;

namespace {

/// Replaces the uses of `loop`'s induction variables by permuted ones.
void permute(scf::ParallelOp loop, bool reverse) {
  OpBuilder b = OpBuilder::atBlockBegin(loop.getBody());
  Location loc = loop.getLoc();
  Value one = arith::ConstantIndexOp::create(b, loc, 1);
  Value two = arith::ConstantIndexOp::create(b, loc, 2);
  for (auto [iv, lb, ub, step] :
       llvm::zip(loop.getInductionVars(), loop.getLowerBound(),
                 loop.getUpperBound(), loop.getStep())) {
    // n iterations; iteration k = (iv - lb) / step. The body runs only for
    // k < n, so n >= 1 wherever these values are used.
    Value n = arith::CeilDivUIOp::create(
        b, loc, arith::SubIOp::create(b, loc, ub, lb), step);
    auto offset = arith::SubIOp::create(b, loc, iv, lb);
    Value k = arith::DivUIOp::create(b, loc, offset, step);
    Value permuted =
        reverse
            ? arith::SubIOp::create(b, loc,
                                    arith::SubIOp::create(b, loc, n, one), k)
                  .getResult()
            : arith::RemUIOp::create(
                  b, loc,
                  arith::AddIOp::create(
                      b, loc, k, arith::DivUIOp::create(b, loc, n, two)),
                  n)
                  .getResult();
    Value replacement = arith::AddIOp::create(
        b, loc, lb, arith::MulIOp::create(b, loc, permuted, step));
    // The renumbering itself reads the original induction variable.
    iv.replaceUsesWithIf(replacement, [&](OpOperand &use) {
      return use.getOwner() != offset.getOperation();
    });
  }
}

struct TestPermuteParallelLoopsPass
    : mlir::ds::impl::DSTestPermuteParallelLoopsPassBase<
          TestPermuteParallelLoopsPass> {
  using Base::Base;
  void runOnOperation() override {
    if (order != "reverse" && order != "rotate") {
      getOperation().emitError()
          << "ds-test-permute-parallel-loops: order must be reverse or "
             "rotate, got '"
          << order << "'";
      return signalPassFailure();
    }
    int64_t count = 0;
    getOperation().walk([&](scf::ParallelOp loop) {
      permute(loop, order == "reverse");
      ++count;
    });
    LLVM_DEBUG(llvm::dbgs() << "renumbered " << count << " parallel loops ("
                            << order << ")\n");
  }
};

} // namespace
