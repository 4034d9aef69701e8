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
  return MemRefType::get(
      {type.getNumLayers(), ShapedType::kDynamic, type.getWidth()},
      type.getElementType());
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
  OpBuilder mb(module.getBodyRegion());
  mb.setInsertionPointToStart(module.getBody());
  auto fn = func::FuncOp::create(mb, loc, name,
                                 mb.getFunctionType(args, results));
  fn.setPrivate();
  // Memrefs cross into the runtime as pointers to descriptors.
  fn->setAttr("llvm.emit_c_interface", mb.getUnitAttr());
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

static MemRefType dynamicLike(MemRefType t) {
  return MemRefType::get(SmallVector<int64_t>(t.getRank(), ShapedType::kDynamic),
                         t.getElementType());
}

//===----------------------------------------------------------------------===//
// Runtime calls
//===----------------------------------------------------------------------===//

Value KernelEmitter::weight(Value ctx, int64_t index, ArrayRef<int64_t> shape) {
  auto dyn = MemRefType::get(
      SmallVector<int64_t>(shape.size(), ShapedType::kDynamic), b.getF32Type());
  std::string name = "dsrt_weight_f32_r" + std::to_string(shape.size());
  auto fn = runtimeFunction(name, {ctx.getType(), b.getI64Type()}, {dyn});
  Value idx = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(index));
  Value w = func::CallOp::create(b, loc, fn, ValueRange{ctx, idx}).getResult(0);
  return memref::CastOp::create(b, loc, MemRefType::get(shape, b.getF32Type()),
                                w);
}

void KernelEmitter::linear(Value ctx, Value x, Value w, Value y) {
  auto d2 = dynamicLike(cast<MemRefType>(x.getType()));
  auto fn = runtimeFunction("dsrt_linear_f32", {ctx.getType(), d2, d2, d2}, {});
  auto cast = [&](Value v) { return memref::CastOp::create(b, loc, d2, v); };
  func::CallOp::create(b, loc, fn, ValueRange{ctx, cast(x), cast(w), cast(y)});
}

void KernelEmitter::linearSiluMul(Value ctx, Value x, Value w, Value y) {
  auto d2 = dynamicLike(cast<MemRefType>(x.getType()));
  auto fn = runtimeFunction("dsrt_linear_silu_mul_f32",
                            {ctx.getType(), d2, d2, d2}, {});
  auto cast = [&](Value v) { return memref::CastOp::create(b, loc, d2, v); };
  func::CallOp::create(b, loc, fn, ValueRange{ctx, cast(x), cast(w), cast(y)});
}

void KernelEmitter::groupedLinear(Value ctx, Value x, Value w, Value offsets,
                                  Value y) {
  auto d2 = dynamicLike(cast<MemRefType>(x.getType()));
  auto d3 = dynamicLike(cast<MemRefType>(w.getType()));
  auto d1 = dynamicLike(cast<MemRefType>(offsets.getType()));
  auto fn = runtimeFunction("dsrt_grouped_linear_f32",
                            {ctx.getType(), d2, d3, d1, d2}, {});
  auto c = [&](Value v, MemRefType t) {
    return memref::CastOp::create(b, loc, t, v);
  };
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, c(x, d2), c(w, d3), c(offsets, d1),
                                  c(y, d2)});
}

void KernelEmitter::traceRouting(Value ctx, int64_t ordinal, Value ids) {
  // Any strides: the ids may be the leading columns of a wider buffer.
  auto d2 = MemRefType::get(
      {ShapedType::kDynamic, ShapedType::kDynamic}, b.getI32Type(),
      StridedLayoutAttr::get(b.getContext(), ShapedType::kDynamic,
                             {ShapedType::kDynamic, ShapedType::kDynamic}));
  auto fn = runtimeFunction("dsrt_trace_routing",
                            {ctx.getType(), b.getI64Type(), d2}, {});
  Value idx = arith::ConstantOp::create(b, loc, b.getI64IntegerAttr(ordinal));
  func::CallOp::create(b, loc, fn,
                       ValueRange{ctx, idx,
                                  memref::CastOp::create(b, loc, d2, ids)});
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

//===----------------------------------------------------------------------===//
// Dense kernels
//===----------------------------------------------------------------------===//

void KernelEmitter::embedding(Value table, Value ids, Value out) {
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value row = toIndex(load(ids, iv[0]));
    store(load(table, {row, iv[1]}), out, iv);
  });
}

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

//===----------------------------------------------------------------------===//
// Attention kernels
//===----------------------------------------------------------------------===//

/// f_i of SEMANTICS.md, with the YaRN correction when configured.
static SmallVector<double> ropeFrequencies(MLAConfigAttr cfg) {
  int64_t dr = cfg.getQkRopeHeadDim();
  double theta = cfg.getRopeTheta().convertToDouble();
  SmallVector<double> f;
  for (int64_t i = 0; i < dr / 2; ++i)
    f.push_back(std::pow(theta, -2.0 * i / dr));
  YarnAttr y = cfg.getRopeScaling();
  if (!y)
    return f;
  double s = y.getFactor().convertToDouble();
  double l0 = y.getOriginalMaxPositionEmbeddings();
  auto corr = [&](double r) {
    return dr * std::log(l0 / (2 * M_PI * r)) / (2 * std::log(theta));
  };
  double low = std::max(std::floor(corr(y.getBetaFast().convertToDouble())), 0.0);
  double high = std::min(std::ceil(corr(y.getBetaSlow().convertToDouble())),
                         double(dr - 1));
  if (high == low)
    high += 0.001;
  for (int64_t i = 0; i < dr / 2; ++i) {
    double ramp = std::clamp((i - low) / (high - low), 0.0, 1.0);
    f[i] = f[i] / s * ramp + f[i] * (1 - ramp);
  }
  return f;
}

void KernelEmitter::rope(Value x, Value positions, Value out,
                         MLAConfigAttr cfg) {
  SmallVector<double> freqs = ropeFrequencies(cfg);
  int64_t half = freqs.size();
  // The frequency table is a constant global, one per configuration.
  auto tableType = MemRefType::get({half}, b.getF64Type());
  llvm::hash_code h = llvm::hash_combine_range(
      reinterpret_cast<const char *>(freqs.data()),
      reinterpret_cast<const char *>(freqs.data() + half));
  std::string name = "__ds_rope_freqs_" + std::to_string(size_t(h));
  if (!module.lookupSymbol(name)) {
    OpBuilder mb(module.getBodyRegion());
    mb.setInsertionPointToStart(module.getBody());
    auto init = DenseElementsAttr::get(
        RankedTensorType::get({half}, b.getF64Type()), ArrayRef<double>(freqs));
    memref::GlobalOp::create(mb, loc, name, mb.getStringAttr("private"),
                             tableType, init, /*constant=*/true,
                             /*alignment=*/nullptr);
  }
  Value table = memref::GetGlobalOp::create(b, loc, tableType, name);

  auto t = cast<MemRefType>(x.getType());
  bool perHead = t.getRank() == 3;
  SmallVector<Value> ubs{dim(x, 0)};
  if (perHead)
    ubs.push_back(dim(x, 1));
  ubs.push_back(cIdx(half));
  par(ubs, [&](ValueRange iv) {
    Value tok = iv[0], i = iv.back();
    Value pos = arith::SIToFPOp::create(b, loc, b.getF64Type(),
                                        load(positions, tok));
    Value angle = arith::MulFOp::create(b, loc, pos, load(table, i));
    Value c = arith::TruncFOp::create(b, loc, b.getF32Type(),
                                      math::CosOp::create(b, loc, angle));
    Value s = arith::TruncFOp::create(b, loc, b.getF32Type(),
                                      math::SinOp::create(b, loc, angle));
    Value even = mul(i, cIdx(2));
    Value odd = arith::AddIOp::create(b, loc, even, cIdx(1));
    SmallVector<Value> ie(iv.drop_back()), io(iv.drop_back());
    ie.push_back(even);
    io.push_back(odd);
    Value x0 = load(x, ie), x1 = load(x, io);
    store(arith::SubFOp::create(b, loc, arith::MulFOp::create(b, loc, x0, c),
                                arith::MulFOp::create(b, loc, x1, s)),
          out, ie);
    store(arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, x0, s),
                                arith::MulFOp::create(b, loc, x1, c)),
          out, io);
  });
}

void KernelEmitter::cacheWrite(Value cache, Value latent, Value ropeKey,
                               Value positions, Value l) {
  int64_t dc = cast<MemRefType>(latent.getType()).getDimSize(1);
  Value dcv = cIdx(dc);
  par({dim(latent, 0)}, [&](ValueRange iv) {
    Value p = toIndex(load(positions, iv[0]));
    loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
      storeF32(load(latent, {iv[0], c}), cache, {l, p, c});
      return {};
    });
    loop(cIdx(0), dim(ropeKey, 1), {},
         [&](Value r, ValueRange) -> SmallVector<Value> {
           Value col = arith::AddIOp::create(b, loc, dcv, r);
           storeF32(load(ropeKey, {iv[0], r}), cache, {l, p, col});
           return {};
         });
  });
}

void KernelEmitter::headMatmul(Value x, Value w, Value out, int64_t group,
                               int64_t offset, bool transpose) {
  Value kdim = dim(x, 2);
  par({dim(out, 0), dim(out, 1), dim(out, 2)}, [&](ValueRange iv) {
    Value t = iv[0], h = iv[1], n = iv[2];
    Value base = arith::AddIOp::create(b, loc, mul(h, cIdx(group)),
                                       cIdx(offset));
    Value acc = sum(kdim, [&](Value kk) {
      Value wv = transpose
                     ? load(w, {arith::AddIOp::create(b, loc, base, n), kk})
                     : load(w, {arith::AddIOp::create(b, loc, base, kk), n});
      return arith::MulFOp::create(b, loc, load(x, {t, h, kk}), wv);
    });
    store(acc, out, iv);
  });
}

void KernelEmitter::latentAttention(Value qLatent, Value qRope, Value cache,
                                    Value positions, Value out, Value l,
                                    double scale) {
  int64_t dc = cast<MemRefType>(qLatent.getType()).getDimSize(2);
  Value dcv = cIdx(dc), drv = dim(qRope, 2);
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value t = iv[0], h = iv[1];
    Value last = toIndex(load(positions, t));
    Value end = arith::AddIOp::create(b, loc, last, cIdx(1));
    loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
      store(cF32(0.0), out, {t, h, c});
      return {};
    });
    // Online softmax over cache rows 0..position: one pass, the running
    // maximum rescales what was accumulated so far.
    Value negInf = cF32(-std::numeric_limits<float>::infinity());
    SmallVector<Value> ml = loop(
        cIdx(0), end, {negInf, cF32(0.0)},
        [&](Value s, ValueRange acc) -> SmallVector<Value> {
          Value dot = sum(dcv, [&](Value c) {
            return arith::MulFOp::create(b, loc, load(qLatent, {t, h, c}),
                                         loadF32(cache, {l, s, c}));
          });
          Value dotR = sum(drv, [&](Value r) {
            Value col = arith::AddIOp::create(b, loc, dcv, r);
            return arith::MulFOp::create(b, loc, load(qRope, {t, h, r}),
                                         loadF32(cache, {l, s, col}));
          });
          Value score = arith::MulFOp::create(
              b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
          Value m = arith::MaximumFOp::create(b, loc, acc[0], score);
          Value corr = math::ExpOp::create(
              b, loc, arith::SubFOp::create(b, loc, acc[0], m));
          Value p = math::ExpOp::create(
              b, loc, arith::SubFOp::create(b, loc, score, m));
          Value lsum = arith::AddFOp::create(
              b, loc, arith::MulFOp::create(b, loc, acc[1], corr), p);
          loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
            Value o = arith::MulFOp::create(b, loc, load(out, {t, h, c}), corr);
            Value v = arith::MulFOp::create(b, loc, p, loadF32(cache, {l, s, c}));
            store(arith::AddFOp::create(b, loc, o, v), out, {t, h, c});
            return {};
          });
          return {m, lsum};
        });
    Value inv = arith::DivFOp::create(b, loc, cF32(1.0), ml[1]);
    loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
      store(arith::MulFOp::create(b, loc, load(out, {t, h, c}), inv), out,
            {t, h, c});
      return {};
    });
  });
}

void KernelEmitter::naiveAttention(Value qNope, Value qRope, Value cache,
                                   Value positions, Value kvb, Value out,
                                   Value l, double scale, int64_t chunk) {
  auto qt = cast<MemRefType>(qNope.getType());
  auto ot = cast<MemRefType>(out.getType());
  int64_t heads = qt.getDimSize(1), dn = qt.getDimSize(2),
          dv = ot.getDimSize(2);
  int64_t dc = cast<MemRefType>(kvb.getType()).getDimSize(1);
  Value tokens = dim(qNope, 0), dnv = cIdx(dn), dvv = cIdx(dv), dcv = cIdx(dc);
  Value drv = dim(qRope, 2), hv = cIdx(heads), group = cIdx(dn + dv);
  Value chunkV = cIdx(chunk);
  Type f32 = b.getF32Type();
  // Rows 0..max(positions) are attended by some token of the chunk.
  Value rows = loop(cIdx(0), tokens, {cIdx(0)},
                    [&](Value t, ValueRange acc) -> SmallVector<Value> {
                      Value p1 = arith::AddIOp::create(
                          b, loc, toIndex(load(positions, t)), cIdx(1));
                      return {arith::MaxUIOp::create(b, loc, acc[0], p1)};
                    })[0];
  // Per-head K/V exist for `chunk` context rows at a time: memory does not
  // grow with the context. Each (token, head) keeps its running max and
  // sum across chunks, and its output accumulator is rescaled as the max
  // grows: the chunks' partial results merge by log-sum-exp.
  Value keys = memref::AllocOp::create(
      b, loc, MemRefType::get({chunk, heads, dn}, f32));
  Value values = memref::AllocOp::create(
      b, loc, MemRefType::get({chunk, heads, dv}, f32));
  Value runMax = memref::AllocOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic, heads}, f32), tokens);
  Value runSum = memref::AllocOp::create(
      b, loc, MemRefType::get({ShapedType::kDynamic, heads}, f32), tokens);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  par({tokens, hv}, [&](ValueRange iv) {
    store(negInf, runMax, iv);
    store(cF32(0.0), runSum, iv);
  });
  par({tokens, hv, dvv}, [&](ValueRange iv) { store(cF32(0.0), out, iv); });

  loop(cIdx(0), rows, {}, [&](Value c0, ValueRange) -> SmallVector<Value> {
    Value n = arith::MinUIOp::create(
        b, loc, chunkV, arith::SubIOp::create(b, loc, rows, c0));
    // k_nope_h(s) = c(s) W_UK_h^T, v_h(s) = c(s) W_UV_h^T for the chunk.
    auto decompress = [&](Value dst, Value width, int64_t rowOffset) {
      par({n, hv, width}, [&](ValueRange iv) {
        Value r = arith::AddIOp::create(
            b, loc, arith::AddIOp::create(b, loc, mul(iv[1], group),
                                          cIdx(rowOffset)),
            iv[2]);
        Value s = arith::AddIOp::create(b, loc, c0, iv[0]);
        store(sum(dcv,
                  [&](Value c) {
                    return arith::MulFOp::create(b, loc,
                                                 loadF32(cache, {l, s, c}),
                                                 load(kvb, {r, c}));
                  }),
              dst, iv);
      });
    };
    decompress(keys, dnv, 0);
    decompress(values, dvv, dn);
    par({tokens, hv}, [&](ValueRange iv) {
      Value t = iv[0], h = iv[1];
      Value end = arith::AddIOp::create(b, loc, toIndex(load(positions, t)),
                                        cIdx(1));
      Value stop = arith::MinUIOp::create(
          b, loc, end, arith::AddIOp::create(b, loc, c0, n));
      Value from = arith::MinUIOp::create(b, loc, c0, stop);
      SmallVector<Value> ml = loop(
          from, stop, {load(runMax, iv), load(runSum, iv)},
          [&](Value s, ValueRange acc) -> SmallVector<Value> {
            Value r = arith::SubIOp::create(b, loc, s, c0);
            Value dot = sum(dnv, [&](Value j) {
              return arith::MulFOp::create(b, loc, load(qNope, {t, h, j}),
                                           load(keys, {r, h, j}));
            });
            Value dotR = sum(drv, [&](Value q) {
              Value col = arith::AddIOp::create(b, loc, dcv, q);
              return arith::MulFOp::create(b, loc, load(qRope, {t, h, q}),
                                           loadF32(cache, {l, s, col}));
            });
            Value score = arith::MulFOp::create(
                b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
            Value m = arith::MaximumFOp::create(b, loc, acc[0], score);
            Value corr = math::ExpOp::create(
                b, loc, arith::SubFOp::create(b, loc, acc[0], m));
            Value p = math::ExpOp::create(
                b, loc, arith::SubFOp::create(b, loc, score, m));
            Value lsum = arith::AddFOp::create(
                b, loc, arith::MulFOp::create(b, loc, acc[1], corr), p);
            loop(cIdx(0), dvv, {},
                 [&](Value j, ValueRange) -> SmallVector<Value> {
                   Value o =
                       arith::MulFOp::create(b, loc, load(out, {t, h, j}), corr);
                   Value v =
                       arith::MulFOp::create(b, loc, p, load(values, {r, h, j}));
                   store(arith::AddFOp::create(b, loc, o, v), out, {t, h, j});
                   return {};
                 });
            return {m, lsum};
          });
      store(ml[0], runMax, iv);
      store(ml[1], runSum, iv);
    });
    return {};
  }, chunkV);
  par({tokens, hv, dvv}, [&](ValueRange iv) {
    Value inv = arith::DivFOp::create(b, loc, cF32(1.0),
                                      load(runSum, {iv[0], iv[1]}));
    store(arith::MulFOp::create(b, loc, load(out, iv), inv), out, iv);
  });
  for (Value buf : {keys, values, runMax, runSum})
    memref::DeallocOp::create(b, loc, buf);
}

//===----------------------------------------------------------------------===//
// MoE kernels
//===----------------------------------------------------------------------===//

void KernelEmitter::moeRoute(Value logits, Value bias, Value ids,
                             Value weights, MoEConfigAttr cfg, Value scores,
                             Value sel, Value groupScore, Value groupKept) {
  int64_t e = cfg.getNumExperts(), k = cfg.getTopK();
  Value tokens = dim(logits, 0);
  Value ev = cIdx(e);
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  bool grouped = cfg.isGrouped();
  int64_t g = cfg.getNGroup(), per = e / std::max<int64_t>(g, 1);

  // Argmax over [0, n) of row t of `m` (first maximum wins ties).
  auto argmax = [&](Value m, Value t, Value n) -> SmallVector<Value> {
    return loop(cIdx(0), n, {negInf, cIdx(0)},
                [&](Value i, ValueRange acc) -> SmallVector<Value> {
                  Value v = load(m, {t, i});
                  Value better = arith::CmpFOp::create(
                      b, loc, arith::CmpFPredicate::OGT, v, acc[0]);
                  return {arith::SelectOp::create(b, loc, better, v, acc[0]),
                          arith::SelectOp::create(b, loc, better, i, acc[1])};
                });
  };

  par({tokens}, [&](ValueRange iv) {
    Value t = iv[0];
    // Scores: softmax or sigmoid of the router logits.
    if (cfg.getScoringFunc() == ScoringFunc::softmax) {
      Value mx = loop(cIdx(0), ev, {negInf},
                      [&](Value i, ValueRange acc) -> SmallVector<Value> {
                        return {arith::MaximumFOp::create(
                            b, loc, acc[0], load(logits, {t, i}))};
                      })[0];
      Value total = sum(ev, [&](Value i) {
        Value ex = math::ExpOp::create(
            b, loc, arith::SubFOp::create(b, loc, load(logits, {t, i}), mx));
        store(ex, scores, {t, i});
        return ex;
      });
      loop(cIdx(0), ev, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
        store(arith::DivFOp::create(b, loc, load(scores, {t, i}), total),
              scores, {t, i});
        return {};
      });
    } else {
      loop(cIdx(0), ev, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
        Value ex = math::ExpOp::create(
            b, loc, arith::NegFOp::create(b, loc, load(logits, {t, i})));
        store(arith::DivFOp::create(
                  b, loc, cF32(1.0), arith::AddFOp::create(b, loc, cF32(1.0), ex)),
              scores, {t, i});
        return {};
      });
    }
    // Selection scores: the bias only chooses, it never weighs.
    loop(cIdx(0), ev, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
      Value s = load(scores, {t, i});
      if (bias)
        s = arith::AddFOp::create(b, loc, s, load(bias, {i}));
      store(s, sel, {t, i});
      return {};
    });
    if (grouped) {
      bool top2 = cfg.getTopkMethod() == TopkMethod::noaux_tc;
      Value gv = cIdx(g), pv = cIdx(per);
      loop(cIdx(0), gv, {}, [&](Value gi, ValueRange) -> SmallVector<Value> {
        Value base = mul(gi, pv);
        SmallVector<Value> best = loop(
            cIdx(0), pv, {negInf, negInf},
            [&](Value j, ValueRange acc) -> SmallVector<Value> {
              Value v = load(sel, {t, arith::AddIOp::create(b, loc, base, j)});
              Value gt1 = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                                v, acc[0]);
              Value gt2 = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                                v, acc[1]);
              Value b1 = arith::SelectOp::create(b, loc, gt1, v, acc[0]);
              Value b2 = arith::SelectOp::create(
                  b, loc, gt1, acc[0],
                  arith::SelectOp::create(b, loc, gt2, v, acc[1]));
              return {b1, b2};
            });
        // group_limited_greedy: the best expert; noaux_tc: the best two.
        Value score =
            top2 ? Value(arith::AddFOp::create(b, loc, best[0], best[1]))
                 : best[0];
        store(score, groupScore, {t, gi});
        store(cF32(0.0), groupKept, {t, gi});
        return {};
      });
      loop(cIdx(0), cIdx(cfg.getTopkGroup()), {},
           [&](Value, ValueRange) -> SmallVector<Value> {
             Value gi = argmax(groupScore, t, gv)[1];
             store(cF32(1.0), groupKept, {t, gi});
             store(negInf, groupScore, {t, gi});
             return {};
           });
      loop(cIdx(0), ev, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
        Value gi = arith::DivUIOp::create(b, loc, i, pv);
        Value kept = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT,
                                           load(groupKept, {t, gi}), cF32(0.5));
        store(arith::SelectOp::create(b, loc, kept, load(sel, {t, i}), negInf),
              sel, {t, i});
        return {};
      });
    }
    // Top-k by repeated argmax; weights come from the scores.
    Value total = loop(
        cIdx(0), cIdx(k), {cF32(0.0)},
        [&](Value j, ValueRange acc) -> SmallVector<Value> {
          Value best = argmax(sel, t, ev)[1];
          store(negInf, sel, {t, best});
          store(arith::IndexCastOp::create(b, loc, b.getI32Type(), best), ids,
                {t, j});
          Value w = load(scores, {t, best});
          store(w, weights, {t, j});
          return {arith::AddFOp::create(b, loc, acc[0], w)};
        })[0];
    bool normalise = k > 1 && cfg.getNormTopkProb();
    double scale = cfg.getRoutedScalingFactor().convertToDouble();
    // V3 scales always; V2 scales only when it does not normalise.
    bool applyScale = cfg.getNormRule() == NormRule::v3 || !normalise;
    Value factor = cF32(applyScale ? scale : 1.0);
    if (normalise)
      factor = arith::DivFOp::create(
          b, loc, factor, arith::AddFOp::create(b, loc, total, cF32(1e-20)));
    loop(cIdx(0), cIdx(k), {}, [&](Value j, ValueRange) -> SmallVector<Value> {
      store(arith::MulFOp::create(b, loc, load(weights, {t, j}), factor),
            weights, {t, j});
      return {};
    });
  });
}

void KernelEmitter::appendSharedExperts(Value ids, Value weights,
                                        int64_t topK, int64_t numExperts) {
  int64_t total = cast<MemRefType>(ids.getType()).getDimSize(1);
  par({dim(ids, 0), cIdx(total - topK)}, [&](ValueRange iv) {
    Value col = arith::AddIOp::create(b, loc, iv[1], cIdx(topK));
    Value id = arith::IndexCastOp::create(
        b, loc, b.getI32Type(),
        arith::AddIOp::create(b, loc, iv[1], cIdx(numExperts)));
    store(id, ids, {iv[0], col});
    store(cF32(1.0), weights, {iv[0], col});
  });
}

Value KernelEmitter::leadingColumns(Value m, int64_t n) {
  auto t = cast<MemRefType>(m.getType());
  SmallVector<OpFoldResult> offsets{b.getIndexAttr(0), b.getIndexAttr(0)};
  SmallVector<OpFoldResult> sizes{OpFoldResult(dim(m, 0)), b.getIndexAttr(n)};
  SmallVector<OpFoldResult> strides{b.getIndexAttr(1), b.getIndexAttr(1)};
  (void)t;
  return memref::SubViewOp::create(b, loc, m, offsets, sizes, strides);
}

void KernelEmitter::moePermute(Value x, Value ids, Value permuted,
                               Value offsets, Value rowOfSlot, Value cursor) {
  // A stable counting sort; sequential on purpose (it is O(tokens x top_k)).
  Value tokens = dim(ids, 0), kv = dim(ids, 1), d = dim(x, 1);
  int64_t e = cast<MemRefType>(offsets.getType()).getDimSize(0) - 1;
  Type i32 = b.getI32Type();
  auto c32 = [&](int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
  };
  loop(cIdx(0), cIdx(e + 1), {}, [&](Value i, ValueRange) -> SmallVector<Value> {
    store(c32(0), offsets, {i});
    return {};
  });
  auto forPairs = [&](function_ref<void(Value, Value)> fn) {
    loop(cIdx(0), tokens, {}, [&](Value t, ValueRange) -> SmallVector<Value> {
      loop(cIdx(0), kv, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
        fn(t, j);
        return {};
      });
      return {};
    });
  };
  forPairs([&](Value t, Value j) {
    Value ex = toIndex(load(ids, {t, j}));
    Value next = arith::AddIOp::create(b, loc, ex, cIdx(1));
    store(arith::AddIOp::create(b, loc, load(offsets, {next}), c32(1)),
          offsets, {next});
  });
  loop(cIdx(0), cIdx(e), {}, [&](Value i, ValueRange) -> SmallVector<Value> {
    Value next = arith::AddIOp::create(b, loc, i, cIdx(1));
    Value start = load(offsets, {i});
    store(start, cursor, {i});
    store(arith::AddIOp::create(b, loc, load(offsets, {next}), start), offsets,
          {next});
    return {};
  });
  forPairs([&](Value t, Value j) {
    Value ex = toIndex(load(ids, {t, j}));
    Value row32 = load(cursor, {ex});
    store(arith::AddIOp::create(b, loc, row32, c32(1)), cursor, {ex});
    Value slot = arith::AddIOp::create(b, loc, mul(t, kv), j);
    store(row32, rowOfSlot, {slot});
  });
  // The rows move in parallel (one GPU thread per element): only the
  // counting above is sequential, O(tokens x top_k).
  par({mul(tokens, kv), d}, [&](ValueRange iv) {
    Value t = arith::DivUIOp::create(b, loc, iv[0], kv);
    Value row = toIndex(load(rowOfSlot, {iv[0]}));
    store(load(x, {t, iv[1]}), permuted, {row, iv[1]});
  });
}

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

void KernelEmitter::moeCombine(Value expertOut, Value rowOfSlot, Value weights,
                               Value out) {
  Value kv = dim(weights, 1);
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    Value t = iv[0], c = iv[1];
    Value acc = sum(kv, [&](Value j) {
      Value slot = arith::AddIOp::create(b, loc, mul(t, kv), j);
      Value row = toIndex(load(rowOfSlot, {slot}));
      return arith::MulFOp::create(b, loc, load(weights, {t, j}),
                                   load(expertOut, {row, c}));
    });
    store(acc, out, iv);
  });
}
