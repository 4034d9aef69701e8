//===- ArgmaxKernel.cpp - greedy sampling: argmax of each logits row ===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::argmaxRows(Value logits, Value ids) {
  Value vocab = dim(logits, 1);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  par({dim(logits, 0)}, [&](ValueRange iv) {
    SmallVector<Value> best = loop(
        cIdx(0), vocab, {negInf, cIdx(0)},
        [&](Value i, ValueRange acc) -> SmallVector<Value> {
          Value v = load(logits, {iv[0], i});
          // Ordered >: NaN never wins, the first maximum stays.
          Value better = arith::CmpFOp::create(
              b, loc, arith::CmpFPredicate::OGT, v, acc[0]);
          return {arith::SelectOp::create(b, loc, better, v, acc[0]),
                  arith::SelectOp::create(b, loc, better, i, acc[1])};
        });
    store(arith::IndexCastOp::create(b, loc, b.getI32Type(), best[1]), ids,
          iv);
  });
}

/// The first maximum of each row (NaN never wins), so greedy decoding on
/// the GPU copies one id back per step instead of a vocabulary of logits.
void mlir::ds::loops::buildGreedySampler(ModuleOp module) {
  auto decode = module.lookupSymbol<func::FuncOp>("decode");
  if (!decode || decode.getNumArguments() != 5 ||
      module.lookupSymbol("sample_greedy"))
    return;
  auto logitsType = cast<MemRefType>(decode.getArgumentTypes()[4]);
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToEnd(module.getBody());
  Location loc = module.getLoc();
  auto ids = MemRefType::get({ShapedType::kDynamic}, b.getI32Type());
  auto fn = func::FuncOp::create(
      b, loc, "sample_greedy",
      b.getFunctionType({decode.getArgumentTypes()[0], logitsType, ids}, {}));
  fn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  fn->setAttr("ds.sampler", b.getUnitAttr());
  Block *entry = fn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  KernelEmitter k(b, loc, module);
  k.outline("argmax", "", {entry->getArgument(1), entry->getArgument(2)},
            [&](ValueRange a) { k.argmaxRows(a[0], a[1]); });
  func::ReturnOp::create(b, loc);
}
