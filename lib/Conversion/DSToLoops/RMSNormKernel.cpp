//===- RMSNormKernel.cpp - RMSNorm and residual add + RMSNorm ===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::rmsNorm(Value x, Value w, Value out, double eps) {
  Value n = dim(x, 1);
  par({dim(x, 0)}, [&](ValueRange iv) {
    Value t = iv[0];
    Value ss = sum(n, [&](Value i) {
      Value v = load(x, {t, i});
      return arith::MulFOp::create(b, loc, v, v);
    });
    Value nf = arith::ConstantOp::create(
        b, loc, b.getF32FloatAttr(cast<MemRefType>(x.getType()).getDimSize(1)));
    Value mean = arith::DivFOp::create(b, loc, ss, nf);
    Value inv = math::RsqrtOp::create(
        b, loc, arith::AddFOp::create(b, loc, mean, cF32(eps)));
    loop(cIdx(0), n, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
      Value v = arith::MulFOp::create(b, loc, load(x, {t, i}), inv);
      store(arith::MulFOp::create(b, loc, v, load(w, {i})), out, {t, i});
      return {};
    });
  });
}

void KernelEmitter::addRmsNorm(Value x, Value y, Value w, Value sumOut,
                               Value out, double eps) {
  Value n = dim(x, 1);
  int64_t width = cast<MemRefType>(x.getType()).getDimSize(1);
  par({dim(x, 0)}, [&](ValueRange iv) {
    Value t = iv[0];
    Value ss = sum(n, [&](Value i) {
      Value v = arith::AddFOp::create(b, loc, load(x, {t, i}), load(y, {t, i}));
      store(v, sumOut, {t, i});
      return arith::MulFOp::create(b, loc, v, v);
    });
    Value mean = arith::DivFOp::create(b, loc, ss, cF32(double(width)));
    Value inv = math::RsqrtOp::create(
        b, loc, arith::AddFOp::create(b, loc, mean, cF32(eps)));
    loop(cIdx(0), n, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
      Value v = arith::MulFOp::create(b, loc, load(sumOut, {t, i}), inv);
      store(arith::MulFOp::create(b, loc, v, load(w, {i})), out, {t, i});
      return {};
    });
  });
}

