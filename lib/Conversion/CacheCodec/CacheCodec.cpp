//===- CacheCodec.cpp - FP8 latent cache element encode/decode ------------===//
#include "ds/Conversion/CacheCodec.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/TypeUtilities.h"

#include <cmath>

using namespace mlir;
using namespace mlir::ds;

namespace {

/// `v` of `like`'s shape (scalar or splat vector) and element type `et`.
Type shaped(Type like, Type et) {
  if (auto vt = dyn_cast<VectorType>(like))
    return VectorType::get(vt.getShape(), et);
  return et;
}

Value cInt(OpBuilder &b, Location loc, Type t, int64_t v) {
  Type et = getElementTypeOrSelf(t);
  Attribute a = b.getIntegerAttr(et, v);
  if (auto vt = dyn_cast<VectorType>(t))
    a = DenseElementsAttr::get(vt, a);
  return arith::ConstantOp::create(b, loc, cast<TypedAttr>(a));
}

Value cF32(OpBuilder &b, Location loc, Type t, double v) {
  Attribute a = b.getF32FloatAttr(v);
  if (auto vt = dyn_cast<VectorType>(t))
    a = DenseElementsAttr::get(vt, a);
  return arith::ConstantOp::create(b, loc, cast<TypedAttr>(a));
}

SmallVector<Value> at(ValueRange prefix, Value i) {
  SmallVector<Value> idx(prefix);
  idx.push_back(i);
  return idx;
}

Value plus(OpBuilder &b, Location loc, Value i, int64_t k) {
  return arith::AddIOp::create(b, loc, i,
                               arith::ConstantIndexOp::create(b, loc, k));
}

/// Little-endian bytes [off, off + n) of the row as an integer of n bytes.
Value loadBytes(OpBuilder &b, Location loc, Value mem, ValueRange prefix,
                Value off, int n) {
  Type wide = b.getIntegerType(8 * n);
  Value acc;
  for (int k = 0; k < n; ++k) {
    Value byte = memref::LoadOp::create(
        b, loc, mem, at(prefix, k ? plus(b, loc, off, k) : off));
    Value w = arith::ExtUIOp::create(b, loc, wide, byte);
    if (k)
      w = arith::ShLIOp::create(b, loc, w, cInt(b, loc, wide, 8 * k));
    acc = k ? arith::OrIOp::create(b, loc, acc, w).getResult() : w;
  }
  return acc;
}

void storeBytes(OpBuilder &b, Location loc, Value word, Value mem,
                ValueRange prefix, Value off, int n) {
  Type wide = word.getType();
  for (int k = 0; k < n; ++k) {
    Value w =
        k ? arith::ShRUIOp::create(b, loc, word, cInt(b, loc, wide, 8 * k))
                .getResult()
          : word;
    Value byte = arith::TruncIOp::create(b, loc, b.getI8Type(), w);
    memref::StoreOp::create(b, loc, byte, mem,
                            at(prefix, k ? plus(b, loc, off, k) : off));
  }
}

} // namespace

double codec::e4m3Value(uint8_t code) {
  int e = (code >> 3) & 15, m = code & 7;
  double v = e ? std::ldexp(1.0 + m / 8.0, e - 7) : std::ldexp(m, -9);
  return code & 0x80 ? -v : v;
}

Value codec::decodeE4M3(OpBuilder &b, Location loc, Value bytes) {
  Type i32 = shaped(bytes.getType(), b.getI32Type());
  Type f32 = shaped(bytes.getType(), b.getF32Type());
  Value u = arith::ExtUIOp::create(b, loc, i32, bytes);
  Value sign = arith::ShLIOp::create(
      b, loc, arith::AndIOp::create(b, loc, u, cInt(b, loc, i32, 0x80)),
      cInt(b, loc, i32, 24));
  // em = exponent and mantissa (7 bits). A normal e4m3 (e > 0) is the f32
  // with exponent e - 7 + 127 and the 3 mantissa bits on top: a shift and
  // a rebias. Subnormals (e = 0) are m * 2^-9.
  Value em = arith::AndIOp::create(b, loc, u, cInt(b, loc, i32, 0x7f));
  Value normal = arith::BitcastOp::create(
      b, loc, f32,
      arith::AddIOp::create(
          b, loc, arith::ShLIOp::create(b, loc, em, cInt(b, loc, i32, 20)),
          cInt(b, loc, i32, 120 << 23)));
  Value sub =
      arith::MulFOp::create(b, loc, arith::UIToFPOp::create(b, loc, f32, em),
                            cF32(b, loc, f32, 1.0 / 512));
  Value isSub = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ult, em,
                                      cInt(b, loc, i32, 8));
  Value mag = arith::SelectOp::create(b, loc, isSub, sub, normal);
  Value bits = arith::OrIOp::create(
      b, loc, arith::BitcastOp::create(b, loc, i32, mag), sign);
  return arith::BitcastOp::create(b, loc, f32, bits);
}

Value codec::encodeE4M3(OpBuilder &b, Location loc, Value x) {
  Type i32 = b.getI32Type(), f32 = b.getF32Type();
  auto c = [&](int64_t v) { return cInt(b, loc, i32, v); };
  Value bits = arith::BitcastOp::create(b, loc, i32, x);
  Value sign = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, bits, c(24)), c(0x80));
  Value abits = arith::AndIOp::create(b, loc, bits, c(0x7fffffff));
  Value a = arith::BitcastOp::create(b, loc, f32, abits);
  // Normal range (a >= 2^-6): round the f32 mantissa to 3 bits, nearest
  // even (add half an e4m3 ulp minus one, plus the kept lsb), then rebias
  // the exponent; anything past 448 saturates to 0x7e.
  Value lsb = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, abits, c(20)), c(1));
  Value rounded = arith::AddIOp::create(
      b, loc, abits, arith::AddIOp::create(b, loc, lsb, c(0x7ffff)));
  Value emNormal = arith::MinUIOp::create(
      b, loc,
      arith::SubIOp::create(
          b, loc, arith::ShRUIOp::create(b, loc, rounded, c(20)), c(120 << 3)),
      c(0x7e));
  // Subnormal range: round(a * 2^9) to an integer, nearest even, by the
  // f32 adder itself: at 2^14 an f32 ulp is 2^-9, an e4m3 subnormal step.
  Value big = cF32(b, loc, f32, 16384.0);
  Value emSub = arith::SubIOp::create(
      b, loc,
      arith::BitcastOp::create(b, loc, i32,
                               arith::AddFOp::create(b, loc, a, big)),
      arith::BitcastOp::create(b, loc, i32, big));
  Value isSub = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OLT, a,
                                      cF32(b, loc, f32, 1.0 / 64));
  Value em = arith::SelectOp::create(b, loc, isSub, emSub, emNormal);
  return arith::TruncIOp::create(b, loc, b.getI8Type(),
                                 arith::OrIOp::create(b, loc, em, sign));
}

Value codec::loadF32Bytes(OpBuilder &b, Location loc, Value mem,
                          ValueRange prefix, Value off) {
  return arith::BitcastOp::create(b, loc, b.getF32Type(),
                                  loadBytes(b, loc, mem, prefix, off, 4));
}

void codec::storeF32Bytes(OpBuilder &b, Location loc, Value v, Value mem,
                          ValueRange prefix, Value off) {
  // One 4-byte store, not four byte stores of the value's bits: ptxas (CUDA
  // 13, sm_90) reads `st.b8` of a register an f32 instruction wrote as a
  // conversion to u8 (F2IP.U8.F32) rather than as the register's low byte,
  // and stored every scale's low byte as 0. The row layout keeps the scales
  // 4-byte aligned (the fp8 !ds.latent_cache verifier).
  auto bytes = VectorType::get({4}, b.getI8Type());
  Value one = vector::BroadcastOp::create(
      b, loc, VectorType::get({1}, b.getF32Type()), v);
  vector::StoreOp::create(b, loc, vector::BitCastOp::create(b, loc, bytes, one),
                          mem, at(prefix, off), /*nontemporal=*/false,
                          llvm::MaybeAlign(4));
}

Value codec::loadBF16Bytes(OpBuilder &b, Location loc, Value mem,
                           ValueRange prefix, Value off) {
  // A bf16 is the top half of the f32 with the same value.
  Value word = arith::ExtUIOp::create(b, loc, b.getI32Type(),
                                      loadBytes(b, loc, mem, prefix, off, 2));
  return arith::BitcastOp::create(
      b, loc, b.getF32Type(),
      arith::ShLIOp::create(b, loc, word, cInt(b, loc, b.getI32Type(), 16)));
}

Value codec::bf16Bits(OpBuilder &b, Location loc, Value v) {
  // Integer arithmetic only, so that no byte stored later is cut from a
  // register a float instruction wrote (see storeF32Bytes): nearest even is
  // adding 0x7fff plus the kept lsb and dropping the low half (a carry into
  // the exponent gives the right power of two or infinity); a NaN keeps its
  // sign and top mantissa bits and is made quiet.
  Type i32 = b.getI32Type();
  auto c = [&](int64_t k) { return cInt(b, loc, i32, k); };
  Value bits = arith::BitcastOp::create(b, loc, i32, v);
  Value lsb = arith::AndIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, bits, c(16)), c(1));
  Value rounded = arith::ShRUIOp::create(
      b, loc,
      arith::AddIOp::create(b, loc, bits,
                            arith::AddIOp::create(b, loc, lsb, c(0x7fff))),
      c(16));
  Value nan = arith::OrIOp::create(
      b, loc, arith::ShRUIOp::create(b, loc, bits, c(16)), c(0x40));
  Value isNan = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, v, v);
  return arith::SelectOp::create(b, loc, isNan, nan, rounded);
}

void codec::storeBF16Bytes(OpBuilder &b, Location loc, Value v, Value mem,
                           ValueRange prefix, Value off) {
  storeBytes(b, loc, bf16Bits(b, loc, v), mem, prefix, off, 2);
}
