//===- KernelEmitter.cpp - loop nests for ds kernels ----------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "llvm/ADT/Hashing.h"
#include "llvm/ADT/StringExtras.h"

#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

MemRefType KernelEmitter::cacheMemRefType(LatentCacheType type) {
  if (type.isFp8())
    return MemRefType::get(
        {type.getNumLayers(), ShapedType::kDynamic, type.getRowBytes()},
        IntegerType::get(type.getContext(), 8));
  return MemRefType::get(
      {type.getNumLayers(), ShapedType::kDynamic, type.getWidth()},
      type.getElementType());
}

MemRefType KernelEmitter::cacheMemRefType(PagedLatentCacheType type) {
  MemRefType rows = cacheMemRefType(type.getRowType());
  return MemRefType::get({type.getNumLayers(), ShapedType::kDynamic,
                          type.getPageSize(), rows.getShape().back()},
                         rows.getElementType());
}

MemRefType KernelEmitter::cacheMemRefType(PagedKVCacheType type) {
  return MemRefType::get({type.getNumLayers(), ShapedType::kDynamic,
                          type.getPageSize(), type.getRowWidth()},
                         type.getElementType());
}

MemRefType KernelEmitter::anyCacheMemRefType(Type type) {
  if (auto p = dyn_cast<PagedLatentCacheType>(type))
    return cacheMemRefType(p);
  if (auto p = dyn_cast<PagedKVCacheType>(type))
    return cacheMemRefType(p);
  return cacheMemRefType(cast<LatentCacheType>(type));
}

Value KernelEmitter::sequenceOf(const CacheRows &cache, Value t) {
  if (!cache.paged())
    return cIdx(0);
  // Count the sequences that start at or before t, past the first: a scan
  // of S entries, small next to the attention over the context it selects.
  Value qs = cache.queryStart;
  Value last = arith::SubIOp::create(b, loc, dim(qs, 0), cIdx(1));
  return loop(cIdx(1), last, {cIdx(0)},
              [&](Value j, ValueRange acc) -> SmallVector<Value> {
                Value started = arith::CmpIOp::create(
                    b, loc, arith::CmpIPredicate::sle, toIndex(load(qs, j)), t);
                Value next = arith::AddIOp::create(b, loc, acc[0], cIdx(1));
                return {arith::SelectOp::create(b, loc, started, next, acc[0])};
              })[0];
}

void KernelEmitter::copyCacheRow(Value cacheMem, ValueRange row, Value lat,
                                 Value rope, Value r) {
  int64_t dc = cast<MemRefType>(lat.getType()).getDimSize(1),
          dr = cast<MemRefType>(rope.getType()).getDimSize(1);
  loop(cIdx(0), cIdx(dc), {}, [&](Value c, ValueRange) -> SmallVector<Value> {
    store(loadCacheLatent(cacheMem, row, c), lat, {r, c});
    return {};
  });
  loop(cIdx(0), cIdx(dr), {}, [&](Value q, ValueRange) -> SmallVector<Value> {
    store(loadCacheRope(cacheMem, row, q), rope, {r, q});
    return {};
  });
}

Value KernelEmitter::rowsAttended(Value positions, Value from, Value to) {
  return loop(from, to, {cIdx(0)},
              [&](Value t, ValueRange acc) -> SmallVector<Value> {
                Value p1 = arith::AddIOp::create(
                    b, loc, toIndex(load(positions, t)), cIdx(1));
                return {arith::MaxUIOp::create(b, loc, acc[0], p1)};
              })[0];
}

SmallVector<Value> KernelEmitter::cacheRow(const CacheRows &cache, Value seq,
                                           Value row) {
  if (!cache.paged())
    return {cache.layer, row};
  Value ps = cIdx(cache.pageSize);
  Value entry = arith::DivUIOp::create(b, loc, row, ps);
  Value page = toIndex(load(cache.blockTables, {seq, entry}));
  return {cache.layer, page, arith::RemUIOp::create(b, loc, row, ps)};
}

Value KernelEmitter::cIdx(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

Value KernelEmitter::cF32(double v) {
  return arith::ConstantOp::create(b, loc, b.getF32FloatAttr(v));
}

Value KernelEmitter::mul(Value x, Value y) {
  return arith::MulIOp::create(b, loc, x, y);
}

Value KernelEmitter::dim(Value memref, int64_t i) {
  auto t = cast<MemRefType>(memref.getType());
  if (!t.isDynamicDim(i))
    return cIdx(t.getDimSize(i));
  return memref::DimOp::create(b, loc, memref, i);
}

Value KernelEmitter::alloc(RankedTensorType type, ArrayRef<Value> dynDims) {
  Type et = type.getElementType();
  if (isa<FloatType>(et))
    et = b.getF32Type(); // kernels compute in f32; weights are bound as f32
  auto mt = MemRefType::get(type.getShape(), et);
  SmallVector<Value> dyn;
  for (int64_t i = 0, j = 0; i < type.getRank(); ++i)
    if (type.isDynamicDim(i))
      dyn.push_back(dynDims[j++]);
  return memref::AllocOp::create(b, loc, mt, dyn);
}

Value KernelEmitter::load(Value m, ValueRange idx) {
  return memref::LoadOp::create(b, loc, m, idx);
}

void KernelEmitter::store(Value v, Value m, ValueRange idx) {
  memref::StoreOp::create(b, loc, v, m, idx);
}

Value KernelEmitter::loadF32(Value m, ValueRange idx) {
  Value v = load(m, idx);
  if (!v.getType().isF32())
    v = arith::ExtFOp::create(b, loc, b.getF32Type(), v);
  return v;
}

void KernelEmitter::storeF32(Value v, Value m, ValueRange idx) {
  Type et = cast<MemRefType>(m.getType()).getElementType();
  if (et != v.getType())
    v = arith::TruncFOp::create(b, loc, et, v);
  store(v, m, idx);
}

Value KernelEmitter::toIndex(Value i32) {
  return arith::IndexCastOp::create(b, loc, b.getIndexType(), i32);
}

void KernelEmitter::par(ArrayRef<Value> ubs, Body body) {
  SmallVector<Value> lbs(ubs.size(), cIdx(0)), steps(ubs.size(), cIdx(1));
  scf::ParallelOp::create(b, loc, lbs, ubs, steps,
                          [&](OpBuilder &nested, Location, ValueRange ivs) {
                            OpBuilder::InsertionGuard g(b);
                            b.setInsertionPoint(nested.getInsertionBlock(),
                                                nested.getInsertionPoint());
                            body(ivs);
                          });
}

SmallVector<Value> KernelEmitter::loop(
    Value lb, Value ub, ValueRange inits,
    function_ref<SmallVector<Value>(Value, ValueRange)> body, Value step) {
  auto op = scf::ForOp::create(
      b, loc, lb, ub, step ? step : cIdx(1), inits,
      [&](OpBuilder &nested, Location, Value iv, ValueRange args) {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPoint(nested.getInsertionBlock(),
                            nested.getInsertionPoint());
        SmallVector<Value> yields = body(iv, args);
        scf::YieldOp::create(b, loc, yields);
      });
  return SmallVector<Value>(op.getResults());
}

KernelEmitter::SoftmaxStep
KernelEmitter::onlineSoftmaxStep(Value runMax, Value runSum, Value score) {
  // corr = exp(runMax - m) and p = exp(score - m) with
  // m = max(runMax, score): one of the two arguments is 0 (exp gives
  // exactly 1) and the other is -|score - runMax|, so one exp gives both,
  // bit for bit (-inf, the first row's runMax, gives corr = exp(-inf) = 0
  // as before; a NaN score makes p NaN and poisons the row as before).
  Value m = arith::MaximumFOp::create(b, loc, runMax, score);
  Value d = arith::SubFOp::create(b, loc, score, runMax);
  Value e = math::ExpOp::create(
      b, loc, arith::NegFOp::create(b, loc, math::AbsFOp::create(b, loc, d)));
  Value grew =
      arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, d, cF32(0.0));
  Value corr = arith::SelectOp::create(b, loc, grew, e, cF32(1.0));
  Value p = arith::SelectOp::create(b, loc, grew, cF32(1.0), e);
  Value lsum = arith::AddFOp::create(
      b, loc, arith::MulFOp::create(b, loc, runSum, corr), p);
  return {m, lsum, corr, p};
}

Value KernelEmitter::sum(Value n, function_ref<Value(Value)> term) {
  // Reassociation lets LLVM vectorise the reduction (dot products over the
  // 512-wide latent); it changes rounding at the 1e-7 level only.
  auto fm = arith::FastMathFlagsAttr::get(
      b.getContext(), arith::FastMathFlags::reassoc | arith::FastMathFlags::contract);
  return loop(cIdx(0), n, {cF32(0.0)},
              [&](Value i, ValueRange acc) -> SmallVector<Value> {
                return {arith::AddFOp::create(b, loc, acc[0], term(i), fm)};
              })[0];
}

func::FuncOp KernelEmitter::runtimeFunction(StringRef name, TypeRange args,
                                            TypeRange results) {
  if (auto fn = module.lookupSymbol<func::FuncOp>(name))
    return fn;
  // Through `b`: inside a conversion it is the pattern's rewriter, which
  // must see every op a pattern creates.
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(module.getBody());
  auto fn = func::FuncOp::create(b, loc, name,
                                 b.getFunctionType(args, results));
  fn.setPrivate();
  // Memrefs cross into the runtime as pointers to descriptors.
  fn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  return fn;
}

func::FuncOp KernelEmitter::outline(StringRef kind, StringRef key,
                                    ValueRange operands,
                                    function_ref<void(ValueRange)> body) {
  std::string sig;
  llvm::raw_string_ostream os(sig);
  os << kind << "|" << key;
  for (Value v : operands)
    os << "|" << v.getType();
  std::string name = ("__ds_" + kind + "_" +
                      llvm::utohexstr(llvm::hash_value(sig), /*LowerCase=*/true))
                         .str();
  auto fn = module.lookupSymbol<func::FuncOp>(name);
  if (!fn) {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToEnd(module.getBody());
    fn = func::FuncOp::create(b, loc, name,
                              b.getFunctionType(operands.getTypes(), {}));
    fn.setPrivate();
    // Kept as a call: inlining would rebuild the giant entry point.
    fn->setAttr("passthrough", b.getArrayAttr({b.getStringAttr("noinline")}));
    // The GPU path (ds-map-kernels-to-gpu) finds kernels by this tag.
    fn->setAttr("ds.kernel", b.getStringAttr(kind));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    body(entry->getArguments());
    func::ReturnOp::create(b, loc);
  }
  func::CallOp::create(b, loc, fn, operands);
  return fn;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

void KernelEmitter::copy(Value src, Value dst) {
  auto t = cast<MemRefType>(src.getType());
  SmallVector<Value> ubs;
  for (int64_t i = 0; i < t.getRank(); ++i)
    ubs.push_back(dim(src, i));
  par(ubs, [&](ValueRange iv) { store(load(src, iv), dst, iv); });
}

void KernelEmitter::copySlice(Value src, Value dst, ArrayRef<int64_t> offsets) {
  auto t = cast<MemRefType>(dst.getType());
  SmallVector<Value> ubs;
  for (int64_t i = 0; i < t.getRank(); ++i)
    ubs.push_back(dim(dst, i));
  par(ubs, [&](ValueRange iv) {
    SmallVector<Value> from;
    for (auto [i, v] : llvm::enumerate(iv))
      from.push_back(offsets[i] ? Value(arith::AddIOp::create(
                                      b, loc, v, cIdx(offsets[i])))
                                : v);
    store(load(src, from), dst, iv);
  });
}

void KernelEmitter::gatherRows(Value in, Value rows, Value out) {
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    store(load(in, {toIndex(load(rows, iv[0])), iv[1]}), out, iv);
  });
}

Value KernelEmitter::expand(Value src, RankedTensorType type,
                            ArrayRef<ReassociationIndices> reassoc) {
  auto mt = MemRefType::get(type.getShape(), b.getF32Type());
  SmallVector<OpFoldResult> shape;
  for (auto [g, group] : llvm::enumerate(reassoc))
    for (int64_t d : group)
      shape.push_back(type.isDynamicDim(d)
                          ? OpFoldResult(dim(src, g))
                          : OpFoldResult(b.getIndexAttr(type.getDimSize(d))));
  return memref::ExpandShapeOp::create(b, loc, mt, src, reassoc, shape);
}

Value KernelEmitter::collapse(Value src, RankedTensorType type,
                              ArrayRef<ReassociationIndices> reassoc) {
  return memref::CollapseShapeOp::create(b, loc, src, reassoc);
}

