//===- AttentionPatterns.cpp - MLA ops -> loop nests ----------------------===//
//
// Rotary embedding, the latent cache write, the per-head matmuls of the
// absorbed form, and attention over the latent cache (absorbed) or with
// per-head K/V rebuilt inside the kernel (naive).
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

/// Kernels over differently stored caches never share a function.
std::string layoutKey(const CacheLayout &l) {
  if (!l.isFp8())
    return "";
  return "/fp8/" + std::to_string(l.group) + (l.decodeRows ? "/decoded" : "");
}

/// The runtime's blocked latent attention over this cache on the CPU:
/// `prefix` + _f32, _bf16 or _fp8 (the FP8 layout's bytes), or "" for a
/// cache it does not read (the generated nest stays).
std::string latentAttentionCallee(StringRef prefix, Value cache,
                                  const CacheLayout &layout) {
  Type e = cast<MemRefType>(cache.getType()).getElementType();
  if (layout.isFp8())
    return e.isInteger(8) ? (prefix + "_fp8").str() : "";
  if (e.isF32())
    return (prefix + "_f32").str();
  if (e.isBF16())
    return (prefix + "_bf16").str();
  return "";
}

/// Kernels with different head groups never share a function.
std::string groupKey(int64_t group) {
  return group > 1 ? "/heads" + std::to_string(group) : "";
}

struct RopeLowering : KernelPattern<RopeOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(RopeOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    std::string key;
    llvm::raw_string_ostream(key) << op.getConfig();
    k.outline("rope", key,
              {in, use(k, op, op.getPositions(), adaptor.getPositions()), out},
              [&](ValueRange a) {
                k.rope(a[0], a[1], a[2], op.getConfig());
              });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// The cache is updated in place: the op's result is the cache buffer.
struct CacheWriteLowering : KernelPattern<CacheWriteOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(CacheWriteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value cache = use(k, op, op.getCache(), adaptor.getCache());
    CacheLayout layout = CacheLayout::of(
        op.getCache().getType(), op.getRopeKey().getType().getShape().back());
    k.setCacheLayout(layout);
    k.outline("cache_write", layoutKey(layout),
              {cache, use(k, op, op.getLatent(), adaptor.getLatent()),
               use(k, op, op.getRopeKey(), adaptor.getRopeKey()),
               use(k, op, op.getPositions(), adaptor.getPositions()),
               k.cIdx(op.getLayer())},
              [&](ValueRange a) {
                k.cacheWrite(CacheRows{a[0], a[4]}, a[1], a[2], a[3]);
              });
    rewriter.replaceOp(op, cache);
    return success();
  }
};

struct HeadMatmulLowering : KernelPattern<HeadMatmulOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(HeadMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    int64_t group = op.getGroup(), offset = op.getOffset();
    bool transpose = op.getTranspose();
    // skip(query_start): the rows of the naive sequences are zero.
    Value qs = op.getQueryStart()
                   ? use(k, op, op.getQueryStart(), adaptor.getQueryStart())
                   : Value();
    int64_t minTokens = op.getNaiveMinTokens().value_or(-1);
    if (state.headMatmulCalls) {
      // The runtime computes only the rows it keeps.
      k.headMatmulCall(contextOf(op), in,
                       use(k, op, op.getWeight(), adaptor.getWeight()), out,
                       group, offset, transpose, qs, minTokens);
      rewriter.replaceOp(op, out);
      return success();
    }
    if (state.headMatmulRows && !transpose) {
      k.outline("head_matmul_rows",
                std::to_string(group) + "/" + std::to_string(offset),
                {in, use(k, op, op.getWeight(), adaptor.getWeight()), out},
                [&](ValueRange a) {
                  k.headMatmulRows(a[0], a[1], a[2], group, offset);
                });
    } else {
      k.outline("head_matmul",
                std::to_string(group) + "/" + std::to_string(offset) + "/" +
                    std::to_string(transpose),
                {in, use(k, op, op.getWeight(), adaptor.getWeight()), out},
                [&](ValueRange a) {
                  k.headMatmul(a[0], a[1], a[2], group, offset, transpose);
                });
    }
    if (qs)
      k.outline("head_matmul_skip", std::to_string(minTokens), {out, qs},
                [&](ValueRange a) { k.zeroNaiveRows(a[0], a[1], minTokens); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct LatentAttentionLowering : KernelPattern<LatentAttentionOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(LatentAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value ql = use(k, op, op.getQLatent(), adaptor.getQLatent());
    Value out = alloc(k, op.getResult(), {k.dim(ql, 0)});
    double scale = op.getScale().convertToDouble();
    CacheLayout layout = CacheLayout::of(
        op.getCache().getType(), op.getQRope().getType().getShape().back());
    layout.decodeRows = state.cacheDecodeCalls;
    k.setCacheLayout(layout);
    Value cache = use(k, op, op.getCache(), adaptor.getCache());
    if (std::string fn =
            latentAttentionCallee("dsrt_latent_attention", cache, layout);
        state.latentAttentionCalls && !fn.empty()) {
      // The CPU: the runtime's blocked kernel over the pool.
      k.outline(
          "latent_attention_call", std::to_string(scale) + layoutKey(layout),
          {contextOf(op), ql, use(k, op, op.getQRope(), adaptor.getQRope()),
           cache, use(k, op, op.getPositions(), adaptor.getPositions()), out,
           k.cIdx(op.getLayer())},
          [&](ValueRange a) {
            SmallVector<Value> indices{a[6]};
            if (layout.isFp8())
              indices.push_back(k.cIdx(layout.group));
            k.attendCall(fn, a[0], a.slice(1, 5), indices, scale);
          });
      rewriter.replaceOp(op, out);
      return success();
    }
    int64_t group = attentionHeadGroup(
        state.attentionHeadGroup, op.getQLatent().getType().getDimSize(1));
    func::FuncOp kernel = k.outline(
        "latent_attention",
        std::to_string(scale) + layoutKey(layout) + groupKey(group),
        {ql, use(k, op, op.getQRope(), adaptor.getQRope()),
         cache, use(k, op, op.getPositions(), adaptor.getPositions()), out,
         k.cIdx(op.getLayer())},
        [&](ValueRange a) {
          CacheRows rows{a[2], a[5]};
          if (group > 1)
            k.groupedLatentAttention(a[0], a[1], rows, a[3], a[4], scale,
                                     group);
          else
            k.latentAttention(a[0], a[1], rows, a[3], a[4], scale);
        });
    // The GPU path rebuilds this kernel (split-KV) and needs the scale.
    kernel->setAttr("ds.scale", op.getScaleAttr());
    if (layout.isFp8())
      kernel->setAttr("ds.cache_scale_group",
                      rewriter.getI64IntegerAttr(layout.group));
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct NaiveAttentionLowering : KernelPattern<NaiveAttentionOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(NaiveAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value qn = use(k, op, op.getQNope(), adaptor.getQNope());
    Value out = alloc(k, op.getResult(), {k.dim(qn, 0)});
    double scale = op.getScale().convertToDouble();
    int64_t chunk = state.attentionChunk;
    CacheLayout layout = CacheLayout::of(
        op.getCache().getType(), op.getQRope().getType().getShape().back());
    k.setCacheLayout(layout);
    if (state.headMatmulCalls) {
      // Host loops around the runtime's GEMM: the driver takes the context,
      // and its working buffers from the entry point (planned).
      Value qr = use(k, op, op.getQRope(), adaptor.getQRope()),
            kvb = use(k, op, op.getKvBProj(), adaptor.getKvBProj());
      SmallVector<Value> operands{
          contextOf(op),
          qn,
          qr,
          use(k, op, op.getCache(), adaptor.getCache()),
          use(k, op, op.getPositions(), adaptor.getPositions()),
          kvb,
          out,
          k.cIdx(op.getLayer())};
      llvm::append_range(operands,
                         naiveScratch(k, op, qn, qr, kvb, out, chunk).all());
      k.outline("naive_attention_calls",
                std::to_string(scale) + "/" + std::to_string(chunk) +
                    layoutKey(layout),
                operands, [&](ValueRange a) {
                  k.naiveAttentionCalls(a[0], a[1], a[2], a[3], a[4], a[5],
                                        a[6], a[7], scale, chunk,
                                        {a[8], a[9], a[10], a[11], a[12]});
                });
      rewriter.replaceOp(op, out);
      return success();
    }
    k.outline("naive_attention",
              std::to_string(scale) + "/" + std::to_string(chunk) +
                  layoutKey(layout),
              {qn, use(k, op, op.getQRope(), adaptor.getQRope()),
               use(k, op, op.getCache(), adaptor.getCache()),
               use(k, op, op.getPositions(), adaptor.getPositions()),
               use(k, op, op.getKvBProj(), adaptor.getKvBProj()), out,
               k.cIdx(op.getLayer())},
              [&](ValueRange a) {
                k.naiveAttention(a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                                 scale, chunk);
              });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// The ragged batch's cache write: each token's row found through its
/// sequence's block table; the paged cache is updated in place.
struct PagedCacheWriteLowering : KernelPattern<PagedCacheWriteOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(PagedCacheWriteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value cache = use(k, op, op.getCache(), adaptor.getCache());
    int64_t pageSize = op.getCache().getType().getPageSize();
    CacheLayout layout = CacheLayout::of(
        op.getCache().getType(), op.getRopeKey().getType().getShape().back());
    k.setCacheLayout(layout);
    k.outline("paged_cache_write", std::to_string(pageSize) + layoutKey(layout),
              {cache, use(k, op, op.getLatent(), adaptor.getLatent()),
               use(k, op, op.getRopeKey(), adaptor.getRopeKey()),
               use(k, op, op.getPositions(), adaptor.getPositions()),
               use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
               use(k, op, op.getBlockTables(), adaptor.getBlockTables()),
               k.cIdx(op.getLayer())},
              [&](ValueRange a) {
                k.cacheWrite(CacheRows{a[0], a[6], a[5], a[4], pageSize}, a[1],
                             a[2], a[3]);
              });
    rewriter.replaceOp(op, cache);
    return success();
  }
};

/// The absorbed kernel of ds.latent_attention with its rows read through
/// the block tables: one loop nest, the addressing differs.
struct PagedLatentAttentionLowering : KernelPattern<PagedLatentAttentionOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(PagedLatentAttentionOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value ql = use(k, op, op.getQLatent(), adaptor.getQLatent());
    Value out = alloc(k, op.getResult(), {k.dim(ql, 0)});
    double scale = op.getScale().convertToDouble();
    int64_t pageSize = op.getCache().getType().getPageSize();
    CacheLayout layout = CacheLayout::of(
        op.getCache().getType(), op.getQRope().getType().getShape().back());
    layout.decodeRows = state.cacheDecodeCalls;
    k.setCacheLayout(layout);
    // Sequences this long are ds.paged_naive_attention's (skipped here).
    int64_t naiveMinTokens = op.getNaiveMinTokens().value_or(-1);
    Value cache = use(k, op, op.getCache(), adaptor.getCache());
    if (std::string fn =
            latentAttentionCallee("dsrt_paged_latent_attention", cache, layout);
        state.latentAttentionCalls && !fn.empty()) {
      // The CPU: the runtime's blocked kernel over the pool.
      k.outline("paged_latent_attention_call",
                std::to_string(scale) + "/" + std::to_string(pageSize) + "/" +
                    std::to_string(naiveMinTokens) + layoutKey(layout),
                {contextOf(op), ql,
                 use(k, op, op.getQRope(), adaptor.getQRope()), cache,
                 use(k, op, op.getPositions(), adaptor.getPositions()),
                 use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
                 use(k, op, op.getBlockTables(), adaptor.getBlockTables()), out,
                 k.cIdx(op.getLayer())},
                [&](ValueRange a) {
                  SmallVector<Value> indices{a[8], k.cIdx(pageSize),
                                             k.cIdx(naiveMinTokens)};
                  if (layout.isFp8())
                    indices.push_back(k.cIdx(layout.group));
                  k.attendCall(fn, a[0], a.slice(1, 7), indices, scale);
                });
      rewriter.replaceOp(op, out);
      return success();
    }
    int64_t group = attentionHeadGroup(
        state.attentionHeadGroup, op.getQLatent().getType().getDimSize(1));
    func::FuncOp kernel = k.outline(
        "paged_latent_attention",
        std::to_string(scale) + "/" + std::to_string(pageSize) + "/" +
            std::to_string(naiveMinTokens) + layoutKey(layout) +
            groupKey(group),
        {ql, use(k, op, op.getQRope(), adaptor.getQRope()), cache,
         use(k, op, op.getPositions(), adaptor.getPositions()),
         use(k, op, op.getQueryStart(), adaptor.getQueryStart()),
         use(k, op, op.getBlockTables(), adaptor.getBlockTables()), out,
         k.cIdx(op.getLayer())},
        [&](ValueRange a) {
          CacheRows rows{a[2], a[7], a[5], a[4], pageSize};
          rows.naiveMinTokens = naiveMinTokens;
          if (group > 1)
            k.groupedLatentAttention(a[0], a[1], rows, a[3], a[6], scale,
                                     group);
          else
            k.latentAttention(a[0], a[1], rows, a[3], a[6], scale);
        });
    kernel->setAttr("ds.scale", op.getScaleAttr());
    rewriter.replaceOp(op, out);
    return success();
  }
};

struct GatherRowsLowering : KernelPattern<GatherRowsOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(GatherRowsOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value rows = use(k, op, op.getRows(), adaptor.getRows());
    Value out = alloc(k, op.getResult(), {k.dim(rows, 0)});
    k.outline("gather_rows", "",
              {use(k, op, op.getInput(), adaptor.getInput()), rows, out},
              [&](ValueRange a) { k.gatherRows(a[0], a[1], a[2]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateAttentionPatterns(const TypeConverter &converter,
                                                LoweringState &state,
                                                RewritePatternSet &patterns) {
  patterns.add<RopeLowering, CacheWriteLowering, HeadMatmulLowering,
               LatentAttentionLowering, NaiveAttentionLowering,
               PagedCacheWriteLowering, PagedLatentAttentionLowering,
               GatherRowsLowering>(
      converter, patterns.getContext(), state);
}
