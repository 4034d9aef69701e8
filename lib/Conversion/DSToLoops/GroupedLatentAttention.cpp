//===- GroupedLatentAttention.cpp - absorbed attention, heads sharing rows ===//
//
// Part of KernelEmitter (KernelEmitter.h). The absorbed kernel of
// latentAttention with a group of heads per parallel iteration instead of
// one: each cache row is loaded (an FP8 row decoded to f32 scratch) once
// for the group and every head of the group then runs the same per-row
// steps as latentAttention, in the same order. Per (token, head) the
// arithmetic is latentAttention's; what changes is how often a row crosses
// the memory hierarchy and, for FP8, how often it is decoded: once per
// group rather than once per head (on the CPU a decode step read the
// whole context once per head, and an FP8 cache paid its decode per head
// too).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Math/IR/Math.h"

#include <algorithm>
#include <limits>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

int64_t mlir::ds::loops::attentionHeadGroup(int64_t requested,
                                            int64_t heads) {
  if (heads <= 0 || ShapedType::isDynamic(heads))
    return 1;
  if (requested > 0)
    return std::min(requested, heads);
  // Up to 8 heads amortise a row's read and decode (the per-head dot
  // products then dominate), and at least two groups per token keep both
  // threads of a one-token decode step busy.
  int64_t cap = std::max<int64_t>(1, std::min<int64_t>(8, heads / 2));
  for (int64_t g = cap; g > 1; --g)
    if (heads % g == 0)
      return g;
  return 1;
}

void KernelEmitter::groupedLatentAttention(Value qLatent, Value qRope,
                                           const CacheRows &src,
                                           Value positions, Value out,
                                           double scale, int64_t group) {
  auto qt = cast<MemRefType>(qLatent.getType());
  int64_t dc = qt.getDimSize(2), heads = qt.getDimSize(1);
  int64_t groups = (heads + group - 1) / group;
  Value dcv = cIdx(dc), drv = dim(qRope, 2), hv = cIdx(heads);
  Value rows = src.cache;
  Type f32 = b.getF32Type();
  par({dim(out, 0), cIdx(groups)}, [&](ValueRange iv) {
    // The group's softmax state and the decoded row live on the stack, in
    // a scope: a bare alloca in the range function's loop would grow the
    // stack every iteration.
    auto scope = memref::AllocaScopeOp::create(b, loc, TypeRange{});
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(&scope.getBodyRegion().emplaceBlock());
    auto stack = [&](int64_t n) -> Value {
      return memref::AllocaOp::create(b, loc, MemRefType::get({n}, f32),
                                      ValueRange{}, b.getI64IntegerAttr(64));
    };
    Value runMax = stack(group), runSum = stack(group);
    // bf16 rows are widened once per group too (per value per head,
    // arith.extf, it was the slowest cache at long contexts).
    bool widen = !cache.isFp8() &&
                 cast<MemRefType>(rows.getType()).getElementType().isBF16();
    Value latentBuf, ropeBuf;
    if (cache.decodesRows() || widen) {
      latentBuf = stack(cache.latent);
      ropeBuf = stack(cache.rope);
    }
    Value t = iv[0];
    Value h0 = mul(iv[1], cIdx(group));
    Value h1 = arith::MinUIOp::create(
        b, loc, arith::AddIOp::create(b, loc, h0, cIdx(group)), hv);
    Value seq = sequenceOf(src, t);
    Value last = toIndex(load(positions, t));
    Value end = absorbedRows(src, seq, last);
    auto eachHead = [&](function_ref<void(Value h, Value g)> body) {
      loop(h0, h1, {}, [&](Value h, ValueRange) -> SmallVector<Value> {
        body(h, arith::SubIOp::create(b, loc, h, h0));
        return {};
      });
    };
    eachHead([&](Value h, Value g) {
      store(cF32(-std::numeric_limits<float>::infinity()), runMax, g);
      store(cF32(0.0), runSum, g);
      loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
        store(cF32(0.0), out, {t, h, c});
        return {};
      });
    });
    loop(cIdx(0), end, {}, [&](Value s, ValueRange) -> SmallVector<Value> {
      SmallVector<Value> row = cacheRow(src, seq, s);
      std::function<Value(Value)> latentAt, ropeAt;
      if (widen) {
        loop(cIdx(0), cIdx(cache.latent), {},
             [&](Value c, ValueRange) -> SmallVector<Value> {
               store(loadCacheLatent(rows, row, c), latentBuf, c);
               return {};
             });
      }
      if (latentBuf) {
        if (!widen)
          decodeCacheRow(rows, row, latentBuf);
        loop(cIdx(0), cIdx(cache.rope), {},
             [&](Value r, ValueRange) -> SmallVector<Value> {
               store(loadCacheRope(rows, row, r), ropeBuf, r);
               return {};
             });
        latentAt = [&](Value c) { return load(latentBuf, c); };
        ropeAt = [&](Value r) { return load(ropeBuf, r); };
      } else {
        latentAt = [&](Value c) { return loadCacheLatent(rows, row, c); };
        ropeAt = [&](Value r) { return loadCacheRope(rows, row, r); };
      }
      // latentAttention's step for one (token, head) and row.
      eachHead([&](Value h, Value g) {
        Value dot = sum(dcv, [&](Value c) {
          return arith::MulFOp::create(b, loc, load(qLatent, {t, h, c}),
                                       latentAt(c));
        });
        Value dotR = sum(drv, [&](Value r) {
          return arith::MulFOp::create(b, loc, load(qRope, {t, h, r}),
                                       ropeAt(r));
        });
        Value score = arith::MulFOp::create(
            b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
        SoftmaxStep st = onlineSoftmaxStep(load(runMax, g), load(runSum, g),
                                           score);
        loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
          Value o = arith::MulFOp::create(b, loc, load(out, {t, h, c}), st.corr);
          Value v = arith::MulFOp::create(b, loc, st.p, latentAt(c));
          store(arith::AddFOp::create(b, loc, o, v), out, {t, h, c});
          return {};
        });
        store(st.max, runMax, g);
        store(st.sum, runSum, g);
      });
      return {};
    });
    eachHead([&](Value h, Value g) {
      Value inv = absorbedNormalizer(src, load(runSum, g));
      loop(cIdx(0), dcv, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
        store(arith::MulFOp::create(b, loc, load(out, {t, h, c}), inv), out,
              {t, h, c});
        return {};
      });
    });
    memref::AllocaScopeReturnOp::create(b, loc, ValueRange{});
  });
}
