//===- RoutingKernel.cpp - MoE routing as one block per token -------------===//
//
// The generic mapping gives routing one thread per token: at decode one
// thread scans V3's 256 experts eight times (top-k by repeated argmax) and
// the grid is a single thread. Here a block per token spreads the experts
// over its threads (one each up to 256, strided beyond), keeps the scores
// in shared memory, and reduces by warp shuffles:
//
//   scores   sigmoid per expert; softmax with a block max and a block sum
//            (warp butterflies, the warps' partials through shared memory);
//            selection keys = score (+ bias), NaN compared as -inf;
//   groups   warp w scores groups w, w + W, ...: each lane the top two of
//            its strided slice, a butterfly merges the pairs (top-2 of the
//            multiset, so a tie counts twice, as on the CPU); then every
//            warp picks the kept groups alike (lane g holds group g, Gk
//            butterfly argmaxes) into a bit mask, with no second barrier;
//   top-k    k rounds of a block argmax over the kept experts (per-thread
//            scan, butterfly, the warps' winners through shared memory,
//            one slot per round so no barrier guards reuse); the winner's
//            owning thread clears it; thread j writes the j-th choice.
//
// Every comparison lets the lowest index win ties, which is what the CPU's
// sequential first-maximum argmax selects. RoutingReference.h is this
// algorithm lane by lane in C++, tested against the CPU routing.
//
//===----------------------------------------------------------------------===//
#include "RoutingKernel.h"
#include "GpuBuilder.h"
#include "RoutingReference.h"

#include "ds/DSDialect.h"

#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <limits>
#include <utility>

using namespace mlir;
using namespace mlir::ds;
using mlir::ds::gpu_kernels::Emit;

namespace {

/// The builders the routing kernel adds to GpuBuilder.h's.
struct RouteEmit : Emit {
  Value c32(int64_t v) {
    return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(int32_t(v)));
  }
  Value toI32(Value i) {
    return arith::IndexCastOp::create(b, loc, b.getI32Type(), i);
  }
  Value toIndex(Value i) {
    return arith::IndexCastOp::create(b, loc, b.getIndexType(), i);
  }
  Value load(Value m, ValueRange i) {
    return memref::LoadOp::create(b, loc, m, i);
  }
  void store(Value v, Value m, ValueRange i) {
    memref::StoreOp::create(b, loc, v, m, i);
  }
  Value eq(Value x, Value y) {
    return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, x, y);
  }
  Value shuffle(Value v, int32_t off) {
    return gpu::ShuffleOp::create(b, loc, v, off, 32, gpu::ShuffleMode::XOR)
        .getShuffleResult();
  }
  Value maximumf(Value x, Value y) {
    return arith::MaximumFOp::create(b, loc, x, y);
  }
  Value minimumf(Value x, Value y) {
    return arith::MinimumFOp::create(b, loc, x, y);
  }
  Value negInf() { return f32(-std::numeric_limits<double>::infinity()); }
  /// NaN never wins the CPU's argmax: compared as -inf here.
  Value key(Value v) {
    Value nan = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::UNO, v, v);
    return select(nan, negInf(), v);
  }
  /// (w, j) replaces (v, i) when larger, or equal with a smaller index.
  std::pair<Value, Value> pick(Value v, Value i, Value w, Value j) {
    Value greater = fgt(w, v);
    Value tie = arith::AndIOp::create(
        b, loc, arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OEQ, w, v),
        arith::CmpIOp::create(b, loc, arith::CmpIPredicate::slt, j, i));
    Value take = arith::OrIOp::create(b, loc, greater, tie);
    return {select(take, w, v), select(take, j, i)};
  }
  /// The warp's best (value, index); every lane gets it.
  std::pair<Value, Value> warpPick(Value v, Value i) {
    for (int32_t off : {16, 8, 4, 2, 1})
      std::tie(v, i) = pick(v, i, shuffle(v, off), shuffle(i, off));
    return {v, i};
  }
  Value warpMax(Value v) {
    for (int32_t off : {16, 8, 4, 2, 1})
      v = maximumf(v, shuffle(v, off));
    return v;
  }
};

/// What the kernel reads from the outlined function.
struct Operands {
  Value logits, ids, weights, bias;
};

struct Kernel {
  MoEConfigAttr cfg;
  int64_t experts, topK, groups, threads, warps;
  bool grouped;

  /// The scores (+ bias) of token `t` into shared `scores` and `sel`.
  void emitScores(RouteEmit &e, const Operands &o, Value t, Value tid,
                  Value lane, Value warp, Value scores, Value sel, Value redMax,
                  Value redSum) const {
    OpBuilder &b = e.b;
    Location loc = e.loc;
    Value ev = e.idx(experts), step = e.idx(threads);
    Value first = e.ult(lane, e.idx(1));
    auto selection = [&](Value i, Value s) {
      if (o.bias)
        s = e.fadd(s, e.load(o.bias, {i}));
      e.store(e.key(s), sel, {i});
    };
    if (cfg.getScoringFunc() != ScoringFunc::softmax) {
      e.loop(tid, ev, step, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
        Value ex =
            e.exp(arith::NegFOp::create(b, loc, e.load(o.logits, {t, i})));
        Value s =
            arith::DivFOp::create(b, loc, e.f32(1.0), e.fadd(e.f32(1.0), ex));
        e.store(s, scores, {i});
        selection(i, s);
        return {};
      });
      return;
    }
    Value mx = e.loop(tid, ev, step, {e.negInf()},
                      [&](Value i, ValueRange acc) -> SmallVector<Value> {
                        return {e.maximumf(acc[0], e.load(o.logits, {t, i}))};
                      })[0];
    mx = e.warpMax(mx);
    e.ifThen(first, [&] { e.store(mx, redMax, {warp}); });
    gpu::BarrierOp::create(b, loc);
    mx = e.negInf();
    for (int64_t w = 0; w < warps; ++w)
      mx = e.maximumf(mx, e.load(redMax, {e.idx(w)}));
    Value sum = e.loop(tid, ev, step, {e.f32(0.0)},
                       [&](Value i, ValueRange acc) -> SmallVector<Value> {
                         Value ex = e.exp(e.fsub(e.load(o.logits, {t, i}), mx));
                         e.store(ex, scores, {i});
                         return {e.fadd(acc[0], ex)};
                       })[0];
    sum = e.warpSum(sum);
    e.ifThen(first, [&] { e.store(sum, redSum, {warp}); });
    gpu::BarrierOp::create(b, loc);
    Value total = e.f32(0.0);
    for (int64_t w = 0; w < warps; ++w)
      total = e.fadd(total, e.load(redSum, {e.idx(w)}));
    // Each thread rereads only the entries it wrote itself.
    e.loop(tid, ev, step, {}, [&](Value i, ValueRange) -> SmallVector<Value> {
      Value s = arith::DivFOp::create(b, loc, e.load(scores, {i}), total);
      e.store(s, scores, {i});
      selection(i, s);
      return {};
    });
  }

  /// The kept groups as a bit mask (i32), the same on every thread.
  Value emitGroups(RouteEmit &e, Value lane, Value warp, Value sel,
                   Value groupScore) const {
    OpBuilder &b = e.b;
    Location loc = e.loc;
    int64_t per = experts / groups;
    bool top2 = cfg.getTopkMethod() == TopkMethod::noaux_tc;
    e.loop(warp, e.idx(groups), e.idx(warps), {},
           [&](Value g, ValueRange) -> SmallVector<Value> {
             Value base = e.mul(g, e.idx(per));
             SmallVector<Value> best = e.loop(
                 lane, e.idx(per), e.idx(32), {e.negInf(), e.negInf()},
                 [&](Value j, ValueRange acc) -> SmallVector<Value> {
                   Value v = e.load(sel, {e.add(base, j)});
                   Value gt1 = e.fgt(v, acc[0]), gt2 = e.fgt(v, acc[1]);
                   return {e.select(gt1, v, acc[0]),
                           e.select(gt1, acc[0], e.select(gt2, v, acc[1]))};
                 });
             Value b1 = best[0], b2 = best[1];
             for (int32_t off : {16, 8, 4, 2, 1}) {
               Value c1 = e.shuffle(b1, off), c2 = e.shuffle(b2, off);
               Value n1 = e.maximumf(b1, c1);
               b2 = e.maximumf(e.minimumf(b1, c1), e.maximumf(b2, c2));
               b1 = n1;
             }
             Value score = top2 ? e.fadd(b1, b2) : b1;
             e.ifThen(e.ult(lane, e.idx(1)),
                      [&] { e.store(score, groupScore, {g}); });
             return {};
           });
    gpu::BarrierOp::create(b, loc);
    Value laneI = e.toI32(lane);
    Value mine = e.ifElse(
        e.ult(lane, e.idx(groups)), {b.getF32Type()},
        [&]() -> SmallVector<Value> {
          return {e.key(e.load(groupScore, {lane}))};
        },
        [&]() -> SmallVector<Value> { return {e.negInf()}; })[0];
    return e.loop(e.idx(0), e.idx(cfg.getTopkGroup()), e.idx(1),
                  {mine, e.c32(0)},
                  [&](Value, ValueRange acc) -> SmallVector<Value> {
                    Value win = e.warpPick(acc[0], laneI).second;
                    Value bit = arith::ShLIOp::create(b, loc, e.c32(1), win);
                    return {e.select(e.eq(win, laneI), e.negInf(), acc[0]),
                            arith::OrIOp::create(b, loc, acc[1], bit)};
                  })[1];
  }

  /// k rounds of a block argmax; thread j < k writes choice j.
  void emitTopK(RouteEmit &e, const Operands &o, Value t, Value tid, Value lane,
                Value warp, Value scores, Value sel, Value kept, Value topV,
                Value topI) const {
    OpBuilder &b = e.b;
    Location loc = e.loc;
    Value ev = e.idx(experts), step = e.idx(threads), wv = e.idx(warps);
    Value none = e.c32(experts);
    int64_t per = experts / groups;
    SmallVector<Value> chosen = e.loop(
        e.idx(0), e.idx(topK), e.idx(1), {e.f32(0.0), e.c32(0), e.f32(0.0)},
        [&](Value j, ValueRange acc) -> SmallVector<Value> {
          SmallVector<Value> best =
              e.loop(tid, ev, step, {e.negInf(), none},
                     [&](Value i, ValueRange a) -> SmallVector<Value> {
                       Value v = e.load(sel, {i});
                       if (grouped) {
                         Value g = e.toI32(
                             arith::DivUIOp::create(b, loc, i, e.idx(per)));
                         Value bit = arith::AndIOp::create(
                             b, loc, arith::ShRUIOp::create(b, loc, kept, g),
                             e.c32(1));
                         v = e.select(e.eq(bit, e.c32(0)), e.negInf(), v);
                       }
                       auto [bv, bi] = e.pick(a[0], a[1], v, e.toI32(i));
                       return {bv, bi};
                     });
          Value v, i;
          std::tie(v, i) = e.warpPick(best[0], best[1]);
          Value row = e.mul(j, wv);
          e.ifThen(e.ult(lane, e.idx(1)), [&] {
            e.store(v, topV, {e.add(row, warp)});
            e.store(i, topI, {e.add(row, warp)});
          });
          gpu::BarrierOp::create(b, loc);
          Value bv = e.negInf(), bi = none;
          for (int64_t w = 0; w < warps; ++w) {
            Value slot = e.add(row, e.idx(w));
            std::tie(bv, bi) =
                e.pick(bv, bi, e.load(topV, {slot}), e.load(topI, {slot}));
          }
          Value win = e.toIndex(bi);
          // Only the owner ever reads this entry again.
          e.ifThen(e.eq(arith::RemUIOp::create(b, loc, win, step), tid),
                   [&] { e.store(e.negInf(), sel, {win}); });
          Value w = e.load(scores, {win});
          Value me = e.eq(j, tid);
          return {e.fadd(acc[0], w), e.select(me, bi, acc[1]),
                  e.select(me, w, acc[2])};
        });
    bool normalise = topK > 1 && cfg.getNormTopkProb();
    // V3 scales always; V2 only when it does not normalise.
    bool applyScale = cfg.getNormRule() == NormRule::v3 || !normalise;
    Value factor = e.f32(
        applyScale ? cfg.getRoutedScalingFactor().convertToDouble() : 1.0);
    if (normalise)
      factor = arith::DivFOp::create(b, loc, factor,
                                     e.fadd(chosen[0], e.f32(1e-20)));
    e.ifThen(e.ult(tid, e.idx(topK)), [&] {
      e.store(chosen[1], o.ids, {t, tid});
      e.store(e.fmul(chosen[2], factor), o.weights, {t, tid});
    });
  }
};

bool isF32MemRef(Value v, int64_t rank) {
  auto t = dyn_cast<MemRefType>(v.getType());
  return t && t.getRank() == rank && t.getElementType().isF32();
}

} // namespace

FailureOr<bool> mlir::ds::gpu_kernels::emitRouting(func::FuncOp fn) {
  auto cfg = fn->getAttrOfType<MoEConfigAttr>("ds.moe_config");
  if (!cfg)
    return false;
  Kernel k{cfg,
           cfg.getNumExperts(),
           cfg.getTopK(),
           cfg.isGrouped() ? cfg.getNGroup() : 1,
           ::ds::routing::threadsFor(cfg.getNumExperts()),
           0,
           cfg.isGrouped()};
  k.warps = k.threads / 32;
  if (k.experts > ::ds::routing::kMaxExperts || k.topK > k.threads ||
      k.groups > ::ds::routing::kMaxGroups)
    return false;
  // Operands as MoEPatterns.cpp lays them out: logits, ids, weights, the
  // scratch rows (not used here), ..., the bias last.
  Block &body = fn.getBody().front();
  bool hasBias = fn->hasAttr("ds.moe_bias");
  if (body.getNumArguments() < (k.grouped ? 7u : 5u) + unsigned(hasBias))
    return false;
  Operands o{body.getArgument(0), body.getArgument(1), body.getArgument(2),
             hasBias ? body.getArguments().back() : Value()};
  auto lt = dyn_cast<MemRefType>(o.logits.getType());
  auto it = dyn_cast<MemRefType>(o.ids.getType());
  if (!isF32MemRef(o.logits, 2) || lt.getDimSize(1) != k.experts || !it ||
      it.getRank() != 2 || !it.getElementType().isInteger(32) ||
      it.isDynamicDim(1) || it.getDimSize(1) < k.topK ||
      !isF32MemRef(o.weights, 2) || (o.bias && !isF32MemRef(o.bias, 1)))
    return false;
  scf::ParallelOp route;
  for (auto par : body.getOps<scf::ParallelOp>()) {
    route = par;
    break;
  }
  if (!route || route.getNumLoops() != 1 || route.getNumResults() != 0)
    return false;

  OpBuilder b(route);
  Location loc = fn.getLoc();
  RouteEmit e{{b, loc}};
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto shared =
      gpu::AddressSpaceAttr::get(fn.getContext(), gpu::AddressSpace::Workgroup);
  auto buf = [&](int64_t n, Type t) {
    return MemRefType::get({n}, t, nullptr, shared);
  };
  bool softmax = cfg.getScoringFunc() == ScoringFunc::softmax;
  // scores, sel, topV, topI, then the softmax and group buffers if used.
  SmallVector<Type> sharedTypes = {buf(k.experts, f32), buf(k.experts, f32),
                                   buf(k.topK * k.warps, f32),
                                   buf(k.topK * k.warps, i32)};
  if (softmax) {
    sharedTypes.push_back(buf(k.warps, f32));
    sharedTypes.push_back(buf(k.warps, f32));
  }
  if (k.grouped)
    sharedTypes.push_back(buf(k.groups, f32));

  Value rows = memref::DimOp::create(b, loc, o.logits, int64_t(0));
  e.ifThen(e.ult(e.idx(0), rows), [&] {
    e.launch(rows, e.idx(1), k.threads, sharedTypes, [&](gpu::LaunchOp l) {
      auto wg = l.getWorkgroupAttributions();
      Value scores = wg[0], sel = wg[1], topV = wg[2], topI = wg[3];
      Value redMax = softmax ? Value(wg[4]) : Value();
      Value redSum = softmax ? Value(wg[5]) : Value();
      Value groupScore = k.grouped ? Value(wg.back()) : Value();
      Value t = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value lane = arith::RemUIOp::create(b, loc, tid, e.idx(32));
      Value warp = arith::DivUIOp::create(b, loc, tid, e.idx(32));
      k.emitScores(e, o, t, tid, lane, warp, scores, sel, redMax, redSum);
      // Groups and top-k read entries other threads wrote.
      gpu::BarrierOp::create(b, loc);
      Value kept =
          k.grouped ? k.emitGroups(e, lane, warp, sel, groupScore) : Value();
      k.emitTopK(e, o, t, tid, lane, warp, scores, sel, kept, topV, topI);
    });
  });
  route.erase();
  fn->setAttr("ds.block_per_token", UnitAttr::get(fn.getContext()));
  return true;
}
