//===- MoEKernels.cpp - routing, permutation, combine ===//
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
                               Value offsets, Value rowOfSlot, Value cursor,
                               bool rowLoops) {
  // A stable counting sort; sequential on purpose (it is O(tokens x top_k)).
  Value tokens = dim(ids, 0), kv = dim(ids, 1);
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
  // No permuted rows: the grouped products gather them (row_of_slot).
  if (!permuted)
    return;
  // The rows move in parallel (one GPU thread per element; with rowLoops
  // one iteration per slot, its columns a loop): only the counting above is
  // sequential, O(tokens x top_k).
  Value d = dim(x, 1);
  SmallVector<Value> ubs{mul(tokens, kv)};
  if (!rowLoops)
    ubs.push_back(d);
  par(ubs, [&](ValueRange iv) {
    Value t = arith::DivUIOp::create(b, loc, iv[0], kv);
    Value row = toIndex(load(rowOfSlot, {iv[0]}));
    auto move = [&](Value c) { store(load(x, {t, c}), permuted, {row, c}); };
    if (!rowLoops)
      return move(iv[1]);
    loop(cIdx(0), d, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
      move(c);
      return {};
    });
  });
}

void KernelEmitter::moeCombine(Value expertOut, Value rowOfSlot, Value weights,
                               Value out, bool rowLoops) {
  Value kv = dim(weights, 1);
  if (rowLoops) {
    // sum's flags and order: each column's terms added from 0.0, j
    // ascending, so the value is the element-wise form's.
    auto fm = arith::FastMathFlagsAttr::get(b.getContext(),
                                            arith::FastMathFlags::reassoc |
                                                arith::FastMathFlags::contract);
    Value d = dim(out, 1);
    par({dim(out, 0)}, [&](ValueRange iv) {
      Value t = iv[0];
      loop(cIdx(0), d, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
        store(cF32(0.0), out, {t, c});
        return {};
      });
      loop(cIdx(0), kv, {}, [&](Value j, ValueRange) -> SmallVector<Value> {
        Value slot = arith::AddIOp::create(b, loc, mul(t, kv), j);
        Value row = toIndex(load(rowOfSlot, {slot}));
        Value wj = load(weights, {t, j});
        loop(cIdx(0), d, {}, [&](Value c, ValueRange) -> SmallVector<Value> {
          Value term =
              arith::MulFOp::create(b, loc, wj, load(expertOut, {row, c}));
          store(arith::AddFOp::create(b, loc, load(out, {t, c}), term, fm), out,
                {t, c});
          return {};
        });
        return {};
      });
    });
    return;
  }
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
