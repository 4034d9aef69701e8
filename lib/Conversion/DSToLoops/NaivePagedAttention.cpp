//===- NaivePagedAttention.cpp - the naive MLA form over pages ------------===//
//
// ds.paged_naive_attention: the sequences of a ragged step with many new
// tokens (a long prefill chunk) take the naive form, the others keep what
// the absorbed kernels computed. The choice is made per sequence at run
// time from the op's naive_min_tokens; the absorbed ds.paged_latent_attention
// of the same step skips the sequences it leaves (absorbedRows below).
//
// A naive sequence runs as host code over kernels that each own one
// scf.parallel (so ds-parallelize-kernels gives them the thread pool):
//   for each chunk of whole pages of its context:
//     gather:  the chunk's latents and rope keys, decoded to f32 (cacheRow,
//              loadCacheLatent / loadCacheRope: the only layout knowledge)
//     GEMM:    [k_nope_h | v_h] for every head = latents x kv_b_proj^T,
//              one runtime GEMM (the cost the threshold charges per row)
//     attend:  each (token, head) extends its online softmax over the
//              chunk's rows <= its position: chunks merge by log-sum-exp
//              (on the CPU, exactExpansion, the runtime's
//              dsrt_naive_attend_f32: NaiveAttendCall.cpp)
//   finish:    divide by the softmax sums.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <limits>
#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

//===----------------------------------------------------------------------===//
// The per-sequence choice
//===----------------------------------------------------------------------===//

Value KernelEmitter::segmentIsNaive(const CacheRows &cache, Value seq) {
  Value qs = cache.queryStart;
  Value next = arith::AddIOp::create(b, loc, seq, cIdx(1));
  Value t0 = toIndex(load(qs, seq)), t1 = toIndex(load(qs, next));
  Value n = arith::SubIOp::create(b, loc, t1, t0);
  // An empty sequence has nothing to compute in either form.
  int64_t minTokens = std::max<int64_t>(cache.naiveMinTokens, 1);
  return arith::CmpIOp::create(b, loc, arith::CmpIPredicate::sge, n,
                               cIdx(minTokens));
}

Value KernelEmitter::absorbedRows(const CacheRows &cache, Value seq,
                                  Value last) {
  Value end = arith::AddIOp::create(b, loc, last, cIdx(1));
  if (!cache.paged() || cache.naiveMinTokens < 0)
    return end;
  return arith::SelectOp::create(b, loc, segmentIsNaive(cache, seq), cIdx(0),
                                 end);
}

Value KernelEmitter::absorbedNormalizer(const CacheRows &cache, Value sum) {
  Value inv = arith::DivFOp::create(b, loc, cF32(1.0), sum);
  if (!cache.paged() || cache.naiveMinTokens < 0)
    return inv;
  // A skipped token attended over nothing: its row stays zero.
  Value some = arith::CmpFOp::create(b, loc, arith::CmpFPredicate::OGT, sum,
                                     cF32(0.0));
  return arith::SelectOp::create(b, loc, some, inv, cF32(0.0));
}

void KernelEmitter::traceNaiveSegment(Value ctx, Value layer, Value tokens) {
  Type i64 = b.getI64Type();
  auto fn = runtimeFunction("dsrt_trace_naive_segment",
                            {ctx.getType(), i64, i64}, {});
  func::CallOp::create(
      b, loc, fn,
      ValueRange{ctx, arith::IndexCastOp::create(b, loc, i64, layer),
                 arith::IndexCastOp::create(b, loc, i64, tokens)});
}

//===----------------------------------------------------------------------===//
// The naive form of one sequence, chunk by chunk
//===----------------------------------------------------------------------===//

void KernelEmitter::pagedNaiveAttention(Value ctx, Value qNope, Value qRope,
                                        const CacheRows &cache, Value positions,
                                        Value kvb, Value init, Value out,
                                        double scale, int64_t chunk,
                                        const NaiveScratch *scratch) {
  auto qt = cast<MemRefType>(qNope.getType());
  int64_t heads = qt.getDimSize(1), dn = qt.getDimSize(2),
          dr = cast<MemRefType>(qRope.getType()).getDimSize(2),
          dv = cast<MemRefType>(out.getType()).getDimSize(2),
          dc = cast<MemRefType>(kvb.getType()).getDimSize(1);
  int64_t group = dn + dv;
  Type f32 = b.getF32Type();
  Value tokens = dim(qNope, 0), hv = cIdx(heads), chunkV = cIdx(chunk);
  std::string key = std::to_string(scale) + "/" + std::to_string(chunk) +
                    "/" + std::to_string(cache.pageSize);

  copy(init, out);
  // One chunk's decoded rows and their per-head keys and values; the
  // running softmax of every token (only a naive sequence's are used).
  NaiveScratch own;
  if (!scratch)
    own = naiveScratch(tokens, qNope, qRope, kvb, out, chunk);
  const NaiveScratch &s = scratch ? *scratch : own;
  Value lat = s.lat, rope = s.rope, kv = s.kv, runMax = s.runMax,
        runSum = s.runSum;
  Value negInf = cF32(-std::numeric_limits<float>::infinity());

  Value qs = cache.queryStart;
  Value numSeqs = arith::SubIOp::create(b, loc, dim(qs, 0), cIdx(1));
  loop(cIdx(0), numSeqs, {}, [&](Value seq, ValueRange) -> SmallVector<Value> {
    auto ifOp = scf::IfOp::create(b, loc, segmentIsNaive(cache, seq),
                                  /*withElseRegion=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(ifOp.thenBlock());
    Value next = arith::AddIOp::create(b, loc, seq, cIdx(1));
    Value t0 = toIndex(load(qs, seq)), t1 = toIndex(load(qs, next));
    Value n = arith::SubIOp::create(b, loc, t1, t0);
    traceNaiveSegment(ctx, cache.layer, n);
    // Rows 0..max(positions) of the sequence are attended by some token.
    Value rows = rowsAttended(positions, t0, t1);
    par({n, hv}, [&](ValueRange iv) {
      Value t = arith::AddIOp::create(b, loc, t0, iv[0]);
      store(negInf, runMax, {t, iv[1]});
      store(cF32(0.0), runSum, {t, iv[1]});
      loop(cIdx(0), cIdx(dv), {},
           [&](Value j, ValueRange) -> SmallVector<Value> {
             store(cF32(0.0), out, {t, iv[1], j});
             return {};
           });
    });

    loop(cIdx(0), rows, {}, [&](Value c0, ValueRange) -> SmallVector<Value> {
      Value m = arith::MinUIOp::create(b, loc, chunkV,
                                       arith::SubIOp::create(b, loc, rows, c0));
      // Rows past the context repeat its last row: the GEMM runs over a
      // whole chunk and the attention never reads them.
      outline("paged_naive_gather", key,
              {cache.cache, cache.layer, cache.blockTables, seq, c0, m, lat,
               rope},
              [&](ValueRange a) {
                CacheRows rowsOf{a[0], a[1], a[2], Value(), cache.pageSize};
                par({cIdx(chunk)}, [&](ValueRange iv) {
                  Value lastRow = arith::SubIOp::create(b, loc, a[5], cIdx(1));
                  Value r = arith::MinUIOp::create(b, loc, iv[0], lastRow);
                  SmallVector<Value> row = cacheRow(
                      rowsOf, a[3], arith::AddIOp::create(b, loc, a[4], r));
                  copyCacheRow(a[0], row, a[6], a[7], iv[0]);
                });
              });
      // [k_nope_h | v_h] of every head for the chunk's rows.
      if (exactExpansion)
        linearExact(ctx, lat, kvb, kv);
      else
        linear(ctx, lat, kvb, kv);
      SmallVector<Value> attend{qNope, qRope, positions, kv,  rope, runMax,
                                runSum, out,  t0,        n,   c0,   m};
      if (exactExpansion)
        naiveAttendCall(ctx, attend, scale);
      else
        outline("paged_naive_attend", key, attend,
                [&](ValueRange a) { pagedNaiveAttendChunk(a, scale); });
      return {};
    }, chunkV);

    par({n, hv, cIdx(dv)}, [&](ValueRange iv) {
      Value t = arith::AddIOp::create(b, loc, t0, iv[0]);
      Value inv = arith::DivFOp::create(b, loc, cF32(1.0),
                                        load(runSum, {t, iv[1]}));
      SmallVector<Value> at{t, iv[1], iv[2]};
      store(arith::MulFOp::create(b, loc, load(out, at), inv), out, at);
    });
    return {};
  });
  if (!scratch)
    for (Value buf : own.all())
      memref::DeallocOp::create(b, loc, buf);
}

/// One chunk's rows for every (token, head) of the sequence: operands
/// (q_nope, q_rope, positions, kv [rows, heads x (nope | v)], rope keys,
/// running max, running sum, out, first token, tokens, first row, rows).
void KernelEmitter::pagedNaiveAttendChunk(ValueRange a, double scale) {
  Value qn = a[0], qr = a[1], pos = a[2], kvA = a[3], ropeA = a[4],
        mx = a[5], sm = a[6], o = a[7], first = a[10], count = a[11];
  auto qt = cast<MemRefType>(qn.getType());
  int64_t heads = qt.getDimSize(1), dn = qt.getDimSize(2),
          dr = cast<MemRefType>(qr.getType()).getDimSize(2),
          dv = cast<MemRefType>(o.getType()).getDimSize(2), group = dn + dv;
  par({a[9], cIdx(heads)}, [&](ValueRange iv) {
    Value t = arith::AddIOp::create(b, loc, a[8], iv[0]);
    Value h = iv[1];
    Value base = mul(h, cIdx(group));
    Value vBase = arith::AddIOp::create(b, loc, base, cIdx(dn));
    Value end =
        arith::AddIOp::create(b, loc, toIndex(load(pos, t)), cIdx(1));
    Value stop = arith::MinUIOp::create(
        b, loc, end, arith::AddIOp::create(b, loc, first, count));
    Value from = arith::MinUIOp::create(b, loc, first, stop);
    SmallVector<Value> ml = loop(
        from, stop, {load(mx, {t, h}), load(sm, {t, h})},
        [&](Value s, ValueRange acc) -> SmallVector<Value> {
          Value r = arith::SubIOp::create(b, loc, s, first);
          Value dot = sum(cIdx(dn), [&](Value j) {
            Value col = arith::AddIOp::create(b, loc, base, j);
            return arith::MulFOp::create(b, loc, load(qn, {t, h, j}),
                                         load(kvA, {r, col}));
          });
          Value dotR = sum(cIdx(dr), [&](Value q) {
            return arith::MulFOp::create(b, loc, load(qr, {t, h, q}),
                                         load(ropeA, {r, q}));
          });
          Value score = arith::MulFOp::create(
              b, loc, arith::AddFOp::create(b, loc, dot, dotR), cF32(scale));
          SoftmaxStep st = onlineSoftmaxStep(acc[0], acc[1], score);
          loop(cIdx(0), cIdx(dv), {},
               [&](Value j, ValueRange) -> SmallVector<Value> {
                 Value col = arith::AddIOp::create(b, loc, vBase, j);
                 Value ov =
                     arith::MulFOp::create(b, loc, load(o, {t, h, j}), st.corr);
                 Value v = arith::MulFOp::create(b, loc, st.p,
                                                 load(kvA, {r, col}));
                 store(arith::AddFOp::create(b, loc, ov, v), o, {t, h, j});
                 return {};
               });
          return {st.max, st.sum};
        });
    store(ml[0], mx, {t, h});
    store(ml[1], sm, {t, h});
  });
}

//===----------------------------------------------------------------------===//
// The pattern
//===----------------------------------------------------------------------===//

namespace {

/// The driver is one outlined function per shape (host loops over the
/// sequences and chunks); its kernels are outlined again inside it.
struct PagedNaiveAttentionLowering : KernelPattern<PagedNaiveAttentionOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(PagedNaiveAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value qn = use(k, op, op.getQNope(), adaptor.getQNope());
    Value out = alloc(k, op.getResult(), {k.dim(qn, 0)});
    double scale = op.getScale().convertToDouble();
    int64_t pageSize = op.getCache().getType().getPageSize();
    // Whole pages, at least attention-chunk rows: the per-head K/V of one
    // chunk is what the step holds at a time, whatever the context.
    int64_t chunk =
        (std::max<int64_t>(state.attentionChunk, 1) + pageSize - 1) /
        pageSize * pageSize;
    int64_t minTokens = op.getNaiveMinTokens();
    k.setCacheLayout(CacheLayout::of(
        op.getCache().getType(), op.getQRope().getType().getShape().back()));
    Value ctx = contextOf(op);
    k.setExactExpansion(state.headMatmulCalls);
    Value qr = use(k, op, op.getQRope(), adaptor.getQRope()),
          kvb = use(k, op, op.getKvBProj(), adaptor.getKvBProj());
    SmallVector<Value> operands{
        ctx,
        qn,
        qr,
        use(k, op, op.getCache(), adaptor.getCache()),
        use(k, op, op.getPositions(), adaptor.getPositions()),
        use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
        use(k, op, op.getBlockTables(), adaptor.getBlockTables()),
        kvb,
        use(k, op, op.getInit(), adaptor.getInit()),
        out,
        k.cIdx(op.getLayer())};
    // The CPU's working buffers come from the entry point (planned); the
    // GPU's driver keeps its own.
    bool planned = state.headMatmulCalls;
    if (planned)
      llvm::append_range(operands,
                         naiveScratch(k, op, qn, qr, kvb, out, chunk).all());
    k.outline("paged_naive_attention",
              std::to_string(scale) + "/" + std::to_string(chunk) + "/" +
                  std::to_string(pageSize) + "/" + std::to_string(minTokens),
              operands, [&](ValueRange a) {
                CacheRows rows{a[3], a[10], a[6], a[5], pageSize};
                rows.naiveMinTokens = minTokens;
                KernelEmitter::NaiveScratch s{};
                if (planned)
                  s = {a[11], a[12], a[13], a[14], a[15]};
                k.pagedNaiveAttention(a[0], a[1], a[2], rows, a[4], a[7], a[8],
                                      a[9], scale, chunk,
                                      planned ? &s : nullptr);
              });
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateNaivePagedAttentionPatterns(
    const TypeConverter &converter, LoweringState &state,
    RewritePatternSet &patterns) {
  patterns.add<PagedNaiveAttentionLowering>(converter, patterns.getContext(),
                                            state);
}
