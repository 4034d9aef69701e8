//===- CacheRow.cpp - encode/decode of one latent cache row ---------------===//
//
// Part of KernelEmitter (KernelEmitter.h): the only code that knows how a
// cache row is stored. The kernels compute the row's address (layer and
// position today) and call these helpers for the values in it.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "ds/Conversion/CacheCodec.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

CacheLayout CacheLayout::of(LatentCacheType type, int64_t ropeWidth) {
  CacheLayout l;
  l.rope = ropeWidth;
  l.latent = type.getWidth() - ropeWidth;
  l.group = type.isFp8() ? type.getScaleGroup() : 0;
  return l;
}

CacheLayout CacheLayout::of(PagedLatentCacheType type, int64_t ropeWidth) {
  // A page's rows are the contiguous cache's rows.
  return of(type.getRowType(), ropeWidth);
}

static SmallVector<Value> rowAt(ValueRange row, Value col) {
  SmallVector<Value> idx(row);
  idx.push_back(col);
  return idx;
}

void KernelEmitter::storeCacheRow(Value mem, ValueRange row, Value latent,
                                  Value ropeKey, Value tok) {
  Value dcv = cIdx(cache.latent);
  if (!cache.isFp8()) {
    loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
      storeF32(load(latent, {tok, c}), mem, rowAt(row, c));
      return {};
    });
    loop(cIdx(0), cIdx(cache.rope), {},
         [&](Value r, ValueRange) -> SmallVector<Value> {
           Value col = arith::AddIOp::create(b, loc, dcv, r);
           storeF32(load(ropeKey, {tok, r}), mem, rowAt(row, col));
           return {};
         });
    return;
  }
  // FP8: per group of `group` latent values, scale = amax / 448 and each
  // value stored as e4m3(x / scale) (nearest even, saturating); an all-zero
  // group stores scale 0 and zeros.
  Value g = cIdx(cache.group);
  loop(cIdx(0), cIdx(cache.latent / cache.group), {},
       [&](Value grp, ValueRange) -> SmallVector<Value> {
         Value first = mul(grp, g);
         Value amax =
             loop(cIdx(0), g, {cF32(0.0)},
                  [&](Value i, ValueRange acc) -> SmallVector<Value> {
                    Value x = load(
                        latent, {tok, arith::AddIOp::create(b, loc, first, i)});
                    return {arith::MaximumFOp::create(
                        b, loc, acc[0], math::AbsFOp::create(b, loc, x))};
                  })[0];
         Value scale =
             arith::DivFOp::create(b, loc, amax, cF32(codec::kE4M3Max));
         Value scaleAt = arith::AddIOp::create(
             b, loc, cIdx(cache.scaleOffset()), mul(grp, cIdx(4)));
         codec::storeF32Bytes(b, loc, scale, mem, row, scaleAt);
         Value nonzero = arith::CmpFOp::create(
             b, loc, arith::CmpFPredicate::OGT, scale, cF32(0.0));
         loop(cIdx(0), g, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
           Value c = arith::AddIOp::create(b, loc, first, i);
           Value x = load(latent, {tok, c});
           Value q = arith::SelectOp::create(
               b, loc, nonzero, arith::DivFOp::create(b, loc, x, scale),
               cF32(0.0));
           store(codec::encodeE4M3(b, loc, q), mem, rowAt(row, c));
           return {};
         });
         return {};
       });
  loop(cIdx(0), cIdx(cache.rope), {},
       [&](Value r, ValueRange) -> SmallVector<Value> {
         Value at = arith::AddIOp::create(b, loc, cIdx(cache.ropeOffset()),
                                          mul(r, cIdx(2)));
         codec::storeBF16Bytes(b, loc, load(ropeKey, {tok, r}), mem, row, at);
         return {};
       });
}

/// The 256 e4m3 values as a constant f32 table: one load per cached value
/// instead of the bit arithmetic of codec::decodeE4M3 (which the GPU's
/// vector loads use), for the scalar loops of the CPU kernels.
static Value e4m3Table(OpBuilder &b, Location loc, ModuleOp module) {
  auto type = MemRefType::get({256}, b.getF32Type());
  constexpr StringLiteral name = "__ds_e4m3_values";
  if (!module.lookupSymbol(name)) {
    SmallVector<float> values;
    for (int code = 0; code < 256; ++code)
      values.push_back(float(codec::e4m3Value(uint8_t(code))));
    OpBuilder mb(module.getBodyRegion());
    mb.setInsertionPointToStart(module.getBody());
    auto init = DenseElementsAttr::get(
        RankedTensorType::get({256}, b.getF32Type()), ArrayRef<float>(values));
    memref::GlobalOp::create(mb, loc, name, mb.getStringAttr("private"), type,
                             init, /*constant=*/true, /*alignment=*/nullptr);
  }
  return memref::GetGlobalOp::create(b, loc, type, name);
}

Value KernelEmitter::loadCacheLatent(Value mem, ValueRange row, Value c) {
  if (!cache.isFp8())
    return loadF32(mem, rowAt(row, c));
  Value grp = arith::DivUIOp::create(b, loc, c, cIdx(cache.group));
  Value scale = codec::loadF32Bytes(
      b, loc, mem, row,
      arith::AddIOp::create(b, loc, cIdx(cache.scaleOffset()),
                            mul(grp, cIdx(4))));
  Value code = arith::IndexCastUIOp::create(b, loc, b.getIndexType(),
                                            load(mem, rowAt(row, c)));
  Value v = load(e4m3Table(b, loc, module), code);
  return arith::MulFOp::create(b, loc, v, scale);
}

Value KernelEmitter::loadCacheRope(Value mem, ValueRange row, Value r) {
  if (!cache.isFp8())
    return loadF32(
        mem, rowAt(row, arith::AddIOp::create(b, loc, cIdx(cache.latent), r)));
  Value at =
      arith::AddIOp::create(b, loc, cIdx(cache.ropeOffset()), mul(r, cIdx(2)));
  return codec::loadBF16Bytes(b, loc, mem, row, at);
}

KernelEmitter::RowScratch::RowScratch(KernelEmitter &k) : k(k) {
  if (!k.cache.decodesRows())
    return;
  OpBuilder &b = k.b;
  auto scope = memref::AllocaScopeOp::create(b, k.loc, TypeRange{});
  after = b.saveInsertionPoint();
  Block *block = new Block();
  scope.getBodyRegion().push_back(block);
  b.setInsertionPointToStart(block);
  scratch = memref::AllocaOp::create(
      b, k.loc, MemRefType::get({k.cache.latent}, b.getF32Type()), ValueRange{},
      b.getI64IntegerAttr(64));
}

KernelEmitter::RowScratch::~RowScratch() {
  if (!scratch)
    return;
  memref::AllocaScopeReturnOp::create(k.b, k.loc, ValueRange{});
  k.b.restoreInsertionPoint(after);
}

std::function<Value(Value)> KernelEmitter::RowScratch::read(Value mem,
                                                            ValueRange row) {
  SmallVector<Value> r(row);
  if (!scratch)
    return [this, mem, r](Value c) { return k.loadCacheLatent(mem, r, c); };
  k.decodeCacheRow(mem, r, scratch);
  return [this](Value c) { return k.load(scratch, c); };
}

Value KernelEmitter::addressOf(Value mem, ValueRange row, int64_t byteOffset) {
  auto meta = memref::ExtractStridedMetadataOp::create(b, loc, mem);
  Value at = meta.getOffset();
  for (auto [i, idx] : llvm::enumerate(row))
    at = arith::AddIOp::create(b, loc, at, mul(idx, meta.getStrides()[i]));
  int64_t elemBytes =
      cast<MemRefType>(mem.getType()).getElementTypeBitWidth() / 8;
  Value base =
      memref::ExtractAlignedPointerAsIndexOp::create(b, loc, mem).getResult();
  Value addr = arith::AddIOp::create(
      b, loc, base,
      arith::AddIOp::create(b, loc, mul(at, cIdx(elemBytes)),
                            cIdx(byteOffset)));
  Value i64 = arith::IndexCastOp::create(b, loc, b.getI64Type(), addr);
  return LLVM::IntToPtrOp::create(
      b, loc, LLVM::LLVMPointerType::get(b.getContext()), i64);
}

void KernelEmitter::decodeCacheRow(Value mem, ValueRange row, Value scratch) {
  // dsrt_cache_decode_fp8(codes, scales, n, group, dst): a plain C call;
  // the row layout (where codes and scales are) stays here.
  constexpr StringLiteral name = "dsrt_cache_decode_fp8";
  auto ptr = LLVM::LLVMPointerType::get(b.getContext());
  auto fn = module.lookupSymbol<func::FuncOp>(name);
  if (!fn) {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(module.getBody());
    fn = func::FuncOp::create(
        b, loc, name,
        b.getFunctionType({ptr, ptr, b.getI64Type(), b.getI64Type(), ptr}, {}));
    fn.setPrivate();
  }
  auto i64 = [&](int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(v));
  };
  func::CallOp::create(b, loc, fn,
                       ValueRange{addressOf(mem, row, 0),
                                  addressOf(mem, row, cache.scaleOffset()),
                                  i64(cache.latent), i64(cache.group),
                                  addressOf(scratch, {}, 0)});
}
