//===- MTPKernels.cpp - loop nests of the multi-token-prediction ops ------===//
#include "MTPKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void mlir::ds::loops::emitMTPConcat(KernelEmitter &k, Value e, Value h,
                                    Value positions, Value out) {
  k.outline("mtp_concat", "", {e, h, positions, out}, [&](ValueRange a) {
    OpBuilder &b = k.builder();
    Location loc = b.getUnknownLoc();
    Value e = a[0], h = a[1], pos = a[2], out = a[3];
    Value d = k.dim(e, 1), zero = k.cIdx(0), one = k.cIdx(1);
    // One thread per (token, feature) writes both halves of the row.
    scf::ParallelOp::create(
        b, loc, ValueRange{zero, zero}, ValueRange{k.dim(e, 0), d},
        ValueRange{one, one}, [&](OpBuilder &nb, Location l, ValueRange iv) {
          Value p = memref::LoadOp::create(nb, l, pos, iv[0]);
          Value first = arith::CmpIOp::create(
              nb, l, arith::CmpIPredicate::eq, p,
              arith::ConstantIntOp::create(nb, l, nb.getI32Type(), 0));
          Value ev = memref::LoadOp::create(nb, l, e, iv);
          Value zf = arith::ConstantOp::create(nb, l, nb.getF32FloatAttr(0.0f));
          Value sel = arith::SelectOp::create(nb, l, first, zf, ev);
          memref::StoreOp::create(nb, l, sel, out, iv);
          Value col = arith::AddIOp::create(nb, l, iv[1], d);
          Value hv = memref::LoadOp::create(nb, l, h, iv);
          memref::StoreOp::create(nb, l, hv, out, ValueRange{iv[0], col});
        });
  });
}
