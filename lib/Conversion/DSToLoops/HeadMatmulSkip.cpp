//===- HeadMatmulSkip.cpp - head products that skip the naive rows --------===//
//
// Part of KernelEmitter (KernelEmitter.h), split by op family.
//
// A ds.head_matmul with skip(query_start) leaves the rows of the ragged
// step's long sequences, which ds.paged_naive_attention computes,
// unspecified. The CPU path passes query_start and the threshold to the
// runtime (headMatmulCall: dsrt_head_matmul_skip_f32), which computes and
// writes only the other rows: for a prefill chunk, none of its W_UK / W_UV
// products. The loop form (the GPU's, whose ragged step never takes the
// naive form) computes every row and then zeroes the skipped ones, a value
// the op allows.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/SCF/IR/SCF.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::zeroNaiveRows(Value out, Value queryStart,
                                  int64_t naiveMinTokens) {
  Value heads = dim(out, 1), width = dim(out, 2);
  Value last = arith::SubIOp::create(b, loc, dim(queryStart, 0), cIdx(1));
  // As segmentIsNaive: an empty sequence owns no row.
  Value minTokens = cIdx(std::max<int64_t>(naiveMinTokens, 1));
  par({dim(out, 0)}, [&](ValueRange iv) {
    Value t = iv[0];
    // The sequence of t: those starting at or before it, past the first.
    Value seq =
        loop(cIdx(1), last, {cIdx(0)},
             [&](Value j, ValueRange acc) -> SmallVector<Value> {
               Value started =
                   arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sle,
                                         toIndex(load(queryStart, j)), t);
               Value next = arith::AddIOp::create(b, loc, acc[0], cIdx(1));
               return {arith::SelectOp::create(b, loc, started, next, acc[0])};
             })[0];
    Value next = arith::AddIOp::create(b, loc, seq, cIdx(1));
    Value n = arith::SubIOp::create(b, loc, toIndex(load(queryStart, next)),
                                    toIndex(load(queryStart, seq)));
    Value naive =
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, n, minTokens);
    auto ifOp = scf::IfOp::create(b, loc, naive, /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    loop(cIdx(0), heads, {}, [&](Value h, ValueRange) -> SmallVector<Value> {
      loop(cIdx(0), width, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
        store(cF32(0.0), out, {t, h, c});
        return {};
      });
      return {};
    });
  });
}
