//===- PerHeadCacheKernels.cpp - write and attention over per-head K/V ----===//
//
// Part of KernelEmitter (KernelEmitter.h): the kernels of
// `!ds.paged_kv_cache` (ds-compile --kv-layout=per-head). A cache row is
// [K_0 .. K_{H-1} | V_0 .. V_{H-1}], K_h = (k_nope_h | k_rope), found
// through KernelEmitter::cacheRow like the latent rows, so only the values
// of a row differ from the latent kernels.
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

void KernelEmitter::pagedKVWrite(const CacheRows &cache, Value kv,
                                 Value ropeKey, Value positions,
                                 int64_t valueWidth) {
  auto kt = cast<MemRefType>(kv.getType());
  int64_t heads = kt.getDimSize(1), dn = kt.getDimSize(2) - valueWidth;
  int64_t dr = cast<MemRefType>(ropeKey.getType()).getDimSize(1);
  int64_t key = dn + dr;
  par({dim(kv, 0), cIdx(heads)}, [&](ValueRange iv) {
    Value t = iv[0], h = iv[1];
    Value p = toIndex(load(positions, t));
    SmallVector<Value> row = cacheRow(cache, sequenceOf(cache, t), p);
    Value keyAt = mul(h, cIdx(key));
    Value valueAt = arith::AddIOp::create(b, loc, cIdx(heads * key),
                                          mul(h, cIdx(valueWidth)));
    auto copyRange = [&](int64_t n, function_ref<Value(Value)> src,
                         Value dstBase) {
      loop(cIdx(0), cIdx(n), {},
           [&](Value j, ValueRange) -> SmallVector<Value> {
             storeF32(
                 src(j), cache.cache,
                 withColumn(row, arith::AddIOp::create(b, loc, dstBase, j)));
             return {};
           });
    };
    copyRange(
        dn,
        [&](Value j) {
          return load(kv, {t, h, j});
        },
        keyAt);
    copyRange(
        dr,
        [&](Value r) {
          return load(ropeKey, {t, r});
        },
        arith::AddIOp::create(b, loc, keyAt, cIdx(dn)));
    copyRange(
        valueWidth,
        [&](Value j) {
          return load(kv, {t, h, arith::AddIOp::create(b, loc, j, cIdx(dn))});
        },
        valueAt);
  });
}

void KernelEmitter::pagedKVAttention(Value qNope, Value qRope,
                                     const CacheRows &cache, Value positions,
                                     Value out, double scale) {
  auto qt = cast<MemRefType>(qNope.getType());
  int64_t heads = qt.getDimSize(1), dn = qt.getDimSize(2);
  int64_t dr = cast<MemRefType>(qRope.getType()).getDimSize(2);
  int64_t dv = cast<MemRefType>(out.getType()).getDimSize(2);
  int64_t key = dn + dr;
  Value dnv = cIdx(dn), drv = cIdx(dr), dvv = cIdx(dv);
  Value rows = cache.cache;
  par({dim(out, 0), cIdx(heads)}, [&](ValueRange iv) {
    Value t = iv[0], h = iv[1];
    Value seq = sequenceOf(cache, t);
    Value end =
        arith::AddIOp::create(b, loc, toIndex(load(positions, t)), cIdx(1));
    Value keyAt = mul(h, cIdx(key));
    Value ropeAt = arith::AddIOp::create(b, loc, keyAt, dnv);
    Value valueAt =
        arith::AddIOp::create(b, loc, cIdx(heads * key), mul(h, dvv));
    auto at = [&](ArrayRef<Value> row, Value base, Value j) {
      return loadF32(rows,
                     withColumn(row, arith::AddIOp::create(b, loc, base, j)));
    };
    loop(cIdx(0), dvv, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
      store(cF32(0.0), out, {t, h, j});
      return {};
    });
    // One pass of online softmax over rows 0..position, as the latent kernel.
    Value negInf = cF32(-std::numeric_limits<float>::infinity());
    SmallVector<Value> ml = loop(
        cIdx(0), end, {negInf, cF32(0.0)},
        [&](Value s, ValueRange acc) -> SmallVector<Value> {
          SmallVector<Value> row = cacheRow(cache, seq, s);
          Value dot = sum(dnv, [&](Value j) {
            return arith::MulFOp::create(b, loc, load(qNope, {t, h, j}),
                                         at(row, keyAt, j));
          });
          Value dotR = sum(drv, [&](Value r) {
            return arith::MulFOp::create(b, loc, load(qRope, {t, h, r}),
                                         at(row, ropeAt, r));
          });
          Value score = arith::MulFOp::create(
              b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
          SoftmaxStep st = onlineSoftmaxStep(acc[0], acc[1], score);
          loop(cIdx(0), dvv, {},
               [&](Value j, ValueRange) -> SmallVector<Value> {
                 Value o = arith::MulFOp::create(b, loc, load(out, {t, h, j}),
                                                 st.corr);
                 Value v =
                     arith::MulFOp::create(b, loc, st.p, at(row, valueAt, j));
                 store(arith::AddFOp::create(b, loc, o, v), out, {t, h, j});
                 return {};
               });
          return {st.max, st.sum};
        });
    Value inv = arith::DivFOp::create(b, loc, cF32(1.0), ml[1]);
    loop(cIdx(0), dvv, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
      store(arith::MulFOp::create(b, loc, load(out, {t, h, j}), inv), out,
            {t, h, j});
      return {};
    });
  });
}
