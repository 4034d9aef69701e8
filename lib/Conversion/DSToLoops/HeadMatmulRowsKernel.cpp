//===- HeadMatmulRowsKernel.cpp - q_nope through W_UK, by weight rows -----===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family.
//
// headMatmul's untransposed form sums over k with the weight's row index,
// so each output reads one column of a head's block: 64 loads a row
// stride (1 KiB at V3's widths) apart, which fall into a few L1 sets and
// miss, and a dependent scalar chain. Perf put it at ~12% of FP8 decode,
// the largest kernel outside the GEMVs. Here k is the middle loop and the
// output columns the inner one: each weight row is read once,
// contiguously, and the column loop vectorises. Every output still sums
// its terms from k = 0 upwards, starting at 0.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::headMatmulRows(Value x, Value w, Value out, int64_t group,
                                   int64_t offset) {
  // The flags of sum(), so the adds contract (or not) as in headMatmul.
  auto fm = arith::FastMathFlagsAttr::get(b.getContext(),
                                          arith::FastMathFlags::reassoc |
                                              arith::FastMathFlags::contract);
  Value kdim = dim(x, 2), ndim = dim(out, 2);
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value t = iv[0], h = iv[1];
    Value base =
        arith::AddIOp::create(b, loc, mul(h, cIdx(group)), cIdx(offset));
    loop(cIdx(0), ndim, {}, [&](Value n, ValueRange) -> SmallVector<Value> {
      store(cF32(0.0), out, {t, h, n});
      return {};
    });
    loop(cIdx(0), kdim, {}, [&](Value kk, ValueRange) -> SmallVector<Value> {
      Value xv = load(x, {t, h, kk});
      Value row = arith::AddIOp::create(b, loc, base, kk);
      loop(cIdx(0), ndim, {}, [&](Value n, ValueRange) -> SmallVector<Value> {
        Value term = arith::MulFOp::create(b, loc, xv, load(w, {row, n}));
        store(arith::AddFOp::create(b, loc, load(out, {t, h, n}), term, fm),
              out, {t, h, n});
        return {};
      });
      return {};
    });
  });
}
