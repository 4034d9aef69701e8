//===- ElementwiseKernels.cpp - embedding, add, SiLU-mul kernels ===//
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

void KernelEmitter::embedding(Value table, Value ids, Value out) {
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value row = toIndex(load(ids, iv[0]));
    store(load(table, {row, iv[1]}), out, iv);
  });
}

void KernelEmitter::embeddingRows(Value table, Value ids, Value offset,
                                  Value out) {
  Value rows = dim(table, 0);
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value row =
        arith::SubIOp::create(b, loc, toIndex(load(ids, iv[0])), offset);
    Value zero = arith::ConstantIndexOp::create(b, loc, 0);
    Value inside = arith::AndIOp::create(
        b, loc,
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, row, zero),
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, row, rows));
    // Clamped so the load stays inside the table; the select drops it.
    Value safe = arith::SelectOp::create(b, loc, inside, row, zero);
    Value v = load(table, {safe, iv[1]});
    store(arith::SelectOp::create(b, loc, inside, v, cF32(0.0)), out, iv);
  });
}

void KernelEmitter::add(Value x, Value y, Value out) {
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    store(arith::AddFOp::create(b, loc, load(x, iv), load(y, iv)), out, iv);
  });
}

void KernelEmitter::siluMul(Value g, Value u, Value out) {
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value gv = load(g, iv);
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, gv));
    Value silu = arith::DivFOp::create(
        b, loc, gv, arith::AddFOp::create(b, loc, cF32(1.0), e));
    store(arith::MulFOp::create(b, loc, silu, load(u, iv)), out, iv);
  });
}

void KernelEmitter::siluMulPacked(Value in, Value out) {
  Value f = dim(out, 1);
  par({dim(out, 0), f}, [&](ValueRange iv) {
    Value gv = load(in, iv);
    Value uv = load(in, {iv[0], arith::AddIOp::create(b, loc, iv[1], f)});
    Value e = math::ExpOp::create(b, loc, arith::NegFOp::create(b, loc, gv));
    Value silu = arith::DivFOp::create(
        b, loc, gv, arith::AddFOp::create(b, loc, cF32(1.0), e));
    store(arith::MulFOp::create(b, loc, silu, uv), out, iv);
  });
}

