//===- AttentionKernels.cpp - rope, cache write, per-head matmul, attention ===//
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

  // One angle per (token, pair), shared by every head: the heads' sin and
  // cos are the same values, and libm's f64 sincos cost more than the
  // rotations they feed when each head recomputed them.
  auto t = cast<MemRefType>(x.getType());
  bool perHead = t.getRank() == 3;
  par({dim(x, 0), cIdx(half)}, [&](ValueRange iv) {
    Value tok = iv[0], i = iv[1];
    Value pos = arith::SIToFPOp::create(b, loc, b.getF64Type(),
                                        load(positions, tok));
    Value angle = arith::MulFOp::create(b, loc, pos, load(table, i));
    Value c = arith::TruncFOp::create(b, loc, b.getF32Type(),
                                      math::CosOp::create(b, loc, angle));
    Value s = arith::TruncFOp::create(b, loc, b.getF32Type(),
                                      math::SinOp::create(b, loc, angle));
    Value even = mul(i, cIdx(2));
    Value odd = arith::AddIOp::create(b, loc, even, cIdx(1));
    auto rotate = [&](SmallVector<Value> ie, SmallVector<Value> io) {
      Value x0 = load(x, ie), x1 = load(x, io);
      store(arith::SubFOp::create(b, loc, arith::MulFOp::create(b, loc, x0, c),
                                  arith::MulFOp::create(b, loc, x1, s)),
            out, ie);
      store(arith::AddFOp::create(b, loc, arith::MulFOp::create(b, loc, x0, s),
                                  arith::MulFOp::create(b, loc, x1, c)),
            out, io);
    };
    if (!perHead) {
      rotate({tok, even}, {tok, odd});
      return;
    }
    loop(cIdx(0), dim(x, 1), {}, [&](Value h, ValueRange) -> SmallVector<Value> {
      rotate({tok, h, even}, {tok, h, odd});
      return {};
    });
  });
}

void KernelEmitter::cacheWrite(const CacheRows &cache, Value latent,
                               Value ropeKey, Value positions) {
  par({dim(latent, 0)}, [&](ValueRange iv) {
    Value p = toIndex(load(positions, iv[0]));
    SmallVector<Value> row = cacheRow(cache, sequenceOf(cache, iv[0]), p);
    storeCacheRow(cache.cache, row, latent, ropeKey, iv[0]);
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

void KernelEmitter::latentAttention(Value qLatent, Value qRope,
                                    const CacheRows &cache, Value positions,
                                    Value out, double scale) {
  int64_t dc = cast<MemRefType>(qLatent.getType()).getDimSize(2);
  Value dcv = cIdx(dc), drv = dim(qRope, 2);
  Value rows = cache.cache;
  par({dim(out, 0), dim(out, 1)}, [&](ValueRange iv) {
    // An fp8 row is decoded once into `decoded` (CacheRow.cpp) when the
    // layout says so, for both of its uses.
    RowScratch decoded(*this);
    Value t = iv[0], h = iv[1];
    Value seq = sequenceOf(cache, t);
    Value last = toIndex(load(positions, t));
    Value end = absorbedRows(cache, seq, last);
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
          SmallVector<Value> row = cacheRow(cache, seq, s);
          auto latentAt = decoded.read(rows, row);
          Value dot = sum(dcv, [&](Value c) {
            return arith::MulFOp::create(b, loc, load(qLatent, {t, h, c}),
                                         latentAt(c));
          });
          Value dotR = sum(drv, [&](Value r) {
            return arith::MulFOp::create(b, loc, load(qRope, {t, h, r}),
                                         loadCacheRope(rows, row, r));
          });
          Value score = arith::MulFOp::create(
              b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
          SoftmaxStep st = onlineSoftmaxStep(acc[0], acc[1], score);
          Value corr = st.corr, p = st.p;
          loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
            Value o = arith::MulFOp::create(b, loc, load(out, {t, h, c}), corr);
            Value v = arith::MulFOp::create(b, loc, p, latentAt(c));
            store(arith::AddFOp::create(b, loc, o, v), out, {t, h, c});
            return {};
          });
          return {st.max, st.sum};
        });
    Value inv = absorbedNormalizer(cache, ml[1]);
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
  Value rows = rowsAttended(positions, cIdx(0), tokens);
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
                    return arith::MulFOp::create(
                        b, loc, loadCacheLatent(cache, {l, s}, c),
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
              return arith::MulFOp::create(b, loc, load(qRope, {t, h, q}),
                                           loadCacheRope(cache, {l, s}, q));
            });
            Value score = arith::MulFOp::create(
                b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
            SoftmaxStep st = onlineSoftmaxStep(acc[0], acc[1], score);
            Value corr = st.corr, p = st.p;
            loop(cIdx(0), dvv, {},
                 [&](Value j, ValueRange) -> SmallVector<Value> {
                   Value o =
                       arith::MulFOp::create(b, loc, load(out, {t, h, j}), corr);
                   Value v =
                       arith::MulFOp::create(b, loc, p, load(values, {r, h, j}));
                   store(arith::AddFOp::create(b, loc, o, v), out, {t, h, j});
                   return {};
                 });
            return {st.max, st.sum};
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

