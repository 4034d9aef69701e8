//===- PagedAttention.cpp - @ragged_step's paged kernels on the GPU -------===//
//
// The ragged step's attention reads each sequence's latent rows through its
// block table ([layers, pages, page_size, width], see
// !ds.paged_latent_attention). The generic mapping would give one thread
// per (token, head) walking rows one scalar at a time; this is the
// split-KV form of SplitKVAttention.cpp over pages, with FlashMLA's
// folding of a sequence's query tokens into the head dimension:
//
//   partial  grid (tiles, S_max), 128 threads = 4 warps. Sequence s has
//            n_s tokens, so n_s * H query rows ordered (token, head); a
//            tile is `fold` consecutive rows of one sequence, so a decode
//            token's heads, or the few tokens of a speculative verify
//            (causal among themselves), share every cache row the block
//            reads. Each warp takes every 4th row of the block's slice;
//            its 32 lanes load the row with 16-byte vector loads inside
//            the row's page (page = block_tables[s, r / page_size]), dot
//            it with each of the tile's queries (held in registers),
//            reduce across the warp with shuffles, and update that query
//            row's online softmax unless the row lies past the query
//            token's position. The warps merge through shared memory.
//   combine  grid (T*H), 128 threads: merges a row's splits by
//            log-sum-exp (only sequences split more than once).
//
// Split counts are per sequence: ceil(context / 256) capped by the grid's
// S_max (enough blocks to fill the GPU for the whole batch, at most 64),
// where the context is the sequence's last token's position + 1; blocks
// past their sequence's count return at once. The last split runs to the
// tile's own last row, so no row is dropped whatever the positions.
// Blocks find their (sequence, tile) by a scan of query_start (S entries,
// uniform across the block); the grid is an upper bound on the tiles
// (T*H / fold + S), so the host never reads the batch's layout back.
//
//===----------------------------------------------------------------------===//
#include "PagedAttention.h"
#include "GpuBuilder.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"

#include <algorithm>
#include <limits>
#include <tuple>

using namespace mlir;
using mlir::ds::gpu_kernels::Emit;

namespace {

constexpr int64_t kWarps = 4, kThreads = 32 * kWarps;
constexpr int64_t kMaxSplits = 64, kTargetBlocks = 2048, kMinChunk = 256;
/// Query rows per block at most; the registers a lane may spend on the
/// tile's queries and accumulators (2 x perLane x vw floats per row: V3's
/// bf16 rows fold 2, at 4 ptxas needs 253 registers a thread); and the
/// static shared memory the warps' merge may take.
constexpr int64_t kMaxFold = 4, kRowRegisters = 128, kSharedBytes = 48 * 1024;

struct Shapes {
  int64_t heads, latent, rope, width, pageSize, vw, vectors, perLane, fold;
  Type cacheElem;
};

bool plain(MemRefType t, int64_t rank) {
  return t && t.getRank() == rank && t.getLayout().isIdentity();
}

std::optional<Shapes> shapesOf(func::FuncOp fn) {
  if (fn.getNumArguments() != 8)
    return std::nullopt;
  TypeRange a = fn.getArgumentTypes();
  auto ql = dyn_cast<MemRefType>(a[0]), qr = dyn_cast<MemRefType>(a[1]),
       cache = dyn_cast<MemRefType>(a[2]), bt = dyn_cast<MemRefType>(a[5]);
  if (!plain(ql, 3) || !plain(qr, 3) || !plain(cache, 4) || !plain(bt, 2))
    return std::nullopt;
  Shapes s;
  s.heads = ql.getDimSize(1);
  s.latent = ql.getDimSize(2);
  s.rope = qr.getDimSize(2);
  s.pageSize = cache.getDimSize(2);
  s.width = cache.getDimSize(3);
  s.cacheElem = cache.getElementType();
  for (int64_t d : {s.heads, s.latent, s.rope, s.pageSize, s.width})
    if (ShapedType::isDynamic(d))
      return std::nullopt;
  if (s.width != s.latent + s.rope ||
      (!s.cacheElem.isF32() && !s.cacheElem.isBF16()))
    return std::nullopt;
  s.vw = s.cacheElem.isF32() ? 4 : 8; // 16 bytes of cache per lane
  if (s.latent % s.vw || s.rope % s.vw)
    return std::nullopt;
  s.vectors = s.width / s.vw;
  s.perLane = (s.vectors + 31) / 32;
  // Shared memory per query row: every warp's accumulator, m and l.
  int64_t perRow = kWarps * (s.latent + 2) * 4;
  s.fold = std::min<int64_t>(
      {kMaxFold, kSharedBytes / perRow,
       std::max<int64_t>(1, kRowRegisters / (2 * s.perLane * s.vw))});
  if (s.fold < 1)
    return std::nullopt;
  return s;
}

struct Operands {
  Value ql, qr, cache, positions, queryStart, blockTables, out, layer;
};

Value toIndex(Emit &e, Value v) {
  return arith::IndexCastOp::create(e.b, e.loc, e.b.getIndexType(), v);
}
Value load(Emit &e, Value m, ValueRange idx) {
  return memref::LoadOp::create(e.b, e.loc, m, idx);
}
Value sub(Emit &e, Value x, Value y) {
  return arith::SubIOp::create(e.b, e.loc, x, y);
}
Value divU(Emit &e, Value x, Value y) {
  return arith::DivUIOp::create(e.b, e.loc, x, y);
}
Value remU(Emit &e, Value x, Value y) {
  return arith::RemUIOp::create(e.b, e.loc, x, y);
}
Value eq(Emit &e, Value x, Value y) {
  return arith::CmpIOp::create(e.b, e.loc, arith::CmpIPredicate::eq, x, y);
}
Value both(Emit &e, Value x, Value y) {
  return arith::AndIOp::create(e.b, e.loc, x, y);
}

/// The sequence of token `t`: how many sequences past the first start at
/// or before it (the scan of KernelEmitter::sequenceOf).
Value sequenceOf(Emit &e, Value queryStart, Value seqs, Value t) {
  return e.loop(e.idx(1), seqs, e.idx(1), {e.idx(0)},
                [&](Value j, ValueRange acc) -> SmallVector<Value> {
                  Value started = arith::CmpIOp::create(
                      e.b, e.loc, arith::CmpIPredicate::ule,
                      toIndex(e, load(e, queryStart, {j})), t);
                  return {e.select(started, e.add(acc[0], e.idx(1)), acc[0])};
                })[0];
}

/// Sequence `seq`'s split count and slice length; `gridSplits` caps it.
std::pair<Value, Value> splitsOf(Emit &e, const Operands &o, Value seq,
                                 Value gridSplits) {
  Value q1 = toIndex(e, load(e, o.queryStart, {e.add(seq, e.idx(1))}));
  Value lastPos = toIndex(e, load(e, o.positions, {sub(e, q1, e.idx(1))}));
  Value context = e.add(lastPos, e.idx(1));
  Value n = e.minU(gridSplits,
                   e.maxU(e.ceilDiv(context, e.idx(kMinChunk)), e.idx(1)));
  return {n, e.maxU(e.ceilDiv(context, n), e.idx(1))};
}

struct Plan {
  Value tokens, seqs, tiles, splits, many;
};

/// Host: an upper bound on the tiles, and the grid's split count from the
/// longest context the step reaches (asked from the runtime).
Plan plan(Emit &e, func::FuncOp fn, const Shapes &sh, const Operands &o) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  Plan p;
  p.tokens = memref::DimOp::create(b, loc, o.ql, 0);
  Value starts = memref::DimOp::create(b, loc, o.queryStart, 0);
  p.seqs =
      e.select(e.ult(e.idx(0), starts), sub(e, starts, e.idx(1)), e.idx(0));
  p.tiles = e.add(e.ceilDiv(e.mul(p.tokens, e.idx(sh.heads)), e.idx(sh.fold)),
                  p.seqs);
  Value capacity =
      e.mul(memref::DimOp::create(b, loc, o.cache, 1), e.idx(sh.pageSize));
  Value ctx64 =
      func::CallOp::create(b, loc, ds::gpu_kernels::contextTokensFn(fn),
                           ValueRange{arith::IndexCastOp::create(
                               b, loc, b.getI64Type(), capacity)})
          .getResult(0);
  Value context = e.minU(toIndex(e, ctx64), capacity);
  p.splits = e.minU(
      e.minU(e.maxU(e.ceilDiv(e.idx(kTargetBlocks), e.maxU(p.tiles, e.idx(1))),
                    e.idx(1)),
             e.idx(kMaxSplits)),
      e.maxU(e.ceilDiv(context, e.idx(kMinChunk)), e.idx(1)));
  p.many = e.ult(e.idx(1), p.splits);
  return p;
}

/// One query row of a tile: its token, head, and the end of its causal
/// window (0 for a row past the sequence's last).
struct QueryRow {
  Value valid, token, head, end;
};

/// A lane's vectors of a row: vector j = lane + 32 i starts at column
/// j * vw; `valid` when inside the row, `isLatent` before the rope part.
struct Lanes {
  SmallVector<Value> cols, valid, isLatent;
};

/// Shared memory of the warps' merge, per (query row, warp): m, l, acc.
struct Merge {
  Value m, l, acc;
};

Lanes lanesOf(Emit &e, const Shapes &sh, Value lane) {
  Lanes l;
  for (int64_t i = 0; i < sh.perLane; ++i) {
    Value j = e.add(lane, e.idx(32 * i));
    l.cols.push_back(e.mul(j, e.idx(sh.vw)));
    l.valid.push_back(e.ult(j, e.idx(sh.vectors)));
    l.isLatent.push_back(e.ult(l.cols.back(), e.idx(sh.latent)));
  }
  return l;
}

/// The block's (sequence, tile): tiles are numbered sequence by sequence;
/// the sequence stays S when `bx` is past the last tile.
std::pair<Value, Value> tileOf(Emit &e, const Shapes &sh, const Operands &o,
                               const Plan &p, Value bx) {
  Value H = e.idx(sh.heads), fold = e.idx(sh.fold);
  SmallVector<Value> found = e.loop(
      e.idx(0), p.seqs, e.idx(1), {e.idx(0), p.seqs, e.idx(0)},
      [&](Value s, ValueRange acc) -> SmallVector<Value> {
        Value n =
            sub(e, toIndex(e, load(e, o.queryStart, {e.add(s, e.idx(1))})),
                toIndex(e, load(e, o.queryStart, {s})));
        Value next = e.add(acc[0], e.ceilDiv(e.mul(n, H), fold));
        Value inside =
            both(e, e.ult(bx, next),
                 arith::CmpIOp::create(e.b, e.loc, arith::CmpIPredicate::ule,
                                       acc[0], bx));
        return {next, e.select(inside, s, acc[1]),
                e.select(inside, sub(e, bx, acc[0]), acc[2])};
      });
  return {found[1], found[2]};
}

/// The tile's `fold` query rows (token-major: row j of the sequence is
/// token j / H, head j % H).
SmallVector<QueryRow> queryRows(Emit &e, const Shapes &sh, const Operands &o,
                                Value seq, Value tile) {
  Value H = e.idx(sh.heads);
  Value q0 = toIndex(e, load(e, o.queryStart, {seq}));
  Value q1 = toIndex(e, load(e, o.queryStart, {e.add(seq, e.idx(1))}));
  Value rows = e.mul(sub(e, q1, q0), H);
  SmallVector<QueryRow> out;
  for (int64_t g = 0; g < sh.fold; ++g) {
    Value j = e.add(e.mul(tile, e.idx(sh.fold)), e.idx(g));
    QueryRow r;
    r.valid = e.ult(j, rows);
    // A row past the sequence reads its first row's query (in bounds) and
    // never attends: end 0.
    Value jc = e.select(r.valid, j, e.idx(0));
    r.token = e.add(q0, divU(e, jc, H));
    r.head = remU(e, jc, H);
    r.end = e.select(
        r.valid, e.add(toIndex(e, load(e, o.positions, {r.token})), e.idx(1)),
        e.idx(0));
    out.push_back(r);
  }
  return out;
}

/// q[g * perLane + i]: query row g's vector i (f32), in registers.
SmallVector<Value> loadQueries(Emit &e, const Shapes &sh, const Operands &o,
                               ArrayRef<QueryRow> rows, const Lanes &ln) {
  auto vecF = VectorType::get({sh.vw}, e.b.getF32Type());
  auto at = [&](Value q, const QueryRow &r, Value col) -> SmallVector<Value> {
    return {vector::LoadOp::create(e.b, e.loc, vecF, q,
                                   ValueRange{r.token, r.head, col}, false,
                                   llvm::MaybeAlign(16))};
  };
  SmallVector<Value> q;
  for (const QueryRow &r : rows)
    for (int64_t i = 0; i < sh.perLane; ++i)
      q.push_back(e.ifElse(
          ln.valid[i], {vecF},
          [&] {
            return e.ifElse(
                ln.isLatent[i], {vecF}, [&] { return at(o.ql, r, ln.cols[i]); },
                [&] {
                  return at(o.qr, r, sub(e, ln.cols[i], e.idx(sh.latent)));
                });
          },
          [&]() -> SmallVector<Value> { return {e.zeros(vecF)}; })[0]);
  return q;
}

/// The warp's rows [first, stop) step 4 against every query row of the
/// tile: per row its page through the block table, the row's vectors
/// loaded once, then per query row a dot product, the causal mask and the
/// online softmax. Returns per query row m, l, then perLane accumulators.
SmallVector<Value> attendRows(Emit &e, const Shapes &sh, const Operands &o,
                              const Lanes &ln, ArrayRef<QueryRow> rows,
                              ArrayRef<Value> q, Value seq, Value first,
                              Value stop, double scale) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  auto vecF = VectorType::get({sh.vw}, b.getF32Type());
  auto vecC = VectorType::get({sh.vw}, sh.cacheElem);
  int64_t per = 2 + sh.perLane;
  SmallVector<Value> inits;
  for (int64_t g = 0; g < sh.fold; ++g) {
    inits.push_back(e.f32(-std::numeric_limits<float>::infinity()));
    inits.push_back(e.f32(0.0));
    for (int64_t i = 0; i < sh.perLane; ++i)
      inits.push_back(e.zeros(vecF));
  }
  Value pageSize = e.idx(sh.pageSize);
  return e.loop(
      first, stop, e.idx(kWarps), inits,
      [&](Value r, ValueRange acc) -> SmallVector<Value> {
        // The row's columns are contiguous inside its page.
        Value page =
            toIndex(e, load(e, o.blockTables, {seq, divU(e, r, pageSize)}));
        Value slot = remU(e, r, pageSize);
        SmallVector<Value> k;
        for (int64_t i = 0; i < sh.perLane; ++i)
          k.push_back(e.ifElse(
              ln.valid[i], {vecF},
              [&]() -> SmallVector<Value> {
                Value raw = vector::LoadOp::create(
                    b, loc, vecC, o.cache,
                    ValueRange{o.layer, page, slot, ln.cols[i]}, false,
                    llvm::MaybeAlign(16));
                if (sh.cacheElem.isF32())
                  return {raw};
                return {arith::ExtFOp::create(b, loc, vecF, raw)};
              },
              [&]() -> SmallVector<Value> { return {e.zeros(vecF)}; })[0]);
        SmallVector<Value> next;
        for (int64_t g = 0; g < sh.fold; ++g) {
          Value dot = e.f32(0.0);
          for (int64_t i = 0; i < sh.perLane; ++i)
            dot = e.fadd(dot, vector::ReductionOp::create(
                                  b, loc, vector::CombiningKind::ADD,
                                  e.fmul(q[g * sh.perLane + i], k[i])));
          Value score = e.fmul(e.warpSum(dot), e.f32(scale));
          // Causal: row r is visible to a query at position >= r.
          Value visible = e.ult(r, rows[g].end);
          Value m0 = acc[g * per], l0 = acc[g * per + 1];
          Value m = e.select(visible, e.fmax(m0, score), m0);
          Value corr = e.select(visible, e.exp(e.fsub(m0, m)), e.f32(1.0));
          Value pr = e.select(visible, e.exp(e.fsub(score, m)), e.f32(0.0));
          next.push_back(m);
          next.push_back(e.fadd(e.fmul(l0, corr), pr));
          Value corrV = e.splat(vecF, corr), pV = e.splat(vecF, pr);
          for (int64_t i = 0; i < sh.perLane; ++i)
            next.push_back(
                e.fadd(e.fmul(acc[g * per + 2 + i], corrV), e.fmul(k[i], pV)));
        }
        return next;
      });
}

/// The warps' states to shared memory, then per query row a log-sum-exp
/// merge of the 4 warps: the normalised row to `out` when the sequence
/// has one split, else (acc, m, l) to the row's scratch slot of split y.
void mergeWarps(Emit &e, const Shapes &sh, const Operands &o, const Plan &p,
                const Lanes &ln, ArrayRef<QueryRow> rows, ArrayRef<Value> state,
                const Merge &sm, Value warp, Value lane, Value tid, Value y,
                Value nsplit, Value scratch) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  int64_t per = 2 + sh.perLane;
  for (int64_t g = 0; g < sh.fold; ++g) {
    Value slot = e.add(e.idx(g * kWarps), warp);
    e.ifThen(e.ult(lane, e.idx(1)), [&] {
      memref::StoreOp::create(b, loc, state[g * per], sm.m, ValueRange{slot});
      memref::StoreOp::create(b, loc, state[g * per + 1], sm.l,
                              ValueRange{slot});
    });
    for (int64_t i = 0; i < sh.perLane; ++i)
      e.ifThen(both(e, ln.valid[i], ln.isLatent[i]), [&] {
        Value at = e.add(e.mul(slot, e.idx(sh.latent)), ln.cols[i]);
        vector::StoreOp::create(b, loc, state[g * per + 2 + i], sm.acc,
                                ValueRange{at});
      });
  }
  gpu::BarrierOp::create(b, loc);

  Value many = e.ult(e.idx(1), nsplit);
  int64_t rowLen = sh.latent + 2; // scratch row: acc[latent], m, l
  for (int64_t g = 0; g < sh.fold; ++g) {
    const QueryRow &r = rows[g];
    e.ifThen(r.valid, [&] {
      Value mMax = e.f32(-std::numeric_limits<float>::infinity());
      SmallVector<Value> ms, ls, weights;
      for (int64_t w = 0; w < kWarps; ++w) {
        Value at = e.idx(g * kWarps + w);
        ms.push_back(load(e, sm.m, {at}));
        ls.push_back(load(e, sm.l, {at}));
        mMax = e.fmax(mMax, ms.back());
      }
      Value lSum = e.f32(0.0);
      for (int64_t w = 0; w < kWarps; ++w) {
        // A warp that saw no visible row has l = 0: weight 0.
        weights.push_back(e.select(e.fgt(ls[w], e.f32(0.0)),
                                   e.exp(e.fsub(ms[w], mMax)), e.f32(0.0)));
        lSum = e.fadd(lSum, e.fmul(ls[w], weights[w]));
      }
      Value row = e.add(e.mul(r.token, e.idx(sh.heads)), r.head);
      Value base = e.mul(e.add(e.mul(row, p.splits), y), e.idx(rowLen));
      e.loop(
          tid, e.idx(sh.latent), e.idx(kThreads), {},
          [&](Value c, ValueRange) -> SmallVector<Value> {
            Value a = e.f32(0.0);
            for (int64_t w = 0; w < kWarps; ++w)
              a = e.fadd(
                  a,
                  e.fmul(load(e, sm.acc,
                              {e.add(e.idx((g * kWarps + w) * sh.latent), c)}),
                         weights[w]));
            auto ifOp = scf::IfOp::create(b, loc, many, /*withElse=*/true);
            OpBuilder::InsertionGuard guard(b);
            b.setInsertionPointToStart(&ifOp.getThenRegion().front());
            memref::StoreOp::create(b, loc, a, scratch,
                                    ValueRange{e.add(base, c)});
            b.setInsertionPointToStart(&ifOp.getElseRegion().front());
            Value out =
                e.select(e.fgt(lSum, e.f32(0.0)),
                         arith::DivFOp::create(b, loc, a, lSum), e.f32(0.0));
            memref::StoreOp::create(b, loc, out, o.out,
                                    ValueRange{r.token, r.head, c});
            return {};
          });
      e.ifThen(both(e, many, e.ult(tid, e.idx(1))), [&] {
        memref::StoreOp::create(b, loc, mMax, scratch,
                                ValueRange{e.add(base, e.idx(sh.latent))});
        memref::StoreOp::create(b, loc, lSum, scratch,
                                ValueRange{e.add(base, e.idx(sh.latent + 1))});
      });
    });
  }
}

/// The partial kernel (see the file comment).
void emitPartial(Emit &e, const Shapes &sh, const Operands &o, const Plan &p,
                 Value scratch, double scale) {
  auto shared = gpu::AddressSpaceAttr::get(e.b.getContext(),
                                           gpu::AddressSpace::Workgroup);
  Type f32 = e.b.getF32Type();
  int64_t slots = sh.fold * kWarps;
  auto smallT = MemRefType::get({slots}, f32, nullptr, shared);
  auto accT = MemRefType::get({slots * sh.latent}, f32, nullptr, shared);
  e.launch(p.tiles, p.splits, kThreads, {smallT, smallT, accT},
           [&](gpu::LaunchOp l) {
             Merge sm{l.getWorkgroupAttributions()[0],
                      l.getWorkgroupAttributions()[1],
                      l.getWorkgroupAttributions()[2]};
             Value bx = l.getBlockIds().x, y = l.getBlockIds().y;
             Value tid = l.getThreadIds().x;
             Value warp = divU(e, tid, e.idx(32));
             Value lane = remU(e, tid, e.idx(32));
             Value seq, tile;
             std::tie(seq, tile) = tileOf(e, sh, o, p, bx);
             e.ifThen(e.ult(seq, p.seqs), [&] {
               Value nsplit, chunk;
               std::tie(nsplit, chunk) = splitsOf(e, o, seq, p.splits);
               e.ifThen(e.ult(y, nsplit), [&] {
                 SmallVector<QueryRow> rows = queryRows(e, sh, o, seq, tile);
                 Value tileEnd = e.idx(0);
                 for (const QueryRow &r : rows)
                   tileEnd = e.maxU(tileEnd, r.end);
                 Value begin = e.mul(y, chunk);
                 Value lastSplit = eq(e, y, sub(e, nsplit, e.idx(1)));
                 Value reach = e.maxU(tileEnd, begin);
                 Value stop = e.select(lastSplit, reach,
                                       e.minU(e.add(begin, chunk), reach));
                 Lanes ln = lanesOf(e, sh, lane);
                 SmallVector<Value> q = loadQueries(e, sh, o, rows, ln);
                 SmallVector<Value> state =
                     attendRows(e, sh, o, ln, rows, q, seq, e.add(begin, warp),
                                stop, scale);
                 mergeWarps(e, sh, o, p, ln, rows, state, sm, warp, lane, tid,
                            y, nsplit, scratch);
               });
             });
           });
}

/// The log-sum-exp merge of a (token, head) row's splits, for rows whose
/// sequence was split more than once.
void emitCombine(Emit &e, const Shapes &sh, const Operands &o, const Plan &p,
                 Value scratch) {
  OpBuilder &b = e.b;
  Location loc = e.loc;
  Value negInf = e.f32(-std::numeric_limits<float>::infinity());
  int64_t rowLen = sh.latent + 2;
  Value H = e.idx(sh.heads);
  e.ifThen(p.many, [&] {
    e.launch(e.mul(p.tokens, H), e.idx(1), kThreads, {}, [&](gpu::LaunchOp l) {
      Value bx = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value t = divU(e, bx, H), h = remU(e, bx, H);
      Value seq = sequenceOf(e, o.queryStart, p.seqs, t);
      Value nsplit = splitsOf(e, o, seq, p.splits).first;
      e.ifThen(e.ult(e.idx(1), nsplit), [&] {
        auto at = [&](Value split, int64_t off) {
          return e.add(e.mul(e.add(e.mul(bx, p.splits), split), e.idx(rowLen)),
                       e.idx(off));
        };
        Value mMax = e.loop(
            e.idx(0), nsplit, e.idx(1), {negInf},
            [&](Value s, ValueRange acc) -> SmallVector<Value> {
              return {e.fmax(acc[0], load(e, scratch, {at(s, sh.latent)}))};
            })[0];
        auto weight = [&](Value s) {
          Value m = load(e, scratch, {at(s, sh.latent)});
          Value lw = load(e, scratch, {at(s, sh.latent + 1)});
          return std::pair{lw, e.select(e.fgt(lw, e.f32(0.0)),
                                        e.exp(e.fsub(m, mMax)), e.f32(0.0))};
        };
        Value lSum = e.loop(e.idx(0), nsplit, e.idx(1), {e.f32(0.0)},
                            [&](Value s, ValueRange acc) -> SmallVector<Value> {
                              auto [lw, w] = weight(s);
                              return {e.fadd(acc[0], e.fmul(lw, w))};
                            })[0];
        e.loop(
            tid, e.idx(sh.latent), e.idx(kThreads), {},
            [&](Value c, ValueRange) -> SmallVector<Value> {
              Value a =
                  e.loop(e.idx(0), nsplit, e.idx(1), {e.f32(0.0)},
                         [&](Value s, ValueRange acc) -> SmallVector<Value> {
                           Value v = load(e, scratch, {e.add(at(s, 0), c)});
                           return {e.fadd(acc[0], e.fmul(v, weight(s).second))};
                         })[0];
              Value out =
                  e.select(e.fgt(lSum, e.f32(0.0)),
                           arith::DivFOp::create(b, loc, a, lSum), e.f32(0.0));
              memref::StoreOp::create(b, loc, out, o.out, ValueRange{t, h, c});
              return {};
            });
      });
    });
  });
}

/// gpu.alloc / gpu.dealloc on their own async chains (the mgpu* form).
Value allocScratch(Emit &e, Value len) {
  OpBuilder &b = e.b;
  auto tokenT = b.getType<gpu::AsyncTokenType>();
  Value t0 =
      gpu::WaitOp::create(b, e.loc, tokenT, ValueRange{}).getAsyncToken();
  auto alloc = gpu::AllocOp::create(
      b, e.loc, MemRefType::get({ShapedType::kDynamic}, b.getF32Type()), tokenT,
      ValueRange{t0}, ValueRange{len}, ValueRange{});
  gpu::WaitOp::create(b, e.loc, Type(), ValueRange{alloc.getAsyncToken()});
  return alloc.getMemref();
}
void freeScratch(Emit &e, Value m) {
  OpBuilder &b = e.b;
  auto tokenT = b.getType<gpu::AsyncTokenType>();
  Value t1 =
      gpu::WaitOp::create(b, e.loc, tokenT, ValueRange{}).getAsyncToken();
  auto d = gpu::DeallocOp::create(b, e.loc, tokenT, ValueRange{t1}, m);
  gpu::WaitOp::create(b, e.loc, Type(), ValueRange{d.getAsyncToken()});
}

/// Empties `fn`'s body and returns a builder at its end.
OpBuilder restart(func::FuncOp fn) {
  Block &body = fn.getBody().front();
  while (!body.empty())
    body.back().erase();
  return OpBuilder::atBlockEnd(&body);
}

} // namespace

FailureOr<bool>
mlir::ds::gpu_kernels::emitPagedSplitKVAttention(func::FuncOp fn) {
  std::optional<Shapes> shapes = shapesOf(fn);
  if (!shapes)
    return false;
  auto scaleAttr = fn->getAttrOfType<FloatAttr>("ds.scale");
  if (!scaleAttr)
    return fn.emitError() << "paged_latent_attention kernel without ds.scale";
  const Shapes &sh = *shapes;
  OpBuilder b = restart(fn);
  Location loc = fn.getLoc();
  Emit e{b, loc};
  Block &body = fn.getBody().front();
  Operands o{body.getArgument(0), body.getArgument(1), body.getArgument(2),
             body.getArgument(3), body.getArgument(4), body.getArgument(5),
             body.getArgument(6), body.getArgument(7)};
  Plan p = plan(e, fn, sh, o);
  e.ifThen(both(e, e.ult(e.idx(0), p.tokens), e.ult(e.idx(0), p.seqs)), [&] {
    Value len =
        e.select(p.many,
                 e.mul(e.mul(e.mul(p.tokens, e.idx(sh.heads)), p.splits),
                       e.idx(sh.latent + 2)),
                 e.idx(1));
    Value scratch = allocScratch(e, len);
    emitPartial(e, sh, o, p, scratch, scaleAttr.getValueAsDouble());
    emitCombine(e, sh, o, p, scratch);
    freeScratch(e, scratch);
  });
  func::ReturnOp::create(b, loc);
  fn->setAttr("ds.split_kv", UnitAttr::get(fn.getContext()));
  fn->setAttr("ds.fold", b.getI64IntegerAttr(sh.fold));
  return true;
}

FailureOr<bool> mlir::ds::gpu_kernels::emitPagedCacheWrite(func::FuncOp fn) {
  if (fn.getNumArguments() != 7)
    return false;
  TypeRange a = fn.getArgumentTypes();
  auto cache = dyn_cast<MemRefType>(a[0]), latent = dyn_cast<MemRefType>(a[1]),
       rope = dyn_cast<MemRefType>(a[2]);
  if (!plain(cache, 4) || !plain(latent, 2) || !plain(rope, 2) ||
      !plain(dyn_cast<MemRefType>(a[5]), 2))
    return false;
  int64_t pageSize = cache.getDimSize(2), width = cache.getDimSize(3),
          dc = latent.getDimSize(1), dr = rope.getDimSize(1);
  for (int64_t d : {pageSize, width, dc, dr})
    if (ShapedType::isDynamic(d))
      return false;
  Type elem = cache.getElementType();
  if (width != dc + dr || !latent.getElementType().isF32() ||
      !rope.getElementType().isF32() || (!elem.isF32() && !elem.isBF16()))
    return false;
  OpBuilder b = restart(fn);
  Location loc = fn.getLoc();
  Emit e{b, loc};
  Block &body = fn.getBody().front();
  Value mem = body.getArgument(0), lat = body.getArgument(1),
        rk = body.getArgument(2), positions = body.getArgument(3),
        qs = body.getArgument(4), bt = body.getArgument(5),
        layer = body.getArgument(6);
  Value tokens = memref::DimOp::create(b, loc, lat, 0);
  Value starts = memref::DimOp::create(b, loc, qs, 0);
  Value seqs =
      e.select(e.ult(e.idx(0), starts), sub(e, starts, e.idx(1)), e.idx(0));
  // One block per token: the row's page and slot once, then the columns by
  // consecutive threads (coalesced stores into the page).
  e.ifThen(e.ult(e.idx(0), tokens), [&] {
    e.launch(tokens, e.idx(1), kThreads, {}, [&](gpu::LaunchOp l) {
      Value t = l.getBlockIds().x, tid = l.getThreadIds().x;
      Value seq = sequenceOf(e, qs, seqs, t);
      Value pos = toIndex(e, load(e, positions, {t}));
      Value ps = e.idx(pageSize);
      Value page = toIndex(e, load(e, bt, {seq, divU(e, pos, ps)}));
      Value slot = remU(e, pos, ps);
      e.loop(tid, e.idx(width), e.idx(kThreads), {},
             [&](Value c, ValueRange) -> SmallVector<Value> {
               Value v = e.ifElse(
                   e.ult(c, e.idx(dc)), {b.getF32Type()},
                   [&]() -> SmallVector<Value> {
                     return {load(e, lat, {t, c})};
                   },
                   [&]() -> SmallVector<Value> {
                     return {load(e, rk, {t, sub(e, c, e.idx(dc))})};
                   })[0];
               if (!elem.isF32())
                 v = arith::TruncFOp::create(b, loc, elem, v);
               memref::StoreOp::create(b, loc, v, mem,
                                       ValueRange{layer, page, slot, c});
               return {};
             });
    });
  });
  func::ReturnOp::create(b, loc);
  return true;
}
