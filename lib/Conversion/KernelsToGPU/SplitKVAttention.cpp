//===- SplitKVAttention.cpp - decode attention as a GPU kernel ------------===//
//
// Attention over the latent cache is the one kernel whose speed is set by
// memory bandwidth at long context (every step reads the whole cache), so it
// gets a hand-mapped form instead of the generic one-thread-per-(token,
// head) mapping:
//
//   partial  grid (T*H, S), 128 threads = 4 warps. Block (th, s) covers
//            cache rows [s*chunk, min((s+1)*chunk, pos[t]+1)). Each warp
//            takes every 4th row: its 32 lanes load the row with 16-byte
//            vector loads (8 bf16 or 4 f32 per lane and step; FP8 rows: 8
//            e4m3 latent values times their group scale, or 8 bf16 rope
//            values, decoded in registers), dot it with
//            the query held in registers, reduce across the warp with
//            shuffles, and update an online softmax (max m, sum l, fp32
//            accumulator over the latent columns, kept in registers).
//            The 4 warps merge through shared memory by log-sum-exp. With
//            one split the block writes the normalised output directly;
//            otherwise (m, l, acc) go to a scratch row.
//   combine  grid (T*H), 128 threads: merges the S partial rows by
//            log-sum-exp (only when S > 1).
//
// S is picked on the host: enough blocks to fill the GPU at decode (T*H
// small), one split when T*H alone fills it (prefill), and never slices
// shorter than kMinChunk rows of the context this call reaches (asked from
// the runtime, dsrt_gpu_context_tokens: a session's capacity would cut a
// short context into slivers). The last split runs to each token's own
// position, so a context smaller than the positions can never drop rows.
//
// Three emitters, one per piece: planSplits (host), emitPartial and
// emitCombine (the kernels); emitSplitKVAttention strings them together.
//
//===----------------------------------------------------------------------===//
#include "SplitKVAttention.h"
#include "GpuBuilder.h"

#include "ds/Conversion/CacheCodec.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/Builders.h"

#include <limits>
#include <numeric>

using namespace mlir;
using mlir::ds::gpu_kernels::Emit;
namespace codec = mlir::ds::codec;

namespace {

constexpr int64_t kWarps = 4, kThreads = 32 * kWarps;
/// Upper bound on splits, and the block count per step aimed for.
constexpr int64_t kMaxSplits = 64, kTargetBlocks = 2048, kMinChunk = 256;

struct Shapes {
  int64_t heads, latent, rope, width, vw, vectors, perLane;
  Type cacheElem;
  /// FP8 cache (i8 rows, see !ds.latent_cache): latent values per scale,
  /// where the scales and the bf16 rope start, and the alignment of the
  /// rope's 16-byte loads; group 0 otherwise.
  int64_t group = 0, scaleOffset = 0, ropeOffset = 0, ropeAlign = 16;
};

/// The kernel function's operands must be what convert-ds-to-loops emits
/// for ds.latent_attention, with widths that allow 16-byte loads.
std::optional<Shapes> shapesOf(func::FuncOp fn) {
  if (fn.getNumArguments() != 6)
    return std::nullopt;
  auto ql = dyn_cast<MemRefType>(fn.getArgumentTypes()[0]);
  auto qr = dyn_cast<MemRefType>(fn.getArgumentTypes()[1]);
  auto cache = dyn_cast<MemRefType>(fn.getArgumentTypes()[2]);
  if (!ql || !qr || !cache || ql.getRank() != 3 || qr.getRank() != 3 ||
      cache.getRank() != 3 || !ql.getLayout().isIdentity() ||
      !qr.getLayout().isIdentity() || !cache.getLayout().isIdentity())
    return std::nullopt;
  Shapes s;
  s.heads = ql.getDimSize(1);
  s.latent = ql.getDimSize(2);
  s.rope = qr.getDimSize(2);
  s.width = cache.getDimSize(2);
  s.cacheElem = cache.getElementType();
  if (ShapedType::isDynamic(s.heads) || ShapedType::isDynamic(s.latent) ||
      ShapedType::isDynamic(s.rope))
    return std::nullopt;
  if (auto g = fn->getAttrOfType<IntegerAttr>("ds.cache_scale_group");
      g && s.cacheElem.isInteger(8)) {
    // FP8 rows: 8 e4m3 latent values (8 bytes) or 8 bf16 rope values (16
    // bytes) per lane and step; a vector never straddles a scale group.
    s.group = g.getInt();
    s.scaleOffset = s.latent;
    s.ropeOffset = s.latent + 4 * (s.latent / s.group);
    if (s.group <= 0 || s.latent % s.group || s.group % 8 ||
        s.width != s.ropeOffset + 2 * s.rope)
      return std::nullopt;
    s.ropeAlign = std::gcd(std::gcd(s.width, s.ropeOffset), int64_t(16));
    s.vw = 8;
  } else {
    if (s.width != s.latent + s.rope ||
        (!s.cacheElem.isF32() && !s.cacheElem.isBF16()))
      return std::nullopt;
    s.vw = s.cacheElem.isF32() ? 4 : 8; // 16 bytes of cache per lane
  }
  // Query rows are f32: their vectors must stay 16-byte aligned too.
  if (s.latent % s.vw || s.rope % s.vw)
    return std::nullopt;
  s.vectors = (s.latent + s.rope) / s.vw;
  s.perLane = (s.vectors + 31) / 32;
  return s;
}

/// The FP8 row's 8 values at column `col` as f32: e4m3 latent times its
/// group's scale, or bf16 rope (`isLatent` picks, per lane).
Value loadFp8Vector(Emit &e, const Shapes &sh, Value cache, Value layer,
                    Value r, Value col, Value isLatent) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  Type f32 = b.getF32Type(), i8 = b.getI8Type();
  auto vecF = VectorType::get({sh.vw}, f32);
  return e.ifElse(
      isLatent, {vecF},
      [&]() -> SmallVector<Value> {
        Value raw = vector::LoadOp::create(
            b, loc, VectorType::get({sh.vw}, i8), cache,
            ValueRange{layer, r, col}, false,
            llvm::MaybeAlign(std::gcd(sh.width, int64_t(8))));
        Value grp = arith::DivUIOp::create(b, loc, col, e.idx(sh.group));
        Value scale = codec::loadF32Bytes(
            b, loc, cache, ValueRange{layer, r},
            e.add(e.idx(sh.scaleOffset), e.mul(grp, e.idx(4))));
        return {e.fmul(codec::decodeE4M3(b, loc, raw), e.splat(vecF, scale))};
      },
      [&]() -> SmallVector<Value> {
        // bf16 is the top half of an f32: widen, shift, reinterpret.
        Value at =
            e.add(e.idx(sh.ropeOffset),
                  e.mul(arith::SubIOp::create(b, loc, col, e.idx(sh.latent)),
                        e.idx(2)));
        Value raw = vector::LoadOp::create(
            b, loc, VectorType::get({2 * sh.vw}, i8), cache,
            ValueRange{layer, r, at}, false, llvm::MaybeAlign(sh.ropeAlign));
        auto vecI16 = VectorType::get({sh.vw}, b.getI16Type());
        auto vecI32 = VectorType::get({sh.vw}, b.getI32Type());
        Value words = arith::ExtUIOp::create(
            b, loc, vecI32, vector::BitCastOp::create(b, loc, vecI16, raw));
        Value sixteen = arith::ConstantOp::create(
            b, loc, DenseElementsAttr::get(vecI32, b.getI32IntegerAttr(16)));
        return {arith::BitcastOp::create(
            b, loc, vecF, arith::ShLIOp::create(b, loc, words, sixteen))};
      })[0];
}

/// The kernel function's operands (what convert-ds-to-loops passes).
struct Operands {
  Value ql, qr, cache, positions, out, layer;
};

/// The host's choice: T*H blocks per split, S splits of `chunk` rows.
struct SplitPlan {
  Value th, splits, chunk, many;
};

SplitPlan planSplits(Emit &e, func::FuncOp fn, const Shapes &sh,
                     const Operands &o) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  SplitPlan p;
  Value tokens = memref::DimOp::create(b, loc, o.ql, 0);
  Value capacity = memref::DimOp::create(b, loc, o.cache, 1);
  Value cap64 =
      arith::IndexCastOp::create(b, loc, b.getI64Type(), capacity);
  Value ctx64 =
      func::CallOp::create(b, loc, ds::gpu_kernels::contextTokensFn(fn),
                           ValueRange{cap64})
          .getResult(0);
  Value context = e.minU(
      arith::IndexCastOp::create(b, loc, b.getIndexType(), ctx64), capacity);
  p.th = e.mul(tokens, e.idx(sh.heads));
  p.splits = e.minU(
      e.minU(e.maxU(e.ceilDiv(e.idx(kTargetBlocks), e.maxU(p.th, e.idx(1))),
                    e.idx(1)),
             e.idx(kMaxSplits)),
      e.maxU(e.ceilDiv(context, e.idx(kMinChunk)), e.idx(1)));
  p.chunk = e.maxU(e.ceilDiv(context, p.splits), e.idx(1));
  p.many = e.ult(e.idx(1), p.splits);
  return p;
}

/// One lane's vectors of a row: j = lane + 32 i, column j * vw; whether
/// each is in the row and in its latent part, and the query there (zeros
/// past the row).
struct LaneVectors {
  SmallVector<Value> cols, valid, isLatent, q;
};

LaneVectors loadLaneQuery(Emit &e, const Shapes &sh, Value ql, Value qr,
                          Value t, Value h, Value lane) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  auto vecF = VectorType::get({sh.vw}, b.getF32Type());
  LaneVectors v;
  for (int64_t i = 0; i < sh.perLane; ++i) {
    Value j = e.add(lane, e.idx(32 * i));
    Value col = e.mul(j, e.idx(sh.vw));
    v.cols.push_back(col);
    v.valid.push_back(e.ult(j, e.idx(sh.vectors)));
    v.isLatent.push_back(e.ult(col, e.idx(sh.latent)));
    v.q.push_back(e.ifElse(
        v.valid.back(), {vecF},
        [&] {
          return e.ifElse(
              v.isLatent.back(), {vecF},
              [&]() -> SmallVector<Value> {
                return {vector::LoadOp::create(b, loc, vecF, ql,
                                               ValueRange{t, h, col}, false,
                                               llvm::MaybeAlign(16))};
              },
              [&]() -> SmallVector<Value> {
                Value rc = arith::SubIOp::create(b, loc, col, e.idx(sh.latent));
                return {vector::LoadOp::create(b, loc, vecF, qr,
                                               ValueRange{t, h, rc}, false,
                                               llvm::MaybeAlign(16))};
              });
        },
        [&]() -> SmallVector<Value> { return {e.zeros(vecF)}; })[0]);
  }
  return v;
}

/// The cache row `r`'s vector at `col` in f32 (zeros past the row).
Value loadKeyVector(Emit &e, const Shapes &sh, Value cache, Value layer,
                    Value r, Value col, Value valid, Value isLatent) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  auto vecF = VectorType::get({sh.vw}, b.getF32Type());
  auto vecC = VectorType::get({sh.vw}, sh.cacheElem);
  return e.ifElse(
      valid, {vecF},
      [&]() -> SmallVector<Value> {
        if (sh.group)
          return {loadFp8Vector(e, sh, cache, layer, r, col, isLatent)};
        Value raw = vector::LoadOp::create(b, loc, vecC, cache,
                                           ValueRange{layer, r, col}, false,
                                           llvm::MaybeAlign(16));
        if (sh.cacheElem.isF32())
          return {raw};
        return {arith::ExtFOp::create(b, loc, vecF, raw)};
      },
      [&]() -> SmallVector<Value> { return {e.zeros(vecF)}; })[0];
}

/// The block's merge of its warps' online softmaxes (`state`: m, l, then
/// the lane's accumulators), through shared memory: the block's max m,
/// each warp's weight exp(m_w - max), and the weighted sum of the l's.
struct WarpMerge {
  Value mMax, lSum;
  SmallVector<Value> weights;
};

WarpMerge mergeWarps(Emit &e, const Shapes &sh, ArrayRef<Value> state,
                     const LaneVectors &lv, Value smM, Value smL, Value smAcc,
                     Value warp, Value lane, Value negInf) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  e.ifThen(e.ult(lane, e.idx(1)), [&] {
    memref::StoreOp::create(b, loc, state[0], smM, ValueRange{warp});
    memref::StoreOp::create(b, loc, state[1], smL, ValueRange{warp});
  });
  for (int64_t i = 0; i < sh.perLane; ++i)
    e.ifThen(arith::AndIOp::create(b, loc, lv.valid[i], lv.isLatent[i]), [&] {
      Value at = e.add(e.mul(warp, e.idx(sh.latent)), lv.cols[i]);
      vector::StoreOp::create(b, loc, state[2 + i], smAcc, ValueRange{at});
    });
  gpu::BarrierOp::create(b, loc);

  WarpMerge mg;
  mg.mMax = negInf;
  SmallVector<Value> ms, ls;
  for (int64_t w = 0; w < kWarps; ++w) {
    ms.push_back(memref::LoadOp::create(b, loc, smM, ValueRange{e.idx(w)}));
    ls.push_back(memref::LoadOp::create(b, loc, smL, ValueRange{e.idx(w)}));
    mg.mMax = e.fmax(mg.mMax, ms.back());
  }
  mg.lSum = e.f32(0.0);
  for (int64_t w = 0; w < kWarps; ++w) {
    // A warp that saw no row has l = 0 (and m = -inf): weight 0.
    mg.weights.push_back(e.select(e.fgt(ls[w], e.f32(0.0)),
                                  e.exp(e.fsub(ms[w], mg.mMax)), e.f32(0.0)));
    mg.lSum = e.fadd(mg.lSum, e.fmul(ls[w], mg.weights[w]));
  }
  return mg;
}

/// Partial attention: block (t*H + h, s) over rows [s*chunk, ...) of the
/// context, 4 warps, an online softmax per warp merged through shared
/// memory; the normalised output (one split) or (acc, m, l) to `scratch`.
void emitPartial(Emit &e, const Shapes &sh, const Operands &o,
                 const SplitPlan &p, Value scratch, double scale) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  Value ql = o.ql, qr = o.qr, cache = o.cache, positions = o.positions,
        out = o.out, layer = o.layer;
  Value th = p.th, splits = p.splits, chunk = p.chunk, many = p.many;
  MLIRContext *ctx = b.getContext();
  Type f32 = b.getF32Type();
  auto vecF = VectorType::get({sh.vw}, f32);
  auto shared = gpu::AddressSpaceAttr::get(ctx, gpu::AddressSpace::Workgroup);
  auto smallT = MemRefType::get({kWarps}, f32, nullptr, shared);
  auto accT = MemRefType::get({kWarps * sh.latent}, f32, nullptr, shared);
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  int64_t row = sh.latent + 2; // scratch row: acc[latent], m, l
  e.launch(th, splits, kThreads, {smallT, smallT, accT}, [&](gpu::LaunchOp l) {
    Value smM = l.getWorkgroupAttributions()[0];
    Value smL = l.getWorkgroupAttributions()[1];
    Value smAcc = l.getWorkgroupAttributions()[2];
    Value bx = l.getBlockIds().x, s = l.getBlockIds().y;
    Value tid = l.getThreadIds().x;
    Value warp = arith::DivUIOp::create(b, loc, tid, e.idx(32));
    Value lane = arith::RemUIOp::create(b, loc, tid, e.idx(32));
    Value t = arith::DivUIOp::create(b, loc, bx, e.idx(sh.heads));
    Value h = arith::RemUIOp::create(b, loc, bx, e.idx(sh.heads));
    Value pos = memref::LoadOp::create(b, loc, positions, ValueRange{t});
    Value end = e.add(arith::IndexCastOp::create(b, loc, b.getIndexType(),
                                                 pos),
                      e.idx(1));
    Value begin = e.mul(s, chunk);
    Value last = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::eq, s,
                                       arith::SubIOp::create(b, loc, splits,
                                                             e.idx(1)));
    Value stop = e.select(last, e.maxU(end, begin),
                          e.minU(e.add(begin, chunk), e.maxU(end, begin)));

    LaneVectors lv = loadLaneQuery(e, sh, ql, qr, t, h, lane);

    SmallVector<Value> inits{negInf, e.f32(0.0)};
    for (int64_t i = 0; i < sh.perLane; ++i)
      inits.push_back(e.zeros(vecF));
    SmallVector<Value> state = e.loop(
        e.add(begin, warp), stop, e.idx(kWarps), inits,
        [&](Value r, ValueRange acc) -> SmallVector<Value> {
          SmallVector<Value> k;
          Value dot = e.f32(0.0);
          for (int64_t i = 0; i < sh.perLane; ++i) {
            Value kv = loadKeyVector(e, sh, cache, layer, r, lv.cols[i],
                                     lv.valid[i], lv.isLatent[i]);
            k.push_back(kv);
            dot = e.fadd(dot, vector::ReductionOp::create(
                                  b, loc, vector::CombiningKind::ADD,
                                  e.fmul(lv.q[i], kv)));
          }
          Value score = e.fmul(e.warpSum(dot), e.f32(scale));
          Value m = e.fmax(acc[0], score);
          Value corr = e.exp(e.fsub(acc[0], m));
          Value p = e.exp(e.fsub(score, m));
          SmallVector<Value> next{m, e.fadd(e.fmul(acc[1], corr), p)};
          Value corrV = e.splat(vecF, corr), pV = e.splat(vecF, p);
          for (int64_t i = 0; i < sh.perLane; ++i)
            next.push_back(
                e.fadd(e.fmul(acc[2 + i], corrV), e.fmul(k[i], pV)));
          return next;
        });

    // Each warp's (m, l, acc) to shared memory, then a block merge.
    WarpMerge mg =
        mergeWarps(e, sh, state, lv, smM, smL, smAcc, warp, lane, negInf);
    Value base = e.mul(e.add(e.mul(bx, splits), s), e.idx(row));
    e.loop(tid, e.idx(sh.latent), e.idx(kThreads), {},
           [&](Value c, ValueRange) -> SmallVector<Value> {
             Value a = e.f32(0.0);
             for (int64_t w = 0; w < kWarps; ++w)
               a = e.fadd(
                   a, e.fmul(memref::LoadOp::create(
                                 b, loc, smAcc,
                                 ValueRange{e.add(e.idx(w * sh.latent), c)}),
                             mg.weights[w]));
             auto ifOp = scf::IfOp::create(b, loc, many, /*withElse=*/true);
             {
               OpBuilder::InsertionGuard g(b);
               b.setInsertionPointToStart(&ifOp.getThenRegion().front());
               memref::StoreOp::create(b, loc, a, scratch,
                                       ValueRange{e.add(base, c)});
               b.setInsertionPointToStart(&ifOp.getElseRegion().front());
               Value o = e.select(e.fgt(mg.lSum, e.f32(0.0)),
                                  arith::DivFOp::create(b, loc, a, mg.lSum),
                                  e.f32(0.0));
               memref::StoreOp::create(b, loc, o, out, ValueRange{t, h, c});
             }
             return {};
           });
    e.ifThen(arith::AndIOp::create(b, loc, many, e.ult(tid, e.idx(1))), [&] {
      memref::StoreOp::create(b, loc, mg.mMax, scratch,
                              ValueRange{e.add(base, e.idx(sh.latent))});
      memref::StoreOp::create(b, loc, mg.lSum, scratch,
                              ValueRange{e.add(base, e.idx(sh.latent + 1))});
    });
  });
}

/// The log-sum-exp merge of the S partial rows (S > 1 only).
void emitCombine(Emit &e, const Shapes &sh, const Operands &o,
                 const SplitPlan &p, Value scratch) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  Value ql = o.ql, qr = o.qr, cache = o.cache, positions = o.positions,
        out = o.out, layer = o.layer;
  Value th = p.th, splits = p.splits, chunk = p.chunk, many = p.many;
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  int64_t row = sh.latent + 2; // scratch row: acc[latent], m, l
  e.ifThen(many, [&] {
    e.launch(th, e.idx(1), kThreads, {}, [&](gpu::LaunchOp l) {
      Value bx = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value t = arith::DivUIOp::create(b, loc, bx, e.idx(sh.heads));
      Value h = arith::RemUIOp::create(b, loc, bx, e.idx(sh.heads));
      auto at = [&](Value split, int64_t off) {
        return e.add(e.mul(e.add(e.mul(bx, splits), split), e.idx(row)),
                     e.idx(off));
      };
      Value mMax = e.loop(e.idx(0), splits, e.idx(1), {negInf},
                          [&](Value s, ValueRange acc) -> SmallVector<Value> {
                            Value m = memref::LoadOp::create(
                                b, loc, scratch,
                                ValueRange{at(s, sh.latent)});
                            return {e.fmax(acc[0], m)};
                          })[0];
      auto weight = [&](Value s) {
        Value m = memref::LoadOp::create(b, loc, scratch,
                                         ValueRange{at(s, sh.latent)});
        Value lw = memref::LoadOp::create(b, loc, scratch,
                                          ValueRange{at(s, sh.latent + 1)});
        return std::pair{lw, e.select(e.fgt(lw, e.f32(0.0)),
                                      e.exp(e.fsub(m, mMax)), e.f32(0.0))};
      };
      Value lSum = e.loop(e.idx(0), splits, e.idx(1), {e.f32(0.0)},
                          [&](Value s, ValueRange acc) -> SmallVector<Value> {
                            auto [lw, w] = weight(s);
                            return {e.fadd(acc[0], e.fmul(lw, w))};
                          })[0];
      e.loop(tid, e.idx(sh.latent), e.idx(kThreads), {},
             [&](Value c, ValueRange) -> SmallVector<Value> {
               Value a = e.loop(
                   e.idx(0), splits, e.idx(1), {e.f32(0.0)},
                   [&](Value s, ValueRange acc) -> SmallVector<Value> {
                     Value w = weight(s).second;
                     Value v = memref::LoadOp::create(
                         b, loc, scratch,
                         ValueRange{e.add(at(s, 0), c)});
                     return {e.fadd(acc[0], e.fmul(v, w))};
                   })[0];
               Value o = e.select(e.fgt(lSum, e.f32(0.0)),
                                  arith::DivFOp::create(b, loc, a, lSum),
                                  e.f32(0.0));
               memref::StoreOp::create(b, loc, o, out, ValueRange{t, h, c});
               return {};
             });
    });
  });

}

} // namespace

FailureOr<bool> mlir::ds::gpu_kernels::emitSplitKVAttention(func::FuncOp fn) {
  std::optional<Shapes> shapes = shapesOf(fn);
  if (!shapes)
    return false;
  const Shapes &sh = *shapes;
  MLIRContext *ctx = fn.getContext();
  Block &body = fn.getBody().front();
  // The generic loop nest goes; the arguments stay.
  while (!body.empty())
    body.back().erase();
  OpBuilder b = OpBuilder::atBlockEnd(&body);
  Location loc = fn.getLoc();
  Emit e{b, loc};
  Value ql = body.getArgument(0), qr = body.getArgument(1),
        cache = body.getArgument(2), positions = body.getArgument(3),
        out = body.getArgument(4), layer = body.getArgument(5);
  double scale = 0;
  if (auto s = fn->getAttrOfType<FloatAttr>("ds.scale"))
    scale = s.getValueAsDouble();
  else
    return fn.emitError() << "latent_attention kernel without ds.scale";

  Type f32 = b.getF32Type();
  int64_t row = sh.latent + 2; // scratch row: acc[latent], m, l

  // Host: sizes, split count, scratch.
  Operands o{ql, qr, cache, positions, out, layer};
  SplitPlan plan = planSplits(e, fn, sh, o);
  e.ifThen(e.ult(e.idx(0), plan.th), [&] {
    Value scratchLen = e.select(
        plan.many, e.mul(e.mul(plan.th, plan.splits), e.idx(row)), e.idx(1));
    auto scratchT = MemRefType::get({ShapedType::kDynamic}, f32);
    Value t0 = gpu::WaitOp::create(b, loc, b.getType<gpu::AsyncTokenType>(),
                                   ValueRange{})
                   .getAsyncToken();
    auto alloc = gpu::AllocOp::create(b, loc, scratchT,
                                      b.getType<gpu::AsyncTokenType>(),
                                      ValueRange{t0}, ValueRange{scratchLen},
                                      ValueRange{});
    gpu::WaitOp::create(b, loc, Type(), ValueRange{alloc.getAsyncToken()});
    Value scratch = alloc.getMemref();

    emitPartial(e, sh, o, plan, scratch, scale);
    emitCombine(e, sh, o, plan, scratch);

    Value t1 = gpu::WaitOp::create(b, loc, b.getType<gpu::AsyncTokenType>(),
                                   ValueRange{})
                   .getAsyncToken();
    auto dealloc = gpu::DeallocOp::create(
        b, loc, b.getType<gpu::AsyncTokenType>(), ValueRange{t1}, scratch);
    gpu::WaitOp::create(b, loc, Type(), ValueRange{dealloc.getAsyncToken()});
  });
  func::ReturnOp::create(b, loc);
  fn->setAttr("ds.split_kv", UnitAttr::get(ctx));
  return true;
}
